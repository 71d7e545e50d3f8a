//! The full worker loop over in-memory cables: frames in on one port, translated frames out
//! on another, punts on the slow-path queue (and counted drops when it is full), injected
//! frames sent, bursts decided exactly like single packets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::backend::mem::{self, MemConfig, MemQueue};
use dataplane::backend::BufPool;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::fastpath::{FastPath, PuntReason, Verdict};
use dataplane::io::{PortId, PortQueue};
use dataplane::punt::{PuntLane, SlowPathLink};
use dataplane::worker::{Worker, WorkerConfig};
use fastpath_common::*;

/// A worker on three cables (inside, provider A, provider B); the test holds the far ends.
struct Rig {
    site_table: table::TableWriter,
    _nbr: dataplane::neighbor::NeighborWriter,
    pool: Arc<BufPool>,
    far: Vec<MemQueue>,
    link: Arc<SlowPathLink>,
    worker: Worker<MemQueue, FastPath>,
}

impl Rig {
    fn new(punt_capacity: usize) -> Self {
        let Site { table, nbr, fp, .. } = Site::new();
        let pool = Arc::new(BufPool::new(1024, 2048));
        let mut far = Vec::new();
        let mut near = Vec::new();
        for port in [INSIDE, PROV_A, PROV_B] {
            let (f, n) = mem::pair(&pool, &MemConfig::new(1)).unwrap();
            far.push(f.into_queues().pop().unwrap());
            near.push((port, n.into_queues().pop().unwrap()));
        }
        let link = Arc::new(SlowPathLink::new(punt_capacity, 8));
        let cfg = WorkerConfig {
            index: 0,
            core: None,
            burst: 32,
            epoch: Instant::now(),
        };
        let worker = Worker::new(cfg, near, fp, link.clone());
        Rig {
            site_table: table,
            _nbr: nbr,
            pool,
            far,
            link,
            worker,
        }
    }

    fn send(&mut self, port: PortId, frames: &[Vec<u8>]) {
        let mut bufs: Vec<HeapBuf> = frames
            .iter()
            .map(|f| {
                let mut b = self.pool.alloc().unwrap();
                b.reset_from(f).unwrap();
                b
            })
            .collect();
        let n = bufs.len();
        assert_eq!(self.far[usize::from(port.0)].send_until_full(&mut bufs), n);
    }

    fn recv(&mut self, port: PortId) -> Vec<Vec<u8>> {
        let q = &mut self.far[usize::from(port.0)];
        let mut bufs = Vec::new();
        while q.rx_burst(&mut bufs, 32) > 0 {}
        let out = bufs.iter().map(|b| b.as_ref().to_vec()).collect();
        for b in bufs {
            q.free(b);
        }
        out
    }
}

fn egress_frame() -> Vec<u8> {
    inside_udp(host_ulid(), peer_ulid(), 64, b"through the worker")
}

fn expected_egress() -> Vec<u8> {
    let u = udp(host_ulid(), peer_ulid(), 5353, 7777, b"through the worker");
    cat(&[
        &eth(ROUTER_A_MAC, PROV_A_MAC),
        &ipv6(u.len() + 8, 140, 63, host_loc_a(), peer_loc()),
        &shim_payload(17, PEER_TAG),
        &u,
    ])
}

fn i1_frame() -> Vec<u8> {
    let i1: [u8; 16] = [
        0x3b, 0x01, 0x01, 0x00, 0x5b, 0x0e, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xa1, 0xb2, 0xc3,
        0xd4,
    ];
    cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(16, 140, 64, peer_loc(), host_loc_a()),
        &i1,
    ])
}

fn insert_context(t: &mut table::TableWriter) {
    t.insert(table::NewEntry {
        local_tag: tag(LOCAL_TAG),
        peer_tag: tag(PEER_TAG),
        local_ulid: wire::Ulid(host_ulid()),
        peer_ulid: wire::Ulid(peer_ulid()),
        pair: wire::LocatorPair {
            local: wire::Locator(host_loc_a()),
            peer: wire::Locator(peer_loc()),
        },
        tx_provider: 1,
        flags: table::flags::ESTABLISHED,
    })
    .unwrap();
}

#[test]
fn worker_loop_translates_punts_and_injects() {
    let mut rig = Rig::new(64);
    insert_context(&mut rig.site_table);
    rig.send(INSIDE, &[egress_frame(), egress_frame()]);
    rig.send(PROV_A, &[i1_frame()]);
    assert!(rig.worker.poll() >= 3);
    let out = rig.recv(PROV_A);
    assert_eq!(out.len(), 2);
    for f in &out {
        assert_frame(f, &expected_egress());
    }
    // The I1 went to the slow path as received, with its port and reason.
    let p = rig.link.pop_punt().unwrap();
    assert_eq!((p.reason, p.port), (PuntReason::Control, PROV_A));
    assert_frame(p.frame.as_slice(), &i1_frame());
    rig.link.recycle_punt(p.frame);
    // The slow path answers through the worker.
    let reply = cat(&[&eth(ROUTER_A_MAC, PROV_A_MAC), &[0x60; 40]]);
    rig.link.inject(PROV_A, &reply).unwrap();
    rig.worker.poll();
    assert_eq!(rig.recv(PROV_A), vec![reply]);
    let st = rig.worker.stats();
    assert_eq!(st.fast_path.packets, 3);
    assert_eq!(st.forwarded(), 2);
    assert_eq!(st.fast_path.punted[PuntReason::Control.index()], 1);
    assert_eq!(st.injected, 1);
    assert!(st.heartbeat >= 2);
    // Nothing leaked: every buffer is back in the pool.
    assert_eq!(rig.pool.available(), rig.pool.allocated());
}

#[test]
fn full_punt_queue_drops_and_counts() {
    let mut rig = Rig::new(2);
    rig.send(PROV_A, &vec![i1_frame(); 5]);
    rig.worker.poll();
    let st = rig.worker.stats();
    assert_eq!(st.fast_path.punted[PuntReason::Control.index()], 5);
    assert_eq!(st.punt_dropped[PuntReason::Control.index()], 3);
    assert_eq!(st.punt_dropped_lane(PuntLane::Control), 3);
    assert_eq!(st.punt_dropped_lane(PuntLane::Data), 0);
    assert_eq!(rig.link.punt_len(), 2);
    // Once the slow path drains, punting works again.
    assert_eq!(
        rig.link
            .drain_punts(10, |p| assert_eq!(p.reason, PuntReason::Control)),
        2
    );
    rig.send(PROV_A, &[i1_frame()]);
    rig.worker.poll();
    assert_eq!(rig.link.punt_len(), 1);
    assert_eq!(
        rig.worker.stats().punt_dropped[PuntReason::Control.index()],
        3
    );
    assert_eq!(rig.pool.available(), rig.pool.allocated());
}

#[test]
fn spawned_worker_runs_until_stopped() {
    let mut rig = Rig::new(64);
    insert_context(&mut rig.site_table);
    let Rig {
        worker,
        mut far,
        pool,
        site_table,
        _nbr,
        link,
    } = rig;
    let handle = worker.spawn().unwrap();
    let total = 300;
    let mut sent = 0;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < total && Instant::now() < deadline {
        if sent < total {
            let mut b = pool.alloc().unwrap();
            b.reset_from(&egress_frame()).unwrap();
            let mut v = vec![b];
            sent += far[0].send_until_full(&mut v);
            pool.free_bulk(&mut v);
        }
        let mut bufs = Vec::new();
        far[1].rx_burst(&mut bufs, 32);
        for b in bufs {
            got.push(b.as_ref().to_vec());
            pool.free(b);
        }
    }
    assert_eq!(got.len(), total);
    assert!(got.iter().all(|f| f == &expected_egress()));
    // An idle worker still beats (the box may be busy: allow it a few seconds to run).
    let hb = handle.heartbeat();
    let until = Instant::now() + Duration::from_secs(5);
    while handle.heartbeat() == hb && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(handle.heartbeat() > hb, "idle worker stopped beating");
    // Published every few iterations, idle or not.
    while handle.stats().forwarded() < total as u64 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(handle.stats().forwarded(), total as u64);
    let w = handle.stop().unwrap();
    assert_eq!(w.stats().forwarded(), total as u64);
    assert!(!w.stats().pinned);
    drop((site_table, link));
}

#[test]
fn burst_results_match_single_packets() {
    // 32 inside frames of every kind in one burst, against the same frames one by one.
    let kinds = [
        egress_frame(),
        inside_udp(host_ulid(), a("fc00:5::1"), 64, b"no context yet"),
        inside_udp(host_ulid(), internet_host(), 64, b"natv6"),
        inside_udp(host_ulid(), peer_ulid(), 1, b"hop limit"),
        inside_udp(a("2001:db8::bad"), peer_ulid(), 64, b"bad source"),
        egress_frame()[..40].to_vec(),
        inside_udp(a("fe80::5"), a("ff02::1:2"), 1, b"dhcp"),
    ];
    let frames: Vec<Vec<u8>> = (0..32).map(|i| kinds[i % kinds.len()].clone()).collect();
    let mut single = Site::new();
    single.add_context();
    let mut one_by_one = Vec::new();
    for f in &frames {
        one_by_one.push(single.run(INSIDE, f));
    }
    let mut batch = Site::new();
    batch.add_context();
    let mut bufs: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::from_slice(f)).collect();
    let mut verdicts = [Verdict::Forward(PortId(99)); 32];
    batch.fp.process_burst(INSIDE, &mut bufs, &mut verdicts);
    for (i, ((v, out), b)) in one_by_one.iter().zip(&bufs).enumerate() {
        assert_eq!((i, *v), (i, verdicts[i]));
        assert_eq!(out.as_slice(), b.as_ref(), "packet {i}");
    }
    assert_eq!(single.fp.counters(), batch.fp.counters());
    // Bursts longer than 32 are processed in chunks.
    let mut bufs: Vec<HeapBuf> = (0..70)
        .map(|_| HeapBuf::from_slice(&egress_frame()))
        .collect();
    let mut verdicts = vec![Verdict::Forward(PortId(99)); 70];
    batch.fp.process_burst(INSIDE, &mut bufs, &mut verdicts);
    assert!(verdicts.iter().all(|v| *v == Verdict::Forward(PROV_A)));
}
