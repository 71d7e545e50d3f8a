//! Each policy and the rebalancer on simulated time: contexts are `(tag, provider, rate)`,
//! their counters advance by `rate × dt`, and a confirmed move is the table's provider
//! becoming the target at the next sample (as `PairChanged` does).

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use wire::{ContextTag, Ulid};

use super::*;

fn tag(v: u64) -> ContextTag {
    ContextTag::new(v).unwrap()
}

fn ulid(s: &str) -> Ulid {
    Ulid(s.parse::<Ipv6Addr>().unwrap())
}

/// 50 moves a second at most, every 2 s.
fn weighted(a: u32, b: u32) -> TePolicy {
    let mut p = TePolicy::weighted(&[(1, a), (2, b)]);
    p.rebalance.period_ms = 2000;
    p.rebalance.max_moves_per_sec = 50;
    p
}

/// Simulated contexts: rate (bytes/s), provider, counter.
struct Sim {
    te: TrafficEngineer,
    now: Instant,
    ctx: HashMap<ContextTag, (f64, u16, u64)>,
    /// Moves take effect one step later (REAP confirmation); refused: to a provider in here.
    broken: Vec<u16>,
    pending: Vec<Move>,
    sent: HashMap<u16, f64>,
}

impl Sim {
    fn new(policy: TePolicy) -> Self {
        let now = Instant::now();
        let mut te = TrafficEngineer::new(&[(1, true), (2, true)], now);
        te.set_policy(policy, now).unwrap();
        Self {
            te,
            now,
            ctx: HashMap::new(),
            broken: Vec::new(),
            pending: Vec::new(),
            sent: HashMap::new(),
        }
    }

    fn add(&mut self, t: u64, rate: f64, provider: u16) {
        self.ctx.insert(tag(t), (rate, provider, 0));
    }

    /// Advances `dt` in steps of 100 ms: counters grow, moves land, the rebalancer runs.
    fn run(&mut self, dt: Duration) {
        let step = Duration::from_millis(100);
        let mut left = dt;
        while left > Duration::ZERO {
            self.now += step;
            left = left.saturating_sub(step);
            for m in self.pending.drain(..) {
                if let Some(c) = self.ctx.get_mut(&m.tag) {
                    c.1 = m.to;
                }
            }
            for (rate, p, bytes) in self.ctx.values_mut() {
                let b = *rate * step.as_secs_f64();
                *bytes += b as u64;
                *self.sent.entry(*p).or_default() += b;
            }
            let seen: Vec<_> = self
                .ctx
                .iter()
                .map(|(t, (_, p, b))| (*t, ulid("fc00::1"), ulid("fc00::2"), *p, *b))
                .collect();
            self.te.sample(self.now, seen);
            for m in self.te.rebalance(self.now) {
                if self.broken.contains(&m.to) {
                    self.te.move_refused(m.tag);
                } else {
                    self.pending.push(m);
                }
            }
        }
    }

    fn share(&self, p: u16) -> f64 {
        let total: f64 = self.sent.values().sum();
        self.sent.get(&p).copied().unwrap_or(0.0) / total
    }

    fn rate_share(&self, p: u16) -> f64 {
        let total: f64 = self.ctx.values().map(|c| c.0).sum();
        self.ctx
            .values()
            .filter(|c| c.1 == p)
            .map(|c| c.0)
            .sum::<f64>()
            / total
    }

    fn reset_sent(&mut self) {
        self.sent.clear();
    }
}

#[test]
fn weighted_choice_follows_the_shares_by_count() {
    let mut te = TrafficEngineer::new(&[(1, true), (2, true)], Instant::now());
    te.set_policy(weighted(70, 30), Instant::now()).unwrap();
    let mut n = [0; 3];
    for _ in 0..1000 {
        let p = te.choose(ulid("fc00::1"), ulid("fc00::2")).unwrap();
        n[usize::from(p)] += 1;
    }
    assert_eq!((n[1], n[2]), (700, 300));
    // Smooth: never more than 3 in a row on provider 1 for 70/30.
    let seq: Vec<u16> = (0..10)
        .map(|_| te.choose(ulid("fc00::1"), ulid("fc00::2")).unwrap())
        .collect();
    assert_eq!(seq.iter().filter(|&&p| p == 2).count(), 3, "{seq:?}");
}

#[test]
fn weighted_choice_skips_an_overloaded_provider_and_a_drained_one() {
    let mut s = Sim::new(weighted(50, 50));
    s.te.set_policy(
        TePolicy {
            rebalance: RebalanceConfig {
                enabled: false,
                ..RebalanceConfig::default()
            },
            ..weighted(50, 50)
        },
        s.now,
    )
    .unwrap();
    // Everything measured is on provider 1: new contexts all go to 2.
    s.add(1, 1e6, 1);
    s.run(Duration::from_secs(2));
    for _ in 0..5 {
        assert_eq!(s.te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(2));
    }
    s.te.drain(2, s.now).unwrap();
    assert_eq!(s.te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(1));
    // The last usable provider cannot be drained.
    assert_eq!(s.te.drain(1, s.now), Err(TeError::LastProvider(1)));
    assert_eq!(s.te.drain(9, s.now), Err(TeError::UnknownProvider(9)));
    s.te.undrain(2, s.now).unwrap();
    assert_eq!(s.te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(2));
}

#[test]
fn first_up_leaves_the_choice_to_the_engine_unless_its_choice_is_drained() {
    let now = Instant::now();
    let mut te = TrafficEngineer::new(&[(1, true), (2, true)], now);
    assert_eq!(te.choose(ulid("fc00::1"), ulid("fc00::2")), None);
    te.drain(1, now).unwrap();
    assert_eq!(te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(2));
    assert_eq!(te.ingress_preferences(), vec![(1, DRAINED_PRIORITY, 0)]);
    te.set_up(1, false);
    te.undrain(1, now).unwrap();
    // Provider 1 down: the engine picks 2 by itself.
    assert_eq!(te.choose(ulid("fc00::1"), ulid("fc00::2")), None);
}

#[test]
fn prefix_rules_win_and_pin_their_contexts() {
    let mut p = weighted(100, 0);
    p.weights[1].weight = 1;
    p.rules.push(PrefixRule {
        destination: Some("fc00:99::/32".parse().unwrap()),
        inside: None,
        provider: 2,
    });
    p.rules.push(PrefixRule {
        destination: None,
        inside: Some("fc00:1:1:7::/64".parse().unwrap()),
        provider: 2,
    });
    let mut s = Sim::new(p);
    let (l, peer) = (ulid("fc00::1"), ulid("fc00:99::5"));
    assert_eq!(s.te.choose(l, peer), Some(2));
    assert_eq!(s.te.choose(ulid("fc00:1:1:7::3"), ulid("fc00::2")), Some(2));
    // Feed the pinned context (the rule's pair) and an ordinary one, both on 2: the
    // rebalancer (target 100/1 → provider 1) moves only the ordinary one.
    s.te.sample(
        s.now,
        [(tag(1), l, peer, 2, 0), (tag(2), l, ulid("fc00::2"), 2, 0)],
    );
    s.ctx.insert(tag(1), (1e6, 2, 0));
    s.ctx.insert(tag(2), (1e6, 2, 0));
    s.run(Duration::from_secs(3));
    assert_eq!(s.ctx[&tag(1)].1, 2, "pinned context moved");
    assert_eq!(s.ctx[&tag(2)].1, 1);
    // A rule towards a drained provider falls through to the split.
    s.te.drain(2, s.now).unwrap();
    assert_eq!(s.te.choose(l, peer), Some(1));
}

#[test]
fn cheapest_first_overflows_above_the_threshold_and_comes_back() {
    let p = TePolicy {
        mode: SplitMode::CheapestFirst,
        cheapest: vec![2, 1],
        overflow_mbps: 80.0, // 10 MB/s
        rebalance: RebalanceConfig {
            enabled: true,
            period_ms: 1000,
            max_moves_per_sec: 100,
        },
        ..TePolicy::default()
    };
    let mut frozen = p.clone();
    frozen.rebalance.enabled = false;
    let mut s = Sim::new(frozen);
    assert_eq!(s.te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(2));
    // 8 contexts of 2 MB/s on the cheap provider: 16 MB/s, 6 above the limit.
    for t in 1..=8 {
        s.add(t, 2e6, 2);
    }
    s.run(Duration::from_secs(1));
    // Above the limit, new communications overflow to provider 1.
    assert_eq!(s.te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(1));
    // The rebalancer sheds the excess to provider 1.
    s.te.set_policy(p, s.now).unwrap();
    s.run(Duration::from_secs(3));
    let on2: f64 = s.ctx.values().filter(|c| c.1 == 2).map(|c| c.0).sum();
    assert!((8e6..=10e6).contains(&on2), "cheap provider carries {on2}");
    // Traffic on the cheap one drops: contexts come back while they fit under 90 %.
    for c in s.ctx.values_mut() {
        if c.1 == 2 {
            c.0 = 0.5e6;
        }
    }
    s.run(Duration::from_secs(4));
    let on1 = s.ctx.values().filter(|c| c.1 == 1).count();
    let on2: f64 = s.ctx.values().filter(|c| c.1 == 2).map(|c| c.0).sum();
    assert!(on1 < 3, "{on1} contexts left on the expensive provider");
    assert!(on2 <= 9e6, "{on2}");
    assert_eq!(s.te.choose(ulid("fc00::1"), ulid("fc00::2")), Some(2));
}

/// Heavy-tailed rates (Pareto, α = 1.2), deterministic.
fn pareto(n: u64, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((x >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 2.0);
            (1e4 * u.powf(-1.0 / 1.2)).min(2e6)
        })
        .collect()
}

#[test]
fn rebalancer_converges_to_weights_and_follows_a_live_change() {
    let mut s = Sim::new(weighted(70, 30));
    // 500 contexts all on provider 1 (e.g. established before the policy).
    for (i, r) in pareto(500, 7).into_iter().enumerate() {
        s.add(i as u64 + 1, r, 1);
    }
    s.run(Duration::from_secs(2)); // one period
    let r1 = s.rate_share(1);
    assert!((r1 - 0.7).abs() <= 0.01, "rate share {r1} after one period");
    s.reset_sent();
    s.run(Duration::from_secs(4));
    assert!(
        (s.share(1) - 0.7).abs() <= 0.02,
        "byte share {}",
        s.share(1)
    );
    // Live change to 50/50: converged within the period.
    s.te.set_policy(weighted(50, 50), s.now).unwrap();
    s.run(Duration::from_secs(2));
    let r1 = s.rate_share(1);
    assert!(
        (r1 - 0.5).abs() <= 0.01,
        "rate share {r1} one period after the change"
    );
    s.reset_sent();
    s.run(Duration::from_secs(4));
    assert!(
        (s.share(1) - 0.5).abs() <= 0.02,
        "byte share {}",
        s.share(1)
    );
    let v = s.te.view();
    assert!(v.moves_done > 0 && v.moves_requested == v.moves_done + v.moves_pending as u64);
    assert_eq!(v.moves_expired + v.moves_refused, 0);
}

#[test]
fn moves_are_rate_limited() {
    let mut p = weighted(50, 50);
    p.rebalance.max_moves_per_sec = 10;
    let mut s = Sim::new(p);
    for t in 1..=200 {
        s.add(t, 1e4, 1);
    }
    s.run(Duration::from_secs(3));
    let v = s.te.view();
    // A one-second burst of 10, then 10 a second: at most 40 in 3 s.
    assert!(v.moves_requested <= 40, "{} moves", v.moves_requested);
    assert!(v.moves_requested >= 25, "{} moves", v.moves_requested);
}

#[test]
fn drain_moves_everything_off_and_refusals_leave_contexts_in_place() {
    let mut s = Sim::new(weighted(50, 50));
    for t in 1..=40 {
        s.add(t, 1e5, if t % 2 == 0 { 1 } else { 2 });
    }
    s.run(Duration::from_secs(1));
    s.te.drain(1, s.now).unwrap();
    s.run(Duration::from_secs(2));
    assert!(
        s.ctx.values().all(|c| c.1 == 2),
        "contexts left on a drained provider"
    );
    let v = s.te.view();
    assert!(v.providers[0].drained && v.providers[0].contexts == 0);
    assert_eq!(v.providers[1].contexts, 40);
    // Weights renormalised over the usable providers: nothing moves back while drained.
    let before = v.moves_requested;
    s.run(Duration::from_secs(2));
    assert_eq!(s.te.view().moves_requested, before);
    // Undrain: balanced again; moves to a provider the engine refuses are counted, and the
    // contexts stay where they are (they do not break).
    s.broken.push(1);
    s.te.undrain(1, s.now).unwrap();
    s.run(Duration::from_secs(1));
    assert!(s.ctx.values().all(|c| c.1 == 2));
    assert!(s.te.view().moves_refused > 0);
    s.broken.clear();
    s.run(Duration::from_secs(4));
    let r1 = s.rate_share(1);
    assert!((r1 - 0.5).abs() <= 0.01, "{r1}");
}

#[test]
fn view_reports_byte_and_rate_shares() {
    let mut s = Sim::new(weighted(70, 30));
    s.te.set_policy(
        TePolicy {
            rebalance: RebalanceConfig {
                enabled: false,
                ..RebalanceConfig::default()
            },
            ..weighted(70, 30)
        },
        s.now,
    )
    .unwrap();
    s.add(1, 3e6, 1);
    s.add(2, 1e6, 2);
    s.run(Duration::from_secs(10));
    let v = s.te.view();
    let p1 = &v.providers[0];
    assert!((p1.byte_share - 0.75).abs() < 0.01, "{p1:?}");
    assert!((p1.rate_share - 0.75).abs() < 0.01, "{p1:?}");
    assert!((p1.rate_mbps - 24.0).abs() < 0.5, "{p1:?}");
    assert_eq!(p1.target_share, Some(0.7));
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["providers"][1]["id"], 2);
    assert_eq!(j["policy"]["mode"], "weighted");
}

/// The TE simulation on simulated time, through the same `choose` / `sample` /
/// `rebalance` the slow path runs: 10,000 communications with Pareto(α = 1.3) sizes arrive
/// over 40 s, each sends at 100 kB/s until done; a move lands 300 ms after it is requested
/// (REAP's probe exchange). Byte shares are measured by what was sent on each provider.
#[test]
fn ten_thousand_heavy_tailed_communications_on_simulated_time() {
    let period = Duration::from_secs(2);
    let mut p = weighted(70, 30);
    p.rebalance.period_ms = 2000;
    p.rebalance.max_moves_per_sec = 200;
    let t0 = Instant::now();
    let mut te = TrafficEngineer::new(&[(1, true), (2, true)], t0);
    te.set_policy(p, t0).unwrap();
    let n = 10_000u64;
    let sizes = pareto(n, 2026); // bytes/s-scale samples reused as sizes (10 kB .. 2 MB)
    let step = Duration::from_millis(50);
    let rate = 100_000.0; // bytes/s per communication
    /// Provider, bytes sent, size, move landing at (instant, provider).
    type Live = (u16, u64, u64, Option<(Instant, u16)>);
    let mut live: HashMap<ContextTag, Live> = HashMap::new();
    let mut sent = [0.0f64; 3];
    let mut marks = Vec::new();
    let mut now = t0;
    let mut next = 0u64;
    let end = t0 + Duration::from_secs(44);
    let change = t0 + Duration::from_secs(20);
    let mut changed = false;
    while now < end {
        now += step;
        if !changed && now >= change {
            marks.push(sent);
            te.set_policy(weighted(50, 50), now).unwrap();
            changed = true;
        }
        if marks.is_empty() && now >= t0 + period {
            marks.push(sent);
        }
        if marks.len() == 2 && now >= change + period {
            marks.push(sent);
        }
        // Arrivals: 10,000 over 40 s.
        while next < n && t0 + Duration::from_millis(next * 4) <= now {
            let (l, pr) = (ulid("fc00:1::1"), ulid("fc00:2::1"));
            let prov = te.choose(l, pr).unwrap_or(1);
            live.insert(tag(next + 1), (prov, 0, sizes[next as usize] as u64, None));
            next += 1;
        }
        for (p, bytes, size, mv) in live.values_mut() {
            if let Some((at, to)) = *mv {
                if at <= now {
                    *p = to;
                    *mv = None;
                }
            }
            let b = ((rate * step.as_secs_f64()) as u64).min(*size - *bytes);
            *bytes += b;
            sent[usize::from(*p)] += b as f64;
        }
        let seen: Vec<_> = live
            .iter()
            .map(|(t, (p, b, _, _))| (*t, ulid("fc00:1::1"), ulid("fc00:2::1"), *p, *b))
            .collect();
        te.sample(now, seen);
        for m in te.rebalance(now) {
            if let Some(c) = live.get_mut(&m.tag) {
                c.3 = Some((now + Duration::from_millis(300), m.to));
            }
        }
        // Finished communications leave (their last bytes were sampled above).
        live.retain(|_, (_, b, s, _)| *b < *s);
    }
    let share = |a: [f64; 3], b: [f64; 3]| (b[1] - a[1]) / ((b[1] - a[1]) + (b[2] - a[2]));
    let s70 = share(marks[0], marks[1]);
    let s50 = share(marks[2], sent);
    assert!(
        (s70 - 0.7).abs() <= 0.02,
        "70/30 phase: provider 1 carried {s70}"
    );
    assert!(
        (s50 - 0.5).abs() <= 0.02,
        "50/50 phase: provider 1 carried {s50}"
    );
    assert!(te.view().moves_done > 0);
}
