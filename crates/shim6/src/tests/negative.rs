//! Negative tests: stale validators, replays, wrong nonces, forged material, unknown types and
//! critical options, floods, and arbitrary bytes.

use std::cell::RefCell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use wire::{ContextTag, ControlRepr, ErrorCode, Locator, MessageBody, Nonce, ShimOption, Ulid};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ContextState, Transmit};

/// Connects A0 → B0 dropping type `ty` sent `dir`; returns the first such packet.
fn capture(p: &mut Pair, dir: Dir, ty: u8) -> Transmit {
    p.drop_type(dir, ty);
    p.start_connect(0, 0);
    p.drive_bounded(50, |p| {
        p.dropped
            .iter()
            .any(|(_, d, t)| *d == dir && msg_type(t) == ty)
    });
    p.first_dropped(dir, ty)
}

#[test]
fn i2_with_a_validator_older_than_the_previous_secret_is_dropped() {
    let mut p = Pair::new(60);
    let i2 = capture(&mut p, Dir::AtoB, I2);
    p.drop_everything();
    // Validator period 30 s: the R1 was made in epoch 0; at 61 s both secrets have rotated.
    p.drive_until(t0() + secs(61));
    p.filter = None;
    p.inject(Dir::AtoB, i2);
    p.drive_for(ms(20));
    assert_eq!(p.b.engine.stats().stale_validator, 1);
    assert_eq!(p.b.engine.context_count(), 0);
    assert_eq!(p.b.count_sent(R2), 0);
}

#[test]
fn i2_with_a_tampered_validator_is_dropped() {
    let mut p = Pair::new(61);
    let i2 = capture(&mut p, Dir::AtoB, I2);
    p.filter = None;
    let bad = forge_options(&i2, |o| {
        if let ShimOption::ResponderValidator(v) = o {
            v[0] ^= 1;
        }
    });
    p.inject(Dir::AtoB, bad);
    // A validator for another Initiator Context Tag is no good either.
    let other_tag = forge(&i2, |r| {
        if let MessageBody::I2 { initiator_tag, .. } = &mut r.body {
            *initiator_tag = ContextTag::new(initiator_tag.get() ^ 2).unwrap();
        }
    });
    p.inject(Dir::AtoB, other_tag);
    p.drive_for(ms(15));
    assert_eq!(p.b.engine.stats().bad_validator, 2);
    assert_eq!(p.b.engine.context_count(), 0);
}

#[test]
fn replayed_i2_does_not_create_a_second_context() {
    let mut p = Pair::new(62);
    let (ta, tb) = p.connect(0, 0);
    let i2 = p.a.sent_of(I2)[0].1.clone();
    let r2_before = p.b.count_sent(R2);
    for _ in 0..3 {
        p.inject(Dir::AtoB, i2.clone());
    }
    p.drive_for(ms(50));
    assert_eq!(p.b.engine.context_count(), 1);
    assert_eq!(p.b.established().len(), 1);
    assert_eq!(p.b.engine.context(tb).unwrap().peer_tag, Some(ta));
    assert_eq!(p.b.count_sent(R2), r2_before + 3);
    assert!(!p
        .b
        .has_event(|e| matches!(e, crate::ContextEvent::PeerTagChanged { .. })));
}

#[test]
fn r2_with_a_wrong_nonce_is_dropped() {
    let mut p = Pair::new(63);
    let r2 = capture(&mut p, Dir::BtoA, R2);
    p.filter = None;
    let wrong = forge(&r2, |r| {
        if let MessageBody::R2 {
            initiator_nonce, ..
        } = &mut r.body
        {
            initiator_nonce.0 = initiator_nonce.0.wrapping_add(1);
        }
    });
    p.inject(Dir::BtoA, wrong);
    p.drive_for(ms(15));
    assert_eq!(p.a.engine.stats().wrong_nonce, 1);
    assert_eq!(p.a.only_context().state, ContextState::I2Sent);
    p.inject(Dir::BtoA, r2);
    p.drive_for(ms(15));
    assert_eq!(p.a.only_context().state, ContextState::Established);
}

#[test]
fn r2_with_a_forged_locator_list_is_rejected() {
    let mut p = Pair::new(64);
    let r2 = capture(&mut p, Dir::BtoA, R2);
    p.pass_only(Dir::AtoB);
    let forged = forge_locator_list(&r2, |l| {
        l.entries.push((
            Locator("2001:db8:bad::2".parse().unwrap()),
            wire::VerificationMethod::Cga,
        ));
    });
    p.inject(Dir::BtoA, forged);
    p.drive_for(ms(15));
    assert_eq!(p.a.engine.stats().bad_signature, 1);
    assert_eq!(p.a.only_context().state, ContextState::I2Sent);
    assert_eq!(p.a.count_sent(ERROR), 1);
}

#[test]
fn i2_with_another_hosts_pds_is_dropped_silently() {
    let mut p = Pair::new(65);
    let i2 = capture(&mut p, Dir::AtoB, I2);
    p.filter = None;
    let other = p.a.params[1].to_bytes();
    let forged = forge_options(&i2, |o| {
        if let ShimOption::CgaParameters(pds) = o {
            *pds = other.clone();
        }
    });
    p.inject(Dir::AtoB, forged);
    p.drive_for(ms(15));
    assert_eq!(p.b.engine.stats().pds_mismatch, 1);
    assert_eq!(p.b.engine.context_count(), 0);
    assert_eq!(p.b.count_sent(ERROR), 0);
}

#[test]
fn unknown_critical_option_gets_error_1_pointing_at_it() {
    let mut p = Pair::new(66);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let i1 = |critical: bool| ControlRepr {
        body: MessageBody::I1 {
            initiator_tag: ContextTag::new(9).unwrap(),
            initiator_nonce: Nonce(9),
        },
        options: vec![
            ShimOption::UlidPair {
                sender: a,
                receiver: b,
            },
            ShimOption::Unknown {
                kind: 300,
                critical,
                data: vec![1, 2, 3],
            },
        ],
    };
    let (src, dst) = (p.a.locators(0)[0].0, p.b.locators(0)[0].0);
    p.inject(
        Dir::AtoB,
        Transmit {
            src,
            dst,
            payload: i1(true).to_bytes().unwrap(),
        },
    );
    p.drive_for(ms(15));
    assert_eq!(p.b.count_sent(R1), 0);
    let (when, err) = p.b.sent_of(ERROR)[0].clone();
    let _ = when;
    assert_eq!(
        (Locator(err.src), Locator(err.dst)),
        (Locator(dst), Locator(src))
    );
    let MessageBody::Error {
        code,
        pointer,
        packet,
    } = body(&err)
    else {
        panic!()
    };
    // 40 (quoted IPv6 header) + 16 (I1) + 40 (ULID Pair option) = the unknown option's Type.
    assert_eq!((code, pointer), (ErrorCode::UnrecognisedCriticalOption, 96));
    assert_eq!(&packet[8..24], &src.octets());
    assert_eq!(u16::from_be_bytes([packet[96], packet[97]]), (300 << 1) | 1);
    assert_eq!(p.b.engine.stats().rx_unknown_critical_option, 1);
    // The same option without C is skipped and the I1 answered.
    p.inject(
        Dir::AtoB,
        Transmit {
            src,
            dst,
            payload: i1(false).to_bytes().unwrap(),
        },
    );
    p.drive_for(ms(15));
    assert_eq!(p.b.count_sent(R1), 1);
}

#[test]
fn unknown_type_gets_rate_limited_error_0_and_errors_are_never_answered() {
    let mut p = Pair::new(67);
    let (src, dst) = (p.a.locators(0)[0].0, p.b.locators(0)[0].0);
    let unknown = ControlRepr {
        body: MessageBody::Unknown {
            msg_type: 70,
            body: vec![0; 10],
        },
        options: vec![],
    };
    let bytes = unknown.to_bytes().unwrap();
    for _ in 0..30 {
        p.b.engine.handle_control(p.now, src, dst, &bytes);
    }
    p.flush();
    // error_per_sec = 10 (burst of one second).
    assert_eq!(p.b.count_sent(ERROR), 10);
    assert_eq!(p.b.engine.stats().error_rate_limited, 20);
    let MessageBody::Error {
        code,
        pointer,
        packet,
    } = body(&p.b.sent_of(ERROR)[0].1)
    else {
        panic!()
    };
    assert_eq!((code, pointer), (ErrorCode::UnknownType, 42));
    assert_eq!(packet[42], 70);
    // An Error message is never answered, not even with an Error.
    let err = p.b.sent_of(ERROR)[0].1.clone();
    p.a.engine
        .handle_control(p.now, err.src, err.dst, &err.payload);
    p.flush();
    assert_eq!(p.a.sent.len(), 0);
    assert_eq!(p.a.engine.stats().rx_error, 1);
}

#[test]
fn i1_flood_keeps_no_state() {
    let mut p = Pair::new(68);
    let before = p.b.engine.state_entries();
    let targets: Vec<(Ulid, Locator)> =
        (0..2).map(|j| (p.b.hosts[j], p.b.locators(j)[0])).collect();
    for i in 0..20_000u32 {
        let (ulid, dst) = targets[(i % 2) as usize];
        let sender = Ulid(
            format!("2001:db8:99::{:x}:{:x}", i >> 16, i & 0xffff)
                .parse()
                .unwrap(),
        );
        let i1 = i1_payload(
            sender,
            ulid,
            ContextTag::new(u64::from(i) + 1).unwrap(),
            Nonce(i),
        );
        p.b.engine
            .handle_control(p.now + ms(u64::from(i / 100)), sender.0, dst.0, &i1);
        while p.b.engine.poll_transmit().is_some() {}
    }
    assert_eq!(p.b.engine.context_count(), 0);
    assert_eq!(p.b.engine.state_entries(), before);
    let s = p.b.engine.stats();
    // 200 ms of flood at r1_per_sec = 1000: one second of burst plus the refill.
    assert_eq!(s.r1_sent + s.r1_rate_limited, 20_000);
    assert!(s.r1_sent <= 1000 + 200, "{}", s.r1_sent);
    assert!(s.r1_sent >= 1000);
}

#[test]
fn bad_checksum_bad_address_and_foreign_ulid_are_dropped() {
    let mut p = Pair::new(69);
    let i1 = capture(&mut p, Dir::AtoB, I1);
    let mut corrupt = i1.payload.clone();
    corrupt[13] ^= 0x40;
    p.b.engine.handle_control(p.now, i1.src, i1.dst, &corrupt);
    p.b.engine
        .handle_control(p.now, "ff02::1".parse().unwrap(), i1.dst, &i1.payload);
    p.b.engine
        .handle_control(p.now, i1.src, "::".parse().unwrap(), &i1.payload);
    // ULID Pair naming a ULID that is not one of B's hosts.
    let foreign = forge_options(&i1, |o| {
        if let ShimOption::UlidPair { receiver, .. } = o {
            *receiver = Ulid("fc00:0:0:b::dead".parse().unwrap());
        }
    });
    p.b.engine
        .handle_control(p.now, foreign.src, foreign.dst, &foreign.payload);
    let s = p.b.engine.stats();
    assert_eq!(
        (s.rx_bad_checksum, s.rx_bad_address, s.rx_not_for_us),
        (1, 2, 1)
    );
    p.flush();
    assert_eq!(p.b.sent.len(), 0);
}

#[test]
fn arbitrary_bytes_and_mutated_messages_never_panic() {
    let p = RefCell::new(Pair::with(
        SideSpec::proxy(SITE_A_PEM, 0xa, 70),
        SideSpec::proxy(SITE_B_PEM, 0xb, 71),
    ));
    let (_, _) = p.borrow_mut().connect(0, 0);
    let samples: Vec<Transmit> = {
        let pb = p.borrow();
        pb.a.sent
            .iter()
            .chain(pb.b.sent.iter())
            .map(|(_, t)| t.clone())
            .collect()
    };
    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });
    let strategy = (
        0..samples.len(),
        proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8),
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(which, flips, random, use_random)| {
            let mut pair = p.borrow_mut();
            let t = &samples[which];
            let mut bytes = if use_random {
                random
            } else {
                t.payload.clone()
            };
            for (pos, val) in flips {
                if !bytes.is_empty() {
                    let i = usize::from(pos) % bytes.len();
                    bytes[i] ^= val;
                }
            }
            // Fix the checksum half of the time so mutations get past it.
            if bytes.len() >= 8 && which % 2 == 0 {
                bytes[4] = 0;
                bytes[5] = 0;
                let len = ((usize::from(bytes[1]) + 1) * 8).min(bytes.len());
                let c = wire::checksum::checksum(&bytes[..len]);
                bytes[4..6].copy_from_slice(&c.to_be_bytes());
            }
            let now = pair.now;
            pair.a.engine.handle_control(now, t.dst, t.src, &bytes);
            pair.b.engine.handle_control(now, t.src, t.dst, &bytes);
            pair.b
                .engine
                .handle_icmp_parameter_problem(now, 1, 6, &bytes);
            pair.step();
            Ok(())
        })
        .unwrap();
    let pb = p.borrow();
    assert!(pb.a.engine.context_count() <= 2 && pb.b.engine.context_count() <= 2);
}
