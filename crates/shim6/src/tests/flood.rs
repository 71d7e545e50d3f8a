//! Floods against the engine with figures (issue #10 item 2; RELIABILITY.md quotes the
//! `figure:` lines: `cargo test -p pshim6-shim6 --release flood -- --nocapture`).
//! Every flood runs next to an established context that must not notice it.

use std::net::Ipv6Addr;
use std::time::Instant as WallClock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wire::{ContextTag, Nonce, Ulid};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ContextEvent, ContextInfo, ContextState, RemoveReason};

fn random_addr(rng: &mut StdRng) -> Ipv6Addr {
    Ipv6Addr::from_bits((0x2001_0db8 << 96) | (u128::from(rng.gen::<u64>()) << 16) | 1)
}

/// Same context, same state, same tags, same pair, same peer locators.
fn unchanged(before: &ContextInfo, after: Option<ContextInfo>) {
    let after = after.expect("context still there");
    assert_eq!(after.state, ContextState::Established);
    assert_eq!(after.peer_tag, before.peer_tag);
    assert_eq!(after.pair, before.pair);
    assert_eq!(after.peer_locators, before.peer_locators);
}

#[test]
fn i1_flood_from_random_sources_keeps_no_state_and_r1_is_rate_limited() {
    let mut b = SideSpec::proxy(SITE_B_PEM, 0xb, 301);
    b.config.r1_per_sec = 500;
    let mut p = Pair::with(SideSpec::proxy(SITE_A_PEM, 0xa, 300), b);
    let (ta, tb) = p.connect(0, 0);
    let ctx_b = p.b.engine.context(tb).unwrap();
    let entries = p.b.engine.state_entries();
    let s0 = p.b.engine.stats().clone();
    let mut rng = StdRng::seed_from_u64(3);
    let (ulid, dst) = (p.b.hosts[1], p.b.locators(1)[0]);
    // 30 000 I1s over 10 virtual seconds from random sources and ULIDs.
    let n = 30_000u64;
    let wall = WallClock::now();
    let mut peak = entries;
    for i in 0..n {
        let sender = Ulid(random_addr(&mut rng));
        let i1 = i1_payload(
            sender,
            ulid,
            ContextTag::from_wire(rng.gen::<u64>() | 1),
            Nonce(rng.gen()),
        );
        let now = p.now + ms(i / 3);
        let src = random_addr(&mut rng);
        p.b.engine.handle_control(now, src, dst.0, &i1);
        while p.b.engine.poll_transmit().is_some() {}
        if i % 1000 == 0 {
            peak = peak.max(p.b.engine.state_entries());
        }
    }
    let elapsed = wall.elapsed();
    let mut s = p.b.engine.stats().clone();
    s.r1_sent -= s0.r1_sent;
    s.r1_rate_limited -= s0.r1_rate_limited;
    assert_eq!(p.b.engine.state_entries(), entries, "no state per I1");
    assert_eq!(peak, entries);
    assert_eq!(p.b.engine.context_count(), 1);
    assert_eq!(s.r1_sent + s.r1_rate_limited, n);
    // 10 s at 500/s plus one second of burst.
    assert!(s.r1_sent <= 500 * 11, "{}", s.r1_sent);
    assert!(s.r1_sent >= 500 * 10, "{}", s.r1_sent);
    println!(
        "figure: I1 flood: {n} I1 in {elapsed:?} ({:.0} I1/s on one core), state entries {entries} \
         before / {peak} peak / {} after, R1 sent {} (limit 500/s over 10 s), rate-limited {}",
        n as f64 / elapsed.as_secs_f64(),
        p.b.engine.state_entries(),
        s.r1_sent,
        s.r1_rate_limited
    );
    // The established context did not notice.
    p.now += secs(10);
    unchanged(&ctx_b, p.b.engine.context(tb));
    assert_eq!(
        p.a.engine.context(ta).unwrap().state,
        ContextState::Established
    );
}

#[test]
fn payload_flood_with_random_tags_gets_rate_limited_r1bis_and_spares_contexts() {
    let mut b = SideSpec::proxy(SITE_B_PEM, 0xb, 303);
    b.config.r1bis_per_sec = 50;
    let mut p = Pair::with(SideSpec::proxy(SITE_A_PEM, 0xa, 302), b);
    let (ta, tb) = p.connect(0, 0);
    let ctx_a = p.a.engine.context(ta).unwrap();
    let ctx_b = p.b.engine.context(tb).unwrap();
    let entries = p.b.engine.state_entries();
    let mut rng = StdRng::seed_from_u64(4);
    let dst = p.b.locators(0)[0];
    let n = 20_000u64;
    let wall = WallClock::now();
    // 5 virtual seconds of payload with random tags from random sources, with A's genuine
    // traffic (the established tag, from A's locator) mixed in.
    for i in 0..n {
        let now = p.now + ms(i / 4);
        let tag = ContextTag::from_wire(rng.gen());
        p.b.engine
            .handle_unknown_tag(now, random_addr(&mut rng), dst.0, tag);
        while p.b.engine.poll_transmit().is_some() {}
        if i % 1000 == 0 {
            p.b.engine.payload_activity(now, tb, Some(now), Some(now));
        }
    }
    let elapsed = wall.elapsed();
    let s = p.b.engine.stats().clone();
    assert_eq!(s.r1bis_sent + s.r1bis_rate_limited, n);
    assert!(s.r1bis_sent <= 50 * 6, "{}", s.r1bis_sent);
    assert_eq!(p.b.engine.state_entries(), entries);
    println!(
        "figure: random-tag payload flood: {n} packets in {elapsed:?} ({:.0}/s), R1bis sent {} \
         (limit 50/s over 5 s), rate-limited {}, state entries {entries} → {}",
        n as f64 / elapsed.as_secs_f64(),
        s.r1bis_sent,
        s.r1bis_rate_limited,
        p.b.engine.state_entries()
    );
    p.now += secs(5);
    unchanged(&ctx_b, p.b.engine.context(tb));
    unchanged(&ctx_a, p.a.engine.context(ta));
    // And the context still works end to end: an Update Request goes through.
    p.a.engine.add_provider(p.now, provider_a3());
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 1);
    assert_eq!(p.b.engine.context(tb).unwrap().peer_locators.len(), 3);
}

#[test]
fn full_context_table_refuses_handshakes_then_idle_gc_makes_room() {
    let mut a = SideSpec::proxy(SITE_A_PEM, 0xa, 304);
    a.hosts = 5;
    let mut b = SideSpec::proxy(SITE_B_PEM, 0xb, 305);
    b.hosts = 5;
    b.config.max_contexts = 4;
    b.config.idle_timeout = secs(120);
    let mut p = Pair::with(a, b);
    let tags: Vec<_> = (0..4).map(|i| p.connect(i, i)).collect();
    assert_eq!(p.b.engine.context_count(), 4);
    // Contexts 0 and 1 carry traffic; 2 and 3 go idle.
    let busy = |p: &mut Pair| {
        let now = p.now;
        for (ta, tb) in &tags[..2] {
            p.a.engine.payload_activity(now, *ta, Some(now), Some(now));
            p.b.engine.payload_activity(now, *tb, Some(now), Some(now));
        }
    };
    let before: Vec<_> = tags[..2]
        .iter()
        .map(|(_, tb)| p.b.engine.context(*tb).unwrap())
        .collect();
    // A fifth handshake: B is full, its I2 is dropped and counted (the stateless R1 still goes).
    let (a4, b4) = (p.a.hosts[4], p.b.hosts[4]);
    let t4 = p.start_connect(4, 4);
    for _ in 0..20 {
        p.drive_for(secs(3));
        busy(&mut p);
    }
    let refused = p.b.engine.stats().i2_dropped_cap;
    assert!(refused >= 1, "I2 dropped and counted");
    // By now (60 s) nothing was evicted; after idle_timeout (120 s) the GC takes 2 and 3.
    for _ in 0..30 {
        p.drive_for(secs(3));
        busy(&mut p);
    }
    for (_, tb) in &tags[2..] {
        assert!(p.b.has_event(|e| *e
            == ContextEvent::Removed {
                local_tag: *tb,
                reason: RemoveReason::Idle
            }));
    }
    assert_eq!(p.b.engine.stats().idle_removed, 2);
    // The busy ones were never touched.
    for (info, (_, tb)) in before.iter().zip(&tags[..2]) {
        unchanged(info, p.b.engine.context(*tb));
    }
    // The fifth handshake completes once there is room (A keeps retrying: I2, then I1).
    p.drive_bounded(2000, |p| p.a.is_established(t4));
    assert!(p.b.engine.find(b4, a4).is_some());
    println!(
        "figure: context table full (max 4): I2 dropped {refused} times while full, idle \
         contexts evicted after {:?}: {}, busy contexts untouched, 5th handshake established \
         after eviction",
        p.b.engine.config().idle_timeout,
        p.b.engine.stats().idle_removed
    );
}
