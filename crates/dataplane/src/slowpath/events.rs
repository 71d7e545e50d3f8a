//! Engine events → context table writes. The slow path is the table's only writer; what the
//! workers translate with is exactly what the engine last announced:
//!
//! | event | table |
//! |---|---|
//! | `Established` | insert (or update in place when the tag is known: re-establishment), flag ESTABLISHED, `tx_provider` = provider of the local locator |
//! | `PairChanged` | `update_pair` with the provider of the new local locator (REAP, [RFC 5534 §4](https://www.rfc-editor.org/rfc/rfc5534#section-4)) |
//! | `PeerTagChanged` | `update_peer_tag` ([RFC 5533 §7.20](https://www.rfc-editor.org/rfc/rfc5533#section-7.20)) |
//! | `Removed` | remove |
//! | `Failed` | nothing in the table; the packets waiting for the pair are dropped |
//!
//! The fast path sends a context's packets out of the provider owning its local locator, so
//! the provider's ingress filtering accepts them.

use std::collections::HashMap;

use shim6::ContextEvent;
use table::{flags, Activity, NewEntry, SlotId, TableError, TableWriter};
use wire::{ContextTag, Locator, LocatorPair};

use super::pending::UlidPair;
use crate::config::Prefix64;

/// A context the table holds, with the counters last reported to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Its slot (key of the per-worker counters).
    pub(crate) slot: SlotId,
    /// The activity last seen (to report only contexts whose counters moved).
    pub(crate) last: Activity,
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The pair's context is in the table, usable: release its waiting packets.
    Established(UlidPair),
    /// An existing entry changed.
    Updated,
    /// The entry was removed.
    Removed,
    /// The handshake for the pair failed: drop its waiting packets.
    Failed(UlidPair),
    /// The table refused the context; the engine must forget it too.
    Refused(ContextTag, TableError),
    /// The local locator belongs to no configured provider; the engine must forget it.
    NoProvider(ContextTag),
    /// Nothing to do (e.g. an update for a context the table does not hold).
    Ignored,
}

/// Applies engine events to the table and remembers what the table holds.
#[derive(Debug)]
pub(crate) struct TableSync {
    providers: Vec<(u16, Prefix64)>,
    tracked: HashMap<ContextTag, Tracked>,
}

impl TableSync {
    /// For providers `(id, PA prefix)`.
    pub(crate) fn new(providers: Vec<(u16, Prefix64)>) -> Self {
        Self {
            providers,
            tracked: HashMap::new(),
        }
    }

    /// The provider owning `local` (its PA prefix contains it).
    pub(crate) fn provider_of(&self, local: Locator) -> Option<u16> {
        self.providers
            .iter()
            .find(|(_, p)| p.contains(local.0))
            .map(|(id, _)| *id)
    }

    /// Contexts in the table.
    pub(crate) fn tracked_mut(&mut self) -> impl Iterator<Item = (&ContextTag, &mut Tracked)> {
        self.tracked.iter_mut()
    }

    /// The table slot of a context the table holds.
    pub(crate) fn slot_of(&self, tag: ContextTag) -> Option<SlotId> {
        self.tracked.get(&tag).map(|t| t.slot)
    }

    /// Number of contexts in the table.
    pub(crate) fn len(&self) -> usize {
        self.tracked.len()
    }

    /// Applies `ev`.
    pub(crate) fn apply(&mut self, table: &mut TableWriter, ev: &ContextEvent) -> Applied {
        match *ev {
            ContextEvent::Established {
                local_tag,
                peer_tag,
                local_ulid,
                peer_ulid,
                pair,
                ..
            } => {
                let Some(provider) = self.provider_of(pair.local) else {
                    return Applied::NoProvider(local_tag);
                };
                let ulids = (local_ulid, peer_ulid);
                if let Some(e) = table.get(local_tag) {
                    if (e.local_ulid, e.peer_ulid) == ulids {
                        // Re-established (I2bis, recovery): update in place.
                        let r = table
                            .update_peer_tag(local_tag, peer_tag)
                            .and_then(|()| table.update_pair(local_tag, pair, provider))
                            .and_then(|()| table.set_flags(local_tag, flags::ESTABLISHED));
                        return match r {
                            Ok(()) => Applied::Established(ulids),
                            Err(err) => Applied::Refused(local_tag, err),
                        };
                    }
                    self.remove(table, local_tag);
                }
                if let Some(old) = table.get_by_ulids(local_ulid, peer_ulid) {
                    // The pair was rebuilt under a new tag: the old entry goes.
                    self.remove(table, old.local_tag);
                }
                let new = NewEntry {
                    local_tag,
                    peer_tag,
                    local_ulid,
                    peer_ulid,
                    pair,
                    tx_provider: provider,
                    flags: flags::ESTABLISHED,
                };
                match table.insert(new) {
                    Ok(slot) => {
                        self.tracked.insert(
                            local_tag,
                            Tracked {
                                slot,
                                last: Activity::default(),
                            },
                        );
                        Applied::Established(ulids)
                    }
                    Err(err) => Applied::Refused(local_tag, err),
                }
            }
            ContextEvent::PairChanged { local_tag, pair } => {
                self.update_pair(table, local_tag, pair)
            }
            ContextEvent::PeerTagChanged {
                local_tag,
                peer_tag,
            } => match table.update_peer_tag(local_tag, peer_tag) {
                Ok(()) => Applied::Updated,
                Err(_) => Applied::Ignored,
            },
            ContextEvent::Removed { local_tag, .. } => {
                if self.remove(table, local_tag) {
                    Applied::Removed
                } else {
                    Applied::Ignored
                }
            }
            ContextEvent::Failed {
                local_ulid,
                peer_ulid,
                ..
            } => Applied::Failed((local_ulid, peer_ulid)),
        }
    }

    fn update_pair(
        &mut self,
        table: &mut TableWriter,
        tag: ContextTag,
        pair: LocatorPair,
    ) -> Applied {
        let Some(provider) = self.provider_of(pair.local) else {
            return Applied::NoProvider(tag);
        };
        match table.update_pair(tag, pair, provider) {
            Ok(()) => Applied::Updated,
            Err(_) => Applied::Ignored,
        }
    }

    /// Removes `tag` from the table (and the tracking); whether it was there.
    pub(crate) fn remove(&mut self, table: &mut TableWriter, tag: ContextTag) -> bool {
        self.tracked.remove(&tag);
        table.remove(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shim6::{FailReason, RemoveReason};
    use std::net::Ipv6Addr;
    use table::TableConfig;
    use wire::Ulid;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn tag(v: u64) -> ContextTag {
        ContextTag::new(v).unwrap()
    }
    fn pair(local: &str, peer: &str) -> LocatorPair {
        LocatorPair {
            local: Locator(a(local)),
            peer: Locator(a(peer)),
        }
    }
    fn sync() -> (TableSync, TableWriter) {
        let providers = vec![
            (1, Prefix64::of(a("2001:db8:a:1::"))),
            (2, Prefix64::of(a("2001:db8:b:1::"))),
        ];
        (
            TableSync::new(providers),
            TableWriter::new(&TableConfig::new(64, 1).with_seed(3)).unwrap(),
        )
    }
    fn established(t: u64, p: u64, local: &str) -> ContextEvent {
        ContextEvent::Established {
            local_tag: tag(t),
            peer_tag: tag(p),
            local_ulid: Ulid(a("fc00:1:2:3::10")),
            peer_ulid: Ulid(a("fc00:9::20")),
            pair: pair(local, "2001:db8:c::20"),
            recovered: false,
        }
    }

    #[test]
    fn established_inserts_with_the_provider_of_the_local_locator() {
        let (mut s, mut t) = sync();
        let ulids = (Ulid(a("fc00:1:2:3::10")), Ulid(a("fc00:9::20")));
        assert_eq!(
            s.apply(&mut t, &established(5, 6, "2001:db8:b:1::10")),
            Applied::Established(ulids)
        );
        let e = t.get(tag(5)).unwrap();
        assert_eq!(
            (e.peer_tag, e.tx_provider, e.flags),
            (tag(6), 2, flags::ESTABLISHED)
        );
        assert_eq!(t.get_by_ulids(ulids.0, ulids.1).unwrap().local_tag, tag(5));
        assert_eq!(s.len(), 1);

        // REAP moved the pair to provider 1.
        let ev = ContextEvent::PairChanged {
            local_tag: tag(5),
            pair: pair("2001:db8:a:1::10", "2001:db8:d::20"),
        };
        assert_eq!(s.apply(&mut t, &ev), Applied::Updated);
        let e = t.get(tag(5)).unwrap();
        assert_eq!((e.tx_provider, e.pair.peer.0), (1, a("2001:db8:d::20")));

        let ev = ContextEvent::PeerTagChanged {
            local_tag: tag(5),
            peer_tag: tag(77),
        };
        assert_eq!(s.apply(&mut t, &ev), Applied::Updated);
        assert_eq!(t.get(tag(5)).unwrap().peer_tag, tag(77));

        // Re-established under the same tag: updated in place, still one entry.
        assert_eq!(
            s.apply(&mut t, &established(5, 8, "2001:db8:b:1::10")),
            Applied::Established(ulids)
        );
        let e = t.get(tag(5)).unwrap();
        assert_eq!((e.peer_tag, e.tx_provider), (tag(8), 2));
        assert_eq!(t.len(), 1);

        // Rebuilt under a new tag: the old entry goes.
        assert_eq!(
            s.apply(&mut t, &established(9, 8, "2001:db8:a:1::10")),
            Applied::Established(ulids)
        );
        assert!(t.get(tag(5)).is_none());
        assert_eq!(t.get_by_ulids(ulids.0, ulids.1).unwrap().local_tag, tag(9));
        assert_eq!(s.len(), 1);

        let ev = ContextEvent::Removed {
            local_tag: tag(9),
            reason: RemoveReason::Idle,
        };
        assert_eq!(s.apply(&mut t, &ev), Applied::Removed);
        assert!(t.is_empty() && s.len() == 0);
        assert_eq!(s.apply(&mut t, &ev), Applied::Ignored);
    }

    #[test]
    fn failures_and_refusals() {
        let (mut s, mut t) = sync();
        // A local locator under no provider prefix cannot be routed.
        assert_eq!(
            s.apply(&mut t, &established(5, 6, "2001:db8:e::10")),
            Applied::NoProvider(tag(5))
        );
        assert!(t.is_empty());
        let ev = ContextEvent::Failed {
            local_ulid: Ulid(a("fc00::1")),
            peer_ulid: Ulid(a("fc00::2")),
            reason: FailReason::EFailed,
        };
        assert_eq!(
            s.apply(&mut t, &ev),
            Applied::Failed((Ulid(a("fc00::1")), Ulid(a("fc00::2"))))
        );
        // Updates for unknown contexts change nothing.
        let ev = ContextEvent::PairChanged {
            local_tag: tag(1),
            pair: pair("2001:db8:a:1::1", "2001:db8:c::1"),
        };
        assert_eq!(s.apply(&mut t, &ev), Applied::Ignored);
        // A full table refuses, and the event says so.
        let mut small = TableWriter::new(&TableConfig::new(1, 1).with_seed(1)).unwrap();
        assert!(matches!(
            s.apply(&mut small, &established(5, 6, "2001:db8:a:1::10")),
            Applied::Established(_)
        ));
        let other = ContextEvent::Established {
            local_tag: tag(7),
            peer_tag: tag(6),
            local_ulid: Ulid(a("fc00:1:2:3::11")),
            peer_ulid: Ulid(a("fc00:9::20")),
            pair: pair("2001:db8:a:1::11", "2001:db8:c::20"),
            recovered: false,
        };
        assert_eq!(
            s.apply(&mut small, &other),
            Applied::Refused(tag(7), TableError::Full)
        );
    }
}
