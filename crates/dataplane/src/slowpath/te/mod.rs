//! Traffic engineering (issue #8): which provider a new communication uses, and which live
//! contexts move, so that measured bytes follow the operator's [`TePolicy`].
//!
//! - **New communications** ([`TrafficEngineer::choose`]): a matching prefix rule; else the
//!   split mode: weighted (smooth weighted round-robin over the providers' target shares,
//!   skipping a provider already above its share by more than the tolerance), cheapest-first
//!   (the first provider in cost order under its overflow rate) or the engine's default.
//!   The engine sources the handshake from that provider's locator (`connect_via`), so the
//!   context starts on it.
//! - **Rebalancing** ([`rebalance`](self)): every tenth of the rebalance period the measured
//!   rates ([`meter`](self)) are compared with the target and live contexts are moved through
//!   the engine's "policy prefers pair" input (`prefer_pair`, REAP confirms the new pair
//!   before traffic moves, [RFC 5534 §5](https://www.rfc-editor.org/rfc/rfc5534#section-5)),
//!   at most `max_moves_per_sec`.
//! - **Drain**: a drained provider is never chosen, and every context on it is moved off
//!   (first, before any balancing move); its locators are advertised with the worst priority
//!   so peers stop choosing them too. Contexts never break: a move that REAP cannot confirm
//!   leaves the context where it was.
//! - **Ingress**: the policy's priorities and weights go into the Locator Preferences we
//!   advertise ([RFC 5533 §5.15.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3)).

mod glue;
mod handle;
mod meter;
mod policy;
mod rebalance;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use wire::{ContextTag, Ulid};

pub use policy::{
    IngressPreference, Ipv6Prefix, PrefixRule, ProviderWeight, RebalanceConfig, SplitMode,
    TePolicy, TePolicyError,
};

use super::icmp::TokenBucket;
pub use handle::TeHandle;
use meter::Meter;
pub use rebalance::Move;

/// Rounds of new contexts a provider passed over for being above its share may be owed at
/// most (weighted mode): a long overload does not end in a long burst onto it.
const MAX_OWED_ROUNDS: f64 = 16.0;

/// Priority advertised for a drained provider's locators (the worst: SRV-style, lower wins).
pub const DRAINED_PRIORITY: u8 = 255;

/// Why a drain or undrain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeError {
    /// No provider with that id is configured.
    #[error("provider {0} is not configured")]
    UnknownProvider(u16),
    /// Draining it would leave no provider to move the contexts to.
    #[error("provider {0} is the last usable provider: draining it would leave none")]
    LastProvider(u16),
}

/// One provider in [`TeView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderTeView {
    /// Provider id.
    pub id: u16,
    /// Its link is up.
    pub up: bool,
    /// Drained by the operator.
    pub drained: bool,
    /// Contexts on it (moves under way counted at their target).
    pub contexts: usize,
    /// Bytes sent through it since start.
    pub bytes: u64,
    /// Share of all bytes sent since start (0 to 1).
    pub byte_share: f64,
    /// Current rate (Mbit/s, averaged over a quarter of the rebalance period).
    pub rate_mbps: f64,
    /// Share of the current rate (0 to 1).
    pub rate_share: f64,
    /// Target share in weighted mode.
    pub target_share: Option<f64>,
}

/// What traffic engineering sees and did (for `GET /v1/providers`, `/v1/te/policy`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeView {
    /// The policy in force.
    pub policy: TePolicy,
    /// Per provider, in configuration order.
    pub providers: Vec<ProviderTeView>,
    /// Moves requested from the engine since start.
    pub moves_requested: u64,
    /// Moves the table confirmed.
    pub moves_done: u64,
    /// Moves REAP did not confirm within two periods (the context stayed).
    pub moves_expired: u64,
    /// Moves the engine refused at once (e.g. locator not usable).
    pub moves_refused: u64,
    /// Moves under way.
    pub moves_pending: usize,
}

#[derive(Debug, Clone, Copy)]
struct ProviderState {
    id: u16,
    up: bool,
    drained: bool,
    /// Smooth weighted round-robin credit (weighted mode).
    credit: f64,
}

/// The traffic engineer of one slow path. Sans-IO: fed time, provider state and counters;
/// returns choices and moves.
#[derive(Debug)]
pub struct TrafficEngineer {
    policy: TePolicy,
    providers: Vec<ProviderState>,
    meter: Meter,
    /// Contexts a rule chose (not rebalanced), until the meter first sees them.
    pinned_new: HashMap<(Ulid, Ulid), u16>,
    bucket: TokenBucket,
    /// Per provider, the correction added to its target share by the rebalancer's byte
    /// feedback (proportional to target minus byte share since the targets settled).
    trim: HashMap<u16, f64>,
    /// The trim waits for one period after the targets change (the transition), then counts
    /// bytes from zero: bytes sent for the old targets say nothing about the new ones.
    trim_from: Instant,
    /// The byte count for the trim started (at `trim_from`).
    trim_started: bool,
    next_step: Instant,
    moves_requested: u64,
    moves_refused: u64,
}

impl TrafficEngineer {
    /// For providers `(id, up)` in configuration order, with the default policy.
    pub fn new(providers: &[(u16, bool)], now: Instant) -> Self {
        let policy = TePolicy::default();
        Self {
            bucket: TokenBucket::new(policy.rebalance.max_moves_per_sec, now),
            policy,
            providers: providers
                .iter()
                .map(|&(id, up)| ProviderState {
                    id,
                    up,
                    drained: false,
                    credit: 0.0,
                })
                .collect(),
            meter: Meter::default(),
            pinned_new: HashMap::new(),
            trim: HashMap::new(),
            trim_from: now,
            trim_started: false,
            next_step: now,
            moves_requested: 0,
            moves_refused: 0,
        }
    }

    /// Whether a measure-and-move step is due (every tenth of the rebalance period, and at
    /// once after a policy change or a drain).
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_step
    }

    /// Configured provider ids.
    pub fn provider_ids(&self) -> Vec<u16> {
        self.providers.iter().map(|p| p.id).collect()
    }

    /// The policy in force.
    pub fn policy(&self) -> &TePolicy {
        &self.policy
    }

    /// Replaces the policy after validating it; the rebalancer acts on it at its next step.
    pub fn set_policy(&mut self, policy: TePolicy, now: Instant) -> Result<(), TePolicyError> {
        policy.validate(&self.provider_ids())?;
        self.bucket = TokenBucket::new(policy.rebalance.max_moves_per_sec, now);
        for p in &mut self.providers {
            p.credit = 0.0;
        }
        self.policy = policy;
        self.reset_trim(now);
        self.next_step = now;
        Ok(())
    }

    /// The Locator Preferences to advertise: the policy's, with drained providers at
    /// [`DRAINED_PRIORITY`].
    pub fn ingress_preferences(&self) -> Vec<(u16, u8, u8)> {
        let mut v: Vec<(u16, u8, u8)> = Vec::new();
        for p in &self.providers {
            if p.drained {
                v.push((p.id, DRAINED_PRIORITY, 0));
            } else if let Some(i) = self.policy.ingress.iter().find(|i| i.provider == p.id) {
                v.push((p.id, i.priority, i.weight));
            }
        }
        v
    }

    /// Records a provider's link state.
    pub fn set_up(&mut self, id: u16, up: bool) {
        if let Some(p) = self.providers.iter_mut().find(|p| p.id == id) {
            p.up = up;
        }
    }

    /// Stops choosing provider `id` and moves every context off it.
    pub fn drain(&mut self, id: u16, now: Instant) -> Result<(), TeError> {
        if !self.providers.iter().any(|p| p.id == id) {
            return Err(TeError::UnknownProvider(id));
        }
        if !self.providers.iter().any(|p| p.id != id && !p.drained) {
            return Err(TeError::LastProvider(id));
        }
        if let Some(p) = self.providers.iter_mut().find(|p| p.id == id) {
            p.drained = true;
        }
        self.reset_trim(now);
        self.next_step = now;
        Ok(())
    }

    /// Makes provider `id` eligible again (contexts come back as the policy wants).
    pub fn undrain(&mut self, id: u16, now: Instant) -> Result<(), TeError> {
        let p = self
            .providers
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or(TeError::UnknownProvider(id))?;
        p.drained = false;
        self.reset_trim(now);
        self.next_step = now;
        Ok(())
    }

    /// Whether provider `id` is drained.
    pub fn is_drained(&self, id: u16) -> bool {
        self.providers.iter().any(|p| p.id == id && p.drained)
    }

    fn usable(&self, id: u16) -> bool {
        self.providers
            .iter()
            .any(|p| p.id == id && p.up && !p.drained)
    }

    /// The provider a new communication `local → peer` should use; `None` leaves the choice
    /// to the engine (first up provider).
    pub fn choose(&mut self, local: Ulid, peer: Ulid) -> Option<u16> {
        if let Some(r) = self.policy.rule_for(local.0, peer.0) {
            if self.usable(r.provider) {
                self.pinned_new.insert((local, peer), r.provider);
                return Some(r.provider);
            }
        }
        let loads = self.meter.actual_loads().clone();
        match self.policy.mode {
            SplitMode::FirstUp => {
                let first_up = self.providers.iter().find(|p| p.up)?;
                if first_up.drained {
                    self.providers
                        .iter()
                        .find(|p| p.up && !p.drained)
                        .map(|p| p.id)
                } else {
                    None
                }
            }
            SplitMode::Weighted => self.choose_weighted(&loads),
            SplitMode::CheapestFirst => self.choose_cheapest(&loads),
        }
    }

    /// Smooth weighted round-robin over the usable providers' target shares. A provider
    /// whose measured share is above its target by more than the tolerance is passed over
    /// but keeps its turn (its credit), up to [`MAX_OWED_ROUNDS`] rounds, and gets it back
    /// once it is under again: over time every provider gets its share of the new contexts.
    ///
    /// Dropping the turn instead biases the split towards equal shares: at 70/30 a turn
    /// provider 1 loses costs it 0.7 of a context on average, one provider 2 loses gains
    /// provider 1 only 0.3, and measured shares (a few heavy communications) cross the
    /// tolerance both ways. Through the pipeline that gave 67/33 of the contexts and, as
    /// new contexts' bytes show in the rate averages only after a lag, 67/33 of the bytes
    /// while the rebalancer held the measured rate share at 70/30 (49.9 % at 50/50, where
    /// the loss is symmetric).
    fn choose_weighted(&mut self, loads: &HashMap<u16, f64>) -> Option<u16> {
        // The rebalancer's targets: the policy's trimmed by its byte feedback, so that the
        // two never pull against each other.
        let targets: Vec<(u16, f64)> = self
            .policy
            .target_shares()?
            .into_iter()
            .map(|(id, w)| {
                (
                    id,
                    (w + self.trim.get(&id).copied().unwrap_or(0.0)).max(0.0),
                )
            })
            .collect();
        let total: f64 = loads.values().sum();
        let tol = self.policy.tolerance_pct / 100.0;
        let weights: Vec<Option<f64>> = self
            .providers
            .iter()
            .map(|p| {
                let w = targets.iter().find(|t| t.0 == p.id)?.1;
                (p.up && !p.drained && w > 0.0).then_some(w)
            })
            .collect();
        let over: Vec<bool> = self
            .providers
            .iter()
            .zip(&weights)
            .map(|(p, w)| {
                w.is_some_and(|w| {
                    total > 0.0 && loads.get(&p.id).copied().unwrap_or(0.0) / total > w + tol
                })
            })
            .collect();
        let sum: f64 = weights.iter().flatten().sum();
        for (p, w) in self.providers.iter_mut().zip(&weights) {
            if let Some(w) = w {
                p.credit += w;
            }
        }
        let pick = |skip_over: bool| {
            let mut best: Option<usize> = None;
            for (i, (p, w)) in self.providers.iter().zip(&weights).enumerate() {
                let ok = w.is_some() && !(skip_over && over.get(i).copied().unwrap_or(false));
                if ok && best.is_none_or(|b| p.credit > self.providers[b].credit) {
                    best = Some(i);
                }
            }
            best
        };
        // Every usable provider over its share (loads in flux): plain round-robin.
        let b = pick(true).or_else(|| pick(false))?;
        self.providers[b].credit -= sum;
        for (i, p) in self.providers.iter_mut().enumerate() {
            if i != b && weights.get(i).is_some_and(Option::is_some) {
                p.credit = p.credit.min(MAX_OWED_ROUNDS * sum);
            }
        }
        Some(self.providers[b].id)
    }

    /// The first provider in cost order whose rate is under the overflow threshold; when
    /// all are above it, the last usable one.
    fn choose_cheapest(&self, loads: &HashMap<u16, f64>) -> Option<u16> {
        let limit = self.policy.overflow_mbps * 1e6 / 8.0;
        let usable: Vec<u16> = self
            .policy
            .cheapest
            .iter()
            .copied()
            .filter(|&id| self.usable(id))
            .collect();
        usable
            .iter()
            .copied()
            .find(|id| loads.get(id).copied().unwrap_or(0.0) < limit)
            .or_else(|| usable.last().copied())
            .or_else(|| {
                // No listed provider usable: any usable one rather than a drained one.
                self.providers
                    .iter()
                    .find(|p| p.up && !p.drained)
                    .map(|p| p.id)
            })
    }

    /// A snapshot for the operator.
    pub fn view(&self) -> TeView {
        let loads = self.meter.loads();
        let counts = self.meter.counts();
        let total_bytes: u64 = self.meter.totals.values().map(|t| t.bytes).sum();
        let total_rate: f64 = loads.values().sum();
        let targets = self.policy.target_shares();
        let share = |x: f64, total: f64| if total > 0.0 { x / total } else { 0.0 };
        TeView {
            policy: self.policy.clone(),
            providers: self
                .providers
                .iter()
                .map(|p| {
                    let bytes = self.meter.totals.get(&p.id).map_or(0, |t| t.bytes);
                    let rate = loads.get(&p.id).copied().unwrap_or(0.0);
                    ProviderTeView {
                        id: p.id,
                        up: p.up,
                        drained: p.drained,
                        contexts: counts.get(&p.id).copied().unwrap_or(0),
                        bytes,
                        byte_share: share(bytes as f64, total_bytes as f64),
                        rate_mbps: rate * 8.0 / 1e6,
                        rate_share: share(rate, total_rate),
                        target_share: targets
                            .as_ref()
                            .map(|t| t.iter().find(|x| x.0 == p.id).map_or(0.0, |x| x.1)),
                    }
                })
                .collect(),
            moves_requested: self.moves_requested,
            moves_done: self.meter.moves_done,
            moves_expired: self.meter.moves_expired,
            moves_refused: self.moves_refused,
            moves_pending: self
                .meter
                .contexts
                .values()
                .filter(|c| c.moving.is_some())
                .count(),
        }
    }

    /// Feeds the contexts' counters: `(tag, local ULID, peer ULID, provider, bytes sent)`.
    pub fn sample(
        &mut self,
        now: Instant,
        seen: impl IntoIterator<Item = (ContextTag, Ulid, Ulid, u16, u64)>,
    ) {
        let period = self.period();
        let mut pinned = std::collections::HashSet::new();
        let items: Vec<(ContextTag, u16, u64)> = seen
            .into_iter()
            .map(|(tag, l, p, prov, bytes)| {
                if self.pinned_new.remove(&(l, p)).is_some() {
                    pinned.insert(tag);
                }
                (tag, prov, bytes)
            })
            .collect();
        self.meter
            .sample(now, period, items, |t| pinned.contains(&t));
    }

    /// Whether traffic engineering asked for context `tag` to move to provider `to` (so a
    /// pair change to it is a policy move, not a REAP failover).
    pub fn is_moving_to(&self, tag: ContextTag, to: u16) -> bool {
        self.meter
            .contexts
            .get(&tag)
            .is_some_and(|c| c.moving.is_some_and(|(p, _)| p == to))
    }

    /// A move the engine refused at once: the context stays, the move is forgotten.
    pub fn move_refused(&mut self, tag: ContextTag) {
        self.moves_refused += 1;
        if let Some(c) = self.meter.contexts.get_mut(&tag) {
            c.moving = None;
        }
    }

    /// The targets changed: forget the trim, start it again one period from now.
    fn reset_trim(&mut self, now: Instant) {
        self.trim.clear();
        self.trim_from = now + self.period();
        self.trim_started = false;
    }

    fn period(&self) -> Duration {
        Duration::from_millis(self.policy.rebalance.period_ms.max(1))
    }
}

#[cfg(test)]
mod tests;
