//! Complete SHIM6 handshakes (I1, R1, I2, R2 and both contexts created, verified and torn
//! down again) per second between two engines on one core, with our-signature and
//! peer-verification caching and without. Target: ≥ 20 000/s with caching (release).

// A bench whose setup fails should stop loudly, like a test.
#![allow(clippy::unwrap_used, clippy::panic)]
// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use shim6::{
    prefix64, ConnectOutcome, ContextEngine, EngineConfig, LocalProvider, ProviderId, RandomTags,
    SiteIdentity,
};
use wire::{Locator, Ulid};

#[path = "../src/tests/keys.rs"]
mod keys;

const HOSTS: usize = 8;

struct Side {
    engine: ContextEngine,
    hosts: Vec<Ulid>,
    locators: Vec<Vec<Locator>>,
}

fn side(pem: &str, n: u16, cache: bool, now: Instant) -> Side {
    let key = cga::SiteKey::from_pkcs8_pem(pem).unwrap();
    let ulid_prefix = prefix64(format!("fc00:0:0:{n:x}::").parse().unwrap());
    let providers: Vec<LocalProvider> = (1..=2u16)
        .map(|i| LocalProvider {
            id: ProviderId(i),
            prefix: prefix64(format!("2001:db8:{:x}::", n * 16 + i).parse().unwrap()),
            up: true,
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(u64::from(n));
    let hosts: Vec<(Ulid, cga::CgaParameters)> = (0..HOSTS)
        .map(|_| {
            let (a, p) =
                cga::generate(key.public_key_der(), ulid_prefix, 0, &[], &mut rng).unwrap();
            (Ulid(a), p)
        })
        .collect();
    let config = EngineConfig {
        cache_signatures: cache,
        cache_peer_verification: cache,
        // The bench runs at one instant: no R1 rate limit.
        r1_per_sec: u32::MAX,
        ..EngineConfig::default()
    };
    let identity = SiteIdentity {
        key,
        ulid_prefix,
        providers: providers.clone(),
    };
    let mut engine = ContextEngine::new(
        config,
        identity,
        Box::new(RandomTags::new()),
        u64::from(n),
        now,
    )
    .unwrap();
    for (u, p) in &hosts {
        engine.add_local_host(*u, p.clone()).unwrap();
    }
    let locators = hosts
        .iter()
        .map(|(u, _)| {
            providers
                .iter()
                .map(|p| shim6::locator_for(p.prefix, *u))
                .collect()
        })
        .collect();
    Side {
        engine,
        hosts: hosts.into_iter().map(|(u, _)| u).collect(),
        locators,
    }
}

/// Moves packets between the engines until both are quiet; returns how many moved.
fn pump(a: &mut Side, b: &mut Side, now: Instant) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(t) = a.engine.poll_transmit() {
            b.engine.handle_control(now, t.src, t.dst, &t.payload);
            any = true;
            moved += 1;
        }
        while let Some(t) = b.engine.poll_transmit() {
            a.engine.handle_control(now, t.src, t.dst, &t.payload);
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
}

fn handshake(a: &mut Side, b: &mut Side, i: usize, now: Instant) {
    let (la, lb) = (a.hosts[i % HOSTS], b.hosts[(i / HOSTS) % HOSTS]);
    let locs = &b.locators[(i / HOSTS) % HOSTS];
    let ConnectOutcome::Started(ta) = a.engine.connect(now, la, lb, locs).unwrap() else {
        panic!("connect did not start")
    };
    let moved = pump(a, b, now);
    assert_eq!(moved, 4, "I1, R1, I2, R2");
    let tb = b.engine.find(lb, la).unwrap();
    black_box((a.engine.context(ta), b.engine.context(tb)));
    a.engine.remove(now, ta);
    b.engine.remove(now, tb);
    while a.engine.poll_event().is_some() {}
    while b.engine.poll_event().is_some() {}
}

fn handshakes(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    for (name, cache) in [("cached", true), ("uncached", false)] {
        let now = Instant::now();
        let mut a = side(keys::SITE_A_PEM, 0xa, cache, now);
        let mut b = side(keys::SITE_B_PEM, 0xb, cache, now);
        let mut i = 0usize;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                handshake(&mut a, &mut b, i, now);
                i += 1;
            })
        });
    }
    g.finish();
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
