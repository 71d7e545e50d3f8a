//! Context tag allocation ([RFC 5533 §7.1](https://www.rfc-editor.org/rfc/rfc5533#section-7.1)).

use std::collections::{HashSet, VecDeque};

use rand::RngCore;
use wire::ContextTag;

/// Hands out local context tags (`CT(local)`).
///
/// The data plane may supply its own allocator (e.g. with shard bits in the tag); whatever it
/// does, at least 30 bits of every tag MUST be random
/// ([RFC 5533 §7.1](https://www.rfc-editor.org/rfc/rfc5533#section-7.1)) and a tag must be
/// unique among live contexts, because inbound payload is demultiplexed by tag alone.
pub trait TagAllocator {
    /// A tag not used by any live context, or `None` when none can be found.
    fn allocate(&mut self, rng: &mut dyn RngCore) -> Option<ContextTag>;
    /// The context holding `tag` is gone; the tag may be handed out again (later).
    fn release(&mut self, tag: ContextTag);
}

/// How many released tags are kept out of circulation at most.
const QUARANTINE_MAX: usize = 4096;
/// Random draws before giving up.
const ATTEMPTS: usize = 64;

/// The default allocator: 47 random bits, unique among live tags; released tags stay in
/// quarantine (the last 4096 released, at most a quarter of the tag space) so a
/// peer that still uses an old tag is not mistaken for a new context
/// ([RFC 5533 §9](https://www.rfc-editor.org/rfc/rfc5533#section-9)).
#[derive(Debug, Default)]
pub struct RandomTags {
    live: HashSet<ContextTag>,
    quarantine: VecDeque<ContextTag>,
    quarantined: HashSet<ContextTag>,
    narrow: bool,
}

impl RandomTags {
    /// 47 random bits per tag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Test mode of [RFC 5533 App. C.4](https://www.rfc-editor.org/rfc/rfc5533#appendix-C.4):
    /// the top 40 bits are zero (127 possible tags, 1..=127), so tag re-use, recovery and
    /// context-confusion paths actually happen in tests. Never use it in production.
    pub fn narrow() -> Self {
        Self {
            narrow: true,
            ..Self::default()
        }
    }

    /// Number of tags currently allocated.
    pub fn live(&self) -> usize {
        self.live.len()
    }

    fn space(&self) -> u64 {
        if self.narrow {
            1 << 7
        } else {
            1 << 47
        }
    }

    fn quarantine_cap(&self) -> usize {
        let quarter = usize::try_from(self.space() / 4).unwrap_or(usize::MAX);
        QUARANTINE_MAX.min(quarter)
    }

    fn taken(&self, tag: ContextTag) -> bool {
        self.live.contains(&tag) || self.quarantined.contains(&tag)
    }
}

impl TagAllocator for RandomTags {
    fn allocate(&mut self, rng: &mut dyn RngCore) -> Option<ContextTag> {
        let mask = self.space() - 1;
        for _ in 0..ATTEMPTS {
            // Tag 0 is avoided: it is what a zeroed field reads as.
            let tag = ContextTag::from_wire(rng.next_u64() & mask);
            if tag.get() == 0 || self.taken(tag) {
                continue;
            }
            self.live.insert(tag);
            return Some(tag);
        }
        if self.narrow {
            // The narrow space is small: a linear scan finds the last free tags for sure.
            let start = rng.next_u64() & mask;
            for i in 0..=mask {
                let tag = ContextTag::from_wire((start + i) & mask);
                if tag.get() != 0 && !self.taken(tag) {
                    self.live.insert(tag);
                    return Some(tag);
                }
            }
        }
        None
    }

    fn release(&mut self, tag: ContextTag) {
        if !self.live.remove(&tag) {
            return;
        }
        if self.quarantine_cap() == 0 {
            return;
        }
        while self.quarantine.len() >= self.quarantine_cap() {
            if let Some(old) = self.quarantine.pop_front() {
                self.quarantined.remove(&old);
            }
        }
        self.quarantine.push_back(tag);
        self.quarantined.insert(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn tags_are_unique_and_47_bits() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut a = RandomTags::new();
        let mut seen = HashSet::new();
        let mut high = 0u64;
        for _ in 0..10_000 {
            let t = a.allocate(&mut rng).unwrap();
            assert!(t.get() < 1 << 47 && t.get() != 0);
            assert!(seen.insert(t));
            high |= t.get();
        }
        // Random over the whole space: the top bit shows up among 10 000 draws.
        assert_ne!(high & (1 << 46), 0);
        assert_eq!(a.live(), 10_000);
    }

    #[test]
    fn narrow_mode_uses_seven_bits_and_exhausts() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut a = RandomTags::narrow();
        let mut all = Vec::new();
        while let Some(t) = a.allocate(&mut rng) {
            assert!(t.get() < 128 && t.get() > 0);
            all.push(t);
        }
        assert_eq!(all.len(), 127);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 127);
    }

    #[test]
    fn released_tags_are_quarantined() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut a = RandomTags::narrow();
        let first = a.allocate(&mut rng).unwrap();
        a.release(first);
        // The quarantine holds a quarter of the narrow space (32 tags): the released tag is
        // not handed out in the next 60 allocations.
        for _ in 0..60 {
            let t = a.allocate(&mut rng).unwrap();
            assert_ne!(t, first);
        }
        assert_eq!(a.live(), 60);
    }

    #[test]
    fn releasing_an_unknown_tag_is_harmless() {
        let mut a = RandomTags::new();
        a.release(ContextTag::new(5).unwrap());
        assert_eq!(a.live(), 0);
        assert!(a.quarantine.is_empty());
    }
}
