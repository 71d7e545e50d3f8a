//! A pre-allocated pool of [`HeapBuf`]s: every buffer is created once at start-up and recycled,
//! so the fast path never allocates (architecture.md, "no allocation per packet").

use std::sync::atomic::{AtomicU64, Ordering};

use super::ring::BurstRing;
use crate::buf::{HeapBuf, PacketBuf, DEFAULT_HEADROOM, MAX_FRAME};

/// A fixed set of equally sized [`HeapBuf`]s behind a lock-free MPMC ring with burst
/// operations, shared (in an `Arc`) by every queue of every port that exchanges buffers.
///
/// Buffers migrate: one received on port A is transmitted (or dropped) on port B and comes back
/// through B's `free`. As long as all those ports share this pool, the number of buffers stays
/// [`BufPool::allocated`] forever. A buffer freed into a full pool (one that was not taken
/// from it, e.g. made with [`HeapBuf::from_slice`]) is deallocated and counted in
/// [`BufPool::overflows`].
#[derive(Debug)]
pub struct BufPool {
    free: BurstRing<HeapBuf>,
    buf_capacity: usize,
    allocated: usize,
    exhausted: AtomicU64,
    overflows: AtomicU64,
}

impl BufPool {
    /// A pool of `count` buffers, each with [`DEFAULT_HEADROOM`] and room for `max_frame`
    /// bytes. Allocates everything now. `count` of zero is raised to one (a queue needs it).
    pub fn new(count: usize, max_frame: usize) -> Self {
        let count = count.max(1);
        let buf_capacity = DEFAULT_HEADROOM.saturating_add(max_frame);
        let free = BurstRing::new(count);
        for _ in 0..count {
            // Cannot fail: the queue has room for exactly `count` buffers.
            let _ = free.push(HeapBuf::with_capacity(buf_capacity));
        }
        Self {
            free,
            buf_capacity,
            allocated: count,
            exhausted: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
        }
    }

    /// A pool of `count` buffers that hold frames up to [`MAX_FRAME`] (jumbo) bytes.
    pub fn with_count(count: usize) -> Self {
        Self::new(count, MAX_FRAME)
    }

    /// A free buffer, empty and with the default headroom restored; `None` (counted in
    /// [`BufPool::exhausted`]) when every buffer is in use.
    #[inline]
    pub fn alloc(&self) -> Option<HeapBuf> {
        match self.free.pop() {
            Some(mut buf) => {
                // Cannot fail: an empty slice fits any buffer that has the default headroom,
                // and every pool buffer has it.
                let _ = buf.reset_from(&[]);
                Some(buf)
            }
            None => {
                self.exhausted.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Appends up to `n` free buffers to `out` (empty, default headroom); returns how many.
    /// One atomic operation per call, not per buffer.
    pub fn alloc_bulk(&self, out: &mut Vec<HeapBuf>, n: usize) -> usize {
        let start = out.len();
        let got = self.take_bulk(out, n);
        for buf in out.iter_mut().skip(start) {
            // Cannot fail: see `alloc`.
            let _ = buf.reset_from(&[]);
        }
        got
    }

    /// Like [`BufPool::alloc_bulk`] but keeping each buffer exactly as it was freed (content,
    /// length and headroom): what lets a generator recycle pre-built packets in place.
    pub(crate) fn take_bulk(&self, out: &mut Vec<HeapBuf>, n: usize) -> usize {
        let got = self.free.pop_burst(out, n);
        if got < n {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// Returns a buffer to the pool (any content; [`BufPool::alloc`] resets it).
    #[inline]
    pub fn free(&self, buf: HeapBuf) {
        if self.free.push(buf).is_err() {
            // Not one of ours (the pool is full): deallocating it is the only option left.
            self.overflows.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Returns every buffer in `bufs` to the pool, draining it; one atomic operation per call.
    pub fn free_bulk(&self, bufs: &mut Vec<HeapBuf>) {
        self.free.push_burst(bufs);
        if !bufs.is_empty() {
            // Foreign buffers that did not fit: see `free`.
            self.overflows
                .fetch_add(bufs.len() as u64, Ordering::Relaxed);
            bufs.clear();
        }
    }

    /// Number of buffers this pool created (fixed for its lifetime).
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Number of buffers currently free in the pool.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Total size of each buffer, headroom included.
    pub fn buf_capacity(&self) -> usize {
        self.buf_capacity
    }

    /// Largest frame a pool buffer holds (after the default headroom).
    pub fn max_frame(&self) -> usize {
        self.buf_capacity.saturating_sub(DEFAULT_HEADROOM)
    }

    /// How many times an allocation found the pool empty (or, in bulk, short).
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// How many freed buffers did not fit back (foreign buffers) and were deallocated.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_until_empty_then_free_restores() {
        let pool = BufPool::new(3, 64);
        let mut v = Vec::new();
        assert_eq!(pool.alloc_bulk(&mut v, 5), 3);
        assert_eq!(pool.available(), 0);
        assert!(pool.alloc().is_none());
        assert_eq!(pool.exhausted(), 2);
        pool.free_bulk(&mut v);
        assert_eq!(pool.available(), 3);
        assert_eq!(pool.allocated(), 3);
    }

    #[test]
    fn alloc_resets_length_and_headroom() {
        let pool = BufPool::new(1, 64);
        let mut b = pool.alloc().unwrap();
        b.reset_from(&[7; 10]).unwrap();
        b.adj(4).unwrap();
        pool.free(b);
        let b = pool.alloc().unwrap();
        assert_eq!(b.len(), 0);
        assert_eq!(b.headroom(), DEFAULT_HEADROOM);
        assert_eq!(pool.max_frame(), 64);
    }

    #[test]
    fn foreign_buffer_into_full_pool_is_counted() {
        let pool = BufPool::new(1, 64);
        pool.free(HeapBuf::from_slice(&[1, 2]));
        assert_eq!(pool.overflows(), 1);
        assert_eq!(pool.available(), 1);
    }
}
