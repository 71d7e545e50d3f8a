//! The locator cache: peer ULID → the AAAA set (its locators) learnt from DNS, bounded in
//! size (least recently used out first) and in time (record TTLs, capped by configuration).
//! The data plane asks it before starting a SHIM6 handshake (the I1 goes to a locator,
//! [RFC 5533 §7.7](https://www.rfc-editor.org/rfc/rfc5533#section-7.7)).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use wire::{Locator, Ulid};

#[derive(Debug, Clone)]
struct Slot {
    locators: Vec<Locator>,
    expires: Instant,
    /// Position in the LRU order (a key of `LocatorCache::lru`).
    tick: u64,
}

/// One cache entry as shown by [`LocatorCache::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The peer's ULID.
    pub ulid: Ulid,
    /// Its locators, in the order DNS gave them.
    pub locators: Vec<Locator>,
    /// Lifetime left.
    pub remaining: Duration,
}

/// Bounded, TTL-aware ULID → locators map with least-recently-used eviction.
#[derive(Debug, Clone)]
pub struct LocatorCache {
    map: HashMap<Ulid, Slot>,
    lru: BTreeMap<u64, Ulid>,
    tick: u64,
    capacity: usize,
    evictions: u64,
}

impl LocatorCache {
    /// A cache holding at most `capacity` peers (0: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            capacity,
            evictions: 0,
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        self.tick
    }

    /// Records `locators` for `ulid` for `ttl` (replacing what was there). An empty set or a
    /// zero TTL removes the entry: such data must not be cached
    /// ([RFC 1035 §3.2.1](https://www.rfc-editor.org/rfc/rfc1035#section-3.2.1)).
    pub fn insert(&mut self, now: Instant, ulid: Ulid, locators: Vec<Locator>, ttl: Duration) {
        self.remove(ulid);
        if locators.is_empty() || ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        self.purge_expired(now);
        while self.map.len() >= self.capacity {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            self.map.remove(&victim);
            self.evictions = self.evictions.saturating_add(1);
        }
        let tick = self.next_tick();
        self.lru.insert(tick, ulid);
        self.map.insert(
            ulid,
            Slot {
                locators,
                expires,
                tick,
            },
        );
    }

    /// Forgets `ulid`.
    pub fn remove(&mut self, ulid: Ulid) {
        if let Some(old) = self.map.remove(&ulid) {
            self.lru.remove(&old.tick);
        }
    }

    /// The live locators of `ulid`, marking it recently used; an expired entry is dropped.
    pub fn get(&mut self, now: Instant, ulid: Ulid) -> Option<(&[Locator], Duration)> {
        let expired = match self.map.get(&ulid) {
            None => return None,
            Some(s) => s.expires <= now,
        };
        if expired {
            self.remove(ulid);
            return None;
        }
        let tick = self.next_tick();
        let slot = self.map.get_mut(&ulid)?;
        self.lru.remove(&slot.tick);
        slot.tick = tick;
        self.lru.insert(tick, ulid);
        Some((
            slot.locators.as_slice(),
            slot.expires.saturating_duration_since(now),
        ))
    }

    /// Drops every expired entry.
    pub fn purge_expired(&mut self, now: Instant) {
        let dead: Vec<Ulid> = self
            .map
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(u, _)| *u)
            .collect();
        for u in dead {
            self.remove(u);
        }
    }

    /// The live entries, most recently used last (for the debug view).
    pub fn entries(&self, now: Instant) -> Vec<CacheEntry> {
        self.lru
            .values()
            .filter_map(|u| {
                let s = self.map.get(u)?;
                (s.expires > now).then(|| CacheEntry {
                    ulid: *u,
                    locators: s.locators.clone(),
                    remaining: s.expires.saturating_duration_since(now),
                })
            })
            .collect()
    }

    /// Entries held (expired ones included until they are purged).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries pushed out by the size bound so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(i: u16) -> Ulid {
        Ulid(std::net::Ipv6Addr::new(0xfc00, 0, 0, 1, 0, 0, 0, i))
    }
    fn l(i: u16) -> Locator {
        Locator(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, i, 0, 0, 0, 1))
    }
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ttl_expiry() {
        let t0 = Instant::now();
        let mut c = LocatorCache::new(8);
        c.insert(t0, u(1), vec![l(1), l(2)], 10 * S);
        let (locs, left) = c.get(t0 + 9 * S, u(1)).unwrap();
        assert_eq!(locs, &[l(1), l(2)]);
        assert_eq!(left, S);
        assert!(c.get(t0 + 10 * S, u(1)).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn zero_ttl_and_empty_sets_are_not_cached() {
        let t0 = Instant::now();
        let mut c = LocatorCache::new(8);
        c.insert(t0, u(1), vec![l(1)], Duration::ZERO);
        c.insert(t0, u(2), vec![], 10 * S);
        assert!(c.is_empty());
        c.insert(t0, u(3), vec![l(1)], 10 * S);
        c.insert(t0, u(3), vec![], 10 * S);
        assert!(c.is_empty());
    }

    #[test]
    fn lru_eviction() {
        let t0 = Instant::now();
        let mut c = LocatorCache::new(2);
        c.insert(t0, u(1), vec![l(1)], 10 * S);
        c.insert(t0, u(2), vec![l(2)], 10 * S);
        // Touch 1: 2 becomes the least recently used.
        assert!(c.get(t0, u(1)).is_some());
        c.insert(t0, u(3), vec![l(3)], 10 * S);
        assert!(c.get(t0, u(2)).is_none());
        assert!(c.get(t0, u(1)).is_some());
        assert!(c.get(t0, u(3)).is_some());
        assert_eq!(c.len(), 2);
        assert_eq!(c.evictions(), 1);
        let order: Vec<Ulid> = c.entries(t0).into_iter().map(|e| e.ulid).collect();
        assert_eq!(order, vec![u(1), u(3)]);
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        let t0 = Instant::now();
        let mut c = LocatorCache::new(2);
        c.insert(t0, u(1), vec![l(1)], 100 * S);
        c.insert(t0, u(2), vec![l(2)], S);
        c.insert(t0 + 2 * S, u(3), vec![l(3)], 100 * S);
        assert!(c.get(t0 + 2 * S, u(1)).is_some());
        assert_eq!(c.evictions(), 0);
    }
}
