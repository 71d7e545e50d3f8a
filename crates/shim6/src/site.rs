//! The site the engine acts for: its key, its ULID /64, its providers and its hosts.
//!
//! Addressing model (architecture.md): host H has the ULID `PU ‖ IID(H)` (a CGA made with the
//! one site key and H's own modifier) and one locator `PX ‖ IID(H)` per provider prefix `PX`, so
//! locator ↔ ULID is a prefix swap. Every locator is advertised with verification method CGA
//! and covered by a signature with the site key
//! ([RFC 5533 §5.15.5](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.5)); HBA cannot be
//! used for such locators (spec shim6.md §19).

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

use wire::{Locator, LocatorList, LocatorPreferences, PreferenceElement, Ulid, VerificationMethod};

use crate::cache::BoundedMap;
use crate::Shim6Error;

/// Identifies one provider (upstream link / PA prefix) of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(pub u16);

/// One provider of the site: its PA /64 for our locators and the state of its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalProvider {
    /// Provider id (stable name for configuration and link signals).
    pub id: ProviderId,
    /// The provider-assigned /64 under which every host gets a locator.
    pub prefix: [u8; 8],
    /// Whether the local link to the provider is up.
    pub up: bool,
}

/// Everything the engine needs to speak for the site's hosts.
pub struct SiteIdentity {
    /// The one site key: every host ULID is a CGA of it, and it signs every locator list.
    pub key: cga::SiteKey,
    /// The site ULID /64 (a CMULA prefix; or, for a plain SHIM6 host, its first PA prefix).
    pub ulid_prefix: [u8; 8],
    /// The providers, in order of preference (the first up one sources new exchanges).
    pub providers: Vec<LocalProvider>,
}

impl std::fmt::Debug for SiteIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteIdentity")
            .field("ulid_prefix", &self.ulid_prefix)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

/// The interface identifier (low 64 bits) of an address.
pub fn interface_id(addr: Ipv6Addr) -> [u8; 8] {
    let o = addr.octets();
    [o[8], o[9], o[10], o[11], o[12], o[13], o[14], o[15]]
}

/// The /64 prefix (high 64 bits) of an address.
pub fn prefix64(addr: Ipv6Addr) -> [u8; 8] {
    let o = addr.octets();
    [o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]
}

/// `prefix ‖ iid` as an address.
pub fn join64(prefix: [u8; 8], iid: [u8; 8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..8].copy_from_slice(&prefix);
    o[8..].copy_from_slice(&iid);
    Ipv6Addr::from(o)
}

/// The locator of `ulid` under a provider prefix (the prefix swap of the addressing model).
pub fn locator_for(prefix: [u8; 8], ulid: Ulid) -> Locator {
    Locator(join64(prefix, interface_id(ulid.0)))
}

/// A cached signature with the CGA locators it covers.
type SignedList = (Vec<Locator>, Arc<Vec<u8>>);

/// Most signatures cached (one per host and locator set).
const SIGNATURE_CACHE: usize = 4096;

#[derive(Debug)]
pub(crate) struct LocalHost {
    /// The CGA Parameter Data Structure bytes, as sent in the PDS option.
    pub(crate) pds: Arc<Vec<u8>>,
}

/// The engine's view of the site (private).
pub(crate) struct Site {
    key: cga::SiteKey,
    pub(crate) ulid_prefix: [u8; 8],
    pub(crate) providers: Vec<LocalProvider>,
    pub(crate) hosts: HashMap<Ulid, LocalHost>,
    /// Generation of the current local Locator List (shared by every host: the list of each
    /// host is a function of the provider set). Random start, +1 per new list (shim6.md §8.4).
    pub(crate) generation: u32,
    /// Bumped whenever a provider goes up or down (the preferences change, the list does not).
    pub(crate) prefs_version: u64,
    /// Priority and weight advertised per provider (traffic engineering: ingress preference);
    /// empty: every locator equal, only BROKEN flags are sent.
    pub(crate) ingress: HashMap<ProviderId, (u8, u8)>,
    /// Providers REAP uses only when no other pair works (drained by the operator).
    pub(crate) avoided: Vec<ProviderId>,
    signatures: BoundedMap<(Ulid, u32), SignedList>,
    pub(crate) signatures_made: u64,
}

impl Site {
    pub(crate) fn new(identity: SiteIdentity, generation: u32) -> Self {
        Self {
            key: identity.key,
            ulid_prefix: identity.ulid_prefix,
            providers: identity.providers,
            hosts: HashMap::new(),
            generation,
            prefs_version: 0,
            ingress: HashMap::new(),
            avoided: Vec::new(),
            signatures: BoundedMap::new(SIGNATURE_CACHE),
            signatures_made: 0,
        }
    }

    pub(crate) fn add_host(
        &mut self,
        ulid: Ulid,
        params: &cga::CgaParameters,
    ) -> Result<(), Shim6Error> {
        if prefix64(ulid.0) != self.ulid_prefix {
            return Err(Shim6Error::WrongUlidPrefix(ulid));
        }
        if params.public_key != self.key.public_key_der() {
            return Err(Shim6Error::WrongKey(ulid));
        }
        cga::verify(ulid.0, params)?;
        self.hosts.insert(
            ulid,
            LocalHost {
                pds: Arc::new(params.to_bytes()),
            },
        );
        Ok(())
    }

    pub(crate) fn is_host(&self, ulid: Ulid) -> bool {
        self.hosts.contains_key(&ulid)
    }

    /// Locators of `ulid` on providers that are up, in provider order.
    pub(crate) fn up_locators(&self, ulid: Ulid) -> Vec<Locator> {
        self.providers
            .iter()
            .filter(|p| p.up)
            .map(|p| locator_for(p.prefix, ulid))
            .collect()
    }

    /// Locators of `ulid` on the avoided (drained) providers.
    pub(crate) fn avoided_locators(&self, ulid: Ulid) -> Vec<Locator> {
        self.providers
            .iter()
            .filter(|p| self.avoided.contains(&p.id))
            .map(|p| locator_for(p.prefix, ulid))
            .collect()
    }

    /// Locators of `ulid` on every configured provider, in provider order (= Locator List order).
    pub(crate) fn all_locators(&self, ulid: Ulid) -> Vec<Locator> {
        self.providers
            .iter()
            .map(|p| locator_for(p.prefix, ulid))
            .collect()
    }

    /// The locator of `ulid` on provider `id`, if that provider is configured and up.
    pub(crate) fn provider_locator(&self, id: ProviderId, ulid: Ulid) -> Option<Locator> {
        self.providers
            .iter()
            .find(|p| p.id == id && p.up)
            .map(|p| locator_for(p.prefix, ulid))
    }

    /// `loc` is a locator of `ulid` (on any configured provider): Ls(local) membership.
    pub(crate) fn owns(&self, ulid: Ulid, loc: Locator) -> bool {
        interface_id(loc.0) == interface_id(ulid.0)
            && self.providers.iter().any(|p| p.prefix == prefix64(loc.0))
    }

    /// `loc` is a locator of `ulid` on a provider that is up.
    pub(crate) fn is_up(&self, ulid: Ulid, loc: Locator) -> bool {
        interface_id(loc.0) == interface_id(ulid.0)
            && self
                .providers
                .iter()
                .any(|p| p.up && p.prefix == prefix64(loc.0))
    }

    /// The local host whose locator `loc` is (prefix swap), if any.
    pub(crate) fn host_of_locator(&self, loc: Locator) -> Option<Ulid> {
        if !self.providers.iter().any(|p| p.prefix == prefix64(loc.0)) {
            return None;
        }
        let ulid = Ulid(join64(self.ulid_prefix, interface_id(loc.0)));
        self.is_host(ulid).then_some(ulid)
    }

    pub(crate) fn any_down(&self) -> bool {
        self.providers.iter().any(|p| !p.up)
    }

    /// Whether our Locator Lists need a Locator Preferences option: a provider is down
    /// (BROKEN) or traffic engineering sets priorities.
    pub(crate) fn advertise_preferences(&self) -> bool {
        self.any_down() || !self.ingress.is_empty()
    }

    /// The Locator List we advertise for `ulid`: every configured provider, method CGA.
    /// `None` when the site has no provider (a list cannot be empty).
    pub(crate) fn locator_list(&self, ulid: Ulid) -> Option<LocatorList> {
        if self.providers.is_empty() {
            return None;
        }
        Some(LocatorList {
            generation: self.generation,
            entries: self
                .all_locators(ulid)
                .into_iter()
                .map(|l| (l, VerificationMethod::Cga))
                .collect(),
        })
    }

    /// Locator Preferences for the current list: BROKEN on providers whose link is down
    /// ([RFC 5533 §5.15.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3)); with
    /// ingress preferences set, 3-octet elements carrying their DNS SRV-style priority (lower
    /// is preferred) and weight, so the peer picks our locator as traffic engineering wants.
    pub(crate) fn preferences(&self) -> Option<LocatorPreferences> {
        if self.providers.is_empty() {
            return None;
        }
        let element_len = if self.ingress.is_empty() { 1 } else { 3 };
        Some(LocatorPreferences {
            generation: self.generation,
            element_len,
            elements: self
                .providers
                .iter()
                .map(|p| {
                    let (priority, weight) = self.ingress.get(&p.id).copied().unwrap_or((0, 0));
                    PreferenceElement {
                        flags: if p.up { 0 } else { PreferenceElement::BROKEN },
                        priority,
                        weight,
                    }
                })
                .collect(),
        })
    }

    /// The CGA Signature over `list` (generation + every CGA locator), from the cache when
    /// allowed: the site key signs once per host and locator set, not per handshake.
    pub(crate) fn signature(
        &mut self,
        ulid: Ulid,
        list: &LocatorList,
        use_cache: bool,
    ) -> Result<Arc<Vec<u8>>, Shim6Error> {
        let locators: Vec<Locator> = list
            .entries
            .iter()
            .filter(|(_, m)| *m == VerificationMethod::Cga)
            .map(|(l, _)| *l)
            .collect();
        let key = (ulid, list.generation);
        if use_cache {
            if let Some((cached_locs, sig)) = self.signatures.get(&key) {
                if *cached_locs == locators {
                    return Ok(Arc::clone(sig));
                }
            }
        }
        let addrs: Vec<Ipv6Addr> = locators.iter().map(|l| l.0).collect();
        let sig = Arc::new(self.key.sign_shim6(list.generation, &addrs)?);
        self.signatures_made += 1;
        if use_cache {
            self.signatures.insert(key, (locators, Arc::clone(&sig)));
        }
        Ok(sig)
    }

    pub(crate) fn cache_entries(&self) -> usize {
        self.signatures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_swap() {
        let ulid = Ulid("fc00:0:0:1:1234:5678:9abc:def0".parse().unwrap());
        let pa = prefix64("2001:db8:a:1::".parse().unwrap());
        assert_eq!(
            locator_for(pa, ulid).0,
            "2001:db8:a:1:1234:5678:9abc:def0"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(
            interface_id(ulid.0),
            [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]
        );
        assert_eq!(join64(pa, interface_id(ulid.0)), locator_for(pa, ulid).0);
    }
}
