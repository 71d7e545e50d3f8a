//! Criterion benches of the fast-path lookups: by tag (ingress) and by ULID pair (egress),
//! hit and miss, one key at a time and in bursts of 32, at 1K, 1M and 4M contexts.
//!
//! Keys walk a pseudo-random permutation of the whole table, so at 1M and 4M contexts nearly
//! every lookup misses the CPU caches (the tables are 120 and 480 MiB), as a worker's would.
//! Miss keys are contexts that were never inserted. Run:
//! `cargo bench -p pshim6-table --bench table`; per-lookup times are the reported time
//! (single) or time / 32 (batch, also shown as throughput).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::Ipv6Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use table::{
    flags, Entry, NewEntry, PairKey, RawEntry, TableConfig, TableReader, TableWriter, BATCH,
};
use wire::{ContextTag, Locator, LocatorPair, Ulid};

const SIZES: [(usize, &str); 3] = [(1 << 10, "1K"), (1 << 20, "1M"), (1 << 22, "4M")];

fn tag(n: u64) -> ContextTag {
    // Odd multiplier: a bijection modulo 2^47.
    ContextTag::from_wire(n.wrapping_mul(0x5851_f42d_4c95_7f2d))
}

fn ulids(n: u64) -> (Ulid, Ulid) {
    let base = 0xfd00_0000_0000_0000_0000_0000_0000_0000u128;
    (
        Ulid(Ipv6Addr::from_bits(base | u128::from(n))),
        Ulid(Ipv6Addr::from_bits(base | (1 << 64) | u128::from(n))),
    )
}

fn entry(n: u64) -> NewEntry {
    let (local_ulid, peer_ulid) = ulids(n);
    NewEntry {
        local_tag: tag(n),
        peer_tag: tag(!n),
        local_ulid,
        peer_ulid,
        pair: LocatorPair {
            local: Locator(Ipv6Addr::from_bits(0x2001_0db8 << 96 | u128::from(n))),
            peer: Locator(Ipv6Addr::from_bits(0x2001_0db9 << 96 | u128::from(n))),
        },
        tx_provider: (n % 4) as u16,
        flags: flags::ESTABLISHED,
    }
}

/// Context number of the `i`-th lookup: a permutation of `0..size` (size a power of two),
/// shifted past the table for misses.
struct Keys {
    i: u64,
    mask: u64,
    offset: u64,
}

impl Keys {
    fn new(size: usize, hit: bool) -> Self {
        Self {
            i: 0,
            mask: size as u64 - 1,
            offset: if hit { 0 } else { size as u64 },
        }
    }
    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.i = self.i.wrapping_add(1);
        (self.i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & self.mask) + self.offset
    }
}

fn build(size: usize) -> (TableWriter, TableReader) {
    let mut t = TableWriter::new(&TableConfig::new(size, 0)).unwrap();
    for n in 0..size as u64 {
        t.insert(entry(n)).unwrap();
    }
    let r = t.reader();
    (t, r)
}

fn lookups(c: &mut Criterion) {
    for (size, label) in SIZES {
        let (_writer, r) = build(size);
        let mut g = c.benchmark_group("lookup");
        for hit in [true, false] {
            let hm = if hit { "hit" } else { "miss" };
            let check = move |e: Option<Entry>| debug_assert_eq!(e.is_some(), hit);

            g.throughput(Throughput::Elements(1));
            let mut keys = Keys::new(size, hit);
            g.bench_function(BenchmarkId::new(format!("tag/{hm}/single"), label), |b| {
                b.iter(|| {
                    let e = r.by_tag(black_box(tag(keys.next())));
                    check(e);
                    e
                })
            });
            let mut keys = Keys::new(size, hit);
            g.bench_function(BenchmarkId::new(format!("ulids/{hm}/single"), label), |b| {
                b.iter(|| {
                    let (l, p) = ulids(keys.next());
                    let e = r.by_ulids(black_box(l), black_box(p));
                    check(e);
                    e
                })
            });

            g.throughput(Throughput::Elements(BATCH as u64));
            let mut keys = Keys::new(size, hit);
            let mut out = [None; BATCH];
            g.bench_function(BenchmarkId::new(format!("tag/{hm}/batch32"), label), |b| {
                b.iter(|| {
                    let tags: [ContextTag; BATCH] = core::array::from_fn(|_| tag(keys.next()));
                    r.by_tag_batch(black_box(&tags), &mut out);
                    check(out[0]);
                    black_box(&out);
                })
            });
            let mut keys = Keys::new(size, hit);
            g.bench_function(
                BenchmarkId::new(format!("ulids/{hm}/batch32"), label),
                |b| {
                    b.iter(|| {
                        let pairs: [(Ulid, Ulid); BATCH] =
                            core::array::from_fn(|_| ulids(keys.next()));
                        r.by_ulids_batch(black_box(&pairs), &mut out);
                        check(out[0]);
                        black_box(&out);
                    })
                },
            );
            // The fast path's form: keys as header words, answers as slot words.
            let mut keys = Keys::new(size, hit);
            let mut raw = [RawEntry::MISS; BATCH];
            g.bench_function(BenchmarkId::new(format!("tag/{hm}/raw32"), label), |b| {
                b.iter(|| {
                    let tags: [ContextTag; BATCH] = core::array::from_fn(|_| tag(keys.next()));
                    r.by_tag_raw_batch(black_box(&tags), &mut raw);
                    debug_assert_eq!(raw[0].is_hit(), hit);
                    black_box(&raw);
                })
            });
            let mut keys = Keys::new(size, hit);
            g.bench_function(BenchmarkId::new(format!("ulids/{hm}/raw32"), label), |b| {
                b.iter(|| {
                    let pairs: [PairKey; BATCH] = core::array::from_fn(|_| {
                        let (l, p) = ulids(keys.next());
                        let (l, p) = (l.0.to_bits(), p.0.to_bits());
                        [(l >> 64) as u64, l as u64, (p >> 64) as u64, p as u64]
                    });
                    r.by_pair_batch(black_box(&pairs), &mut raw);
                    debug_assert_eq!(raw[0].is_hit(), hit);
                    black_box(&raw);
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = lookups
}
criterion_main!(benches);
