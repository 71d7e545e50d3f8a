//! The table itself: shared storage, the single writer and the lock-free readers.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

use wire::{ContextTag, LocatorPair, Ulid};

use crate::counters::{self, Activity, Shard, WorkerCounters};
use crate::entry::{self, decode, encode, word, Entry, NewEntry, SlotId, Words, LIVE, WORDS};
use crate::footprint::Footprint;
use crate::hash::{split, Hasher};
use crate::index::{Index, Probe};
use crate::mem::ZeroedSlice;
use crate::slot::Slot;
use crate::TableError;

/// Most counter shards (workers) a table supports.
pub const MAX_WORKERS: usize = 256;

/// Sizing of a table, fixed at construction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TableConfig {
    /// Most contexts held at once (1 ..= 2^32 - 1).
    pub capacity: usize,
    /// Number of workers, one counter shard each (0 ..= [`MAX_WORKERS`]).
    pub workers: usize,
    /// Key of the index hashes. Keep it secret and random in production (peers choose their
    /// ULIDs, and could otherwise aim at one bucket); fix it in tests.
    pub seed: u64,
}

impl TableConfig {
    /// A configuration with a random hash seed.
    pub fn new(capacity: usize, workers: usize) -> Self {
        Self {
            capacity,
            workers,
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }

    /// The same configuration with a fixed hash seed.
    pub const fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
}

/// Result of a lookup that may run into a slot being written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lookup {
    /// The context, as a consistent snapshot.
    Hit(Entry),
    /// No such context.
    Miss,
    /// A candidate slot stayed mid-write for the whole spin budget (the writer was
    /// descheduled mid-update): the answer is unknown. Punt the packet to the slow path.
    Busy,
}

impl Lookup {
    /// The entry on a hit; `None` on a miss or when busy (punt either way).
    pub fn hit(self) -> Option<Entry> {
        match self {
            Lookup::Hit(e) => Some(e),
            Lookup::Miss | Lookup::Busy => None,
        }
    }
}

impl From<Probe<Entry>> for Lookup {
    fn from(p: Probe<Entry>) -> Self {
        match p {
            Probe::Hit(e) => Lookup::Hit(e),
            Probe::Miss => Lookup::Miss,
            Probe::Busy => Lookup::Busy,
        }
    }
}

/// Everything readers and the writer share.
pub(crate) struct Shared {
    slots: ZeroedSlice<Slot>,
    pub(crate) tags: Index,
    pub(crate) ulids: Index,
    pub(crate) hasher: Hasher,
    pub(crate) shards: Box<[Shard]>,
    workers: usize,
    /// Whether batched lookups prefetch: only when slots and indexes outgrow
    /// [`PREFETCH_MIN_BYTES`]. In a table that stays cached the prefetch passes are pure
    /// overhead (a third of a small table's lookup cost).
    pub(crate) prefetch: bool,
}

/// Table size (slots plus both indexes) from which batched lookups prefetch: about a
/// per-core L2 cache, 8,000-odd contexts.
pub(crate) const PREFETCH_MIN_BYTES: usize = 1 << 20;

impl Shared {
    fn new(config: &TableConfig) -> Result<Self, TableError> {
        if config.capacity == 0 || u32::try_from(config.capacity).is_err() {
            return Err(TableError::InvalidCapacity);
        }
        if config.workers > MAX_WORKERS {
            return Err(TableError::InvalidWorkers);
        }
        let shards = (0..config.workers)
            .map(|_| Shard::new(config.capacity))
            .collect::<Result<Vec<_>, _>>()?;
        let slots = ZeroedSlice::<Slot>::new(config.capacity)?;
        let tags = Index::with_capacity(config.capacity)?;
        let ulids = Index::with_capacity(config.capacity)?;
        let bytes = slots.allocated_bytes() + tags.allocated_bytes() + ulids.allocated_bytes();
        Ok(Self {
            slots,
            tags,
            ulids,
            hasher: Hasher::new(config.seed),
            shards: shards.into_boxed_slice(),
            workers: config.workers,
            prefetch: bytes >= PREFETCH_MIN_BYTES,
        })
    }

    #[inline(always)]
    pub(crate) fn slot(&self, slot: SlotId) -> Option<&Slot> {
        self.slots.get(slot.index())
    }

    /// Reads `slot` and returns it if `matches` accepts its words.
    #[inline(always)]
    fn check(&self, slot: SlotId, matches: impl Fn(&Words) -> bool) -> Probe<Entry> {
        let Some(s) = self.slot(slot) else {
            return Probe::Miss;
        };
        match s.read() {
            None => Probe::Busy,
            Some(w) if matches(&w) => decode(&w, slot).map_or(Probe::Miss, Probe::Hit),
            Some(_) => Probe::Miss,
        }
    }

    /// Reads `slot` into `out` (decoded) if `matches` accepts its words: the batch lookups
    /// write each answer straight into the caller's array, with no intermediate copies.
    #[inline(always)]
    fn check_into(
        &self,
        slot: SlotId,
        matches: impl Fn(&Words) -> bool,
        out: &mut Option<Entry>,
    ) -> Probe<()> {
        let Some(s) = self.slot(slot) else {
            return Probe::Miss;
        };
        match s.read() {
            None => Probe::Busy,
            Some(w) if matches(&w) => {
                *out = decode(&w, slot);
                if out.is_some() {
                    Probe::Hit(())
                } else {
                    Probe::Miss
                }
            }
            Some(_) => Probe::Miss,
        }
    }

    /// [`Shared::lookup_tag`] answering into `out` (`None` on a miss or busy slot).
    #[inline(always)]
    pub(crate) fn lookup_tag_into(&self, hash: u64, tag: ContextTag, out: &mut Option<Entry>) {
        *out = None;
        self.tags.find(hash, |slot| {
            self.check_into(
                slot,
                |w| w[word::META] & LIVE != 0 && entry::meta_tag(w[word::META]) == tag,
                out,
            )
        });
    }

    /// [`Shared::lookup_ulids`] answering into `out` (`None` on a miss or busy slot).
    #[inline(always)]
    pub(crate) fn lookup_ulids_into(
        &self,
        hash: u64,
        local: Ulid,
        peer: Ulid,
        out: &mut Option<Entry>,
    ) {
        let [a, b] = split(local);
        let [c, d] = split(peer);
        *out = None;
        self.ulids.find(hash, |slot| {
            self.check_into(
                slot,
                |w| {
                    w[word::META] & LIVE != 0
                        && w[word::LOCAL_ULID..word::PEER_ULID + 2] == [a, b, c, d]
                },
                out,
            )
        });
    }

    #[inline(always)]
    pub(crate) fn lookup_tag(&self, hash: u64, tag: ContextTag) -> Lookup {
        self.tags
            .find(hash, |slot| {
                self.check(slot, |w| {
                    w[word::META] & LIVE != 0 && entry::meta_tag(w[word::META]) == tag
                })
            })
            .into()
    }

    #[inline(always)]
    pub(crate) fn lookup_ulids(&self, hash: u64, local: Ulid, peer: Ulid) -> Lookup {
        let [a, b] = split(local);
        let [c, d] = split(peer);
        self.ulids
            .find(hash, |slot| {
                self.check(slot, |w| {
                    w[word::META] & LIVE != 0
                        && w[word::LOCAL_ULID..word::PEER_ULID + 2] == [a, b, c, d]
                })
            })
            .into()
    }

    fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            // `i < capacity <= u32::MAX` (checked in `new`).
            let slot = SlotId(i as u32);
            s.read().and_then(|w| decode(&w, slot))
        })
    }

    fn footprint(&self) -> Footprint {
        Footprint {
            capacity: self.slots.len(),
            workers: self.workers,
            slots: self.slots.allocated_bytes(),
            tag_index: self.tags.allocated_bytes(),
            ulid_index: self.ulids.allocated_bytes(),
            counters_per_worker: self.shards.first().map_or(0, Shard::allocated_bytes),
            writer: self.slots.len() * core::mem::size_of::<u32>(),
        }
    }
}

/// A worker's view of the table: lock-free, wait-free lookups that never allocate.
///
/// Cheap to clone (one `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct TableReader {
    shared: Arc<Shared>,
}

impl TableReader {
    /// Ingress lookup by our context tag CT(local), as carried in a received payload
    /// extension header ([RFC 5533 §12.2]). `None` means punt (unknown tag: the slow path
    /// answers with R1bis, [§7.17]).
    ///
    /// [RFC 5533 §12.2]: https://www.rfc-editor.org/rfc/rfc5533#section-12.2
    /// [§7.17]: https://www.rfc-editor.org/rfc/rfc5533#section-7.17
    #[inline]
    pub fn by_tag(&self, tag: ContextTag) -> Option<Entry> {
        self.try_by_tag(tag).hit()
    }

    /// [`by_tag`](Self::by_tag), telling a miss from a slot that stayed mid-write.
    #[inline]
    pub fn try_by_tag(&self, tag: ContextTag) -> Lookup {
        self.shared.lookup_tag(self.shared.hasher.tag(tag), tag)
    }

    /// Egress lookup by (source ULID, destination ULID) of a packet from the inside host,
    /// the sending side's key with FII = 0 ([RFC 5533 §12.4]).
    ///
    /// [RFC 5533 §12.4]: https://www.rfc-editor.org/rfc/rfc5533#section-12.4
    #[inline]
    pub fn by_ulids(&self, local: Ulid, peer: Ulid) -> Option<Entry> {
        self.try_by_ulids(local, peer).hit()
    }

    /// [`by_ulids`](Self::by_ulids), telling a miss from a slot that stayed mid-write.
    #[inline]
    pub fn try_by_ulids(&self, local: Ulid, peer: Ulid) -> Lookup {
        self.shared
            .lookup_ulids(self.shared.hasher.ulids(local, peer), local, peer)
    }

    /// Claims worker `worker`'s counter shard. One live handle per worker.
    pub fn counters(&self, worker: usize) -> Result<WorkerCounters, TableError> {
        WorkerCounters::claim(Arc::clone(&self.shared), worker)
    }

    /// Traffic on the context in `slot`, summed over workers; `None` if out of range.
    pub fn activity(&self, slot: SlotId) -> Option<Activity> {
        counters::activity(&self.shared.shards, slot)
    }

    /// Every live context (operator view; O(capacity)). Slots caught mid-write are skipped.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        self.shared.iter()
    }

    /// Configured capacity.
    pub fn capacity(&self) -> usize {
        self.shared.slots.len()
    }

    /// Memory the table uses, split by part.
    pub fn footprint(&self) -> Footprint {
        self.shared.footprint()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl core::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TableReader")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// Longest probe sequences in the two indexes (diagnostics).
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct ProbeStats {
    /// Most buckets any tag entry lives past its home bucket.
    pub max_tag_displacement: usize,
    /// Most buckets any ULID-pair entry lives past its home bucket.
    pub max_ulid_displacement: usize,
    /// Mean tag displacement, in buckets.
    pub mean_tag_displacement: f64,
    /// Mean ULID-pair displacement, in buckets.
    pub mean_ulid_displacement: f64,
}

/// The slow path's handle: the one and only writer. Not `Clone`; `Send`.
///
/// All memory is allocated in [`TableWriter::new`]; no method allocates afterwards (the
/// free-slot queue is reserved to capacity).
pub struct TableWriter {
    shared: Arc<Shared>,
    /// Free slots, reused oldest-freed first so a reader still holding a just-removed
    /// entry's slot number is unlikely to count into its next occupant.
    free: VecDeque<u32>,
}

impl TableWriter {
    /// Allocates a table for `config.capacity` contexts and `config.workers` counter shards.
    pub fn new(config: &TableConfig) -> Result<Self, TableError> {
        let shared = Arc::new(Shared::new(config)?);
        let mut free = VecDeque::new();
        free.try_reserve_exact(config.capacity)
            .map_err(|_| TableError::OutOfMemory)?;
        // `capacity <= u32::MAX` was checked by `Shared::new`.
        free.extend(0..config.capacity as u32);
        Ok(Self { shared, free })
    }

    /// A new reader handle for a worker (or the operator API).
    pub fn reader(&self) -> TableReader {
        TableReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Number of live contexts.
    pub fn len(&self) -> usize {
        self.capacity() - self.free.len()
    }

    /// `true` when no context is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Configured capacity.
    pub fn capacity(&self) -> usize {
        self.shared.slots.len()
    }

    /// The context with local tag `tag`.
    pub fn get(&self, tag: ContextTag) -> Option<Entry> {
        // The writer never races itself, so no lookup of its own is ever `Busy`.
        self.shared
            .lookup_tag(self.shared.hasher.tag(tag), tag)
            .hit()
    }

    /// The context for the (local ULID, peer ULID) pair.
    pub fn get_by_ulids(&self, local: Ulid, peer: Ulid) -> Option<Entry> {
        self.shared
            .lookup_ulids(self.shared.hasher.ulids(local, peer), local, peer)
            .hit()
    }

    /// Adds a context, visible to readers once this returns. Its counters start at zero.
    pub fn insert(&mut self, new: NewEntry) -> Result<SlotId, TableError> {
        if self.get(new.local_tag).is_some() {
            return Err(TableError::DuplicateTag);
        }
        if self.get_by_ulids(new.local_ulid, new.peer_ulid).is_some() {
            return Err(TableError::DuplicateUlids);
        }
        let slot = SlotId(*self.free.front().ok_or(TableError::Full)?);
        let s = self.shared.slot(slot).ok_or(TableError::Full)?;
        let tag_hash = self.shared.hasher.tag(new.local_tag);
        let ulid_hash = self.shared.hasher.ulids(new.local_ulid, new.peer_ulid);
        // Contents first, then the index entries that make it reachable.
        s.write(0, &encode(&new));
        for shard in self.shared.shards.iter() {
            shard.reset(slot);
        }
        if let Err(e) = self.shared.tags.insert(tag_hash, slot) {
            s.write(0, &[0; WORDS]);
            return Err(e);
        }
        if let Err(e) = self.shared.ulids.insert(ulid_hash, slot) {
            self.shared.tags.remove(tag_hash, slot);
            s.write(0, &[0; WORDS]);
            return Err(e);
        }
        self.free.pop_front();
        Ok(slot)
    }

    /// Removes the context with local tag `tag` and returns it. Once this returns, no
    /// lookup that starts afterwards finds it.
    pub fn remove(&mut self, tag: ContextTag) -> Result<Entry, TableError> {
        let e = self.get(tag).ok_or(TableError::NotFound)?;
        let s = self.shared.slot(e.slot).ok_or(TableError::NotFound)?;
        // Unreachable first, then cleared: a reader that already took the slot number from
        // an index sees either the whole old entry (removal not finished) or a free slot.
        self.shared.tags.remove(self.shared.hasher.tag(tag), e.slot);
        self.shared
            .ulids
            .remove(self.shared.hasher.ulids(e.local_ulid, e.peer_ulid), e.slot);
        s.write(0, &[0; WORDS]);
        self.free.push_back(e.slot.0);
        Ok(e)
    }

    /// Switches a context to a new current locator pair and the provider owning its local
    /// locator, e.g. after REAP found a working pair ([RFC 5534 §4.2]) or an Update
    /// ([RFC 5533 §10]). Both change in one step.
    ///
    /// [RFC 5534 §4.2]: https://www.rfc-editor.org/rfc/rfc5534#section-4.2
    /// [RFC 5533 §10]: https://www.rfc-editor.org/rfc/rfc5533#section-10
    pub fn update_pair(
        &mut self,
        tag: ContextTag,
        pair: LocatorPair,
        tx_provider: u16,
    ) -> Result<(), TableError> {
        self.rewrite(tag, |w| {
            w[word::PEER] = entry::peer_word(entry::peer_word_tag(w[word::PEER]), tx_provider);
            w[word::PAIR..word::PAIR + 4].copy_from_slice(&entry::pair_words(pair));
        })
    }

    /// Sets CT(peer), e.g. when the peer's tag is learnt or changes after recovery
    /// ([RFC 5533 §7.5]).
    ///
    /// [RFC 5533 §7.5]: https://www.rfc-editor.org/rfc/rfc5533#section-7.5
    pub fn update_peer_tag(
        &mut self,
        tag: ContextTag,
        peer_tag: ContextTag,
    ) -> Result<(), TableError> {
        self.rewrite(tag, |w| {
            let provider = entry::peer_word_provider(w[word::PEER]);
            w[word::PEER] = entry::peer_word(peer_tag, provider);
        })
    }

    /// Replaces the [`flags`](crate::flags) of a context.
    pub fn set_flags(&mut self, tag: ContextTag, flags: u8) -> Result<(), TableError> {
        self.rewrite(tag, |w| w[word::META] = entry::meta_word(tag, flags))
    }

    /// Applies `change` to the words of `tag`'s slot as one seqlock write.
    fn rewrite(
        &mut self,
        tag: ContextTag,
        change: impl FnOnce(&mut Words),
    ) -> Result<(), TableError> {
        let e = self.get(tag).ok_or(TableError::NotFound)?;
        let s = self.shared.slot(e.slot).ok_or(TableError::NotFound)?;
        let mut w = s.current();
        change(&mut w);
        s.write(0, &w);
        Ok(())
    }

    /// Traffic on the context in `slot`, summed over workers (for REAP and the GC).
    pub fn activity(&self, slot: SlotId) -> Option<Activity> {
        counters::activity(&self.shared.shards, slot)
    }

    /// Every live context (operator view; O(capacity), allocates nothing itself).
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        self.shared.iter()
    }

    /// Memory the table uses, split by part.
    pub fn footprint(&self) -> Footprint {
        self.shared.footprint()
    }

    /// Probe lengths over all live contexts (O(capacity)).
    pub fn probe_stats(&self) -> ProbeStats {
        let mut st = ProbeStats::default();
        let (mut tag_sum, mut ulid_sum, mut n) = (0usize, 0usize, 0usize);
        for e in self.iter() {
            let t = self
                .shared
                .tags
                .displacement(self.shared.hasher.tag(e.local_tag), e.slot)
                .unwrap_or(usize::MAX);
            let u = self
                .shared
                .ulids
                .displacement(self.shared.hasher.ulids(e.local_ulid, e.peer_ulid), e.slot)
                .unwrap_or(usize::MAX);
            st.max_tag_displacement = st.max_tag_displacement.max(t);
            st.max_ulid_displacement = st.max_ulid_displacement.max(u);
            tag_sum = tag_sum.saturating_add(t);
            ulid_sum = ulid_sum.saturating_add(u);
            n += 1;
        }
        if n > 0 {
            st.mean_tag_displacement = tag_sum as f64 / n as f64;
            st.mean_ulid_displacement = ulid_sum as f64 / n as f64;
        }
        st
    }
}

impl core::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TableWriter")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
