//! One context's storage: a sequence lock over plain atomic words.
//!
//! Readers copy the words between two reads of the sequence number and keep the copy only if
//! the number was even (no write in progress) and unchanged, so a copy is never torn. All
//! shared words are atomics (relaxed loads and stores, ordered by fences), following
//! H.-J. Boehm, "Can Seqlocks Get Along With Programming Language Memory Models?" (MSPC
//! 2012): no data race, hence no undefined behaviour, and no lock a reader could wait on.

use core::sync::atomic::Ordering;
#[cfg(not(loom))]
use core::sync::atomic::{fence, AtomicU64};
#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU64};

use crate::entry::{Words, WORDS};
use crate::mem::{prefetch, CACHE_LINE};

/// How many times a reader retries a slot that is being written before it gives up (about
/// 1 µs with `pause` at ~140 cycles). A write takes a few nanoseconds, so one retry almost
/// always suffices; running out means the writer was descheduled mid-write, and the worker
/// had better punt the packet than wait for the slow-path core to run again.
pub(crate) const SPIN_LIMIT: u32 = 16;

/// A sequence word and the packed entry. 88 bytes, aligned to 32 so that the 96-byte stride
/// always spans exactly two cache lines (never three).
#[repr(C, align(32))]
pub(crate) struct Slot {
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

// SAFETY: a `Slot` is atomics only: all-zero bytes are sequence 0 and a free entry (live bit
// clear), and no field has a destructor. (Not so for loom's atomics, hence the cfg.)
#[cfg(not(loom))]
unsafe impl crate::mem::Zeroable for Slot {}

impl Slot {
    /// A consistent copy of the words, or `None` if a write kept overlapping for
    /// [`SPIN_LIMIT`] attempts.
    ///
    /// The common case (no write in progress) is one acquire load, the word loads, one
    /// acquire fence and one relaxed load, inlined into the lookup; the retry loop is kept
    /// out of line so it costs nothing until a write actually overlaps.
    #[inline(always)]
    pub(crate) fn read(&self) -> Option<Words> {
        match self.try_read() {
            Some(w) => Some(w),
            None => self.read_contended(),
        }
    }

    /// One attempt: the words if no write overlapped it.
    #[inline(always)]
    fn try_read(&self) -> Option<Words> {
        let before = self.seq.load(Ordering::Acquire);
        let words: Words = core::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
        // Orders the word loads before the second sequence load: if any of them saw a
        // store made after the writer's release fence, this load sees a different value.
        fence(Ordering::Acquire);
        let after = self.seq.load(Ordering::Relaxed);
        // Even (no write open when we started) and unchanged (none started since).
        (before & 1 == 0 && after == before).then_some(words)
    }

    /// [`Slot::read`] straight into `out` (no copy through the stack): `true` when `out`
    /// holds a consistent copy, `false` (and `out` unspecified) when a write kept
    /// overlapping for [`SPIN_LIMIT`] attempts.
    #[inline(always)]
    pub(crate) fn read_into(&self, out: &mut Words) -> bool {
        self.try_read_into(out) || self.read_into_contended(out)
    }

    #[inline(always)]
    fn try_read_into(&self, out: &mut Words) -> bool {
        let before = self.seq.load(Ordering::Acquire);
        for (o, w) in out.iter_mut().zip(&self.words) {
            *o = w.load(Ordering::Relaxed);
        }
        // As in `try_read`: orders the word loads before the second sequence load.
        fence(Ordering::Acquire);
        let after = self.seq.load(Ordering::Relaxed);
        before & 1 == 0 && after == before
    }

    #[cold]
    #[inline(never)]
    fn read_into_contended(&self, out: &mut Words) -> bool {
        for _ in 1..SPIN_LIMIT {
            #[cfg(not(loom))]
            core::hint::spin_loop();
            #[cfg(loom)]
            loom::thread::yield_now();
            if self.try_read_into(out) {
                return true;
            }
        }
        false
    }

    /// The rest of the spin budget after a first attempt overlapped a write.
    #[cold]
    #[inline(never)]
    fn read_contended(&self) -> Option<Words> {
        for _ in 1..SPIN_LIMIT {
            #[cfg(not(loom))]
            core::hint::spin_loop();
            #[cfg(loom)]
            loom::thread::yield_now();
            if let Some(w) = self.try_read() {
                return Some(w);
            }
        }
        None
    }

    /// The current words, for the single writer (which never races itself).
    pub(crate) fn current(&self) -> Words {
        core::array::from_fn(|i| self.words[i].load(Ordering::Relaxed))
    }

    /// Stores `values` into the words from `start` on, as one atomic-looking update.
    ///
    /// Only the table's single writer may call this: two concurrent writers would break the
    /// sequence protocol (readers would still never see undefined behaviour, only a torn
    /// copy).
    pub(crate) fn write(&self, start: usize, values: &[u64]) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Keeps the data stores after the odd sequence store (pairs with the reader's
        // acquire fence).
        fence(Ordering::Release);
        for (cell, &v) in self.words.iter().skip(start).zip(values) {
            cell.store(v, Ordering::Relaxed);
        }
        // Publishes the data stores with the even sequence (pairs with the reader's first
        // acquire load).
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A free slot (loom models cannot use zeroed memory).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            words: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Prefetches both cache lines of the slot.
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        let p: *const Slot = self;
        prefetch(p);
        prefetch(p.cast::<u8>().wrapping_add(CACHE_LINE));
    }
}

#[cfg(test)]
#[cfg(not(loom))]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(core::mem::size_of::<Slot>(), 96);
        assert_eq!(core::mem::align_of::<Slot>(), 32);
    }

    #[test]
    fn write_then_read() {
        let s = crate::mem::ZeroedSlice::<Slot>::new(1).unwrap();
        assert_eq!(s[0].read(), Some([0; WORDS]));
        s[0].write(0, &[1, 2, 3]);
        s[0].write(8, &[9, 10, 11]); // the value past the end is ignored, not a panic
        assert_eq!(s[0].read(), Some([1, 2, 3, 0, 0, 0, 0, 0, 9, 10]));
        assert_eq!(s[0].current(), [1, 2, 3, 0, 0, 0, 0, 0, 9, 10]);
        assert_eq!(s[0].seq.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn reader_gives_up_while_a_write_is_open() {
        let s = crate::mem::ZeroedSlice::<Slot>::new(1).unwrap();
        s[0].write(0, &[5, 6]);
        let mut out = [0; WORDS];
        assert!(s[0].read_into(&mut out));
        assert_eq!(out[..3], [5, 6, 0]);
        s[0].seq.store(1, Ordering::Relaxed); // a writer stopped mid-write
        assert_eq!(s[0].read(), None);
        assert!(!s[0].read_into(&mut out));
        s[0].seq.store(2, Ordering::Relaxed);
        assert!(s[0].read().is_some());
    }
}

/// Model check of the sequence protocol under the C11 memory model: whatever the
/// interleaving and whatever stale values relaxed loads may return, a reader's copy is one
/// whole version. Run with `RUSTFLAGS="--cfg loom" cargo test -p pshim6-table --lib loom`.
#[cfg(test)]
#[cfg(loom)]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn builder() -> loom::model::Builder {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b
    }

    #[test]
    fn loom_reader_never_sees_a_torn_slot() {
        builder().check(|| {
            let slot = Arc::new(Slot::new());
            let writer = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || {
                    slot.write(0, &[1; 3]);
                    slot.write(0, &[2; 3]);
                })
            };
            if let Some(w) = slot.read() {
                assert!(w[..3].iter().all(|&x| x == w[0]), "torn copy {w:?}");
                assert!(w[3..].iter().all(|&x| x == 0), "{w:?}");
            }
            writer.join().unwrap();
            // After the join the last version is visible.
            assert_eq!(slot.read().map(|w| w[..3].to_vec()), Some(vec![2; 3]));
        });
    }

    #[test]
    fn loom_partial_update_keeps_other_words() {
        builder().check(|| {
            let slot = Arc::new(Slot::new());
            slot.write(0, &[7; 4]);
            let writer = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.write(2, &[9, 9]))
            };
            if let Some(w) = slot.read() {
                assert_eq!(&w[..2], &[7, 7]);
                assert!(w[2..4] == [7, 7] || w[2..4] == [9, 9], "torn copy {w:?}");
            }
            writer.join().unwrap();
        });
    }
}
