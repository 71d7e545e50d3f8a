//! Criterion benches for the hot wire paths: the payload header (per data packet), a full
//! I2 with a Locator List (slow path), and inserting/removing the payload header.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use wire::{
    insert_payload_header, remove_payload_header, ContextTag, ControlRepr, Locator, LocatorList,
    MessageBody, Nonce, PayloadHeader, PayloadRepr, ShimOption, Ulid, VerificationMethod,
};

fn tag() -> ContextTag {
    ContextTag::from_wire(0x1234_5678_9abc)
}

/// Same-run baselines the figures in BENCHMARKS.md are divided by: the machine is shared and
/// noisy, so ratios travel better than nanoseconds.
fn baselines(c: &mut Criterion) {
    let src = [0x11u8, 0x00, 0x92, 0x34, 0x56, 0x78, 0x9a, 0xbc];
    let mut dst = [0u8; 8];
    c.bench_function("baseline/copy8", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src[..]));
            black_box(&dst);
        })
    });
    let big = [0x5au8; 64];
    let mut out = [0u8; 72];
    c.bench_function("baseline/copy64", |b| {
        b.iter(|| {
            out[8..].copy_from_slice(black_box(&big[..]));
            black_box(&out);
        })
    });
}

fn payload_header(c: &mut Criterion) {
    let bytes = [0x11u8, 0x00, 0x92, 0x34, 0x56, 0x78, 0x9a, 0xbc];
    c.bench_function("payload_header/parse", |b| {
        b.iter(|| PayloadRepr::parse_bytes(black_box(&bytes[..])))
    });
    let repr = PayloadRepr {
        next_header: 17,
        tag: tag(),
    };
    let mut out = [0u8; 8];
    c.bench_function("payload_header/emit", |b| {
        b.iter(|| {
            let mut h = PayloadHeader::new_unchecked(&mut out[..]);
            black_box(&repr).emit(&mut h)
        })
    });
    c.bench_function("payload_header/parse+emit", |b| {
        b.iter(|| {
            let r = PayloadRepr::parse_bytes(black_box(&bytes[..]))?;
            r.emit(&mut PayloadHeader::new_unchecked(&mut out[..]))
        })
    });
}

fn i2() -> ControlRepr {
    let loc = |i: u16| Locator(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1));
    ControlRepr {
        body: MessageBody::I2 {
            initiator_tag: tag(),
            initiator_nonce: Nonce(0xa1b2_c3d4),
            responder_nonce: Nonce(0x102),
        },
        options: vec![
            ShimOption::ResponderValidator((0x10..0x24).collect()),
            ShimOption::UlidPair {
                sender: Ulid(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1)),
                receiver: Ulid(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 2)),
            },
            ShimOption::LocatorList(LocatorList {
                generation: 7,
                entries: (1..=4).map(|i| (loc(i), VerificationMethod::Cga)).collect(),
            }),
            ShimOption::CgaParameters(vec![0x42; 170]),
            ShimOption::CgaSignature(vec![0x17; 128]),
            ShimOption::KeepaliveTimeout(15),
        ],
    }
}

fn control(c: &mut Criterion) {
    let repr = i2();
    let bytes = repr.to_bytes().unwrap_or_default();
    c.bench_function("control/i2_parse", |b| {
        b.iter(|| ControlRepr::parse(black_box(&bytes)))
    });
    let mut out = vec![0u8; repr.buffer_len()];
    c.bench_function("control/i2_emit", |b| {
        b.iter(|| black_box(&repr).emit(&mut out))
    });
}

/// 64-byte IPv6/UDP packet (40 + 8 + 16) behind 8 spare bytes.
fn udp_packet() -> Vec<u8> {
    let mut p = vec![0u8; 8];
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 24, 17, 64]);
    p.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1).octets());
    p.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 2).octets());
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x00, 0x18, 0xab, 0xcd]);
    p.extend(0u8..16);
    p
}

fn exthdr(c: &mut Criterion) {
    let mut buf = udp_packet();
    c.bench_function("exthdr/insert+remove_udp64", |b| {
        b.iter(|| {
            insert_payload_header(black_box(&mut buf), tag())?;
            remove_payload_header(black_box(&mut buf))
        })
    });
    let mut inserted = udp_packet();
    let _ = insert_payload_header(&mut inserted, tag());
    c.bench_function("exthdr/find_shim6_udp64", |b| {
        b.iter(|| wire::find_shim6(black_box(&inserted)))
    });
}

criterion_group!(benches, baselines, payload_header, control, exthdr);
criterion_main!(benches);
