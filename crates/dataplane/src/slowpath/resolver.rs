//! Where the locators of a peer ULID come from when a host first sends to it: the decision
//! tree of the paper (context exists → use it; cached locators → handshake; else ask a
//! resolver → handshake). The cache is filled from the configuration now and by the DNS ALG
//! later; the resolver is reverse DNS in a later issue and a static table now.
//!
//! A CMULA ULID is not routable, so the I1 must go to one of the peer's locators
//! ([RFC 5533 §7.7](https://www.rfc-editor.org/rfc/rfc5533#section-7.7)): without one there is
//! no handshake.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wire::{Locator, Ulid};

/// Default number of peers the cache holds ([`PeerLocatorCache::new`]).
pub const DEFAULT_PEER_CAPACITY: usize = 16_384;

#[derive(Debug, Clone)]
struct PeerEntry {
    locators: Vec<Locator>,
    /// `None`: configured (`[[peers]]`, `SetPeers`), kept until replaced.
    expires: Option<Instant>,
}

/// Peer ULID → its locators (contact addresses for the I1; verified later by the handshake).
///
/// Bounded (issue #10): entries learnt from DNS live for the answer's TTL and are gone once
/// it expires ([`PeerLocatorCache::expire`], and never returned after it); at capacity a new
/// learnt entry evicts the learnt entry closest to expiry. Configured entries never expire
/// and are never evicted; a learnt entry is refused when only configured ones fill the cache.
#[derive(Debug, Clone)]
pub struct PeerLocatorCache {
    map: HashMap<Ulid, PeerEntry>,
    capacity: usize,
    stats: PeerCacheStats,
}

/// What the cache's bounds did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCacheStats {
    /// Learnt entries removed because their TTL ran out.
    pub expired: u64,
    /// Learnt entries evicted to make room at capacity.
    pub evicted: u64,
    /// Learnt entries refused: the cache was full of configured entries.
    pub refused: u64,
}

impl Default for PeerLocatorCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_PEER_CAPACITY)
    }
}

impl PeerLocatorCache {
    /// An empty cache of [`DEFAULT_PEER_CAPACITY`] peers.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache of at most `capacity` (at least 1) peers.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity: capacity.max(1),
            stats: PeerCacheStats::default(),
        }
    }

    /// Records (replaces) the configured locators of `peer`, kept until replaced; an empty
    /// list forgets it. Configured peers may exceed the capacity (the operator asked).
    pub fn insert(&mut self, peer: Ulid, locators: Vec<Locator>) {
        if locators.is_empty() {
            self.map.remove(&peer);
        } else {
            self.map.insert(
                peer,
                PeerEntry {
                    locators,
                    expires: None,
                },
            );
        }
    }

    /// Records the locators of `peer` learnt at `now` for `ttl` (a DNS answer's); an empty
    /// list or a zero TTL forgets a learnt entry. A configured entry is not replaced by a
    /// learnt one.
    pub fn learn(&mut self, now: Instant, peer: Ulid, locators: Vec<Locator>, ttl: Duration) {
        match self.map.get(&peer) {
            Some(e) if e.expires.is_none() => return,
            Some(_) => {
                if locators.is_empty() || ttl.is_zero() {
                    self.map.remove(&peer);
                    return;
                }
            }
            None if locators.is_empty() || ttl.is_zero() => return,
            None => {
                if self.map.len() >= self.capacity {
                    self.expire(now);
                }
                if self.map.len() >= self.capacity && !self.evict_one() {
                    self.stats.refused += 1;
                    return;
                }
            }
        }
        self.map.insert(
            peer,
            PeerEntry {
                locators,
                expires: now.checked_add(ttl),
            },
        );
    }

    /// Removes the learnt entry closest to expiry; `false` when every entry is configured.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .map
            .iter()
            .filter_map(|(k, e)| e.expires.map(|t| (t, *k)))
            .min()
            .map(|(_, k)| k);
        match victim {
            Some(k) => {
                self.map.remove(&k);
                self.stats.evicted += 1;
                true
            }
            None => false,
        }
    }

    /// Removes the learnt entries expired at `now` (the slow path's housekeeping).
    pub fn expire(&mut self, now: Instant) {
        let before = self.map.len();
        self.map.retain(|_, e| e.expires.is_none_or(|t| t > now));
        self.stats.expired += (before - self.map.len()) as u64;
    }

    /// The locators of `peer`, if known and not expired at `now`.
    pub fn get(&self, now: Instant, peer: Ulid) -> Option<&[Locator]> {
        self.map
            .get(&peer)
            .filter(|e| e.expires.is_none_or(|t| t > now))
            .map(|e| e.locators.as_slice())
    }

    /// Peers held (expired ones until the next [`PeerLocatorCache::expire`]).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no peer is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Most learnt peers held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Expiries, evictions and refusals so far.
    pub fn stats(&self) -> PeerCacheStats {
        self.stats
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
        let now = Instant::now();
        let mut c = PeerLocatorCache::new();
        assert!(c.get(now, u("fc00::1")).is_none());
        c.insert(u("fc00::1"), vec![l("2001:db8::1"), l("2001:db8:1::1")]);
        assert_eq!(c.get(now, u("fc00::1")).map(<[Locator]>::len), Some(2));
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

    #[test]
    fn learnt_peers_expire_with_their_ttl() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = PeerLocatorCache::with_capacity(8);
        c.insert(u("fc00::1"), vec![l("2001:db8::1")]);
        c.learn(t0, u("fc00::2"), vec![l("2001:db8::2")], 60 * s);
        c.learn(t0, u("fc00::3"), vec![l("2001:db8::3")], 10 * s);
        // A DNS answer does not override the configuration.
        c.learn(t0, u("fc00::1"), vec![l("2001:db8::9")], 60 * s);
        assert_eq!(c.get(t0, u("fc00::1")), Some(&[l("2001:db8::1")][..]));
        assert!(c.get(t0 + 9 * s, u("fc00::3")).is_some());
        assert!(
            c.get(t0 + 10 * s, u("fc00::3")).is_none(),
            "gone at its TTL"
        );
        c.expire(t0 + 10 * s);
        assert_eq!((c.len(), c.stats().expired), (2, 1));
        c.expire(t0 + 3600 * s);
        assert_eq!(
            (c.len(), c.stats().expired),
            (1, 2),
            "configured peers stay"
        );
        assert!(c.get(t0 + 3600 * s, u("fc00::1")).is_some());
        // A zero TTL or an empty set forgets a learnt entry.
        c.learn(t0, u("fc00::4"), vec![l("2001:db8::4")], 60 * s);
        c.learn(t0, u("fc00::4"), vec![l("2001:db8::4")], Duration::ZERO);
        assert!(c.get(t0, u("fc00::4")).is_none());
    }

    #[test]
    fn a_full_cache_evicts_the_learnt_peer_closest_to_expiry() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = PeerLocatorCache::with_capacity(100);
        c.insert(u("fc00::1"), vec![l("2001:db8::1")]);
        // A flood of 10,000 distinct answers: the cache stays at its capacity.
        for i in 0..10_000u32 {
            let peer = Ulid(std::net::Ipv6Addr::from(
                0xfc00_0002_u128 << 96 | u128::from(i),
            ));
            let ttl = (60 + i % 7) * s;
            c.learn(
                t0 + Duration::from_millis(u64::from(i)),
                peer,
                vec![l("2001:db8::2")],
                ttl,
            );
            assert!(c.len() <= 100);
        }
        assert_eq!(c.len(), 100);
        assert_eq!(c.stats().evicted, 10_000 - 99);
        assert!(
            c.get(t0, u("fc00::1")).is_some(),
            "configured peers are never evicted"
        );
        // The survivors are the latest to expire: the last answers.
        let last = Ulid(std::net::Ipv6Addr::from(0xfc00_0002_u128 << 96 | 9_999));
        assert!(c.get(t0 + 10 * s, last).is_some());
        // Full of configured peers: a learnt one is refused and counted.
        let mut f = PeerLocatorCache::with_capacity(1);
        f.insert(u("fc00::1"), vec![l("2001:db8::1")]);
        f.learn(t0, u("fc00::2"), vec![l("2001:db8::2")], 60 * s);
        assert_eq!((f.len(), f.stats().refused), (1, 1));
    }
}
