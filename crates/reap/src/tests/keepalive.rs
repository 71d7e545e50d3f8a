//! Forced Bidirectional Detection: keepalive timing ([RFC 5534 §4.1, §6.1–§6.3], App. A
//! examples 1–3).
//!
//! [RFC 5534 §4.1, §6.1–§6.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1

use std::time::{Duration, Instant};

use wire::{MessageBody, ReapState};

use super::util::*;
use crate::ReapConfig;

/// Unidirectional A → B (App. A example 3): B sends a keepalive every Tka/3 = 5 s while it
/// receives, the last one exactly Tka after the last receipt (§6.3), then nothing; A never
/// explores because the keepalives stop its Send Timer.
#[test]
fn keepalives_every_third_of_tka_and_stop_after_tka() {
    let mut s = Pair::new(exact(), 1);
    s.app(Side::A, Some(secs(1.0)));
    s.run_for(secs(30.5));
    s.app(Side::A, None);
    s.run_for(secs(100.0));
    let first_rx = s.b.payload_rx[0].0;
    let last_rx = s.b.payload_rx.last().unwrap().0;
    let ka = s.b.keepalives();
    assert_eq!(ka[0], first_rx + secs(5.0));
    for w in ka.windows(2) {
        assert_eq!(w[1] - w[0], secs(5.0));
    }
    assert_eq!(*ka.last().unwrap(), last_rx + secs(15.0));
    assert_eq!(ka.len(), 9, "5, 10, ..., 45 s");
    assert!(s.a.probes().is_empty() && s.b.probes().is_empty());
    assert_eq!(s.a.m.state(), ReapState::Operational);
    assert_eq!(s.a.m.stats().keepalives_received, ka.len() as u64);
    // Keepalives travel on B's current pair with A's tag (checked by the harness).
    assert!(s.b.tx.iter().all(
        |(_, t)| t.pair == pair(b1(), a1()) && matches!(t.body, MessageBody::Keepalive { .. })
    ));
    assert_eq!(s.b.m.poll_timeout(), None);
}

/// With randomisation, gaps stay within [0.9, 1] × Tka/3 (RFC 5534 §4.1 item 5 allows sending
/// sooner) and the last keepalive is still exactly Tka after the last receipt.
#[test]
fn keepalives_jittered_within_rfc_range() {
    for seed in 0..10 {
        let mut s = Pair::new(ReapConfig::default(), seed);
        s.app(Side::A, Some(secs(0.7)));
        s.run_for(secs(40.0));
        s.app(Side::A, None);
        s.run_for(secs(60.0));
        let last_rx = s.b.payload_rx.last().unwrap().0;
        let ka = s.b.keepalives();
        assert!(ka.len() >= 9, "{}", ka.len());
        let gaps: Vec<f64> = ka.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let (last_gap, steady) = gaps.split_last().unwrap();
        for g in steady {
            assert!((4.5..=5.0).contains(g), "seed {seed}: gap {g}");
        }
        // The last one comes at Tka, at least half an interval after the previous one.
        assert!(
            (2.25..=7.5).contains(last_gap),
            "seed {seed}: last gap {last_gap}"
        );
        assert_eq!(*ka.last().unwrap(), last_rx + secs(15.0));
        assert!(s.a.probes().is_empty());
    }
}

/// One received packet: keepalives at +5, +10 and the last at +15 s (RFC 5534 §6.3).
#[test]
fn single_packet_gets_three_keepalives() {
    let t0 = Instant::now();
    let mut m = machine_a(exact(), t0, 3);
    m.on_payload_received(t0, t0);
    let mut at = Vec::new();
    while let Some(t) = m.poll_timeout() {
        m.handle_timeout(t);
        while let Some(x) = m.poll_transmit() {
            assert!(matches!(x.body, MessageBody::Keepalive { .. }));
            at.push(t - t0);
        }
    }
    assert_eq!(at, [secs(5.0), secs(10.0), secs(15.0)]);
}

/// Sending payload stops the keepalives (they are only for one-way traffic).
#[test]
fn sending_payload_stops_keepalives() {
    let t0 = Instant::now();
    let mut m = machine_a(exact(), t0, 3);
    m.on_payload_received(t0, t0);
    m.on_payload_sent(t0 + secs(1.0), t0 + secs(1.0));
    // Only the Send Timer remains.
    assert_eq!(m.poll_timeout(), Some(t0 + secs(16.0)));
}

/// Bidirectional traffic (App. A example 2): no keepalive, no probe.
#[test]
fn bidirectional_traffic_needs_nothing() {
    let mut s = Pair::new(ReapConfig::default(), 2);
    s.app(Side::A, Some(secs(1.0)));
    s.app(Side::B, Some(secs(1.3)));
    s.run_for(secs(120.0));
    assert!(s.a.tx.is_empty() && s.b.tx.is_empty());
    assert!(s.b.payload_rx.len() > 100 && s.a.payload_rx.len() > 80);
}

/// An idle context (App. A example 1) sends nothing and arms no timer.
#[test]
fn idle_context_is_silent() {
    let mut s = Pair::new(ReapConfig::default(), 3);
    s.run_for(Duration::from_secs(3600));
    assert!(s.a.tx.is_empty() && s.b.tx.is_empty());
    assert_eq!(s.a.m.poll_timeout(), None);
    assert_eq!(s.b.m.poll_timeout(), None);
}

/// The peer's Keepalive Timeout option (RFC 5534 §5.3) sets Tka: 30 s → keepalives every 10 s.
#[test]
fn peer_keepalive_timeout_option() {
    let mut s = Pair::new(exact(), 4);
    s.b.m.set_keepalive_timeout(30);
    s.b.m.set_keepalive_timeout(0); // ignored
    s.app(Side::A, Some(secs(1.0)));
    s.run_for(secs(35.5));
    let ka = s.b.keepalives();
    assert_eq!(ka.len(), 3);
    for w in ka.windows(2) {
        assert_eq!(w[1] - w[0], secs(10.0));
    }
}
