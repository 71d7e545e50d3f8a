//! `drain`: the operator drains S1's provider carrying a live TCP stream through the REST API
//! (`POST /v1/providers/{name}/drain`, issue #8); every S1 context must move to the other
//! provider without breaking the stream. Then `/undrain`, and a new context (the old ones
//! removed with `DELETE /v1/contexts/{tag}`, a second stream) must use the provider again.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::api_client::{call, contexts};
use super::capture::Captures;
use super::report::ScenarioReport;
use super::routers::all_ingress_drops;
use super::scenarios::{read_captures, tags_of, wait_context, Stream, RATE, STEADY};
use super::timeline::now_ms;
use super::topology::{Prov, Site};
use super::Lab;

/// Ports of the drained stream and of the stream after the undrain.
const PORT: u16 = 5004;
const PORT_AFTER: u16 = 5005;

fn provider_of(ctx: &Value) -> Option<Prov> {
    ctx["provider"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .and_then(Prov::from_id)
}

fn tag(ctx: &Value) -> Result<u64> {
    ctx["tag"]
        .as_u64()
        .ok_or_else(|| anyhow!("context without a tag: {ctx}"))
}

/// Removes every context of site `s` between `local` and `peer` through the API; returns
/// their tags (both ends'): a packet already on its way may still carry one.
fn remove_contexts(lab: &Lab, s: Site, local: Ipv6Addr, peer: Ipv6Addr) -> Result<Vec<u64>> {
    let path = format!("/v1/contexts?ulid={local}&peer={peer}&limit=1000");
    let page = call(s, "GET", &path)?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let mut tags = Vec::new();
    for c in &items {
        let t = tag(c)?;
        tags.push(t);
        tags.extend(c["peer_tag"].as_u64());
        call(s, "DELETE", &format!("/v1/contexts/{t}"))?;
        lab.timeline.note(
            &format!("s{}", s.0),
            &format!("API: DELETE /v1/contexts/{t:#x} ({local} <-> {peer})"),
        );
    }
    Ok(tags)
}

/// Removes the pair's contexts at both sites until neither has one for a quiet period.
///
/// Deleting one side first leaves the other side's REAP keepalives and payload carrying the
/// old tags: the deleted side answers them with R1bis and the peer's I2bis rebuilds the
/// context (RFC 5533 §7.17, context recovery) before the second DELETE lands, which then
/// leaves a half-stale context whose REAP may move it. Repeat until both tables stay empty.
fn remove_until_quiet(
    lab: &Lab,
    s1: Site,
    s2: Site,
    h1: Ipv6Addr,
    h2: Ipv6Addr,
) -> Result<Vec<u64>> {
    let mut tags = Vec::new();
    for _ in 0..10 {
        tags.extend(remove_contexts(lab, s1, h1, h2)?);
        tags.extend(remove_contexts(lab, s2, h2, h1)?);
        std::thread::sleep(Duration::from_millis(400));
        let left1 = call(
            s1,
            "GET",
            &format!("/v1/contexts?ulid={h1}&peer={h2}&limit=10"),
        )?;
        let left2 = call(
            s2,
            "GET",
            &format!("/v1/contexts?ulid={h2}&peer={h1}&limit=10"),
        )?;
        let empty = |v: &Value| v["items"].as_array().is_none_or(|a| a.is_empty());
        if empty(&left1) && empty(&left2) {
            return Ok(tags);
        }
        lab.check_interrupted()?;
    }
    bail!("contexts {h1} <-> {h2} keep coming back after DELETE at both sites")
}

/// Waits until no established S1 context uses provider `x`; returns S1's contexts then.
fn wait_all_off(lab: &Lab, s1: Site, x: Prov, timeout: Duration) -> Result<Vec<Value>> {
    let until = Instant::now() + timeout;
    loop {
        let all = contexts(s1)?;
        if all.iter().all(|c| provider_of(c) != Some(x)) {
            return Ok(all);
        }
        lab.check_interrupted()?;
        if Instant::now() > until {
            bail!("contexts still on the drained provider after {timeout:?}: {all:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Drains S1's provider `x` and checks the move; fills `r`.
fn drain_and_check(lab: &Lab, s1: Site, x: Prov, r: &mut ScenarioReport) -> Result<()> {
    let before = contexts(s1)?;
    let on_x: Vec<u64> = before
        .iter()
        .filter(|c| provider_of(c) == Some(x))
        .map(tag)
        .collect::<Result<_>>()?;
    let name = s1.proxy_if(x);
    lab.timeline.note(
        "s1",
        &format!(
            "API: POST /v1/providers/{name}/drain ({} context(s) on it)",
            on_x.len()
        ),
    );
    let t_issue = now_ms();
    let view = call(s1, "POST", &format!("/v1/providers/{name}/drain"))?;
    if view["drained"] != true {
        r.problems
            .push(format!("the drain answer does not say drained: {view}"));
    }
    let bound = super::proxies::reap_bound();
    let after = wait_all_off(lab, s1, x, bound * 2 + Duration::from_secs(2))?;
    r.failover_detect_ms = Some(now_ms().saturating_sub(t_issue));
    let moved: Vec<&Value> = after
        .iter()
        .filter(|c| tag(c).is_ok_and(|t| on_x.contains(&t)))
        .collect();
    r.moved_contexts = Some(moved.len());
    if moved.len() != on_x.len() {
        r.problems.push(format!(
            "{} context(s) were on {name}, {} are still there after the drain: {after:?}",
            on_x.len(),
            moved.len()
        ));
    }
    r.new_provider = moved
        .first()
        .and_then(|c| provider_of(c))
        .map(|p| s1.router_ns(p));
    // The engine reports each move as a pair change (the lab's event stream).
    for t in &on_x {
        let seen = lab.timeline.wait_for(Duration::from_secs(2), |e| {
            e.who == "s1"
                && e.kind() == "context-pair-changed"
                && e.t_ms() >= t_issue
                && e.data["local_tag"] == *t
        });
        if seen.is_none() {
            r.problems
                .push(format!("no context-pair-changed event for {t:#x}"));
        }
    }
    lab.timeline.note(
        "s1",
        &format!(
            "drain moved {} context(s) off {name} in {} ms",
            moved.len(),
            r.failover_detect_ms.unwrap_or(0)
        ),
    );
    Ok(())
}

/// `pshim6 lab --scenario drain`.
pub(crate) fn drain(lab: &Lab) -> Result<ScenarioReport> {
    let bound_ms = u64::try_from(super::proxies::reap_bound().as_millis()).unwrap_or(u64::MAX);
    let mut r = ScenarioReport {
        scenario: "drain".into(),
        reap_bound_ms: bound_ms,
        // A planned move: no outage to find, the stream may stall at most one REAP bound.
        gap_limit_ms: bound_ms,
        ..ScenarioReport::default()
    };
    lab.timeline.note("lab", "=== scenario drain ===");
    let (s1, s2) = (Site(1), Site(2));
    let drops_before = all_ingress_drops()?;
    let h2 = lab.resolve_peer(s1, s2)?;
    r.resolved = lab.last_resolution();
    let h1 = lab.ulid(s1);
    // Earlier scenarios may have moved the h1 <-> h2 context: start from a fresh one, on the
    // provider a new context gets.
    // A late segment of an earlier stream may make the new context before this one starts.
    r.context_tags
        .extend(remove_until_quiet(lab, s1, s2, h1, h2)?);
    let t_start = now_ms();
    // Captured from here: a late segment of an earlier stream must not carry the removed
    // context's tag into this scenario's findings.
    let caps = Captures::start("drain")?;
    let stream = Stream::start(lab, "drain", &s1.host_ns(), &s2.host_ns(), h2, PORT)?;
    let ctx = wait_fresh(lab, "s1", h1, h2, t_start)?;
    let steady = RATE * u64::try_from(STEADY.as_millis()).unwrap_or(0) / 1000;
    stream.wait_bytes(lab, steady, Duration::from_secs(10))?;
    let x = provider_of(&ctx).ok_or_else(|| anyhow!("context without a provider: {ctx}"))?;
    r.cut_provider = Some(s1.router_ns(x));
    r.context_tags.extend(tags_of(&ctx));
    let at_drain = stream.received();
    let t_drain = now_ms();
    drain_and_check(lab, s1, x, &mut r)?;
    match stream.wait_bytes(lab, at_drain + 256 * 1024, Duration::from_secs(10)) {
        Ok(()) => lab.timeline.note(
            "h2",
            &format!("stream goes on: {} bytes received", stream.received()),
        ),
        Err(e) => r.problems.push(format!("the stream stopped: {e}")),
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
    // REAP explores pairs on a drained provider only after every other one (the engine's
    // avoided providers): a context going back to it is counted (the lab test wants 0).
    let back = lab
        .timeline
        .events()
        .iter()
        .filter(|e| {
            e.who == "s1"
                && e.kind() == "context-pair-changed"
                && e.t_ms() >= t_drain
                && provider_of(&e.data) == Some(x)
        })
        .count();
    r.back_on_drained_provider = Some(back);
    if back > 0 {
        lab.timeline.note(
            "s1",
            &format!("{back} move(s) back to the drained provider before the undrain (REAP)"),
        );
    }
    let name = s1.proxy_if(x);
    let view = call(s1, "POST", &format!("/v1/providers/{name}/undrain"))?;
    if view["drained"] != false {
        r.problems
            .push(format!("the undrain answer says drained: {view}"));
    }
    lab.timeline
        .note("s1", &format!("API: POST /v1/providers/{name}/undrain"));
    after_undrain(lab, s1, s2, h1, h2, &mut r)?;
    if r.undrained_new_context_provider != r.cut_provider {
        r.problems.push(format!(
            "the new context after the undrain uses {:?}, not the undrained {:?}",
            r.undrained_new_context_provider, r.cut_provider
        ));
    }
    read_captures(lab, caps, &mut r)?;
    r.ingress_filter_drops = all_ingress_drops()?.saturating_sub(drops_before);
    r.check(true);
    Ok(r)
}

/// The first context of `who` for (local, peer) established at or after `since`.
fn wait_fresh(lab: &Lab, who: &str, local: Ipv6Addr, peer: Ipv6Addr, since: u64) -> Result<Value> {
    let (l, p) = (local.to_string(), peer.to_string());
    let fresh = lab.timeline.wait_for(Duration::from_secs(10), |e| {
        e.who == who
            && e.kind() == "context-established"
            && e.t_ms() >= since
            && e.data["local_ulid"] == l.as_str()
            && e.data["peer_ulid"] == p.as_str()
    });
    match fresh {
        Some(_) => wait_context(lab, who, local, peer, Duration::from_secs(1)),
        None => bail!("{who} established no new context {local} <-> {peer}"),
    }
}

/// After the undrain: the old contexts removed, a second stream makes a new one; records its
/// provider and checks the stream's payload.
fn after_undrain(
    lab: &Lab,
    s1: Site,
    s2: Site,
    h1: Ipv6Addr,
    h2: Ipv6Addr,
    r: &mut ScenarioReport,
) -> Result<()> {
    r.context_tags
        .extend(remove_until_quiet(lab, s1, s2, h1, h2)?);
    let t_start = now_ms();
    let stream = Stream::start(
        lab,
        "undrained",
        &s1.host_ns(),
        &s2.host_ns(),
        h2,
        PORT_AFTER,
    )?;
    let ctx = wait_fresh(lab, "s1", h1, h2, t_start)?;
    stream.wait_bytes(lab, 256 * 1024, Duration::from_secs(10))?;
    // The API's view of the same context.
    let t = ctx["local_tag"]
        .as_u64()
        .ok_or_else(|| anyhow!("context event without a tag: {ctx}"))?;
    let api_view = call(s1, "GET", &format!("/v1/contexts/{t}"))?;
    let prov = provider_of(&api_view).map(|p| s1.router_ns(p));
    r.undrained_new_context_provider = prov.clone();
    r.context_tags.extend(tags_of(&ctx));
    if let Ok(c2) = wait_fresh(lab, "s2", h2, h1, t_start) {
        r.context_tags.extend(tags_of(&c2));
    }
    lab.timeline.note(
        "s1",
        &format!(
            "new context {t:#x} after the undrain uses {}",
            prov.as_deref().unwrap_or("no provider")
        ),
    );
    let mut second = ScenarioReport::default();
    stream.finish(&mut second)?;
    if !second.sha256_match || second.bytes_sent != second.bytes_received {
        r.problems.push(format!(
            "the stream after the undrain: sent {} bytes, received {}, hashes match: {}",
            second.bytes_sent, second.bytes_received, second.sha256_match
        ));
    }
    Ok(())
}
