//! Per-context traffic counters, one shard per worker.
//!
//! REAP needs to know whether anything arrived on a context lately (Keepalive and Send
//! timers, [RFC 5534 §4.1]) and the garbage collector whether a context is quiescent
//! ([RFC 5533 §9]). Workers count every packet, so the counters must cost no contention: each
//! worker owns a whole array (its *shard*) that no other thread writes, updated with a plain
//! relaxed load and store (no locked read-modify-write), and the slow path adds the shards up
//! when it asks. Shards are separate, cache-line-aligned allocations, so two workers never
//! write the same cache line.
//!
//! [RFC 5534 §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
//! [RFC 5533 §9]: https://www.rfc-editor.org/rfc/rfc5533#section-9

use core::cell::Cell as NotSync;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::entry::SlotId;
use crate::mem::{Zeroable, ZeroedSlice};
use crate::table::Shared;
use crate::TableError;

/// One worker's counters for one context: 40 bytes.
#[repr(C)]
pub(crate) struct CounterCell {
    rx_pkts: AtomicU64,
    rx_bytes: AtomicU64,
    tx_pkts: AtomicU64,
    tx_bytes: AtomicU64,
    last_rx: AtomicU32,
    last_tx: AtomicU32,
}

// SAFETY: atomics only; zero is "nothing counted, never seen"; nothing to drop.
unsafe impl Zeroable for CounterCell {}

/// Adds `n` to a counter only the calling worker writes.
#[inline(always)]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl CounterCell {
    /// Pulls the cell into L1 for writing (an update is a load and a store), both ends of
    /// it: cells are 40 bytes, so half of them straddle two cache lines.
    #[inline(always)]
    fn prefetch(&self) {
        let first: *const Self = self;
        crate::mem::prefetch_write(first);
        crate::mem::prefetch_write(
            first
                .cast::<u8>()
                .wrapping_add(core::mem::size_of::<Self>() - 1),
        );
    }

    fn reset(&self) {
        for c in [&self.rx_pkts, &self.rx_bytes, &self.tx_pkts, &self.tx_bytes] {
            c.store(0, Ordering::Relaxed);
        }
        self.last_rx.store(0, Ordering::Relaxed);
        self.last_tx.store(0, Ordering::Relaxed);
    }
}

/// One worker's counter array, indexed by slot.
pub(crate) struct Shard {
    cells: ZeroedSlice<CounterCell>,
    claimed: AtomicBool,
}

impl Shard {
    pub(crate) fn new(capacity: usize) -> Result<Self, TableError> {
        Ok(Self {
            cells: ZeroedSlice::new(capacity)?,
            claimed: AtomicBool::new(false),
        })
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.cells.allocated_bytes()
    }

    /// Zeroes a slot's counters when a new context takes it (slow path).
    pub(crate) fn reset(&self, slot: SlotId) {
        if let Some(c) = self.cells.get(slot.index()) {
            c.reset();
        }
    }
}

/// Traffic seen on one context, summed over all workers.
///
/// Ticks are whatever monotonic `u32` clock the data plane passes to
/// [`WorkerCounters::on_rx`] / [`on_tx`](WorkerCounters::on_tx) (e.g. 1/16 s since start:
/// 8.5 years before it wraps); 0 means "never".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Activity {
    /// Packets received (outside -> inside) on the context.
    pub rx_pkts: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent (inside -> outside).
    pub tx_pkts: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Latest receive tick over all workers.
    pub last_rx: u32,
    /// Latest send tick over all workers.
    pub last_tx: u32,
}

/// Sums `slot`'s counters over every shard.
pub(crate) fn activity(shards: &[Shard], slot: SlotId) -> Option<Activity> {
    let mut a = Activity::default();
    for shard in shards {
        let c = shard.cells.get(slot.index())?;
        a.rx_pkts = a.rx_pkts.wrapping_add(c.rx_pkts.load(Ordering::Relaxed));
        a.rx_bytes = a.rx_bytes.wrapping_add(c.rx_bytes.load(Ordering::Relaxed));
        a.tx_pkts = a.tx_pkts.wrapping_add(c.tx_pkts.load(Ordering::Relaxed));
        a.tx_bytes = a.tx_bytes.wrapping_add(c.tx_bytes.load(Ordering::Relaxed));
        a.last_rx = a.last_rx.max(c.last_rx.load(Ordering::Relaxed));
        a.last_tx = a.last_tx.max(c.last_tx.load(Ordering::Relaxed));
    }
    Some(a)
}

/// The handle through which one worker counts its packets: the only writer of its shard.
///
/// At most one handle per worker exists at a time ([`TableReader::counters`] refuses a
/// second), and it is `Send` but not `Sync`, so the shard's plain load-and-store updates
/// never race another writer. Dropping the handle releases the shard.
///
/// [`TableReader::counters`]: crate::TableReader::counters
pub struct WorkerCounters {
    shared: Arc<Shared>,
    worker: usize,
    _not_sync: PhantomData<NotSync<()>>,
}

impl WorkerCounters {
    pub(crate) fn claim(shared: Arc<Shared>, worker: usize) -> Result<Self, TableError> {
        let shard = shared.shards.get(worker).ok_or(TableError::NoSuchWorker)?;
        if shard
            .claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(TableError::WorkerTaken);
        }
        Ok(Self {
            shared,
            worker,
            _not_sync: PhantomData,
        })
    }

    /// The worker number this handle counts for.
    pub fn worker(&self) -> usize {
        self.worker
    }

    #[inline(always)]
    fn cell(&self, slot: SlotId) -> Option<&CounterCell> {
        self.shared.shards.get(self.worker)?.cells.get(slot.index())
    }

    /// Starts pulling the counter cell of every hit of a batch lookup into the cache, for
    /// writing, with the shard looked up once (at a million contexts a worker's cells are
    /// 40 MB): the fast path calls it right after its lookups, so the burst's rewrites hide the
    /// counter misses.
    #[inline]
    pub fn prefetch_hits(&self, hits: &[crate::RawEntry]) {
        let Some(shard) = self.shared.shards.get(self.worker) else {
            return;
        };
        let cells = &shard.cells[..];
        for e in hits {
            if let Some(c) = cells.get(e.slot().index()).filter(|_| e.is_hit()) {
                c.prefetch();
            }
        }
    }

    /// Counts a packet received on the context in `slot` (outside -> inside) at tick `now`.
    /// A slot out of range is ignored.
    #[inline]
    pub fn on_rx(&self, slot: SlotId, bytes: u32, now: u32) {
        if let Some(c) = self.cell(slot) {
            bump(&c.rx_pkts, 1);
            bump(&c.rx_bytes, u64::from(bytes));
            c.last_rx.store(now, Ordering::Relaxed);
        }
    }

    /// Counts a burst's packets at tick `now`: `(slot, bytes, received)` per packet, `received`
    /// meaning outside -> inside ([`on_rx`](Self::on_rx)), else sent
    /// ([`on_tx`](Self::on_tx)). The shard is looked up once for the whole burst; slots out
    /// of range are ignored.
    #[inline]
    pub fn apply(&self, updates: &[(SlotId, u32, bool)], now: u32) {
        let Some(shard) = self.shared.shards.get(self.worker) else {
            return;
        };
        let cells = &shard.cells[..];
        for &(slot, bytes, rx) in updates {
            if let Some(c) = cells.get(slot.index()) {
                let (pkts, octets, last) = if rx {
                    (&c.rx_pkts, &c.rx_bytes, &c.last_rx)
                } else {
                    (&c.tx_pkts, &c.tx_bytes, &c.last_tx)
                };
                bump(pkts, 1);
                bump(octets, u64::from(bytes));
                last.store(now, Ordering::Relaxed);
            }
        }
    }

    /// Counts a packet sent on the context in `slot` (inside -> outside) at tick `now`.
    #[inline]
    pub fn on_tx(&self, slot: SlotId, bytes: u32, now: u32) {
        if let Some(c) = self.cell(slot) {
            bump(&c.tx_pkts, 1);
            bump(&c.tx_bytes, u64::from(bytes));
            c.last_tx.store(now, Ordering::Relaxed);
        }
    }
}

impl Drop for WorkerCounters {
    fn drop(&mut self) {
        if let Some(shard) = self.shared.shards.get(self.worker) {
            shard.claimed.store(false, Ordering::Release);
        }
    }
}

impl core::fmt::Debug for WorkerCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerCounters")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_updates_match_single_ones() {
        let t = crate::TableWriter::new(&crate::TableConfig::new(8, 2).with_seed(1)).unwrap();
        let r = t.reader();
        let (a, b) = (r.counters(0).unwrap(), r.counters(1).unwrap());
        let updates = [
            (SlotId(1), 100, true),
            (SlotId(2), 50, false),
            (SlotId(1), 7, true),
            (SlotId(99), 1, true),
        ];
        a.apply(&updates, 9);
        for &(slot, bytes, rx) in &updates {
            if rx {
                b.on_rx(slot, bytes, 9);
            } else {
                b.on_tx(slot, bytes, 9);
            }
        }
        let one = r.activity(SlotId(1)).unwrap();
        assert_eq!((one.rx_pkts, one.rx_bytes, one.last_rx), (4, 214, 9));
        assert_eq!((one.tx_pkts, one.last_tx), (0, 0));
        let two = r.activity(SlotId(2)).unwrap();
        assert_eq!((two.tx_pkts, two.tx_bytes, two.last_tx), (2, 100, 9));
    }

    #[test]
    fn cell_is_40_bytes() {
        assert_eq!(core::mem::size_of::<CounterCell>(), 40);
    }
}
