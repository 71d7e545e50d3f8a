#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Instant;
use dataplane::bench::Synthetic;
use dataplane::config::DataplaneConfig;
use wire::Ulid;
fn main() {
    let cfg = DataplaneConfig::example();
    for contexts in [1000usize, 1_000_000] {
        let site = Synthetic::new(&cfg, contexts);
        let table = site.table(1).unwrap();
        let r = table.reader();
        let mut rng = 12345u64;
        let keys: Vec<(Ulid, Ulid)> = (0..32 * 4096).map(|_| { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; let e = site.entry((rng % contexts as u64) as usize); (e.local_ulid, e.peer_ulid) }).collect();
        let tags: Vec<_> = (0..32 * 4096).map(|_| { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; site.entry((rng % contexts as u64) as usize).local_tag }).collect();
        let mut out = [None; 32];
        let mut hits = 0usize;
        let s = Instant::now();
        for _ in 0..20 { for ch in keys.chunks(32) { r.by_ulids_batch(ch, &mut out); hits += out.iter().filter(|o| o.is_some()).count(); } }
        println!("{contexts}: by_ulids_batch {:.1} ns/key ({hits})", s.elapsed().as_nanos() as f64 / (20 * keys.len()) as f64);
        let s = Instant::now();
        for _ in 0..20 { for k in &keys { hits += r.by_ulids(k.0, k.1).is_some() as usize; } }
        println!("{contexts}: by_ulids single {:.1} ns/key ({hits})", s.elapsed().as_nanos() as f64 / (20 * keys.len()) as f64);
        let s = Instant::now();
        for _ in 0..20 { for ch in tags.chunks(32) { r.by_tag_batch(ch, &mut out); hits += out.iter().filter(|o| o.is_some()).count(); } }
        println!("{contexts}: by_tag_batch {:.1} ns/key ({hits})", s.elapsed().as_nanos() as f64 / (20 * keys.len()) as f64);
    }
}
