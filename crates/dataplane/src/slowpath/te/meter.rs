//! Measured traffic: bytes sent per context and per provider, from the context table's
//! per-worker counters (summed by the slow path now and then, never per packet).
//!
//! Each context's rate is an exponentially weighted average with time constant
//! `period / 4`, so a step change shows at 98 % within one rebalance period; a provider's
//! load is the sum of the rates of the contexts on it, so a move shows at once.
//!
//! Per provider the meter also keeps what was really sent: the bytes since start, and the
//! bytes since the rebalancer last reset them, fading with a time constant of
//! [`BYTES_MEMORY_PERIODS`] periods (so after a long run they still follow changes). The rebalancer compares
//! that with the target byte share (a sum of per-context averages is only an estimate: it
//! lags each context's start and end, and a move carries a context's lag to the other
//! provider, so holding it on target does not hold the bytes on target).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wire::ContextTag;

/// Time constant, in rebalance periods, with which the recent bytes fade.
const BYTES_MEMORY_PERIODS: f64 = 30.0;

/// One context as the meter sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MeteredContext {
    /// The provider the table sends it through now.
    pub(crate) provider: u16,
    /// Its counter at the last sample.
    pub(crate) last_bytes: u64,
    /// Average bytes per second.
    pub(crate) rate: f64,
    /// Chosen by a prefix rule: the rebalancer leaves it where it is (unless drained).
    pub(crate) pinned: bool,
    /// A move requested through `prefer_pair`: the provider it goes to and when to give up.
    pub(crate) moving: Option<(u16, Instant)>,
    /// Bytes were sent since the previous sample (moving an idle context changes nothing).
    pub(crate) active: bool,
}

impl MeteredContext {
    /// The provider its load counts on: the target of a move under way, else its own.
    pub(crate) fn load_provider(&self) -> u16 {
        self.moving.map_or(self.provider, |(p, _)| p)
    }
}

/// Per-provider totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProviderTotals {
    /// Bytes sent through the provider since start.
    pub(crate) bytes: u64,
    /// Bytes sent through it since [`Meter::reset_recent`], fading (see the module docs).
    pub(crate) recent: f64,
}

/// The traffic meter.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    pub(crate) contexts: HashMap<ContextTag, MeteredContext>,
    pub(crate) totals: HashMap<u16, ProviderTotals>,
    last: Option<Instant>,
    /// [`actual_loads`](Self::actual_loads) as of the last sample (a new communication's
    /// choice reads it: no walk over every context per handshake).
    actual: HashMap<u16, f64>,
    /// Moves confirmed (the table's provider became the target).
    pub(crate) moves_done: u64,
    /// Moves given up (REAP did not confirm the pair within two periods).
    pub(crate) moves_expired: u64,
}

impl Meter {
    /// One sample at `now`: `(tag, provider, bytes sent so far)` for every context in the
    /// table; contexts missing from `seen` are forgotten; `pinned` says which ones a rule
    /// chose. Bytes seen at the very first sample count in the totals only (no interval to
    /// average them over).
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        period: Duration,
        seen: impl IntoIterator<Item = (ContextTag, u16, u64)>,
        pinned: impl Fn(ContextTag) -> bool,
    ) {
        let dt = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        let tau = (period.as_secs_f64() / 4.0).max(1e-3);
        // Weight of the new observation in the average: 1 - e^(-dt/tau).
        let alpha = if dt > 0.0 {
            1.0 - (-dt / tau).exp()
        } else {
            0.0
        };
        let mut alive = std::collections::HashSet::new();
        let mut sent: HashMap<u16, u64> = HashMap::new();
        for (tag, provider, bytes) in seen {
            alive.insert(tag);
            let c = self.contexts.entry(tag).or_insert_with(|| MeteredContext {
                provider,
                last_bytes: 0,
                rate: 0.0,
                pinned: pinned(tag),
                moving: None,
                active: false,
            });
            let delta = bytes.saturating_sub(c.last_bytes);
            c.last_bytes = bytes;
            c.active = delta > 0;
            // Bytes counted since the last sample went out of the provider the table had
            // then (a move in between misattributes at most one interval).
            self.totals.entry(c.provider).or_default().bytes += delta;
            *sent.entry(c.provider).or_default() += delta;
            if dt > 0.0 {
                c.rate += alpha * (delta as f64 / dt - c.rate);
            }
            c.provider = provider;
            if let Some((target, until)) = c.moving {
                if provider == target {
                    c.moving = None;
                    self.moves_done += 1;
                } else if now >= until {
                    c.moving = None;
                    self.moves_expired += 1;
                }
            }
        }
        self.contexts.retain(|t, _| alive.contains(t));
        let keep = (-dt / (BYTES_MEMORY_PERIODS * 4.0 * tau)).exp();
        for (id, t) in &mut self.totals {
            t.recent = t.recent * keep + sent.get(id).copied().unwrap_or(0) as f64;
        }
        let mut actual: HashMap<u16, f64> = HashMap::new();
        for c in self.contexts.values() {
            *actual.entry(c.provider).or_default() += c.rate;
        }
        self.actual = actual;
    }

    /// Bytes really sent per provider since [`reset_recent`](Self::reset_recent) (fading).
    pub(crate) fn recent_bytes(&self) -> HashMap<u16, f64> {
        self.totals.iter().map(|(id, t)| (*id, t.recent)).collect()
    }

    /// Starts counting [`recent_bytes`](Self::recent_bytes) again from zero.
    pub(crate) fn reset_recent(&mut self) {
        for t in self.totals.values_mut() {
            t.recent = 0.0;
        }
    }

    /// Current load per provider (bytes/s), moves under way counted at their target.
    pub(crate) fn loads(&self) -> HashMap<u16, f64> {
        let mut l: HashMap<u16, f64> = HashMap::new();
        for c in self.contexts.values() {
            *l.entry(c.load_provider()).or_default() += c.rate;
        }
        l
    }

    /// Current load per provider (bytes/s) where the traffic actually goes now (moves under
    /// way not counted at their target: a move REAP has not confirmed may never happen).
    /// Rates and providers change only at a sample, so this is the value computed then.
    pub(crate) fn actual_loads(&self) -> &HashMap<u16, f64> {
        &self.actual
    }

    /// Contexts per provider (moves under way counted at their target).
    pub(crate) fn counts(&self) -> HashMap<u16, usize> {
        let mut n: HashMap<u16, usize> = HashMap::new();
        for c in self.contexts.values() {
            *n.entry(c.load_provider()).or_default() += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(v: u64) -> ContextTag {
        ContextTag::new(v).unwrap()
    }

    #[test]
    fn rates_follow_the_counters_and_totals_add_up() {
        let mut m = Meter::default();
        let t0 = Instant::now();
        let period = Duration::from_secs(4);
        m.sample(t0, period, [(tag(1), 1, 0), (tag(2), 2, 500)], |_| false);
        // Past bytes count towards the totals, not the rate.
        assert_eq!(m.totals[&2].bytes, 500);
        assert_eq!(m.contexts[&tag(2)].rate, 0.0);
        // 1 MB/s on context 1 for 4 s (one period): the average is within 2 % of it.
        let mut bytes = 0;
        for i in 1..=40 {
            bytes += 100_000;
            m.sample(
                t0 + Duration::from_millis(100 * i),
                period,
                [(tag(1), 1, bytes), (tag(2), 2, 500)],
                |_| false,
            );
        }
        let r = m.contexts[&tag(1)].rate;
        assert!((r - 1e6).abs() / 1e6 < 0.02, "rate {r}");
        assert_eq!(m.totals[&1].bytes, 4_000_000);
        let loads = m.loads();
        assert!((loads[&1] - r).abs() < 1e-6);
        assert_eq!(loads[&2], 0.0);
        // A context that left the table is forgotten.
        m.sample(
            t0 + Duration::from_secs(5),
            period,
            [(tag(1), 1, bytes)],
            |_| false,
        );
        assert!(!m.contexts.contains_key(&tag(2)));
        assert_eq!(m.counts()[&1], 1);
    }

    #[test]
    fn moves_are_confirmed_or_expire() {
        let mut m = Meter::default();
        let t0 = Instant::now();
        let p = Duration::from_secs(1);
        m.sample(t0, p, [(tag(1), 1, 0), (tag(2), 1, 0)], |t| t == tag(2));
        assert!(m.contexts[&tag(2)].pinned && !m.contexts[&tag(1)].pinned);
        for t in [tag(1), tag(2)] {
            m.contexts.get_mut(&t).unwrap().moving = Some((2, t0 + p));
        }
        assert_eq!(m.counts()[&2], 2);
        m.sample(t0 + p / 2, p, [(tag(1), 2, 0), (tag(2), 1, 0)], |_| false);
        assert_eq!(m.contexts[&tag(1)].moving, None);
        assert!(m.contexts[&tag(2)].moving.is_some());
        m.sample(t0 + p, p, [(tag(1), 2, 0), (tag(2), 1, 0)], |_| false);
        assert_eq!(m.contexts[&tag(2)].moving, None);
        assert_eq!((m.moves_done, m.moves_expired), (1, 1));
    }
}
