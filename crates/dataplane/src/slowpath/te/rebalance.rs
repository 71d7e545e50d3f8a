//! The rebalancer: which live contexts to move where, from the measured rates, rate-limited
//! by a token bucket of `max_moves_per_sec`. It runs every tenth of the rebalance period.
//!
//! 1. **Drain** first: every context on a drained provider goes to the provider the policy
//!    would pick (rules included: a pinned context moves too).
//! 2. **Weighted**: while some provider's rate share is off its target by more than half the
//!    tolerance, move from the most loaded (relative to target) to the least loaded the
//!    context whose rate is closest to the excess (never one so big the error grows).
//!    Half the tolerance, so that the share measured over time stays inside it. The target
//!    is trimmed by byte feedback: from one period after the targets change, by
//!    [`TRIM_GAIN`] × (target − share of the bytes really sent since), within ± twice the
//!    tolerance. The rates are
//!    estimates (per-context averages lag starts and ends, and a move carries that lag to
//!    the other provider): without the trim, a rate share held at 70 % gave 67 % of the
//!    bytes through the pipeline.
//! 3. **Cheapest-first**: a provider above its overflow rate sheds contexts to the next one;
//!    one below 90 % of it takes contexts back from the more expensive ones while they fit.
//!
//! A move counts at its target at once (the meter's `moving`), so one step never moves the
//! same load twice while REAP confirms the new pair.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wire::ContextTag;

use super::{SplitMode, TrafficEngineer};

/// One decided move: context `tag` to provider `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// CT(local) of the context.
    pub tag: ContextTag,
    /// Provider id it should use.
    pub to: u16,
}

/// Gain of the byte feedback: a byte share 1 point under target since the targets settled
/// raises the target of the rate balance by 4 points. The byte share since then is the
/// integral of the error, so a steady bias of the rate estimate leaves a fifth of itself.
pub(crate) const TRIM_GAIN: f64 = 4.0;

/// Fraction of the overflow rate under which cheapest-first takes contexts back (hysteresis).
const BACKFILL: f64 = 0.9;

impl TrafficEngineer {
    /// The moves to request now (empty between steps). The caller turns each into a
    /// `prefer_pair` and reports refusals with [`move_refused`](Self::move_refused).
    pub fn rebalance(&mut self, now: Instant) -> Vec<Move> {
        if now < self.next_step {
            return Vec::new();
        }
        let period = self.period();
        self.next_step = now + (period / 10).max(Duration::from_millis(10));
        let mut out = Vec::new();
        self.evacuate(now, period, &mut out);
        if !self.policy.rebalance.enabled {
            return out;
        }
        match self.policy.mode {
            SplitMode::FirstUp => {}
            SplitMode::Weighted => self.balance_weighted(now, period, &mut out),
            SplitMode::CheapestFirst => self.balance_cheapest(now, period, &mut out),
        }
        out
    }

    fn start_move(&mut self, tag: ContextTag, to: u16, until: Instant, out: &mut Vec<Move>) {
        if let Some(c) = self.meter.contexts.get_mut(&tag) {
            c.moving = Some((to, until));
            self.moves_requested += 1;
            out.push(Move { tag, to });
        }
    }

    /// Targets renormalised over the usable providers (a drained provider's share goes to
    /// the others in proportion).
    fn usable_targets(&self) -> Vec<(u16, f64)> {
        let t: Vec<(u16, f64)> = self
            .policy
            .target_shares()
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, _)| self.usable(*id))
            .collect();
        let sum: f64 = t.iter().map(|x| x.1).sum();
        if sum <= 0.0 {
            return Vec::new();
        }
        t.into_iter().map(|(id, w)| (id, w / sum)).collect()
    }

    /// Where a context leaving a drained provider goes.
    fn evacuation_target(&self, loads: &HashMap<u16, f64>) -> Option<u16> {
        match self.policy.mode {
            SplitMode::Weighted => {
                let total: f64 = loads.values().sum();
                self.usable_targets()
                    .into_iter()
                    .map(|(id, w)| (id, w * total - loads.get(&id).copied().unwrap_or(0.0)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|x| x.0)
            }
            SplitMode::CheapestFirst => self.choose_cheapest(loads),
            SplitMode::FirstUp => self
                .providers
                .iter()
                .find(|p| p.up && !p.drained)
                .map(|p| p.id),
        }
    }

    fn evacuate(&mut self, now: Instant, period: Duration, out: &mut Vec<Move>) {
        let drained: Vec<u16> = self
            .providers
            .iter()
            .filter(|p| p.drained)
            .map(|p| p.id)
            .collect();
        if drained.is_empty() {
            return;
        }
        let mut leaving: Vec<(ContextTag, f64)> = self
            .meter
            .contexts
            .iter()
            .filter(|(_, c)| c.moving.is_none() && drained.contains(&c.provider))
            .map(|(t, c)| (*t, c.rate))
            .collect();
        // Busiest first: they matter most; ties by tag for a repeatable order.
        leaving.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut loads = self.meter.loads();
        for (tag, rate) in leaving {
            let Some(to) = self.evacuation_target(&loads) else {
                return;
            };
            if !self.bucket.take(now) {
                return;
            }
            if let Some(from) = self.meter.contexts.get(&tag).map(|c| c.provider) {
                *loads.entry(from).or_default() -= rate;
            }
            *loads.entry(to).or_default() += rate;
            self.start_move(tag, to, now + 2 * period, out);
        }
    }

    /// The usable targets trimmed by the byte feedback: from one period after the targets
    /// last changed, each gets [`TRIM_GAIN`] × (target − its share of the bytes really sent
    /// since then), within ± twice the tolerance.
    fn trimmed_targets(&mut self, now: Instant) -> Vec<(u16, f64)> {
        let base = self.usable_targets();
        if now < self.trim_from {
            return base;
        }
        if !self.trim_started {
            self.trim_started = true;
            self.meter.reset_recent();
            return base;
        }
        let sent = self.meter.recent_bytes();
        let total: f64 = base
            .iter()
            .map(|(id, _)| sent.get(id).copied().unwrap_or(0.0))
            .sum();
        let tol = self.policy.tolerance_pct / 100.0;
        if total > 0.0 {
            for &(id, w) in &base {
                let share = sent.get(&id).copied().unwrap_or(0.0) / total;
                self.trim
                    .insert(id, (TRIM_GAIN * (w - share)).clamp(-2.0 * tol, 2.0 * tol));
            }
        }
        let trimmed: Vec<(u16, f64)> = base
            .iter()
            .map(|&(id, w)| {
                (
                    id,
                    (w + self.trim.get(&id).copied().unwrap_or(0.0)).max(0.0),
                )
            })
            .collect();
        let sum: f64 = trimmed.iter().map(|x| x.1).sum();
        if sum <= 0.0 {
            return base;
        }
        trimmed.into_iter().map(|(id, w)| (id, w / sum)).collect()
    }

    fn balance_weighted(&mut self, now: Instant, period: Duration, out: &mut Vec<Move>) {
        let targets = self.trimmed_targets(now);
        if targets.len() < 2 {
            return;
        }
        let mut loads = self.meter.loads();
        let total: f64 = targets
            .iter()
            .map(|(id, _)| loads.get(id).copied().unwrap_or(0.0))
            .sum();
        if total <= 0.0 {
            return;
        }
        let act = self.policy.tolerance_pct / 100.0 / 2.0;
        let mut pool = Pool::new(self);
        loop {
            let errs: Vec<(u16, f64)> = targets
                .iter()
                .map(|&(id, w)| (id, loads.get(&id).copied().unwrap_or(0.0) / total - w))
                .collect();
            let (Some(&(over, eo)), Some(&(under, eu))) = (
                errs.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
                errs.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            ) else {
                return;
            };
            if eo <= act && eu >= -act {
                return;
            }
            let excess = eo.min(-eu) * total;
            // Moving twice the excess or more would make the error larger than it is.
            let Some((tag, rate)) = pool.take(over, excess, 2.0 * excess) else {
                return;
            };
            if !self.bucket.take(now) {
                return;
            }
            *loads.entry(over).or_default() -= rate;
            *loads.entry(under).or_default() += rate;
            self.start_move(tag, under, now + 2 * period, out);
        }
    }

    fn balance_cheapest(&mut self, now: Instant, period: Duration, out: &mut Vec<Move>) {
        let limit = self.policy.overflow_mbps * 1e6 / 8.0;
        let order: Vec<u16> = self
            .policy
            .cheapest
            .iter()
            .copied()
            .filter(|&id| self.usable(id))
            .collect();
        let mut loads = self.meter.loads();
        let mut pool = Pool::new(self);
        for (i, &p) in order.iter().enumerate() {
            let Some(&next) = order.get(i + 1) else {
                return;
            };
            // Shed what is above the limit to the next provider in cost order.
            loop {
                let load = loads.get(&p).copied().unwrap_or(0.0);
                if load <= limit {
                    break;
                }
                let excess = load - limit;
                let Some((tag, rate)) = pool
                    .take(p, excess, excess)
                    .or_else(|| pool.take(p, excess, f64::INFINITY))
                else {
                    break;
                };
                if !self.bucket.take(now) {
                    return;
                }
                *loads.entry(p).or_default() -= rate;
                *loads.entry(next).or_default() += rate;
                self.start_move(tag, next, now + 2 * period, out);
            }
            // Take back from the more expensive ones what fits under the hysteresis mark.
            for &q in &order[i + 1..] {
                loop {
                    let room = limit * BACKFILL - loads.get(&p).copied().unwrap_or(0.0);
                    if room <= 0.0 {
                        break;
                    }
                    let Some((tag, rate)) = pool.take(q, room, room) else {
                        break;
                    };
                    if !self.bucket.take(now) {
                        return;
                    }
                    *loads.entry(q).or_default() -= rate;
                    *loads.entry(p).or_default() += rate;
                    self.start_move(tag, p, now + 2 * period, out);
                }
            }
        }
    }
}

/// The contexts a step may move, per provider, sorted by rate: built once per step, so each
/// move costs a binary search rather than a pass over every context.
struct Pool(HashMap<u16, Vec<(f64, ContextTag)>>);

impl Pool {
    /// Contexts not pinned by a rule, not already moving, sending now.
    fn new(te: &TrafficEngineer) -> Self {
        let mut m: HashMap<u16, Vec<(f64, ContextTag)>> = HashMap::new();
        for (tag, c) in &te.meter.contexts {
            if c.moving.is_none() && !c.pinned && c.active && c.rate > 0.0 {
                m.entry(c.provider).or_default().push((c.rate, *tag));
            }
        }
        for v in m.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        Self(m)
    }

    /// Takes the context on `from` whose rate is closest to `target` among those below
    /// `limit`.
    fn take(&mut self, from: u16, target: f64, limit: f64) -> Option<(ContextTag, f64)> {
        let v = self.0.get_mut(&from)?;
        let end = v.partition_point(|x| x.0 < limit);
        if end == 0 {
            return None;
        }
        let i = v.get(..end)?.partition_point(|x| x.0 < target);
        let above = (i < end).then_some(i);
        let below = i.checked_sub(1);
        let pick = match (below, above) {
            (Some(b), Some(a)) => {
                let (rb, ra) = (v.get(b)?.0, v.get(a)?.0);
                if target - rb <= ra - target {
                    b
                } else {
                    a
                }
            }
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => return None,
        };
        let (rate, tag) = v.remove(pick);
        Some((tag, rate))
    }
}
