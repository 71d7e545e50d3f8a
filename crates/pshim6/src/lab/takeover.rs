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
//! - route convergence: the kernel ends the killed process and deletes its TAP device with
//!   the routes on it; BIRD beside it learns that (netlink at once, or its 1 s scan) —
//!   `withdraw_ms`, measured on that BIRD, since the kernel's teardown of a process on a
//!   loaded machine (RTNL lock) is no timer of ours — then withdraws over BGP at once, and
//!   the site and provider routers switch to the backup's routes within [`PROPAGATION_MS`]
//!   (a box that vanished with its BIRD would be noticed by BFD, 100 ms × 3, instead);
//! - the recovery handshake: four messages over a few milliseconds of veth, but the engine
//!   allows itself one retransmission ([`HANDSHAKE_MS`]: twice the lab's 500 ms I1 timeout);
//! - REAP at the surviving end: an outage longer than its Send Timeout (1 s in the lab) makes
//!   it explore the other locator pairs (RFC 5534 §4.3), which ends within the lab's REAP
//!   failover bound (1.96 s, `proxies::reap_bound`) once a path works again;
//! - TCP: the first byte after the path is back is the next retransmission, which exponential
//!   backoff can delay by as long again as the outage so far, plus the 200 ms minimum RTO.
//!
//! So `recovery_bound = 2 × (withdraw_ms + propagation + handshake + REAP bound) + 200 ms`.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::api_client::call_in;
use super::cmd::ip;
use super::multi::{announced, proxy_name, proxy_ns, routes_point_to, Role};
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

/// The bound `recovery_ms` must stay within, once the kernel took `withdraw_ms` to end the
/// killed process and BIRD to drop its routes (see the module documentation).
pub(crate) fn recovery_bound_ms(withdraw_ms: u64) -> u64 {
    let reap = u64::try_from(super::proxies::reap_bound().as_millis()).unwrap_or(u64::MAX);
    2 * (withdraw_ms + PROPAGATION_MS + HANDSHAKE_MS + reap) + MIN_RTO_MS
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
    quiesce_rtnl(lab)?;
    let t_kill = now_ms();
    let pid = lab.kill_proxy(dead, Role::Primary)?;
    lab.timeline
        .note("lab", &format!("{primary} killed (pshim6 run, SIGKILL)"));
    // 1. The dead proxy's routes leave its BIRD: the kernel ends the process and deletes its
    //    TAP device (and the routes on it), BIRD learns it (netlink, or its 1 s scan).
    let until = Instant::now() + Duration::from_secs(30);
    let mut exit_ms = None;
    while announced(&lab.birds, dead, Role::Primary) {
        if exit_ms.is_none() && !super::cleanup::alive(pid) {
            exit_ms = Some(now_ms().saturating_sub(t_kill));
        }
        lab.check_interrupted()?;
        if Instant::now() > until {
            bail!("{primary}'s routes were still in its BIRD 30 s after the kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let withdraw_ms = now_ms().saturating_sub(t_kill);
    r.withdraw_ms = Some(withdraw_ms);
    r.recovery_bound_ms = Some(recovery_bound_ms(withdraw_ms));
    r.gap_limit_ms = recovery_bound_ms(withdraw_ms);
    lab.timeline.note(
        &primary,
        &format!(
            "its BIRD dropped the announcement {withdraw_ms} ms after the kill (the process \
             was gone after {exit_ms:?} ms)"
        ),
    );
    // 2. The site router and the provider routers route to the backup.
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
                && end.saturating_sub(r.failover_gap_ms) <= t_kill + r.gap_limit_ms =>
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

/// Waits until the kernel's RTNL lock is free again (three cheap link operations in a row
/// done within 50 ms each, 60 s at most): the namespaces of a lab torn down just before are
/// cleaned up by the kernel asynchronously, holding RTNL for seconds, and the kernel needs
/// RTNL to delete a killed proxy's TAP device — the withdrawal would time the previous lab's
/// cleanup, not the takeover.
fn quiesce_rtnl(lab: &Lab) -> Result<()> {
    let t0 = Instant::now();
    let mut quick = 0;
    while quick < 3 {
        lab.check_interrupted()?;
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("the kernel's RTNL lock stayed busy for 60 s");
        }
        let t = Instant::now();
        ip(&Site(1).host_ns(), &["link", "set", "lo", "up"])?;
        quick = if t.elapsed() < Duration::from_millis(50) {
            quick + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.timeline.note(
        "lab",
        &format!(
            "kernel RTNL lock quiet after {} ms",
            t0.elapsed().as_millis()
        ),
    );
    Ok(())
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
    fn bound_is_twice_withdrawal_propagation_and_handshake_plus_min_rto() {
        // 2 × (150 + 300 + 1000 + 1960) + 200.
        assert_eq!(recovery_bound_ms(150), 7020);
    }
}
