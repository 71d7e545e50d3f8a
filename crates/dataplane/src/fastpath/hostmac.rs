//! A worker-private, direct-mapped cache of inside hosts' MACs in front of the shared
//! neighbour table: ingress needs the host's MAC for every packet, and the shared table's
//! lookup (seqlock read, hashed probe over 40-byte slots) costs about 90 instructions; a hit
//! here is one multiply, one load and one compare.
//!
//! Coherence: the whole cache is cleared whenever the neighbour table's version moves
//! (checked once per burst, with the next-hop MACs), so an entry is never older than the
//! burst that found the table unchanged. Only positive answers are cached.

use std::net::Ipv6Addr;

use crate::config::MacAddr;

/// Entries (a power of two): 128 KiB (32-byte entries), room for a few thousand active hosts.
const ENTRIES: usize = 4096;
const SHIFT: u32 = 64 - ENTRIES.trailing_zeros();
/// Set in the MAC word of a filled entry (a MAC is 48 bits).
const VALID: u64 = 1 << 63;

/// The cache (see the module docs).
pub(super) struct HostMacCache {
    /// (ULID, MAC bits | [`VALID`]); a ULID is keyed whole, so hosts under any prefix work.
    entries: Box<[(u128, u64)]>,
}

impl HostMacCache {
    pub(super) fn new() -> Self {
        Self {
            entries: vec![(0, 0); ENTRIES].into_boxed_slice(),
        }
    }

    #[inline(always)]
    fn index(ulid: u128) -> usize {
        // Fibonacci hashing of the interface id (the part that differs between hosts).
        ((ulid as u64 ^ (ulid >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> SHIFT) as usize
    }

    /// The cached MAC of `ulid`, if any.
    #[inline(always)]
    pub(super) fn get(&self, ulid: Ipv6Addr) -> Option<MacAddr> {
        let key = ulid.to_bits();
        let &(k, m) = self.entries.get(Self::index(key))?;
        if k == key && m & VALID != 0 {
            let [_, _, a, b, c, d, e, f] = m.to_be_bytes();
            Some(MacAddr([a, b, c, d, e, f]))
        } else {
            None
        }
    }

    /// Remembers `mac` for `ulid` (replacing whatever shared its entry).
    #[inline]
    pub(super) fn put(&mut self, ulid: Ipv6Addr, mac: MacAddr) {
        let key = ulid.to_bits();
        let [a, b, c, d, e, f] = mac.0;
        if let Some(slot) = self.entries.get_mut(Self::index(key)) {
            *slot = (key, u64::from_be_bytes([0, 0, a, b, c, d, e, f]) | VALID);
        }
    }

    /// Forgets everything (the neighbour table changed).
    pub(super) fn clear(&mut self) {
        self.entries.fill((0, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_replace_clear() {
        let mut c = HostMacCache::new();
        let h = |i: u64| Ipv6Addr::from_bits((0xfc00_0001_0002_0003u128 << 64) | u128::from(i));
        let m = MacAddr([2, 0, 0, 0, 0, 7]);
        assert_eq!(c.get(h(1)), None);
        c.put(h(1), m);
        assert_eq!(c.get(h(1)), Some(m));
        // A different ULID is never answered with another host's MAC.
        for i in 2..20_000 {
            assert_eq!(c.get(h(i)), None);
        }
        assert_eq!(
            c.get(Ipv6Addr::UNSPECIFIED),
            None,
            "the empty entry is not a hit"
        );
        c.put(h(2), MacAddr([2, 0, 0, 0, 0, 8]));
        assert_eq!(c.get(h(2)), Some(MacAddr([2, 0, 0, 0, 0, 8])));
        c.clear();
        assert_eq!(c.get(h(1)), None);
        assert_eq!(c.get(h(2)), None);
    }
}
