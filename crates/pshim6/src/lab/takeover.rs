//! The takeover scenarios (issue #9) on the multi-proxy lab (`multi`): h1 streams TCP to h2;
//! mid-stream the primary proxy of one site dies — `pshim6 run` killed with SIGKILL — and the
//! stream must continue through the backup. Each proxy's role and announcement are read from
//! its REST API (`GET /v1/routing`) before and after.
//!
//! - `takeover`: the primary of site 1 (the sender's side) dies.
//! - `takeover-remote`: the primary of site 2 (the receiver's side) dies.
//!
//! The backup has no context for the communication (contexts are not replicated): it
//! rebuilds one either from the peer's payload or REAP probes under a tag it does not know
//! (R1bis → I2bis, RFC 5533 §7.17–§7.20) or from its own site's packets to a ULID with no
//! context (a new handshake with the peer's locators; the peer replaces the peer tag of its
//! context for the same ULID pair); `takeover_by` says which came first.
//!
//! `recovery_ms` runs from the SIGKILL to the end of the stream's longest stall: the first
//! payload byte through the backup (nothing can take the dead primary's path), or later when
//! the stream stalls again after a first burst through the backup because the far side's
//! routes (the provider routers' PA prefixes) moved a little later than the site router's.
//! Its bound:
//!
//! - route convergence: the dead proxy's routes go with its TAP device, BIRD beside it learns
//!   the deletion over netlink and withdraws at once; were the whole box to vanish silently,
//!   BFD (100 ms × 3) would end its sessions — the bound takes the latter — plus
//!   [`PROPAGATION_MS`] for BIRD to reflect the change and program the kernels;
//! - the recovery handshake: four messages over a few milliseconds of veth, but the engine
//!   allows itself one retransmission ([`HANDSHAKE_MS`]: twice the lab's 500 ms I1 timeout);
//! - TCP: the first byte after the path is back is the next retransmission, which exponential
//!   backoff can delay by as long again as the outage so far, plus the 200 ms minimum RTO.
//!
//! So `recovery_bound = 2 × (BFD detection + propagation + handshake) + 200 ms`.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::api_client::call_in;
use super::multi::{proxy_name, proxy_ns, routes_point_to, Role, BFD_INTERVAL_MS, BFD_MULTIPLIER};
use super::report::ScenarioReport;
use super::scenarios::{wait_context, Stream, RATE, STEADY};
use super::timeline::now_ms;
use super::topology::Site;
use super::Lab;

/// BIRD's reflection of a withdrawal and the kernels' reprogramming, at most.
pub(crate) const PROPAGATION_MS: u64 = 300;
/// The recovery handshake with one retransmission (the lab's I1 timeout is 500 ms).
pub(crate) const HANDSHAKE_MS: u64 = 1000;
/// The minimum TCP retransmission timeout (Linux).
const MIN_RTO_MS: u64 = 200;
/// Packets already past the primary when it dies still arrive this long after the kill.
const IN_FLIGHT_MS: u64 = 50;

/// The bound `recovery_ms` must stay within (see the module documentation).
pub(crate) fn recovery_bound_ms() -> u64 {
    2 * (BFD_INTERVAL_MS * BFD_MULTIPLIER + PROPAGATION_MS + HANDSHAKE_MS) + MIN_RTO_MS
}

/// Runs `takeover` (`dead` = site 1) or `takeover-remote` (`dead` = site 2).
pub(crate) fn takeover(lab: &Lab, dead: Site) -> Result<ScenarioReport> {
    let name = if dead == Site(1) {
        "takeover"
    } else {
        "takeover-remote"
    };
    let mut r = ScenarioReport {
        scenario: name.into(),
        recovery_bound_ms: Some(recovery_bound_ms()),
        gap_limit_ms: recovery_bound_ms(),
        ..ScenarioReport::default()
    };
    for s in Site::ALL {
        if routes_point_to(&lab.birds, s) != Some(Role::Primary) {
            bail!(
                "site {}'s routes do not point to its primary before the kill",
                s.0
            );
        }
    }
    let (h1, h2) = (lab.ulid(Site(1)), lab.ulid(Site(2)));
    let (local, peer): (Ipv6Addr, Ipv6Addr) = if dead == Site(1) { (h1, h2) } else { (h2, h1) };
    let port = if dead == Site(1) { 5101 } else { 5102 };
    let stream = Stream::start(lab, name, &Site(1).host_ns(), &Site(2).host_ns(), h2, port)?;
    let steady_bytes = RATE * u64::try_from(STEADY.as_millis()).unwrap_or(1000) / 1000;
    stream.wait_bytes(lab, steady_bytes, Duration::from_secs(30))?;
    let primary = proxy_name(dead, Role::Primary);
    let backup = proxy_name(dead, Role::Backup);
    let ctx = wait_context(lab, &primary, local, peer, Duration::from_secs(5))?;
    lab.timeline.note(
        &primary,
        &format!("carries the stream: context {}", ctx["local_tag"]),
    );

    check_roles(lab, dead, &mut r, true);
    let t_kill = now_ms();
    lab.kill_proxy(dead, Role::Primary)?;
    lab.timeline
        .note("lab", &format!("{primary} killed (pshim6 run, SIGKILL)"));
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if routes_point_to(&lab.birds, dead) == Some(Role::Backup) {
            let ms = now_ms().saturating_sub(t_kill);
            r.route_convergence_ms = Some(ms);
            lab.timeline.note(
                &format!("sr{}", dead.0),
                &format!(
                    "routes of site {} now point to {backup} ({ms} ms after the kill)",
                    dead.0
                ),
            );
            break;
        }
        lab.check_interrupted()?;
        if Instant::now() > until {
            r.problems.push(format!(
                "site {}'s routes did not move to the backup within 10 s",
                dead.0
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let at_kill = stream.received();
    stream.wait_bytes(lab, at_kill + steady_bytes, Duration::from_secs(30))?;
    match wait_context(lab, &backup, local, peer, Duration::from_secs(5)) {
        Ok(c) => lab.timeline.note(
            &backup,
            &format!("carries the stream: context {}", c["local_tag"]),
        ),
        Err(e) => r.problems.push(format!("{e:#}")),
    }
    check_roles(lab, dead, &mut r, false);
    // Which way the backup got its context: a handshake of its own (it sent I1) or the
    // peer's I2bis after its R1bis.
    let stats = call_in(&proxy_ns(dead, Role::Backup), dead, "GET", "/v1/stats")?;
    let i1 = stats["handshakes"]["i1_sent"].as_u64().unwrap_or(0);
    r.takeover_by = Some(if i1 > 0 { "handshake" } else { "r1bis" }.into());
    std::thread::sleep(STEADY);
    stream.finish(&mut r)?;
    // The longest stall must be the takeover's: it ends after the kill and starts before the
    // bound is over (it can start a little after the kill: packets already past the primary,
    // or a first burst through the backup before the far routes moved).
    match r.gap_end_ms {
        Some(end)
            if end >= t_kill + IN_FLIGHT_MS
                && end.saturating_sub(r.failover_gap_ms) <= t_kill + recovery_bound_ms() =>
        {
            r.recovery_ms = Some(end - t_kill);
        }
        other => r.problems.push(format!(
            "the stream's longest stall ({} ms, ending at {other:?}) is not the takeover at {t_kill}",
            r.failover_gap_ms
        )),
    }
    if r.recovery_ms.is_none() {
        // No recovery measured is a failure, not a pass by default.
        r.recovery_ms = Some(u64::MAX);
    }
    // No capture here: the provider links of the multi-proxy lab are bridges shared by two
    // proxies; the payload and bound checks apply.
    r.check(false);
    Ok(r)
}

/// Reads `GET /v1/routing` of site `s`'s proxies (only the backup's once the primary is
/// dead): each must report its role and have its routes announced.
fn check_roles(lab: &Lab, s: Site, r: &mut ScenarioReport, primary_alive: bool) {
    for role in Role::ALL {
        if role == Role::Primary && !primary_alive {
            continue;
        }
        let who = proxy_name(s, role);
        match call_in(&proxy_ns(s, role), s, "GET", "/v1/routing") {
            Ok(v) => {
                lab.timeline.note(
                    &who,
                    &format!(
                        "GET /v1/routing: role {}, routes {}, metric {}",
                        v["role"], v["state"], v["metric"]
                    ),
                );
                if v["role"] != role.name() || v["state"] != "announced" {
                    r.problems.push(format!("{who}: GET /v1/routing says {v}"));
                }
            }
            Err(e) => r.problems.push(format!("{who}: {e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_twice_convergence_plus_handshake_plus_min_rto() {
        // 2 × (300 + 300 + 1000) + 200.
        assert_eq!(recovery_bound_ms(), 3400);
    }
}
