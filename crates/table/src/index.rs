//! A hashed index from a key to a slot: open addressing over cache-line buckets.
//!
//! Each 64-byte bucket holds seven entries (slot number + 32-bit fingerprint of the key's
//! hash) and an *overflow count*: how many keys whose probe sequence passed this bucket live
//! further on (the scheme of Folly's F14 tables). A lookup scans buckets from the key's home
//! and stops after the first one whose overflow count is zero, or after [`MAX_PROBE`]
//! buckets. The probe sequence is triangular (home + 0, 1, 3, 6, 10, ... buckets), which
//! breaks up the long clusters plain linear probing grows at 3/4 load (at 100K keys the
//! longest probe is 13-20 buckets linear, 7-10 triangular; 12-15 triangular at 4M). Indexes
//! under [`QUADRATIC_MIN`] buckets (tables under about 2,700 contexts) probe linearly, up to
//! every bucket, since triangular offsets modulo a small bucket count skip buckets. Removal empties the entry and decrements the counts, so removed positions are
//! plainly free again: unlike tombstones they never pile up and never lengthen later probes,
//! however many contexts come and go.
//!
//! Entries never move while they are live, so a reader racing the writer can miss only keys
//! being inserted or removed during its lookup, never a key present throughout.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::entry::SlotId;
use crate::hash::{fingerprint, home_bucket};
use crate::mem::{prefetch, Zeroable, ZeroedSlice};
use crate::TableError;

/// Entries per bucket (the eighth word of the cache line is the overflow count).
pub(crate) const BUCKET_ENTRIES: usize = 7;
/// Probe bound in buckets: at most `7 * 32 = 224` candidate entries per lookup. Twice the
/// longest probe seen at 4M contexts and full load, so an insert into a table that is not
/// full practically never fails.
pub(crate) const MAX_PROBE: usize = 32;
/// Smallest index that probes triangularly: the first [`MAX_PROBE`] triangular offsets
/// (0 ..= 120) are then distinct buckets.
pub(crate) const QUADRATIC_MIN: usize = MAX_PROBE * (MAX_PROBE + 1) / 2 + 1;
/// Entries per context the index is sized for: at full table it is 3/4 occupied.
pub(crate) const LOAD_NUM: usize = 3;
/// Denominator of the load factor.
pub(crate) const LOAD_DEN: usize = 4;

const EMPTY: u64 = 0;

/// One cache line of the index.
#[repr(C, align(64))]
pub(crate) struct Bucket {
    overflow: AtomicU64,
    entries: [AtomicU64; BUCKET_ENTRIES],
}

// SAFETY: atomics only; all-zero is "no overflow, all entries EMPTY"; nothing to drop.
unsafe impl Zeroable for Bucket {}

/// An entry word: `slot + 1` in the high half (so 0 means empty), fingerprint in the low.
fn pack(slot: SlotId, fp: u32) -> u64 {
    ((u64::from(slot.0) + 1) << 32) | u64::from(fp)
}

fn unpack_slot(w: u64) -> Option<SlotId> {
    let s = w >> 32;
    // `s - 1` fits 32 bits because `s` came from a `u32` plus one.
    (s != 0).then(|| SlotId((s - 1) as u32))
}

/// Outcome of checking one candidate slot, or of a whole lookup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Probe<R> {
    /// Found.
    Hit(R),
    /// Not there.
    Miss,
    /// A candidate slot stayed mid-write; the answer is unknown.
    Busy,
}

/// Number of buckets for `capacity` keys.
pub(crate) fn buckets_for(capacity: usize) -> Option<usize> {
    let per_bucket = BUCKET_ENTRIES * LOAD_NUM;
    Some(capacity.checked_mul(LOAD_DEN)?.div_ceil(per_bucket).max(1))
}

/// The index: fixed array of buckets.
pub(crate) struct Index {
    buckets: ZeroedSlice<Bucket>,
    probe_limit: usize,
    quadratic: bool,
}

impl Index {
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self, TableError> {
        let n = buckets_for(capacity).ok_or(TableError::OutOfMemory)?;
        let buckets = ZeroedSlice::new(n)?;
        let quadratic = n >= QUADRATIC_MIN;
        Ok(Self {
            probe_limit: if quadratic { MAX_PROBE } else { n },
            quadratic,
            buckets,
        })
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.buckets.allocated_bytes()
    }

    #[inline(always)]
    pub(crate) fn home(&self, hash: u64) -> usize {
        home_bucket(hash, self.buckets.len())
    }

    /// Bucket `step + 1` of a probe sequence, from bucket `step` `b`.
    #[inline(always)]
    fn next(&self, b: usize, step: usize) -> usize {
        let n = self.buckets.len();
        let b = b + if self.quadratic { step + 1 } else { 1 };
        // `step + 1 <= MAX_PROBE < n` when triangular, so one subtraction wraps either way.
        if b >= n {
            b - n
        } else {
            b
        }
    }

    /// Starts pulling the key's home bucket into the cache.
    #[inline(always)]
    pub(crate) fn prefetch_home(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            prefetch(b);
        }
    }

    /// First slot in the home bucket whose fingerprint matches: the likely answer, worth
    /// prefetching before the real lookup.
    #[inline(always)]
    pub(crate) fn home_candidate(&self, hash: u64) -> Option<SlotId> {
        let fp = fingerprint(hash);
        let bucket = self.buckets.get(self.home(hash))?;
        bucket
            .entries
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .find(|&w| w as u32 == fp)
            .and_then(unpack_slot)
    }

    /// Calls `check` on every slot whose fingerprint matches `hash`, in probe order, until it
    /// reports a hit. Lock-free; safe to run against the writer.
    #[inline(always)]
    pub(crate) fn find<R>(&self, hash: u64, mut check: impl FnMut(SlotId) -> Probe<R>) -> Probe<R> {
        let fp = fingerprint(hash);
        let mut b = self.home(hash);
        let mut busy = false;
        for step in 0..self.probe_limit {
            let Some(bucket) = self.buckets.get(b) else {
                break;
            };
            for e in &bucket.entries {
                // Acquire: the slot's contents were written before this entry was published.
                let w = e.load(Ordering::Acquire);
                if w as u32 != fp {
                    continue;
                }
                if let Some(slot) = unpack_slot(w) {
                    match check(slot) {
                        Probe::Hit(r) => return Probe::Hit(r),
                        Probe::Busy => busy = true,
                        Probe::Miss => {}
                    }
                }
            }
            // Acquire, pairing with the writer's release store: a reader that stops early on
            // a count lowered by a removal also sees everything the writer did before that
            // removal, so "not found" is explained by it. (Free on x86.)
            if bucket.overflow.load(Ordering::Acquire) == 0 {
                break;
            }
            b = self.next(b, step);
        }
        if busy {
            Probe::Busy
        } else {
            Probe::Miss
        }
    }

    /// Adds `slot` under `hash` in the first bucket with a free entry. Writer only.
    pub(crate) fn insert(&self, hash: u64, slot: SlotId) -> Result<(), TableError> {
        let home = self.home(hash);
        let mut b = home;
        for distance in 0..self.probe_limit {
            let bucket = self.buckets.get(b).ok_or(TableError::ProbeLimit)?;
            let free = bucket
                .entries
                .iter()
                .find(|e| e.load(Ordering::Relaxed) == EMPTY);
            if let Some(e) = free {
                self.adjust_overflow(home, distance, true);
                // Release: publishes the slot written before (see `find`).
                e.store(pack(slot, fingerprint(hash)), Ordering::Release);
                return Ok(());
            }
            b = self.next(b, distance);
        }
        Err(TableError::ProbeLimit)
    }

    /// Removes the entry for `slot` under `hash`; `false` if there is none. Writer only.
    pub(crate) fn remove(&self, hash: u64, slot: SlotId) -> bool {
        let home = self.home(hash);
        let Some((distance, e)) = self.position(home, pack(slot, fingerprint(hash))) else {
            return false;
        };
        e.store(EMPTY, Ordering::Release);
        self.adjust_overflow(home, distance, false);
        true
    }

    /// At which step of its probe sequence the entry for `slot` under `hash` lives (0: in
    /// its home bucket).
    pub(crate) fn displacement(&self, hash: u64, slot: SlotId) -> Option<usize> {
        self.position(self.home(hash), pack(slot, fingerprint(hash)))
            .map(|(d, _)| d)
    }

    fn position(&self, home: usize, word: u64) -> Option<(usize, &AtomicU64)> {
        let mut b = home;
        for distance in 0..self.probe_limit {
            let bucket = self.buckets.get(b)?;
            if let Some(e) = bucket
                .entries
                .iter()
                .find(|e| e.load(Ordering::Relaxed) == word)
            {
                return Some((distance, e));
            }
            b = self.next(b, distance);
        }
        None
    }

    /// Counts a key (in or out) in the overflow of the first `distance` buckets of its probe
    /// sequence. Single writer: plain load and store, no read-modify-write.
    fn adjust_overflow(&self, home: usize, distance: usize, add: bool) {
        let mut b = home;
        for step in 0..distance {
            if let Some(bucket) = self.buckets.get(b) {
                let n = bucket.overflow.load(Ordering::Relaxed);
                let n = if add {
                    n.saturating_add(1)
                } else {
                    n.saturating_sub(1)
                };
                bucket.overflow.store(n, Ordering::Release);
            }
            b = self.next(b, step);
        }
    }

    /// Sum of all overflow counts (tests check it returns to zero).
    #[cfg(test)]
    pub(crate) fn overflow_total(&self) -> u64 {
        self.buckets
            .iter()
            .map(|b| b.overflow.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(ix: &Index, hash: u64, want: SlotId) -> bool {
        ix.find(hash, |s| {
            if s == want {
                Probe::Hit(())
            } else {
                Probe::Miss
            }
        }) == Probe::Hit(())
    }

    #[test]
    fn layout_and_sizing() {
        assert_eq!(core::mem::size_of::<Bucket>(), 64);
        assert_eq!(buckets_for(0), Some(1));
        assert_eq!(buckets_for(21), Some(4));
        assert_eq!(buckets_for(22), Some(5));
        assert_eq!(buckets_for(usize::MAX), None);
        assert_eq!(pack(SlotId(0), 0), 1 << 32);
        assert_eq!(
            unpack_slot(pack(SlotId(u32::MAX - 1), 7)),
            Some(SlotId(u32::MAX - 1))
        );
        assert_eq!(unpack_slot(EMPTY), None);
    }

    /// All keys share one home bucket (same hash): they fill it, spill over into the next
    /// buckets, and are all found; removing them frees every position again.
    #[test]
    fn spill_find_remove() {
        let ix = Index::with_capacity(1000).unwrap();
        let hash = 0x8000_0000_0000_0000u64; // home bucket = buckets / 2
        for s in 0..20 {
            ix.insert(hash, SlotId(s)).unwrap();
        }
        assert_eq!(ix.displacement(hash, SlotId(0)), Some(0));
        assert_eq!(ix.displacement(hash, SlotId(7)), Some(1));
        assert_eq!(ix.displacement(hash, SlotId(19)), Some(2));
        // The 7 keys at distance 1 pass one bucket, the 6 at distance 2 pass two.
        assert_eq!(ix.overflow_total(), 7 + 2 * 6);
        assert!((0..20).all(|s| lookup(&ix, hash, SlotId(s))));
        assert!(!lookup(&ix, hash, SlotId(20)));
        // Remove a key from the home bucket: its place is reused by the next insert.
        assert!(ix.remove(hash, SlotId(3)));
        assert!(!ix.remove(hash, SlotId(3)));
        assert!(!lookup(&ix, hash, SlotId(3)));
        ix.insert(hash, SlotId(100)).unwrap();
        assert_eq!(ix.displacement(hash, SlotId(100)), Some(0));
        for s in (0..20).filter(|&s| s != 3).chain([100]) {
            assert!(ix.remove(hash, SlotId(s)));
        }
        assert_eq!(ix.overflow_total(), 0);
        assert!(ix
            .buckets
            .iter()
            .all(|b| b.entries.iter().all(|e| e.load(Ordering::Relaxed) == EMPTY)));
    }

    /// A key is never searched or placed beyond `MAX_PROBE` buckets.
    #[test]
    fn probe_bound() {
        let ix = Index::with_capacity(10_000).unwrap();
        let hash = 12345;
        let fits = BUCKET_ENTRIES * MAX_PROBE;
        for s in 0..fits {
            ix.insert(hash, SlotId(s as u32)).unwrap();
        }
        assert_eq!(ix.insert(hash, SlotId(9999)), Err(TableError::ProbeLimit));
        assert_eq!(
            ix.displacement(hash, SlotId(fits as u32 - 1)),
            Some(MAX_PROBE - 1)
        );
        let mut checked = 0;
        let _ = ix.find(hash, |_| {
            checked += 1;
            Probe::<()>::Miss
        });
        assert_eq!(checked, fits);
    }

    /// Probing wraps from the last bucket to the first.
    #[test]
    fn wraps_around() {
        let ix = Index::with_capacity(100).unwrap();
        let hash = u64::MAX; // home = last bucket
        for s in 0..10 {
            ix.insert(hash, SlotId(s)).unwrap();
        }
        assert_eq!(ix.displacement(hash, SlotId(9)), Some(1));
        assert!(lookup(&ix, hash, SlotId(9)));
        assert!(ix.buckets[0].entries[2].load(Ordering::Relaxed) != EMPTY);

        // Triangular probing: steps land on home + 1, + 3, + 6, wrapping past the end.
        let ix = Index::with_capacity(10_000).unwrap();
        let n = ix.buckets.len();
        assert!(ix.quadratic);
        for s in 0..28 {
            ix.insert(hash, SlotId(s)).unwrap();
        }
        let used: Vec<usize> = (0..n)
            .filter(|&b| ix.buckets[b].entries[0].load(Ordering::Relaxed) != EMPTY)
            .collect();
        assert_eq!(used, vec![0, 2, 5, n - 1]);
        assert!((0..28).all(|s| lookup(&ix, hash, SlotId(s))));
        assert_eq!(ix.overflow_total(), 7 + 7 * 2 + 7 * 3);
    }

    /// A tiny index never probes the same bucket twice.
    #[test]
    fn tiny_index_bounded() {
        let ix = Index::with_capacity(1).unwrap();
        assert_eq!(ix.buckets.len(), 1);
        for s in 0..7 {
            ix.insert(1, SlotId(s)).unwrap();
        }
        assert_eq!(ix.insert(1, SlotId(7)), Err(TableError::ProbeLimit));
    }
}
