//! Failover scenarios on the simulated network ([RFC 5534 §4.2], App. A examples 4–5).
//!
//! [RFC 5534 §4.2]: https://www.rfc-editor.org/rfc/rfc5534#section-4.2

use std::time::{Duration, Instant};

use wire::{LocatorPair, ReapState};

use super::util::*;
use crate::{failover_bound, ExplorationReason, ReapConfig, ReapEvent};

/// Both sides send payload every 100 ms; runs 5 s so everything is settled.
fn established(config: ReapConfig, seed: u64) -> Pair {
    let mut s = Pair::new(config, seed);
    s.app(Side::A, Some(Duration::from_millis(100)));
    s.app(Side::B, Some(Duration::from_millis(100)));
    s.run_for(secs(5.0));
    assert!(s.a.tx.is_empty() && s.b.tx.is_empty());
    s
}

/// Both sides Operational and hearing each other's payload in the last second.
fn assert_flowing(s: &Pair) {
    assert_eq!(s.a.m.state(), ReapState::Operational);
    assert_eq!(s.b.m.state(), ReapState::Operational);
    let recent = s.now - secs(1.0);
    assert!(s.a.payload_rx.last().unwrap().0 > recent, "A hears nothing");
    assert!(s.b.payload_rx.last().unwrap().0 > recent, "B hears nothing");
}

/// First `PairChanged` of a node after `t`.
fn change_after(n: &Node, t: Instant) -> Option<(Instant, LocatorPair)> {
    n.pair_changes().into_iter().find(|(at, _)| *at >= t)
}

/// App. A example 5: A's packets stop reaching B on (a1, b1); B → A still works. B's Send
/// Timer fires, B explores, and A moves within the failover bound.
#[test]
fn one_way_cut_fails_over_within_bound() {
    let config = ReapConfig::default();
    for seed in 0..8 {
        let mut s = established(config, seed);
        let cut = s.now;
        s.cut(a1(), b1());
        s.run_for(secs(40.0));
        let (t, new) = change_after(&s.a, cut).expect("A never changed pair");
        let took = t - cut;
        assert!(took <= failover_bound(&config), "seed {seed}: {took:?}");
        assert!(
            took >= secs(13.5),
            "seed {seed}: before a Send Timeout: {took:?}"
        );
        assert_ne!(new, pair(a1(), b1()));
        assert_eq!(s.a.m.current_pair(), new);
        // B is the side that detected it.
        assert!(s.b.events.iter().any(|(_, e)| *e
            == ReapEvent::ExplorationStarted {
                reason: ExplorationReason::SendTimeout
            }));
        assert_eq!(s.a.m.stats().explorations, 0);
        assert_flowing(&s);
    }
}

/// App. A example 4: (a1, b1) broken both ways; both sides move within the bound.
#[test]
fn two_way_cut_fails_over_within_bound() {
    let config = ReapConfig::default();
    for seed in 0..8 {
        let mut s = established(config, seed);
        let cut = s.now;
        s.cut_both(a1(), b1());
        s.run_for(secs(40.0));
        for n in [&s.a, &s.b] {
            let (t, new) = change_after(n, cut).expect("no pair change");
            assert!(
                t - cut <= failover_bound(&config),
                "seed {seed}: {:?}",
                t - cut
            );
            assert_eq!(n.m.current_pair(), new);
        }
        assert_ne!(s.a.m.current_pair(), pair(a1(), b1()));
        assert_ne!(s.b.m.current_pair(), pair(b1(), a1()));
        assert_flowing(&s);
    }
}

/// Asymmetric paths: A → B works only a2 → b2, B → A only b1 → a1. Each side ends on the
/// pair that works for its own outbound direction (spec/reap.md §9). B's first probes are
/// lost, so A needs one more InboundOk probe round than the bound assumes.
#[test]
fn asymmetric_result() {
    let config = ReapConfig::default();
    for seed in 0..8 {
        let mut s = established(config, seed);
        let cut = s.now;
        for (x, y) in [(a1(), b1()), (a1(), b2()), (a2(), b1())] {
            s.cut(x, y);
        }
        for (x, y) in [(b2(), a2()), (b2(), a1()), (b1(), a2())] {
            s.cut(x, y);
        }
        s.run_for(secs(40.0));
        assert_eq!(s.a.m.current_pair(), pair(a2(), b2()), "seed {seed}");
        assert_eq!(s.b.m.current_pair(), pair(b1(), a1()), "seed {seed}");
        let (t, _) = change_after(&s.a, cut).unwrap();
        let extra_round = config.initial_probe_timeout.mul_f64(1.2) + s.latency * 4;
        assert!(
            t - cut <= failover_bound(&config) + extra_round,
            "{:?}",
            t - cut
        );
        assert!(
            s.b.pair_changes().is_empty(),
            "B's outbound pair never broke"
        );
        assert_flowing(&s);
    }
}

/// 20 % random loss on every path plus a two-way cut of the current pair still converges.
#[test]
fn random_loss_still_converges() {
    let config = ReapConfig::default();
    for seed in 0..10 {
        let mut s = established(config, seed);
        s.loss = 0.2;
        s.cut_both(a1(), b1());
        s.run_for(secs(90.0));
        assert_ne!(s.a.m.current_pair(), pair(a1(), b1()), "seed {seed}");
        assert_ne!(s.b.m.current_pair(), pair(b1(), a1()), "seed {seed}");
        assert_flowing(&s);
    }
}

/// Nothing works: both sides keep probing, backing off to Max Probe Timeout and staying there,
/// with bounded memory (RFC 5534 §4.3).
#[test]
fn no_pair_keeps_probing_at_max_timeout() {
    let mut s = established(ReapConfig::default(), 5);
    for l in [a1(), a2()] {
        s.cut_locator(l);
    }
    s.run_for(secs(3600.0));
    let fp_hour = (s.a.m.footprint(), s.b.m.footprint());
    s.run_for(secs(3600.0));
    for n in [&s.a, &s.b] {
        assert_eq!(n.m.state(), ReapState::Exploring);
        let probes = n.probes();
        let gaps: Vec<f64> = probes
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).as_secs_f64())
            .collect();
        for g in &gaps[gaps.len() - 100..] {
            assert!((48.0..=60.0).contains(g), "gap {g}");
        }
        assert!(probes.len() < 170, "{}", probes.len());
        assert!(n
            .events
            .iter()
            .any(|(_, e)| *e == ReapEvent::ProbeBackoffMaxed));
        for (_, _, p) in &probes {
            assert!(p.sent.len() <= 15 && p.received.len() <= 15);
        }
    }
    assert!(s.a.m.footprint() <= fp_hour.0 && s.b.m.footprint() <= fp_hour.1);
    assert!(fp_hour.0 < 40 && fp_hour.1 < 40, "{fp_hour:?}");
}

/// A local link-down signal on the current pair's locator: A explores at once, skips a1, and
/// moves within one probe round trip.
#[test]
fn local_down_switches_within_one_rtt() {
    let mut s = established(ReapConfig::default(), 6);
    let t = s.now;
    s.cut_locator(a1());
    s.a.m.local_locator_down(t, a1());
    s.run_for(secs(10.0));
    let (at, new) = change_after(&s.a, t).unwrap();
    assert!(at - t <= s.latency * 2, "{:?}", at - t);
    assert_eq!(new.local, a2());
    assert!(s.a.probes().iter().all(|(_, p, _)| p.local == a2()));
    assert!(s.a.events.iter().any(|(_, e)| *e
        == ReapEvent::ExplorationStarted {
            reason: ExplorationReason::LocalLocatorDown(a1())
        }));
    // B follows: its outbound pair no longer targets a1.
    assert_eq!(s.b.m.current_pair().peer, a2());
    assert_flowing(&s);
    // Up again: nothing moves by itself (the current pair works).
    let now = s.now;
    s.a.m.local_locator_up(now, a1());
    s.heal();
    s.run_for(secs(10.0));
    assert_eq!(s.a.m.current_pair(), new);
}

/// With a known-good alternative (confirmed earlier by a TE switch), that pair is probed
/// first after a local failure.
#[test]
fn local_down_probes_known_good_first() {
    let mut s = established(ReapConfig::default(), 7);
    let now = s.now;
    s.a.m.prefer_pair(now, pair(a2(), b1())).unwrap();
    s.run_for(secs(2.0));
    assert_eq!(s.a.m.current_pair(), pair(a2(), b1()));
    let now = s.now;
    s.a.m.prefer_pair(now, pair(a1(), b1())).unwrap();
    s.run_for(secs(2.0));
    assert_eq!(s.a.m.current_pair(), pair(a1(), b1()));
    let t = s.now;
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
    assert_flowing(&s);
}

/// With every local locator down nothing can be probed; when one comes back, probing starts
/// at once and the context recovers within a round trip.
#[test]
fn local_up_resumes_probing() {
    let mut s = established(ReapConfig::default(), 8);
    let t = s.now;
    s.cut_locator(a1());
    s.cut_locator(a2());
    // a2 first: then the exploration (started by a1) has no usable pair from the start.
    s.a.m.local_locator_down(t, a2());
    s.a.m.local_locator_down(t, a1());
    s.run_for(secs(300.0));
    assert_eq!(s.a.m.state(), ReapState::Exploring);
    assert!(s.a.probes().is_empty(), "no usable pair, nothing to probe");
    s.heal_locator(a2());
    let up = s.now;
    s.a.m.local_locator_up(up, a2());
    s.run_for(secs(0.01));
    let probes = s.a.probes();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].1.local, a2());
    s.run_for(secs(5.0));
    let (at, new) = change_after(&s.a, up).unwrap();
    assert!(at - up <= s.latency * 2);
    assert_eq!(new.local, a2());
    assert_flowing(&s);
}

/// Traffic engineering: `prefer_pair` probes the pair and switches once the peer reports the
/// probe, within one round trip, without disturbing the peer's pair or starting an
/// exploration.
#[test]
fn prefer_pair_switches_when_confirmed() {
    let mut s = established(ReapConfig::default(), 9);
    let t = s.now;
    s.a.m.prefer_pair(t, pair(a2(), b2())).unwrap();
    s.run_for(secs(5.0));
    let (at, new) = change_after(&s.a, t).unwrap();
    assert_eq!(new, pair(a2(), b2()));
    assert!(at - t <= s.latency * 2);
    assert_eq!(s.b.m.current_pair(), pair(b1(), a1()));
    assert!(s.b.pair_changes().is_empty());
    for n in [&s.a, &s.b] {
        assert!(!n
            .events
            .iter()
            .any(|(_, e)| matches!(e, ReapEvent::ExplorationStarted { .. })));
    }
    assert_eq!(s.b.payload_rx.last().unwrap().1, pair(a2(), b2()));
    assert_flowing(&s);
    // Asking for the current pair is a no-op.
    let now = s.now;
    assert_eq!(s.a.m.prefer_pair(now, pair(a2(), b2())), Ok(()));
    assert!(s.a.m.poll_transmit().is_none());
}

/// A preferred pair that does not work is given up after the initial probes; nothing else
/// changes.
#[test]
fn prefer_broken_pair_fails_cleanly() {
    let mut s = established(ReapConfig::default(), 10);
    s.cut(a2(), b2());
    let t = s.now;
    s.a.m.prefer_pair(t, pair(a2(), b2())).unwrap();
    s.run_for(secs(10.0));
    assert_eq!(s.a.m.current_pair(), pair(a1(), b1()));
    assert_eq!(s.a.probes().len(), 4);
    assert!(s.a.events.iter().any(|(_, e)| *e
        == ReapEvent::PreferredPairFailed {
            pair: pair(a2(), b2())
        }));
    assert!(s.b.tx.is_empty(), "B saw nothing");
    assert_flowing(&s);
    s.run_for(secs(60.0));
    assert!(s.a.m.stats().explorations == 0 && s.b.m.stats().explorations == 0);
}

#[test]
fn prefer_pair_rejects_unusable_pairs() {
    let t0 = Instant::now();
    let mut m = machine_a(ReapConfig::default(), t0, 1);
    let stranger = loc("2001:db8:99::1");
    assert_eq!(
        m.prefer_pair(t0, pair(stranger, b1())),
        Err(crate::ReapError::UnknownLocator(stranger))
    );
    assert_eq!(
        m.prefer_pair(t0, pair(a2(), stranger)),
        Err(crate::ReapError::UnknownLocator(stranger))
    );
    m.local_locator_down(t0, a2());
    assert_eq!(
        m.prefer_pair(t0, pair(a2(), b2())),
        Err(crate::ReapError::LocatorDown(a2()))
    );
    assert!(m.poll_transmit().is_none());
}

/// An Update removes A's locator a1 (both sides learn it): both explore at once, never probe
/// a1 again and settle on pairs using a2.
#[test]
fn set_locators_removing_current_pair() {
    let mut s = established(ReapConfig::default(), 11);
    let t = s.now;
    s.cut_locator(a1());
    s.a.m.set_locators(t, vec![a2()], vec![b1(), b2()]);
    s.b.m.set_locators(t, vec![b1(), b2()], vec![a2()]);
    s.run_for(secs(5.0));
    assert_eq!(s.a.m.current_pair().local, a2());
    assert_eq!(s.b.m.current_pair().peer, a2());
    for n in [&s.a, &s.b] {
        assert!(n.events.iter().any(|(_, e)| *e
            == ReapEvent::ExplorationStarted {
                reason: ExplorationReason::CurrentPairRemoved
            }));
        assert!(n
            .probes()
            .iter()
            .all(|(_, p, _)| p.local != a1() && p.peer != a1()));
        let (at, _) = change_after(n, t).unwrap();
        assert!(at - t <= s.latency * 4);
    }
    assert_flowing(&s);
}

/// Root cause of the `failover --loss 20 --seed 162` simulation, made deterministic: a node
/// in InboundOk must keep retransmitting its own probes on its backoff schedule until one is
/// reported back (RFC 5534 §4.3, §6.5); its immediate answers to the peer's Exploring probes
/// (§6.7) are extra probes that must not postpone that schedule.
///
/// A's packets from a1 are lost and B's to a2 too (A is not told). B stops hearing A and
/// explores; its probes reach A only on a1, so A's answers go back from a1 and are lost, and
/// B, hearing nothing, stays Exploring, its probes arriving at A now and then for as long as
/// it backs off. A's own InboundOk probes from a2 would reach B, but a burst of loss eats
/// them for the first 100 s. When A rescheduled its stream after each answer (with one more
/// backoff step each time), every arrival of B's pushed A's next probe past the following
/// one: A's own probes stopped for 150 s, and with B re-exploring every Send Timeout, as in
/// the simulation, they stop for good.
#[test]
fn answers_do_not_postpone_retransmissions() {
    let config = exact();
    let mut s = established(config, 3);
    let cut = s.now;
    for (x, y) in [(a1(), b1()), (a1(), b2()), (b1(), a2()), (b2(), a2())] {
        s.cut(x, y);
    }
    let burst = secs(100.0);
    s.lose_probes(Side::A, ReapState::InboundOk, cut + burst);
    s.run_for(burst);
    assert_eq!(s.a.m.state(), ReapState::InboundOk);
    assert_eq!(s.b.m.state(), ReapState::Exploring);
    assert!(s.a.probe_rx.len() >= 4, "B's probes kept arriving");
    s.run_for(secs(200.0));
    // A's own probes never paused for longer than Max Probe Timeout until one sent from a2
    // after the burst was reported back, and both sides recovered.
    let (t, new) = change_after(&s.a, cut).expect("A never changed pair");
    let mut last = cut;
    for r in s.a.retransmissions().into_iter().filter(|&r| r < t) {
        assert!(
            r - last <= config.max_probe_timeout,
            "no probe of A's own from {:?} to {:?} after the cut",
            last - cut,
            r - cut
        );
        last = r;
    }
    assert!(
        t - last <= s.latency * 2,
        "{:?} after A's last probe",
        t - last
    );
    assert!(t - cut > burst && t - cut <= burst + config.max_probe_timeout * 2);
    assert_eq!(new.local, a2());
    assert_eq!(s.b.m.current_pair().peer, a1());
    assert_flowing(&s);
}
