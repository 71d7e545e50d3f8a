//! Batched lookups that overlap the cache misses of a whole burst.
//!
//! At a million contexts the table is far larger than the last-level cache, so a lookup
//! costs two dependent memory accesses: the index bucket, then the slot it names. Done one
//! packet at a time, the core waits for each in turn. Here a burst is resolved in three
//! passes: hash every key and prefetch its home bucket; read each home bucket's likely
//! candidate and prefetch that slot; then do the real lookups, which now mostly hit the
//! cache. The misses of up to [`BATCH`] packets are in flight together.
//!
//! A table that fits the cache (under [`PREFETCH_MIN_BYTES`]) has no misses to overlap, and
//! reading the home bucket an extra time would only add instructions: its batches just hash
//! and look up, so a batch is never slower than single lookups.
//!
//! [`PREFETCH_MIN_BYTES`]: crate::table::PREFETCH_MIN_BYTES

use wire::{ContextTag, Ulid};

use crate::entry::Entry;
use crate::index::Index;
use crate::table::{Shared, TableReader};

/// Keys resolved per pass (a typical rx burst).
pub const BATCH: usize = 32;

/// Pass 2 for one key: prefetch the slot its home bucket most likely points to.
#[inline(always)]
fn prefetch_candidate(shared: &Shared, index: &Index, hash: u64) {
    if let Some(slot) = index.home_candidate(hash).and_then(|s| shared.slot(s)) {
        slot.prefetch();
    }
}

impl Shared {
    /// The prefetch passes of a batch: every home bucket, then the slot each bucket most
    /// likely points to (by then the bucket has had the first pass's time to arrive).
    #[inline(always)]
    pub(crate) fn prefetch_batch(&self, index: &Index, hashes: &[u64]) {
        for &h in hashes {
            index.prefetch_home(h);
        }
        for &h in hashes {
            prefetch_candidate(self, index, h);
        }
    }
}

impl TableReader {
    /// [`by_tag`](TableReader::by_tag) for a burst: `out[i]` gets the context of `tags[i]`,
    /// for `i` below the shorter length. Same results as one lookup per key, fewer stalls
    /// (a slot that stays mid-write gives `None`, as in `by_tag`: punt).
    pub fn by_tag_batch(&self, tags: &[ContextTag], out: &mut [Option<Entry>]) {
        let shared = self.shared();
        for (tags, out) in tags.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut hashes = [0u64; BATCH];
            for (h, &tag) in hashes.iter_mut().zip(tags) {
                *h = shared.hasher.tag(tag);
            }
            if shared.prefetch {
                for &h in hashes.iter().take(tags.len()) {
                    shared.tags.prefetch_home(h);
                }
                for &h in hashes.iter().take(tags.len()) {
                    prefetch_candidate(shared, &shared.tags, h);
                }
            }
            for ((o, &h), &tag) in out.iter_mut().zip(&hashes).zip(tags) {
                shared.lookup_tag_into(h, tag, o);
            }
        }
    }

    /// [`by_ulids`](TableReader::by_ulids) for a burst of (local ULID, peer ULID) keys.
    pub fn by_ulids_batch(&self, keys: &[(Ulid, Ulid)], out: &mut [Option<Entry>]) {
        let shared = self.shared();
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut hashes = [0u64; BATCH];
            for (h, &(local, peer)) in hashes.iter_mut().zip(keys) {
                *h = shared.hasher.ulids(local, peer);
            }
            if shared.prefetch {
                for &h in hashes.iter().take(keys.len()) {
                    shared.ulids.prefetch_home(h);
                }
                for &h in hashes.iter().take(keys.len()) {
                    prefetch_candidate(shared, &shared.ulids, h);
                }
            }
            for ((o, &h), &(local, peer)) in out.iter_mut().zip(&hashes).zip(keys) {
                shared.lookup_ulids_into(h, local, peer, o);
            }
        }
    }
}
