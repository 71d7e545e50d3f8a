//! The table behaves like a `HashMap` model under random operation sequences.
//!
//! Small key spaces make duplicates, misses and a full table common; after every operation
//! both lookups are compared with the model for every key, and the table's own listing too.

// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;

use proptest::prelude::*;
use table::{Entry, NewEntry, TableConfig, TableError, TableWriter};
use wire::{ContextTag, Locator, LocatorPair, Ulid};

const CAPACITY: usize = 8;
const TAGS: u64 = 24;
const ULIDS: u8 = 5;

/// Tags differing only in their high bits (the structured part of RFC 5533 §7.1).
fn tag(k: u64) -> ContextTag {
    ContextTag::new((k << 40) | 0x5a5a).unwrap()
}

fn ulid(side: u16, k: u8) -> Ulid {
    Ulid(Ipv6Addr::new(0xfd00, side, 0, 0, 0, 0, 0, u16::from(k)))
}

fn locators(seed: u16) -> LocatorPair {
    LocatorPair {
        local: Locator(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, seed)),
        peer: Locator(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, seed, 1)),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        t: u64,
        l: u8,
        p: u8,
        pair: u16,
        provider: u16,
        flags: u8,
        peer: u64,
    },
    Remove {
        t: u64,
    },
    UpdatePair {
        t: u64,
        pair: u16,
        provider: u16,
    },
    UpdatePeerTag {
        t: u64,
        peer: u64,
    },
    SetFlags {
        t: u64,
        flags: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TAGS;
    prop_oneof![
        4 => (t.clone(), 0..ULIDS, 0..ULIDS, any::<u16>(), any::<u16>(), any::<u8>(), 0..=ContextTag::MASK)
            .prop_map(|(t, l, p, pair, provider, flags, peer)| Op::Insert { t, l, p, pair, provider, flags, peer }),
        2 => t.clone().prop_map(|t| Op::Remove { t }),
        1 => (t.clone(), any::<u16>(), any::<u16>())
            .prop_map(|(t, pair, provider)| Op::UpdatePair { t, pair, provider }),
        1 => (t.clone(), 0..=ContextTag::MASK).prop_map(|(t, peer)| Op::UpdatePeerTag { t, peer }),
        1 => (t, any::<u8>()).prop_map(|(t, flags)| Op::SetFlags { t, flags }),
    ]
}

/// An entry without its slot: what the model knows.
fn strip(e: Entry) -> NewEntry {
    NewEntry {
        local_tag: e.local_tag,
        peer_tag: e.peer_tag,
        local_ulid: e.local_ulid,
        peer_ulid: e.peer_ulid,
        pair: e.pair,
        tx_provider: e.tx_provider,
        flags: e.flags,
    }
}

fn apply(t: &mut TableWriter, model: &mut HashMap<ContextTag, NewEntry>, op: &Op) {
    let missing = |model: &HashMap<ContextTag, NewEntry>, k: u64| !model.contains_key(&tag(k));
    match *op {
        Op::Insert {
            t: k,
            l,
            p,
            pair,
            provider,
            flags,
            peer,
        } => {
            let new = NewEntry {
                local_tag: tag(k),
                peer_tag: ContextTag::new(peer).unwrap(),
                local_ulid: ulid(1, l),
                peer_ulid: ulid(2, p),
                pair: locators(pair),
                tx_provider: provider,
                flags,
            };
            let want = if model.contains_key(&new.local_tag) {
                Err(TableError::DuplicateTag)
            } else if model
                .values()
                .any(|e| (e.local_ulid, e.peer_ulid) == (new.local_ulid, new.peer_ulid))
            {
                Err(TableError::DuplicateUlids)
            } else if model.len() == CAPACITY {
                Err(TableError::Full)
            } else {
                Ok(())
            };
            let got = t.insert(new);
            assert_eq!(got.map(|_| ()), want);
            if got.is_ok() {
                model.insert(new.local_tag, new);
            }
        }
        Op::Remove { t: k } => {
            let got = t.remove(tag(k)).map(strip);
            assert_eq!(got, model.remove(&tag(k)).ok_or(TableError::NotFound));
        }
        Op::UpdatePair {
            t: k,
            pair,
            provider,
        } => {
            let got = t.update_pair(tag(k), locators(pair), provider);
            if missing(model, k) {
                assert_eq!(got, Err(TableError::NotFound));
            } else if let Some(e) = model.get_mut(&tag(k)) {
                assert_eq!(got, Ok(()));
                e.pair = locators(pair);
                e.tx_provider = provider;
            }
        }
        Op::UpdatePeerTag { t: k, peer } => {
            let peer = ContextTag::new(peer).unwrap();
            let got = t.update_peer_tag(tag(k), peer);
            if missing(model, k) {
                assert_eq!(got, Err(TableError::NotFound));
            } else if let Some(e) = model.get_mut(&tag(k)) {
                assert_eq!(got, Ok(()));
                e.peer_tag = peer;
            }
        }
        Op::SetFlags { t: k, flags } => {
            let got = t.set_flags(tag(k), flags);
            if missing(model, k) {
                assert_eq!(got, Err(TableError::NotFound));
            } else if let Some(e) = model.get_mut(&tag(k)) {
                assert_eq!(got, Ok(()));
                e.flags = flags;
            }
        }
    }
}

fn compare(t: &TableWriter, model: &HashMap<ContextTag, NewEntry>) {
    let r = t.reader();
    assert_eq!(t.len(), model.len());
    for k in 0..TAGS {
        assert_eq!(
            r.by_tag(tag(k)).map(strip),
            model.get(&tag(k)).copied(),
            "tag {k}"
        );
    }
    for l in 0..ULIDS {
        for p in 0..ULIDS {
            let want = model
                .values()
                .find(|e| (e.local_ulid, e.peer_ulid) == (ulid(1, l), ulid(2, p)))
                .copied();
            assert_eq!(
                r.by_ulids(ulid(1, l), ulid(2, p)).map(strip),
                want,
                "ulids {l} {p}"
            );
        }
    }
    let listed: Vec<Entry> = r.iter().collect();
    assert_eq!(listed.len(), model.len());
    let slots: HashSet<_> = listed.iter().map(|e| e.slot).collect();
    assert_eq!(slots.len(), listed.len(), "two contexts share a slot");
    for e in listed {
        assert!(e.slot.index() < CAPACITY);
        assert_eq!(model.get(&e.local_tag), Some(&strip(e)));
        // Both lookups agree on the slot.
        assert_eq!(r.by_tag(e.local_tag), Some(e));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn behaves_like_a_hashmap(ops in proptest::collection::vec(op(), 1..80), seed in any::<u64>()) {
        let mut t = TableWriter::new(&TableConfig::new(CAPACITY, 1).with_seed(seed)).unwrap();
        let mut model = HashMap::new();
        for op in &ops {
            apply(&mut t, &mut model, op);
            compare(&t, &model);
        }
    }
}
