//! Locator management: Update Request / Ack, provider changes, preferences, Error codes 2–4
//! (spec shim6.md §12.4, RFC 5533 §10).

use wire::{ErrorCode, Locator, MessageBody, ShimOption};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ContextEvent, ProviderId};

fn peer_locators(p: &Pair, dir: Dir) -> Vec<(Locator, bool, u8)> {
    let side = if dir == Dir::AtoB { &p.a } else { &p.b };
    side.only_context()
        .peer_locators
        .iter()
        .map(|l| (l.locator, l.verified, l.flags))
        .collect()
}

/// The flags (RFC 5533 §5.15.3) of the peer locators [`peer_locators`] lists.
fn peer_flags(p: &Pair, dir: Dir) -> Vec<u8> {
    peer_locators(p, dir).iter().map(|s| s.2).collect()
}

fn error_of(t: &wire::ControlRepr) -> (ErrorCode, u16, Vec<u8>) {
    match &t.body {
        MessageBody::Error {
            code,
            pointer,
            packet,
        } => (*code, *pointer, packet.clone()),
        other => panic!("not an Error: {other:?}"),
    }
}

#[test]
fn new_provider_is_announced_with_a_new_generation() {
    let mut p = Pair::new(40);
    p.connect(0, 0);
    let gen_before = parse(&p.a.sent_of(I2)[0].1)
        .locator_list()
        .unwrap()
        .generation;
    let prefix = provider_a3().prefix;
    p.a.engine.add_provider(p.now, provider_a3());
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 1);
    let ur = parse(&p.a.sent_of(UPDATE_REQUEST)[0].1);
    let list = ur.locator_list().unwrap();
    assert_eq!(list.generation, gen_before.wrapping_add(1));
    assert_eq!(list.entries.len(), 3);
    assert!(ur.cga_signature().is_some());
    assert!(ur.cga_parameters().is_none(), "PDS already sent in the I2");
    let new_loc = crate::locator_for(prefix, p.a.hosts[0]);
    let seen = peer_locators(&p, Dir::BtoA);
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(_, verified, _)| *verified));
    assert!(seen.iter().any(|(l, ..)| *l == new_loc));
    assert_eq!(p.b.only_context().peer_generation, Some(list.generation));
    assert!(!p.a.only_context().update_pending);
    assert_eq!(p.a.engine.local_locators(p.a.hosts[0]).len(), 3);
}

#[test]
fn removed_provider_leaves_the_peer_list() {
    let mut p = Pair::new(41);
    p.connect(0, 0);
    p.a.engine.remove_provider(p.now, ProviderId(2));
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 1);
    let seen = peer_locators(&p, Dir::BtoA);
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![p.a.locators(0)[0]]
    );
}

#[test]
fn provider_down_moves_the_pair_and_marks_the_locator_broken() {
    let mut p = Pair::new(42);
    let (ta, _) = p.connect(0, 0);
    let start = p.now;
    let old = p.a.engine.context(ta).unwrap().pair;
    assert_eq!(old.local, p.a.locators(0)[0]);
    // The local link signal: the provider's locator is cut at once.
    p.cut(old.local, old.peer);
    p.a.engine.set_provider_state(p.now, ProviderId(1), false);
    p.drive_bounded(100, |p| {
        p.a.has_event(|e| matches!(e, ContextEvent::PairChanged { .. }))
    });
    let new = p.a.engine.context(ta).unwrap().pair;
    assert_eq!(new.local, p.a.locators(0)[1]);
    assert!(
        p.now - start < ms(200),
        "local-down switch took {:?}",
        p.now - start
    );
    // Preferences-only Update Request: same generation, BROKEN on provider 1.
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 1);
    let ur = parse(&p.a.sent_of(UPDATE_REQUEST)[0].1);
    assert!(ur.locator_list().is_none());
    let prefs = ur.locator_preferences().unwrap();
    assert_eq!(
        prefs.elements.iter().map(|e| e.flags).collect::<Vec<_>>(),
        vec![1, 0]
    );
    assert_eq!(peer_flags(&p, Dir::BtoA), vec![1, 0]);
    assert!(!p.b.only_context().peer_locators[0].usable());
    assert_eq!(
        p.a.engine.local_locators(p.a.hosts[0]),
        vec![p.a.locators(0)[1]]
    );
    // Back up: the flags clear.
    p.a.engine.set_provider_state(p.now, ProviderId(1), true);
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 2);
    assert_eq!(peer_flags(&p, Dir::BtoA), vec![0, 0]);
}

#[test]
fn update_request_is_retransmitted_forever_with_capped_backoff() {
    // Idle GC would end it after 10 min: "forever" = until the context goes (RFC 5533 §10.2).
    let mut a = SideSpec::proxy(SITE_A_PEM, 0xa, 43);
    a.config.idle_timeout = secs(7200);
    let mut b = SideSpec::proxy(SITE_B_PEM, 0xb, 44);
    b.config.idle_timeout = secs(7200);
    let mut p = Pair::with(a, b);
    p.connect(0, 0);
    p.drop_type(Dir::BtoA, UPDATE_ACK);
    p.a.engine.add_provider(p.now, provider_a3());
    p.drive_for(secs(20 * 60));
    let urs = p.a.sent_of(UPDATE_REQUEST);
    assert!(
        urs.len() >= 12,
        "only {} Update Requests in 20 min",
        urs.len()
    );
    let nonces: Vec<_> = urs
        .iter()
        .map(|(_, t)| match body(t) {
            MessageBody::UpdateRequest { request_nonce, .. } => request_nonce,
            _ => unreachable!(),
        })
        .collect();
    assert!(
        nonces.iter().all(|n| *n == nonces[0]),
        "retransmissions keep the nonce"
    );
    for (k, w) in urs.windows(2).enumerate() {
        let gap = w[1].0 - w[0].0;
        let nominal = secs(4 << k.min(5)).min(secs(120));
        assert!(
            gap >= nominal / 2 && gap <= nominal * 3 / 2,
            "gap {k}: {gap:?} nominal {nominal:?}"
        );
    }
    assert!(p.a.only_context().update_pending);
}

#[test]
fn newer_information_abandons_the_pending_update() {
    let mut p = Pair::new(44);
    p.connect(0, 0);
    p.drop_type(Dir::BtoA, UPDATE_ACK);
    p.a.engine.add_provider(p.now, provider_a3());
    p.drive_for(ms(50));
    p.a.engine.remove_provider(p.now, ProviderId(2));
    p.drive_for(ms(50));
    let urs = p.a.sent_of(UPDATE_REQUEST);
    assert_eq!(urs.len(), 2);
    let (u1, u2) = (parse(&urs[0].1), parse(&urs[1].1));
    let nonce = |u: &wire::ControlRepr| match u.body {
        MessageBody::UpdateRequest { request_nonce, .. } => request_nonce,
        _ => unreachable!(),
    };
    assert_ne!(nonce(&u1), nonce(&u2));
    assert_eq!(
        u2.locator_list().unwrap().generation,
        u1.locator_list().unwrap().generation.wrapping_add(1)
    );
    assert_eq!(u2.locator_list().unwrap().entries.len(), 2);
    // The Ack of the abandoned request is ignored; the current one completes.
    let acks: Vec<_> = p
        .dropped
        .iter()
        .filter(|(_, _, t)| msg_type(t) == UPDATE_ACK)
        .map(|(_, _, t)| t.clone())
        .collect();
    assert_eq!(acks.len(), 2);
    p.filter = None;
    p.inject(Dir::BtoA, acks[0].clone());
    p.drive_for(ms(20));
    assert!(p.a.only_context().update_pending);
    p.inject(Dir::BtoA, acks[1].clone());
    p.drive_for(ms(20));
    assert!(!p.a.only_context().update_pending);
}

#[test]
fn forged_update_with_bad_signature_is_rejected_and_counted() {
    let mut p = Pair::new(45);
    p.connect(0, 0);
    let ur = p.held_update_request(|p| p.a.engine.add_provider(p.now, provider_a3()));
    let before = peer_locators(&p, Dir::BtoA);
    // An attacker swaps in its own locator, keeping the signature.
    let forged = forge_locator_list(&ur, |l| {
        l.entries[2].0 = Locator("2001:db8:bad::1".parse().unwrap());
    });
    p.inject(Dir::AtoB, forged);
    p.drive_for(ms(20));
    assert_eq!(p.b.engine.stats().bad_signature, 1);
    assert_eq!(peer_locators(&p, Dir::BtoA), before);
    assert_eq!(p.b.count_sent(UPDATE_ACK), 0);
    // Error code 2, Pointer → the first CGA Verification Method octet: 40 (quoted IPv6
    // header) + 16 (UR header) + 4 (option header) + 4 (generation) + 1 (Num Locators).
    let err = parse(&p.b.sent_of(ERROR)[0].1);
    let (code, pointer, packet) = error_of(&err);
    assert_eq!((code, pointer), (ErrorCode::LocatorVerificationFailed, 65));
    assert_eq!(packet[6], 140);
    assert_eq!(
        packet[40 + 25],
        2,
        "the octet pointed at is a Verification Method (CGA)"
    );
    // A flipped signature bit fails the same way.
    let flipped = forge_options(&ur, |o| {
        if let ShimOption::CgaSignature(s) = o {
            s[7] ^= 0x10;
        }
    });
    p.inject(Dir::AtoB, flipped);
    p.drive_for(ms(20));
    assert_eq!(p.b.engine.stats().bad_signature, 2);
    assert_eq!(peer_locators(&p, Dir::BtoA), before);
    // The genuine request is accepted.
    p.inject(Dir::AtoB, ur);
    p.drive_for(ms(20));
    assert_eq!(peer_locators(&p, Dir::BtoA).len(), 3);
}

#[test]
fn preferences_for_another_generation_or_count_get_errors_3_and_4() {
    let mut p = Pair::new(46);
    p.connect(0, 0);
    let ur = p.held_update_request(|p| {
        p.a.engine.set_provider_state(p.now, ProviderId(2), false);
    });
    assert!(parse(&ur).locator_list().is_none());
    let wrong_gen = forge_options(&ur, |o| {
        if let ShimOption::LocatorPreferences(pr) = o {
            pr.generation = pr.generation.wrapping_add(9);
        }
    });
    let wrong_count = forge_options(&ur, |o| {
        if let ShimOption::LocatorPreferences(pr) = o {
            pr.elements.pop();
        }
    });
    p.inject(Dir::AtoB, wrong_gen);
    p.inject(Dir::AtoB, wrong_count);
    p.drive_for(ms(20));
    let errors: Vec<_> =
        p.b.sent_of(ERROR)
            .iter()
            .map(|(_, t)| error_of(&parse(t)))
            .collect();
    // UR header 16 bytes, preferences option first: Generation at 16 + 4, Length at 16 + 2.
    assert_eq!(errors[0].0, ErrorCode::GenerationOutOfSync);
    assert_eq!(errors[0].1, 40 + 20);
    assert_eq!(errors[1].0, ErrorCode::PreferenceCountMismatch);
    assert_eq!(errors[1].1, 40 + 18);
    assert_eq!(p.b.engine.stats().bad_preferences, 2);
    assert_eq!(p.b.count_sent(UPDATE_ACK), 0);
    assert!(peer_locators(&p, Dir::BtoA).iter().all(|l| l.2 == 0));
    p.inject(Dir::AtoB, ur);
    p.drive_for(ms(20));
    assert_eq!(peer_flags(&p, Dir::BtoA), vec![0, 1]);
}

#[test]
fn update_from_unknown_tag_or_foreign_locator_gets_r1bis() {
    let mut p = Pair::new(47);
    let (_, tb) = p.connect(0, 0);
    let ur = p.held_update_request(|p| p.a.engine.add_provider(p.now, provider_a3()));
    let mut stray = ur.clone();
    stray.src = "2001:db8:ffff::7".parse().unwrap();
    p.inject(Dir::AtoB, stray);
    let unknown = forge(&ur, |r| {
        if let MessageBody::UpdateRequest { receiver_tag, .. } = &mut r.body {
            *receiver_tag = wire::ContextTag::new(tb.get() ^ 0x100).unwrap();
        }
    });
    p.inject(Dir::AtoB, unknown);
    p.drive_for(ms(20));
    assert_eq!(p.b.count_sent(R1BIS), 2);
    assert_eq!(p.b.count_sent(UPDATE_ACK), 0);
}

#[test]
fn update_in_i1_sent_is_discarded() {
    let mut p = Pair::new(48);
    p.drop_everything();
    let ta = p.start_connect(0, 0);
    let lb = p.b.locators(0);
    let ur = wire::ControlRepr {
        body: MessageBody::UpdateRequest {
            receiver_tag: ta,
            request_nonce: wire::Nonce(1),
        },
        options: Vec::new(),
    };
    let t = crate::Transmit {
        src: lb[0].0,
        dst: p.a.locators(0)[0].0,
        payload: ur.to_bytes().unwrap(),
    };
    p.a.engine.handle_control(p.now, t.src, t.dst, &t.payload);
    assert_eq!(p.a.engine.stats().discarded_in_state, 1);
    p.flush();
    assert_eq!(p.a.count_sent(UPDATE_ACK), 0);
}
