//! CGA/HBA generation and SHIM6 signature costs. Deterministic keys and seeds.

// A bench whose setup fails should stop loudly, like a test.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::Ipv6Addr;

use cga::{hba, CgaPublicKey, SiteKey};
use criterion::Criterion;
use rand::{rngs::StdRng, SeedableRng};

/// The throw-away RSA-1024 test key of spec/cga-hba.md §11.3.
static TEST_KEY_PEM: &str = include_str!("../testdata/rsa1024-test-key.pem");
const PREFIX: [u8; 8] = [0xfc, 0, 0, 0, 0, 0, 0, 1];

fn key_1024() -> SiteKey {
    SiteKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap()
}

/// Same-run baseline the figures in BENCHMARKS.md are divided by: one SHA-1 over a 187-byte
/// CGA Parameter Data Structure (RSA-1024), the unit of work of CGA generation and checking.
fn baseline(c: &mut Criterion) {
    use sha1::{Digest, Sha1};
    let pds = [0x42u8; 187];
    c.bench_function("baseline/sha1_187B", |b| {
        b.iter(|| Sha1::digest(black_box(&pds[..])))
    });
}

fn generation(c: &mut Criterion) {
    let key = key_1024();
    let mut g = c.benchmark_group("cga_generate");
    for sec in [0u8, 1] {
        // A fresh random start modifier per address, as a proxy does per host.
        let mut rng = StdRng::seed_from_u64(u64::from(sec));
        g.bench_function(format!("sec{sec}_rsa1024"), |b| {
            b.iter(|| {
                cga::generate(black_box(key.public_key_der()), PREFIX, sec, &[], &mut rng).unwrap()
            })
        });
    }
    g.finish();

    let (address, params) = cga::generate(
        key.public_key_der(),
        PREFIX,
        1,
        &[],
        &mut StdRng::seed_from_u64(7),
    )
    .unwrap();
    let bytes = params.to_bytes();
    c.bench_function("cga_verify_bytes_sec1", |b| {
        b.iter(|| cga::verify_bytes(black_box(address), black_box(&bytes)))
    });
}

fn signatures(c: &mut Criterion) {
    let keys = [
        ("rsa1024", key_1024()),
        (
            "rsa2048",
            SiteKey::generate(2048, &mut StdRng::seed_from_u64(2048)).unwrap(),
        ),
    ];
    let locators: Vec<Ipv6Addr> = ["2001:db8:a::10", "2001:db8:b::10"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let mut g = c.benchmark_group("shim6_signature");
    for (name, key) in &keys {
        g.bench_function(format!("sign_{name}"), |b| {
            b.iter(|| key.sign_shim6(black_box(7), black_box(&locators)).unwrap())
        });
        let sig = key.sign_shim6(7, &locators).unwrap();
        let public = CgaPublicKey::from_der(key.public_key_der()).unwrap();
        g.bench_function(format!("verify_{name}"), |b| {
            b.iter(|| {
                public
                    .verify_shim6(black_box(7), black_box(&locators), black_box(&sig))
                    .unwrap()
            })
        });
        g.bench_function(format!("decode_public_key_{name}"), |b| {
            b.iter(|| CgaPublicKey::from_der(black_box(key.public_key_der())).unwrap())
        });
    }
    g.finish();
}

fn hba_set(c: &mut Criterion) {
    let key = key_1024();
    let prefixes = [
        [0x20, 0x01, 0x0d, 0xb8, 0, 0xa, 0, 0],
        [0x20, 0x01, 0x0d, 0xb8, 0, 0xb, 0, 0],
    ];
    let mut g = c.benchmark_group("hba_set_of_2");
    for sec in [0u8, 1] {
        let mut rng = StdRng::seed_from_u64(100 + u64::from(sec));
        g.bench_function(format!("sec{sec}_cga_compatible"), |b| {
            b.iter(|| {
                hba::generate_set(
                    black_box(&prefixes),
                    sec,
                    Some(key.public_key_der()),
                    &mut rng,
                )
                .unwrap()
            })
        });
    }
    let mut rng = StdRng::seed_from_u64(200);
    g.bench_function("sec0_pure_hba", |b| {
        b.iter(|| hba::generate_set(black_box(&prefixes), 0, None, &mut rng).unwrap())
    });
    g.finish();
}

// Written out instead of `criterion_group!`/`criterion_main!`, whose generated public fns
// carry no docs (workspace lint `missing_docs`).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    baseline(&mut c);
    generation(&mut c);
    signatures(&mut c);
    hba_set(&mut c);
    c.final_summary();
}
