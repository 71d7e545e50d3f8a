//! Verification of the peer: the CGA Parameter Data Structure must correspond to ULID(peer),
//! and every locator of a Locator List must be authorised by a CGA signature made with the PDS
//! key (method CGA) or belong to the peer's HBA set (method HBA)
//! ([RFC 5533 §7.2, §5.15.4, §5.15.5](https://www.rfc-editor.org/rfc/rfc5533#section-7.2),
//! [RFC 5535 §7.2](https://www.rfc-editor.org/rfc/rfc5535#section-7.2)).
//!
//! Successful results are cached (bounded), keyed by a SHA-1 over everything they depend on,
//! so a peer that re-establishes or retransmits costs one hash instead of an RSA verification.

use std::net::Ipv6Addr;
use std::sync::Arc;

use sha1::{Digest, Sha1};
use wire::{LocatorList, Ulid, VerificationMethod};

use crate::cache::BoundedMap;

/// Most verification results cached.
const VERIFY_CACHE: usize = 8192;

/// A peer's PDS that was checked against its ULID.
#[derive(Debug, Clone)]
pub(crate) struct PeerPds {
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) params: Arc<cga::CgaParameters>,
}

/// Why verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerifyFailure {
    /// The PDS does not parse or does not correspond to ULID(peer): drop silently.
    PdsMismatch,
    /// A Locator List came without a PDS (none in the message, none cached).
    NoPds,
    /// Locator `index` uses a method we do not support, or one inconsistent with the PDS
    /// (HBA without a Multi-Prefix extension): Error code 2.
    Method { index: usize },
    /// Locator `index` (method HBA) is not a member of the peer's HBA set: Error code 2.
    NotHbaMember { index: usize },
    /// The CGA Signature is missing or does not verify over the CGA locators; `index` is the
    /// first CGA locator (Error code 2 points at its method octet).
    BadSignature { index: usize },
}

#[derive(Debug)]
pub(crate) struct Verifier {
    pds: Option<BoundedMap<[u8; 20], PeerPds>>,
    lists: Option<BoundedMap<[u8; 20], ()>>,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl Verifier {
    pub(crate) fn new(cache: bool) -> Self {
        Self {
            pds: cache.then(|| BoundedMap::new(VERIFY_CACHE)),
            lists: cache.then(|| BoundedMap::new(VERIFY_CACHE)),
            hits: 0,
            misses: 0,
        }
    }

    pub(crate) fn cache_entries(&self) -> usize {
        self.pds.as_ref().map_or(0, BoundedMap::len)
            + self.lists.as_ref().map_or(0, BoundedMap::len)
    }

    /// Checks that `bytes` is a PDS for `ulid`: `ulid` is a CGA of it, or (HBA ULID) a member
    /// of its Multi-Prefix set.
    pub(crate) fn check_pds(&mut self, ulid: Ulid, bytes: &[u8]) -> Result<PeerPds, VerifyFailure> {
        let key = digest(|h| {
            h.update(b"pds");
            h.update(ulid.octets());
            h.update(bytes);
        });
        if let Some(hit) = self.pds.as_ref().and_then(|c| c.get(&key)) {
            self.hits += 1;
            return Ok(hit.clone());
        }
        self.misses += 1;
        let params = cga::CgaParameters::parse(bytes).map_err(|_| VerifyFailure::PdsMismatch)?;
        let bound = cga::verify(ulid.0, &params).is_ok()
            || (params.multi_prefix().is_some()
                && cga::hba::verify_member(ulid.0, &params).is_ok());
        if !bound {
            return Err(VerifyFailure::PdsMismatch);
        }
        let pds = PeerPds {
            bytes: Arc::new(bytes.to_vec()),
            params: Arc::new(params),
        };
        if let Some(c) = self.pds.as_mut() {
            c.insert(key, pds.clone());
        }
        Ok(pds)
    }

    /// Verifies every locator of `list` against `pds` (and `signature` for method CGA).
    pub(crate) fn check_list(
        &mut self,
        pds: &PeerPds,
        list: &LocatorList,
        signature: Option<&[u8]>,
    ) -> Result<(), VerifyFailure> {
        let key = digest(|h| {
            h.update(b"list");
            h.update(pds.bytes.as_slice());
            h.update(list.generation.to_be_bytes());
            for (loc, method) in &list.entries {
                h.update([method_code(*method)]);
                h.update(loc.octets());
            }
            h.update(signature.unwrap_or(&[]));
        });
        if self.lists.as_ref().is_some_and(|c| c.get(&key).is_some()) {
            self.hits += 1;
            return Ok(());
        }
        self.misses += 1;
        let hba_set = pds.params.multi_prefix().is_some();
        let mut cga_locators: Vec<Ipv6Addr> = Vec::new();
        let mut first_cga = None;
        for (index, (loc, method)) in list.entries.iter().enumerate() {
            match method {
                VerificationMethod::Cga => {
                    first_cga.get_or_insert(index);
                    cga_locators.push(loc.0);
                }
                VerificationMethod::Hba if hba_set => {
                    if cga::hba::verify_member(loc.0, &pds.params).is_err() {
                        return Err(VerifyFailure::NotHbaMember { index });
                    }
                }
                _ => return Err(VerifyFailure::Method { index }),
            }
        }
        if let Some(index) = first_cga {
            let sig = signature.ok_or(VerifyFailure::BadSignature { index })?;
            cga::verify_shim6_signature(&pds.params, list.generation, &cga_locators, sig)
                .map_err(|_| VerifyFailure::BadSignature { index })?;
        }
        if let Some(c) = self.lists.as_mut() {
            c.insert(key, ());
        }
        Ok(())
    }
}

fn method_code(m: VerificationMethod) -> u8 {
    match m {
        VerificationMethod::Hba => 1,
        VerificationMethod::Cga => 2,
        VerificationMethod::Unknown(x) => x,
    }
}

fn digest(f: impl FnOnce(&mut Sha1)) -> [u8; 20] {
    let mut h = Sha1::new();
    f(&mut h);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::keys::SITE_A_PEM;
    use rand::{rngs::StdRng, SeedableRng};
    use wire::Locator;

    fn p64(s: &str) -> [u8; 8] {
        crate::prefix64(s.parse().unwrap())
    }

    fn cga_host() -> (cga::SiteKey, Ulid, Vec<u8>) {
        let key = cga::SiteKey::from_pkcs8_pem(SITE_A_PEM).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let (addr, params) =
            cga::generate(key.public_key_der(), p64("fc00:0:0:a::"), 0, &[], &mut rng).unwrap();
        (key, Ulid(addr), params.to_bytes())
    }

    fn cga_list(ulid: Ulid, generation: u32) -> LocatorList {
        let entries = ["2001:db8:a1::", "2001:db8:a2::"]
            .iter()
            .map(|p| (crate::locator_for(p64(p), ulid), VerificationMethod::Cga))
            .collect();
        LocatorList {
            generation,
            entries,
        }
    }

    fn sign(key: &cga::SiteKey, list: &LocatorList) -> Vec<u8> {
        let addrs: Vec<Ipv6Addr> = list.entries.iter().map(|e| e.0 .0).collect();
        key.sign_shim6(list.generation, &addrs).unwrap()
    }

    #[test]
    fn pds_must_correspond_to_the_ulid() {
        let (_, ulid, pds) = cga_host();
        let mut v = Verifier::new(true);
        assert!(v.check_pds(ulid, &pds).is_ok());
        let other = Ulid("fc00:0:0:a::1".parse().unwrap());
        assert_eq!(
            v.check_pds(other, &pds).unwrap_err(),
            VerifyFailure::PdsMismatch
        );
        assert_eq!(
            v.check_pds(ulid, &pds[..40]).unwrap_err(),
            VerifyFailure::PdsMismatch
        );
        let mut changed = pds.clone();
        changed[3] ^= 1; // modifier
        assert_eq!(
            v.check_pds(ulid, &changed).unwrap_err(),
            VerifyFailure::PdsMismatch
        );
    }

    #[test]
    fn cga_locators_need_a_valid_signature() {
        let (key, ulid, pds) = cga_host();
        let mut v = Verifier::new(false);
        let peer = v.check_pds(ulid, &pds).unwrap();
        let list = cga_list(ulid, 7);
        let sig = sign(&key, &list);
        assert_eq!(v.check_list(&peer, &list, Some(&sig)), Ok(()));
        assert_eq!(
            v.check_list(&peer, &list, None),
            Err(VerifyFailure::BadSignature { index: 0 })
        );
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert_eq!(
            v.check_list(&peer, &list, Some(&bad)),
            Err(VerifyFailure::BadSignature { index: 0 })
        );
        // The signature covers the generation and every CGA locator.
        let mut other_gen = list.clone();
        other_gen.generation = 8;
        assert!(v.check_list(&peer, &other_gen, Some(&sig)).is_err());
        let mut extra = list.clone();
        extra.entries.push((
            Locator("2001:db8:bad::1".parse().unwrap()),
            VerificationMethod::Cga,
        ));
        assert!(v.check_list(&peer, &extra, Some(&sig)).is_err());
        // HBA or unknown methods with a plain CGA PDS are inconsistent (RFC 5533 §7.2).
        let mut hba = list.clone();
        hba.entries[1].1 = VerificationMethod::Hba;
        assert_eq!(
            v.check_list(&peer, &hba, Some(&sig)),
            Err(VerifyFailure::Method { index: 1 })
        );
        let mut unknown = list;
        unknown.entries[0].1 = VerificationMethod::Unknown(9);
        assert_eq!(
            v.check_list(&peer, &unknown, Some(&sig)),
            Err(VerifyFailure::Method { index: 0 })
        );
    }

    #[test]
    fn hba_members_verify_without_signature() {
        let key = cga::SiteKey::from_pkcs8_pem(SITE_A_PEM).unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let prefixes = [p64("2001:db8:1::"), p64("2001:db8:2::")];
        let set =
            cga::hba::generate_set(&prefixes, 0, Some(key.public_key_der()), &mut rng).unwrap();
        let ulid = Ulid(set.addresses[0]);
        let pds = set.parameters[0].to_bytes();
        let mut v = Verifier::new(false);
        let peer = v.check_pds(ulid, &pds).unwrap();
        // An HBA ULID also binds to a PDS of another member (prefix substitution, RFC 5535 §7.2).
        assert!(v.check_pds(Ulid(set.addresses[1]), &pds).is_ok());
        let list = LocatorList {
            generation: 1,
            entries: set
                .addresses
                .iter()
                .map(|a| (Locator(*a), VerificationMethod::Hba))
                .collect(),
        };
        assert_eq!(v.check_list(&peer, &list, None), Ok(()));
        // Same prefix, wrong interface id: not a member.
        let mut forged = list.clone();
        forged.entries[1].0 = Locator(crate::join64(prefixes[1], [1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(
            v.check_list(&peer, &forged, None),
            Err(VerifyFailure::NotHbaMember { index: 1 })
        );
        // A locator outside the set can still be authorised by a signature (CGA-compatible set).
        let mut mixed = list.clone();
        mixed.entries.push((
            Locator("2001:db8:3::5".parse().unwrap()),
            VerificationMethod::Cga,
        ));
        let sig = key
            .sign_shim6(1, &["2001:db8:3::5".parse().unwrap()])
            .unwrap();
        assert_eq!(v.check_list(&peer, &mixed, Some(&sig)), Ok(()));
        assert_eq!(
            v.check_list(&peer, &mixed, None),
            Err(VerifyFailure::BadSignature { index: 2 })
        );
    }

    #[test]
    fn successful_results_are_cached_and_bounded() {
        let (key, ulid, pds) = cga_host();
        let mut v = Verifier::new(true);
        let peer = v.check_pds(ulid, &pds).unwrap();
        let list = cga_list(ulid, 3);
        let sig = sign(&key, &list);
        assert_eq!(v.check_list(&peer, &list, Some(&sig)), Ok(()));
        let misses = v.misses;
        assert_eq!(v.check_pds(ulid, &pds).map(|_| ()), Ok(()));
        assert_eq!(v.check_list(&peer, &list, Some(&sig)), Ok(()));
        assert_eq!((v.hits, v.misses), (2, misses));
        // Failures are never cached: a forged copy is checked (and refused) every time.
        let mut bad = sig;
        bad[5] ^= 1;
        assert!(v.check_list(&peer, &list, Some(&bad)).is_err());
        assert!(v.check_list(&peer, &list, Some(&bad)).is_err());
        assert_eq!(v.misses, misses + 2);
        assert_eq!(v.cache_entries(), 2);
        let mut off = Verifier::new(false);
        let peer = off.check_pds(ulid, &pds).unwrap();
        let _ = off.check_pds(ulid, &pds);
        assert_eq!((off.hits, off.cache_entries()), (0, 0));
        let _ = peer;
    }
}
