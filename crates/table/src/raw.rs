//! Batched lookups for the per-packet fast path that answer in the slot's packed words
//! ([`RawEntry`]) instead of a decoded [`Entry`]: a worker reads five or six fields of a
//! context, and decoding all ten words into `Ipv6Addr`s (byte swaps, 16-byte arrays, an
//! `Option` of 96 bytes) only to encode them back into a header cost more than the lookup
//! itself. Keys come in the form an IPv6 header gives them: the egress key is the source and
//! destination addresses as four big-endian 64-bit halves ([`PairKey`]), which is also how
//! the table stores and hashes ULIDs, so nothing is converted on the way.
//!
//! Same answers as [`TableReader::by_ulids_batch`] / [`TableReader::by_tag_batch`] (a miss and
//! a slot that stayed mid-write both give a miss, [`RawEntry::is_hit`] false: punt), same
//! prefetch passes.

use wire::ContextTag;

use crate::entry::{
    self, decode, meta_tag, peer_word_provider, peer_word_tag, word, Entry, SlotId, Words, LIVE,
    WORDS,
};
use crate::index::Probe;
use crate::table::{Shared, TableReader};
use crate::BATCH;

/// An egress key, (source ULID, destination ULID), as four big-endian 64-bit halves: source
/// high, source low, destination high, destination low (the IPv6 header's bytes 8..40 read
/// as four big-endian words).
pub type PairKey = [u64; 4];

/// A context as its packed slot words, copied out consistently by a lookup; fields are
/// decoded one at a time, only those a packet needs. Addresses are given as two big-endian
/// 64-bit halves (`[high, low]`), ready for `to_be_bytes` into a header.
///
/// Two misses are equal whatever else their words hold (a lookup that misses only clears
/// the live bit).
#[derive(Clone, Copy, Debug)]
pub struct RawEntry {
    words: Words,
    slot: SlotId,
}

impl PartialEq for RawEntry {
    fn eq(&self, other: &Self) -> bool {
        match (self.is_hit(), other.is_hit()) {
            (true, true) => self.words == other.words && self.slot == other.slot,
            (false, false) => true,
            _ => false,
        }
    }
}

impl Eq for RawEntry {}

impl Default for RawEntry {
    fn default() -> Self {
        Self::MISS
    }
}

impl RawEntry {
    /// No context (the answer to a miss).
    pub const MISS: Self = Self {
        words: [0; WORDS],
        slot: SlotId(0),
    };

    /// Whether the lookup found a live context.
    #[inline(always)]
    pub fn is_hit(&self) -> bool {
        self.words[word::META] & LIVE != 0
    }

    /// [`flags`](crate::flags) bits.
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        entry::meta_flags(self.words[word::META])
    }

    /// CT(local).
    #[inline(always)]
    pub fn local_tag(&self) -> ContextTag {
        meta_tag(self.words[word::META])
    }

    /// CT(peer), the tag of the payload headers we send.
    #[inline(always)]
    pub fn peer_tag(&self) -> ContextTag {
        peer_word_tag(self.words[word::PEER])
    }

    /// Provider owning the local locator.
    #[inline(always)]
    pub fn tx_provider(&self) -> u16 {
        peer_word_provider(self.words[word::PEER])
    }

    /// The slot holding the context (key of its counters).
    #[inline(always)]
    pub fn slot(&self) -> SlotId {
        self.slot
    }

    #[inline(always)]
    fn addr(&self, w: usize) -> [u64; 2] {
        [self.words[w], self.words[w + 1]]
    }

    /// ULID(local), `[high, low]`.
    #[inline(always)]
    pub fn local_ulid(&self) -> [u64; 2] {
        self.addr(word::LOCAL_ULID)
    }

    /// ULID(peer), `[high, low]`.
    #[inline(always)]
    pub fn peer_ulid(&self) -> [u64; 2] {
        self.addr(word::PEER_ULID)
    }

    /// Lp(local), `[high, low]`.
    #[inline(always)]
    pub fn local_locator(&self) -> [u64; 2] {
        self.addr(word::PAIR)
    }

    /// Lp(peer), `[high, low]`.
    #[inline(always)]
    pub fn peer_locator(&self) -> [u64; 2] {
        self.addr(word::PAIR + 2)
    }

    /// The decoded entry; `None` for a miss.
    pub fn entry(&self) -> Option<Entry> {
        if self.is_hit() {
            decode(&self.words, self.slot)
        } else {
            None
        }
    }
}

/// Reads `slot` into `out` (in place, no copy through the stack) and reports a hit if it is
/// live and `matches` accepts its words. `out` is left unspecified otherwise: the caller
/// clears its live bit when the whole lookup misses.
#[inline(always)]
fn check_raw(
    shared: &Shared,
    slot: SlotId,
    matches: impl Fn(&Words) -> bool,
    out: &mut RawEntry,
) -> Probe<()> {
    let Some(s) = shared.slot(slot) else {
        return Probe::Miss;
    };
    if !s.read_into(&mut out.words) {
        return Probe::Busy;
    }
    if out.words[word::META] & LIVE != 0 && matches(&out.words) {
        out.slot = slot;
        Probe::Hit(())
    } else {
        Probe::Miss
    }
}

/// Finishes one lookup: anything but a hit leaves a miss.
#[inline(always)]
fn settle(probe: Probe<()>, out: &mut RawEntry) {
    if probe != Probe::Hit(()) {
        out.words[word::META] = 0;
    }
}

impl TableReader {
    /// Egress lookups for a burst: `out[i]` gets the context of `keys[i]` (or a
    /// miss), for `i` below the shorter length.
    pub fn by_pair_batch(&self, keys: &[PairKey], out: &mut [RawEntry]) {
        let shared = self.shared();
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut hashes = [0u64; BATCH];
            for (h, k) in hashes.iter_mut().zip(keys) {
                *h = shared.hasher.pair_words(k);
            }
            if shared.prefetch {
                shared.prefetch_batch(&shared.ulids, &hashes[..keys.len().min(BATCH)]);
            }
            for ((o, &h), k) in out.iter_mut().zip(&hashes).zip(keys) {
                let probe = shared.ulids.find(h, |slot| {
                    check_raw(
                        shared,
                        slot,
                        |w| w[word::LOCAL_ULID..word::PEER_ULID + 2] == *k,
                        o,
                    )
                });
                settle(probe, o);
            }
        }
    }

    /// Ingress lookups by CT(local) for a burst: `out[i]` gets the context of `tags[i]` (or a
    /// miss).
    pub fn by_tag_raw_batch(&self, tags: &[ContextTag], out: &mut [RawEntry]) {
        let shared = self.shared();
        for (tags, out) in tags.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut hashes = [0u64; BATCH];
            for (h, &tag) in hashes.iter_mut().zip(tags) {
                *h = shared.hasher.tag(tag);
            }
            if shared.prefetch {
                shared.prefetch_batch(&shared.tags, &hashes[..tags.len().min(BATCH)]);
            }
            for ((o, &h), &tag) in out.iter_mut().zip(&hashes).zip(tags) {
                let probe = shared.tags.find(h, |slot| {
                    check_raw(shared, slot, |w| meta_tag(w[word::META]) == tag, o)
                });
                settle(probe, o);
            }
        }
    }
}
