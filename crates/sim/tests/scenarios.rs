//! Issue #3 acceptance: every scenario completes without loss and with 20% loss over 20 seeds,
//! within the failover bounds the REAP timers imply.

// Test helpers outside #[test] fns: a failed setup must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sim::{Scenario, SimOptions};

fn run(sc: Scenario, loss: f64, seed: u64) -> sim::SimReport {
    let opts = SimOptions {
        scenario: sc,
        pcap: None,
        loss_percent: loss,
        delay: Duration::from_millis(20),
        seed,
    };
    sim::run(&opts).unwrap_or_else(|e| panic!("{sc} loss {loss} seed {seed}: {e}"))
}

fn assert_ok(r: &sim::SimReport) {
    assert!(
        r.ok,
        "{} loss {} seed {}: failed {:?}\n{}",
        r.scenario,
        r.loss_percent,
        r.seed,
        r.failed_checks,
        serde_json::to_string_pretty(r).unwrap_or_default()
    );
    assert_eq!(r.ulid_on_wire, 0);
    assert_eq!(r.corrupted, 0);
}

#[test]
fn every_scenario_without_loss() {
    for sc in Scenario::ALL {
        let r = run(sc, 0.0, 1);
        assert_ok(&r);
        assert!(r.delivered > 0);
        if let Some(bound) = r.failover_bound_ms {
            assert!(r.failover_ms.unwrap() <= bound);
        }
    }
}

#[test]
fn local_down_recovers_within_one_round_trip_without_loss() {
    let r = run(Scenario::LocalDown, 0.0, 3);
    assert_ok(&r);
    let rtt_ms = 2.0 * r.delay_ms;
    // One probe round trip, then the next datagram (sent at most one interval later) crossing.
    let bound = rtt_ms + sim::SEND_INTERVAL.as_secs_f64() * 1000.0 + r.delay_ms;
    assert!(
        r.failover_ms.unwrap() <= bound,
        "{:?} > {bound}",
        r.failover_ms
    );
}

/// Runs `scenario` for 20 seeds at 20% loss on two threads (the CI machine has two cores).
fn twenty_seeds_at_20_percent(sc: Scenario) {
    let results: Vec<sim::SimReport> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64)
            .map(|half| {
                s.spawn(move || {
                    (0..10u64)
                        .map(|i| run(sc, 20.0, 100 + half * 10 + i))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), 20);
    for r in &results {
        assert_ok(r);
        assert!(r.lost > 0, "20% loss must lose packets");
    }
}

#[test]
fn handshake_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::Handshake);
}

#[test]
fn recovery_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::Recovery);
}

#[test]
fn update_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::Update);
}

#[test]
fn failover_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::Failover);
}

#[test]
fn local_down_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::LocalDown);
}

#[test]
fn simultaneous_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::Simultaneous);
}

#[test]
fn host_peer_with_20_percent_loss() {
    twenty_seeds_at_20_percent(Scenario::HostPeer);
}
