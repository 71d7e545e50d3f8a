//! Property tests: arbitrary input sequences never panic, never make `poll_timeout` go back
//! before `now`, never grow memory, and every message the machine emits is well formed.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use wire::{ContextTag, Locator, MessageBody, Nonce, ProbeReport, ProbeRepr, ReapState};

use super::util::*;
use crate::timer::ReapTimer;
use crate::{ReapConfig, ReapMachine, MAX_REPORTS};

fn pool() -> [Locator; 6] {
    [
        a1(),
        a2(),
        loc("2001:db8:5::a"),
        b1(),
        b2(),
        loc("2001:db8:6::b"),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u32),
    Timeout,
    PayloadRx(u32),
    PayloadTx(u32),
    Keepalive,
    Probe {
        sta: u8,
        src: usize,
        dst: usize,
        nonce: u32,
        echo: usize,
        junk: Vec<(usize, usize, u32)>,
    },
    SetLocators(u8, u8),
    Down(usize),
    Up(usize),
    Prefer(usize, usize),
    Tka(u16),
    Tag(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..120_000).prop_map(Op::Advance),
        4 => Just(Op::Timeout),
        2 => (0u32..30_000).prop_map(Op::PayloadRx),
        2 => (0u32..30_000).prop_map(Op::PayloadTx),
        1 => Just(Op::Keepalive),
        4 => (
            0u8..5,
            0usize..6,
            0usize..6,
            any::<u32>(),
            0usize..4,
            prop::collection::vec((0usize..6, 0usize..6, any::<u32>()), 0..20)
        )
            .prop_map(|(sta, src, dst, nonce, echo, junk)| Op::Probe {
                sta,
                src,
                dst,
                nonce,
                echo,
                junk
            }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(l, p)| Op::SetLocators(l, p)),
        1 => (0usize..6).prop_map(Op::Down),
        1 => (0usize..6).prop_map(Op::Up),
        1 => (0usize..6, 0usize..6).prop_map(|(l, p)| Op::Prefer(l, p)),
        1 => any::<u16>().prop_map(Op::Tka),
        1 => any::<u64>().prop_map(Op::Tag),
    ]
}

fn config() -> impl Strategy<Value = ReapConfig> {
    (
        0u64..40_000,
        0u64..40_000,
        0u64..3_000,
        0u32..10,
        0u64..100_000,
        any::<bool>(),
    )
        .prop_map(|(s, k, i, n, m, r)| ReapConfig {
            send_timeout: Duration::from_millis(s),
            default_keepalive_timeout: Duration::from_millis(k),
            initial_probe_timeout: Duration::from_millis(i),
            initial_probes: n,
            max_probe_timeout: Duration::from_millis(m),
            randomise: r,
        })
}

/// Upper bound of `ReapMachine::footprint`: locators, order, reports, confirmed, queues.
const MAX_FOOTPRINT: usize = 3 * 64 + 64 + 2 * MAX_REPORTS + 8 + 2 * 64;

fn subset(mask: u8, from: &[Locator]) -> Vec<Locator> {
    from.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, l)| *l)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_inputs_never_panic(config in config(), seed in any::<u64>(), ops in prop::collection::vec(op(), 1..120)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut m: ReapMachine = machine_a(config, t0, seed);
        let mut tag = tag_b();
        let mut down: Vec<Locator> = Vec::new();
        let mut ours: Vec<ProbeReport> = Vec::new();
        let p = pool();
        // `now` of the newest input: no deadline may be before it.
        let mut input_now = t0;
        for o in ops {
            if !matches!(o, Op::Advance(_) | Op::Tka(_) | Op::Tag(_)) {
                input_now = now;
            }
            let before = m.timers.clone();
            match o {
                Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
                Op::Timeout => {
                    m.handle_timeout(now);
                    prop_assert!(m.poll_timeout().is_none_or(|t| t > now));
                }
                Op::PayloadRx(lag) => m.on_payload_received(now, now.checked_sub(Duration::from_millis(u64::from(lag))).unwrap_or(now)),
                Op::PayloadTx(lag) => m.on_payload_sent(now, now.checked_sub(Duration::from_millis(u64::from(lag))).unwrap_or(now)),
                Op::Keepalive => m.on_keepalive(now),
                Op::Probe { sta, src, dst, nonce, echo, junk } => {
                    let state = match sta {
                        0 => ReapState::Operational,
                        1 => ReapState::Exploring,
                        2 => ReapState::InboundOk,
                        x => ReapState::Unknown(x),
                    };
                    let report = |s: usize, d: usize, n: u32| ProbeReport { src: p[s], dst: p[d], nonce: Nonce(n), data: 0 };
                    let mut received: Vec<ProbeReport> = ours.iter().take(echo).copied().collect();
                    received.extend(junk.iter().map(|&(s, d, n)| report(s, d, n)));
                    received.truncate(MAX_REPORTS);
                    let mut sent = vec![report(src, dst, nonce)];
                    sent.extend(junk.iter().take(3).map(|&(s, d, n)| report(s, d, n)));
                    if nonce % 7 == 0 { sent.clear(); }
                    let probe = ProbeRepr { receiver_tag: tag_a(), state, sent, received };
                    m.on_probe(now, p[src], p[dst], &probe);
                }
                Op::SetLocators(l, r) => m.set_locators(now, subset(l, &p), subset(r, &p)),
                Op::Down(i) => { m.local_locator_down(now, p[i]); if !down.contains(&p[i]) { down.push(p[i]); } }
                Op::Up(i) => { m.local_locator_up(now, p[i]); down.retain(|l| *l != p[i]); }
                Op::Prefer(l, r) => { let _ = m.prefer_pair(now, pair(p[l], p[r])); }
                Op::Tka(s) => m.set_keepalive_timeout(s),
                Op::Tag(t) => { tag = ContextTag::from_wire(t); m.set_peer_tag(tag); }
            }
            // No deadline is ever armed before the input's `now`: an earlier one can only be
            // a timer that already expired and still waits for `handle_timeout`.
            for timer in ReapTimer::ALL {
                let d = m.timers.get(timer);
                prop_assert!(d.is_none_or(|t| t >= input_now) || d == before.get(timer), "{:?}", timer);
            }
            prop_assert!(m.poll_timeout() == m.timers.next_timeout());
            prop_assert!(m.footprint() <= MAX_FOOTPRINT);
            while let Some(x) = m.poll_transmit() {
                match x.body {
                    MessageBody::Keepalive { receiver_tag } => {
                        prop_assert_eq!(receiver_tag, tag);
                        prop_assert_eq!(x.pair, m.current_pair());
                    }
                    MessageBody::Probe(pr) => {
                        prop_assert_eq!(pr.receiver_tag, tag);
                        prop_assert!(!pr.sent.is_empty() && pr.sent.len() <= MAX_REPORTS);
                        prop_assert!(pr.received.len() <= MAX_REPORTS);
                        prop_assert_eq!((pr.sent[0].src, pr.sent[0].dst), (x.pair.local, x.pair.peer));
                        prop_assert!(!matches!(pr.state, ReapState::Unknown(_)));
                        prop_assert!(!down.contains(&x.pair.local), "probe from a down locator");
                        ours.insert(0, pr.sent[0]);
                        ours.truncate(8);
                    }
                    other => prop_assert!(false, "unexpected body {:?}", other),
                }
            }
            while m.poll_event().is_some() {}
        }
    }

    /// Random cuts, loss and heals on the simulated network: the harness checks every
    /// `poll_timeout` after `handle_timeout`; once everything heals, both sides recover.
    #[test]
    fn random_network_recovers_after_heal(
        seed in any::<u64>(),
        cuts in prop::collection::vec((0usize..4, 0usize..4, 0u32..60_000), 0..8),
        loss in 0.0f64..0.3,
    ) {
        let locs = [a1(), a2(), b1(), b2()];
        let mut s = Pair::new(ReapConfig::default(), seed);
        s.app(Side::A, Some(Duration::from_millis(200)));
        s.app(Side::B, Some(Duration::from_millis(300)));
        s.loss = loss;
        s.run_for(secs(2.0));
        let mut cuts = cuts;
        cuts.sort_by_key(|c| c.2);
        let start = s.now;
        for (x, y, at) in cuts {
            s.run_until(start + Duration::from_millis(u64::from(at)));
            s.cut_both(locs[x], locs[y]);
        }
        s.run_for(secs(30.0));
        s.heal();
        s.loss = 0.0;
        // Worst case: a full Max Probe Timeout before the next probe, then a few exchanges.
        s.run_for(secs(200.0));
        prop_assert_eq!(s.a.m.state(), ReapState::Operational);
        prop_assert_eq!(s.b.m.state(), ReapState::Operational);
        let recent = s.now - secs(1.0);
        prop_assert!(s.a.payload_rx.last().unwrap().0 > recent);
        prop_assert!(s.b.payload_rx.last().unwrap().0 > recent);
    }
}
