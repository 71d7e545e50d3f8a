//! Establishment transitions of spec shim6.md §11 (I1 / R1 / I2 / R2, simultaneous open,
//! retransmission, hold-downs).

use std::time::Duration;

use wire::{ContextTag, Locator, MessageBody, Nonce, ShimOption, VerificationMethod};

use super::util::*;
use crate::{ConnectOutcome, ContextEvent, ContextState, FailReason, Transmit};

#[test]
fn four_way_handshake_establishes_both_sides() {
    let mut p = Pair::new(1);
    let (ta, tb) = p.connect(0, 0);
    let a = p.a.engine.context(ta).unwrap();
    let b = p.b.engine.context(tb).unwrap();
    assert_eq!(a.peer_tag, Some(tb));
    assert_eq!(b.peer_tag, Some(ta));
    assert_eq!((a.local_ulid, a.peer_ulid), (p.a.hosts[0], p.b.hosts[0]));
    assert_eq!(
        (
            p.a.count_sent(I1),
            p.b.count_sent(R1),
            p.a.count_sent(I2),
            p.b.count_sent(R2)
        ),
        (1, 1, 1, 1)
    );
    // The I1 always carries the ULID Pair option (CMULAs are not routable) and goes from A's
    // first locator to B's first locator.
    let (_, i1) = &p.a.sent_of(I1)[0];
    assert_eq!(parse(i1).ulid_pair(), Some((p.a.hosts[0], p.b.hosts[0])));
    assert_eq!(
        (Locator(i1.src), Locator(i1.dst)),
        (p.a.locators(0)[0], p.b.locators(0)[0])
    );
    // The I2 carries validator, ULID pair, list, PDS, signature and Keepalive Timeout.
    let i2 = parse(&p.a.sent_of(I2)[0].1);
    assert!(
        i2.responder_validator().is_some()
            && i2.cga_parameters().is_some()
            && i2.cga_signature().is_some()
    );
    assert_eq!(i2.keepalive_timeout(), Some(15));
    let list = i2.locator_list().unwrap();
    assert_eq!(
        list.entries.iter().map(|e| e.0).collect::<Vec<_>>(),
        p.a.locators(0)
    );
    assert!(list.entries.iter().all(|e| e.1 == VerificationMethod::Cga));
    // Ls(peer): B's two locators, verified, the CMULA not among them.
    assert_eq!(peer_locators_of(&a), p.b.locators(0));
    assert!(a.peer_locators.iter().all(|l| l.verified));
    assert_eq!(peer_locators_of(&b), p.a.locators(0));
    // Both data planes got Established on mirrored pairs.
    let ea = p.a.established();
    let eb = p.b.established();
    assert_eq!(ea.len(), 1);
    assert_eq!(eb.len(), 1);
    let (
        ContextEvent::Established {
            pair: pa,
            recovered: ra,
            ..
        },
        ContextEvent::Established {
            pair: pb,
            recovered: rb,
            ..
        },
    ) = (&ea[0], &eb[0])
    else {
        unreachable!()
    };
    assert_eq!((pa.local, pa.peer), (pb.peer, pb.local));
    assert!(!ra && !rb);
    assert_eq!(a.reap_state, Some(wire::ReapState::Operational));
}

#[test]
fn responder_keeps_no_state_until_i2() {
    let mut p = Pair::new(2);
    let before = p.b.engine.state_entries();
    p.drop_type(Dir::AtoB, I2);
    p.start_connect(0, 0);
    p.drive_bounded(50, |p| p.a.count_sent(I2) == 1);
    assert_eq!(p.b.count_sent(R1), 1);
    assert_eq!(p.b.engine.context_count(), 0);
    assert_eq!(p.b.engine.state_entries(), before);
    assert_eq!(p.a.only_context().state, ContextState::I2Sent);
}

#[test]
fn r1_must_match_nonce_and_locators() {
    let mut p = Pair::new(3);
    p.drop_type(Dir::BtoA, R1);
    p.start_connect(0, 0);
    p.drive_bounded(50, |p| p.b.count_sent(R1) == 1);
    let r1 = p.first_dropped(Dir::BtoA, R1);
    p.filter = None;
    // Wrong nonce: dropped and counted.
    let bad = forge(&r1, |r| {
        if let MessageBody::R1 {
            initiator_nonce, ..
        } = &mut r.body
        {
            initiator_nonce.0 ^= 1;
        }
    });
    p.inject(Dir::BtoA, bad);
    // Right nonce from a locator that is not in Ls(peer): dropped too.
    let mut stray = r1.clone();
    stray.src = "2001:db8:ffff::1".parse().unwrap();
    p.inject(Dir::BtoA, stray);
    p.drive_for(ms(20));
    assert_eq!(p.a.engine.stats().wrong_nonce, 2);
    assert_eq!(p.a.only_context().state, ContextState::I1Sent);
    // The genuine one moves A to I2-SENT.
    p.inject(Dir::BtoA, r1);
    p.drive_for(ms(15));
    assert_eq!(p.a.only_context().state, ContextState::I2Sent);
}

#[test]
fn crossing_i1s_are_answered_with_r2() {
    let mut p = Pair::new(4);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let la = p.a.locators(0);
    let ta = p.start_connect(0, 0);
    let ConnectOutcome::Started(tb) = p.b.engine.connect(p.now, b, a, &la).unwrap() else {
        panic!()
    };
    p.drive_bounded(50, |p| p.a.is_established(ta) && p.b.is_established(tb));
    assert_eq!((p.a.count_sent(R1), p.b.count_sent(R1)), (0, 0));
    assert_eq!((p.a.count_sent(R2), p.b.count_sent(R2)), (1, 1));
    assert_eq!(p.a.engine.context(ta).unwrap().peer_tag, Some(tb));
    assert_eq!(p.b.engine.context(tb).unwrap().peer_tag, Some(ta));
    assert_eq!(
        (p.a.engine.context_count(), p.b.engine.context_count()),
        (1, 1)
    );
}

#[test]
fn i1_crossing_i2_establishes_once() {
    // RFC 5533 Figure 5: B answered A's I1 with R1 (no state), then B's ULP starts an I1
    // while A's I2 is in flight.
    let mut p = Pair::new(5);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let la = p.a.locators(0);
    let ta = p.start_connect(0, 0);
    p.drive_bounded(50, |p| p.a.count_sent(I2) == 1);
    let ConnectOutcome::Started(tb) = p.b.engine.connect(p.now, b, a, &la).unwrap() else {
        panic!()
    };
    p.drive_bounded(50, |p| p.a.is_established(ta) && p.b.is_established(tb));
    p.drive_for(ms(100));
    // A answered B's I1 with R2 while in I2-SENT; B (already ESTABLISHED by the I2) ignored it.
    assert_eq!(p.a.count_sent(R2), 1);
    assert_eq!(p.b.engine.stats().discarded_in_state, 1);
    assert_eq!(p.a.engine.context(ta).unwrap().peer_tag, Some(tb));
    assert_eq!(p.b.engine.context(tb).unwrap().peer_tag, Some(ta));
    assert_eq!((p.a.established().len(), p.b.established().len()), (1, 1));
}

#[test]
fn i1_retransmission_timeline_then_e_failed() {
    let mut p = Pair::new(6);
    p.pass_only(Dir::BtoA);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let lb = p.b.locators(0);
    let start = p.now;
    p.start_connect(0, 0);
    p.drive_bounded(100, |p| {
        p.a.has_event(|e| matches!(e, ContextEvent::Failed { .. }))
    });
    let i1s = p.a.sent_of(I1);
    assert_eq!(i1s.len(), 5, "I1 + I1_RETRIES_MAX retransmissions");
    // Same nonce every time; destinations rotate over B's locators.
    let nonces: Vec<Nonce> = i1s
        .iter()
        .map(|(_, t)| match body(t) {
            MessageBody::I1 {
                initiator_nonce, ..
            } => initiator_nonce,
            _ => unreachable!(),
        })
        .collect();
    assert!(nonces.iter().all(|n| *n == nonces[0]));
    assert_eq!(Locator(i1s[0].1.dst), lb[0]);
    assert_eq!(Locator(i1s[1].1.dst), lb[1]);
    // Gaps: 4 s · 2^k randomised to [0.5, 1.5].
    let mut times: Vec<_> = i1s.iter().map(|(t, _)| *t).collect();
    let failed_at =
        p.a.events
            .iter()
            .find(|(_, e)| matches!(e, ContextEvent::Failed { .. }))
            .unwrap()
            .0;
    times.push(failed_at);
    assert_eq!(times[0], start);
    for k in 0..5 {
        let gap = times[k + 1] - times[k];
        let nominal = Duration::from_secs(4 << k);
        assert!(
            gap >= nominal / 2 && gap <= nominal * 3 / 2,
            "gap {k}: {gap:?}"
        );
    }
    assert!(p.a.has_event(|e| *e
        == ContextEvent::Failed {
            local_ulid: a,
            peer_ulid: b,
            reason: FailReason::EFailed
        }));
    assert_eq!(p.a.engine.context_count(), 0);
    assert_eq!(p.a.engine.stats().e_failed, 1);
    // E-FAILED hold-down: connect is refused until NO_R1_HOLDDOWN_TIME has passed.
    let out = p.a.engine.connect(p.now, a, b, &lb).unwrap();
    let ConnectOutcome::HeldDown {
        until,
        reason: FailReason::EFailed,
    } = out
    else {
        panic!("{out:?}")
    };
    // E-FAILED processes packets as IDLE: an I1 from the peer gets a stateless R1.
    p.filter = None;
    let i1 = i1_payload(b, a, ContextTag::new(0x31).unwrap(), Nonce(0x31));
    p.inject(
        Dir::BtoA,
        Transmit {
            src: lb[0].0,
            dst: p.a.locators(0)[0].0,
            payload: i1,
        },
    );
    p.drive_for(ms(20));
    assert_eq!(p.a.count_sent(R1), 1);
    assert_eq!(p.a.engine.context_count(), 0);
    assert_eq!(until, failed_at + secs(60));
    p.drive_until(until);
    assert!(p.a.engine.holddown(a, b).is_none());
    assert!(matches!(
        p.a.engine.connect(p.now, a, b, &lb).unwrap(),
        ConnectOutcome::Started(_)
    ));
}

#[test]
fn i2_retransmits_then_falls_back_to_i1() {
    let mut p = Pair::new(7);
    p.drop_type(Dir::BtoA, R2);
    let ta = p.start_connect(0, 0);
    p.drive_bounded(100, |p| p.a.count_sent(I1) == 2);
    // I2, then I2_RETRIES_MAX retransmissions, then back to I1.
    let order: Vec<u8> = p.a.sent.iter().map(|(_, t)| msg_type(t)).collect();
    assert_eq!(order, vec![I1, I2, I2, I2, I1]);
    let i2s = p.a.sent_of(I2);
    let g1 = i2s[1].0 - i2s[0].0;
    let g2 = i2s[2].0 - i2s[1].0;
    assert!(g1 >= secs(2) && g1 <= secs(6), "{g1:?}");
    assert!(g2 >= secs(4) && g2 <= secs(12), "{g2:?}");
    assert_eq!(p.a.engine.context(ta).unwrap().state, ContextState::I1Sent);
    // B established on the first I2 and answered every retransmission from that context.
    assert_eq!(p.b.engine.context_count(), 1);
    assert_eq!(p.b.count_sent(R2), 3);
    p.filter = None;
    p.drive_bounded(100, |p| p.a.is_established(ta));
    // The I1 (same Initiator CT as B's CT(peer)) got an R2 from the existing context.
    assert_eq!(p.b.count_sent(R2), 4);
    assert_eq!(p.b.count_sent(R1), 1);
    assert_eq!(p.b.engine.context_count(), 1);
}

#[test]
fn i2_sent_answers_i1_with_r2_and_discards_r1() {
    let mut p = Pair::new(8);
    p.drop_type(Dir::AtoB, I2);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    p.start_connect(0, 0);
    p.drive_bounded(50, |p| p.a.count_sent(I2) == 1);
    let r1 = p.b.sent_of(R1)[0].1.clone();
    p.inject(Dir::BtoA, r1);
    p.drive_for(ms(20));
    assert_eq!(p.a.engine.stats().discarded_in_state, 1);
    // An I1 from the peer for the same ULID pair: R2 with our tag, state unchanged.
    let lb0 = p.b.locators(0)[0];
    let la0 = p.a.locators(0)[0];
    let i1 = i1_payload(b, a, ContextTag::new(0x77).unwrap(), Nonce(0x1234));
    p.inject(
        Dir::BtoA,
        Transmit {
            src: lb0.0,
            dst: la0.0,
            payload: i1,
        },
    );
    p.drive_for(ms(20));
    assert_eq!(p.a.count_sent(R2), 1);
    let MessageBody::R2 {
        responder_tag,
        initiator_nonce,
    } = body(&p.a.sent_of(R2)[0].1)
    else {
        panic!()
    };
    assert_eq!(initiator_nonce, Nonce(0x1234));
    let ctx = p.a.only_context();
    assert_eq!(
        (responder_tag, ctx.state),
        (ctx.local_tag, ContextState::I2Sent)
    );
}

#[test]
fn established_answers_retransmitted_i1_with_r2_and_new_tag_with_r1() {
    let mut p = Pair::new(9);
    let (ta, tb) = p.connect(0, 0);
    let i1 = p.a.sent_of(I1)[0].1.clone();
    let r2_before = p.b.count_sent(R2);
    // Same Initiator CT as CT(peer): our R2 was lost, answer R2 from the context.
    p.inject(Dir::AtoB, i1.clone());
    p.drive_for(ms(50));
    assert_eq!(p.b.count_sent(R2), r2_before + 1);
    let MessageBody::R2 { responder_tag, .. } = body(&p.b.sent_of(R2).last().unwrap().1) else {
        panic!()
    };
    assert_eq!(responder_tag, tb);
    // A (ESTABLISHED) ignores that R2.
    assert_eq!(p.a.engine.stats().discarded_in_state, 1);
    // A different Initiator CT: the peer restarted; R1, and the old context stays.
    let r1_before = p.b.count_sent(R1);
    let fresh = forge(&i1, |r| {
        if let MessageBody::I1 { initiator_tag, .. } = &mut r.body {
            *initiator_tag = ContextTag::new(initiator_tag.get() ^ 0x55).unwrap();
        }
    });
    p.inject(Dir::AtoB, fresh);
    p.drive_for(ms(50));
    assert_eq!(p.b.count_sent(R1), r1_before + 1);
    assert_eq!(p.b.engine.context(tb).unwrap().peer_tag, Some(ta));
    assert_eq!(p.b.engine.context_count(), 1);
    // Same tag but from a locator outside Ls(peer) (ULID Pair option present): R1.
    let mut moved = i1;
    moved.src = "2001:db8:a9::1".parse().unwrap();
    p.inject(Dir::AtoB, moved);
    p.drive_for(ms(50));
    assert_eq!(p.b.count_sent(R1), r1_before + 2);
    assert_eq!(p.b.engine.context(tb).unwrap().peer_tag, Some(ta));
}

#[test]
fn established_replaces_peer_tag_on_valid_i2_after_peer_restart() {
    // RFC 5533 Figure 7: A loses its context and sets it up again.
    let mut p = Pair::new(10);
    let (_, tb) = p.connect(0, 0);
    let now = p.now;
    p.a.restart(now, 99);
    let (ta2, tb2) = p.connect(0, 0);
    assert_eq!(tb2, tb, "B kept its context and its tag");
    assert_eq!(p.b.engine.context(tb).unwrap().peer_tag, Some(ta2));
    assert!(p.b.has_event(|e| *e
        == ContextEvent::PeerTagChanged {
            local_tag: tb,
            peer_tag: ta2
        }));
    assert_eq!(p.b.engine.context_count(), 1);
    assert_eq!(p.a.engine.context(ta2).unwrap().peer_tag, Some(tb));
}

#[test]
fn established_discards_r1_and_late_r2() {
    let mut p = Pair::new(11);
    let (ta, _) = p.connect(0, 0);
    let before = p.a.engine.context(ta).unwrap();
    for t in [p.b.sent_of(R1)[0].1.clone(), p.b.sent_of(R2)[0].1.clone()] {
        p.inject(Dir::BtoA, t);
    }
    p.drive_for(ms(50));
    assert_eq!(p.a.engine.stats().discarded_in_state, 2);
    assert_eq!(p.a.engine.context(ta).unwrap(), before);
}

#[test]
fn icmp_parameter_problem_on_i1_means_no_support() {
    let mut p = Pair::new(12);
    p.pass_only(Dir::BtoA);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let lb = p.b.locators(0);
    p.start_connect(0, 0);
    p.flush();
    let i1 = p.a.sent_of(I1)[0].1.clone();
    let mut quoted = vec![0x60, 0, 0, 0];
    quoted.extend_from_slice(&u16::try_from(i1.payload.len()).unwrap().to_be_bytes());
    quoted.extend_from_slice(&[140, 64]);
    quoted.extend_from_slice(&i1.src.octets());
    quoted.extend_from_slice(&i1.dst.octets());
    quoted.extend_from_slice(&i1.payload);
    // Another code, or a pointer elsewhere, is not about Shim6.
    p.a.engine
        .handle_icmp_parameter_problem(p.now, 2, 6, &quoted);
    p.a.engine
        .handle_icmp_parameter_problem(p.now, 1, 7, &quoted);
    assert_eq!(p.a.engine.context_count(), 1);
    p.a.engine
        .handle_icmp_parameter_problem(p.now, 1, 6, &quoted);
    p.flush();
    assert_eq!(p.a.engine.context_count(), 0);
    assert!(p.a.has_event(|e| *e
        == ContextEvent::Failed {
            local_ulid: a,
            peer_ulid: b,
            reason: FailReason::NoSupport
        }));
    let out = p.a.engine.connect(p.now, a, b, &lb).unwrap();
    assert_eq!(
        out,
        ConnectOutcome::HeldDown {
            until: p.now + secs(600),
            reason: FailReason::NoSupport
        }
    );
}

#[test]
fn connect_reports_existing_context_and_errors() {
    let mut p = Pair::new(13);
    let (ta, _) = p.connect(0, 0);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let lb = p.b.locators(0);
    assert_eq!(
        p.a.engine.connect(p.now, a, b, &lb).unwrap(),
        ConnectOutcome::Existing(ta)
    );
    assert_eq!(p.a.engine.find(a, b), Some(ta));
    assert!(matches!(
        p.a.engine.connect(p.now, b, a, &lb),
        Err(crate::Shim6Error::UnknownLocalUlid(_))
    ));
    let other = p.b.hosts[1];
    assert!(matches!(
        p.a.engine.connect(p.now, a, other, &[]),
        Err(crate::Shim6Error::NoPeerLocators)
    ));
}

#[test]
fn forked_instance_keys_a_separate_context() {
    // RFC 5533 §4.2: contexts are keyed by (ULID pair, FII). A peer asks for FII 7.
    let mut p = Pair::new(14);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    p.start_connect(0, 0);
    let add_fii = |t: &Transmit| {
        forge(t, |r| {
            if matches!(r.body, MessageBody::I1 { .. } | MessageBody::I2 { .. }) {
                r.options.push(ShimOption::ForkedInstance(7));
            }
        })
    };
    for _ in 0..4 {
        while let Some(t) = p.a.engine.poll_transmit() {
            let t = add_fii(&t);
            p.b.engine.handle_control(p.now, t.src, t.dst, &t.payload);
        }
        while let Some(t) = p.b.engine.poll_transmit() {
            p.a.engine.handle_control(p.now, t.src, t.dst, &t.payload);
        }
    }
    let ctx = p.b.only_context();
    assert_eq!((ctx.fii, ctx.state), (7, ContextState::Established));
    assert_eq!(p.b.engine.find(b, a), None, "FII 0 is another context");
}

#[test]
fn signatures_and_verifications_are_cached_across_handshakes() {
    for cache in [true, false] {
        let mut sa = SideSpec::proxy(super::keys::SITE_A_PEM, 0xa, 15);
        let mut sb = SideSpec::proxy(super::keys::SITE_B_PEM, 0xb, 16);
        for s in [&mut sa, &mut sb] {
            s.config.cache_signatures = cache;
            s.config.cache_peer_verification = cache;
        }
        let mut p = Pair::with(sa, sb);
        for _ in 0..3 {
            let (ta, tb) = p.connect(0, 0);
            p.a.engine.remove(p.now, ta);
            p.b.engine.remove(p.now, tb);
        }
        let (sa, sb) = (p.a.engine.stats().clone(), p.b.engine.stats().clone());
        if cache {
            // One signature per host and locator set, one verification per peer list.
            assert_eq!((sa.signatures_made, sb.signatures_made), (1, 1));
            assert_eq!(sb.verify_cache_misses, 2, "PDS + list of the first I2");
            assert_eq!(sb.verify_cache_hits, 4);
        } else {
            assert_eq!((sa.signatures_made, sb.signatures_made), (3, 3));
            assert_eq!(sb.verify_cache_hits, 0);
            assert_eq!(sb.verify_cache_misses, 6);
        }
    }
}

#[test]
fn payload_for_a_context_in_i2_sent_re_sends_the_i2() {
    // RFC 5533 §12.2: the peer is ESTABLISHED (our R2 was lost) and sends payload with our
    // tag; our data plane does not know the context yet and punts it.
    let mut p = Pair::new(17);
    p.drop_type(Dir::BtoA, R2);
    let ta = p.start_connect(0, 0);
    p.drive_bounded(50, |p| p.b.engine.context_count() == 1);
    let pair = p.b.only_context().pair;
    let i2s = p.a.count_sent(I2);
    for _ in 0..5 {
        p.a.engine
            .handle_unknown_tag(p.now, pair.local.0, pair.peer.0, ta);
    }
    p.flush();
    // One re-send per second at most, and no R1bis for a tag we own.
    assert_eq!(p.a.count_sent(I2), i2s + 1);
    assert_eq!(p.a.count_sent(R1BIS), 0);
    p.filter = None;
    p.drive_bounded(50, |p| p.a.is_established(ta));
}

/// RFC 5533 §7.15 (spec shim6.md §11, row "I2-SENT | valid I2 / I2bis"): a valid I2 from the
/// peer while our own I2 is outstanding updates CT(peer), is answered with R2, and leaves the
/// context in I2-SENT (our own exchange still completes it).
#[test]
fn valid_i2_in_i2_sent_updates_peer_tag_and_answers_r2() {
    let mut p = Pair::new(41);
    let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
    let la = p.a.locators(0);
    // 1. B starts towards A (A answers statelessly with R1); B's I2 is captured, not delivered.
    p.drop_type(Dir::BtoA, I2);
    p.b.engine.connect(p.now, b, a, &la).unwrap();
    p.drive_bounded(50, |p| p.b.count_sent(I2) == 1);
    let captured = p.first_dropped(Dir::BtoA, I2);
    let MessageBody::I2 { initiator_tag, .. } = body(&captured) else {
        panic!("captured message is not an I2")
    };
    assert_eq!(
        p.a.engine.context_count(),
        0,
        "A kept no state for B's exchange"
    );
    // 2. B's proxy restarts (its half-open context is gone); A starts towards B and its own I2
    //    is held back, so A sits in I2-SENT.
    let now = p.now;
    p.b.restart(now, 99);
    p.drop_type(Dir::AtoB, I2);
    p.start_connect(0, 0);
    p.drive_bounded(50, |p| p.a.count_sent(I2) == 1);
    assert_eq!(p.a.only_context().state, ContextState::I2Sent);
    // 3. B's earlier I2 reaches A now: its validator is A's own (still within its lifetime).
    let r2_before = p.a.count_sent(R2);
    p.inject(Dir::BtoA, captured);
    // One-way latency is 10 ms; A's own I2 stays held back by the filter.
    p.drive_for(ms(15));
    let ctx = p.a.only_context();
    assert_eq!(ctx.state, ContextState::I2Sent, "stays in I2-SENT");
    assert_eq!(
        ctx.peer_tag,
        Some(initiator_tag),
        "CT(peer) taken from the I2"
    );
    assert_eq!(
        p.a.count_sent(R2),
        r2_before + 1,
        "the I2 is answered with R2"
    );
}
