//! Per-client token buckets, so one chatty or hostile client cannot make the server spend its
//! time (and its journal's fsyncs) on it.

use std::collections::HashMap;

/// Token buckets keyed by client DUID, on a caller-supplied clock (seconds, fractional).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: HashMap<Vec<u8>, Bucket>,
    /// Past this many buckets, full (idle) ones are dropped before adding another.
    max_buckets: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: f64,
}

impl RateLimiter {
    pub(crate) fn new(per_second: f64, burst: u32, max_buckets: usize) -> Self {
        Self {
            per_second,
            burst: f64::from(burst),
            buckets: HashMap::new(),
            max_buckets: max_buckets.max(16),
        }
    }

    /// Takes one token for `client` at time `now`; false means "over the limit, drop it".
    pub(crate) fn allow(&mut self, client: &[u8], now: f64) -> bool {
        if !self.buckets.contains_key(client) && self.buckets.len() >= self.max_buckets {
            self.prune(now);
        }
        let (rate, burst) = (self.per_second, self.burst);
        let b = self.buckets.entry(client.to_vec()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        // A clock step backwards refills nothing rather than going negative.
        let elapsed = (now - b.last).max(0.0);
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops every bucket that has refilled completely: forgetting it changes nothing.
    fn prune(&mut self, now: f64) {
        let (rate, burst) = (self.per_second, self.burst);
        self.buckets
            .retain(|_, b| b.tokens + (now - b.last).max(0.0) * rate < burst);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut r = RateLimiter::new(2.0, 3, 100);
        assert!((0..3).all(|_| r.allow(b"a", 0.0)));
        assert!(!r.allow(b"a", 0.0), "burst spent");
        assert!(r.allow(b"b", 0.0), "other clients unaffected");
        assert!(!r.allow(b"a", 0.4));
        assert!(r.allow(b"a", 0.5), "2/s refills one token in 0.5 s");
        assert!(!r.allow(b"a", 0.5));
        assert!(!r.allow(b"a", 0.1), "time going backwards refills nothing");
    }

    #[test]
    fn idle_buckets_are_forgotten_under_pressure() {
        let mut r = RateLimiter::new(1.0, 2, 16);
        for i in 0..16u8 {
            assert!(r.allow(&[i], 0.0));
        }
        assert_eq!(r.len(), 16);
        // Ten seconds later all have refilled: adding one more prunes them.
        assert!(r.allow(b"new", 10.0));
        assert_eq!(r.len(), 1);
    }
}
