//! Readers on several threads hammer lookups while the single writer inserts, updates and
//! removes (issue #4 acceptance).
//!
//! Every context is numbered `n` (never reused) and all its fields derive from `n` and from
//! the version of its last update, so a reader can check each snapshot on its own:
//! - `local_ulid = fd00::n`, `peer_ulid = fd99::n`, `local_tag = tag(n)`;
//! - `pair.local = 2001:db8:0:0:P::n`, `pair.peer = 2001:db9:0:0:P::!n` where `P` is also
//!   `tx_provider` (the three change together in `update_pair`);
//! - `peer_tag = (n mod 2^31) << 16 | version`.
//!
//! A torn copy mixes fields of two versions (or of two contexts, when a slot is reused) and
//! fails these checks. The writer removes contexts oldest first and publishes watermarks
//! around each operation:
//! - `INSERTED`: every `n` below it has been inserted (stored after `insert` returns);
//! - `REMOVING`: a removal of every `n` below it has started (stored before `remove`);
//! - `REMOVED`: every `n` below it has been removed (stored after `remove` returns).
//!
//! A reader loads `REMOVED` and `INSERTED` before a lookup and `REMOVING` after it. A hit on
//! `n < REMOVED-before` is a context seen after its removal completed; a miss on
//! `REMOVING-after <= n < INSERTED-before` is a context present throughout the lookup that
//! was not found. Either fails the test.

// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use table::{
    flags, Entry, Lookup, NewEntry, TableConfig, TableReader, TableWriter, WorkerCounters,
};
use wire::{ContextTag, Locator, LocatorPair, Ulid};

const CAPACITY: usize = 1024;
/// Live contexts the writer keeps: high load, so slots and index entries are reused fast.
const LIVE: u64 = 900;
const WRITER_ROUNDS: u64 = 40_000;
const READERS: usize = 3;
const MAX_TIME: Duration = Duration::from_secs(8);

fn tag(n: u64) -> ContextTag {
    // Multiplying by an odd constant is a bijection modulo 2^47: distinct n, distinct tags,
    // with all bits varying.
    ContextTag::from_wire(n.wrapping_mul(0x5851_f42d_4c95_7f2d))
}

fn addr(top: u32, mid: u16, low: u64) -> Ipv6Addr {
    Ipv6Addr::from_bits((u128::from(top) << 96) | (u128::from(mid) << 64) | u128::from(low))
}

fn pair(n: u64, provider: u16) -> LocatorPair {
    LocatorPair {
        local: Locator(addr(0x2001_0db8, provider, n)),
        peer: Locator(addr(0x2001_0db9, provider, !n)),
    }
}

fn ulids(n: u64) -> (Ulid, Ulid) {
    (Ulid(addr(0xfd00_0000, 0, n)), Ulid(addr(0xfd99_0000, 0, n)))
}

fn peer_tag(n: u64, version: u16) -> ContextTag {
    ContextTag::from_wire(((n & 0x7fff_ffff) << 16) | u64::from(version))
}

fn new_entry(n: u64) -> NewEntry {
    let (local_ulid, peer_ulid) = ulids(n);
    NewEntry {
        local_tag: tag(n),
        peer_tag: peer_tag(n, 0),
        local_ulid,
        peer_ulid,
        pair: pair(n, 0),
        tx_provider: 0,
        flags: flags::ESTABLISHED,
    }
}

/// Checks that `e` is one consistent version of context `n`.
fn check(e: &Entry, n: u64) {
    let (l, p) = ulids(n);
    assert_eq!(
        (e.local_ulid, e.peer_ulid, e.local_tag),
        (l, p, tag(n)),
        "{e:?}"
    );
    assert_eq!(e.pair, pair(n, e.tx_provider), "torn pair/provider: {e:?}");
    assert_eq!(
        e.peer_tag.get() >> 16,
        n & 0x7fff_ffff,
        "foreign peer tag: {e:?}"
    );
    assert_eq!(e.flags, flags::ESTABLISHED, "{e:?}");
}

struct Marks {
    inserted: AtomicU64,
    removing: AtomicU64,
    removed: AtomicU64,
    done: AtomicBool,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn writer(mut t: TableWriter, marks: &Marks) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut lo, mut hi) = (0u64, 0u64);
    let start = Instant::now();
    for round in 0..WRITER_ROUNDS {
        if start.elapsed() > MAX_TIME {
            break;
        }
        if hi - lo < LIVE {
            t.insert(new_entry(hi)).unwrap();
            hi += 1;
            marks.inserted.store(hi, Ordering::Release);
        } else {
            marks.removing.store(lo + 1, Ordering::Release);
            let gone = t.remove(tag(lo)).unwrap();
            check(&gone, lo);
            lo += 1;
            marks.removed.store(lo, Ordering::Release);
        }
        // Updates on random live contexts between structural changes.
        for _ in 0..4 {
            if hi > lo {
                let n = lo + rng.below(hi - lo);
                let provider = (round % 65_535) as u16 + 1;
                t.update_pair(tag(n), pair(n, provider), provider).unwrap();
            }
        }
        if hi > lo {
            let n = lo + rng.below(hi - lo);
            t.update_peer_tag(tag(n), peer_tag(n, round as u16))
                .unwrap();
            t.set_flags(tag(n), flags::ESTABLISHED).unwrap();
        }
    }
    marks.done.store(true, Ordering::Release);
}

#[derive(Default)]
struct Tally {
    hits: usize,
    misses: usize,
    busy: usize,
}

/// One lookup of `n` (`how` picks the path), checked against the watermarks.
fn probe(r: &TableReader, marks: &Marks, n: u64, how: u64, tally: &mut Tally) -> Option<Entry> {
    let removed_before = marks.removed.load(Ordering::Acquire);
    let inserted_before = marks.inserted.load(Ordering::Acquire);
    let (l, p) = ulids(n);
    let result = match how % 3 {
        0 => r.try_by_tag(tag(n)),
        1 => r.try_by_ulids(l, p),
        _ => {
            // A batch of 32 with `n` in the middle of unrelated (likely missing) keys.
            let mut keys = [(l, p); 32];
            for (i, k) in keys.iter_mut().enumerate() {
                if i != 17 {
                    *k = ulids(n + 10_000 + i as u64);
                }
            }
            let mut out = [None; 32];
            r.by_ulids_batch(&keys, &mut out);
            // The batch API folds Busy into None; a miss check would be unsound there, so
            // only hits are judged.
            match out[17] {
                Some(e) => Lookup::Hit(e),
                None => Lookup::Busy,
            }
        }
    };
    let removing_after = marks.removing.load(Ordering::Acquire);
    match result {
        Lookup::Hit(e) => {
            check(&e, n);
            assert!(
                n >= removed_before,
                "context {n} found although its removal completed before the lookup"
            );
            tally.hits += 1;
            return Some(e);
        }
        Lookup::Miss => {
            assert!(
                !(removing_after <= n && n < inserted_before),
                "context {n} present throughout the lookup was not found"
            );
            tally.misses += 1;
        }
        Lookup::Busy => tally.busy += 1,
    }
    None
}

fn reader(r: &TableReader, counters: &WorkerCounters, marks: &Marks, seed: u64) -> Tally {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    while !marks.done.load(Ordering::Acquire) {
        // Around the live window: long-removed, just-removed, live, not yet inserted.
        let lo = marks.removed.load(Ordering::Relaxed).saturating_sub(64);
        let hi = marks.inserted.load(Ordering::Relaxed) + 64;
        let n = lo + rng.below(hi - lo);
        if let Some(e) = probe(r, marks, n, rng.next(), &mut tally) {
            // Workers count while the writer resets counters of reused slots.
            counters.on_rx(e.slot, 64, tally.hits as u32);
        }
    }
    tally
}

#[test]
fn readers_never_see_torn_or_removed_entries() {
    let t = TableWriter::new(&TableConfig::new(CAPACITY, READERS)).unwrap();
    let marks = Arc::new(Marks {
        inserted: AtomicU64::new(0),
        removing: AtomicU64::new(0),
        removed: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let total_hits = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let r = t.reader();
            let marks = Arc::clone(&marks);
            let total_hits = Arc::clone(&total_hits);
            thread::spawn(move || {
                // Each reader is also a worker counting into its own shard.
                let counters = r.counters(i).unwrap();
                let tally = reader(&r, &counters, &marks, 0x1234_5678 + i as u64);
                total_hits.fetch_add(tally.hits, Ordering::Relaxed);
                tally
            })
        })
        .collect();
    let reader_handle = t.reader();
    writer(t, &marks);
    let tallies: Vec<Tally> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    let lookups: usize = tallies.iter().map(|t| t.hits + t.misses + t.busy).sum();
    let misses: usize = tallies.iter().map(|t| t.misses).sum();
    let busy: usize = tallies.iter().map(|t| t.busy).sum();
    eprintln!(
        "{lookups} lookups, {} hits, {misses} misses, {busy} busy (batch misses count as busy)",
        total_hits.load(Ordering::Relaxed)
    );
    assert!(
        total_hits.load(Ordering::Relaxed) > 1_000,
        "readers barely overlapped the writer"
    );
    assert!(misses > 100);
    // The writer finished: the table holds exactly the last LIVE contexts, intact.
    let left: Vec<Entry> = reader_handle.iter().collect();
    assert_eq!(left.len() as u64, LIVE);
    let first = marks.removed.load(Ordering::Relaxed);
    for e in &left {
        let n = e.local_ulid.0.to_bits() as u64;
        assert!(n >= first);
        check(e, n);
    }
}
