//! Per-client query rate limit: a token bucket per client address, kept in a bounded table,
//! so one noisy (or spoofed) source cannot monopolise the ALG or its upstream servers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::RateLimitConfig;

/// One token, in thousandths (integer arithmetic, no float drift).
const TOKEN: u64 = 1000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    last: Instant,
}

/// Token buckets by client address.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `client`; `false` means the query must be dropped.
    pub(crate) fn allow(&mut self, now: Instant, client: IpAddr) -> bool {
        if self.config.per_second == 0 {
            return true;
        }
        let cap = u64::from(self.config.burst.max(1)).saturating_mul(TOKEN);
        let rate = u64::from(self.config.per_second); // milli-tokens per millisecond
        if !self.buckets.contains_key(&client)
            && self.buckets.len() >= self.config.max_clients.max(1)
        {
            // Forget the client heard from longest ago: it has had the most time to refill.
            if let Some(old) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(a, _)| *a)
            {
                self.buckets.remove(&old);
            }
        }
        let b = self.buckets.entry(client).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        let elapsed_ms =
            u64::try_from(now.saturating_duration_since(b.last).as_millis()).unwrap_or(u64::MAX);
        if elapsed_ms > 0 {
            b.milli_tokens = b
                .milli_tokens
                .saturating_add(elapsed_ms.saturating_mul(rate))
                .min(cap);
            b.last = now;
        }
        if b.milli_tokens >= TOKEN {
            b.milli_tokens -= TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let mut r = RateLimiter::new(RateLimitConfig {
            per_second: 10,
            burst: 3,
            max_clients: 2,
        });
        let t0 = Instant::now();
        let a: IpAddr = "::1".parse().unwrap();
        let b: IpAddr = "::2".parse().unwrap();
        assert!((0..3).all(|_| r.allow(t0, a)));
        assert!(!r.allow(t0, a));
        assert!(r.allow(t0, b), "buckets are per client");
        // 10/s: one token after 100 ms.
        assert!(r.allow(t0 + Duration::from_millis(100), a));
        assert!(!r.allow(t0 + Duration::from_millis(100), a));
        // A third client pushes out the oldest; the table stays bounded.
        assert!(r.allow(t0, "::3".parse().unwrap()));
        assert_eq!(r.buckets.len(), 2);
    }

    #[test]
    fn zero_rate_disables() {
        let mut r = RateLimiter::new(RateLimitConfig {
            per_second: 0,
            burst: 0,
            max_clients: 1,
        });
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| r.allow(t0, "::1".parse().unwrap())));
    }
}
