//! `bgp-withdraw` (issue #9, "BGP as a failure signal"): h1 streams TCP to h2; mid-stream,
//! S1's provider carrying the stream withdraws the route to site 2's prefixes over BGP **and
//! stops forwarding there** (blackhole routes: S1 → S2 through it really breaks; S2 → S1
//! still works, so S2's REAP sees nothing). S1's BIRD takes the routes out of the provider's
//! kernel table, `pshim6 run` follows the table (`[bgp_signal]`) and must move the context
//! within 1 s and before REAP's bound (Send Timeout + probes) would have; the stream goes on
//! with its payload intact.

use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::Value;

use super::api_client::call;
use super::bgp_bird::{self, set_peer_site, table_of};
use super::capture::Captures;
use super::report::ScenarioReport;
use super::routers::all_ingress_drops;
use super::scenarios::{
    current_context, read_captures, tags_of, wait_context, Stream, RATE, STEADY,
};
use super::timeline::{now_ms, ProxyEvent};
use super::topology::{Prov, Site};
use super::Lab;

/// Port of the stream.
const PORT: u16 = 5006;
/// The move must happen within this (the acceptance of issue #9).
pub(crate) const SIGNAL_LIMIT_MS: u64 = 1000;
/// The longest stall of the stream accepted: TCP's retransmission backoff can add up to one
/// more outage after the path is back, plus its minimum RTO (200 ms), as in `failover`.
const GAP_LIMIT_MS: u64 = 2 * SIGNAL_LIMIT_MS + 200;

fn provider_of(ctx: &Value) -> Option<Prov> {
    ctx["provider"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .and_then(Prov::from_id)
}

/// The `bgp` object of S1's provider `p` in `GET /v1/providers`.
fn bgp_view(p: Prov) -> Result<Value> {
    let all = call(Site(1), "GET", "/v1/providers")?;
    all.as_array()
        .and_then(|v| v.iter().find(|x| x["id"] == p.id()))
        .map(|x| x["bgp"].clone())
        .ok_or_else(|| anyhow!("provider {} missing from /v1/providers: {all}", p.id()))
}

/// Runs the scenario.
pub(crate) fn bgp_withdraw(lab: &Lab) -> Result<ScenarioReport> {
    let name = "bgp-withdraw";
    let bound = super::proxies::reap_bound();
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    let mut r = ScenarioReport {
        scenario: name.into(),
        reap_bound_ms: bound_ms,
        gap_limit_ms: GAP_LIMIT_MS,
        ..ScenarioReport::default()
    };
    lab.timeline
        .note("lab", &format!("=== scenario {name} ==="));
    bgp_bird::start(Duration::from_secs(45))?;
    lab.timeline.note(
        "s1",
        &format!(
            "BIRD: eBGP up with both providers; site 2's prefixes in kernel tables {} and {}",
            table_of(Prov::A),
            table_of(Prov::B)
        ),
    );
    // The proxy follows both tables (the monitor reads them within its poll period).
    for p in Prov::ALL {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = bgp_view(p)?;
            if v["synced"] == true && v["routes"].as_u64().unwrap_or(0) >= 4 {
                break;
            }
            lab.check_interrupted()?;
            if std::time::Instant::now() > until {
                r.problems.push(format!(
                    "the proxy does not show provider {}'s routes: {v}",
                    p.id()
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (s1, s2) = (Site(1), Site(2));
    let drops_before = all_ingress_drops()?;
    let caps = Captures::start(name)?;
    let h2 = lab.resolve_peer(s1, s2)?;
    r.resolved = lab.last_resolution();
    let h1 = lab.ulid(s1);
    let stream = Stream::start(lab, name, &s1.host_ns(), &s2.host_ns(), h2, PORT)?;
    wait_context(lab, "s1", h1, h2, Duration::from_secs(10))?;
    let steady = RATE * u64::try_from(STEADY.as_millis()).unwrap_or(0) / 1000;
    stream.wait_bytes(lab, steady, Duration::from_secs(10))?;
    let ctx = wait_context(lab, "s1", h1, h2, Duration::from_secs(1))?;
    let active = provider_of(&ctx).ok_or_else(|| anyhow!("context without a provider: {ctx}"))?;
    r.cut_provider = Some(s1.router_ns(active));
    let withdrawals_before = bgp_view(active)?["withdrawals"].as_u64().unwrap_or(0);
    let t_issue = now_ms();
    let at_cut = stream.received();
    set_peer_site(active, true)?;
    let t_cut = now_ms();
    r.cut_command_ms = t_cut.saturating_sub(t_issue);
    lab.timeline.note(
        &s1.router_ns(active),
        "WITHDRAW: BGP withdraws site 2's prefixes, and the router blackholes them",
    );
    let local_tag = ctx["local_tag"].clone();
    let moved = lab
        .timeline
        .wait_for(bound * 2 + Duration::from_secs(2), |e: &ProxyEvent| {
            e.who == "s1"
                && e.kind() == "context-pair-changed"
                && e.t_ms() >= t_issue
                && e.data["local_tag"] == local_tag
        });
    match &moved {
        Some(e) => {
            let d = e.t_ms().saturating_sub(t_cut);
            r.signal_move_ms = Some(d);
            r.failover_detect_ms = Some(d);
            r.new_provider = provider_of(&e.data).map(|p| s1.router_ns(p));
            lab.timeline.note(
                "s1",
                &format!("moved {d} ms after the withdraw (REAP bound {bound_ms} ms)"),
            );
            if d > SIGNAL_LIMIT_MS || d >= bound_ms {
                r.problems.push(format!(
                    "the move took {d} ms (limit {SIGNAL_LIMIT_MS} ms, REAP bound {bound_ms} ms)"
                ));
            }
            if provider_of(&e.data) == Some(active) {
                r.problems
                    .push("the context stayed on the withdrawn provider".into());
            }
        }
        None => r
            .problems
            .push("the proxy never moved the context off the withdrawn path".into()),
    }
    match stream.wait_bytes(lab, at_cut + 256 * 1024, Duration::from_secs(10)) {
        Ok(()) => lab.timeline.note(
            "h2",
            &format!("stream resumed: {} bytes received", stream.received()),
        ),
        Err(e) => r.problems.push(format!("the stream did not resume: {e}")),
    }
    let after = bgp_view(active)?;
    r.bgp_withdrawals = after["withdrawals"]
        .as_u64()
        .map(|n| n.saturating_sub(withdrawals_before));
    if r.bgp_withdrawals != Some(2) {
        r.problems.push(format!(
            "the proxy counted {:?} withdrawals on provider {} (want 2): {after}",
            r.bgp_withdrawals,
            active.id()
        ));
    }
    std::thread::sleep(STEADY);
    stream.finish(&mut r)?;
    lab.timeline.note(
        "h2",
        &format!(
            "stream closed: {} of {} bytes, SHA-256 {}, longest stall {} ms",
            r.bytes_received,
            r.bytes_sent,
            if r.sha256_match { "match" } else { "MISMATCH" },
            r.failover_gap_ms
        ),
    );
    set_peer_site(active, false)?;
    bgp_bird::start(Duration::from_secs(20))?;
    lab.timeline.note(
        &s1.router_ns(active),
        "site 2's prefixes announced and forwarded again",
    );
    if let Some(c) = current_context(lab, "s1", h1, h2) {
        r.context_tags.extend(tags_of(&c));
    }
    if let Some(c) = current_context(lab, "s2", h2, h1) {
        r.context_tags.extend(tags_of(&c));
    }
    read_captures(lab, caps, &mut r)?;
    r.ingress_filter_drops = all_ingress_drops()?.saturating_sub(drops_before);
    r.check(true);
    Ok(r)
}
