//! Routing signal (BGP withdraw): `set_peer_reachability` on simulated time.

use std::time::Duration;

use wire::{Locator, LocatorPair};

use super::util::*;
use crate::{ContextEvent, ProviderId, Shim6Error};

/// Blocks every packet from A's locator `local` to B's host-0 locators.
fn cut_from(p: &mut Pair, local: Locator) {
    for peer in p.b.locators(0) {
        p.blocked.insert((local.0, peer.0));
    }
}

/// First pair change of context `tag` at or after `t`, with its time.
fn moved(
    p: &Pair,
    tag: wire::ContextTag,
    t: std::time::Instant,
) -> Option<(Duration, LocatorPair)> {
    p.a.events.iter().find_map(|(at, e)| match e {
        ContextEvent::PairChanged { local_tag, pair } if *local_tag == tag && *at >= t => {
            Some((*at - t, *pair))
        }
        _ => None,
    })
}

/// A's provider 1 withdraws B's prefix and drops A → B there. With the signal the context
/// moves to provider 2 within a probe round trip; without it, after the same time, REAP has
/// not noticed (its Send Timeout is seconds away).
#[test]
fn withdraw_moves_the_context_at_once_not_after_reap() {
    for signal in [true, false] {
        let mut p = Pair::new(300);
        let (ta, _) = p.connect(0, 0);
        let a1 = p.a.locators(0)[0];
        assert_eq!(p.a.engine.context(ta).unwrap().pair.local, a1);
        let cut = p.now;
        cut_from(&mut p, a1);
        if signal {
            for l in p.b.locators(0) {
                assert!(p
                    .a
                    .engine
                    .set_peer_reachability(cut, ProviderId(1), l, false));
                assert!(!p
                    .a
                    .engine
                    .set_peer_reachability(cut, ProviderId(1), l, false));
            }
        }
        // A keeps sending payload every 100 ms for one second.
        for _ in 0..10 {
            let now = p.now;
            p.a.engine.payload_activity(now, ta, None, Some(now));
            p.drive_for(ms(100));
        }
        let bound = reap::failover_bound(&p.a.engine.config().reap);
        match moved(&p, ta, cut) {
            Some((took, pair)) => {
                assert!(signal, "moved without the signal after {took:?}");
                assert!(took <= p.latency * 2, "took {took:?}");
                assert!(took < bound);
                assert_eq!(pair.local, p.a.locators(0)[1]);
                assert_eq!(p.a.engine.context(ta).unwrap().pair, pair);
                assert_eq!(p.a.engine.stats().bgp_moves, 1);
            }
            None => {
                assert!(!signal, "the signal did not move the context");
                assert_eq!(p.a.engine.stats().bgp_moves, 0);
            }
        }
    }
}

/// A new handshake starts on an unmarked pair (the I1 walk tries marked ones last), and the
/// context established there stays there.
#[test]
fn new_handshake_skips_marked_pairs() {
    let mut p = Pair::new(301);
    let a1 = p.a.locators(0)[0];
    let a2 = p.a.locators(0)[1];
    cut_from(&mut p, a1);
    for l in p.b.locators(0) {
        p.a.engine
            .set_peer_reachability(p.now, ProviderId(1), l, false);
    }
    let tag = p.start_connect(0, 0);
    p.drive_bounded(200, |p| p.a.is_established(tag));
    assert_eq!(p.a.sent_of(I1)[0].1.src, a2.0, "first I1 on a marked pair");
    assert_eq!(p.a.engine.context(tag).unwrap().pair.local, a2);
    assert_eq!(p.a.engine.stats().i1_retransmitted, 0);
}

/// Traffic engineering cannot prefer a marked pair; once the route is back it can.
#[test]
fn marks_block_te_until_reachable_again() {
    let mut p = Pair::new(302);
    let (ta, _) = p.connect(0, 0);
    let want = LocatorPair {
        local: p.a.locators(0)[1],
        peer: p.b.locators(0)[1],
    };
    let now = p.now;
    p.a.engine
        .set_peer_reachability(now, ProviderId(2), want.peer, false);
    assert!(p.a.engine.peer_unreachable(ProviderId(2), want.peer));
    assert!(matches!(
        p.a.engine.prefer_pair(now, ta, want),
        Err(Shim6Error::Reap(reap::ReapError::PathUnreachable(_)))
    ));
    assert!(p
        .a
        .engine
        .set_peer_reachability(now, ProviderId(2), want.peer, true));
    assert_eq!(p.a.engine.unreachable_marks(), 0);
    p.a.engine.prefer_pair(now, ta, want).unwrap();
    p.drive_bounded(100, |p| p.a.engine.context(ta).unwrap().pair == want);
    assert_eq!(p.a.engine.stats().bgp_moves, 0);
}
