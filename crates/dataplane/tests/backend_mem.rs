//! In-memory cable backend: order, full-ring drops, steering, link cuts, the generator/sink
//! pair, and that the pool recycles buffers without a single allocation per packet.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread;

use dataplane::backend::mem::{self, Generator, MemConfig, Refill, Sink, Steering};
use dataplane::backend::BufPool;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::io::{PortQueue, BURST};

/// Counts heap allocations made by the current thread while counting is on, so a test can
/// prove a loop allocates nothing without being disturbed by tests on other threads.
struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocs_on_this_thread() -> u64 {
    ALLOCS.with(Cell::get)
}

/// An Ethernet/IPv6 frame whose source address encodes `flow` and payload carries `seq`.
fn frame(flow: u16, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&8u16.to_be_bytes());
    f[20] = 59;
    f[21] = 64;
    f[22..24].copy_from_slice(&[0x20, 0x01]);
    f[36..38].copy_from_slice(&flow.to_be_bytes());
    f[38..40].copy_from_slice(&[0x20, 0x01]);
    f[53] = 1;
    f[54..58].copy_from_slice(&seq.to_be_bytes());
    f
}

fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes(f[54..58].try_into().unwrap())
}

fn flow_of(f: &[u8]) -> u16 {
    u16::from_be_bytes(f[36..38].try_into().unwrap())
}

fn send(q: &mut impl PortQueue<Buf = HeapBuf>, frames: &[Vec<u8>]) -> usize {
    let mut burst = Vec::with_capacity(frames.len());
    for f in frames {
        let mut b = q.alloc().expect("pool has room");
        b.reset_from(f).unwrap();
        burst.push(b);
    }
    q.tx_burst(&mut burst)
}

fn recv_all(q: &mut impl PortQueue<Buf = HeapBuf>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut burst = Vec::with_capacity(BURST);
    while q.rx_burst(&mut burst, BURST) > 0 {
        for b in burst.drain(..) {
            out.push(b.as_ref().to_vec());
            q.free(b);
        }
    }
    out
}

#[test]
fn frames_arrive_in_order_and_intact_both_ways() {
    let pool = Arc::new(BufPool::new(256, 2048));
    let (a, b) = mem::pair(&pool, &MemConfig::new(1)).unwrap();
    let (mut a, mut b) = (a.into_queues().remove(0), b.into_queues().remove(0));
    let sent: Vec<Vec<u8>> = (0..1000).map(|i| frame(7, i)).collect();
    let mut got = Vec::new();
    for chunk in sent.chunks(BURST) {
        assert_eq!(send(&mut a, chunk), chunk.len());
        got.extend(recv_all(&mut b));
    }
    assert_eq!(got, sent);
    let back: Vec<Vec<u8>> = (0..10).map(|i| frame(9, 1000 + i)).collect();
    assert_eq!(send(&mut b, &back), 10);
    assert_eq!(recv_all(&mut a), back);
    assert_eq!(a.stats().tx_packets, 1000);
    assert_eq!(a.stats().tx_bytes, 1000 * 62);
    assert_eq!(b.stats().rx_packets, 1000);
    assert_eq!(a.stats().rx_packets, 10);
    assert_eq!(pool.available(), 256);
}

#[test]
fn full_ring_drops_and_counts_then_recovers() {
    let pool = Arc::new(BufPool::new(64, 2048));
    let cfg = MemConfig {
        ring_size: 8,
        ..MemConfig::new(1)
    };
    let (a, b) = mem::pair(&pool, &cfg).unwrap();
    let (mut a, mut b) = (a.into_queues().remove(0), b.into_queues().remove(0));
    let frames: Vec<Vec<u8>> = (0..20).map(|i| frame(1, i)).collect();
    assert_eq!(send(&mut a, &frames), 8);
    let s = a.stats();
    assert_eq!((s.tx_packets, s.tx_dropped), (8, 12));
    // Dropped buffers went straight back to the pool; the 8 queued ones are in the ring.
    assert_eq!(pool.available(), 64 - 8);
    assert_eq!(b.rx_pending(), 8);
    assert_eq!(recv_all(&mut b), frames[..8].to_vec());
    assert_eq!(send(&mut a, &frames[8..12]), 4);
    assert_eq!(recv_all(&mut b), frames[8..12].to_vec());
    assert_eq!(pool.available(), 64);
    assert_eq!(pool.overflows(), 0);
}

#[test]
fn send_until_full_keeps_the_rest_in_order() {
    let pool = Arc::new(BufPool::new(64, 2048));
    let cfg = MemConfig {
        ring_size: 4,
        ..MemConfig::new(1)
    };
    let (a, b) = mem::pair(&pool, &cfg).unwrap();
    let (mut a, mut b) = (a.into_queues().remove(0), b.into_queues().remove(0));
    let mut burst: Vec<HeapBuf> = (0..10).map(|i| HeapBuf::from_slice(&frame(1, i))).collect();
    assert_eq!(a.send_until_full(&mut burst), 4);
    assert_eq!(
        burst.iter().map(|b| seq_of(b.as_ref())).collect::<Vec<_>>(),
        (4..10).collect::<Vec<_>>()
    );
    assert_eq!(a.stats().tx_dropped, 0);
    let got = recv_all(&mut b);
    assert_eq!(
        got.iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(a.send_until_full(&mut burst), 4);
    assert_eq!(burst.len(), 2);
}

#[test]
fn flow_hash_spreads_flows_and_keeps_each_in_order_on_one_queue() {
    let pool = Arc::new(BufPool::new(4096, 256));
    let cfg = MemConfig {
        a_queues: 1,
        b_queues: 4,
        ..MemConfig::new(1)
    };
    let (a, b) = mem::pair(&pool, &cfg).unwrap();
    let mut a = a.into_queues().remove(0);
    let mut bq = b.into_queues();
    for seq in 0..16 {
        let frames: Vec<Vec<u8>> = (0..64).map(|flow| frame(flow, seq)).collect();
        for chunk in frames.chunks(BURST) {
            assert_eq!(send(&mut a, chunk), chunk.len());
        }
    }
    let mut queue_of_flow: HashMap<u16, usize> = HashMap::new();
    let mut last_seq: HashMap<u16, u32> = HashMap::new();
    let mut total = 0;
    for (i, q) in bq.iter_mut().enumerate() {
        let got = recv_all(q);
        assert!(!got.is_empty(), "queue {i} got nothing from 64 flows");
        for f in got {
            let flow = flow_of(&f);
            assert_eq!(
                *queue_of_flow.entry(flow).or_insert(i),
                i,
                "flow {flow} split"
            );
            let seq = seq_of(&f);
            if let Some(prev) = last_seq.insert(flow, seq) {
                assert_eq!(seq, prev + 1, "flow {flow} reordered");
            }
            total += 1;
        }
    }
    assert_eq!(total, 64 * 16);
}

#[test]
fn same_index_and_round_robin_steering() {
    let pool = Arc::new(BufPool::new(1024, 256));
    let cfg = MemConfig {
        steering: Steering::SameIndex,
        ..MemConfig::new(3)
    };
    let (a, b) = mem::pair(&pool, &cfg).unwrap();
    let mut aq = a.into_queues();
    let mut bq = b.into_queues();
    for (i, q) in aq.iter_mut().enumerate() {
        assert_eq!(send(q, &[frame(i as u16, 0), frame(99, 1)]), 2);
    }
    for (i, q) in bq.iter_mut().enumerate() {
        let got = recv_all(q);
        assert_eq!(got, vec![frame(i as u16, 0), frame(99, 1)]);
    }

    let cfg = MemConfig {
        a_queues: 1,
        b_queues: 2,
        steering: Steering::RoundRobin,
        ..MemConfig::new(1)
    };
    let (a, b) = mem::pair(&pool, &cfg).unwrap();
    let mut a = a.into_queues().remove(0);
    let mut bq = b.into_queues();
    for burst in 0..4u32 {
        assert_eq!(send(&mut a, &[frame(5, burst)]), 1);
    }
    let seqs = |q: &mut mem::MemQueue| recv_all(q).iter().map(|f| seq_of(f)).collect::<Vec<_>>();
    assert_eq!(seqs(&mut bq[0]), vec![0, 2]);
    assert_eq!(seqs(&mut bq[1]), vec![1, 3]);
}

#[test]
fn cut_link_drops_and_reports_down() {
    let pool = Arc::new(BufPool::new(64, 256));
    let (a, b) = mem::pair(&pool, &MemConfig::new(1)).unwrap();
    let link = a.link().clone();
    let (mut a, mut b) = (a.into_queues().remove(0), b.into_queues().remove(0));
    assert_eq!(a.link_up(), Some(true));
    link.set_up(false);
    assert_eq!(a.link_up(), Some(false));
    assert_eq!(b.link_up(), Some(false));
    assert_eq!(send(&mut a, &[frame(1, 1), frame(1, 2)]), 0);
    assert_eq!(a.stats().tx_dropped, 2);
    assert!(recv_all(&mut b).is_empty());
    assert_eq!(pool.available(), 64);
    link.set_up(true);
    assert_eq!(send(&mut a, &[frame(1, 3)]), 1);
    assert_eq!(recv_all(&mut b), vec![frame(1, 3)]);
}

#[test]
fn bad_configs_are_refused() {
    let pool = Arc::new(BufPool::new(4, 256));
    assert!(mem::pair(&pool, &MemConfig::new(0)).is_err());
    assert!(mem::pair(
        &pool,
        &MemConfig {
            ring_size: 0,
            ..MemConfig::new(1)
        }
    )
    .is_err());
    let (a, _b) = mem::pair(&pool, &MemConfig::new(1)).unwrap();
    assert!(Generator::new(a, vec![], Refill::Rewrite).is_err());
    let (a, _b) = mem::pair(&pool, &MemConfig::new(1)).unwrap();
    assert!(Generator::new(a, vec![vec![0; 257]], Refill::Rewrite).is_err());
}

/// Generator -> forwarder (a worker's rx/tx loop) -> sink, one thread, one million frames:
/// after warm-up nothing allocates, the pool never grows and every buffer comes back.
#[test]
fn pool_recycles_a_million_packets_without_allocating() {
    const PACKETS: u64 = 1_000_000;
    let pool = Arc::new(BufPool::new(512, 256));
    let cfg = MemConfig {
        ring_size: 128,
        ..MemConfig::new(1)
    };
    let (gen_end, worker_in) = mem::pair(&pool, &cfg).unwrap();
    let (worker_out, sink_end) = mem::pair(&pool, &cfg).unwrap();
    let templates: Vec<Vec<u8>> = (0..8).map(|flow| frame(flow, flow.into())).collect();
    let mut generator = Generator::new(gen_end, templates.clone(), Refill::Rewrite).unwrap();
    let mut sink = Sink::new(sink_end);
    let mut rx = worker_in.into_queues().remove(0);
    let mut tx = worker_out.into_queues().remove(0);
    let mut burst = Vec::with_capacity(BURST);
    let mut mismatches = 0u64;

    let before = allocs_on_this_thread();
    while sink.packets() < PACKETS {
        generator.push_burst();
        rx.rx_burst(&mut burst, BURST);
        // A worker that rewrites frames in place: the generator must restore them.
        for b in &mut burst {
            b.as_mut()[58..62].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        }
        tx.tx_burst(&mut burst);
        sink.drain_with(|f| {
            if f[..58] != templates[usize::from(flow_of(f))][..58] {
                mismatches += 1;
            }
        });
    }
    let allocs = allocs_on_this_thread() - before;

    assert_eq!(allocs, 0, "allocations in the packet loop");
    assert_eq!(
        mismatches, 0,
        "generator offered a frame that was not a fresh template"
    );
    assert_eq!(pool.allocated(), 512);
    assert_eq!(pool.overflows(), 0);
    assert_eq!(tx.stats().tx_dropped, 0);
    assert_eq!(sink.packets(), generator.sent());
    assert_eq!(rx.stats().rx_packets, generator.sent());
    // Flush what is still in flight: then every buffer is back in the pool or held by the
    // generator for its next burst.
    while rx.rx_burst(&mut burst, BURST) > 0 || sink.drain() > 0 {
        tx.tx_burst(&mut burst);
    }
    assert_eq!(sink.packets(), generator.sent());
    assert_eq!(pool.available() + generator.pending(), 512);
}

#[test]
fn keep_mode_offers_prebuilt_frames_untouched() {
    let pool = Arc::new(BufPool::new(64, 256));
    let (gen_end, sink_end) = mem::pair(
        &pool,
        &MemConfig {
            ring_size: 16,
            ..MemConfig::new(1)
        },
    )
    .unwrap();
    let templates = vec![frame(1, 1), frame(2, 2), frame(3, 3)];
    let mut generator = Generator::new(gen_end, templates.clone(), Refill::Keep).unwrap();
    let mut sink = Sink::new(sink_end);
    let mut seen = [0u64; 3];
    for _ in 0..1000 {
        generator.push_burst();
        sink.drain_with(|f| {
            let i = templates
                .iter()
                .position(|t| t == f)
                .expect("frame is one of the templates");
            seen[i] += 1;
        });
    }
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    assert_eq!(sink.packets(), generator.sent());
    assert!(sink.packets() >= 16 * 1000 / 2);
}

/// Generator, two workers and a sink on their own threads, as the pipeline benchmark runs
/// them: every frame offered is either delivered or counted as dropped, none is lost.
#[test]
fn threads_conserve_every_frame() {
    const PACKETS: u64 = 200_000;
    let pool = Arc::new(BufPool::new(2048, 256));
    let cfg_in = MemConfig {
        a_queues: 1,
        b_queues: 2,
        ring_size: 256,
        steering: Steering::RoundRobin,
    };
    let cfg_out = MemConfig {
        a_queues: 2,
        b_queues: 1,
        ring_size: 256,
        steering: Steering::FlowHash,
    };
    let (gen_end, worker_in) = mem::pair(&pool, &cfg_in).unwrap();
    let (worker_out, sink_end) = mem::pair(&pool, &cfg_out).unwrap();
    let templates: Vec<Vec<u8>> = (0..16).map(|flow| frame(flow, 0)).collect();
    let mut generator = Generator::new(gen_end, templates, Refill::Rewrite).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let workers: Vec<_> = worker_in
        .into_queues()
        .into_iter()
        .zip(worker_out.into_queues())
        .map(|(mut rx, mut tx)| {
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut burst = Vec::with_capacity(BURST);
                loop {
                    let n = rx.rx_burst(&mut burst, BURST);
                    tx.tx_burst(&mut burst);
                    if n == 0 {
                        if done.load(std::sync::atomic::Ordering::Acquire) && rx.rx_pending() == 0 {
                            break;
                        }
                        thread::yield_now();
                    }
                }
                (rx.stats(), tx.stats())
            })
        })
        .collect();
    // The sink stops only once every worker has exited and its ring is empty: under load a
    // worker can still be pushing its last bursts long after the generator finished.
    let workers_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sink_done = Arc::clone(&workers_done);
    let sink = thread::spawn(move || {
        let mut sink = Sink::new(sink_end);
        loop {
            if sink.drain() == 0 {
                if sink_done.load(std::sync::atomic::Ordering::Acquire) && sink.drain() == 0 {
                    break;
                }
                thread::yield_now();
            }
        }
        sink.packets()
    });
    while generator.sent() < PACKETS {
        if generator.push_burst() == 0 {
            thread::yield_now();
        }
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let stats: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    workers_done.store(true, std::sync::atomic::Ordering::Release);
    let delivered = sink.join().unwrap();
    let rx: u64 = stats.iter().map(|(r, _)| r.rx_packets).sum();
    let dropped: u64 = stats.iter().map(|(_, t)| t.tx_dropped).sum();
    assert_eq!(rx, generator.sent());
    assert!(
        stats.iter().all(|(r, _)| r.rx_packets > 0),
        "round robin fed both workers"
    );
    assert_eq!(delivered + dropped, generator.sent());
    assert_eq!(pool.overflows(), 0);
}
