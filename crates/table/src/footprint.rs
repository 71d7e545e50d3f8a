//! How much memory a table takes per context, and where it goes.
//!
//! | part | bytes per context | read by |
//! |---|---|---|
//! | entry slot | 96 (88 used: sequence word + 10 data words; 32-byte aligned so a slot spans exactly 2 cache lines) | workers |
//! | tag index | 64-byte bucket per 7 × 3/4 = 5.25 contexts: ~12.2 | workers (ingress) |
//! | ULID-pair index | the same: ~12.2 | workers (egress) |
//! | counters | 40 per worker (4 × u64 packets/bytes, 2 × u32 ticks) | workers write, slow path reads |
//! | free-slot queue | 4 | slow path only |
//!
//! The fast-path table proper (entry + both indexes) is about 120.4 bytes per context at any
//! capacity, within the 128-byte budget; counters scale with the worker count on top.

use crate::counters::CounterCell;
use crate::index::{buckets_for, Bucket};
use crate::mem::allocation_size;
use crate::slot::Slot;

/// Memory of one table, in bytes, by part.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Footprint {
    /// Capacity in contexts.
    pub capacity: usize,
    /// Counter shards.
    pub workers: usize,
    /// Entry slots.
    pub slots: usize,
    /// Tag (ingress) index.
    pub tag_index: usize,
    /// ULID-pair (egress) index.
    pub ulid_index: usize,
    /// One worker's counter shard.
    pub counters_per_worker: usize,
    /// The writer's free-slot queue.
    pub writer: usize,
}

impl Footprint {
    /// What a table of `capacity` contexts and `workers` shards allocates; `None` when that
    /// does not fit the address space.
    pub fn new(capacity: usize, workers: usize) -> Option<Self> {
        let index = allocation_size::<Bucket>(buckets_for(capacity)?)?;
        Some(Self {
            capacity,
            workers,
            slots: allocation_size::<Slot>(capacity)?,
            tag_index: index,
            ulid_index: index,
            counters_per_worker: if workers == 0 {
                0
            } else {
                allocation_size::<CounterCell>(capacity)?
            },
            writer: capacity.checked_mul(core::mem::size_of::<u32>())?,
        })
    }

    /// Entry slots plus both indexes: what a lookup touches.
    pub fn fast_path_bytes(&self) -> usize {
        self.slots + self.tag_index + self.ulid_index
    }

    /// Everything: fast path, every worker's counters and the writer's queue.
    pub fn total_bytes(&self) -> usize {
        self.fast_path_bytes() + self.counters_per_worker * self.workers + self.writer
    }

    /// [`fast_path_bytes`](Self::fast_path_bytes) per context, rounded up.
    pub fn fast_path_per_context(&self) -> usize {
        self.fast_path_bytes().div_ceil(self.capacity.max(1))
    }

    /// [`total_bytes`](Self::total_bytes) per context, rounded up.
    pub fn total_per_context(&self) -> usize {
        self.total_bytes().div_ceil(self.capacity.max(1))
    }
}

/// Bytes per context of a table of `capacity` contexts shared by `workers` workers,
/// everything included (see [`Footprint`] for the split; the fast-path part alone is
/// [`Footprint::fast_path_per_context`]). `usize::MAX` if such a table cannot exist.
pub fn bytes_per_context(capacity: usize, workers: usize) -> usize {
    Footprint::new(capacity, workers).map_or(usize::MAX, |f| f.total_per_context())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TableConfig, TableWriter};

    /// The computed split matches what a real table allocates.
    #[test]
    fn matches_allocation() {
        for (capacity, workers) in [(1, 0), (1000, 2), (100_000, 3)] {
            let t = TableWriter::new(&TableConfig::new(capacity, workers)).unwrap();
            assert_eq!(Some(t.footprint()), Footprint::new(capacity, workers));
        }
    }

    /// The fast-path budget of issue #4: at most 128 bytes per context, from 1K to 4M.
    #[test]
    fn fast_path_within_budget() {
        for capacity in [1_000, 1 << 20, 1_000_000, 4 << 20, 4_000_000] {
            let f = Footprint::new(capacity, 2).unwrap();
            assert!(f.fast_path_per_context() <= 128, "{capacity}: {f:?}");
            // Exact sizes, rounded up to the 2 MiB huge-page alignment.
            assert!(f.slots >= capacity * 96 && f.slots - capacity * 96 < 2 << 20);
            let counters = capacity * 40;
            assert!(f.counters_per_worker >= counters);
            assert!(f.counters_per_worker - counters < 2 << 20);
        }
        // 4M contexts: 96 + 2 x ~12.2 = 121 bytes per context in the fast path.
        let f = Footprint::new(4 << 20, 2).unwrap();
        assert_eq!(f.fast_path_per_context(), 121);
        assert_eq!(bytes_per_context(4 << 20, 2), 121 + 80 + 4);
        assert_eq!(bytes_per_context(usize::MAX, 1), usize::MAX);
    }
}
