//! Protocol security (issue #10 item 3): forged and replayed Update Requests, unverified
//! locators never used as destinations, tag guessing, off-path R1bis / I2bis
//! ([RFC 5533 §7.17–§7.19], [§10.4], [§16]).
//!
//! [RFC 5533 §7.17–§7.19]: https://www.rfc-editor.org/rfc/rfc5533#section-7.17
//! [§10.4]: https://www.rfc-editor.org/rfc/rfc5533#section-10.4
//! [§16]: https://www.rfc-editor.org/rfc/rfc5533#section-16

use std::collections::HashSet;
use std::net::Ipv6Addr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wire::{
    ContextTag, ControlRepr, Locator, MessageBody, Nonce, ShimOption, Ulid, VerificationMethod,
};

use super::util::*;
use crate::{ConnectOutcome, ContextEvent, ProviderId, RandomTags, TagAllocator, Transmit};

fn peer_list(p: &Pair) -> Vec<Locator> {
    peer_locators_of(&p.b.only_context())
}

/// A's host 0 gets provider 3, then loses it: two genuine Update Requests (generations g+1,
/// g+2), both delivered and acknowledged. Returns them.
fn two_updates(p: &mut Pair) -> (Transmit, Transmit) {
    p.a.engine.add_provider(p.now, provider_a3());
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 1);
    p.a.engine.remove_provider(p.now, ProviderId(3));
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 2);
    let urs = p.a.sent_of(UPDATE_REQUEST);
    let first = urs[0].1.clone();
    let last = urs.last().unwrap().1.clone();
    assert_ne!(
        parse(&first).locator_list().unwrap().generation,
        parse(&last).locator_list().unwrap().generation
    );
    (first, last)
}

#[test]
fn replayed_update_request_with_a_superseded_generation_is_rejected_and_counted() {
    let mut p = Pair::new(200);
    p.connect(0, 0);
    let (old, _new) = two_updates(&mut p);
    let current = peer_list(&p);
    assert_eq!(current.len(), 2, "provider 3 came and went");
    let acks = p.b.count_sent(UPDATE_ACK);
    // An on-path attacker replays the first (validly signed) request: applying it would bring
    // the withdrawn locator back.
    p.inject(Dir::AtoB, old.clone());
    p.drive_for(ms(50));
    assert_eq!(p.b.engine.stats().replayed_generation, 1);
    assert_eq!(peer_list(&p), current);
    assert_eq!(p.b.count_sent(UPDATE_ACK), acks, "no acknowledgement");
    // Same with a fresh Request Nonce (the nonce is not signed).
    let renonced = forge(&old, |r| {
        if let MessageBody::UpdateRequest { request_nonce, .. } = &mut r.body {
            *request_nonce = Nonce(request_nonce.0 ^ 0x5555);
        }
    });
    p.inject(Dir::AtoB, renonced);
    p.drive_for(ms(50));
    assert_eq!(p.b.engine.stats().replayed_generation, 2);
    assert_eq!(peer_list(&p), current);
    // Rejected before the signature check: nothing counted as a bad signature.
    assert_eq!(p.b.engine.stats().bad_signature, 0);
}

#[test]
fn update_with_locators_not_covered_by_the_cga_signature_or_hba_set_is_rejected() {
    let mut p = Pair::new(201);
    p.connect(0, 0);
    let ur = p.held_update_request(|p| p.a.engine.add_provider(p.now, provider_a3()));
    let before = peer_list(&p);
    let evil: Locator = Locator("2001:db8:bad::1".parse().unwrap());
    // 1. An extra locator claimed as HBA: the site uses CGA (no Multi-Prefix extension), so no
    //    HBA set covers it. The CGA signature still verifies (it covers only CGA locators).
    let hba = forge_locator_list(&ur, |l| {
        l.entries.push((evil, VerificationMethod::Hba));
    });
    p.inject(Dir::AtoB, hba);
    p.drive_for(ms(20));
    assert_eq!(p.b.engine.stats().forged_locator_list, 1);
    // 2. An unknown verification method.
    let unknown = forge_locator_list(&ur, |l| {
        l.entries.push((evil, VerificationMethod::Unknown(7)));
    });
    p.inject(Dir::AtoB, unknown);
    p.drive_for(ms(20));
    assert_eq!(p.b.engine.stats().forged_locator_list, 2);
    // 3. An extra CGA locator: not covered by the signature.
    let cga = forge_locator_list(&ur, |l| {
        l.entries.push((evil, VerificationMethod::Cga));
    });
    p.inject(Dir::AtoB, cga);
    p.drive_for(ms(20));
    assert_eq!(p.b.engine.stats().bad_signature, 1);
    // 4. No signature at all.
    let unsigned = forge(&ur, |r| {
        r.options
            .retain(|o| !matches!(o, ShimOption::CgaSignature(_)));
    });
    p.inject(Dir::AtoB, unsigned);
    p.drive_for(ms(20));
    let s = p.b.engine.stats();
    assert_eq!(s.forged_locator_list + s.bad_signature, 4, "{s:?}");
    assert_eq!(peer_list(&p), before);
    assert!(!peer_list(&p).contains(&evil));
    assert_eq!(p.b.count_sent(UPDATE_ACK), 0);
}

#[test]
fn an_unverified_locator_is_never_used_as_a_destination() {
    let mut p = Pair::new(202);
    let (ta, tb) = p.connect(0, 0);
    let evil: Locator = Locator("2001:db8:bad::1".parse().unwrap());
    // Forged Update Requests naming the attacker's locator (every verification failure).
    let ur = ControlRepr {
        body: MessageBody::UpdateRequest {
            receiver_tag: tb,
            request_nonce: Nonce(7),
        },
        options: vec![ShimOption::LocatorList(
            wire::LocatorList::new(
                12345,
                vec![
                    (p.a.locators(0)[0], VerificationMethod::Cga),
                    (evil, VerificationMethod::Cga),
                ],
            )
            .unwrap(),
        )],
    };
    for method in [VerificationMethod::Cga, VerificationMethod::Hba] {
        let mut r = ur.clone();
        if let ShimOption::LocatorList(l) = &mut r.options[0] {
            l.entries[1].1 = method;
        }
        r.options.push(ShimOption::CgaSignature(vec![0x42; 128]));
        let t = Transmit {
            src: p.a.locators(0)[0].0,
            dst: p.b.locators(0)[0].0,
            payload: r.to_bytes().unwrap(),
        };
        p.inject(Dir::AtoB, t);
    }
    p.drive_for(ms(50));
    let s = p.b.engine.stats().clone();
    assert_eq!(s.bad_signature + s.forged_locator_list, 2, "{s:?}");
    // Then every real pair fails, so B's REAP explores all it knows for two minutes.
    for la in p.a.locators(0) {
        for lb in p.b.locators(0) {
            p.cut(la, lb);
        }
    }
    for _ in 0..240 {
        p.drive_for(ms(500));
        let now = p.now;
        p.b.engine.payload_activity(now, tb, None, Some(now));
        p.a.engine.payload_activity(now, ta, None, Some(now));
    }
    let probes = p.b.count_sent(67);
    assert!(probes > 4, "B explored ({probes} probes)");
    let verified: HashSet<Ipv6Addr> = p.a.locators(0).iter().map(|l| l.0).collect();
    for (_, t) in &p.b.sent {
        assert!(verified.contains(&t.dst), "B sent to {} ({t:?})", t.dst);
    }
    for (_, e) in &p.b.events {
        if let ContextEvent::PairChanged { pair, .. } = e {
            assert!(verified.contains(&pair.peer.0), "{e:?}");
        }
    }
    assert!(!p
        .b
        .only_context()
        .peer_locators
        .iter()
        .any(|l| l.locator == evil));
}

/// Per-bit frequency of ones over `tags`, for the 47 tag bits.
fn bit_frequencies(tags: &[ContextTag]) -> Vec<f64> {
    (0..47)
        .map(|b| {
            let ones = tags.iter().filter(|t| t.get() >> b & 1 == 1).count();
            ones as f64 / tags.len() as f64
        })
        .collect()
}

#[test]
fn engine_tags_have_47_balanced_random_bits() {
    // 4096 contexts through the engine itself (I1-SENT is enough: no RSA involved).
    let mut p = Pair::new(203);
    let local = p.a.hosts[0];
    let mut tags = Vec::new();
    for i in 0..4096u32 {
        let peer = Ulid(Ipv6Addr::from_bits(
            (0xfc00_0099 << 96) | (u128::from(i) + 1),
        ));
        let loc = Locator(Ipv6Addr::from_bits(
            (0x2001_0db8_0099 << 80) | (u128::from(i) + 1),
        ));
        match p.a.engine.connect(p.now, local, peer, &[loc]).unwrap() {
            ConnectOutcome::Started(t) => tags.push(t),
            other => panic!("{other:?}"),
        }
    }
    while p.a.engine.poll_transmit().is_some() {}
    let distinct: HashSet<_> = tags.iter().collect();
    assert_eq!(distinct.len(), tags.len());
    // Each bit is one with probability 1/2: σ = 0.5/√4096 ≈ 0.0078; allow 5σ.
    for (b, f) in bit_frequencies(&tags).iter().enumerate() {
        assert!((f - 0.5).abs() < 0.04, "bit {b}: {f}");
    }
    // The same with many more draws straight from the allocator (σ ≈ 0.002).
    let mut rng = StdRng::seed_from_u64(99);
    let mut alloc = RandomTags::new();
    let many: Vec<_> = (0..1 << 16)
        .map(|_| alloc.allocate(&mut rng).unwrap())
        .collect();
    let distinct: HashSet<_> = many.iter().collect();
    assert_eq!(distinct.len(), many.len());
    for (b, f) in bit_frequencies(&many).iter().enumerate() {
        assert!((f - 0.5).abs() < 0.01, "bit {b}: {f}");
    }
}

/// Blind guesses of a live tag: `guesses` random tags of `bits` bits against `live` tags.
fn blind_hits(live: &HashSet<ContextTag>, bits: u32, guesses: u64, rng: &mut StdRng) -> u64 {
    let mask = (1u64 << bits) - 1;
    (0..guesses)
        .filter(|_| {
            let g = rng.gen::<u64>() & mask;
            ContextTag::new(g).is_some_and(|t| live.contains(&t))
        })
        .count() as u64
}

#[test]
fn blind_tag_guess_rate_is_what_the_tag_width_implies() {
    let mut rng = StdRng::seed_from_u64(204);
    // Calibration with the 7-bit test allocator (RFC 5533 App. C.4): 64 live tags of 127, so
    // a guess over 7 bits hits with probability 64/128.
    let mut narrow = RandomTags::narrow();
    let live: HashSet<_> = (0..64)
        .map(|_| narrow.allocate(&mut rng).unwrap())
        .collect();
    let n = 100_000;
    let rate = blind_hits(&live, 7, n, &mut rng) as f64 / n as f64;
    assert!((rate - 0.5).abs() < 0.01, "narrow rate {rate}");
    // The real allocator: 4096 live tags of 2^47. Expected hits over 10^6 guesses:
    // 10^6 · 4096 / 2^47 ≈ 2.9e-5, so any hit at all means fewer random bits than claimed
    // (with 30 random bits it would be ≈ 3.8 hits; P(0 | 30 bits) ≈ 2 %).
    let mut wide = RandomTags::new();
    let live: HashSet<_> = (0..4096)
        .map(|_| wide.allocate(&mut rng).unwrap())
        .collect();
    let hits = blind_hits(&live, 47, 1_000_000, &mut rng);
    assert_eq!(hits, 0);
    // An attacker guessing a tag of the live set by its low 30 bits only (as if the high 17
    // were fixed, e.g. a shard prefix) would hit that often: the test above can fail.
    let low30: HashSet<_> = live
        .iter()
        .map(|t| ContextTag::new(t.get() & ((1 << 30) - 1)).unwrap())
        .collect();
    let hits30 = blind_hits(&low30, 30, 1_000_000, &mut rng);
    assert!(hits30 <= 20, "{hits30}");
}

#[test]
fn off_path_r1bis_with_guessed_tags_changes_nothing() {
    let mut p = Pair::new(205);
    let (ta, _tb) = p.connect(0, 0);
    let before = p.a.engine.context(ta).unwrap();
    let (src, dst) = (p.b.locators(0)[0], p.a.locators(0)[0]);
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..1000 {
        let r1bis = ControlRepr {
            body: MessageBody::R1bis {
                packet_tag: ContextTag::from_wire(rng.gen()),
                responder_nonce: Nonce(rng.gen()),
            },
            options: vec![ShimOption::ResponderValidator(vec![0x11; 20])],
        };
        p.a.engine
            .handle_control(p.now, src.0, dst.0, &r1bis.to_bytes().unwrap());
    }
    p.flush();
    assert_eq!(
        p.a.count_sent(I2BIS),
        0,
        "no I2bis for a tag that is not CT(peer)"
    );
    let after = p.a.engine.context(ta).unwrap();
    assert_eq!(after.state, before.state);
    assert_eq!(after.peer_tag, before.peer_tag);
    assert_eq!(after.pair, before.pair);
    // No context has that CT(peer) on that pair (RFC 5533 §7.19): counted with the R1/R2
    // whose nonce matches nothing.
    assert_eq!(p.a.engine.stats().wrong_nonce, 1000);
}

#[test]
fn off_path_i2bis_without_a_valid_validator_creates_nothing() {
    let mut p = Pair::new(206);
    let (ta, tb) = p.connect(0, 0);
    // B loses its context; A's recovery is captured instead of delivered.
    let i2bis = p.held_back(Dir::AtoB, I2BIS, ms(50), |p| p.b_loses_context(ta, tb));
    p.drop_everything();
    // An off-path attacker never saw the R1bis: it makes up the nonce and validator.
    let made_up = forge(&i2bis, |r| {
        if let MessageBody::I2bis {
            responder_nonce, ..
        } = &mut r.body
        {
            *responder_nonce = Nonce(responder_nonce.0.wrapping_add(1));
        }
        for o in &mut r.options {
            if let ShimOption::ResponderValidator(v) = o {
                v.iter_mut().for_each(|b| *b = 0x5a);
            }
        }
    });
    p.b.engine
        .handle_control(p.now, i2bis.src, i2bis.dst, &made_up.payload);
    assert_eq!(p.b.engine.context_count(), 0);
    // The genuine I2bis, replayed after the validator secret rotated twice (> 2 lifetimes):
    // the Responder Nonce is stale (RFC 5533 §7.19, VALIDATOR_MIN_LIFETIME).
    let later = p.now + secs(91);
    p.b.engine.handle_timeout(later);
    p.b.engine
        .handle_control(later, i2bis.src, i2bis.dst, &i2bis.payload);
    assert_eq!(p.b.engine.context_count(), 0);
    let s = p.b.engine.stats();
    assert_eq!(s.bad_validator + s.stale_validator, 2, "{s:?}");
    assert!(s.stale_validator >= 1, "{s:?}");
}
