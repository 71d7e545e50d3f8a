//! A small bounded map with first-in-first-out eviction, for the signature and verification
//! caches: lookups are exact, memory is capped, and the oldest entry goes first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    cap: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    pub(crate) fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_some() {
            return;
        }
        self.order.push_back(k);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_cap() {
        let mut m = BoundedMap::new(3);
        for i in 0..5 {
            m.insert(i, i * 10);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&0), None);
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&4), Some(&40));
        // Re-inserting a present key neither grows nor evicts.
        m.insert(4, 41);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&2), Some(&20));
        assert_eq!(m.get(&4), Some(&41));
    }
}
