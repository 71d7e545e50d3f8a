//! Where the locators of a peer ULID come from when a host first sends to it: the decision
//! tree of the paper (context exists → use it; cached locators → handshake; else ask a
//! resolver → handshake). The cache is filled from the configuration now and by the DNS ALG
//! later; the resolver is reverse DNS in a later issue and a static table now.
//!
//! A CMULA ULID is not routable, so the I1 must go to one of the peer's locators
//! ([RFC 5533 §7.7](https://www.rfc-editor.org/rfc/rfc5533#section-7.7)): without one there is
//! no handshake.

use std::collections::HashMap;

use wire::{Locator, Ulid};

/// Peer ULID → its locators (contact addresses for the I1; verified later by the handshake).
#[derive(Debug, Clone, Default)]
pub struct PeerLocatorCache {
    map: HashMap<Ulid, Vec<Locator>>,
}

impl PeerLocatorCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (replaces) the locators of `peer`; an empty list forgets it.
    pub fn insert(&mut self, peer: Ulid, locators: Vec<Locator>) {
        if locators.is_empty() {
            self.map.remove(&peer);
        } else {
            self.map.insert(peer, locators);
        }
    }

    /// The locators of `peer`, if known.
    pub fn get(&self, peer: Ulid) -> Option<&[Locator]> {
        self.map.get(&peer).map(Vec::as_slice)
    }

    /// Peers known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What a resolver can say about a peer ULID right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// These locators.
    Found(Vec<Locator>),
    /// A query is under way: the answer comes from [`LocatorResolver::poll_resolved`].
    Pending,
    /// The peer cannot be reached through SHIM6.
    NotFound,
}

/// Finds the locators of a peer ULID the cache does not know (reverse DNS in a later issue).
///
/// Sans-IO like the engines: `lookup` must not block. An asynchronous implementation answers
/// [`Resolution::Pending`] and hands the answer out later through `poll_resolved`, which the
/// slow path polls every iteration.
pub trait LocatorResolver: Send {
    /// Starts (or answers) a lookup of `peer`.
    fn lookup(&mut self, peer: Ulid) -> Resolution;

    /// A finished lookup: the peer and its locators (empty when not found).
    fn poll_resolved(&mut self) -> Option<(Ulid, Vec<Locator>)> {
        None
    }
}

/// A resolver answering from a fixed table (configuration), synchronously.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: HashMap<Ulid, Vec<Locator>>,
}

impl StaticResolver {
    /// A resolver knowing `entries`.
    pub fn new(entries: impl IntoIterator<Item = (Ulid, Vec<Locator>)>) -> Self {
        Self {
            table: entries.into_iter().collect(),
        }
    }
}

impl LocatorResolver for StaticResolver {
    fn lookup(&mut self, peer: Ulid) -> Resolution {
        match self.table.get(&peer) {
            Some(l) if !l.is_empty() => Resolution::Found(l.clone()),
            _ => Resolution::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Ulid {
        Ulid(s.parse().unwrap())
    }
    fn l(s: &str) -> Locator {
        Locator(s.parse().unwrap())
    }

    #[test]
    fn cache_and_static_resolver() {
        let mut c = PeerLocatorCache::new();
        assert!(c.get(u("fc00::1")).is_none());
        c.insert(u("fc00::1"), vec![l("2001:db8::1"), l("2001:db8:1::1")]);
        assert_eq!(c.get(u("fc00::1")).map(<[Locator]>::len), Some(2));
        c.insert(u("fc00::1"), vec![]);
        assert!(c.is_empty());
        let mut r = StaticResolver::new([
            (u("fc00::2"), vec![l("2001:db8::2")]),
            (u("fc00::3"), vec![]),
        ]);
        assert_eq!(
            r.lookup(u("fc00::2")),
            Resolution::Found(vec![l("2001:db8::2")])
        );
        assert_eq!(r.lookup(u("fc00::3")), Resolution::NotFound);
        assert_eq!(r.lookup(u("fc00::4")), Resolution::NotFound);
        assert_eq!(r.poll_resolved(), None);
    }
}
