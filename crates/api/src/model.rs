//! The JSON documents of the API. Plain data: the binary fills them from the slow path, the
//! DHCPv6 server and the DNS ALG, so this crate depends on none of them.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Context states a `state` filter may name (RFC 5533 §7.2 state names, snake case).
pub const CONTEXT_STATES: [&str; 4] = ["i1_sent", "i2_sent", "i2bis_sent", "established"];

/// Contexts per page when the query gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Most contexts one page may hold.
pub const MAX_LIMIT: usize = 1000;

/// `GET /v1/contexts` query parameters, as received.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContextQuery {
    /// Only contexts of this local ULID (the inside host's CMULA).
    pub ulid: Option<String>,
    /// Only contexts with this peer ULID.
    pub peer: Option<String>,
    /// Only contexts whose current local locator belongs to this provider id.
    pub provider: Option<u16>,
    /// Only contexts in this state (`i1_sent`, `i2_sent`, `i2bis_sent`, `established`).
    pub state: Option<String>,
    /// Contexts to skip (default 0).
    pub offset: Option<usize>,
    /// Contexts per page (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// A checked [`ContextQuery`]: the filter and the page the slow path is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextFilter {
    /// Local ULID.
    pub ulid: Option<Ipv6Addr>,
    /// Peer ULID.
    pub peer: Option<Ipv6Addr>,
    /// Provider id of the current local locator.
    pub provider: Option<u16>,
    /// One of [`CONTEXT_STATES`].
    pub state: Option<&'static str>,
    /// Contexts to skip, in ascending tag order.
    pub offset: usize,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: usize,
}

impl ContextQuery {
    /// Checks every parameter; the error names the parameter and the problem.
    pub fn check(&self) -> Result<ContextFilter, String> {
        let addr = |name: &str, v: &Option<String>| -> Result<Option<Ipv6Addr>, String> {
            v.as_deref()
                .map(|s| {
                    s.parse::<Ipv6Addr>()
                        .map_err(|_| format!("{name}: `{s}` is not an IPv6 address"))
                })
                .transpose()
        };
        let state = match self.state.as_deref() {
            None => None,
            Some(s) => Some(
                CONTEXT_STATES
                    .iter()
                    .copied()
                    .find(|k| *k == s)
                    .ok_or_else(|| {
                        format!(
                            "state: `{s}`: expected one of {}",
                            CONTEXT_STATES.join(", ")
                        )
                    })?,
            ),
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(format!("limit: {limit}: expected 1 to {MAX_LIMIT}"));
        }
        Ok(ContextFilter {
            ulid: addr("ulid", &self.ulid)?,
            peer: addr("peer", &self.peer)?,
            provider: self.provider,
            state,
            offset: self.offset.unwrap_or(0),
            limit,
        })
    }
}

/// One page of contexts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextPage {
    /// The contexts of this page, in ascending tag order.
    pub items: Vec<ContextView>,
    /// Contexts matching the filter, over all pages.
    pub total: usize,
    /// Contexts skipped before this page.
    pub offset: usize,
    /// Page size asked for.
    pub limit: usize,
    /// `offset` of the next page, absent on the last one.
    pub next_offset: Option<usize>,
}

impl ContextPage {
    /// The page of `filter` out of `matching` (all contexts that pass the filter, in order).
    pub fn cut(matching: Vec<ContextView>, filter: &ContextFilter) -> Self {
        let total = matching.len();
        let items: Vec<ContextView> = matching
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit)
            .collect();
        let end = filter.offset.saturating_add(items.len());
        Self {
            next_offset: (end < total).then_some(end),
            items,
            total,
            offset: filter.offset,
            limit: filter.limit,
        }
    }
}

/// A locator pair (our locator, the peer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocatorPairView {
    /// Our locator (a provider's PA prefix + the host's interface id).
    #[schema(value_type = String, format = Ipv6)]
    pub local: Ipv6Addr,
    /// The peer's locator.
    #[schema(value_type = String, format = Ipv6)]
    pub peer: Ipv6Addr,
}

/// One peer locator as the context knows it (RFC 5533 §7.2 Ls(peer)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerLocatorView {
    /// The locator.
    #[schema(value_type = String, format = Ipv6)]
    pub locator: Ipv6Addr,
    /// Bound to the peer ULID by CGA or HBA.
    pub verified: bool,
    /// Locator Preferences flags (BROKEN 0x01, TRANSIENT 0x02).
    pub flags: u8,
    /// Locator Preferences priority.
    pub priority: u8,
    /// Locator Preferences weight.
    pub weight: u8,
}

/// Traffic counters of one context, summed over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct TrafficView {
    /// Packets received (outside → inside).
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent (inside → outside).
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// One SHIM6 context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextView {
    /// CT(local), the 47-bit tag we allocated (decimal).
    pub tag: u64,
    /// CT(peer), once known.
    pub peer_tag: Option<u64>,
    /// The inside host's ULID.
    #[schema(value_type = String, format = Ipv6)]
    pub local_ulid: Ipv6Addr,
    /// The peer's ULID.
    #[schema(value_type = String, format = Ipv6)]
    pub peer_ulid: Ipv6Addr,
    /// Forked Instance Identifier (0 = default context).
    pub fii: u32,
    /// `i1_sent`, `i2_sent`, `i2bis_sent` or `established`.
    pub state: String,
    /// The pair payload uses.
    pub pair: LocatorPairView,
    /// Provider id owning `pair.local`.
    pub provider: Option<u16>,
    /// Our locators for the host (providers that are up).
    #[schema(value_type = Vec<String>)]
    pub local_locators: Vec<Ipv6Addr>,
    /// The peer's locators.
    pub peer_locators: Vec<PeerLocatorView>,
    /// REAP state (`operational`, `exploring`, `inbound_ok`), once established.
    pub reap_state: Option<String>,
    /// An Update Request of ours awaits its acknowledgement.
    pub update_pending: bool,
    /// Traffic, when the context is in the data-plane table.
    pub traffic: Option<TrafficView>,
}

/// `PUT /v1/dns/upstreams`: the DNS ALG's upstream servers, applied live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsUpstreams {
    /// IPv6 socket addresses (`[2001:db8::53]:53`), tried in order; at least one.
    #[schema(min_items = 1, example = json!(["[2001:db8::53]:53"]))]
    pub upstreams: Vec<String>,
}

/// `POST /v1/contexts/{tag}/move`: the pair the context should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// Our locator to use (one of the context's `local_locators`).
    #[schema(value_type = String, format = Ipv6)]
    pub local: Ipv6Addr,
    /// The peer locator to use (a verified one of `peer_locators`).
    #[schema(value_type = String, format = Ipv6)]
    pub peer: Ipv6Addr,
}

/// Contexts per REAP state (RFC 5534 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ReapView {
    /// Both directions believed to work.
    pub operational: usize,
    /// Nothing heard from the peer for a Send Timeout: probing.
    pub exploring: usize,
    /// The peer's packets arrive, ours may not.
    pub inbound_ok: usize,
}

/// One provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    /// Provider id from the configuration.
    pub id: u16,
    /// Its interface.
    pub name: String,
    /// Its PA prefix (`ADDR/64`).
    pub prefix: String,
    /// Link state as the port reports it: `up`, `down` or `unknown`.
    pub link: String,
    /// Whether the engine offers this provider's locators.
    pub up: bool,
    /// Drained for maintenance (no new or moved contexts use it).
    pub drained: bool,
    /// Contexts whose current local locator belongs to this provider.
    pub contexts: usize,
    /// Those contexts by REAP state.
    pub reap: ReapView,
    /// Bytes (both directions) of the table's contexts on this provider.
    pub bytes: u64,
    /// Share of all contexts' bytes carried by this provider (0..=1).
    pub traffic_share: f64,
    /// Frames the port received.
    pub rx_packets: u64,
    /// Frames the port sent.
    pub tx_packets: u64,
    /// Frames the port dropped (receive overruns and full transmit rings).
    pub drops: u64,
    /// The routes this provider announces, when the BGP signal follows it (`[bgp_signal]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpRoutesView>,
}

/// What the BGP failure signal knows of one provider's routes (issue #9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BgpRoutesView {
    /// Prefixes in the provider's kernel table now.
    pub routes: usize,
    /// Whether the first dump of the table is complete (paths are marked only then).
    pub synced: bool,
    /// Prefixes the provider withdrew since start.
    pub withdrawals: u64,
    /// Milliseconds since the last withdrawal (`null`: none yet).
    pub last_withdraw_ms_ago: Option<u64>,
}

/// One DHCPv6 binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostView {
    /// Client DUID (hex).
    pub duid: String,
    /// The CMULA handed out (the host's ULID).
    #[schema(value_type = String, format = Ipv6)]
    pub cmula: Ipv6Addr,
    /// The host's locators, one per provider.
    #[schema(value_type = Vec<String>)]
    pub locators: Vec<Ipv6Addr>,
    /// Lease state.
    pub state: String,
    /// End of the valid lifetime, seconds since the Unix epoch (0 for a fixed binding).
    pub valid_until: u64,
}

/// One entry of the DNS ALG's peer locator cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DnsCacheEntry {
    /// The peer ULID.
    #[schema(value_type = String, format = Ipv6)]
    pub ulid: Ipv6Addr,
    /// Its locators, in DNS order.
    #[schema(value_type = Vec<String>)]
    pub locators: Vec<Ipv6Addr>,
    /// Seconds of lifetime left.
    pub remaining_secs: u64,
}

/// Counters of one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    /// Worker index.
    pub index: usize,
    /// Frames received.
    pub packets: u64,
    /// Non-empty receive bursts.
    pub bursts: u64,
    /// Loop iterations (moves even when idle).
    pub heartbeat: u64,
    /// Pinned to its configured core.
    pub pinned: bool,
    /// Frames forwarded, per path.
    pub forwarded: BTreeMap<String, u64>,
    /// Frames punted to the slow path, per reason.
    pub punted: BTreeMap<String, u64>,
    /// Punts lost because the queue was full, per reason.
    pub punt_dropped: BTreeMap<String, u64>,
    /// Frames dropped, per reason.
    pub dropped: BTreeMap<String, u64>,
}

/// Counters of one port, summed over its queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortView {
    /// Port number (0 = inside).
    pub port: u16,
    /// Interface.
    pub name: String,
    /// `up`, `down` or `unknown`.
    pub link: String,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Receive drops (ring overruns, truncated frames).
    pub rx_dropped: u64,
    /// Transmit drops (ring full).
    pub tx_dropped: u64,
}

/// SHIM6 handshakes (RFC 5533 §7) counted by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct HandshakeView {
    /// I1 sent (first tries).
    pub i1_sent: u64,
    /// I1 retransmitted.
    pub i1_retransmitted: u64,
    /// I2 sent.
    pub i2_sent: u64,
    /// R2 sent.
    pub r2_sent: u64,
    /// Contexts established into the data-plane table.
    pub established: u64,
    /// Live contexts now.
    pub contexts: usize,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// Per worker.
    pub workers: Vec<WorkerView>,
    /// Per port.
    pub ports: Vec<PortView>,
    /// Drops over all workers, per reason.
    pub drops: BTreeMap<String, u64>,
    /// Frames waiting in the punt queue now.
    pub punt_queue_depth: usize,
    /// Frames waiting in the inject queue now.
    pub inject_queue_depth: usize,
    /// Handshakes.
    pub handshakes: HandshakeView,
    /// Slow-path counters by name (absent when the slow path did not answer).
    pub slow_path: Option<BTreeMap<String, u64>>,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    /// What was checked (`workers`, `slow_path`, `dns_upstream`, ...).
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// Why, for a person.
    pub detail: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Every check passed.
    pub ready: bool,
    /// The checks.
    pub checks: Vec<CheckView>,
}

impl Readiness {
    /// Readiness of `checks`.
    pub fn of(checks: Vec<CheckView>) -> Self {
        Self {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `alive`.
    pub status: String,
    /// Crate version.
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(tag: u64) -> ContextView {
        ContextView {
            tag,
            peer_tag: None,
            local_ulid: Ipv6Addr::LOCALHOST,
            peer_ulid: Ipv6Addr::LOCALHOST,
            fii: 0,
            state: "established".into(),
            pair: LocatorPairView {
                local: Ipv6Addr::LOCALHOST,
                peer: Ipv6Addr::LOCALHOST,
            },
            provider: None,
            local_locators: vec![],
            peer_locators: vec![],
            reap_state: None,
            update_pending: false,
            traffic: None,
        }
    }

    fn filter(offset: usize, limit: usize) -> ContextFilter {
        ContextFilter {
            offset,
            limit,
            ..ContextFilter::default()
        }
    }

    #[test]
    fn pages_cover_every_context_once() {
        let all: Vec<_> = (1..=25).map(ctx).collect();
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let p = ContextPage::cut(all.clone(), &filter(offset, 10));
            assert_eq!(p.total, 25);
            seen.extend(p.items.iter().map(|c| c.tag));
            match p.next_offset {
                Some(n) => offset = n,
                None => break,
            }
        }
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
        let last = ContextPage::cut(all.clone(), &filter(20, 10));
        assert_eq!((last.items.len(), last.next_offset), (5, None));
        let past = ContextPage::cut(all, &filter(100, 10));
        assert!(past.items.is_empty() && past.next_offset.is_none());
    }

    #[test]
    fn query_parameters_are_checked_by_name() {
        let q = ContextQuery {
            ulid: Some("fc00::1".into()),
            state: Some("established".into()),
            ..ContextQuery::default()
        };
        let f = q.check().unwrap();
        assert_eq!(f.ulid, Some("fc00::1".parse().unwrap()));
        assert_eq!(
            (f.offset, f.limit, f.state),
            (0, DEFAULT_LIMIT, Some("established"))
        );
        let bad = |q: ContextQuery, key: &str| {
            let e = q.check().unwrap_err();
            assert!(e.starts_with(key), "{e}");
        };
        bad(
            ContextQuery {
                peer: Some("nowhere".into()),
                ..ContextQuery::default()
            },
            "peer:",
        );
        bad(
            ContextQuery {
                state: Some("open".into()),
                ..ContextQuery::default()
            },
            "state:",
        );
        bad(
            ContextQuery {
                limit: Some(0),
                ..ContextQuery::default()
            },
            "limit:",
        );
        bad(
            ContextQuery {
                limit: Some(MAX_LIMIT + 1),
                ..ContextQuery::default()
            },
            "limit:",
        );
    }
}
