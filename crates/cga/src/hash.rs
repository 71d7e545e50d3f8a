//! Hash1, Hash2, the modifier counter and the interface identifier
//! ([RFC 3972 §2–§4](https://www.rfc-editor.org/rfc/rfc3972#section-3)).
//!
//! Inputs are passed as pieces so that a PDS held as separate fields, as one buffer, or with a
//! substituted prefix (HBA) is hashed without building a copy.

use sha1::{Digest, Sha1};
use std::net::Ipv6Addr;

/// Highest Sec value a 3-bit field can carry.
pub(crate) const MAX_SEC: u8 = 7;
/// Highest Sec value with a registered generation procedure (RFC 4982 §5, RFC 5535 §6).
pub(crate) const MAX_GENERATION_SEC: u8 = 2;

/// Sec bits in the first interface-identifier byte (address byte 8).
const SEC_MASK: u8 = 0xe0;
/// Hash bits kept in the first IID byte: Mask1 = 0x1cffffffffffffff (RFC 3972 §2) drops Sec
/// (bits 0–2) and the u/g bits (6–7).
const MASK1_BYTE0: u8 = 0x1c;

/// Hash1: leftmost 64 bits of SHA-1 over `modifier ‖ prefix ‖ collision count ‖ tail`, where
/// `tail` is the public key followed by the extension fields (RFC 3972 §3, §4 step 5).
pub(crate) fn hash1(
    modifier: &[u8; 16],
    prefix: &[u8; 8],
    collision_count: u8,
    tail: &[&[u8]],
) -> [u8; 8] {
    let mut h = Sha1::new();
    h.update(modifier);
    h.update(prefix);
    h.update([collision_count]);
    tail.iter().for_each(|t| h.update(t));
    let digest = h.finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Hash2: leftmost 112 bits of SHA-1 over `modifier ‖ 9 zero bytes ‖ tail` (RFC 3972 §3, §4
/// step 2): prefix and collision count are zeroed so that Hash2 does not depend on them.
pub(crate) fn hash2(modifier: &[u8; 16], tail: &[&[u8]]) -> [u8; 14] {
    let mut h = Sha1::new();
    h.update(modifier);
    h.update([0u8; 9]);
    tail.iter().for_each(|t| h.update(t));
    let digest = h.finalize();
    let mut out = [0; 14];
    out.copy_from_slice(&digest[..14]);
    out
}

/// Whether the leftmost 16·Sec bits of Hash2 are zero (RFC 3972 §4 step 3, §5 step 7).
/// Sec 7 covers all 112 bits; higher values cannot come from a 3-bit field and fail.
pub(crate) fn hash2_satisfies(hash2: &[u8; 14], sec: u8) -> bool {
    hash2
        .get(..usize::from(sec) * 2)
        .is_some_and(|zeros| zeros.iter().all(|b| *b == 0))
}

/// Adds one to the modifier, a 128-bit big-endian unsigned integer, wrapping (RFC 3972 §3, §4
/// step 3).
pub(crate) fn increment(modifier: &mut [u8; 16]) {
    *modifier = u128::from_be_bytes(*modifier).wrapping_add(1).to_be_bytes();
}

/// The interface identifier from Hash1: Sec in the three leftmost bits, u and g bits zero
/// (RFC 3972 §4 step 6).
pub(crate) fn interface_id(hash1: &[u8; 8], sec: u8) -> [u8; 8] {
    let mut iid = *hash1;
    iid[0] = (sec << 5) & SEC_MASK | (hash1[0] & MASK1_BYTE0);
    iid
}

/// `prefix ‖ iid` (RFC 3972 §4 step 7).
pub(crate) fn address(prefix: &[u8; 8], iid: &[u8; 8]) -> Ipv6Addr {
    let mut a = [0; 16];
    a[..8].copy_from_slice(prefix);
    a[8..].copy_from_slice(iid);
    Ipv6Addr::from(a)
}

/// Whether Hash1 equals the address's IID outside Sec and u/g (Mask1, RFC 3972 §5 step 4).
pub(crate) fn iid_matches(hash1: &[u8; 8], iid: &[u8]) -> bool {
    match iid.split_first() {
        Some((first, rest)) => first & MASK1_BYTE0 == hash1[0] & MASK1_BYTE0 && rest == &hash1[1..],
        None => false,
    }
}

/// Sec from the three leftmost IID bits (RFC 3972 §5 step 5).
pub(crate) fn sec_of(address: &Ipv6Addr) -> u8 {
    address.octets()[8] >> 5
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::*;

    #[test]
    fn rfc3972_hashes() {
        let mut modifier = RFC3972_START_MODIFIER;
        let tail: [&[u8]; 1] = [&RFC3972_PDS[25..]];
        assert!(
            !hash2_satisfies(&hash2(&modifier, &tail), 1),
            "the RFC rejects its start value"
        );
        increment(&mut modifier);
        assert_eq!(modifier, RFC3972_PDS[..16]);
        let h2 = hash2(&modifier, &tail);
        assert_eq!(h2, RFC3972_HASH2);
        assert!(hash2_satisfies(&h2, 1));
        assert!(!hash2_satisfies(&h2, 2), "only 23 leading zero bits");
        let h1 = hash1(&modifier, &[0xfe, 0x80, 0, 0, 0, 0, 0, 0], 0, &tail);
        assert_eq!(h1, RFC3972_HASH1);
        let addr = address(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0], &interface_id(&h1, 1));
        assert_eq!(addr, RFC3972_ADDRESS.parse::<Ipv6Addr>().unwrap());
        assert_eq!(sec_of(&addr), 1);
    }

    #[test]
    fn increment_carries_and_wraps() {
        let mut m = [0; 16];
        m[15] = 0xff;
        m[14] = 0xff;
        increment(&mut m);
        assert_eq!(m[13..], [1, 0, 0]);
        let mut max = [0xff; 16];
        increment(&mut max);
        assert_eq!(max, [0; 16]);
    }

    #[test]
    fn interface_id_bits() {
        let h1 = [0xff; 8];
        assert_eq!(interface_id(&h1, 0)[0], 0x1c);
        assert_eq!(interface_id(&h1, 7)[0], 0xfc);
        assert_eq!(interface_id(&[0x03; 8], 2)[0], 0x40, "u/g cleared");
        assert_eq!(interface_id(&h1, 1)[1..], [0xff; 7]);
    }

    #[test]
    fn mask1_ignores_sec_and_ug_only() {
        let h1 = [0x1c, 1, 2, 3, 4, 5, 6, 7];
        for first in [0x1c, 0x1d, 0x1e, 0x1f, 0xfc, 0xff, 0x3f] {
            assert!(
                iid_matches(&h1, &[first, 1, 2, 3, 4, 5, 6, 7]),
                "{first:#x}"
            );
        }
        for first in [0x18, 0x14, 0x0c, 0x00] {
            assert!(
                !iid_matches(&h1, &[first, 1, 2, 3, 4, 5, 6, 7]),
                "{first:#x}"
            );
        }
        assert!(!iid_matches(&h1, &[0x1c, 1, 2, 3, 4, 5, 6, 8]));
        assert!(!iid_matches(&h1, &[]));
    }

    #[test]
    fn sec_zero_bits() {
        let mut h = [0u8; 14];
        for sec in 0..=7 {
            assert!(hash2_satisfies(&h, sec));
        }
        assert!(!hash2_satisfies(&h, 8));
        h[13] = 1;
        assert!(hash2_satisfies(&h, 6));
        assert!(!hash2_satisfies(&h, 7));
        h[1] = 0x80;
        assert!(hash2_satisfies(&h, 0));
        assert!(!hash2_satisfies(&h, 1));
    }
}
