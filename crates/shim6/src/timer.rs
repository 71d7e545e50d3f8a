//! Retransmission timeouts: binary exponential backoff randomised to [0.5, 1.5] × nominal
//! ([RFC 5533 §7.8, §7.12, §7.19, §10.2](https://www.rfc-editor.org/rfc/rfc5533#section-7.8)).

use std::time::Duration;

use rand::Rng;

/// Nominal timeout after `retries` previous retransmissions: `base · 2^retries`, capped.
pub(crate) fn backoff(base: Duration, retries: u32, cap: Option<Duration>) -> Duration {
    let factor = 1u32.checked_shl(retries.min(20)).unwrap_or(u32::MAX);
    let nominal = base.checked_mul(factor).unwrap_or(Duration::MAX);
    match cap {
        Some(c) => nominal.min(c),
        None => nominal,
    }
}

/// `nominal` scaled by a factor drawn uniformly from [0.5, 1.5] (applied after the doubling,
/// so the draws of successive retransmissions are independent).
pub(crate) fn randomise(nominal: Duration, rng: &mut impl Rng) -> Duration {
    let factor: f64 = rng.gen_range(0.5..=1.5);
    nominal.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn doubling_and_cap() {
        let b = Duration::from_secs(4);
        assert_eq!(backoff(b, 0, None), Duration::from_secs(4));
        assert_eq!(backoff(b, 4, None), Duration::from_secs(64));
        assert_eq!(
            backoff(b, 6, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        // Huge retry counts saturate instead of overflowing.
        assert!(backoff(b, 1000, None) >= Duration::from_secs(4 << 20));
    }

    #[test]
    fn randomisation_stays_in_bounds_and_varies() {
        let mut rng = StdRng::seed_from_u64(9);
        let nominal = Duration::from_secs(4);
        let draws: Vec<_> = (0..1000).map(|_| randomise(nominal, &mut rng)).collect();
        assert!(draws
            .iter()
            .all(|d| *d >= nominal / 2 && *d <= nominal * 3 / 2));
        let min = draws.iter().min().unwrap();
        let max = draws.iter().max().unwrap();
        assert!(*min < Duration::from_millis(2200) && *max > Duration::from_millis(5800));
    }
}
