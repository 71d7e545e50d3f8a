//! Keyed hashes of the two lookup keys, and the map from a hash to a home bucket.
//!
//! Context tags are random in at least 30 of their 47 bits but may carry up to 17 bits of
//! structure ([RFC 5533 §7.1]), and ULIDs are chosen by peers, so neither is used as an index
//! directly: both go through a seeded multiply-fold mix, which spreads structured or
//! adversarial keys without the seed being known off-box.
//!
//! [RFC 5533 §7.1]: https://www.rfc-editor.org/rfc/rfc5533#section-7.1

use wire::{ContextTag, Ulid};

/// Odd constants from the fractional digits of pi and e, as in many multiply-mix hashes.
const K: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0xb7e1_5162_8aed_2a6b,
];

/// 128-bit product of `a` and `b`, folded to 64 bits: every input bit reaches the output.
#[inline(always)]
const fn fold_mul(a: u64, b: u64) -> u64 {
    let m = (a as u128).wrapping_mul(b as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

/// SplitMix64 step: expands one seed into independent per-word keys.
const fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The table's hash keys, drawn once from the configured seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hasher {
    keys: [u64; 6],
}

impl Hasher {
    pub(crate) fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut keys = [0; 6];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = splitmix(&mut state) ^ K[i % K.len()];
        }
        Self { keys }
    }

    /// Hash of our context tag, for the ingress index.
    #[inline(always)]
    pub(crate) fn tag(&self, tag: ContextTag) -> u64 {
        let [k0, k1, k2, ..] = self.keys;
        fold_mul(fold_mul(tag.get() ^ k0, k1), k2)
    }

    /// Hash of the (local ULID, peer ULID) pair, for the egress index. Order matters: the
    /// pair (a, b) and (b, a) are different contexts.
    #[inline(always)]
    pub(crate) fn ulids(&self, local: Ulid, peer: Ulid) -> u64 {
        let [l_hi, l_lo] = split(local);
        let [p_hi, p_lo] = split(peer);
        self.pair_words(&[l_hi, l_lo, p_hi, p_lo])
    }

    /// [`Hasher::ulids`] of the pair given as four big-endian halves (the same value).
    #[inline(always)]
    pub(crate) fn pair_words(&self, key: &[u64; 4]) -> u64 {
        let [l_hi, l_lo, p_hi, p_lo] = *key;
        let [k0, k1, k2, k3, k4, k5] = self.keys;
        let a = fold_mul(l_hi ^ k0, l_lo ^ k1);
        let b = fold_mul(p_hi ^ k2, p_lo ^ k3);
        fold_mul(a ^ k4, b ^ k5)
    }
}

/// A ULID as two big-endian 64-bit halves, the form the table stores it in.
#[inline(always)]
pub(crate) fn split(u: Ulid) -> [u64; 2] {
    let bits = u.0.to_bits();
    [(bits >> 64) as u64, bits as u64]
}

/// Home bucket for `hash` among `buckets`: the high bits of `hash * buckets` (Lemire's
/// multiply-shift range reduction), so the bucket count need not be a power of two and the
/// index is sized to the configured capacity, not to the next power of two.
#[inline(always)]
pub(crate) fn home_bucket(hash: u64, buckets: usize) -> usize {
    (((hash as u128) * (buckets as u128)) >> 64) as usize
}

/// 32-bit fingerprint kept beside each index entry, so most non-matching entries are
/// skipped without touching their slot. Taken from the low half, independent of the
/// high bits that pick the bucket.
#[inline(always)]
pub(crate) fn fingerprint(hash: u64) -> u32 {
    hash as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn home_bucket_in_range() {
        for buckets in [1usize, 2, 7, 1000, 798_916] {
            for h in [0, 1, u64::MAX / 3, u64::MAX - 1, u64::MAX] {
                assert!(home_bucket(h, buckets) < buckets);
            }
        }
        assert_eq!(home_bucket(u64::MAX, 10), 9);
        assert_eq!(home_bucket(0, 10), 0);
    }

    #[test]
    fn seeds_change_hashes() {
        let tag = ContextTag::new(0x1234_5678_9abc).unwrap();
        assert_ne!(Hasher::new(1).tag(tag), Hasher::new(2).tag(tag));
    }

    #[test]
    fn ulid_order_matters() {
        let h = Hasher::new(7);
        let a = Ulid(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let b = Ulid(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        assert_ne!(h.ulids(a, b), h.ulids(b, a));
        assert_eq!(split(a), [0xfd00_0000_0000_0000, 1]);
    }

    /// Tags that differ only in their top 17 (structured) bits still land in distinct
    /// buckets: the index never takes tag bits as the bucket number.
    #[test]
    fn structured_tag_bits_spread() {
        let h = Hasher::new(42);
        let buckets = 1024;
        let mut hits = vec![0u32; buckets];
        for hi in 0..4096u64 {
            let tag = ContextTag::new((hi << 30) | 0x2aaa_aaaa).unwrap();
            hits[home_bucket(h.tag(tag), buckets)] += 1;
        }
        // 4096 keys in 1024 buckets: about 4 each; a poor hash would pile them up.
        let max = *hits.iter().max().unwrap();
        let empty = hits.iter().filter(|&&n| n == 0).count();
        assert!(max <= 14, "max bucket load {max}");
        assert!(empty < 60, "{empty} empty buckets");
    }
}
