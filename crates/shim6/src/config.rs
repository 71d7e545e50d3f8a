//! Engine configuration: protocol constants ([RFC 5533 §14]) and resource limits.
//!
//! [RFC 5533 §14]: https://www.rfc-editor.org/rfc/rfc5533#section-14

use std::time::Duration;

use crate::Shim6Error;

/// Configuration of a [`ContextEngine`](crate::ContextEngine).
///
/// `Default` gives the values of [RFC 5533 §14](https://www.rfc-editor.org/rfc/rfc5533#section-14)
/// and of RFC 5534 (REAP) plus resource limits suited to a proxy.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// I1_TIMEOUT: first I1 retransmission timeout (4 s).
    pub i1_timeout: Duration,
    /// I1_RETRIES_MAX: I1 retransmissions before E-FAILED (4, so 5 I1s in all).
    pub i1_retries_max: u32,
    /// I2_TIMEOUT: first I2 retransmission timeout (4 s).
    pub i2_timeout: Duration,
    /// I2_RETRIES_MAX: I2 retransmissions before falling back to I1 (2).
    pub i2_retries_max: u32,
    /// I2bis_TIMEOUT: first I2bis retransmission timeout (4 s).
    pub i2bis_timeout: Duration,
    /// I2bis_RETRIES_MAX: I2bis retransmissions before falling back to I1 (2).
    pub i2bis_retries_max: u32,
    /// NO_R1_HOLDDOWN_TIME: how long E-FAILED refuses new attempts for a ULID pair (1 min).
    pub no_r1_holddown: Duration,
    /// ICMP_HOLDDOWN_TIME: how long NO-SUPPORT refuses new attempts (10 min).
    pub icmp_holddown: Duration,
    /// UPDATE_TIMEOUT: first Update Request retransmission timeout (4 s).
    pub update_timeout: Duration,
    /// MAX_UPDATE_TIMEOUT: cap of the Update Request backoff (120 s); retransmission never stops.
    pub max_update_timeout: Duration,
    /// Responder validator secret rotation period; a Responder Nonce is accepted for one to two
    /// periods, so this is at least VALIDATOR_MIN_LIFETIME (30 s).
    pub validator_lifetime: Duration,
    /// A context with no payload activity for this long is garbage-collected
    /// ([RFC 5533 §9](https://www.rfc-editor.org/rfc/rfc5533#section-9) suggests ≥ 5 min; 600 s).
    pub idle_timeout: Duration,
    /// Hard cap on live contexts: beyond it `connect` is refused and I2/I2bis are dropped.
    pub max_contexts: usize,
    /// R1bis messages sent per second at most (stateless recovery answers).
    pub r1bis_per_sec: u32,
    /// R1 messages sent per second at most (stateless I1 answers).
    pub r1_per_sec: u32,
    /// Shim6 Error messages sent per second at most.
    pub error_per_sec: u32,
    /// Payload packets the data plane may hold per context while it is being established (the
    /// engine does not hold payload itself; the value is carried here so one config drives both).
    pub pending_per_context: usize,
    /// REAP (RFC 5534) timers of every context.
    pub reap: reap::ReapConfig,
    /// Cache our own locator-list signatures per (ULID, generation, locator set).
    pub cache_signatures: bool,
    /// Cache successful verifications of peer (PDS, generation, locator list, signature).
    pub cache_peer_verification: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            i1_timeout: Duration::from_secs(4),
            i1_retries_max: 4,
            i2_timeout: Duration::from_secs(4),
            i2_retries_max: 2,
            i2bis_timeout: Duration::from_secs(4),
            i2bis_retries_max: 2,
            no_r1_holddown: Duration::from_secs(60),
            icmp_holddown: Duration::from_secs(600),
            update_timeout: Duration::from_secs(4),
            max_update_timeout: Duration::from_secs(120),
            validator_lifetime: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            max_contexts: 1 << 20,
            r1bis_per_sec: 100,
            r1_per_sec: 1000,
            error_per_sec: 10,
            pending_per_context: 16,
            reap: reap::ReapConfig::default(),
            cache_signatures: true,
            cache_peer_verification: true,
        }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

/// VALIDATOR_MIN_LIFETIME ([RFC 5533 §14](https://www.rfc-editor.org/rfc/rfc5533#section-14)).
pub const VALIDATOR_MIN_LIFETIME: Duration = Duration::from_secs(30);

impl EngineConfig {
    /// Checks that every value is usable.
    pub fn validate(&self) -> Result<(), Shim6Error> {
        let timers = [
            (self.i1_timeout, "i1_timeout"),
            (self.i2_timeout, "i2_timeout"),
            (self.i2bis_timeout, "i2bis_timeout"),
            (self.update_timeout, "update_timeout"),
            (self.idle_timeout, "idle_timeout"),
        ];
        for (value, name) in timers {
            if value.is_zero() || value > DAY {
                return Err(Shim6Error::InvalidConfig(name));
            }
        }
        if self.max_update_timeout < self.update_timeout || self.max_update_timeout > DAY {
            return Err(Shim6Error::InvalidConfig("max_update_timeout"));
        }
        // Bounded so that `now + duration` can never overflow an `Instant`.
        if self.no_r1_holddown > 7 * DAY {
            return Err(Shim6Error::InvalidConfig("no_r1_holddown"));
        }
        if self.icmp_holddown > 7 * DAY {
            return Err(Shim6Error::InvalidConfig("icmp_holddown"));
        }
        // Retransmission counts are exponents of the backoff: keep 2^n finite.
        if self.i1_retries_max > 16 {
            return Err(Shim6Error::InvalidConfig("i1_retries_max"));
        }
        if self.i2_retries_max > 16 {
            return Err(Shim6Error::InvalidConfig("i2_retries_max"));
        }
        if self.i2bis_retries_max > 16 {
            return Err(Shim6Error::InvalidConfig("i2bis_retries_max"));
        }
        // A validator must stay acceptable for VALIDATOR_MIN_LIFETIME (RFC 5533 §7.13); with
        // two live secrets a period of at least half of it guarantees that.
        if self.validator_lifetime < VALIDATOR_MIN_LIFETIME / 2 || self.validator_lifetime > DAY {
            return Err(Shim6Error::InvalidConfig("validator_lifetime"));
        }
        if self.max_contexts == 0 {
            return Err(Shim6Error::InvalidConfig("max_contexts"));
        }
        if self.r1_per_sec == 0 {
            return Err(Shim6Error::InvalidConfig("r1_per_sec"));
        }
        if self.r1bis_per_sec == 0 {
            return Err(Shim6Error::InvalidConfig("r1bis_per_sec"));
        }
        if self.error_per_sec == 0 {
            return Err(Shim6Error::InvalidConfig("error_per_sec"));
        }
        self.reap.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rfc_5533_section_14() {
        let c = EngineConfig::default();
        assert_eq!(c.i1_timeout, Duration::from_secs(4));
        assert_eq!(c.i1_retries_max, 4);
        assert_eq!(c.i2_retries_max, 2);
        assert_eq!(c.i2bis_retries_max, 2);
        assert_eq!(c.no_r1_holddown, Duration::from_secs(60));
        assert_eq!(c.icmp_holddown, Duration::from_secs(600));
        assert_eq!(c.update_timeout, Duration::from_secs(4));
        assert_eq!(c.max_update_timeout, Duration::from_secs(120));
        assert_eq!(c.validator_lifetime, VALIDATOR_MIN_LIFETIME);
        assert_eq!(c.idle_timeout, Duration::from_secs(600));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validate_rejects_bad_values() {
        let bad = [
            EngineConfig {
                i1_timeout: Duration::ZERO,
                ..Default::default()
            },
            EngineConfig {
                max_contexts: 0,
                ..Default::default()
            },
            EngineConfig {
                r1_per_sec: 0,
                ..Default::default()
            },
            EngineConfig {
                validator_lifetime: Duration::from_secs(1),
                ..Default::default()
            },
            EngineConfig {
                max_update_timeout: Duration::from_secs(1),
                ..Default::default()
            },
            EngineConfig {
                i1_retries_max: 40,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(
                matches!(c.validate(), Err(Shim6Error::InvalidConfig(_))),
                "{c:?}"
            );
        }
    }
}
