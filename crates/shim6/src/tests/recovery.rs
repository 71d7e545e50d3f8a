//! Recovery (R1bis / I2bis) and context confusion (spec shim6.md §11, §12.3).

use wire::{ContextTag, Locator, MessageBody};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ContextEvent, ContextState, RemoveReason};

#[test]
fn unknown_payload_tag_triggers_r1bis_and_i2bis_rebuilds_with_fresh_tag() {
    let mut p = Pair::new(20);
    let (ta, tb) = p.connect(0, 0);
    assert!(p.b.engine.remove(p.now, tb));
    p.flush();
    assert!(p.b.has_event(|e| *e
        == ContextEvent::Removed {
            local_tag: tb,
            reason: RemoveReason::Explicit
        }));
    // A's data plane keeps sending payload with tag tb; B's data plane punts it.
    let pair = p.a.engine.context(ta).unwrap().pair;
    p.b.engine
        .handle_unknown_tag(p.now, pair.local.0, pair.peer.0, tb);
    p.drive_bounded(50, |p| {
        p.b.engine.context_count() == 1 && p.a.engine.stats().recoveries_completed == 1
    });
    assert_eq!((p.b.count_sent(R1BIS), p.a.count_sent(I2BIS)), (1, 1));
    // R1bis names the offending tag and came back on the payload's pair, reversed.
    let (_, r1bis) = &p.b.sent_of(R1BIS)[0];
    assert!(matches!(body(r1bis), MessageBody::R1bis { packet_tag, .. } if packet_tag == tb));
    assert_eq!(
        (Locator(r1bis.src), Locator(r1bis.dst)),
        (pair.peer, pair.local)
    );
    // I2bis went on the R1bis pair and echoed the packet tag.
    let (_, i2bis) = &p.a.sent_of(I2BIS)[0];
    assert_eq!(
        (Locator(i2bis.src), Locator(i2bis.dst)),
        (pair.local, pair.peer)
    );
    let b = p.b.only_context();
    assert_ne!(
        b.local_tag, tb,
        "fresh tag, not the Packet Context Tag (RFC 5533 §7.20)"
    );
    assert_eq!(b.peer_tag, Some(ta));
    assert_eq!(b.state, ContextState::Established);
    assert!(p.b.has_event(|e| matches!(e, ContextEvent::Established { recovered: true, local_tag, .. } if *local_tag == b.local_tag)));
    assert!(p.a.has_event(|e| *e
        == ContextEvent::PeerTagChanged {
            local_tag: ta,
            peer_tag: b.local_tag
        }));
    assert_eq!(p.a.engine.context(ta).unwrap().peer_tag, Some(b.local_tag));
    assert!(p.a.is_established(ta));
    assert_eq!(p.b.engine.stats().recovered, 1);
}

#[test]
fn restarted_engine_recovers_live_context_from_a_keepalive() {
    let mut p = Pair::new(21);
    let (ta, _) = p.connect(0, 0);
    let now = p.now;
    p.b.restart(now, 77);
    // A receives payload but sends none: REAP sends Keepalives (type 66, unknown at B → R1bis).
    p.a.engine.payload_activity(now, ta, Some(now), None);
    p.drive_bounded(200, |p| p.a.engine.stats().recoveries_completed == 1);
    assert!(p.b.count_sent(R1BIS) >= 1);
    let b = p.b.only_context();
    assert_eq!(b.peer_tag, Some(ta));
    assert_eq!((b.local_ulid, b.peer_ulid), (p.b.hosts[0], p.a.hosts[0]));
    assert!(p.a.is_established(ta));
}

#[test]
fn r1bis_is_rate_limited_and_keeps_no_state() {
    let mut spec_b = SideSpec::proxy(SITE_B_PEM, 0xb, 23);
    spec_b.config.r1bis_per_sec = 5;
    let mut p = Pair::with(SideSpec::proxy(SITE_A_PEM, 0xa, 22), spec_b);
    let before = p.b.engine.state_entries();
    let (src, dst) = (p.a.locators(0)[0], p.b.locators(0)[0]);
    for i in 1..=100u64 {
        p.b.engine
            .handle_unknown_tag(p.now, src.0, dst.0, ContextTag::new(i).unwrap());
    }
    p.flush();
    assert_eq!(p.b.count_sent(R1BIS), 5);
    assert_eq!(p.b.engine.stats().r1bis_rate_limited, 95);
    assert_eq!(p.b.engine.state_entries(), before);
    // Not our locator: no answer at all.
    p.b.engine.handle_unknown_tag(
        p.now + secs(1),
        src.0,
        "2001:db8:ffff::1".parse().unwrap(),
        ContextTag::new(1).unwrap(),
    );
    p.flush();
    assert_eq!(p.b.count_sent(R1BIS), 5);
}

#[test]
fn r1bis_needs_matching_peer_tag_pair_and_established_state() {
    let mut p = Pair::new(24);
    let (ta, tb) = p.connect(0, 0);
    let pair = p.a.engine.context(ta).unwrap().pair;
    let r1bis = p.held_back(Dir::BtoA, R1BIS, ms(50), |p| p.b_loses_context(ta, tb));
    p.filter = None;
    // From B's other locator: not (Lp(peer), Lp(local)) → discarded.
    let mut off_pair = r1bis.clone();
    off_pair.src = p.b.locators(0)[1].0;
    p.inject(Dir::BtoA, off_pair);
    // Another packet tag → no context.
    let wrong = forge(&r1bis, |r| {
        if let MessageBody::R1bis { packet_tag, .. } = &mut r.body {
            *packet_tag = ContextTag::new(packet_tag.get() ^ 1).unwrap();
        }
    });
    p.inject(Dir::BtoA, wrong);
    p.drive_for(ms(50));
    assert_eq!(p.a.count_sent(I2BIS), 0);
    assert!(p.a.is_established(ta));
    // The real one: I2bis. A second copy while I2BIS-SENT is discarded.
    p.drop_type(Dir::AtoB, I2BIS);
    p.inject(Dir::BtoA, r1bis.clone());
    p.drive_for(ms(15));
    assert_eq!(
        p.a.engine.context(ta).unwrap().state,
        ContextState::I2bisSent
    );
    let discarded = p.a.engine.stats().discarded_in_state;
    p.inject(Dir::BtoA, r1bis);
    p.drive_for(ms(15));
    assert_eq!(p.a.engine.stats().discarded_in_state, discarded + 1);
    assert_eq!(p.a.count_sent(I2BIS), 1);
    // I2BIS-SENT: payload still arriving re-sends the I2bis (RFC 5533 §12.2) ...
    let now = p.now + secs(1);
    p.drive_until(now);
    p.a.engine.payload_activity(now, ta, Some(now), None);
    p.flush();
    assert_eq!(p.a.count_sent(I2BIS), 2);
    // ... and an I1 from the peer gets an R2 from the context.
    let (a0, b0) = (p.a.hosts[0], p.b.hosts[0]);
    let i1 = i1_payload(b0, a0, ContextTag::new(0x66).unwrap(), wire::Nonce(6));
    p.inject(
        Dir::BtoA,
        crate::Transmit {
            src: pair.peer.0,
            dst: pair.local.0,
            payload: i1,
        },
    );
    p.drive_for(ms(15));
    assert_eq!(p.a.count_sent(R2), 1);
    assert_eq!(
        p.a.engine.context(ta).unwrap().state,
        ContextState::I2bisSent
    );
}

#[test]
fn i2bis_retries_exhausted_fall_back_to_i1_then_reestablish() {
    let mut p = Pair::new(25);
    let (ta, tb) = p.connect(0, 0);
    p.drop_type(Dir::BtoA, R2);
    p.b_loses_context(ta, tb);
    p.drive_bounded(200, |p| p.a.count_sent(I1) == 2);
    // I2bis + I2bis_RETRIES_MAX retransmissions, then the context is unusable and I1 starts.
    assert_eq!(p.a.count_sent(I2BIS), 3);
    assert!(p.a.has_event(|e| *e
        == ContextEvent::Removed {
            local_tag: ta,
            reason: RemoveReason::RecoveryFailed
        }));
    assert_eq!(p.a.engine.context(ta).unwrap().state, ContextState::I1Sent);
    let times: Vec<_> = p.a.sent_of(I2BIS).iter().map(|(t, _)| *t).collect();
    let gap = times[1] - times[0];
    assert!(gap >= secs(2) && gap <= secs(6), "{gap:?}");
    p.filter = None;
    p.drive_bounded(200, |p| p.a.is_established(ta));
    assert!(p.a.has_event(|e| matches!(e, ContextEvent::Established { recovered: true, local_tag, .. } if *local_tag == ta)));
    assert_eq!(p.b.engine.context_count(), 1);
}

#[test]
fn i2bis_with_a_forged_packet_tag_fails_the_validator() {
    let mut p = Pair::new(26);
    let (ta, tb) = p.connect(0, 0);
    let i2bis = p.held_back(Dir::AtoB, I2BIS, ms(50), |p| p.b_loses_context(ta, tb));
    p.filter = None;
    let forged = forge(&i2bis, |r| {
        if let MessageBody::I2bis { packet_tag, .. } = &mut r.body {
            *packet_tag = ContextTag::new(packet_tag.get() ^ 4).unwrap();
        }
    });
    p.inject(Dir::AtoB, forged);
    p.drive_for(ms(15));
    assert_eq!(p.b.engine.stats().bad_validator, 1);
    assert_eq!(p.b.engine.context_count(), 0);
    p.inject(Dir::AtoB, i2bis);
    p.drive_for(ms(15));
    assert_eq!(p.b.engine.context_count(), 1);
}

#[test]
fn i2bis_never_reuses_the_packet_tag() {
    // B's allocator would hand out 0x42 for the first context and again for the rebuilt one.
    let mut p = Pair::with_scripted_b_tags(27, 28, &[0x42, 0x42]);
    let (ta, tb) = p.connect(0, 0);
    assert_eq!(tb.get(), 0x42);
    p.b_loses_context(ta, tb);
    p.drive_bounded(50, |p| p.a.engine.stats().recoveries_completed == 1);
    assert_ne!(p.b.only_context().local_tag.get(), 0x42);
}

#[test]
fn context_confusion_removes_the_stale_context() {
    // RFC 5533 §7.6: B lost <A0, B0> (its tag X) and re-uses X for <A1, B0>. A still holds X
    // as CT(peer) of <A0, B0>: when the new context arrives, the old one must go.
    let mut p = Pair::with_scripted_b_tags(29, 30, &[0x99, 0x99]);
    let (ta0, tb) = p.connect(0, 0);
    assert_eq!(tb.get(), 0x99);
    p.b.engine.remove(p.now, tb);
    // B's host 0 now contacts A's host 1.
    let new = p.connect_from_b(0, 1);
    assert!(p.a.has_event(|e| *e
        == ContextEvent::Removed {
            local_tag: ta0,
            reason: RemoveReason::Confusion
        }));
    assert!(p.a.engine.context(ta0).is_none());
    assert_eq!(p.a.engine.stats().confusion_removed, 1);
    assert_eq!(
        p.a.engine.context(new).unwrap().peer_tag.map(|t| t.get()),
        Some(0x99)
    );
}

#[test]
fn tag_reused_for_another_proxy_host_is_repaired_by_r1bis() {
    // A proxy peer re-uses tag 5 for another of its hosts: no locator overlap, so not a
    // confusion by RFC 5533 §7.15 — both contexts stay at A. Payload of the stale context
    // reaches B on the old host's locators; B's tag 5 belongs to another pair → R1bis →
    // the stale context is rebuilt with a fresh tag.
    let mut p = Pair::with_scripted_b_tags(31, 32, &[5, 5]);
    let (t_old, tb) = p.connect(0, 0);
    assert_eq!(tb.get(), 5);
    p.b.engine.remove(p.now, tb);
    let a0 = p.a.hosts[0];
    p.connect_from_b(1, 0);
    assert_eq!(p.a.engine.stats().confusion_removed, 0);
    assert_eq!(
        p.a.engine.context(t_old).unwrap().peer_tag.map(|t| t.get()),
        Some(5)
    );
    let old_pair = p.a.engine.context(t_old).unwrap().pair;
    p.b.engine
        .handle_unknown_tag(p.now, old_pair.local.0, old_pair.peer.0, tb);
    p.drive_bounded(100, |p| p.a.engine.stats().recoveries_completed == 1);
    let rebuilt = p.b.engine.find(p.b.hosts[0], a0).unwrap();
    assert_ne!(rebuilt.get(), 5);
    assert_eq!(p.a.engine.context(t_old).unwrap().peer_tag, Some(rebuilt));
    assert_eq!(p.b.engine.context_count(), 2);
}
