//! Packets waiting for a context: the first packets from an inside host to a peer ULID arrive
//! before the SHIM6 handshake has run ([RFC 5533 §7.3](https://www.rfc-editor.org/rfc/rfc5533#section-7.3)).
//! They are held here, bounded per ULID pair and in total (a host, or a flood of new peers,
//! cannot take all the memory), and released through the fast path once the context is
//! ESTABLISHED; otherwise they are dropped when the handshake fails or after a short wait.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use wire::Ulid;

/// (local ULID, peer ULID).
pub type UlidPair = (Ulid, Ulid);

/// Why a packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingDrop {
    /// The pair already holds its share.
    PairFull,
    /// The queue holds its total.
    TotalFull,
}

/// Counters of the pending queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingStats {
    /// Packets queued.
    pub queued: u64,
    /// Dropped: the pair's share was full.
    pub dropped_pair_full: u64,
    /// Dropped: the total was reached.
    pub dropped_total_full: u64,
    /// Dropped: waited longer than the timeout.
    pub expired: u64,
    /// Dropped: the handshake failed or was refused.
    pub failed: u64,
    /// Handed back for sending once the context was established.
    pub released: u64,
}

#[derive(Debug)]
struct Waiting {
    since: Instant,
    frames: VecDeque<Vec<u8>>,
}

/// Frames held per ULID pair until its context is established.
#[derive(Debug)]
pub struct PendingQueue {
    per_pair: usize,
    total: usize,
    timeout: Duration,
    pairs: HashMap<UlidPair, Waiting>,
    len: usize,
    stats: PendingStats,
}

impl PendingQueue {
    /// A queue holding at most `per_pair` frames per ULID pair and `total` in all, each pair for
    /// at most `timeout` after its first frame.
    pub fn new(per_pair: usize, total: usize, timeout: Duration) -> Self {
        Self {
            per_pair,
            total,
            timeout,
            pairs: HashMap::new(),
            len: 0,
            stats: PendingStats::default(),
        }
    }

    /// Holds `frame` for `pair`.
    pub fn push(&mut self, now: Instant, pair: UlidPair, frame: &[u8]) -> Result<(), PendingDrop> {
        if self.len >= self.total {
            self.stats.dropped_total_full += 1;
            return Err(PendingDrop::TotalFull);
        }
        let w = self.pairs.entry(pair).or_insert_with(|| Waiting {
            since: now,
            frames: VecDeque::new(),
        });
        if w.frames.len() >= self.per_pair {
            self.stats.dropped_pair_full += 1;
            return Err(PendingDrop::PairFull);
        }
        w.frames.push_back(frame.to_vec());
        self.len += 1;
        self.stats.queued += 1;
        Ok(())
    }

    /// Takes every frame held for `pair`, oldest first (the context is established).
    pub fn release(&mut self, pair: UlidPair) -> Vec<Vec<u8>> {
        match self.pairs.remove(&pair) {
            Some(w) => {
                self.len -= w.frames.len();
                self.stats.released += w.frames.len() as u64;
                w.frames.into()
            }
            None => Vec::new(),
        }
    }

    /// Drops every frame held for `pair` (the handshake failed); returns how many.
    pub fn fail(&mut self, pair: UlidPair) -> usize {
        let n = self.pairs.remove(&pair).map_or(0, |w| w.frames.len());
        self.len -= n;
        self.stats.failed += n as u64;
        n
    }

    /// Drops the frames of pairs that have waited `timeout` or longer; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.timeout;
        let mut n = 0;
        self.pairs.retain(|_, w| {
            let keep = now.saturating_duration_since(w.since) < timeout;
            if !keep {
                n += w.frames.len();
            }
            keep
        });
        self.len -= n;
        self.stats.expired += n as u64;
        n
    }

    /// The pairs waiting for a context with `peer` (a resolver answered for it).
    pub fn pairs_for_peer(&self, peer: Ulid) -> Vec<UlidPair> {
        self.pairs
            .keys()
            .filter(|(_, p)| *p == peer)
            .copied()
            .collect()
    }

    /// Whether frames are held for `pair`.
    pub fn contains(&self, pair: UlidPair) -> bool {
        self.pairs.contains_key(&pair)
    }

    /// Frames held in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counters.
    pub fn stats(&self) -> PendingStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(i: u16) -> UlidPair {
        let u = |x: u16| Ulid(std::net::Ipv6Addr::new(0xfc00, 0, 0, 1, 0, 0, 0, x));
        (u(1), u(100 + i))
    }

    #[test]
    fn bounded_per_pair_and_in_total() {
        let t0 = Instant::now();
        let mut q = PendingQueue::new(2, 3, Duration::from_secs(5));
        q.push(t0, pair(1), &[1]).unwrap();
        q.push(t0, pair(1), &[2]).unwrap();
        assert_eq!(q.push(t0, pair(1), &[3]), Err(PendingDrop::PairFull));
        q.push(t0, pair(2), &[4]).unwrap();
        // The total (3) is reached: another pair is refused too.
        assert_eq!(q.push(t0, pair(3), &[5]), Err(PendingDrop::TotalFull));
        assert_eq!(q.len(), 3);
        let s = q.stats();
        assert_eq!(
            (s.queued, s.dropped_pair_full, s.dropped_total_full),
            (3, 1, 1)
        );
        // Released oldest first, and the room comes back.
        assert_eq!(q.release(pair(1)), vec![vec![1], vec![2]]);
        assert!(q.release(pair(1)).is_empty());
        assert_eq!(q.len(), 1);
        q.push(t0, pair(3), &[6]).unwrap();
        assert_eq!(q.fail(pair(3)), 1);
        assert_eq!(q.stats().released, 2);
        assert_eq!(q.stats().failed, 1);
        assert_eq!(q.pairs_for_peer(pair(2).1), vec![pair(2)]);
    }

    #[test]
    fn pairs_expire_after_the_timeout() {
        let t0 = Instant::now();
        let mut q = PendingQueue::new(4, 16, Duration::from_secs(5));
        q.push(t0, pair(1), &[1]).unwrap();
        q.push(t0 + Duration::from_secs(3), pair(2), &[2]).unwrap();
        q.push(t0 + Duration::from_secs(4), pair(1), &[3]).unwrap();
        assert_eq!(q.expire(t0 + Duration::from_millis(4999)), 0);
        // Pair 1 started at t0: both of its frames go; pair 2 stays.
        assert_eq!(q.expire(t0 + Duration::from_secs(5)), 2);
        assert!(!q.contains(pair(1)) && q.contains(pair(2)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.stats().expired, 2);
    }
}
