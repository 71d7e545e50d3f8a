//! "No allocation per packet": the worker loop, with every kind of traffic (SHIM6 both ways,
//! NATv6 both ways, punts, a full punt queue, injects), allocates nothing once running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use dataplane::backend::mem::{self, MemConfig, MemQueue};
use dataplane::backend::BufPool;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::io::PortQueue;
use dataplane::punt::SlowPathLink;
use dataplane::worker::{Worker, WorkerConfig};
use fastpath_common::*;

struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches
// only const-initialised thread-local `Cell`s, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(Cell::get))
}

#[test]
fn worker_loop_does_not_allocate() {
    let mut site = Site::new();
    site.add_context();
    let Site {
        table: _table,
        nbr: _nbr,
        fp,
        status,
        ..
    } = site;
    status.set_up(2, false);
    let pool = Arc::new(BufPool::new(512, 2048));
    let mut far: Vec<MemQueue> = Vec::new();
    let mut near = Vec::new();
    for port in [INSIDE, PROV_A, PROV_B] {
        let (f, n) = mem::pair(&pool, &MemConfig::new(1)).unwrap();
        far.push(f.into_queues().pop().unwrap());
        near.push((port, n.into_queues().pop().unwrap()));
    }
    // A punt queue of 4: most control frames hit the full queue (drop + count).
    let link = Arc::new(SlowPathLink::new(4, 4));
    let cfg = WorkerConfig {
        index: 0,
        core: None,
        burst: 32,
        epoch: Instant::now(),
    };
    let mut worker = Worker::new(cfg, near, fp, link.clone());

    let u = udp(peer_ulid(), host_ulid(), 1, 2, b"in");
    let shim_in = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len() + 8, 140, 60, peer_loc(), host_loc_a()),
        &shim_payload(17, LOCAL_TAG),
        &u,
    ]);
    let n = udp(internet_host(), host_loc_a(), 1, 2, b"nat in");
    let nat_in = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(n.len(), 17, 60, internet_host(), host_loc_a()),
        &n,
    ]);
    let control = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(16, 140, 64, peer_loc(), host_loc_a()),
        &[
            0x3b, 1, 1, 0, 0x5b, 0x0e, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xa1, 0xb2, 0xc3, 0xd4,
        ],
    ]);
    let inside = [
        inside_udp(host_ulid(), peer_ulid(), 64, b"egress"),
        inside_udp(host_ulid(), internet_host(), 64, b"nat out"),
        inside_udp(host_ulid(), a("fc00:7::1"), 64, b"no context"),
    ];
    let outside = [shim_in, nat_in, control];
    let inject = cat(&[&eth(ROUTER_A_MAC, PROV_A_MAC), &[0x60; 40]]);

    let mut out: Vec<HeapBuf> = Vec::with_capacity(64);
    let mut batch: Vec<HeapBuf> = Vec::with_capacity(64);
    let mut total_allocs = 0;
    let rounds = 2000;
    for round in 0..rounds {
        for (port, frames) in [(0usize, &inside), (1, &outside)] {
            for f in frames.iter() {
                let mut b = pool.alloc().unwrap();
                b.reset_from(f).unwrap();
                batch.push(b);
            }
            far[port].send_until_full(&mut batch);
            assert!(batch.is_empty());
        }
        let _ = link.inject(PROV_A, &inject);
        let (_, allocs) = counted(|| worker.poll());
        // The first rounds may size lazily-initialised state (thread-locals of the std
        // library); from then on nothing allocates.
        if round >= 10 {
            total_allocs += allocs;
        }
        for q in &mut far {
            q.rx_burst(&mut out, 64);
            for b in out.drain(..) {
                q.free(b);
            }
        }
        link.drain_punts(64, |_| {});
    }
    assert_eq!(total_allocs, 0, "allocations in the steady state");
    let st = worker.stats();
    assert_eq!(st.fast_path.packets, rounds * 6);
    assert_eq!(st.forwarded(), rounds * 4);
    assert_eq!(st.injected, rounds);
    assert_eq!(pool.available(), pool.allocated());
}
