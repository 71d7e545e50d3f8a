//! Locator sets of a context and the order in which to probe pairs
//! ([RFC 5534 §4.3], `spec/reap.md` §8).
//!
//! [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3

use wire::{Locator, LocatorPair};

/// Most locators kept per side; extra ones (the least preferred, last in the caller's list)
/// are ignored so memory stays bounded whatever the peer announces.
pub const MAX_LOCATORS: usize = 64;

/// Most candidate pairs in one exploration order. [RFC 5534 §4.3] says to try all pairs
/// (SHOULD); LinShim6 caps at 32 (`spec/reap.md` §8 \[I\]); we cap at 64 and keep the most
/// preferred ones.
///
/// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
pub const MAX_PAIRS: usize = 64;

/// Most local locators remembered as down.
const MAX_DOWN: usize = MAX_LOCATORS;

/// The context's local locators, its verified peer locators and the local ones known to be
/// down ([RFC 5534 §3.1–§3.2]). Each list keeps the caller's order, which is its preference
/// order.
///
/// [RFC 5534 §3.1–§3.2]: https://www.rfc-editor.org/rfc/rfc5534#section-3.1
#[derive(Clone, Debug, Default)]
pub(crate) struct Locators {
    local: Vec<Locator>,
    peer: Vec<Locator>,
    down: Vec<Locator>,
    /// Pairs a routing signal says do not work (the provider of the local locator withdrew
    /// its route to the peer locator): probed and chosen only after every other pair.
    unreachable: Vec<LocatorPair>,
    /// Local locators to use only when nothing else works (a provider drained by the
    /// operator): still usable, but probed and chosen after every other pair.
    avoid: Vec<Locator>,
}

/// `list` without duplicates (first occurrence kept), at most [`MAX_LOCATORS`] long.
fn dedup(list: Vec<Locator>) -> Vec<Locator> {
    let mut out: Vec<Locator> = Vec::with_capacity(list.len().min(MAX_LOCATORS));
    for l in list {
        if out.len() == MAX_LOCATORS {
            break;
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

impl Locators {
    /// Sets built from the caller's lists (deduplicated, capped).
    pub(crate) fn new(local: Vec<Locator>, peer: Vec<Locator>) -> Self {
        Self {
            local: dedup(local),
            peer: dedup(peer),
            down: Vec::new(),
            unreachable: Vec::new(),
            avoid: Vec::new(),
        }
    }

    /// Replaces both sets; the down marks are kept (they are local link state, not set
    /// membership).
    pub(crate) fn replace(&mut self, local: Vec<Locator>, peer: Vec<Locator>) {
        self.local = dedup(local);
        self.peer = dedup(peer);
    }

    /// Whether `pair` names a local and a peer locator of the sets.
    pub(crate) fn contains(&self, pair: LocatorPair) -> bool {
        self.local.contains(&pair.local) && self.peer.contains(&pair.peer)
    }

    /// Whether `loc` is one of our locators.
    pub(crate) fn has_local(&self, loc: Locator) -> bool {
        self.local.contains(&loc)
    }

    /// Whether `loc` is one of the peer's (verified) locators.
    pub(crate) fn has_peer(&self, loc: Locator) -> bool {
        self.peer.contains(&loc)
    }

    /// Whether `loc` is marked down locally.
    pub(crate) fn is_down(&self, loc: Locator) -> bool {
        self.down.contains(&loc)
    }

    /// Whether a routing signal marked `pair` unreachable.
    pub(crate) fn is_unreachable(&self, pair: LocatorPair) -> bool {
        self.unreachable.contains(&pair)
    }

    /// Marks `pair` unreachable (or clears the mark); returns whether that changed anything.
    /// At most [`MAX_PAIRS`] marks are kept, the oldest forgotten first.
    pub(crate) fn set_unreachable(&mut self, pair: LocatorPair, unreachable: bool) -> bool {
        let had = self.unreachable.contains(&pair);
        if unreachable == had {
            return false;
        }
        if unreachable {
            if self.unreachable.len() == MAX_PAIRS {
                self.unreachable.remove(0);
            }
            self.unreachable.push(pair);
        } else {
            self.unreachable.retain(|p| *p != pair);
        }
        true
    }

    /// Replaces the local locators to avoid (see [`order`](Self::order)).
    pub(crate) fn set_avoided(&mut self, avoid: Vec<Locator>) {
        self.avoid = dedup(avoid);
    }

    /// Whether `pair` uses a local locator to avoid.
    pub(crate) fn is_avoided(&self, pair: LocatorPair) -> bool {
        self.avoid.contains(&pair.local)
    }

    /// Whether we may send on `pair`: both locators in the sets, the local one not down.
    pub(crate) fn usable(&self, pair: LocatorPair) -> bool {
        self.contains(pair) && !self.is_down(pair.local)
    }

    /// Marks `loc` down; returns whether that changed anything.
    pub(crate) fn set_down(&mut self, loc: Locator) -> bool {
        if self.down.contains(&loc) {
            return false;
        }
        if self.down.len() == MAX_DOWN {
            self.down.remove(0);
        }
        self.down.push(loc);
        true
    }

    /// Clears the down mark of `loc`; returns whether it was set.
    pub(crate) fn set_up(&mut self, loc: Locator) -> bool {
        let before = self.down.len();
        self.down.retain(|l| *l != loc);
        before != self.down.len()
    }

    /// The pairs to probe, in order, for an exploration away from `current`.
    ///
    /// `first` (usable ones only, in the given order) come first: the TE-preferred pair, pairs
    /// known to work, or the reverse of the pair a probe just arrived on. Then, as LinShim6
    /// does (`spec/reap.md` §8 \[I\]; [RFC 5534 §4.3] leaves the order open): pairs sharing no
    /// locator with `current`, then the others, `current` itself last since it is the one
    /// that failed. Within a group the caller's preference order (local-major) is kept, which
    /// is how a proxy applies its TE policy. Pairs with a down local locator are skipped and
    /// the result holds at most [`MAX_PAIRS`] pairs. Pairs marked unreachable by a routing
    /// signal come after every other pair (before `current`, still last): they are tried only
    /// when nothing else is left. Pairs whose local locator is avoided (a drained provider)
    /// come after all of those, in the same order: tried only when no other pair works.
    ///
    /// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
    pub(crate) fn order(&self, current: LocatorPair, first: &[LocatorPair]) -> Vec<LocatorPair> {
        let mut out: Vec<LocatorPair> = Vec::new();
        let add = |p: LocatorPair, out: &mut Vec<LocatorPair>| {
            if out.len() < MAX_PAIRS
                && self.usable(p)
                && !self.is_unreachable(p)
                && !out.contains(&p)
            {
                out.push(p);
            }
        };
        for &p in first {
            add(p, &mut out);
        }
        let all = self.local.iter().flat_map(|&local| {
            self.peer
                .iter()
                .map(move |&peer| LocatorPair { local, peer })
        });
        for p in all.clone() {
            if p.local != current.local && p.peer != current.peer {
                add(p, &mut out);
            }
        }
        for p in all {
            if p != current {
                add(p, &mut out);
            }
        }
        for &p in &self.unreachable {
            if p != current && out.len() < MAX_PAIRS && self.usable(p) && !out.contains(&p) {
                out.push(p);
            }
        }
        if out.len() < MAX_PAIRS && self.usable(current) && !out.contains(&current) {
            out.push(current);
        }
        let (mut preferred, avoided): (Vec<LocatorPair>, Vec<LocatorPair>) =
            out.into_iter().partition(|p| !self.is_avoided(*p));
        preferred.extend(avoided);
        preferred
    }

    /// Total locators held (for memory-bound tests).
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.local.len()
            + self.peer.len()
            + self.down.len()
            + self.unreachable.len()
            + self.avoid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Locator {
        Locator(s.parse().unwrap())
    }
    fn p(a: &str, b: &str) -> LocatorPair {
        LocatorPair {
            local: l(a),
            peer: l(b),
        }
    }

    /// Disjoint pairs first, then the rest, the failed current pair last (spec/reap.md §8).
    #[test]
    fn order_two_by_two() {
        let s = Locators::new(vec![l("a::1"), l("a::2")], vec![l("b::1"), l("b::2")]);
        let cur = p("a::1", "b::1");
        assert_eq!(
            s.order(cur, &[]),
            [
                p("a::2", "b::2"),
                p("a::1", "b::2"),
                p("a::2", "b::1"),
                p("a::1", "b::1")
            ]
        );
        // `first` goes first, once; unusable `first` entries are dropped.
        assert_eq!(
            s.order(cur, &[p("a::2", "b::1"), p("a::9", "b::1")]),
            [
                p("a::2", "b::1"),
                p("a::2", "b::2"),
                p("a::1", "b::2"),
                p("a::1", "b::1")
            ]
        );
    }

    /// Pairs on an avoided (drained) local locator go last, whatever group they were in,
    /// even after the failed current pair; they stay in the order.
    #[test]
    fn avoided_locators_go_last() {
        let mut s = Locators::new(vec![l("a::1"), l("a::2")], vec![l("b::1"), l("b::2")]);
        s.set_avoided(vec![l("a::1")]);
        let cur = p("a::2", "b::1");
        assert_eq!(
            s.order(cur, &[p("a::1", "b::1")]),
            [
                p("a::2", "b::2"),
                p("a::2", "b::1"),
                p("a::1", "b::1"),
                p("a::1", "b::2"),
            ]
        );
        s.set_avoided(Vec::new());
        assert_eq!(s.order(cur, &[])[0], p("a::1", "b::2"));
    }

    #[test]
    fn down_locators_are_skipped() {
        let mut s = Locators::new(vec![l("a::1"), l("a::2")], vec![l("b::1"), l("b::2")]);
        assert!(s.set_down(l("a::1")));
        assert!(!s.set_down(l("a::1")));
        let cur = p("a::1", "b::1");
        assert_eq!(s.order(cur, &[]), [p("a::2", "b::2"), p("a::2", "b::1")]);
        assert!(!s.usable(cur));
        assert!(s.set_up(l("a::1")));
        assert!(!s.set_up(l("a::1")));
        assert!(s.usable(cur));
    }

    /// Pairs marked unreachable by a routing signal go after every other pair, the current
    /// one still last; clearing the mark restores the plain order.
    #[test]
    fn unreachable_pairs_go_last() {
        let mut s = Locators::new(vec![l("a::1"), l("a::2")], vec![l("b::1"), l("b::2")]);
        let cur = p("a::1", "b::1");
        assert!(s.set_unreachable(p("a::2", "b::2"), true));
        assert!(!s.set_unreachable(p("a::2", "b::2"), true));
        assert!(s.is_unreachable(p("a::2", "b::2")));
        assert_eq!(
            s.order(cur, &[p("a::2", "b::2")]),
            [
                p("a::1", "b::2"),
                p("a::2", "b::1"),
                p("a::2", "b::2"),
                p("a::1", "b::1")
            ]
        );
        assert!(s.set_unreachable(p("a::2", "b::2"), false));
        assert!(!s.set_unreachable(p("a::2", "b::2"), false));
        assert_eq!(s.order(cur, &[])[0], p("a::2", "b::2"));
    }

    #[test]
    fn bounded() {
        let many: Vec<Locator> = (0..200u16)
            .map(|i| Locator(std::net::Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1)))
            .collect();
        let mut s = Locators::new(many.clone(), many.clone());
        assert_eq!(s.footprint(), 2 * MAX_LOCATORS);
        let cur = LocatorPair {
            local: many[0],
            peer: many[0],
        };
        assert_eq!(s.order(cur, &[]).len(), MAX_PAIRS);
        for (i, &m) in many.iter().enumerate() {
            s.set_unreachable(
                LocatorPair {
                    local: m,
                    peer: many[(i + 1) % many.len()],
                },
                true,
            );
        }
        for &m in &many {
            s.set_down(m);
        }
        assert!(s.footprint() <= 3 * MAX_LOCATORS + MAX_PAIRS);
        // Duplicates collapse.
        let d = Locators::new(vec![l("a::1"), l("a::1")], vec![l("b::1")]);
        assert_eq!(d.order(p("a::1", "b::1"), &[]), [p("a::1", "b::1")]);
    }
}
