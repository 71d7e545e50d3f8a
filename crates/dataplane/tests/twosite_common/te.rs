//! What the traffic-engineering simulations (`te_sim_mem`, `te_sim_replay`) share: site 1's
//! policy and the provider shares they measure.

use std::time::Duration;

use dataplane::slowpath::te::TePolicy;

/// Providers 1 and 2 weighted `a`/`b`, rebalanced every `period` with up to 200 moves a
/// second.
pub(crate) fn weighted(a: u32, b: u32, period: Duration) -> TePolicy {
    let mut p = TePolicy::weighted(&[(1, a), (2, b)]);
    p.rebalance.period_ms = period.as_millis() as u64;
    p.rebalance.max_moves_per_sec = 200;
    p
}

/// Provider A's share of the bytes counted on site 1's links A and B between the counter
/// readings `from` and `to`, and the bytes counted.
pub(crate) fn share_a(from: [u64; 2], to: [u64; 2]) -> (f64, u64) {
    let a = to[0] - from[0];
    let b = to[1] - from[1];
    (a as f64 / (a + b).max(1) as f64, a + b)
}
