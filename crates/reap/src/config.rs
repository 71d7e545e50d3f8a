//! REAP timer configuration ([RFC 5534 §7]) and the randomisation applied to it
//! ([RFC 5534 §4.1]).
//!
//! [RFC 5534 §7]: https://www.rfc-editor.org/rfc/rfc5534#section-7
//! [RFC 5534 §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1

use std::time::Duration;

use rand::Rng;

use crate::ReapError;

/// Largest fraction by which a randomised Send Timeout is *shortened*.
///
/// [RFC 5534 §4.1] says the timeouts SHOULD be randomised and leaves the amount open. We only
/// shorten the Send Timeout (uniformly in `[0.9, 1.0] × send_timeout`) so failure detection never
/// takes longer than configured and [`failover_bound`] stays a simple sum.
///
/// [RFC 5534 §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
pub const SEND_TIMEOUT_JITTER: f64 = 0.1;

/// Largest fraction by which a randomised Keepalive Interval (Tka/3) is shortened.
///
/// Shortening keeps the interval inside the "one-third to one-half of the Keepalive Timeout"
/// range of [RFC 5534 §7] or below it, which §4.1 item 5 allows ("may send the keepalive sooner").
///
/// [RFC 5534 §7]: https://www.rfc-editor.org/rfc/rfc5534#section-7
pub const KEEPALIVE_JITTER: f64 = 0.1;

/// Largest fraction by which a randomised probe gap differs from its nominal value, either way.
///
/// ±20 % as LinShim6 does (`spec/reap.md` §2 \[I\]); the result is still capped at
/// [`ReapConfig::max_probe_timeout`], which the probe interval may never exceed
/// ([RFC 5534 §4.3]).
///
/// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
pub const PROBE_JITTER: f64 = 0.2;

/// Shortest duration the machine arms: a zero timeout would make it spin.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Longest probe timeout the machine accepts (a day): keeps `Instant` arithmetic far from
/// overflow.
const MAX_PROBE_TIMEOUT_LIMIT: Duration = Duration::from_secs(86_400);

/// The REAP timers of one context ([RFC 5534 §7]). `Default` gives the RFC values.
///
/// [RFC 5534 §7]: https://www.rfc-editor.org/rfc/rfc5534#section-7
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReapConfig {
    /// Send Timeout: how long after sending with nothing received before exploring (15 s).
    /// This is also the Keepalive Timeout we announce to the peer ([RFC 5534 §5.3]).
    ///
    /// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
    pub send_timeout: Duration,
    /// Keepalive Timeout (Tka) used until the peer announces its own (15 s).
    pub default_keepalive_timeout: Duration,
    /// Initial Probe Timeout: the gap after each of the initial probes (0.5 s).
    pub initial_probe_timeout: Duration,
    /// Number of Initial Probes sent at the initial gap before backing off (4).
    pub initial_probes: u32,
    /// Max Probe Timeout: the probe gap never grows beyond this (60 s, [RFC 5534 §4.3]).
    ///
    /// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
    pub max_probe_timeout: Duration,
    /// Randomise the timeouts ([RFC 5534 §4.1] SHOULD); `false` makes every timer exact, for
    /// tests.
    ///
    /// [RFC 5534 §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
    pub randomise: bool,
}

impl Default for ReapConfig {
    /// The values of [RFC 5534 §7] and §4.3, randomisation on.
    ///
    /// [RFC 5534 §7]: https://www.rfc-editor.org/rfc/rfc5534#section-7
    fn default() -> Self {
        Self {
            send_timeout: Duration::from_secs(15),
            default_keepalive_timeout: Duration::from_secs(15),
            initial_probe_timeout: Duration::from_millis(500),
            initial_probes: 4,
            max_probe_timeout: Duration::from_secs(60),
            randomise: true,
        }
    }
}

impl ReapConfig {
    /// Checks the values a machine can work with.
    ///
    /// Rejects zero durations, a Max Probe Timeout below the Initial Probe Timeout or above a
    /// day, and Send/Keepalive Timeouts that the 16-bit seconds field of the Keepalive Timeout
    /// option ([RFC 5534 §5.3]) cannot carry. The RFC only RECOMMENDS 10 s ≤ Send Timeout ≤ 100 s
    /// (§7), so shorter values (handy in labs) are accepted.
    ///
    /// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
    pub fn validate(&self) -> Result<(), ReapError> {
        let max_option = Duration::from_secs(u64::from(u16::MAX));
        for (field, value) in [
            ("send_timeout", self.send_timeout),
            ("default_keepalive_timeout", self.default_keepalive_timeout),
            ("initial_probe_timeout", self.initial_probe_timeout),
            ("max_probe_timeout", self.max_probe_timeout),
        ] {
            if value.is_zero() {
                return Err(ReapError::ZeroTimeout { field });
            }
        }
        if self.send_timeout > max_option {
            return Err(ReapError::TimeoutTooLong {
                field: "send_timeout",
            });
        }
        if self.default_keepalive_timeout > max_option {
            return Err(ReapError::TimeoutTooLong {
                field: "default_keepalive_timeout",
            });
        }
        if self.max_probe_timeout > MAX_PROBE_TIMEOUT_LIMIT {
            return Err(ReapError::TimeoutTooLong {
                field: "max_probe_timeout",
            });
        }
        if self.max_probe_timeout < self.initial_probe_timeout {
            return Err(ReapError::MaxProbeBelowInitial);
        }
        Ok(())
    }

    /// The Keepalive Timeout to announce to the peer in the option of [RFC 5534 §5.3]: our
    /// Send Timeout in whole seconds, rounded up (so the peer's keepalives are never late)
    /// and saturated to `u16`.
    ///
    /// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
    pub fn announced_keepalive_timeout(&self) -> u16 {
        let secs = self
            .send_timeout
            .as_secs()
            .saturating_add(u64::from(self.send_timeout.subsec_nanos() > 0));
        u16::try_from(secs).unwrap_or(u16::MAX).max(1)
    }

    /// The configuration a machine actually runs with: every value clamped into the range
    /// [`validate`](Self::validate) accepts, so an unchecked configuration can never make the
    /// machine spin or overflow `Instant` arithmetic.
    pub(crate) fn sanitised(self) -> Self {
        let max_option = Duration::from_secs(u64::from(u16::MAX));
        let initial = self
            .initial_probe_timeout
            .clamp(MIN_TIMEOUT, MAX_PROBE_TIMEOUT_LIMIT);
        Self {
            send_timeout: self.send_timeout.clamp(MIN_TIMEOUT, max_option),
            default_keepalive_timeout: self
                .default_keepalive_timeout
                .clamp(MIN_TIMEOUT, max_option),
            initial_probe_timeout: initial,
            initial_probes: self.initial_probes,
            max_probe_timeout: self
                .max_probe_timeout
                .clamp(initial, MAX_PROBE_TIMEOUT_LIMIT),
            randomise: self.randomise,
        }
    }

    /// The nominal (not randomised) gap after the `n`-th probe of a stream (1-based).
    ///
    /// Our reading of [RFC 5534 §4.3]: each of the first Number of Initial Probes (4) probes is
    /// followed by an Initial Probe Timeout (0.5 s) gap, "so the first four packets are sent
    /// within ... 2 seconds"; then every gap doubles ("typically, each increase doubles the
    /// time") up to Max Probe Timeout. With the defaults the probes go out at 0, 0.5, 1, 1.5,
    /// 2, 3, 5, 9, 17, 33, 65, 125, ... s (then every 60 s).
    ///
    /// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
    pub fn nominal_probe_gap(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(self.initial_probes).min(40);
        let factor = 1u64 << doublings;
        u32::try_from(factor)
            .ok()
            .and_then(|f| self.initial_probe_timeout.checked_mul(f))
            .map_or(self.max_probe_timeout, |gap| {
                gap.min(self.max_probe_timeout)
            })
    }
}

/// Upper bound on the time from a cut of the current pair to the `PairChanged` event of the
/// side whose outbound direction was cut.
///
/// `send_timeout + initial_probes × initial_probe_timeout × (1 + PROBE_JITTER)` (17.4 s with
/// the defaults). Why: the Send Timer of a node that keeps sending starts, at the latest, with
/// its first packet after the last one it received, so it fires at most `send_timeout` after
/// the cut ([RFC 5534 §4.1] item 6; the randomised value is never longer, see
/// [`SEND_TIMEOUT_JITTER`]). The first [`initial_probes`](ReapConfig::initial_probes) probes then
/// leave at most `initial_probe_timeout × (1 + PROBE_JITTER)` apart ([RFC 5534 §4.3]).
///
/// Assumptions, which the tests meet: a pair working in both directions is among the first
/// `initial_probes` pairs probed (true with 2 × 2 locators, the failed pair being probed
/// last); payload is sent often compared with the slack left by the probe rounds; and a probe
/// round trip (plus the reply's reply, 1.5 RTT) fits in the time between the probe that finds
/// the working pair and the end of the initial rounds.
///
/// [RFC 5534 §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
/// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
pub fn failover_bound(config: &ReapConfig) -> Duration {
    let c = config.sanitised();
    let rounds = c
        .initial_probe_timeout
        .checked_mul(c.initial_probes)
        .unwrap_or(Duration::MAX);
    let rounds = Duration::try_from_secs_f64(rounds.as_secs_f64() * (1.0 + PROBE_JITTER))
        .unwrap_or(Duration::MAX);
    c.send_timeout.saturating_add(rounds)
}

/// Scales `d` by a factor drawn uniformly from `[lo, hi]`; `d` unchanged if the result is not a
/// valid duration.
fn scale(d: Duration, lo: f64, hi: f64, rng: &mut impl Rng) -> Duration {
    let f = if lo < hi { rng.gen_range(lo..=hi) } else { lo };
    Duration::try_from_secs_f64(d.as_secs_f64() * f).unwrap_or(d)
}

impl ReapConfig {
    /// A Send Timeout for one arming of the Send Timer: in `[1 − SEND_TIMEOUT_JITTER, 1]` ×
    /// `send_timeout` when randomising.
    pub(crate) fn draw_send_timeout(&self, rng: &mut impl Rng) -> Duration {
        if self.randomise {
            scale(self.send_timeout, 1.0 - SEND_TIMEOUT_JITTER, 1.0, rng).max(MIN_TIMEOUT)
        } else {
            self.send_timeout
        }
    }

    /// A Keepalive Interval for keepalive timeout `tka`: Tka/3, shortened by up to
    /// [`KEEPALIVE_JITTER`] when randomising.
    pub(crate) fn draw_keepalive_interval(&self, tka: Duration, rng: &mut impl Rng) -> Duration {
        let third = tka / 3;
        let d = if self.randomise {
            scale(third, 1.0 - KEEPALIVE_JITTER, 1.0, rng)
        } else {
            third
        };
        d.max(MIN_TIMEOUT)
    }

    /// The gap after the `n`-th probe (1-based): [`nominal_probe_gap`](Self::nominal_probe_gap)
    /// ± [`PROBE_JITTER`] when randomising, never above `max_probe_timeout`.
    pub(crate) fn draw_probe_gap(&self, n: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal_probe_gap(n);
        let d = if self.randomise {
            scale(nominal, 1.0 - PROBE_JITTER, 1.0 + PROBE_JITTER, rng)
        } else {
            nominal
        };
        d.clamp(MIN_TIMEOUT, self.max_probe_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn defaults_are_rfc5534_section7() {
        let c = ReapConfig::default();
        assert_eq!(c.send_timeout, Duration::from_secs(15));
        assert_eq!(c.default_keepalive_timeout, Duration::from_secs(15));
        assert_eq!(c.initial_probe_timeout, Duration::from_millis(500));
        assert_eq!(c.initial_probes, 4);
        assert_eq!(c.max_probe_timeout, Duration::from_secs(60));
        assert!(c.randomise);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.announced_keepalive_timeout(), 15);
    }

    #[test]
    fn validate_rejects_bad_values() {
        let ok = ReapConfig::default();
        let zero = ReapConfig {
            initial_probe_timeout: Duration::ZERO,
            ..ok
        };
        assert_eq!(
            zero.validate(),
            Err(ReapError::ZeroTimeout {
                field: "initial_probe_timeout"
            })
        );
        let inverted = ReapConfig {
            max_probe_timeout: Duration::from_millis(100),
            ..ok
        };
        assert_eq!(inverted.validate(), Err(ReapError::MaxProbeBelowInitial));
        let huge = ReapConfig {
            send_timeout: Duration::from_secs(70_000),
            ..ok
        };
        assert_eq!(
            huge.validate(),
            Err(ReapError::TimeoutTooLong {
                field: "send_timeout"
            })
        );
        // Sanitising makes any configuration valid.
        for c in [zero, inverted, huge] {
            assert_eq!(c.sanitised().validate(), Ok(()));
        }
    }

    #[test]
    fn announced_timeout_rounds_up() {
        let c = ReapConfig {
            send_timeout: Duration::from_millis(10_200),
            ..ReapConfig::default()
        };
        assert_eq!(c.announced_keepalive_timeout(), 11);
    }

    /// Pins our reading of RFC 5534 §4.3: four gaps of 0.5 s, then doubling, capped at 60 s.
    #[test]
    fn nominal_probe_schedule() {
        let c = ReapConfig::default();
        let gaps: Vec<f64> = (1..=14)
            .map(|n| c.nominal_probe_gap(n).as_secs_f64())
            .collect();
        assert_eq!(
            gaps,
            [0.5, 0.5, 0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
        );
        assert_eq!(c.nominal_probe_gap(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let c = ReapConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let s = c.draw_send_timeout(&mut rng).as_secs_f64();
            assert!((13.5..=15.0).contains(&s), "{s}");
            let k = c
                .draw_keepalive_interval(Duration::from_secs(15), &mut rng)
                .as_secs_f64();
            assert!((4.5..=5.0).contains(&k), "{k}");
            let p = c.draw_probe_gap(1, &mut rng).as_secs_f64();
            assert!((0.4..=0.6).contains(&p), "{p}");
            let m = c.draw_probe_gap(30, &mut rng).as_secs_f64();
            assert!((48.0..=60.0).contains(&m), "{m}");
        }
        let exact = ReapConfig {
            randomise: false,
            ..c
        };
        assert_eq!(exact.draw_send_timeout(&mut rng), Duration::from_secs(15));
        assert_eq!(exact.draw_probe_gap(5, &mut rng), Duration::from_secs(1));
    }

    #[test]
    fn failover_bound_default() {
        let b = failover_bound(&ReapConfig::default());
        assert!((b.as_secs_f64() - 17.4).abs() < 1e-9, "{b:?}");
        let odd = ReapConfig {
            initial_probes: u32::MAX,
            ..ReapConfig::default()
        };
        // Saturates instead of overflowing.
        assert!(failover_bound(&odd) > Duration::from_secs(15));
    }
}
