//! What a simulation reports (`pshim6 simulate --json` prints it) and the checks that decide
//! whether the scenario did what it must.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use shim6::EngineConfig;

use shim6::prefix64;

use crate::network::Network;
use crate::site::Site;
use crate::{failover_bound, local_down_bound, prefix_a, Scenario, SimOptions};

/// Per-site context counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PerSite {
    /// Site A.
    pub a: u64,
    /// Site B.
    pub b: u64,
}

/// A context as the site's translation table holds it at the end.
#[derive(Debug, Clone, Serialize)]
pub struct ContextRow {
    /// "a" or "b".
    pub site: &'static str,
    /// Our tag (hex).
    pub local_tag: String,
    /// The peer's tag (hex).
    pub peer_tag: String,
    /// Sending pair, "local->peer".
    pub pair: String,
}

/// The outcome of one simulation.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Loss in percent.
    pub loss_percent: f64,
    /// One-way delay in ms.
    pub delay_ms: f64,
    /// Both sites ended with an established context.
    pub established: bool,
    /// Every check of the scenario passed.
    pub ok: bool,
    /// The checks that failed, in words (empty when `ok`).
    pub failed_checks: Vec<String>,
    /// Contexts held by each engine at the end.
    pub contexts: PerSite,
    /// Simulated ms from the cut to the first datagram delivered on the new pair, A to B
    /// (failover, local-down, update), or to the first delivered after the restart (recovery).
    pub failover_ms: Option<f64>,
    /// The same for the B-to-A direction.
    pub reverse_failover_ms: Option<f64>,
    /// The bound `failover_ms` must meet in this scenario.
    pub failover_bound_ms: Option<f64>,
    /// Packets put on the wire, by kind ("payload", "I1", "Probe", ...).
    pub packets: BTreeMap<String, u64>,
    /// Packets dropped by random loss.
    pub lost: u64,
    /// Packets dropped by a cut link.
    pub cut: u64,
    /// Datagrams the two hosts sent.
    pub sent: u64,
    /// Datagrams delivered byte-exact to the two hosts.
    pub delivered: u64,
    /// Payload packets that arrived with a tag the receiver did not know (each answered by an
    /// R1bis), over both sites.
    pub unknown_tag_payloads: u64,
    /// Datagrams delivered altered (must be 0).
    pub corrupted: u64,
    /// Packets seen on the wire with a ULID as source or destination (must be 0).
    pub ulid_on_wire: u64,
    /// Every tag each site established contexts with.
    pub local_tags: BTreeMap<String, Vec<String>>,
    /// Provider prefixes of each site ("2001:db8:a:1::/64"), to tell receivers apart.
    pub provider_prefixes: BTreeMap<String, Vec<String>>,
    /// The translation tables at the end.
    pub table: Vec<ContextRow>,
    /// The capture file, if one was written.
    pub pcap: Option<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn first_after(site: &Site, t: Instant) -> Option<Instant> {
    site.stats
        .deliveries
        .iter()
        .find(|d| d.at > t)
        .map(|d| d.at)
}

fn prefix_text(p: [u8; 8]) -> String {
    let mut o = [0u8; 16];
    o[..8].copy_from_slice(&p);
    format!("{}/64", std::net::Ipv6Addr::from(o))
}

/// Builds the report and runs the scenario's checks.
/// When the run started and ended, and when the scenario's event happened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) event_at: Option<Instant>,
}

pub(crate) fn build(
    opts: &SimOptions,
    config: &EngineConfig,
    t: Timeline,
    a: &Site,
    b: &Site,
    net: &Network,
) -> SimReport {
    let Timeline {
        start,
        end,
        event_at,
    } = t;
    let sc = opts.scenario;
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };
    let contexts = PerSite {
        a: a.engine().contexts().count() as u64,
        b: b.engine().contexts().count() as u64,
    };
    let established = a.table().count() > 0 && b.table().count() > 0;
    check(
        established,
        "both sites end with an established context".into(),
    );
    check(
        a.stats.corrupted + b.stats.corrupted == 0,
        "every datagram delivered byte-exact".into(),
    );
    check(net.stats.ulid_on_wire == 0, "no ULID on the wire".into());
    // Traffic flows both ways during the last 5 s.
    let tail = end.checked_sub(Duration::from_secs(5)).unwrap_or(start);
    check(
        first_after(b, tail).is_some(),
        "A->B traffic flows at the end".into(),
    );
    check(
        first_after(a, tail).is_some(),
        "B->A traffic flows at the end".into(),
    );

    let (mut failover_ms, mut reverse_ms, mut bound_ms) = (None, None, None);
    if let Some(t) = event_at {
        failover_ms = first_after(b, t).map(|d| ms(d - t));
        reverse_ms = first_after(a, t).map(|d| ms(d - t));
        let bound = match sc {
            Scenario::Failover => Some(failover_bound(config, opts.delay, opts.loss_percent)),
            Scenario::LocalDown => Some(if opts.loss_percent > 0.0 {
                // Each lost probe exchange costs one initial probe interval (0.5 s, randomised).
                local_down_bound(opts.delay) + Duration::from_millis(3_000)
            } else {
                local_down_bound(opts.delay)
            }),
            _ => None,
        };
        if let Some(bound) = bound {
            bound_ms = Some(ms(bound));
            check(
                failover_ms.is_some_and(|f| f <= ms(bound)),
                format!(
                    "A->B resumes within {:.0} ms of the cut (took {failover_ms:?})",
                    ms(bound)
                ),
            );
        }
    }
    match sc {
        Scenario::Handshake | Scenario::Simultaneous | Scenario::HostPeer => {
            check(
                contexts == PerSite { a: 1, b: 1 },
                format!("exactly one context per site ({contexts:?})"),
            );
        }
        Scenario::Recovery => {
            // B's counters survive its restart: one Established before, at least one after.
            // Either path rebuilds the context: A's payload with the lost tag (R1bis -> I2bis),
            // or B's own outbound datagram (a fresh handshake) when that comes first.
            check(
                b.stats.established_events >= 2,
                "site B rebuilt the context after its restart".into(),
            );
        }
        Scenario::Update => {
            let removed = prefix_a(1);
            let pair_b = b.current_pair(a.host);
            check(
                pair_b.is_some_and(|p| prefix64(p.peer.0) != removed),
                format!("site B stopped sending to A's removed provider ({pair_b:?})"),
            );
            let pair_a = a.current_pair(b.host);
            check(
                pair_a.is_some_and(|p| prefix64(p.local.0) != removed),
                format!("site A stopped sending from its removed provider ({pair_a:?})"),
            );
        }
        Scenario::Failover | Scenario::LocalDown => {}
    }

    let tags = |s: &Site| {
        s.stats
            .local_tags
            .iter()
            .map(|t| format!("{:#x}", t.get()))
            .collect::<Vec<_>>()
    };
    let mut table = Vec::new();
    for (site, s) in [("a", a), ("b", b)] {
        for (tag, e) in s.table() {
            table.push(ContextRow {
                site,
                local_tag: format!("{:#x}", tag.get()),
                peer_tag: format!("{:#x}", e.peer_tag.get()),
                pair: format!("{}->{}", e.pair.local.0, e.pair.peer.0),
            });
        }
    }
    SimReport {
        scenario: sc.name().to_string(),
        seed: opts.seed,
        loss_percent: opts.loss_percent,
        delay_ms: ms(opts.delay),
        established,
        ok: failed.is_empty(),
        failed_checks: failed,
        contexts,
        failover_ms,
        reverse_failover_ms: reverse_ms,
        failover_bound_ms: bound_ms,
        packets: net.stats.by_kind.clone(),
        lost: net.stats.lost,
        cut: net.stats.cut,
        sent: a.stats.sent + b.stats.sent,
        delivered: a.stats.delivered + b.stats.delivered,
        corrupted: a.stats.corrupted + b.stats.corrupted,
        unknown_tag_payloads: a.stats.unknown_tag + b.stats.unknown_tag,
        ulid_on_wire: net.stats.ulid_on_wire,
        local_tags: [("a".to_string(), tags(a)), ("b".to_string(), tags(b))].into(),
        provider_prefixes: [
            (
                "a".to_string(),
                a.provider_prefixes().into_iter().map(prefix_text).collect(),
            ),
            (
                "b".to_string(),
                b.provider_prefixes().into_iter().map(prefix_text).collect(),
            ),
        ]
        .into(),
        table,
        pcap: opts.pcap.as_ref().map(|p| p.display().to_string()),
    }
}
