//! The fast-path record of one ULID-pair context and its packed form in a slot.

use std::net::Ipv6Addr;

use wire::{ContextTag, Locator, LocatorPair, Ulid};

/// Bits of [`Entry::flags`].
pub mod flags {
    /// The context is ESTABLISHED: CT(peer) and Lp(peer) are known, so packets may be
    /// rewritten ([RFC 5533 §11], [§12.2]). Entries without it are placeholders the fast path
    /// punts on.
    ///
    /// [RFC 5533 §11]: https://www.rfc-editor.org/rfc/rfc5533#section-11
    /// [§12.2]: https://www.rfc-editor.org/rfc/rfc5533#section-12.2
    pub const ESTABLISHED: u8 = 0x01;
    /// The peer is not SHIM6-capable: translate statelessly (NATv6 prefix swap) instead of
    /// inserting the payload extension header; the tags are then only table keys.
    pub const NATV6: u8 = 0x02;
}

/// Index of the slot that holds a context: the key of its per-worker counters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SlotId(pub u32);

impl SlotId {
    /// The slot number as an array index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a worker needs of one ULID-pair context ([RFC 5533 §6.1]), copied out of the table.
///
/// A snapshot: every field was current at one instant during the lookup.
///
/// [RFC 5533 §6.1]: https://www.rfc-editor.org/rfc/rfc5533#section-6.1
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Entry {
    /// CT(local): the tag we allocated, expected in received payload headers.
    pub local_tag: ContextTag,
    /// CT(peer): the tag put in the payload header of what we send.
    pub peer_tag: ContextTag,
    /// ULID(local): the inside host's identifier.
    pub local_ulid: Ulid,
    /// ULID(peer): the remote identifier.
    pub peer_ulid: Ulid,
    /// Current locator pair (Lp(local), Lp(peer)).
    pub pair: LocatorPair,
    /// Provider (port) that owns `pair.local`, so traffic leaves where ingress filtering
    /// accepts that source.
    pub tx_provider: u16,
    /// [`flags`] bits.
    pub flags: u8,
    /// Slot holding the context, the key of its counters.
    pub slot: SlotId,
}

/// The fields of a context the slow path inserts; the table assigns the slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NewEntry {
    /// CT(local), unique per host ([RFC 5533 §7.1]).
    ///
    /// [RFC 5533 §7.1]: https://www.rfc-editor.org/rfc/rfc5533#section-7.1
    pub local_tag: ContextTag,
    /// CT(peer).
    pub peer_tag: ContextTag,
    /// ULID(local).
    pub local_ulid: Ulid,
    /// ULID(peer).
    pub peer_ulid: Ulid,
    /// Current locator pair.
    pub pair: LocatorPair,
    /// Provider owning `pair.local`.
    pub tx_provider: u16,
    /// [`flags`] bits.
    pub flags: u8,
}

impl NewEntry {
    /// The entry as it reads back from `slot`.
    pub const fn at(self, slot: SlotId) -> Entry {
        Entry {
            local_tag: self.local_tag,
            peer_tag: self.peer_tag,
            local_ulid: self.local_ulid,
            peer_ulid: self.peer_ulid,
            pair: self.pair,
            tx_provider: self.tx_provider,
            flags: self.flags,
            slot,
        }
    }
}

/// Number of data words in a slot (besides its sequence word).
pub(crate) const WORDS: usize = 10;

/// Packed form of an entry: the data words of a slot.
///
/// | word | content |
/// |---|---|
/// | 0 | `local_tag` (bits 0..47), `flags` (47..55), live bit (63) |
/// | 1 | `peer_tag` (0..47), `tx_provider` (47..63) |
/// | 2, 3 | `local_ulid` (high, low half) |
/// | 4, 5 | `peer_ulid` |
/// | 6, 7 | `pair.local` |
/// | 8, 9 | `pair.peer` |
pub(crate) type Words = [u64; WORDS];

/// Word indexes of the packed layout.
pub(crate) mod word {
    pub(crate) const META: usize = 0;
    pub(crate) const PEER: usize = 1;
    pub(crate) const LOCAL_ULID: usize = 2;
    pub(crate) const PEER_ULID: usize = 4;
    pub(crate) const PAIR: usize = 6;
}

const TAG_BITS: u32 = 47;
const TAG_MASK: u64 = ContextTag::MASK;
/// Set in word 0 while the slot holds a context.
pub(crate) const LIVE: u64 = 1 << 63;

/// Word 0 for a live entry.
pub(crate) const fn meta_word(tag: ContextTag, flags: u8) -> u64 {
    LIVE | tag.get() | ((flags as u64) << TAG_BITS)
}

/// Word 1.
pub(crate) const fn peer_word(peer_tag: ContextTag, provider: u16) -> u64 {
    peer_tag.get() | ((provider as u64) << TAG_BITS)
}

/// The local tag stored in word 0.
pub(crate) const fn meta_tag(meta: u64) -> ContextTag {
    ContextTag::from_wire(meta & TAG_MASK)
}

/// The flags stored in word 0 (the mask makes the truncation explicit).
#[inline(always)]
pub(crate) const fn meta_flags(meta: u64) -> u8 {
    ((meta >> TAG_BITS) & 0xff) as u8
}

/// The peer tag stored in word 1.
pub(crate) const fn peer_word_tag(peer: u64) -> ContextTag {
    ContextTag::from_wire(peer & TAG_MASK)
}

/// The provider stored in word 1 (the 16 bits above the tag; the mask makes the
/// truncation explicit).
pub(crate) const fn peer_word_provider(peer: u64) -> u16 {
    ((peer >> TAG_BITS) & 0xffff) as u16
}

fn addr_words(a: Ipv6Addr) -> [u64; 2] {
    let bits = a.to_bits();
    [(bits >> 64) as u64, bits as u64]
}

fn addr(hi: u64, lo: u64) -> Ipv6Addr {
    Ipv6Addr::from_bits((u128::from(hi) << 64) | u128::from(lo))
}

/// Packs `e` as a live slot.
pub(crate) fn encode(e: &NewEntry) -> Words {
    let mut w = [0; WORDS];
    w[word::META] = meta_word(e.local_tag, e.flags);
    w[word::PEER] = peer_word(e.peer_tag, e.tx_provider);
    w[word::LOCAL_ULID..word::LOCAL_ULID + 2].copy_from_slice(&addr_words(e.local_ulid.0));
    w[word::PEER_ULID..word::PEER_ULID + 2].copy_from_slice(&addr_words(e.peer_ulid.0));
    w[word::PAIR..word::PAIR + 4].copy_from_slice(&pair_words(e.pair));
    w
}

/// The four words of a locator pair (local then peer).
pub(crate) fn pair_words(p: LocatorPair) -> [u64; 4] {
    let [a, b] = addr_words(p.local.0);
    let [c, d] = addr_words(p.peer.0);
    [a, b, c, d]
}

/// Unpacks a live slot; `None` when the slot is free.
pub(crate) fn decode(w: &Words, slot: SlotId) -> Option<Entry> {
    let meta = w[word::META];
    if meta & LIVE == 0 {
        return None;
    }
    let peer = w[word::PEER];
    Some(Entry {
        local_tag: meta_tag(meta),
        peer_tag: peer_word_tag(peer),
        local_ulid: Ulid(addr(w[word::LOCAL_ULID], w[word::LOCAL_ULID + 1])),
        peer_ulid: Ulid(addr(w[word::PEER_ULID], w[word::PEER_ULID + 1])),
        pair: LocatorPair {
            local: Locator(addr(w[word::PAIR], w[word::PAIR + 1])),
            peer: Locator(addr(w[word::PAIR + 2], w[word::PAIR + 3])),
        },
        tx_provider: peer_word_provider(peer),
        flags: meta_flags(meta),
        slot,
    })
}

#[cfg(test)]
#[cfg(not(loom))]
mod tests {
    use super::*;

    fn sample() -> NewEntry {
        NewEntry {
            local_tag: ContextTag::MAX,
            peer_tag: ContextTag::new(0x0123_4567_89ab).unwrap(),
            local_ulid: Ulid("fd00:1::11".parse().unwrap()),
            peer_ulid: Ulid("fd00:2::22".parse().unwrap()),
            pair: LocatorPair {
                local: Locator("2001:db8:a::11".parse().unwrap()),
                peer: Locator("2001:db8:c::22".parse().unwrap()),
            },
            tx_provider: 0xffff,
            flags: 0xff,
        }
    }

    #[test]
    fn round_trip_extremes() {
        let e = sample();
        let w = encode(&e);
        assert_eq!(decode(&w, SlotId(9)), Some(e.at(SlotId(9))));
        // All-ones tag, flags and provider fill their fields exactly.
        assert_eq!(w[0], LIVE | (0xff << 47) | ContextTag::MASK);
        assert_eq!(w[1], (0xffff << 47) | 0x0123_4567_89ab);
        assert_eq!(w[2], 0xfd00_0001_0000_0000);
        assert_eq!(w[3], 0x11);
    }

    #[test]
    fn free_slot_decodes_to_none() {
        assert_eq!(decode(&[0; WORDS], SlotId(0)), None);
        let mut w = encode(&sample());
        w[0] &= !LIVE;
        assert_eq!(decode(&w, SlotId(0)), None);
    }
}
