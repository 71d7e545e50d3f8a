//! Token buckets for the stateless answers (R1, R1bis, Error): an attacker can make us send
//! them at no cost, so their rate is capped ([RFC 5533 §7.17, §12.3] leave the method open).
//!
//! [RFC 5533 §7.17, §12.3]: https://www.rfc-editor.org/rfc/rfc5533#section-7.17

use std::time::{Duration, Instant};

/// A bucket of `rate` tokens per second holding at most `rate` tokens (one second of burst).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u32,
    /// Tokens scaled by 10^9 (one token = one second of "rate nanoseconds").
    nanotokens: u128,
    last: Instant,
}

const NANOS: u128 = 1_000_000_000;

impl TokenBucket {
    pub(crate) fn new(rate: u32, now: Instant) -> Self {
        Self {
            rate,
            nanotokens: u128::from(rate) * NANOS,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed: Duration = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let cap = u128::from(self.rate) * NANOS;
        let refill = elapsed.as_nanos().saturating_mul(u128::from(self.rate));
        self.nanotokens = self.nanotokens.saturating_add(refill).min(cap);
        if self.nanotokens >= NANOS {
            self.nanotokens -= NANOS;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        let sent = (0..100).filter(|_| b.try_take(t0)).count();
        assert_eq!(sent, 10);
        // 100 ms later exactly one token came back.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.try_take(t1));
        assert!(!b.try_take(t1));
        // A long pause refills only up to the burst size.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..100).filter(|_| b.try_take(t2)).count(), 10);
    }

    #[test]
    fn time_going_backwards_does_not_refill() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(!b.try_take(t0));
    }
}
