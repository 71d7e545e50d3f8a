//! In-memory "cables": bounded lock-free rings of [`HeapBuf`] between two [`MemPort`]s, so
//! pipelines can be wired back to back (two sites over in-memory provider links), workers can
//! be tested without root, and benchmarks measure the worker and not the kernel.
//!
//! [`pair`] makes both ends of one cable. Each end has N queues (one per worker); what a queue
//! of one end transmits lands in one receive ring of the other end, chosen by a [`Steering`]
//! rule (by default a hash of the IPv6 addresses, like a NIC's RSS). Rings never block: a full
//! ring drops the frame, returns its buffer to the pool and counts it in the sender's
//! [`QueueStats::tx_dropped`]. Buffers move, they are never copied, and come from a shared
//! [`BufPool`], so after start-up nothing allocates.
//!
//! [`Generator`] and [`Sink`] (in `traffic`) drive a cable from a benchmark: pre-built packets
//! recycled in place, so the traffic threads cost little next to the worker under test.

mod traffic;

pub use traffic::{Generator, Refill, Sink};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::ring::BurstRing;
use super::{BackendError, BufPool};
use crate::buf::HeapBuf;
use crate::io::{PortQueue, QueueStats, BURST};

/// Default number of frames one receive ring holds.
pub const DEFAULT_RING_SIZE: usize = 1024;

/// How a transmitting queue picks the peer's receive ring of each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Steering {
    /// A hash of the IPv6 source and destination addresses of an Ethernet/IPv6 frame (the
    /// first 64 bytes of anything else), modulo the peer's queue count: what a NIC's RSS does.
    /// Keeps each flow in order on one ring.
    #[default]
    FlowHash,
    /// Queue `i` sends to ring `i mod peer_queues`: one ring per sender, so with equal queue
    /// counts every ring has a single producer.
    SameIndex,
    /// Each burst goes to the next ring in turn (spreads a single generator across workers;
    /// reorders flows across rings).
    RoundRobin,
}

/// Shape of one cable: queues at each end, ring size and steering rule (both directions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemConfig {
    /// Queues (workers) at end A.
    pub a_queues: usize,
    /// Queues (workers) at end B.
    pub b_queues: usize,
    /// Frames each receive ring holds.
    pub ring_size: usize,
    /// How transmitted frames are spread over the peer's receive rings.
    pub steering: Steering,
}

impl MemConfig {
    /// `queues` queues at each end, rings of [`DEFAULT_RING_SIZE`], [`Steering::FlowHash`].
    pub fn new(queues: usize) -> Self {
        Self {
            a_queues: queues,
            b_queues: queues,
            ring_size: DEFAULT_RING_SIZE,
            steering: Steering::FlowHash,
        }
    }
}

impl Default for MemConfig {
    fn default() -> Self {
        Self::new(1)
    }
}

/// The carrier state of one cable, shared by both ends and the test that cuts it.
#[derive(Debug, Clone)]
pub struct MemLink {
    up: Arc<AtomicBool>,
}

impl MemLink {
    /// Plugs (`true`) or cuts (`false`) the cable. While cut, every transmitted frame is
    /// dropped and counted, and both ends report `link_up() == Some(false)`.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Whether the cable carries frames.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// The receive rings of one end of a cable, one per queue.
type Rings = Arc<[BurstRing<HeapBuf>]>;

/// One end of an in-memory cable: its queues (one per worker) and the cable's link state.
#[derive(Debug)]
pub struct MemPort {
    queues: Vec<MemQueue>,
    link: MemLink,
}

impl MemPort {
    /// Number of queues at this end.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The cable's carrier state (cut or plug it from a test).
    pub fn link(&self) -> &MemLink {
        &self.link
    }

    /// Queue `i`, if it exists.
    pub fn queue_mut(&mut self, i: usize) -> Option<&mut MemQueue> {
        self.queues.get_mut(i)
    }

    /// The queues, to hand one to each worker thread.
    pub fn into_queues(self) -> Vec<MemQueue> {
        self.queues
    }
}

/// Both ends of a new cable whose buffers come from (and return to) `pool`.
///
/// Fails when a queue count or the ring size is zero.
pub fn pair(pool: &Arc<BufPool>, cfg: &MemConfig) -> Result<(MemPort, MemPort), BackendError> {
    if cfg.a_queues == 0 || cfg.b_queues == 0 {
        return Err(BackendError::Config("a cable end needs at least one queue"));
    }
    if cfg.ring_size == 0 {
        return Err(BackendError::Config("ring size must be at least 1"));
    }
    let rings = |n: usize| -> Rings { (0..n).map(|_| BurstRing::new(cfg.ring_size)).collect() };
    let a_rx = rings(cfg.a_queues);
    let b_rx = rings(cfg.b_queues);
    let link = MemLink {
        up: Arc::new(AtomicBool::new(true)),
    };
    let end = |n: usize, rx: &Rings, tx: &Rings| MemPort {
        queues: (0..n)
            .map(|index| MemQueue {
                index,
                rx: Arc::clone(rx),
                tx: Arc::clone(tx),
                steering: cfg.steering,
                rr_next: index,
                scratch: match cfg.steering {
                    Steering::FlowHash if tx.len() > 1 => {
                        (0..tx.len()).map(|_| Vec::with_capacity(BURST)).collect()
                    }
                    _ => Vec::new(),
                },
                pool: Arc::clone(pool),
                link: link.clone(),
                stats: QueueStats::default(),
            })
            .collect(),
        link: link.clone(),
    };
    let a = end(cfg.a_queues, &a_rx, &b_rx);
    let b = end(cfg.b_queues, &b_rx, &a_rx);
    Ok((a, b))
}

/// One queue of a [`MemPort`]: pops its own receive ring, pushes into the peer's rings.
/// Owned by one thread at a time (it is `Send`, not shared).
#[derive(Debug)]
pub struct MemQueue {
    index: usize,
    rx: Rings,
    tx: Rings,
    steering: Steering,
    rr_next: usize,
    /// Per peer ring, frames of one burst sorted by flow hash (one ring operation per ring per
    /// burst); empty unless steering is [`Steering::FlowHash`] over several rings.
    scratch: Vec<Vec<HeapBuf>>,
    pool: Arc<BufPool>,
    link: MemLink,
    stats: QueueStats,
}

impl MemQueue {
    /// This queue's index at its end of the cable.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The pool this queue allocates from and frees to.
    pub fn pool(&self) -> &Arc<BufPool> {
        &self.pool
    }

    /// Frames waiting in this queue's receive ring.
    pub fn rx_pending(&self) -> usize {
        self.rx.get(self.index).map_or(0, BurstRing::len)
    }

    /// Transmits frames from the front of `pkts` until a ring is full, keeping the unsent ones
    /// in `pkts` (in order) instead of dropping them: back-pressure for generators, which
    /// must not lose what they count as offered. Returns how many were sent; sends nothing
    /// while the link is cut.
    pub fn send_until_full(&mut self, pkts: &mut Vec<HeapBuf>) -> usize {
        if !self.link.is_up() {
            return 0;
        }
        let before: u64 = pkts.iter().map(|b| b.as_ref().len() as u64).sum();
        let sent = match self.burst_ring() {
            Some(ring) => self.tx.get(ring).map_or(0, |q| q.push_burst(pkts)),
            // Per-frame steering: one frame at a time, stopping at the first full ring so the
            // order of what is left is kept.
            None => {
                let mut sent = 0;
                pkts.reverse();
                while let Some(buf) = pkts.pop() {
                    let ring = flow_ring(buf.as_ref(), self.tx.len());
                    let pushed = match self.tx.get(ring) {
                        Some(q) => q.push(buf),
                        None => Err(buf),
                    };
                    if let Err(buf) = pushed {
                        pkts.push(buf);
                        break;
                    }
                    sent += 1;
                }
                pkts.reverse();
                sent
            }
        };
        let after: u64 = pkts.iter().map(|b| b.as_ref().len() as u64).sum();
        let bytes = before - after;
        self.stats.tx_packets += sent as u64;
        self.stats.tx_bytes += bytes;
        sent
    }

    /// The ring a whole burst goes to, or `None` when each frame is hashed.
    #[inline]
    fn burst_ring(&mut self) -> Option<usize> {
        let n = self.tx.len().max(1);
        match self.steering {
            Steering::SameIndex => Some(self.index % n),
            Steering::RoundRobin => {
                let r = self.rr_next % n;
                self.rr_next = self.rr_next.wrapping_add(1);
                Some(r)
            }
            Steering::FlowHash if n == 1 => Some(0),
            Steering::FlowHash => None,
        }
    }
}

/// Pushes `pkts` into `ring`, dropping (back to the pool) and counting what does not fit;
/// leaves `pkts` empty with its capacity. Returns how many were sent.
#[inline]
fn push_or_drop(
    ring: Option<&BurstRing<HeapBuf>>,
    pool: &BufPool,
    stats: &mut QueueStats,
    pkts: &mut Vec<HeapBuf>,
) -> usize {
    if pkts.is_empty() {
        return 0;
    }
    let total: usize = pkts.iter().map(|b| b.as_ref().len()).sum();
    let sent = ring.map_or(0, |q| q.push_burst(pkts));
    let dropped: usize = pkts.iter().map(|b| b.as_ref().len()).sum();
    stats.tx_bytes += (total - dropped) as u64;
    stats.tx_dropped += pkts.len() as u64;
    pool.free_bulk(pkts);
    sent
}

/// Picks a ring by hashing the frame's IPv6 addresses (or its first 64 bytes).
#[inline]
fn flow_ring(frame: &[u8], rings: usize) -> usize {
    /// Ethernet header then the IPv6 source and destination (RFC 8200 §3 offsets 8..40).
    const ADDRS: std::ops::Range<usize> = 14 + 8..14 + 40;
    let key = match frame.get(12..14) {
        Some([0x86, 0xdd]) => frame.get(ADDRS).unwrap_or(frame),
        _ => frame.get(..64).unwrap_or(frame),
    };
    let mut h: u64 = 0;
    for chunk in key.chunks(8) {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    // Fold the well-mixed high half down before reducing.
    ((h >> 32) as usize) % rings.max(1)
}

impl PortQueue for MemQueue {
    type Buf = HeapBuf;

    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<HeapBuf>, max: usize) -> usize {
        let Some(ring) = self.rx.get(self.index) else {
            return 0;
        };
        let start = out.len();
        let n = ring.pop_burst(out, max);
        let bytes: usize = out.iter().skip(start).map(|b| b.as_ref().len()).sum();
        self.stats.rx_packets += n as u64;
        self.stats.rx_bytes += bytes as u64;
        n
    }

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<HeapBuf>) -> usize {
        if !self.link.is_up() {
            self.stats.tx_dropped += pkts.len() as u64;
            self.pool.free_bulk(pkts);
            return 0;
        }
        let fixed = self.burst_ring();
        let Self {
            tx,
            scratch,
            pool,
            stats,
            ..
        } = self;
        let mut sent = 0;
        match fixed {
            Some(ring) => sent += push_or_drop(tx.get(ring), pool, stats, pkts),
            None => {
                for buf in pkts.drain(..) {
                    let ring = flow_ring(buf.as_ref(), tx.len());
                    let Some(bucket) = scratch.get_mut(ring) else {
                        stats.tx_dropped += 1;
                        pool.free(buf);
                        continue;
                    };
                    if bucket.len() == bucket.capacity() {
                        // A burst larger than BURST: flush rather than let the bucket grow.
                        sent += push_or_drop(tx.get(ring), pool, stats, bucket);
                    }
                    bucket.push(buf);
                }
                for (ring, bucket) in scratch.iter_mut().enumerate() {
                    sent += push_or_drop(tx.get(ring), pool, stats, bucket);
                }
            }
        }
        self.stats.tx_packets += sent as u64;
        sent
    }

    #[inline]
    fn alloc(&mut self) -> Option<HeapBuf> {
        self.pool.alloc()
    }

    #[inline]
    fn free(&mut self, buf: HeapBuf) {
        self.pool.free(buf);
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }

    fn link_up(&self) -> Option<bool> {
        Some(self.link.is_up())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6(src_last: u8, payload: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 4];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14 + 23] = src_last;
        f[14 + 40] = payload;
        f
    }

    #[test]
    fn flow_hash_depends_on_addresses_only() {
        for src in 0..32 {
            let r = flow_ring(&ipv6(src, 0), 4);
            assert!(r < 4);
            assert_eq!(flow_ring(&ipv6(src, 99), 4), r, "payload changed the ring");
        }
        let spread: std::collections::HashSet<usize> =
            (0..32).map(|src| flow_ring(&ipv6(src, 0), 4)).collect();
        assert_eq!(spread.len(), 4, "32 flows should reach all 4 rings");
    }

    #[test]
    fn flow_hash_handles_short_and_non_ip_frames() {
        assert_eq!(flow_ring(&[], 3), flow_ring(&[], 3));
        assert!(flow_ring(&[0x86, 0xdd], 3) < 3);
        let mut short_ipv6 = ipv6(1, 0);
        short_ipv6.truncate(30);
        assert!(flow_ring(&short_ipv6, 3) < 3);
        assert_eq!(flow_ring(&[1, 2, 3], 0), 0);
    }
}
