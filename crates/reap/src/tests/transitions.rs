//! One test per row of the state tables of RFC 5534 §6.1–§6.9 (`spec/reap.md` §6–§7), on a
//! single machine fed by hand on a virtual clock.

use std::time::{Duration, Instant};

use wire::{LocatorPair, MessageBody, Nonce, ProbeReport, ProbeRepr, ReapState};

use super::util::*;
use crate::{ExplorationReason, ReapConfig, ReapEvent, ReapMachine, ReapTransmit, MAX_REPORTS};

/// A machine on a virtual clock.
struct One {
    m: ReapMachine,
    t0: Instant,
    now: Instant,
}

impl One {
    fn new(config: ReapConfig) -> Self {
        let t0 = Instant::now();
        Self {
            m: machine_a(config, t0, 7),
            t0,
            now: t0,
        }
    }
    fn at(&mut self, s: f64) -> Instant {
        self.now = self.t0 + secs(s);
        self.now
    }
    fn tx(&mut self) -> Vec<ReapTransmit> {
        std::iter::from_fn(|| self.m.poll_transmit()).collect()
    }
    fn events(&mut self) -> Vec<ReapEvent> {
        std::iter::from_fn(|| self.m.poll_event()).collect()
    }
    /// The single probe just sent.
    fn probe(&mut self) -> (LocatorPair, ProbeRepr) {
        let tx = self.tx();
        assert_eq!(tx.len(), 1, "{tx:?}");
        match &tx[0].body {
            MessageBody::Probe(p) => (tx[0].pair, p.clone()),
            other => panic!("not a probe: {other:?}"),
        }
    }
    /// Sends payload at t = 0 and lets the Send Timer fire: Exploring at t = 15.
    fn exploring(config: ReapConfig) -> (Self, ProbeReport) {
        let mut o = Self::new(config);
        let t = o.at(0.0);
        o.m.on_payload_sent(t, t);
        let t = o.at(15.0);
        o.m.handle_timeout(t);
        let (_, p) = o.probe();
        assert_eq!(o.m.state(), ReapState::Exploring);
        o.events();
        (o, p.sent[0])
    }
    fn timeout_at(&mut self, s: f64) {
        let t = self.at(s);
        self.m.handle_timeout(t);
    }
    fn deliver(&mut self, s: f64, src: wire::Locator, dst: wire::Locator, p: &ProbeRepr) {
        let t = self.at(s);
        self.m.on_probe(t, src, dst, p);
    }
}

/// A probe from B (src → dst, B's orientation) with nonce `n`.
fn from_b(
    state: ReapState,
    src: wire::Locator,
    dst: wire::Locator,
    n: u32,
    received: Vec<ProbeReport>,
) -> ProbeRepr {
    ProbeRepr {
        receiver_tag: tag_a(),
        state,
        sent: vec![ProbeReport {
            src,
            dst,
            nonce: Nonce(n),
            data: 0x0d0d,
        }],
        received,
    }
}

fn has_timer_at(m: &ReapMachine, t: Instant) -> bool {
    m.poll_timeout() == Some(t)
}

// ---- Operational -------------------------------------------------------------------------

/// §6.4: Send Timer expiry in Operational → probe (Sta = Exploring), Exploring, exactly a
/// Send Timeout after the first unanswered send.
#[test]
fn operational_send_timeout_explores_exactly() {
    let mut o = One::new(exact());
    let t = o.at(1.0);
    o.m.on_payload_sent(t, t);
    let t = o.at(5.0);
    o.m.on_payload_sent(t, t); // does not restart a running timer
    assert_eq!(o.m.poll_timeout(), Some(o.t0 + secs(16.0)));
    o.timeout_at(15.999);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert!(o.tx().is_empty());
    o.timeout_at(16.0);
    assert_eq!(o.m.state(), ReapState::Exploring);
    let (p, repr) = o.probe();
    assert_eq!(repr.state, ReapState::Exploring);
    assert_eq!(repr.receiver_tag, tag_b());
    assert_eq!(repr.sent.len(), 1);
    assert!(repr.received.is_empty());
    assert_eq!((repr.sent[0].src, repr.sent[0].dst), (p.local, p.peer));
    // spec/reap.md §8: a pair sharing no locator with the failed one first.
    assert_eq!(p, pair(a2(), b2()));
    let ev = o.events();
    assert!(ev.contains(&ReapEvent::ExplorationStarted {
        reason: ExplorationReason::SendTimeout
    }));
    assert!(ev.contains(&ReapEvent::StateChanged {
        old: ReapState::Operational,
        new: ReapState::Exploring
    }));
    assert_eq!(o.m.stats().explorations, 1);
}

/// Randomised Send Timeout: within [0.9, 1] × 15 s, and not always the same.
#[test]
fn send_timeout_randomised_within_bound() {
    let mut seen = Vec::new();
    for seed in 0..50 {
        let t0 = Instant::now();
        let mut m = machine_a(ReapConfig::default(), t0, seed);
        m.on_payload_sent(t0, t0);
        let d = m.poll_timeout().unwrap() - t0;
        assert!(d >= secs(13.5) && d <= secs(15.0), "{d:?}");
        m.handle_timeout(t0 + d);
        assert_eq!(m.state(), ReapState::Exploring);
        seen.push(d);
    }
    seen.dedup();
    assert!(seen.len() > 1);
}

/// §6.1 / §6.6: receipts stop the Send Timer in Operational.
#[test]
fn operational_receipt_stops_send_timer() {
    let mut o = One::new(exact());
    let t = o.at(0.0);
    o.m.on_payload_sent(t, t);
    let t = o.at(3.0);
    o.m.on_keepalive(t);
    assert_eq!(o.m.poll_timeout(), None);
    let t = o.at(4.0);
    o.m.on_payload_sent(t, t);
    let t = o.at(5.0);
    o.m.on_payload_received(t, t);
    // Now the Keepalive Timer runs instead (mutually exclusive): interval at +5 s.
    assert_eq!(o.m.poll_timeout(), Some(o.t0 + secs(10.0)));
    o.timeout_at(40.0);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.stats().keepalives_received, 1);
}

/// A receipt reported late (older than our newest send) stops only an older Send Timer and
/// times the outstanding send afresh.
#[test]
fn late_receipt_report_keeps_newer_send_outstanding() {
    let mut o = One::new(exact());
    let t = o.at(0.0);
    o.m.on_payload_sent(t, t);
    let t = o.at(2.0);
    o.m.on_payload_sent(t, o.t0 + secs(2.0));
    // Counters polled at 3 s: the peer's packet arrived at 1 s.
    let t = o.at(3.0);
    o.m.on_payload_received(t, o.t0 + secs(1.0));
    assert_eq!(o.m.poll_timeout(), Some(o.t0 + secs(17.0)));
    // And a send older than the newest receipt changes nothing.
    let t = o.at(4.0);
    o.m.on_payload_received(t, t);
    let keepalive_due = o.m.poll_timeout();
    let t = o.at(4.5);
    o.m.on_payload_sent(t, o.t0 + secs(3.5));
    assert_eq!(o.m.poll_timeout(), keepalive_due);
}

/// §6.7 Operational: Probe Sta = Exploring → answer Sta = InboundOk on the pair it came on,
/// reporting it; stop Keepalive, restart Send; InboundOk.
#[test]
fn operational_probe_exploring_answers_inbound_ok() {
    let mut o = One::new(exact());
    let t = o.at(0.0);
    o.m.on_payload_received(t, t); // Keepalive Timer running
    let p = from_b(ReapState::Exploring, b2(), a2(), 11, vec![]);
    o.deliver(1.0, b2(), a2(), &p);
    assert_eq!(o.m.state(), ReapState::InboundOk);
    let (via, repr) = o.probe();
    assert_eq!(via, pair(a2(), b2()));
    assert_eq!(repr.state, ReapState::InboundOk);
    assert_eq!(repr.received, p.sent);
    // Send Timer restarted (16 s), probe stream at +0.5 s; no keepalive any more.
    assert_eq!(o.m.poll_timeout(), Some(o.t0 + secs(1.5)));
    o.timeout_at(1.5);
    let (via2, repr2) = o.probe();
    assert_eq!(repr2.state, ReapState::InboundOk);
    assert_ne!(via2, via, "the stream moves on to the next pair");
    assert_eq!(
        repr2.received, p.sent,
        "InboundOk probes MUST report a received probe"
    );
    assert!(o.tx().is_empty());
}

/// §6.8 Exploring: Probe Sta = InboundOk naming our probe → new current pair, answer
/// Sta = Operational (with its report), Operational, exploration over.
#[test]
fn exploring_probe_inbound_ok_picks_reported_pair() {
    let (mut o, ours) = One::exploring(exact());
    let p = from_b(ReapState::InboundOk, b2(), a2(), 12, vec![ours]);
    o.deliver(15.1, b2(), a2(), &p);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a2(), b2()));
    let (via, repr) = o.probe();
    assert_eq!(via, pair(a2(), b2()));
    assert_eq!(repr.state, ReapState::Operational);
    assert_eq!(repr.received, p.sent);
    let ev = o.events();
    assert!(ev.contains(&ReapEvent::PairChanged {
        old: pair(a1(), b1()),
        new: pair(a2(), b2())
    }));
    assert!(ev.iter().any(|e| matches!(
        e,
        ReapEvent::ExplorationSucceeded { pair: p, elapsed } if *p == pair(a2(), b2()) && *elapsed == secs(0.1)
    )));
    // Send Timer restarted: exploring again 15 s later if nothing comes back.
    assert!(has_timer_at(&o.m, o.t0 + secs(30.1)));
}

/// §6.8 Operational: after a report-less InboundOk left us Operational on an unconfirmed pair,
/// a later InboundOk reporting our answer moves the current pair to where that answer went.
#[test]
fn operational_probe_inbound_ok_switches_unconfirmed_pair() {
    let (mut o, _) = One::exploring(exact());
    let p1 = from_b(ReapState::InboundOk, b2(), a2(), 41, vec![]);
    o.deliver(15.1, b2(), a2(), &p1);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a1(), b1()));
    let (via, reply) = o.probe();
    assert_eq!(via, pair(a2(), b2()));
    assert_eq!(reply.state, ReapState::Operational);
    let p2 = from_b(ReapState::InboundOk, b2(), a2(), 42, vec![reply.sent[0]]);
    o.deliver(15.2, b2(), a2(), &p2);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a2(), b2()));
    assert_eq!(o.probe().1.state, ReapState::Operational);
}

/// Once the current pair is confirmed, a late report of an older probe on another pair does
/// not make it flap.
#[test]
fn confirmed_pair_does_not_flap() {
    let (mut o, first) = One::exploring(exact());
    o.timeout_at(15.5);
    let (second_pair, second) = o.probe();
    assert_eq!(second_pair, pair(a1(), b2()));
    let p1 = from_b(ReapState::InboundOk, b2(), a2(), 51, vec![first]);
    o.deliver(15.6, b2(), a2(), &p1);
    assert_eq!(o.m.current_pair(), pair(a2(), b2()));
    for sta in [ReapState::InboundOk, ReapState::Operational] {
        let late = from_b(sta, b2(), a1(), 52, vec![second.sent[0]]);
        o.deliver(15.7, b2(), a1(), &late);
        assert_eq!(o.m.current_pair(), pair(a2(), b2()));
    }
    assert_eq!(o.m.stats().pair_changes, 1);
}

/// §6.8 with no received-report: the current pair stays; the answer goes back the way the
/// probe came.
#[test]
fn operational_probe_inbound_ok_without_reports_keeps_pair() {
    let mut o = One::new(exact());
    let p = from_b(ReapState::InboundOk, b2(), a1(), 13, vec![]);
    o.deliver(1.0, b2(), a1(), &p);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a1(), b1()));
    let (via, repr) = o.probe();
    assert_eq!(via, pair(a1(), b2()));
    assert_eq!(repr.state, ReapState::Operational);
    assert!(o.events().is_empty());
}

/// A report naming a probe we never sent (wrong nonce or wrong pair) switches nothing.
#[test]
fn forged_report_does_not_switch() {
    let (mut o, ours) = One::exploring(exact());
    let mut forged = ours;
    forged.nonce = Nonce(ours.nonce.0.wrapping_add(1));
    let mut moved = ours;
    moved.dst = b1();
    let p = from_b(ReapState::InboundOk, b2(), a2(), 14, vec![forged, moved]);
    o.deliver(15.1, b2(), a2(), &p);
    assert_eq!(o.m.current_pair(), pair(a1(), b1()));
    assert_eq!(o.m.stats().pair_changes, 0);
}

/// §6.9 Operational: Probe Sta = Operational → stop Send, start Keepalive.
#[test]
fn operational_probe_operational_starts_keepalive() {
    let mut o = One::new(exact());
    let t = o.at(0.0);
    o.m.on_payload_sent(t, t);
    let p = from_b(ReapState::Operational, b1(), a1(), 15, vec![]);
    o.deliver(2.0, b1(), a1(), &p);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert!(o.tx().is_empty(), "no answer to an Operational probe");
    // Send Timer gone, Keepalive Interval due at 2 + 5 s.
    assert_eq!(o.m.poll_timeout(), Some(o.t0 + secs(7.0)));
    o.timeout_at(7.0);
    let tx = o.tx();
    assert!(
        matches!(tx[..], [ReapTransmit { pair: p, body: MessageBody::Keepalive { receiver_tag } }] if p == pair(a1(), b1()) && receiver_tag == tag_b())
    );
}

// ---- Exploring ---------------------------------------------------------------------------

/// §6.5 Exploring: retransmissions go round the ordered pairs with Sta = Exploring, the
/// failed current pair last, then start over; sent-reports carry the earlier probes.
#[test]
fn exploring_retransmits_over_pairs() {
    let (mut o, _) = One::exploring(exact());
    let mut pairs = vec![pair(a2(), b2())];
    let mut t = 15.0;
    for n in 1..6u32 {
        t += ReapConfig::default().nominal_probe_gap(n).as_secs_f64();
        o.timeout_at(t);
        let (via, repr) = o.probe();
        assert_eq!(repr.state, ReapState::Exploring);
        assert_eq!(repr.sent.len(), (n + 1) as usize);
        assert_eq!((repr.sent[0].src, repr.sent[0].dst), (via.local, via.peer));
        pairs.push(via);
    }
    assert_eq!(
        pairs,
        [
            pair(a2(), b2()),
            pair(a1(), b2()),
            pair(a2(), b1()),
            pair(a1(), b1()),
            pair(a2(), b2()),
            pair(a1(), b2()),
        ]
    );
    // No Send or Keepalive timer in Exploring: payload sent changes nothing (§6.2).
    let before = o.m.poll_timeout();
    let t = o.at(t + 0.1);
    o.m.on_payload_sent(t, t);
    assert_eq!(o.m.poll_timeout(), before);
}

/// §6.1 Exploring: payload received → InboundOk, probe Sta = InboundOk, START Send.
#[test]
fn exploring_payload_received_goes_inbound_ok() {
    let (mut o, _) = One::exploring(exact());
    let t = o.at(15.2);
    o.m.on_payload_received(t, t);
    assert_eq!(o.m.state(), ReapState::InboundOk);
    let (_, repr) = o.probe();
    assert_eq!(repr.state, ReapState::InboundOk);
    // The first probe is still outstanding: reported again.
    assert_eq!(repr.sent.len(), 2);
    // Send Timer at 30.2 s; the probe stream keeps going meanwhile.
    o.timeout_at(30.19);
    assert_eq!(o.m.state(), ReapState::InboundOk);
    o.tx();
    o.timeout_at(30.2);
    assert_eq!(o.m.state(), ReapState::Exploring);
    let ev = o.events();
    assert!(ev.contains(&ReapEvent::ExplorationStarted {
        reason: ExplorationReason::InboundOkTimeout
    }));
}

/// §6.6 Exploring: Keepalive received → InboundOk, probe, START Send.
#[test]
fn exploring_keepalive_goes_inbound_ok() {
    let (mut o, _) = One::exploring(exact());
    let t = o.at(15.3);
    o.m.on_keepalive(t);
    assert_eq!(o.m.state(), ReapState::InboundOk);
    assert_eq!(o.probe().1.state, ReapState::InboundOk);
}

/// §6.7 Exploring: Probe Sta = Exploring → InboundOk, answer reporting it.
#[test]
fn exploring_probe_exploring_goes_inbound_ok() {
    let (mut o, _) = One::exploring(exact());
    let p = from_b(ReapState::Exploring, b2(), a2(), 21, vec![]);
    o.deliver(15.1, b2(), a2(), &p);
    assert_eq!(o.m.state(), ReapState::InboundOk);
    let (via, repr) = o.probe();
    assert_eq!(via, pair(a2(), b2()));
    assert_eq!(repr.state, ReapState::InboundOk);
    assert_eq!(repr.received, p.sent);
}

/// §6.9 Exploring: Probe Sta = Operational naming our probe → Operational on that pair, no
/// answer, Keepalive Timer started (App. A example 5).
#[test]
fn exploring_probe_operational_ends_exploration() {
    let (mut o, ours) = One::exploring(exact());
    let p = from_b(ReapState::Operational, b1(), a1(), 22, vec![ours]);
    o.deliver(15.1, b1(), a1(), &p);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a2(), b2()));
    assert!(o.tx().is_empty());
    assert_eq!(o.m.poll_timeout(), Some(o.t0 + secs(20.1)));
}

// ---- InboundOk ---------------------------------------------------------------------------

fn inbound_ok() -> (One, ProbeReport) {
    let (mut o, ours) = One::exploring(exact());
    let p = from_b(ReapState::Exploring, b2(), a2(), 31, vec![]);
    o.deliver(15.1, b2(), a2(), &p);
    o.tx();
    o.events();
    (o, ours)
}

/// §6.5 InboundOk: retransmission sends Sta = InboundOk and starts the Send Timer if it is
/// not running.
#[test]
fn inbound_ok_retransmission_starts_send_timer() {
    let (mut o, _) = inbound_ok();
    let t = o.at(15.2);
    o.m.on_payload_received(t, t); // stops the Send Timer
    assert_eq!(o.m.state(), ReapState::InboundOk);
    let next = o.m.poll_timeout().unwrap();
    o.m.handle_timeout(next);
    assert_eq!(o.probe().1.state, ReapState::InboundOk);
    // Send Timer started by the retransmission: 15 s after it.
    let deadline = next + secs(15.0);
    o.now = deadline - secs(0.001);
    let mut t = o.now;
    while let Some(d) = o.m.poll_timeout().filter(|&d| d < deadline) {
        t = d;
        o.m.handle_timeout(t);
    }
    assert_eq!(o.m.state(), ReapState::InboundOk);
    o.m.handle_timeout(deadline.max(t));
    assert_eq!(o.m.state(), ReapState::Exploring);
}

/// §6.1/§6.2 InboundOk: payload received stops the Send Timer; payload sent starts it.
#[test]
fn inbound_ok_payload_timers() {
    let (mut o, _) = inbound_ok();
    let t = o.at(15.2);
    o.m.on_payload_received(t, t);
    assert!(!o.m.timers.is_running(crate::timer::ReapTimer::Send));
    let t = o.at(15.3);
    o.m.on_payload_sent(t, t);
    assert_eq!(
        o.m.timers.get(crate::timer::ReapTimer::Send),
        Some(o.t0 + secs(30.3))
    );
    assert_eq!(o.m.state(), ReapState::InboundOk);
}

/// §6.7 InboundOk: Probe Sta = Exploring → answer InboundOk reporting both, RESTART Send.
#[test]
fn inbound_ok_probe_exploring_restarts_send() {
    let (mut o, _) = inbound_ok();
    let p = from_b(ReapState::Exploring, b1(), a2(), 32, vec![]);
    o.deliver(16.0, b1(), a2(), &p);
    assert_eq!(o.m.state(), ReapState::InboundOk);
    let (via, repr) = o.probe();
    assert_eq!(via, pair(a2(), b1()));
    assert_eq!(repr.received.len(), 2);
    assert_eq!(repr.received[0].nonce, Nonce(32), "newest first");
    assert_eq!(
        o.m.timers.get(crate::timer::ReapTimer::Send),
        Some(o.t0 + secs(31.0))
    );
}

/// §6.7 InboundOk with a backed-off stream. A probe of the exploration we already answered
/// (its sent-reports name a probe we recorded) is answered without touching our own
/// retransmission schedule (§6.5); answering must not postpone it. The first probe of a new
/// exploration of the peer's (none recorded: the peer again heard nothing from us for a Send
/// Timeout) restarts the backoff at Initial Probe Timeout, as the answer from Operational
/// starts it (§4.3 "retry the process as necessary").
#[test]
fn inbound_ok_probe_exploring_keeps_or_restarts_schedule() {
    let (mut o, _) = inbound_ok();
    let probe_timer = |o: &One| o.m.timers.get(crate::timer::ReapTimer::Probe).unwrap();
    // Six retransmissions; payload from B keeps the Send Timer stopped (§6.1).
    for _ in 0..6 {
        let t = probe_timer(&o);
        o.now = t;
        o.m.handle_timeout(t);
        assert_eq!(o.probe().1.state, ReapState::InboundOk);
        o.m.on_payload_received(t, t);
    }
    let due = probe_timer(&o);
    let t = o.now + secs(0.1);
    assert!(
        due - t > secs(1.0),
        "backed off: next probe in {:?}",
        due - t
    );
    // Same exploration: B re-reports its probe 31, which we recorded.
    let mut same = from_b(ReapState::Exploring, b1(), a2(), 32, vec![]);
    same.sent.push(ProbeReport {
        src: b2(),
        dst: a2(),
        nonce: Nonce(31),
        data: 0x0d0d,
    });
    o.now = t;
    o.m.on_probe(t, b1(), a2(), &same);
    let (via, repr) = o.probe();
    assert_eq!((via, repr.state), (pair(a2(), b1()), ReapState::InboundOk));
    assert_eq!(probe_timer(&o), due, "the answer moved the schedule");
    // A new exploration: its only probe is one we never saw.
    let t = o.now + secs(0.1);
    let fresh = from_b(ReapState::Exploring, b2(), a2(), 40, vec![]);
    o.now = t;
    o.m.on_probe(t, b2(), a2(), &fresh);
    assert_eq!(o.probe().0, pair(a2(), b2()));
    let initial = exact().initial_probe_timeout;
    assert_eq!(probe_timer(&o), t + initial);
    // ... and the stream goes on at the initial rate.
    o.now = t + initial;
    o.m.handle_timeout(t + initial);
    assert_eq!(o.probe().1.state, ReapState::InboundOk);
    assert_eq!(probe_timer(&o), t + initial * 2);
    assert_eq!(o.m.state(), ReapState::InboundOk);
}

/// §6.8 InboundOk: Probe Sta = InboundOk → Operational, answer Operational.
#[test]
fn inbound_ok_probe_inbound_ok_ends() {
    let (mut o, ours) = inbound_ok();
    let p = from_b(ReapState::InboundOk, b2(), a2(), 33, vec![ours]);
    o.deliver(15.2, b2(), a2(), &p);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a2(), b2()));
    assert_eq!(o.probe().1.state, ReapState::Operational);
}

/// §6.9 InboundOk: Probe Sta = Operational → stop Send, start Keepalive, Operational.
#[test]
fn inbound_ok_probe_operational_ends() {
    let (mut o, _) = inbound_ok();
    let p = from_b(ReapState::Operational, b2(), a2(), 34, vec![]);
    o.deliver(15.2, b2(), a2(), &p);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert_eq!(o.m.current_pair(), pair(a1(), b1()));
    assert!(!o.m.timers.is_running(crate::timer::ReapTimer::Send));
    assert!(o.m.timers.is_running(crate::timer::ReapTimer::Keepalive));
    assert!(o.tx().is_empty());
}

// ---- Robustness and bounds ---------------------------------------------------------------

#[test]
fn ignores_malformed_or_foreign_probes() {
    let mut o = One::new(exact());
    let unknown = from_b(ReapState::Unknown(3), b1(), a1(), 1, vec![]);
    o.deliver(1.0, b1(), a1(), &unknown);
    let mut empty = from_b(ReapState::Exploring, b1(), a1(), 2, vec![]);
    empty.sent.clear();
    o.deliver(1.0, b1(), a1(), &empty);
    let stranger = from_b(ReapState::Exploring, loc("2001:db8:99::1"), a1(), 3, vec![]);
    o.deliver(1.0, loc("2001:db8:99::1"), a1(), &stranger);
    let wrong_dst = from_b(ReapState::Exploring, b1(), loc("2001:db8:99::2"), 4, vec![]);
    o.deliver(1.0, b1(), loc("2001:db8:99::2"), &wrong_dst);
    assert_eq!(o.m.state(), ReapState::Operational);
    assert!(o.tx().is_empty());
    assert_eq!(o.m.stats().probes_ignored, 4);
    assert_eq!(o.m.stats().probes_received, 0);
}

/// Report lists never exceed 15 entries (4-bit counters, RFC 5534 §5.2); nonces are unique.
#[test]
fn report_lists_are_bounded() {
    let (mut o, _) = inbound_ok();
    for n in 0..40u32 {
        let p = from_b(ReapState::Exploring, b2(), a2(), 100 + n, vec![]);
        o.deliver(16.0 + f64::from(n) * 0.01, b2(), a2(), &p);
        let (_, repr) = o.probe();
        assert!(repr.sent.len() <= MAX_REPORTS && !repr.sent.is_empty());
        assert!(repr.received.len() <= MAX_REPORTS);
        let mut nonces: Vec<u32> = repr.sent.iter().map(|r| r.nonce.0).collect();
        nonces.sort_unstable();
        nonces.dedup();
        assert_eq!(nonces.len(), repr.sent.len());
    }
    let (_, last) = {
        let p = from_b(ReapState::Exploring, b2(), a2(), 999, vec![]);
        o.deliver(17.0, b2(), a2(), &p);
        o.probe()
    };
    assert_eq!(last.sent.len(), MAX_REPORTS);
    assert_eq!(last.received.len(), MAX_REPORTS);
    assert_eq!(last.received[0].nonce, Nonce(999));
}

/// The peer's tag changes after recovery: later messages carry the new one.
#[test]
fn peer_tag_change_applies() {
    let mut o = One::new(exact());
    let new_tag = wire::ContextTag::new(0x1234).unwrap();
    o.m.set_peer_tag(new_tag);
    let t = o.at(0.0);
    o.m.on_payload_received(t, t);
    o.timeout_at(5.0);
    let tx = o.tx();
    assert_eq!(
        tx[0].body,
        MessageBody::Keepalive {
            receiver_tag: new_tag
        }
    );
}

/// Time of the `n`-th probe of an exploration started at t = 15 s (index 0 = first probe).
fn probe_offsets(config: ReapConfig, seed: u64, count: usize) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut m = machine_a(config, t0, seed);
    m.on_payload_sent(t0, t0);
    let start = m.poll_timeout().unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let t = m.poll_timeout().unwrap();
        m.handle_timeout(t);
        while let Some(x) = m.poll_transmit() {
            assert!(matches!(x.body, MessageBody::Probe(_)));
            out.push(t - start);
        }
    }
    out
}

/// Pins the probe schedule (RFC 5534 §4.3, our reading in `nominal_probe_gap`): exact without
/// randomisation, each gap within ±20 % with it.
#[test]
fn probe_schedule_pinned() {
    let nominal = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 9.0];
    let exact_offsets = probe_offsets(exact(), 1, 8);
    let want: Vec<Duration> = nominal.iter().map(|&s| secs(s)).collect();
    assert_eq!(exact_offsets, want);
    for seed in 0..20 {
        let offs = probe_offsets(ReapConfig::default(), seed, 8);
        assert_eq!(offs[0], Duration::ZERO);
        for i in 1..8 {
            let gap = (offs[i] - offs[i - 1]).as_secs_f64();
            let nom = nominal[i] - nominal[i - 1];
            assert!(
                gap >= nom * 0.8 - 1e-9 && gap <= nom * 1.2 + 1e-9,
                "seed {seed} gap {i}: {gap} vs {nom}"
            );
        }
    }
}

/// Backoff caps at Max Probe Timeout (RFC 5534 §4.3).
#[test]
fn backoff_caps_at_max() {
    let offs = probe_offsets(exact(), 1, 16);
    let gaps: Vec<f64> = offs
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert_eq!(&gaps[8..], &[16.0, 32.0, 60.0, 60.0, 60.0, 60.0, 60.0]);
}
