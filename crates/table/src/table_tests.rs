//! Unit tests of the table: single-threaded behaviour of the writer and readers.

use std::collections::HashSet;
use std::net::Ipv6Addr;

use wire::Locator;

use super::*;
use crate::flags;
use crate::index::MAX_PROBE;

const SEED: u64 = 0x0123_4567_89ab_cdef;

fn table(capacity: usize, workers: usize) -> TableWriter {
    TableWriter::new(&TableConfig::new(capacity, workers).with_seed(SEED)).unwrap()
}

fn tag(v: u64) -> ContextTag {
    ContextTag::new(v).unwrap()
}

fn addr(prefix: u16, i: u64) -> Ipv6Addr {
    Ipv6Addr::from_bits((u128::from(prefix) << 112) | u128::from(i))
}

/// A context numbered `i`: its tag, ULIDs and locators all derive from `i`.
fn ctx(i: u64) -> NewEntry {
    NewEntry {
        local_tag: tag(0x4000_0000_0000 | i),
        peer_tag: tag(0x2000_0000_0000 | i),
        local_ulid: Ulid(addr(0xfd00, i)),
        peer_ulid: Ulid(addr(0xfd99, i)),
        pair: LocatorPair {
            local: Locator(addr(0x2001, i)),
            peer: Locator(addr(0x2002, i)),
        },
        tx_provider: (i % 3) as u16,
        flags: flags::ESTABLISHED,
    }
}

#[test]
fn insert_lookup_both_ways() {
    let mut t = table(16, 1);
    let r = t.reader();
    assert!(t.is_empty());
    let slot = t.insert(ctx(1)).unwrap();
    assert_eq!(t.len(), 1);
    let want = ctx(1).at(slot);
    assert_eq!(r.by_tag(ctx(1).local_tag), Some(want));
    assert_eq!(r.by_ulids(ctx(1).local_ulid, ctx(1).peer_ulid), Some(want));
    assert_eq!(r.try_by_tag(ctx(1).local_tag), Lookup::Hit(want));
    assert_eq!(t.get(ctx(1).local_tag), Some(want));
    assert_eq!(
        t.get_by_ulids(ctx(1).local_ulid, ctx(1).peer_ulid),
        Some(want)
    );
    // Misses: another tag, the reversed ULID pair, the peer's tag.
    assert_eq!(r.try_by_tag(ctx(2).local_tag), Lookup::Miss);
    assert_eq!(r.by_tag(ctx(1).peer_tag), None);
    assert_eq!(r.by_ulids(ctx(1).peer_ulid, ctx(1).local_ulid), None);
    assert_eq!(
        r.try_by_ulids(ctx(1).local_ulid, ctx(2).peer_ulid),
        Lookup::Miss
    );
}

#[test]
fn updates_show_in_both_lookups() {
    let mut t = table(16, 0);
    let r = t.reader();
    let c = ctx(5);
    t.insert(c).unwrap();
    let pair = LocatorPair {
        local: Locator(addr(0x2003, 5)),
        peer: Locator(addr(0x2004, 5)),
    };
    t.update_pair(c.local_tag, pair, 0xbeef).unwrap();
    t.update_peer_tag(c.local_tag, ContextTag::MAX).unwrap();
    t.set_flags(c.local_tag, flags::ESTABLISHED | flags::NATV6)
        .unwrap();
    let e = r.by_tag(c.local_tag).unwrap();
    assert_eq!(e.pair, pair);
    assert_eq!(e.tx_provider, 0xbeef);
    assert_eq!(e.peer_tag, ContextTag::MAX);
    assert_eq!(e.flags, flags::ESTABLISHED | flags::NATV6);
    // Keys untouched.
    assert_eq!(
        (e.local_tag, e.local_ulid, e.peer_ulid),
        (c.local_tag, c.local_ulid, c.peer_ulid)
    );
    assert_eq!(r.by_ulids(c.local_ulid, c.peer_ulid), Some(e));
    // A peer-tag update keeps the provider; a pair update keeps the peer tag.
    t.update_peer_tag(c.local_tag, tag(7)).unwrap();
    assert_eq!(r.by_tag(c.local_tag).unwrap().tx_provider, 0xbeef);
    t.update_pair(c.local_tag, c.pair, 1).unwrap();
    assert_eq!(r.by_tag(c.local_tag).unwrap().peer_tag, tag(7));
    for err in [
        t.update_pair(ctx(6).local_tag, pair, 0),
        t.update_peer_tag(ctx(6).local_tag, tag(1)),
        t.set_flags(ctx(6).local_tag, 0),
    ] {
        assert_eq!(err, Err(TableError::NotFound));
    }
}

#[test]
fn remove_both_ways() {
    let mut t = table(16, 0);
    let r = t.reader();
    for i in 0..10 {
        t.insert(ctx(i)).unwrap();
    }
    let gone = t.remove(ctx(3).local_tag).unwrap();
    assert_eq!(gone.local_ulid, ctx(3).local_ulid);
    assert_eq!(t.len(), 9);
    assert_eq!(r.by_tag(ctx(3).local_tag), None);
    assert_eq!(r.by_ulids(ctx(3).local_ulid, ctx(3).peer_ulid), None);
    assert_eq!(t.remove(ctx(3).local_tag), Err(TableError::NotFound));
    for i in (0..10).filter(|&i| i != 3) {
        assert_eq!(
            r.by_tag(ctx(i).local_tag).unwrap().local_ulid,
            ctx(i).local_ulid
        );
        assert_eq!(
            r.by_ulids(ctx(i).local_ulid, ctx(i).peer_ulid)
                .unwrap()
                .local_tag,
            ctx(i).local_tag
        );
    }
    // The same keys can come back.
    t.insert(ctx(3)).unwrap();
    assert!(r.by_tag(ctx(3).local_tag).is_some());
}

#[test]
fn duplicates_rejected() {
    let mut t = table(16, 0);
    t.insert(ctx(1)).unwrap();
    let mut same_tag = ctx(2);
    same_tag.local_tag = ctx(1).local_tag;
    assert_eq!(t.insert(same_tag), Err(TableError::DuplicateTag));
    let mut same_ulids = ctx(2);
    same_ulids.local_ulid = ctx(1).local_ulid;
    same_ulids.peer_ulid = ctx(1).peer_ulid;
    assert_eq!(t.insert(same_ulids), Err(TableError::DuplicateUlids));
    // Half the pair equal is another context.
    let mut half = ctx(2);
    half.local_ulid = ctx(1).local_ulid;
    t.insert(half).unwrap();
    assert_eq!(t.len(), 2);
}

#[test]
fn full_table_error_and_slot_reuse() {
    let mut t = table(100, 1);
    let slots: HashSet<SlotId> = (0..100).map(|i| t.insert(ctx(i)).unwrap()).collect();
    assert_eq!(slots.len(), 100);
    assert!(slots.iter().all(|s| s.index() < 100));
    assert_eq!(t.insert(ctx(100)), Err(TableError::Full));
    assert_eq!(t.len(), 100);
    // A refused insert leaves no trace.
    assert_eq!(t.reader().by_tag(ctx(100).local_tag), None);
    let freed = t.remove(ctx(42).local_tag).unwrap().slot;
    assert_eq!(t.insert(ctx(100)), Ok(freed));
    assert_eq!(t.insert(ctx(101)), Err(TableError::Full));
}

#[test]
fn freed_slots_reused_oldest_first() {
    let mut t = table(8, 0);
    let a = t.insert(ctx(1)).unwrap();
    let b = t.insert(ctx(2)).unwrap();
    t.remove(ctx(1).local_tag).unwrap();
    t.remove(ctx(2).local_tag).unwrap();
    // Six never-used slots come first, then `a`, then `b`.
    let next: Vec<SlotId> = (10..18).map(|i| t.insert(ctx(i)).unwrap()).collect();
    assert_eq!(&next[6..], &[a, b]);
}

/// Sustained churn at full load: removed index positions are reused (F14-style overflow
/// counts instead of tombstones), so probe lengths stay short and the overflow counts
/// return to exactly zero once the table is empty.
#[test]
fn churn_keeps_probes_short() {
    let cap = 20_000;
    let mut t = table(cap, 0);
    let mut next = 0u64;
    let mut live = std::collections::VecDeque::new();
    for _ in 0..cap {
        t.insert(ctx(next)).unwrap();
        live.push_back(next);
        next += 1;
    }
    for round in 0..100_000 {
        // Remove a pseudo-random live context, insert a fresh one.
        let victim = live.remove((round * 7919) % live.len()).unwrap();
        t.remove(ctx(victim).local_tag).unwrap();
        t.insert(ctx(next)).unwrap();
        live.push_back(next);
        next += 1;
    }
    let st = t.probe_stats();
    // Random keys at this load settle near a mean of 0.4 and a maximum of 8-10 buckets;
    // tombstones or lost overflow counts would keep growing both.
    assert!(st.max_tag_displacement <= MAX_PROBE / 2, "{st:?}");
    assert!(st.max_ulid_displacement <= MAX_PROBE / 2, "{st:?}");
    assert!(st.mean_tag_displacement < 0.6, "{st:?}");
    assert!(st.mean_ulid_displacement < 0.6, "{st:?}");
    let r = t.reader();
    for &i in &live {
        assert_eq!(
            r.by_tag(ctx(i).local_tag).unwrap().peer_ulid,
            ctx(i).peer_ulid
        );
    }
    for i in live.drain(..) {
        t.remove(ctx(i).local_tag).unwrap();
    }
    assert!(t.is_empty());
    assert_eq!(t.shared.tags.overflow_total(), 0);
    assert_eq!(t.shared.ulids.overflow_total(), 0);
    assert_eq!(t.iter().count(), 0);
}

/// Tags chosen to share one home bucket fill 16 buckets, then the insert is refused with
/// `ProbeLimit` and leaves nothing behind; lookups of the others still succeed.
#[test]
fn probe_bound_enforced() {
    let cap = 10_000;
    let mut t = table(cap, 0);
    let target = t.shared.tags.home(t.shared.hasher.tag(tag(1)));
    let crowd: Vec<u64> = (1..)
        .filter(|&v| t.shared.tags.home(t.shared.hasher.tag(tag(v))) == target)
        .take(7 * MAX_PROBE + 1)
        .collect();
    for (i, &v) in crowd[..7 * MAX_PROBE].iter().enumerate() {
        let mut c = ctx(i as u64);
        c.local_tag = tag(v);
        t.insert(c).unwrap();
    }
    let mut last = ctx(999);
    last.local_tag = tag(crowd[7 * MAX_PROBE]);
    assert_eq!(t.insert(last), Err(TableError::ProbeLimit));
    assert_eq!(t.len(), 7 * MAX_PROBE);
    assert_eq!(t.get_by_ulids(last.local_ulid, last.peer_ulid), None);
    assert_eq!(t.probe_stats().max_tag_displacement, MAX_PROBE - 1);
    let r = t.reader();
    assert!(crowd[..7 * MAX_PROBE]
        .iter()
        .all(|&v| r.by_tag(tag(v)).is_some()));
    // Removing one makes room again.
    t.remove(tag(crowd[0])).unwrap();
    t.insert(last).unwrap();
}

/// Tags whose low 30 bits are all the same (only the 17 "structure" bits differ), or whose
/// high bits are all the same, spread over the index like random keys.
#[test]
fn structured_tags_spread() {
    let cap = 100_000;
    for make in [
        |i: u64| (i << 30) | 0x1555_5555,     // identical low 30 bits
        |i: u64| 0x7fff_0000_0000 | (i << 3), // identical high bits, stride 8
    ] {
        let mut t = table(cap, 0);
        for i in 0..cap as u64 {
            let mut c = ctx(i);
            c.local_tag = tag(make(i));
            t.insert(c).unwrap();
        }
        // Random keys: longest probe 8-10 buckets, mean 0.105 at this size and load.
        let st = t.probe_stats();
        assert!(st.max_tag_displacement <= 14, "{st:?}");
        assert!(st.mean_tag_displacement < 0.13, "{st:?}");
        let r = t.reader();
        assert!((0..cap as u64)
            .step_by(97)
            .all(|i| r.by_tag(tag(make(i))).is_some()));
    }
}

#[test]
fn counters_per_worker() {
    let mut t = table(8, 2);
    let r = t.reader();
    let slot = t.insert(ctx(1)).unwrap();
    let w0 = r.counters(0).unwrap();
    assert_eq!(w0.worker(), 0);
    assert_eq!(r.counters(0).err(), Some(TableError::WorkerTaken));
    assert_eq!(r.counters(2).err(), Some(TableError::NoSuchWorker));
    let w1 = std::thread::spawn({
        let r = r.clone();
        move || {
            let w1 = r.counters(1).unwrap();
            w1.on_rx(slot, 100, 7);
            w1.on_tx(slot, 60, 9);
            w1.on_tx(SlotId(1000), 1, 1); // out of range: ignored
            w1
        }
    })
    .join()
    .unwrap();
    w0.on_rx(slot, 1500, 5);
    w0.on_rx(slot, 40, 6);
    w0.on_tx(slot, 80, 12);
    assert_eq!(
        t.activity(slot),
        Some(Activity {
            rx_pkts: 3,
            rx_bytes: 1640,
            tx_pkts: 2,
            tx_bytes: 140,
            last_rx: 7,
            last_tx: 12,
        })
    );
    assert_eq!(r.activity(slot), t.activity(slot));
    assert_eq!(t.activity(SlotId(8)), None);
    // Dropping a handle frees the shard.
    drop(w1);
    assert!(r.counters(1).is_ok());
    // A new context in the same slot starts from zero.
    t.remove(ctx(1).local_tag).unwrap();
    for i in 2..9 {
        t.insert(ctx(i)).unwrap();
    }
    assert_eq!(t.insert(ctx(20)).unwrap(), slot);
    assert_eq!(t.activity(slot), Some(Activity::default()));
}

#[test]
fn iter_lists_live_contexts() {
    let mut t = table(64, 0);
    for i in 0..20 {
        t.insert(ctx(i)).unwrap();
    }
    for i in (0..20).step_by(2) {
        t.remove(ctx(i).local_tag).unwrap();
    }
    let mut seen: Vec<u64> = t
        .reader()
        .iter()
        .map(|e| e.local_tag.get() & 0xffff)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..20).step_by(2).collect::<Vec<_>>());
    assert_eq!(t.iter().count(), 10);
}

#[test]
fn batches_match_single_lookups() {
    // A table that fits the cache (batches skip the prefetch passes) and one that does not.
    for (capacity, prefetch) in [(1000, false), (20_000, true)] {
        let t = table(capacity, 0);
        assert_eq!(t.reader().shared().prefetch, prefetch, "{capacity}");
        batch_matches_single(t);
    }
}

fn batch_matches_single(mut t: TableWriter) {
    for i in 0..500 {
        t.insert(ctx(i)).unwrap();
    }
    let r = t.reader();
    // 70 keys (two full batches and a partial one), every third one missing.
    let ids: Vec<u64> = (0..70)
        .map(|k| if k % 3 == 0 { 10_000 + k } else { k * 7 })
        .collect();
    let tags: Vec<ContextTag> = ids.iter().map(|&i| ctx(i).local_tag).collect();
    let keys: Vec<(Ulid, Ulid)> = ids
        .iter()
        .map(|&i| (ctx(i).local_ulid, ctx(i).peer_ulid))
        .collect();
    let mut by_tag = vec![None; 70];
    let mut by_ulids = vec![None; 70];
    r.by_tag_batch(&tags, &mut by_tag);
    r.by_ulids_batch(&keys, &mut by_ulids);
    for (k, &i) in ids.iter().enumerate() {
        assert_eq!(by_tag[k], r.by_tag(tags[k]));
        assert_eq!(by_ulids[k], r.by_ulids(keys[k].0, keys[k].1));
        assert_eq!(by_tag[k].is_some(), i < 500);
        assert_eq!(by_tag[k], by_ulids[k]);
    }
    // A shorter output fills what fits and leaves the rest alone.
    let mut short = [None; 5];
    r.by_tag_batch(&tags, &mut short);
    assert_eq!(&short[..], &by_tag[..5]);
    let mut long = vec![Some(ctx(0).at(SlotId(0))); 80];
    r.by_ulids_batch(&keys, &mut long);
    assert_eq!(&long[..70], &by_ulids[..]);
    assert_eq!(long[75], Some(ctx(0).at(SlotId(0))));
    raw_matches_decoded(&r, &ids, &tags, &keys, &by_tag);
}

/// The raw batches answer what the decoded ones do, field by field, from keys in header
/// form (four big-endian halves).
fn raw_matches_decoded(
    r: &TableReader,
    ids: &[u64],
    tags: &[ContextTag],
    keys: &[(Ulid, Ulid)],
    decoded: &[Option<Entry>],
) {
    let words: Vec<crate::PairKey> = keys
        .iter()
        .map(|(l, p)| {
            let (l, p) = (l.0.to_bits(), p.0.to_bits());
            [(l >> 64) as u64, l as u64, (p >> 64) as u64, p as u64]
        })
        .collect();
    let mut by_pair = vec![crate::RawEntry::MISS; ids.len()];
    let mut by_tag = vec![crate::RawEntry::MISS; ids.len()];
    r.by_pair_batch(&words, &mut by_pair);
    r.by_tag_raw_batch(tags, &mut by_tag);
    let halves = |a: Ipv6Addr| [(a.to_bits() >> 64) as u64, a.to_bits() as u64];
    for (k, &i) in ids.iter().enumerate() {
        assert_eq!(by_pair[k], by_tag[k]);
        assert_eq!(by_pair[k].entry(), decoded[k]);
        assert_eq!(by_pair[k].is_hit(), i < 500, "key {k}");
        if let Some(e) = decoded[k] {
            let raw = by_pair[k];
            assert_eq!(raw.local_tag(), e.local_tag);
            assert_eq!(raw.peer_tag(), e.peer_tag);
            assert_eq!(raw.flags(), e.flags);
            assert_eq!(raw.tx_provider(), e.tx_provider);
            assert_eq!(raw.slot(), e.slot);
            assert_eq!(raw.local_ulid(), halves(e.local_ulid.0));
            assert_eq!(raw.peer_ulid(), halves(e.peer_ulid.0));
            assert_eq!(raw.local_locator(), halves(e.pair.local.0));
            assert_eq!(raw.peer_locator(), halves(e.pair.peer.0));
        } else {
            assert_eq!(by_pair[k], crate::RawEntry::MISS);
        }
    }
}

#[test]
fn raw_lookup_misses_a_removed_context() {
    let mut t = table(100, 0);
    let slot = t.insert(ctx(5)).unwrap();
    let e = ctx(5).at(slot);
    let (l, p) = (e.local_ulid.0.to_bits(), e.peer_ulid.0.to_bits());
    let key = [[(l >> 64) as u64, l as u64, (p >> 64) as u64, p as u64]];
    let mut out = [crate::RawEntry::MISS];
    t.reader().by_pair_batch(&key, &mut out);
    assert!(out[0].is_hit());
    t.remove(e.local_tag).unwrap();
    t.reader().by_pair_batch(&key, &mut out);
    assert!(!out[0].is_hit());
    t.reader().by_tag_raw_batch(&[e.local_tag], &mut out);
    assert_eq!(out[0], crate::RawEntry::MISS);
}

#[test]
fn config_validated() {
    for (cap, workers, err) in [
        (0, 1, TableError::InvalidCapacity),
        (u32::MAX as usize + 1, 1, TableError::InvalidCapacity),
        (10, MAX_WORKERS + 1, TableError::InvalidWorkers),
    ] {
        assert_eq!(
            TableWriter::new(&TableConfig::new(cap, workers)).err(),
            Some(err)
        );
    }
    assert_ne!(TableConfig::new(1, 0).seed, TableConfig::new(1, 0).seed);
    let t = table(1, 0);
    assert_eq!((t.capacity(), t.reader().capacity()), (1, 1));
}

#[test]
fn handles_are_send_and_sync_as_documented() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync + Clone>() {}
    send::<TableWriter>();
    send::<WorkerCounters>();
    send_sync::<TableReader>();
}

#[test]
fn counter_prefetch_of_hits_and_misses_counts_nothing() {
    let mut t = table(100, 1);
    let slot = t.insert(ctx(7)).unwrap();
    let e = ctx(7).at(slot);
    let r = t.reader();
    let mut hits = [crate::RawEntry::MISS; 2];
    r.by_tag_raw_batch(&[e.local_tag, ctx(8).local_tag], &mut hits);
    assert!(hits[0].is_hit() && !hits[1].is_hit());
    let c = r.counters(0).unwrap();
    // A hint only: a hit, a miss (slot 0 is never looked at for a miss) and an empty batch.
    c.prefetch_hits(&hits);
    c.prefetch_hits(&[]);
    assert_eq!(r.activity(slot), Some(crate::Activity::default()));
    c.apply(&[(slot, 60, true)], 3);
    let a = r.activity(slot).unwrap();
    assert_eq!((a.rx_pkts, a.rx_bytes, a.last_rx), (1, 60, 3));
}
