//! REAP integration: keepalives and probes wrapped into Transmits, failover, local link
//! signals, traffic engineering (issue #3 item 4 is the reap crate; this is the glue).

use wire::LocatorPair;

use super::util::*;
use crate::{ContextEvent, Shim6Error};

#[test]
fn failover_when_the_current_pair_is_cut() {
    let mut p = Pair::new(100);
    let (ta, tb) = p.connect(0, 0);
    let old = p.a.engine.context(ta).unwrap().pair;
    let cut = p.now;
    p.cut(old.local, old.peer);
    // A keeps sending payload; nothing comes back.
    let bound = reap::failover_bound(&p.a.engine.config().reap);
    p.a_sends_until_pair_changes(ta);
    let (at, new) = p
        .a
        .events
        .iter()
        .find_map(|(t, e)| match e {
            ContextEvent::PairChanged { local_tag, pair } if *local_tag == ta => Some((*t, *pair)),
            _ => None,
        })
        .expect("A moved to another pair");
    assert_ne!(new, old);
    assert!(
        at - cut <= bound,
        "failover took {:?} > {bound:?}",
        at - cut
    );
    assert_eq!(p.a.engine.context(ta).unwrap().pair, new);
    // Probes went out as Shim6 control messages with B's tag.
    let probes = p.a.sent_of(67);
    assert!(!probes.is_empty());
    assert!(probes
        .iter()
        .all(|(_, t)| matches!(body(t), wire::MessageBody::Probe(pr) if pr.receiver_tag == tb)));
}

#[test]
fn keepalives_carry_the_peer_tag_and_stop_b_from_exploring() {
    let mut p = Pair::new(101);
    let (ta, tb) = p.connect(0, 0);
    // B sends, A only receives: A must send keepalives (Forced Bidirectional Detection).
    for _ in 0..10 {
        let now = p.now;
        p.b.engine.payload_activity(now, tb, None, Some(now));
        p.a.engine.payload_activity(now, ta, Some(now), None);
        p.drive_for(secs(2));
    }
    let keepalives = p.a.sent_of(66);
    assert!(!keepalives.is_empty());
    assert!(keepalives.iter().all(|(_, t)| matches!(body(t), wire::MessageBody::Keepalive { receiver_tag } if receiver_tag == tb)));
    assert_eq!(
        p.b.engine.context(tb).unwrap().reap_state,
        Some(wire::ReapState::Operational)
    );
    assert_eq!(p.b.count_sent(67), 0, "B never had to probe");
}

#[test]
fn prefer_pair_moves_a_live_context() {
    let mut p = Pair::new(102);
    let (ta, _) = p.connect(0, 0);
    let want = LocatorPair {
        local: p.a.locators(0)[1],
        peer: p.b.locators(0)[1],
    };
    p.a.engine.prefer_pair(p.now, ta, want).unwrap();
    p.drive_bounded(100, |p| p.a.engine.context(ta).unwrap().pair == want);
    assert!(p.a.has_event(|e| *e
        == ContextEvent::PairChanged {
            local_tag: ta,
            pair: want
        }));
    // Unknown context, unverified peer locator, foreign local locator.
    let unknown = wire::ContextTag::new(ta.get() ^ 1).unwrap();
    assert!(matches!(
        p.a.engine.prefer_pair(p.now, unknown, want),
        Err(Shim6Error::UnknownContext(_))
    ));
    let stray = LocatorPair {
        local: want.local,
        peer: wire::Locator("2001:db8:bad::1".parse().unwrap()),
    };
    assert!(matches!(
        p.a.engine.prefer_pair(p.now, ta, stray),
        Err(Shim6Error::UnusableLocator(_))
    ));
    let foreign = LocatorPair {
        local: p.b.locators(0)[0],
        peer: want.peer,
    };
    assert!(matches!(
        p.a.engine.prefer_pair(p.now, ta, foreign),
        Err(Shim6Error::UnusableLocator(_))
    ));
}

/// A drained provider (`set_avoided_providers`): when the current pair breaks, REAP tries
/// every pair on the other providers first, so the context does not go back onto the
/// drained one while another pair works (the default order would probe the pair sharing no
/// locator with the broken one, i.e. the drained provider's, first).
#[test]
fn failover_avoids_a_drained_provider_while_another_pair_works() {
    let mut p = Pair::new(102);
    let (ta, _) = p.connect(0, 0);
    let old = p.a.engine.context(ta).unwrap().pair;
    let a_locs = p.a.locators(0);
    assert_eq!(old.local, a_locs[0], "the context starts on provider 1");
    p.a.engine.set_avoided_providers(&[crate::ProviderId(2)]);
    p.cut(old.local, old.peer);
    p.a_sends_until_pair_changes(ta);
    let new = p.a.engine.context(ta).unwrap().pair;
    assert_ne!(new, old, "A never moved");
    assert_eq!(
        new.local, a_locs[0],
        "moved onto the drained provider: {new:?}"
    );
}
