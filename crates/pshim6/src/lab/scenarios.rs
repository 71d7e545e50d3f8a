//! The scenarios: a TCP stream h1 → h2 across a provider failure (cut at the provider's side,
//! found by REAP; or the proxy's own interface going down), and h1 reaching the legacy
//! external host through the stateless NATv6 fallback.

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::capture::{tshark_payload_frames_all, Captures};
use super::cmd::exec;
use super::report::ScenarioReport;
use super::routers::{all_ingress_drops, provider_side_link, proxy_side_link};
use super::timeline::{now_ms, ProxyEvent};
use super::topology::{ns, Prov, Site, EXT_ADDR};
use super::traffic::Traffic;
use super::Lab;

/// Payload rate of the streams (bytes per second).
pub(super) const RATE: u64 = 500_000;
/// How long a stream runs before the cut, and after it resumed.
pub(super) const STEADY: Duration = Duration::from_millis(1200);
/// What TCP adds to the REAP bound: after the path returns, the next retransmission can come
/// up to one more outage later (exponential backoff), plus the minimum RTO (200 ms).
const TCP_BACKOFF_SLACK_MS: u64 = 200;
/// The longest stall accepted in the NATv6 stream (no failure is injected there).
const NATV6_GAP_LIMIT_MS: u64 = 2000;
/// Slack on the proxy-side failover time for the event poll and the housekeeping tick.
const DETECT_SLACK_MS: u64 = 150;

/// The S1 context of (local, peer) as last reported: established or changed since.
pub(super) fn current_context(
    lab: &Lab,
    who: &str,
    local: Ipv6Addr,
    peer: Ipv6Addr,
) -> Option<Value> {
    let (l, p) = (local.to_string(), peer.to_string());
    let mut cur: Option<Value> = None;
    for e in lab.timeline.events().into_iter().filter(|e| e.who == who) {
        let d = &e.data;
        if d["local_ulid"] != l.as_str() || d["peer_ulid"] != p.as_str() {
            continue;
        }
        match e.kind() {
            "context-established" | "context-pair-changed" | "context-peer-tag-changed" => {
                cur = Some(e.data.clone())
            }
            "context-removed" => cur = None,
            _ => {}
        }
    }
    cur
}

pub(super) fn wait_context(
    lab: &Lab,
    who: &str,
    local: Ipv6Addr,
    peer: Ipv6Addr,
    timeout: Duration,
) -> Result<Value> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(c) = current_context(lab, who, local, peer) {
            return Ok(c);
        }
        lab.check_interrupted()?;
        if Instant::now() > until {
            bail!("{who} reported no context {local} <-> {peer} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A receiver and a sender.
pub(super) struct Stream {
    recv: Traffic,
    send: Traffic,
}

impl Stream {
    pub(super) fn start(
        lab: &Lab,
        name: &str,
        from: &str,
        to_ns: &str,
        to: Ipv6Addr,
        port: u16,
    ) -> Result<Self> {
        let addr = SocketAddr::V6(SocketAddrV6::new(to, port, 0, 0));
        let recv = Traffic::receiver(&format!("recv-{name}"), to_ns, addr)?;
        let send = Traffic::sender(&format!("send-{name}"), from, addr, RATE)?;
        let who = from.trim_start_matches("p6l-");
        lab.timeline.note(
            who,
            &format!("TCP stream to [{to}]:{port} started ({RATE} B/s)"),
        );
        Ok(Self { recv, send })
    }

    pub(super) fn received(&self) -> u64 {
        self.recv.state.lock().map(|s| s.bytes()).unwrap_or(0)
    }

    /// Waits until the receiver got `bytes` in all.
    pub(super) fn wait_bytes(&self, lab: &Lab, bytes: u64, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        while self.received() < bytes {
            lab.check_interrupted()?;
            if Instant::now() > until {
                bail!(
                    "the stream stalled at {} bytes (waiting for {bytes})",
                    self.received()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the sender and fills the byte counts and hash check of `r`.
    pub(super) fn finish(mut self, r: &mut ScenarioReport) -> Result<Option<String>> {
        self.send.finish();
        let sent = self.send.result(Duration::from_secs(20))?;
        let got = self.recv.result(Duration::from_secs(5))?;
        r.bytes_sent = sent["bytes"].as_u64().unwrap_or(0);
        r.bytes_received = got["bytes"].as_u64().unwrap_or(0);
        r.sha256_match = sent["sha256"].is_string() && sent["sha256"] == got["sha256"];
        r.failover_gap_ms = got["max_gap_ms"].as_u64().unwrap_or(u64::MAX);
        r.gap_end_ms = got["max_gap_end_ms"].as_u64();
        Ok(self.recv.state.lock().ok().and_then(|s| s.peer.clone()))
    }
}

/// Reads the captures into `r` (ULIDs, tags, tshark cross-check).
pub(super) fn read_captures(lab: &Lab, caps: Captures, r: &mut ScenarioReport) -> Result<()> {
    let files = caps.files.clone();
    let f = caps.finish()?;
    lab.timeline.note(
        "lab",
        &format!(
            "provider links: {} IPv6 frames, {} with a Shim6 payload header (tags {:x?}), {} Shim6 control, {} with a CMULA",
            f.frames, f.payload_frames, f.tags, f.control_frames, f.ulid_frames
        ),
    );
    let tshark = tshark_payload_frames_all(&files)?;
    lab.timeline.note(
        "lab",
        &format!("tshark: {tshark} frames with a Shim6 payload header"),
    );
    r.ulid_seen_on_provider_links = f.ulid_frames > 0;
    r.tags_on_links = f.tags;
    r.payload_frames = (f.payload_frames, tshark);
    Ok(())
}

pub(super) fn tags_of(ctx: &Value) -> [u64; 2] {
    [
        ctx["local_tag"].as_u64().unwrap_or(0),
        ctx["peer_tag"].as_u64().unwrap_or(0),
    ]
}

/// `failover` (`local == false`: S1's active provider cut at the provider side, found by
/// REAP) or `local-down` (S1's proxy's own interface to it goes down).
pub(crate) fn failover(lab: &Lab, local: bool) -> Result<ScenarioReport> {
    let name = if local { "local-down" } else { "failover" };
    let bound = super::proxies::reap_bound();
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    let mut r = ScenarioReport {
        scenario: name.into(),
        reap_bound_ms: bound_ms,
        gap_limit_ms: if local {
            1000
        } else {
            2 * bound_ms + TCP_BACKOFF_SLACK_MS
        },
        ..ScenarioReport::default()
    };
    lab.timeline
        .note("lab", &format!("=== scenario {name} ==="));
    let (s1, s2) = (Site(1), Site(2));
    let drops_before = all_ingress_drops()?;
    let caps = Captures::start(name)?;
    let h2 = lab.resolve_peer(s1, s2)?;
    r.resolved = lab.last_resolution();
    let h1 = lab.ulid(s1);
    let port = if local { 5002 } else { 5001 };
    let stream = Stream::start(lab, name, &s1.host_ns(), &s2.host_ns(), h2, port)?;
    wait_context(lab, "s1", h1, h2, Duration::from_secs(10))?;
    let steady = RATE * u64::try_from(STEADY.as_millis()).unwrap_or(0) / 1000;
    stream.wait_bytes(lab, steady, Duration::from_secs(10))?;
    lab.timeline.note(
        "h2",
        &format!("bytes flowing: {} bytes received", stream.received()),
    );
    // The pair in use right now (REAP may have moved it since the context was made).
    let ctx = wait_context(lab, "s1", h1, h2, Duration::from_secs(1))?;
    let active = ctx["provider"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .and_then(Prov::from_id)
        .ok_or_else(|| anyhow!("context without a provider: {ctx}"))?;
    r.cut_provider = Some(s1.router_ns(active));
    let t_issue = now_ms();
    let at_cut = stream.received();
    if local {
        proxy_side_link(s1, active, false)?;
        lab.timeline.note(
            "s1",
            &format!(
                "CUT: {} taken down on the proxy (local link-down)",
                s1.proxy_if(active)
            ),
        );
    } else {
        provider_side_link(s1, active, false)?;
        lab.timeline.note(
            &s1.router_ns(active),
            "CUT: the provider disabled its port to S1 (the proxy keeps its carrier)",
        );
    }
    // The command itself can wait long for the kernel's RTNL lock on a loaded machine; the
    // link changes when it completes, so the failover time counts from there.
    let t_cut = now_ms();
    r.cut_command_ms = t_cut.saturating_sub(t_issue);
    let local_tag = ctx["local_tag"].clone();
    let moved = lab
        .timeline
        .wait_for(bound * 3 + Duration::from_secs(2), |e: &ProxyEvent| {
            e.who == "s1"
                && e.kind() == "context-pair-changed"
                && e.t_ms() >= t_issue
                && e.data["local_tag"] == local_tag
        });
    match &moved {
        Some(e) => {
            let d = e.t_ms().saturating_sub(t_cut);
            r.failover_detect_ms = Some(d);
            r.new_provider = e.data["provider"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .and_then(Prov::from_id)
                .map(|p| s1.router_ns(p));
            lab.timeline
                .note("s1", &format!("failover detected {d} ms after the cut"));
            let limit = if local {
                1000
            } else {
                bound_ms + DETECT_SLACK_MS
            };
            if d > limit {
                r.problems.push(format!(
                    "failover took {d} ms at the proxy (bound {limit} ms)"
                ));
            }
        }
        None => r
            .problems
            .push("the proxy never moved the context off the cut provider".into()),
    }
    if !local {
        let saw_down = lab
            .timeline
            .events()
            .iter()
            .any(|e| e.who == "s1" && e.kind() == "link-down" && e.t_ms() >= t_issue);
        if saw_down {
            r.problems
                .push("the proxy saw a link-down: the cut was not provider-side only".into());
        }
    }
    let resumed = stream.wait_bytes(lab, at_cut + 256 * 1024, bound * 3 + Duration::from_secs(5));
    match resumed {
        Ok(()) => lab.timeline.note(
            "h2",
            &format!("stream resumed: {} bytes received", stream.received()),
        ),
        Err(e) => r.problems.push(format!("the stream did not resume: {e}")),
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
    if local {
        proxy_side_link(s1, active, true)?;
    } else {
        provider_side_link(s1, active, true)?;
    }
    lab.timeline
        .note("lab", &format!("link to {} restored", s1.router_ns(active)));
    if let Some(c) = current_context(lab, "s1", h1, h2) {
        r.context_tags.extend(tags_of(&c));
    }
    if let Some(c) = current_context(lab, "s2", h2, h1) {
        let [l2, p2] = tags_of(&c);
        let [l1, p1] = tags_of(&ctx);
        if l2 != p1 || p2 != l1 {
            r.problems.push(format!(
                "the proxies disagree on the tags: s1 local {l1:#x} peer {p1:#x}, s2 local {l2:#x} peer {p2:#x}"
            ));
        }
        r.context_tags.extend([l2, p2]);
    }
    read_captures(lab, caps, &mut r)?;
    r.ingress_filter_drops = all_ingress_drops()?.saturating_sub(drops_before);
    r.check(true);
    Ok(r)
}

/// `natv6`: h1 pings and streams to the legacy external host (no ULID record): the proxy
/// translates h1's CMULA to a locator (stateless NATv6), no context is made.
pub(crate) fn natv6(lab: &Lab) -> Result<ScenarioReport> {
    let mut r = ScenarioReport {
        scenario: "natv6".into(),
        reap_bound_ms: u64::try_from(super::proxies::reap_bound().as_millis()).unwrap_or(0),
        // Nothing fails here: the limit only catches a stream that stalls for no reason.
        gap_limit_ms: NATV6_GAP_LIMIT_MS,
        ..ScenarioReport::default()
    };
    lab.timeline.note("lab", "=== scenario natv6 ===");
    let s1 = Site(1);
    let drops_before = all_ingress_drops()?;
    let caps = Captures::start("natv6")?;
    let ext = lab.resolve_ext(s1)?;
    r.resolved = lab.last_resolution();
    let out = exec(
        &s1.host_ns(),
        &[
            "ping",
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &ext.to_string(),
        ],
    )
    .unwrap_or_else(|e| e.to_string());
    let nums: Vec<u32> = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .take(2)
                .collect()
        })
        .unwrap_or_default();
    let ping = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
    );
    r.ping = Some(ping);
    lab.timeline.note(
        "h1",
        &format!("ping {ext}: {} sent, {} answered", ping.0, ping.1),
    );
    if ping.0 == 0 || ping.1 != ping.0 {
        r.problems.push(format!("ping to the external host: {out}"));
    }
    let stream = Stream::start(lab, "natv6", &s1.host_ns(), &ns("ext"), EXT_ADDR, 5003)?;
    let steady = RATE * u64::try_from(STEADY.as_millis()).unwrap_or(0) / 1000;
    stream.wait_bytes(lab, steady, Duration::from_secs(10))?;
    lab.timeline.note(
        "ext",
        &format!("bytes flowing: {} bytes received", stream.received()),
    );
    let peer = stream.finish(&mut r)?;
    let h1 = lab.ulid(s1);
    let seen = peer
        .as_deref()
        .and_then(|p| p.parse::<SocketAddr>().ok())
        .map(|a| a.ip());
    let expected: BTreeSet<Ipv6Addr> = Prov::ALL
        .iter()
        .map(|p| super::topology::with_prefix(s1.pa_prefix(*p), h1))
        .collect();
    match seen {
        Some(std::net::IpAddr::V6(a)) if expected.contains(&a) => lab.timeline.note(
            "ext",
            &format!("the external host saw h1 as {a} (h1's locator: NATv6)"),
        ),
        other => r.problems.push(format!(
            "the external host saw h1 as {other:?}, not as one of its locators {expected:?}"
        )),
    }
    if current_context(lab, "s1", h1, ext).is_some() {
        r.problems
            .push("a SHIM6 context was made for a legacy peer".into());
    }
    read_captures(lab, caps, &mut r)?;
    r.ingress_filter_drops = all_ingress_drops()?.saturating_sub(drops_before);
    r.check(false);
    Ok(r)
}
