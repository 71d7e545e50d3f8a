//! What the traffic-engineering simulations (`te_sim_mem`, `te_sim_replay`) share: site 1's
//! policy and the provider shares they measure.

use std::time::Duration;

use dataplane::slowpath::te::{TePolicy, TeView};
use dataplane::slowpath::PipelineReport;
use rand::rngs::StdRng;
use rand::Rng;

/// Providers 1 and 2 weighted `a`/`b`, rebalanced every `period` with up to 200 moves a
/// second.
pub(crate) fn weighted(a: u32, b: u32, period: Duration) -> TePolicy {
    let mut p = TePolicy::weighted(&[(1, a), (2, b)]);
    p.rebalance.period_ms = period.as_millis() as u64;
    p.rebalance.max_moves_per_sec = 200;
    p
}

/// Every pair `(i, j)` of `hosts` site 1 hosts and `hosts` site 2 hosts once, in the order
/// of a Fisher-Yates shuffle drawn from `rng`.
pub(crate) fn shuffled_pairs(hosts: usize, rng: &mut StdRng) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = (0..hosts)
        .flat_map(|i| (0..hosts).map(move |j| (i, j)))
        .collect();
    for k in (1..order.len()).rev() {
        order.swap(k, rng.gen_range(0..=k));
    }
    order
}

/// Provider A's share of the bytes counted on site 1's links A and B between the counter
/// readings `from` and `to`, and the bytes counted.
pub(crate) fn share_a(from: [u64; 2], to: [u64; 2]) -> (f64, u64) {
    let a = to[0] - from[0];
    let b = to[1] - from[1];
    (a as f64 / (a + b).max(1) as f64, a + b)
}

/// Prints what both sites' slow paths and engines did, and the rebalancer's moves.
pub(crate) fn print_reports(r1: &PipelineReport, r2: &PipelineReport, view: &TeView) {
    for (n, r) in [(1, r1), (2, r2)] {
        eprintln!(
            "site {n} slow path: {:?}\nsite {n} engine: {:?}",
            r.slow_path, r.engine
        );
    }
    eprintln!(
        "te: {} moves requested, {} done, {} expired, {} refused",
        view.moves_requested, view.moves_done, view.moves_expired, view.moves_refused
    );
}

/// No context broke: no communication lost a datagram (`missing` describes those that did,
/// of `communications`), site 1 holds one context per communication and neither site
/// removed one.
pub(crate) fn assert_no_context_broke(
    missing: &[String],
    communications: usize,
    r1: &PipelineReport,
    r2: &PipelineReport,
) {
    assert!(
        missing.is_empty(),
        "{} of {communications} communications lost datagrams, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let (sp1, sp2) = (
        r1.slow_path.as_ref().unwrap(),
        r2.slow_path.as_ref().unwrap(),
    );
    assert_eq!(r1.contexts, communications, "site 1 contexts: {sp1:?}");
    assert_eq!(sp1.table_removes + sp2.table_removes, 0, "contexts removed");
}

/// Provider A's `share` measured over `phase` is `want` within `tolerance`.
pub(crate) fn assert_share(phase: &str, share: f64, want: f64, tolerance: f64) {
    assert!(
        (share - want).abs() <= tolerance,
        "{phase}: provider A carried {:.2} %",
        share * 100.0
    );
}
