//! The DPDK pipeline benchmark (`pshim6 bench pipeline --backend dpdk`), worker threads as
//! DPDK lcores, and port MACs read from the device. One EAL per process (no hugepages, no
//! NIC), so one test runs every sub-case in turn.
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::backend::dpdk::bench::run_dpdk_pipeline_bench;
use dataplane::backend::dpdk::{
    attach_vdev, init_eal, lcore_id, port_mac, register_thread, ring_port_pair, unregister_thread,
    DpdkPort, DpdkPortConfig, Mempool,
};
use dataplane::bench::{BenchOptions, REPORT_FIGURES};
use dataplane::buf::PacketBuf;
use dataplane::io::PortId;
use dataplane::punt::SlowPathLink;
use dataplane::worker::{NullForwarder, Worker, WorkerConfig};

/// Mbufs in the caches of every lcore but the calling (main) one.
fn cached_elsewhere(pool: &Mempool) -> u32 {
    let main = lcore_id().expect("the test thread is the EAL main lcore");
    pool.cached() - pool.cached_on(main)
}

/// A plain thread is no lcore until it registers; it gets an id other than the main one and
/// gives it back.
fn threads_register_as_lcores() {
    let main = lcore_id().unwrap();
    let (before, id, after) = std::thread::spawn(|| {
        let before = lcore_id();
        let id = register_thread().unwrap();
        // Registering again keeps the same id.
        assert_eq!(register_thread().unwrap(), id);
        unregister_thread();
        (before, id, lcore_id())
    })
    .join()
    .unwrap();
    assert_eq!(before, None);
    assert_ne!(id, main);
    assert_eq!(after, None);
}

/// A worker started with `Worker::spawn` on DPDK queues registers its thread, so the mbufs
/// it frees (frames it drops) land in its lcore's mempool cache rather than the shared ring.
fn spawned_worker_uses_its_lcore_cache() {
    let pool = Arc::new(Mempool::new("lcore_pool", 4096, 2048, None).unwrap());
    let (near, far) = ring_port_pair("lc_w", "lc_f", 1, 1024).unwrap();
    let (pn, mut qn) = DpdkPort::start(&DpdkPortConfig::new(&near), &pool).unwrap();
    let (pf, mut qf) = DpdkPort::start(&DpdkPortConfig::new(&far), &pool).unwrap();
    assert_eq!(
        cached_elsewhere(&pool),
        0,
        "no other lcore touched the pool yet"
    );
    let wcfg = WorkerConfig {
        index: 0,
        core: None,
        burst: 32,
        epoch: Instant::now(),
    };
    // No port pairs: every frame is dropped, i.e. freed on the worker's thread.
    let worker = Worker::new(
        wcfg,
        vec![(PortId(0), qn.remove(0))],
        NullForwarder::new(&[]),
        Arc::new(SlowPathLink::new(64, 4)),
    )
    .spawn()
    .unwrap();
    let mut q = qf.remove(0);
    let mut frames = Vec::new();
    for _ in 0..300 {
        let mut m = pool.alloc().unwrap();
        m.reset_from(&[0x5a; 100]).unwrap();
        frames.push(m);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !frames.is_empty() && Instant::now() < deadline {
        q.tx_keep(&mut frames);
    }
    while worker.stats().fast_path.packets < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let w = worker.stop().unwrap();
    assert_eq!(
        w.stats().fast_path.packets,
        300,
        "the worker received every frame"
    );
    let cached = cached_elsewhere(&pool);
    assert!(
        cached > 0,
        "the worker's frees went through a per-lcore cache (it registered as an lcore)"
    );
    drop(w);
    drop(q);
    drop((pn, pf));
}

/// `pshim6 bench pipeline --backend dpdk`, briefly: every mode measured, every frame
/// forwarded, the in-memory report's fields present, the lcore caches in use.
fn bench_reports_every_mode() {
    let opts = BenchOptions {
        workers: 1,
        contexts: 500,
        size: 128,
        seconds: 0.1,
        pin: false,
    };
    let r = run_dpdk_pipeline_bench(&opts).unwrap();
    eprintln!("dpdk bench: {}", serde_json::to_string(&r).unwrap());
    let b = &r.report;
    assert_eq!(b.backend, "dpdk");
    for (name, v) in [
        ("null", b.null_mpps),
        ("egress", b.egress_mpps),
        ("ingress", b.ingress_mpps),
        ("natv6", b.natv6_mpps),
        ("wall egress", b.wall.egress_mpps),
    ] {
        assert!(v > 0.0, "{name} measured nothing: {r:?}");
    }
    assert_eq!(
        b.unforwarded, [0; 4],
        "every frame translated and forwarded"
    );
    assert!(
        b.punt_flood_unforwarded > 0,
        "unknown tags punted in the flood"
    );
    assert!((b.egress_ratio - b.egress_mpps / b.null_mpps).abs() < 1e-9);
    assert!(
        r.lcore_cached_mbufs > 0,
        "worker/feeder lcore caches unused: {r:?}"
    );
    let json = serde_json::to_value(&r).unwrap();
    for k in REPORT_FIGURES.iter().chain(&["lcore_cached_mbufs"]) {
        assert!(json.get(k).is_some(), "missing {k}: {json}");
    }
    assert_eq!(json["contexts"], 500);
    // The same process can run it again (fresh ports, same EAL).
    let again = run_dpdk_pipeline_bench(&opts).unwrap();
    assert!(again.report.ingress_mpps > 0.0);
}

/// A port's MAC comes from the device when asked: here memif's `mac=` device argument.
fn port_mac_is_the_devices() {
    let sock = std::env::temp_dir().join(format!("pshim6-mac-{}.sock", std::process::id()));
    let args = format!(
        "role=server,socket={},socket-abstract=no,mac=02:00:00:00:00:42",
        sock.display()
    );
    attach_vdev("net_memif7", &args).unwrap();
    assert_eq!(port_mac("net_memif7").unwrap(), [2, 0, 0, 0, 0, 0x42]);
    assert!(port_mac("net_memif_none").is_err());
    let _ = std::fs::remove_file(sock);
}

#[test]
fn dpdk_bench_lcores_and_macs() {
    init_eal(&[
        "dpdk_bench",
        "-l",
        "0",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "--log-level=warning",
    ])
    .unwrap();
    threads_register_as_lcores();
    spawned_worker_uses_its_lcore_cache();
    bench_reports_every_mode();
    port_mac_is_the_devices();
}
