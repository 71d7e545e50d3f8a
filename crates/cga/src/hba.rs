//! Hash-Based Addresses ([RFC 5535](https://www.rfc-editor.org/rfc/rfc5535)): generating an HBA
//! set and checking that a locator belongs to one.

use std::collections::HashSet;
use std::net::Ipv6Addr;

use rand_core::RngCore;

use crate::address::{check_generation_sec, check_key_encoding, search_modifier, PdsParts};
use crate::ext::MultiPrefix;
use crate::hash::{self, MAX_GENERATION_SEC};
use crate::{CgaError, CgaParameters};

/// Length of the random Extended Modifier of a pure HBA set: 384 bits (RFC 5535 §6).
pub const PSEUDO_KEY_RAW_LEN: usize = 48;

/// DER header wrapping the Extended Modifier as an rsaEncryption SubjectPublicKeyInfo whose BIT
/// STRING holds the 48 raw bytes, as LinShim6 (after F. Dupont's HBA code) does; the §11.2
/// vector depends on it. RFC 5535 §6 asks for an `RSAPublicKey` inside but does not say how 384
/// bits map onto one; verifiers only hash these bytes, so any wrapping verifies.
const PSEUDO_KEY_HEADER: [u8; 20] = [
    0x30, 0x42, // SEQUENCE, 66 bytes
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
    0x00, // rsaEncryption, NULL
    0x03, 0x31, 0x00, // BIT STRING, 49 bytes, 0 unused bits
];

/// Wraps a 384-bit Extended Modifier as the DER "public key" of a pure HBA set (RFC 5535 §6
/// step 2): 68 bytes.
pub fn pseudo_key(extended_modifier: &[u8; PSEUDO_KEY_RAW_LEN]) -> Vec<u8> {
    let mut der = Vec::with_capacity(PSEUDO_KEY_HEADER.len() + PSEUDO_KEY_RAW_LEN);
    der.extend_from_slice(&PSEUDO_KEY_HEADER);
    der.extend_from_slice(extended_modifier);
    der
}

/// What fills the Public Key field of an HBA set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKey<'a> {
    /// A real DER public key: a CGA-compatible set (P = 1) whose key can also sign locators
    /// outside the set (RFC 5535 §4, §8.1).
    Public(&'a [u8]),
    /// A random Extended Modifier: a pure HBA set (P = 0).
    Pseudo([u8; PSEUDO_KEY_RAW_LEN]),
}

/// An HBA set ([RFC 5535 §6](https://www.rfc-editor.org/rfc/rfc5535#section-6)): one address per
/// prefix, each with its own PDS (its prefix in the Subnet Prefix field); any one PDS describes
/// the whole set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaSet {
    /// `HBA[i] = Prefix[i] ‖ IID[i]`; the IIDs differ per prefix.
    pub addresses: Vec<Ipv6Addr>,
    /// The PDS of `HBA[i]`, in the same order.
    pub parameters: Vec<CgaParameters>,
}

/// Generates an HBA set (Sec 0..=2) with a random modifier: CGA-compatible when
/// `public_key_der` is given, pure HBA with a random 384-bit pseudo key otherwise.
pub fn generate_set(
    prefixes: &[[u8; 8]],
    sec: u8,
    public_key_der: Option<&[u8]>,
    rng: &mut impl RngCore,
) -> Result<HbaSet, CgaError> {
    let key = match public_key_der {
        Some(der) => SetKey::Public(der),
        None => {
            let mut raw = [0; PSEUDO_KEY_RAW_LEN];
            rng.fill_bytes(&mut raw);
            SetKey::Pseudo(raw)
        }
    };
    let mut start = [0; 16];
    rng.fill_bytes(&mut start);
    generate_set_from_modifier(prefixes, sec, key, start)
}

/// Deterministic HBA-set generation ([RFC 5535 §6](https://www.rfc-editor.org/rfc/rfc5535#section-6)):
/// builds the Multi-Prefix extension (step 1), searches the modifier from `start` (steps 3–4),
/// then derives each address with collision count 0 (steps 5–6).
pub fn generate_set_from_modifier(
    prefixes: &[[u8; 8]],
    sec: u8,
    key: SetKey<'_>,
    start: [u8; 16],
) -> Result<HbaSet, CgaError> {
    check_generation_sec(sec)?;
    let mut seen = HashSet::with_capacity(prefixes.len());
    if !prefixes.iter().all(|p| seen.insert(p)) {
        return Err(CgaError::DuplicatePrefix);
    }
    let (public_key, public_key_flag) = match key {
        SetKey::Public(der) => {
            check_key_encoding(der)?;
            (der.to_vec(), true)
        }
        SetKey::Pseudo(raw) => (pseudo_key(&raw), false),
    };
    let extensions = MultiPrefix {
        public_key_flag,
        prefixes: prefixes.to_vec(),
    }
    .to_bytes()?;
    let modifier = search_modifier(&public_key, sec, &extensions, start)?;
    let tail = [public_key.as_slice(), extensions.as_slice()];
    let addresses = prefixes
        .iter()
        .map(|p| {
            hash::address(
                p,
                &hash::interface_id(&hash::hash1(&modifier, p, 0, &tail), sec),
            )
        })
        .collect();
    let parameters = prefixes
        .iter()
        .map(|p| CgaParameters {
            modifier,
            subnet_prefix: *p,
            collision_count: 0,
            public_key: public_key.clone(),
            extensions: extensions.clone(),
        })
        .collect();
    Ok(HbaSet {
        addresses,
        parameters,
    })
}

/// Verifies that `locator` belongs to the HBA set described by `params`
/// ([RFC 5535 §7.2](https://www.rfc-editor.org/rfc/rfc5535#section-7.2)): its prefix must be in
/// the Multi-Prefix extension; then CGA verification runs with that prefix substituted for the
/// Subnet Prefix. Only Sec 0..=2 are defined for HBA (RFC 5535 §7).
pub fn verify_member(locator: Ipv6Addr, params: &CgaParameters) -> Result<(), CgaError> {
    let set = params.multi_prefix().ok_or(CgaError::NoMultiPrefix)?;
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&locator.octets()[..8]);
    if !set.contains(&prefix) {
        return Err(CgaError::NotInPrefixSet);
    }
    PdsParts {
        subnet_prefix: prefix,
        ..PdsParts::of_params(params)
    }
    .verify(locator, MAX_GENERATION_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn addrs(list: &[&str]) -> Vec<Ipv6Addr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn linshim6_hba_set_kat() {
        assert_eq!(pseudo_key(&HBA_PSEUDO_KEY_RAW), HBA_PDS[25..93]);
        let set = generate_set_from_modifier(
            &HBA_PREFIXES,
            1,
            SetKey::Pseudo(HBA_PSEUDO_KEY_RAW),
            HBA_START_MODIFIER,
        )
        .unwrap();
        assert_eq!(set.addresses, addrs(&HBA_ADDRESSES));
        assert_eq!(set.parameters[0].to_bytes(), HBA_PDS);
        assert_eq!(set.parameters[0].extensions, HBA_EXTENSION);
        let modifier = set.parameters[0].modifier;
        assert_eq!(
            u128::from_be_bytes(modifier),
            u128::from_be_bytes(HBA_START_MODIFIER) + 1
        );
        for (i, p) in HBA_PREFIXES.iter().enumerate() {
            let params = &set.parameters[i];
            assert_eq!(params.subnet_prefix, *p);
            assert_eq!(params.to_bytes()[16..24], *p);
            assert_eq!(params.to_bytes()[24..], HBA_PDS[24..]);
            let tail: [&[u8]; 1] = [&HBA_PDS[25..]];
            assert_eq!(hash::hash1(&modifier, p, 0, &tail), HBA_HASH1[i]);
            // Each address is a plain CGA with its own PDS...
            crate::verify(set.addresses[i], params).unwrap();
            // ...and a member of the set by any member's PDS.
            for other in &set.parameters {
                verify_member(set.addresses[i], other).unwrap();
            }
        }
        // The received PDS bytes describe the set.
        let parsed = CgaParameters::parse(&HBA_PDS).unwrap();
        let mp = parsed.multi_prefix().unwrap();
        assert!(!mp.public_key_flag);
        assert_eq!(mp.prefixes, HBA_PREFIXES);
    }

    #[test]
    fn the_extension_type_matters() {
        // Spec §11.2: with type 0x000C none of the vector's addresses come out.
        let mut ext = HBA_EXTENSION;
        ext[1] = 0x0c;
        let key = pseudo_key(&HBA_PSEUDO_KEY_RAW);
        let modifier = HBA_PDS[..16].try_into().unwrap();
        let h1 = hash::hash1(&modifier, &HBA_PREFIXES[0], 0, &[&key, &ext]);
        assert_ne!(h1, HBA_HASH1[0]);
    }

    #[test]
    fn cga_compatible_set() {
        let mut rng = StdRng::seed_from_u64(9);
        let prefixes = [
            [0x20, 0x01, 0x0d, 0xb8, 0, 0xa, 0, 0],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0xb, 0, 0],
        ];
        let set = generate_set(&prefixes, 1, Some(&TEST_KEY_DER), &mut rng).unwrap();
        assert_eq!(set.addresses.len(), 2);
        assert_ne!(
            set.addresses[0].octets()[8..],
            set.addresses[1].octets()[8..],
            "IIDs differ per prefix"
        );
        for (i, a) in set.addresses.iter().enumerate() {
            assert_eq!(a.octets()[..8], prefixes[i]);
            assert_eq!(a.octets()[8] >> 5, 1);
            let p = &set.parameters[i];
            assert_eq!(p.public_key, TEST_KEY_DER);
            assert!(p.multi_prefix().unwrap().public_key_flag);
            crate::verify(*a, p).unwrap();
            verify_member(*a, &set.parameters[1 - i]).unwrap();
        }
    }

    #[test]
    fn pure_hba_set_from_rng() {
        let mut rng = StdRng::seed_from_u64(10);
        let set = generate_set(&HBA_PREFIXES[..2], 0, None, &mut rng).unwrap();
        let p = &set.parameters[0];
        assert_eq!(p.public_key.len(), 68);
        assert_eq!(p.public_key[..20], PSEUDO_KEY_HEADER);
        assert!(!p.multi_prefix().unwrap().public_key_flag);
        verify_member(set.addresses[1], p).unwrap();
        assert!(crate::CgaPublicKey::from_der(&p.public_key).is_err());
    }

    #[test]
    fn membership_failures() {
        let set = generate_set_from_modifier(
            &HBA_PREFIXES,
            1,
            SetKey::Pseudo(HBA_PSEUDO_KEY_RAW),
            HBA_START_MODIFIER,
        )
        .unwrap();
        let params = &set.parameters[0];
        // Prefix outside the set.
        let outside: Ipv6Addr = "2001:db8::3cae:90c0:f2b6:e582".parse().unwrap();
        assert!(matches!(
            verify_member(outside, params),
            Err(CgaError::NotInPrefixSet)
        ));
        // Right prefix, another member's IID (same IID under every prefix is not an HBA).
        let mut o = set.addresses[1].octets();
        o[8..].copy_from_slice(&set.addresses[2].octets()[8..]);
        assert!(matches!(
            verify_member(Ipv6Addr::from(o), params),
            Err(CgaError::Hash1Mismatch)
        ));
        // Sec 3+ is not defined for HBA.
        let mut o = set.addresses[1].octets();
        o[8] = (o[8] & 0x1f) | (3 << 5);
        assert!(matches!(
            verify_member(Ipv6Addr::from(o), params),
            Err(CgaError::UnsupportedSec(3))
        ));
        // Sec 2 asks for more zero bits than this modifier has.
        o[8] = (o[8] & 0x1f) | (2 << 5);
        assert!(matches!(
            verify_member(Ipv6Addr::from(o), params),
            Err(CgaError::Hash2Mismatch { sec: 2 })
        ));
        // A plain CGA PDS describes no set.
        let cga = CgaParameters::parse(&RFC3972_PDS).unwrap();
        assert!(matches!(
            verify_member(set.addresses[0], &cga),
            Err(CgaError::NoMultiPrefix)
        ));
        // Collision count is still checked.
        let bad_cc = CgaParameters {
            collision_count: 3,
            ..params.clone()
        };
        assert!(matches!(
            verify_member(set.addresses[0], &bad_cc),
            Err(CgaError::BadCollisionCount(3))
        ));
        // Any byte of the PDS changed: no member verifies any more.
        let bytes = params.to_bytes();
        for i in (0..bytes.len()).filter(|i| !(16..24).contains(i)) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            if let Ok(bad) = CgaParameters::parse(&bad) {
                assert!(
                    set.addresses
                        .iter()
                        .all(|a| verify_member(*a, &bad).is_err()),
                    "byte {i}"
                );
            }
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_verify_member(
                bytes in prop::collection::vec(any::<u8>(), 0..300),
                address in any::<[u8; 16]>(),
            ) {
                if let Ok(p) = CgaParameters::parse(&bytes) {
                    let _ = verify_member(Ipv6Addr::from(address), &p);
                }
            }

            #[test]
            fn tampered_kat_pds(i in 0usize..125, v in any::<u8>(), member in 0usize..3) {
                let mut bytes = HBA_PDS;
                bytes[i] = v;
                let a: Ipv6Addr = HBA_ADDRESSES[member].parse().unwrap();
                if let Ok(p) = CgaParameters::parse(&bytes) {
                    // Only an unchanged byte, or one inside the substituted prefix field, keeps
                    // the member valid.
                    let ok = verify_member(a, &p).is_ok();
                    prop_assert_eq!(ok, v == HBA_PDS[i] || (16..24).contains(&i));
                }
            }
        }
    }

    #[test]
    fn bad_requests() {
        let key = SetKey::Public(&TEST_KEY_DER);
        assert!(matches!(
            generate_set_from_modifier(&[], 0, key, [0; 16]),
            Err(CgaError::BadPrefixCount(0))
        ));
        assert!(matches!(
            generate_set_from_modifier(&[[1; 8], [2; 8], [1; 8]], 0, key, [0; 16]),
            Err(CgaError::DuplicatePrefix)
        ));
        assert!(matches!(
            generate_set_from_modifier(&[[1; 8]], 3, key, [0; 16]),
            Err(CgaError::UnsupportedSec(3))
        ));
        assert!(matches!(
            generate_set_from_modifier(&[[1; 8]], 0, SetKey::Public(&[1, 2, 3]), [0; 16]),
            Err(CgaError::MalformedKey)
        ));
    }
}
