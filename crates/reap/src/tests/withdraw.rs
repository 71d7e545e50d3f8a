//! Routing signal (BGP withdraw, paper §6): pairs marked unreachable on a virtual clock.

use std::time::{Duration, Instant};

use wire::ReapState;

use super::util::*;
use crate::{failover_bound, ExplorationReason, ReapConfig, ReapError, ReapEvent, ReapMachine};

/// Both sides send payload every 100 ms; runs 5 s so everything is settled.
fn established(seed: u64) -> Pair {
    let mut s = Pair::new(ReapConfig::default(), seed);
    s.app(Side::A, Some(Duration::from_millis(100)));
    s.app(Side::B, Some(Duration::from_millis(100)));
    s.run_for(secs(5.0));
    s
}

fn explored(n: &Node) -> Vec<ExplorationReason> {
    n.events
        .iter()
        .filter_map(|(_, e)| match e {
            ReapEvent::ExplorationStarted { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A's provider of a1 withdraws the route to B's locators and stops forwarding (A → B on a1
/// is cut, B → A still works so B's REAP sees nothing). The signal moves A to a2 within one
/// probe round trip, long before the Send Timeout, and neither side explores.
#[test]
fn withdraw_moves_within_a_round_trip() {
    for seed in 0..4 {
        let mut s = established(seed);
        let t = s.now;
        s.cut(a1(), b1());
        s.cut(a1(), b2());
        s.a.m.set_path_unreachable(t, pair(a1(), b1()), true);
        s.a.m.set_path_unreachable(t, pair(a1(), b2()), true);
        s.run_for(secs(5.0));
        let (at, new) =
            s.a.pair_changes()
                .into_iter()
                .find(|(at, _)| *at >= t)
                .expect("A never moved");
        assert!(at - t <= s.latency * 2, "seed {seed}: {:?}", at - t);
        assert!(at - t < failover_bound(&ReapConfig::default()));
        assert_eq!(new.local, a2());
        assert_eq!(s.a.m.current_pair(), new);
        assert!(explored(&s.a).is_empty() && explored(&s.b).is_empty());
        assert_eq!(s.a.m.stats().unreachable_moves, 1);
        assert_eq!(s.a.m.state(), ReapState::Operational);
        assert!(s.b.payload_rx.last().unwrap().0 > s.now - secs(0.5));
        assert_eq!(s.b.payload_rx.last().unwrap().1.local, a2());
    }
}

/// Only one pair: the mark changes nothing (REAP's timers still guard the pair).
#[test]
fn withdraw_without_alternative_keeps_pair() {
    let t0 = Instant::now();
    let mut m = ReapMachine::new(
        ReapConfig::default(),
        t0,
        tag_b(),
        pair(a1(), b1()),
        vec![a1()],
        vec![b1()],
        3,
    );
    m.set_path_unreachable(t0, pair(a1(), b1()), true);
    assert!(m.is_path_unreachable(pair(a1(), b1())));
    assert!(m.poll_transmit().is_none());
    assert_eq!(m.state(), ReapState::Operational);
    assert_eq!(m.current_pair(), pair(a1(), b1()));
}

/// The pair picked first, (a2, b2), is broken too: its probes go unanswered, then an
/// exploration (reason `PathUnreachable`) finds a working pair, unmarked ones first, still
/// well within REAP's own failover bound.
#[test]
fn failed_move_falls_back_to_exploration() {
    let mut s = established(5);
    let t = s.now;
    s.cut(a1(), b1());
    s.cut(a2(), b2());
    s.a.m.set_path_unreachable(t, pair(a1(), b1()), true);
    s.run_for(secs(10.0));
    assert!(s.a.events.iter().any(|(_, e)| *e
        == ReapEvent::PreferredPairFailed {
            pair: pair(a2(), b2())
        }));
    assert_eq!(explored(&s.a), [ExplorationReason::PathUnreachable]);
    let cur = s.a.m.current_pair();
    assert!(
        cur == pair(a1(), b2()) || cur == pair(a2(), b1()),
        "{cur:?}"
    );
    let (at, _) =
        s.a.pair_changes()
            .into_iter()
            .find(|(at, _)| *at >= t)
            .unwrap();
    assert!(
        at - t < failover_bound(&ReapConfig::default()),
        "{:?}",
        at - t
    );
    assert_eq!(s.a.m.state(), ReapState::Operational);
}

/// Traffic engineering cannot prefer a marked pair; an exploration probes it last; once the
/// route is back it can be preferred again.
#[test]
fn marked_pairs_are_skipped_while_another_exists() {
    let mut s = established(6);
    let t = s.now;
    s.a.m.set_path_unreachable(t, pair(a2(), b2()), true);
    assert!(s.a.m.poll_transmit().is_none(), "current pair unaffected");
    assert_eq!(
        s.a.m.prefer_pair(t, pair(a2(), b2())),
        Err(ReapError::PathUnreachable(pair(a2(), b2())))
    );
    s.cut_locator(a1());
    s.a.m.local_locator_down(t, a1());
    s.run_for(secs(5.0));
    let first =
        s.a.probes()
            .into_iter()
            .find(|(at, _, _)| *at >= t)
            .unwrap();
    assert_eq!(first.1, pair(a2(), b1()));
    assert_eq!(s.a.m.current_pair(), pair(a2(), b1()));
    let now = s.now;
    s.a.m.set_path_unreachable(now, pair(a2(), b2()), false);
    assert_eq!(s.a.m.prefer_pair(now, pair(a2(), b2())), Ok(()));
    s.run_for(secs(2.0));
    assert_eq!(s.a.m.current_pair(), pair(a2(), b2()));
    assert_eq!(s.a.m.stats().unreachable_moves, 0);
}
