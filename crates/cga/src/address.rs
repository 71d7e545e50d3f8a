//! CGA generation ([RFC 3972 §4](https://www.rfc-editor.org/rfc/rfc3972#section-4)) and
//! verification ([RFC 3972 §5](https://www.rfc-editor.org/rfc/rfc3972#section-5)).

use std::net::Ipv6Addr;

use rand_core::RngCore;

use crate::ext::check_extensions;
use crate::hash::{self, MAX_GENERATION_SEC, MAX_SEC};
use crate::params::{der_sequence_len, CgaParamsView};
use crate::{CgaError, CgaParameters};

/// Highest valid Collision Count (RFC 3972 §3: 0, 1 or 2).
pub const MAX_COLLISION_COUNT: u8 = 2;

/// Rejects Sec values without a registered generation procedure (RFC 4982 §5 registers SHA-1
/// with 0, 16 and 32 Hash2 bits; higher values also cost ~2^48+ hashes).
pub(crate) fn check_generation_sec(sec: u8) -> Result<(), CgaError> {
    if sec > MAX_GENERATION_SEC {
        Err(CgaError::UnsupportedSec(sec))
    } else {
        Ok(())
    }
}

/// Checks that `der` is exactly one DER SEQUENCE, so the PDS built from it parses back with the
/// same key/extension split.
pub(crate) fn check_key_encoding(der: &[u8]) -> Result<(), CgaError> {
    match der_sequence_len(der)? {
        len if len == der.len() => Ok(()),
        len if len > der.len() => Err(CgaError::Truncated),
        _ => Err(CgaError::MalformedKey),
    }
}

/// Steps 2–3 of [RFC 3972 §4](https://www.rfc-editor.org/rfc/rfc3972#section-4) (also RFC 5535
/// §6 steps 3–4): from `start`, increments the modifier until the leftmost 16·Sec bits of Hash2
/// over `modifier ‖ 0×9 ‖ public key ‖ extensions` are zero, and returns it. Sec 0 returns
/// `start`. Cost ≈ 2^(16·Sec) SHA-1 evaluations (Sec 2: hours).
///
/// The result is independent of the prefix: the same modifier serves any prefix (RFC 3972 §4's
/// reuse shortcut) and every prefix of an HBA set.
pub fn search_modifier(
    public_key_der: &[u8],
    sec: u8,
    extensions: &[u8],
    start: [u8; 16],
) -> Result<[u8; 16], CgaError> {
    check_generation_sec(sec)?;
    let mut modifier = start;
    if sec == 0 {
        return Ok(modifier);
    }
    let tail = [public_key_der, extensions];
    // Terminates with overwhelming probability after ~2^(16·Sec) steps; the modifier space is
    // 2^128, so wrapping round to `start` is not a practical concern.
    while !hash::hash2_satisfies(&hash::hash2(&modifier, &tail), sec) {
        hash::increment(&mut modifier);
    }
    Ok(modifier)
}

/// Generates a CGA ([RFC 3972 §4](https://www.rfc-editor.org/rfc/rfc3972#section-4)) with a
/// random start modifier (SHOULD be random, so that addresses of one key are unlinkable) and
/// collision count 0. Sec must be 0..=2.
///
/// `extensions` are RFC 4581 TLVs appended to the PDS (empty for a plain CGA). One key serves
/// any number of CGAs under one prefix: each call draws a new modifier.
pub fn generate(
    public_key_der: &[u8],
    prefix: [u8; 8],
    sec: u8,
    extensions: &[u8],
    rng: &mut impl RngCore,
) -> Result<(Ipv6Addr, CgaParameters), CgaError> {
    let mut start = [0; 16];
    rng.fill_bytes(&mut start);
    generate_from_modifier(public_key_der, prefix, sec, extensions, start, 0)
}

/// Deterministic CGA generation ([RFC 3972 §4](https://www.rfc-editor.org/rfc/rfc3972#section-4)):
/// the modifier search starts at `start`, and Hash1 uses `collision_count` (0..=2; the caller
/// increments it after a duplicate-address collision, step 8). Same key, prefix, modifier and
/// collision count give the same address, so storing `(modifier, collision_count)` is enough to
/// re-create a host's CGA.
pub fn generate_from_modifier(
    public_key_der: &[u8],
    prefix: [u8; 8],
    sec: u8,
    extensions: &[u8],
    start: [u8; 16],
    collision_count: u8,
) -> Result<(Ipv6Addr, CgaParameters), CgaError> {
    check_generation_sec(sec)?;
    if collision_count > MAX_COLLISION_COUNT {
        return Err(CgaError::BadCollisionCount(collision_count));
    }
    check_key_encoding(public_key_der)?;
    check_extensions(extensions)?;
    let modifier = search_modifier(public_key_der, sec, extensions, start)?;
    let hash1 = hash::hash1(
        &modifier,
        &prefix,
        collision_count,
        &[public_key_der, extensions],
    );
    let address = hash::address(&prefix, &hash::interface_id(&hash1, sec));
    let params = CgaParameters {
        modifier,
        subnet_prefix: prefix,
        collision_count,
        public_key: public_key_der.to_vec(),
        extensions: extensions.to_vec(),
    };
    Ok((address, params))
}

/// The hashed fields of a PDS, borrowed from wherever they live.
pub(crate) struct PdsParts<'a> {
    pub(crate) modifier: [u8; 16],
    pub(crate) subnet_prefix: [u8; 8],
    pub(crate) collision_count: u8,
    /// Public key then extensions, as one or more pieces.
    pub(crate) tail: [&'a [u8]; 2],
}

impl<'a> PdsParts<'a> {
    pub(crate) fn of_params(p: &'a CgaParameters) -> Self {
        Self {
            modifier: p.modifier,
            subnet_prefix: p.subnet_prefix,
            collision_count: p.collision_count,
            tail: [&p.public_key, &p.extensions],
        }
    }

    pub(crate) fn of_view<T: AsRef<[u8]>>(v: &'a CgaParamsView<T>) -> Self {
        Self {
            modifier: v.modifier(),
            subnet_prefix: v.subnet_prefix(),
            collision_count: v.collision_count(),
            tail: [v.key_and_extensions(), &[]],
        }
    }

    /// The steps of [RFC 3972 §5](https://www.rfc-editor.org/rfc/rfc3972#section-5) in order,
    /// stopping at the first failure. Sec values above `max_sec` are refused at step 5.
    pub(crate) fn verify(&self, address: Ipv6Addr, max_sec: u8) -> Result<(), CgaError> {
        // Step 1.
        if self.collision_count > MAX_COLLISION_COUNT {
            return Err(CgaError::BadCollisionCount(self.collision_count));
        }
        // Step 2.
        let octets = address.octets();
        if octets[..8] != self.subnet_prefix {
            return Err(CgaError::PrefixMismatch);
        }
        // Steps 3–4.
        let h1 = hash::hash1(
            &self.modifier,
            &self.subnet_prefix,
            self.collision_count,
            &self.tail,
        );
        if !hash::iid_matches(&h1, &octets[8..]) {
            return Err(CgaError::Hash1Mismatch);
        }
        // Step 5.
        let sec = hash::sec_of(&address);
        if sec > max_sec {
            return Err(CgaError::UnsupportedSec(sec));
        }
        // Steps 6–7; with Sec 0 they cannot fail, so skip the hash (RFC 3972 §5).
        if sec > 0 && !hash::hash2_satisfies(&hash::hash2(&self.modifier, &self.tail), sec) {
            return Err(CgaError::Hash2Mismatch { sec });
        }
        Ok(())
    }
}

/// CGA verification ([RFC 3972 §5](https://www.rfc-editor.org/rfc/rfc3972#section-5)) for Sec
/// 0..=7: collision count, prefix, Hash1 against the IID (ignoring Sec and u/g bits), then the
/// Hash2 zero bits Sec demands. On success the address is bound to `params.public_key`; a
/// signature check ([`crate::verify_shim6_signature`]) must follow to prove ownership.
pub fn verify(address: Ipv6Addr, params: &CgaParameters) -> Result<(), CgaError> {
    PdsParts::of_params(params).verify(address, MAX_SEC)
}

/// [`verify`] on the encoded PDS, without copying it.
pub fn verify_bytes(address: Ipv6Addr, params: &[u8]) -> Result<(), CgaError> {
    let view = CgaParamsView::new_checked(params)?;
    verify_view(address, &view)
}

/// [`verify`] on a checked view.
pub fn verify_view<T: AsRef<[u8]>>(
    address: Ipv6Addr,
    params: &CgaParamsView<T>,
) -> Result<(), CgaError> {
    PdsParts::of_view(params).verify(address, MAX_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc3972_appendix_a_generation() {
        let key = &RFC3972_PDS[25..];
        let prefix = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];
        let (a, p) =
            generate_from_modifier(key, prefix, 1, &[], RFC3972_START_MODIFIER, 0).unwrap();
        assert_eq!(a, addr(RFC3972_ADDRESS));
        assert_eq!(p.to_bytes(), RFC3972_PDS);
        verify(a, &p).unwrap();
        verify_bytes(a, &RFC3972_PDS).unwrap();
    }

    #[test]
    fn own_kats_section_11_3() {
        for (sec, cc, sec1_modifier, hash1, expected) in TEST_CGAS {
            let (a, p) =
                generate_from_modifier(&TEST_KEY_DER, TEST_PREFIX, sec, &[], [0; 16], cc).unwrap();
            let modifier = if sec1_modifier {
                TEST_SEC1_MODIFIER
            } else {
                [0; 16]
            };
            assert_eq!(p.modifier, modifier);
            assert_eq!(p.collision_count, cc);
            assert_eq!(
                hash::hash1(&modifier, &TEST_PREFIX, cc, &[&TEST_KEY_DER]),
                hash1
            );
            assert_eq!(a, addr(expected), "sec {sec} cc {cc}");
            verify(a, &p).unwrap();
        }
        assert_eq!(
            hash::hash2(&TEST_SEC1_MODIFIER, &[&TEST_KEY_DER]),
            TEST_SEC1_HASH2
        );
        assert_eq!(u128::from_be_bytes(TEST_SEC1_MODIFIER), 27_126);
    }

    #[test]
    fn any_single_byte_change_is_rejected() {
        // Exhaustive over every byte of two real PDSs (the RFC example and our §11.3 Sec 1 CGA
        // with a 1024-bit key), each byte changed in three ways.
        let (ours_addr, ours) =
            generate_from_modifier(&TEST_KEY_DER, TEST_PREFIX, 1, &[], TEST_SEC1_MODIFIER, 0)
                .unwrap();
        for (a, pds) in [
            (addr(RFC3972_ADDRESS), RFC3972_PDS.to_vec()),
            (ours_addr, ours.to_bytes()),
        ] {
            verify_bytes(a, &pds).unwrap();
            for i in 0..pds.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut bad = pds.clone();
                    bad[i] ^= flip;
                    assert!(
                        verify_bytes(a, &bad).is_err(),
                        "{a}: byte {i} ^ {flip:#x} accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn each_step_reports_its_failure() {
        let a = addr(RFC3972_ADDRESS);
        let good = CgaParameters::parse(&RFC3972_PDS).unwrap();
        for cc in [3, 0xff] {
            let p = CgaParameters {
                collision_count: cc,
                ..good.clone()
            };
            assert!(matches!(verify(a, &p), Err(CgaError::BadCollisionCount(c)) if c == cc));
        }
        let other_prefix = addr("fe81::3c4a:5bf6:ffb4:ca6c");
        assert!(matches!(
            verify(other_prefix, &good),
            Err(CgaError::PrefixMismatch)
        ));
        let other_iid = addr("fe80::3c4a:5bf6:ffb4:ca6d");
        assert!(matches!(
            verify(other_iid, &good),
            Err(CgaError::Hash1Mismatch)
        ));
        // Sec 2 demands 32 zero bits; this Hash2 has 23.
        let sec2 = addr("fe80::5c4a:5bf6:ffb4:ca6c");
        assert!(matches!(
            verify(sec2, &good),
            Err(CgaError::Hash2Mismatch { sec: 2 })
        ));
        // Sec 7 (all 112 bits) is processed, and fails.
        let sec7 = addr("fe80::fc4a:5bf6:ffb4:ca6c");
        assert!(matches!(
            verify(sec7, &good),
            Err(CgaError::Hash2Mismatch { sec: 7 })
        ));
        // Sec 0 always passes step 7.
        verify(addr("fe80::1c4a:5bf6:ffb4:ca6c"), &good).unwrap();
    }

    #[test]
    fn u_and_g_bits_are_ignored() {
        let good = CgaParameters::parse(&RFC3972_PDS).unwrap();
        for ug in 1..=3u16 {
            let mut seg = addr(RFC3972_ADDRESS).segments();
            seg[4] |= ug << 8;
            verify(Ipv6Addr::from(seg), &good).unwrap();
        }
    }

    #[test]
    fn collision_counts_and_limits() {
        let key = &TEST_KEY_DER[..];
        let addrs: Vec<_> = (0..=2)
            .map(|cc| {
                generate_from_modifier(key, TEST_PREFIX, 0, &[], [7; 16], cc)
                    .unwrap()
                    .0
            })
            .collect();
        assert_ne!(addrs[0], addrs[1]);
        assert_ne!(addrs[1], addrs[2]);
        assert!(matches!(
            generate_from_modifier(key, TEST_PREFIX, 0, &[], [7; 16], 3),
            Err(CgaError::BadCollisionCount(3))
        ));
        assert!(matches!(
            generate_from_modifier(key, TEST_PREFIX, 3, &[], [0; 16], 0),
            Err(CgaError::UnsupportedSec(3))
        ));
        assert!(matches!(
            search_modifier(key, 7, &[], [0; 16]),
            Err(CgaError::UnsupportedSec(7))
        ));
        assert!(matches!(
            generate_from_modifier(&key[..100], TEST_PREFIX, 0, &[], [0; 16], 0),
            Err(CgaError::Truncated)
        ));
        let mut long = key.to_vec();
        long.push(0);
        assert!(matches!(
            generate_from_modifier(&long, TEST_PREFIX, 0, &[], [0; 16], 0),
            Err(CgaError::MalformedKey)
        ));
        assert!(matches!(
            generate_from_modifier(key, TEST_PREFIX, 0, &[0, 1], [0; 16], 0),
            Err(CgaError::MalformedExtension)
        ));
    }

    #[test]
    fn many_cgas_from_one_key() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..8 {
            let (a, p) = generate(&TEST_KEY_DER, TEST_PREFIX, 1, &[], &mut rng).unwrap();
            assert_eq!(a.octets()[..8], TEST_PREFIX);
            assert_eq!(a.octets()[8] >> 5, 1);
            verify(a, &p).unwrap();
            // Same key + prefix + modifier = same address.
            let again =
                generate_from_modifier(&TEST_KEY_DER, TEST_PREFIX, 1, &[], p.modifier, 0).unwrap();
            assert_eq!(again, (a, p));
            assert!(seen.insert(a));
        }
    }

    #[test]
    fn unknown_extensions_are_hashed() {
        let ext = [0xff, 0xfd, 0x00, 0x01, 0x42];
        let (a, p) =
            generate_from_modifier(&TEST_KEY_DER, TEST_PREFIX, 1, &ext, [0; 16], 0).unwrap();
        verify(a, &p).unwrap();
        verify_bytes(a, &p.to_bytes()).unwrap();
        let mut bytes = p.to_bytes();
        *bytes.last_mut().unwrap() ^= 1;
        assert!(verify_bytes(a, &bytes).is_err());
        let stripped = CgaParameters {
            extensions: vec![],
            ..p
        };
        assert!(verify(a, &stripped).is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_verify(
                bytes in prop::collection::vec(any::<u8>(), 0..300),
                address in any::<[u8; 16]>(),
            ) {
                let a = Ipv6Addr::from(address);
                let r = verify_bytes(a, &bytes);
                if let Ok(p) = CgaParameters::parse(&bytes) {
                    prop_assert_eq!(verify(a, &p).is_ok(), r.is_ok());
                }
            }

            #[test]
            fn generated_sec0_always_verifies(
                modifier in any::<[u8; 16]>(),
                prefix in any::<[u8; 8]>(),
                cc in 0u8..=2,
            ) {
                let (a, p) = generate_from_modifier(&TEST_KEY_DER, prefix, 0, &[], modifier, cc).unwrap();
                prop_assert!(verify(a, &p).is_ok());
                prop_assert_eq!(p.modifier, modifier);
            }
        }
    }
}
