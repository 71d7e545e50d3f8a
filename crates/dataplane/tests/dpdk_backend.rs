//! The DPDK backend on virtual devices, without NIC or hugepages. One EAL per process, so one
//! test runs every sub-case: `net_ring` injection through the fast path (same expectations as
//! the in-memory tests in `fastpath_*.rs`) and a golden run through two `net_pcap` ports (ULID
//! side and locator side) checked with tshark.
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/src/tshark.rs"]
mod tshark;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use dataplane::backend::dpdk::{
    allowed_cpus, init_eal, DpdkError, DpdkPort, DpdkPortConfig, DpdkQueue, Mbuf, Mempool,
};
use dataplane::buf::{BufError, PacketBuf, DEFAULT_HEADROOM};
use dataplane::fastpath::{PuntReason, Verdict};
use dataplane::io::{PortId, PortQueue, BURST};
use fastpath_common::*;
use wire::pcap::PcapWriter;

const PAYLOAD: &[u8] = b"hello from a legacy host";
const REPLY: &[u8] = b"reply from the remote site";

/// Inside → provider A after translation (as in `fastpath_egress.rs`).
fn egress_expected() -> Vec<u8> {
    let u = udp(host_ulid(), peer_ulid(), 5353, 7777, PAYLOAD);
    cat(&[
        &eth(ROUTER_A_MAC, PROV_A_MAC),
        &ipv6(u.len() + 8, 140, 63, host_loc_a(), peer_loc()),
        &shim_payload(17, PEER_TAG),
        &u,
    ])
}

/// What arrives from provider A (as in `fastpath_ingress.rs`).
fn from_peer(hl: u8) -> Vec<u8> {
    from_peer_with(hl, REPLY)
}

fn to_host(hl: u8) -> Vec<u8> {
    to_host_with(hl, REPLY)
}

fn write_pcap(path: &FsPath, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(BufWriter::new(File::create(path).unwrap())).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_frame(i as u64 * 1000, f).unwrap();
    }
    w.into_inner().unwrap();
}

/// Receives until `n` frames arrived (virtual devices deliver at once; bounded retries).
fn rx_n(q: &mut DpdkQueue, n: usize) -> Vec<Mbuf> {
    let mut out = Vec::with_capacity(BURST);
    for _ in 0..1000 {
        q.rx_burst(&mut out, BURST);
        if out.len() >= n {
            break;
        }
    }
    assert_eq!(out.len(), n, "frames received");
    out
}

/// Injects `frame` into the ring port (what is sent on `net_ring0` comes back on its rx),
/// runs the received mbuf through the fast path as if it arrived on `port`, sends it through
/// the ring again and returns the verdict and the bytes that came back.
fn ring_run(q: &mut DpdkQueue, s: &mut Site, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut m = q.alloc().unwrap();
    m.reset_from(frame).unwrap();
    let mut tx = vec![m];
    assert_eq!(q.tx_burst(&mut tx), 1);
    let mut bufs = rx_n(q, 1);
    assert_eq!(bufs[0].as_ref(), frame, "ring round trip");
    let mut v = [Verdict::Forward(PortId(99))];
    s.fp.process_burst(port, &mut bufs, &mut v);
    assert_eq!(q.tx_burst(&mut bufs), 1);
    assert!(bufs.is_empty());
    let back = rx_n(q, 1);
    (v[0], back[0].as_ref().to_vec())
}

fn ring_cases(pool: &Arc<Mempool>) {
    let (port, mut qs) = DpdkPort::start(&DpdkPortConfig::new("net_ring0"), pool).unwrap();
    assert_eq!(qs.len(), 1);
    let q = &mut qs[0];
    let before = pool.available();

    // Mbuf as PacketBuf: headroom is the mbuf's, prepend/adj move data_off.
    let mut m = q.alloc().unwrap();
    m.reset_from(&[1, 2, 3, 4]).unwrap();
    assert_eq!(m.headroom(), DEFAULT_HEADROOM);
    m.prepend(8).unwrap();
    assert_eq!(m.len(), 12);
    assert_eq!(&m.as_ref()[8..], &[1, 2, 3, 4]);
    m.adj(10).unwrap();
    assert_eq!(m.as_ref(), &[3, 4]);
    assert_eq!(m.adj(3), Err(BufError::TooShort));
    assert_eq!(m.prepend(DEFAULT_HEADROOM + 11), Err(BufError::NoHeadroom));
    m.truncate(1);
    assert_eq!(m.as_ref(), &[3]);
    assert_eq!(m.reset_from(&vec![0; 70_000]), Err(BufError::NoRoom));
    q.free(m);

    // Egress rewrite.
    let mut s = Site::new();
    s.add_context();
    let (v, out) = ring_run(
        q,
        &mut s,
        INSIDE,
        &inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD),
    );
    assert_eq!(v, Verdict::Forward(PROV_A));
    assert_frame(&out, &egress_expected());

    // Ingress restore.
    let (v, out) = ring_run(q, &mut s, PROV_A, &from_peer(60));
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_frame(&out, &to_host(59));
    assert!(l4_checksum_ok(peer_ulid(), host_ulid(), 17, &out[54..]));

    // Unknown tag: punted for R1bis, frame untouched.
    let mut frame = from_peer(60);
    frame[54..62].copy_from_slice(&shim_payload(17, 0x7fff_0000_0001));
    let (v, out) = ring_run(q, &mut s, PROV_A, &frame);
    assert_eq!(
        v,
        Verdict::Punt(PuntReason::UnknownTag(tag(0x7fff_0000_0001)))
    );
    assert_frame(&out, &frame);

    // No context: punted untouched.
    let mut t = Site::new();
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    let (v, out) = ring_run(q, &mut t, INSIDE, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::NoContext));
    assert_frame(&out, &frame);

    // Counters: 4 cases x 2 passes, plus nothing dropped; every mbuf went back to the pool.
    let st = q.stats();
    assert_eq!((st.rx_packets, st.tx_packets, st.tx_dropped), (8, 8, 0));
    assert_eq!(pool.available(), before);
    assert_eq!(port.link_up(), Some(true));
    let dev = port.device_stats().unwrap();
    assert_eq!(dev.tx_packets, 8);
    drop(qs);
    drop(port);
}

/// `net_null` with two queue pairs: the RSS configuration path (masked by what the device
/// supports), one `DpdkQueue` per worker, each receiving from its own queue.
fn null_multi_queue(pool: &Arc<Mempool>) {
    let mut cfg = DpdkPortConfig::new("net_null0");
    cfg.queues = 2;
    cfg.rx_desc = 64;
    cfg.tx_desc = 64;
    let (port, mut qs) = DpdkPort::start(&cfg, pool).unwrap();
    assert_eq!(port.queues(), 2);
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[1].id(), (port.id(), 1));
    for q in &mut qs {
        // net_null makes up frames on receive: every queue delivers a full burst.
        let got = rx_n(q, BURST);
        assert!(got.iter().all(|m| m.len() == 64));
        let mut tx = got;
        assert_eq!(q.tx_burst(&mut tx), BURST);
        assert_eq!(q.stats().tx_packets, BURST as u64);
    }
    assert!(!port.xstats().unwrap().is_empty());
    drop(qs);
    drop(port);
    // Unknown device names and zero queues are refused with an actionable error.
    assert_eq!(
        DpdkPort::start(&DpdkPortConfig::new("net_nonexistent9"), pool).unwrap_err(),
        DpdkError::NoPort("net_nonexistent9".into())
    );
    let mut zero = DpdkPortConfig::new("net_null0");
    zero.queues = 0;
    assert!(matches!(
        DpdkPort::start(&zero, pool),
        Err(DpdkError::Config(_))
    ));
}

fn pcap_golden(pool: &Arc<Mempool>, dir: &FsPath) {
    let (p0, mut q0) = DpdkPort::start(&DpdkPortConfig::new("net_pcap0"), pool).unwrap();
    let (p1, mut q1) = DpdkPort::start(&DpdkPortConfig::new("net_pcap1"), pool).unwrap();
    let mut s = Site::new();
    s.add_context();
    for (rx, tx, port) in [(0usize, 1usize, INSIDE), (1, 0, PROV_A)] {
        let mut bufs = if rx == 0 {
            rx_n(&mut q0[0], 1)
        } else {
            rx_n(&mut q1[0], 1)
        };
        let mut v = [Verdict::Forward(PortId(99))];
        s.fp.process_burst(port, &mut bufs, &mut v);
        let want = if rx == 0 { PROV_A } else { INSIDE };
        assert_eq!(v[0], Verdict::Forward(want));
        let q = if tx == 0 { &mut q0[0] } else { &mut q1[0] };
        assert_eq!(q.tx_burst(&mut bufs), 1);
    }
    // Stopping the ports closes the capture files.
    drop((q0, q1, p0, p1));

    let out_prov = tshark::dissect(&dir.join("out_prov.pcap")).unwrap();
    assert_eq!(out_prov.len(), 1);
    assert_eq!(out_prov[0].src, Some(host_loc_a()));
    assert_eq!(out_prov[0].dst, Some(peer_loc()));
    assert_eq!(out_prov[0].payload_tag, Some(PEER_TAG));
    assert!(
        out_prov[0].protocols.contains("udp"),
        "{}",
        out_prov[0].protocols
    );

    let out_inside = tshark::dissect(&dir.join("out_inside.pcap")).unwrap();
    assert_eq!(out_inside.len(), 1);
    assert_eq!(out_inside[0].src, Some(peer_ulid()));
    assert_eq!(out_inside[0].dst, Some(host_ulid()));
    assert_eq!(out_inside[0].payload_tag, None);
    assert!(!out_inside[0].protocols.contains("shim6"));
    assert!(out_inside[0].protocols.contains("udp"));
}

#[test]
fn dpdk_backend_on_virtual_devices() {
    let dir: PathBuf = std::env::temp_dir().join(format!("pshim6-dpdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_pcap(
        &dir.join("in_inside.pcap"),
        &[inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD)],
    );
    write_pcap(&dir.join("in_prov.pcap"), &[from_peer(60)]);
    let d = dir.display();
    let args = vec![
        "dpdk_backend".to_string(),
        "-l".into(),
        "0".into(),
        "--no-huge".into(),
        "-m".into(),
        "256".into(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "--log-level=warning".into(),
        "--vdev=net_ring0".into(),
        "--vdev=net_null0".into(),
        format!("--vdev=net_pcap0,rx_pcap={d}/in_inside.pcap,tx_pcap={d}/out_inside.pcap"),
        format!("--vdev=net_pcap1,rx_pcap={d}/in_prov.pcap,tx_pcap={d}/out_prov.pcap"),
    ];
    let cpus = allowed_cpus();
    init_eal(&args).unwrap();
    // `-l 0` pins the calling thread to core 0; init_eal gives it its mask back, so threads
    // started later (unpinned workers, the slow path) are not all stuck on one core.
    assert_eq!(
        allowed_cpus(),
        cpus,
        "EAL init changed the caller's CPU mask"
    );
    assert!(!cpus.is_empty());
    let spawned = std::thread::spawn(allowed_cpus).join().unwrap();
    assert_eq!(spawned, cpus);
    // A second call returns the first outcome instead of re-initialising.
    init_eal(&["ignored"]).unwrap();
    let pool = Arc::new(Mempool::new("test_pool", 2047, 2048, None).unwrap());

    ring_cases(&pool);
    null_multi_queue(&pool);
    pcap_golden(&pool, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
