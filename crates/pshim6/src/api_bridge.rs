//! The running appliance as the operator API sees it ([`api::Appliance`]): slow-path state
//! through its control channel (bounded wait), data-plane counters straight from the
//! workers' and ports' atomics at request time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::metrics::{Kind, MetricsWriter, Sample};
use api::model::{
    BgpRoutesView, CheckView, ContextFilter, ContextPage, ContextView, DnsCacheEntry,
    HandshakeView, HostView, LocatorPairView, MoveRequest, PeerLocatorView, PortView, ProviderView,
    ReapView, StatsView, TrafficView, WorkerView,
};
use api::ApiError;
use dataplane::fastpath::{DropReason, Path, PuntReason};
use dataplane::io::PortId;
use dataplane::punt::{PuntLane, SlowPathLink};
use dataplane::slowpath::control::{self, ContextSnapshot, ControlClient, ControlError};
use dataplane::slowpath::te::{ProviderTeView, TeError, TeHandle, TePolicy, TeView};
use dataplane::slowpath::LinkState;
use dataplane::worker::{WorkerMonitor, WorkerStats};
use shim6::{ContextState, EngineStats, Shim6Error};
use wire::{ContextTag, Locator, LocatorPair, ReapState, Ulid};

/// How long `/readyz` watches the worker heartbeats.
const HEARTBEAT_WINDOW: Duration = Duration::from_millis(50);

/// The appliance: handles onto a running pipeline.
pub(crate) struct Bridge {
    pub(crate) control: ControlClient,
    pub(crate) workers: Vec<WorkerMonitor>,
    pub(crate) links: LinkState,
    pub(crate) queues: Arc<SlowPathLink>,
    /// Every port and its interface.
    pub(crate) ports: Vec<(PortId, String)>,
    /// Provider id, port, interface.
    pub(crate) providers: Vec<(u16, PortId, String)>,
    /// Traffic engineering of the slow path (policy, drain).
    pub(crate) te: TeHandle,
    /// DNS ALG upstream counters (sent, timed out) at the previous readiness check.
    pub(crate) dns_seen: std::sync::Mutex<(u64, u64)>,
    /// Route announcement, when `[announce]` is configured.
    pub(crate) announcer: Option<Arc<crate::announce::Announcer>>,
}

/// A counter by name, 0 when absent.
fn counter(v: &[(String, u64)], name: &str) -> u64 {
    v.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c)
}

/// How long a drain or policy change may take to show in the slow path's TE view.
const TE_APPLY: Duration = Duration::from_secs(3);

fn unavailable(e: ControlError) -> ApiError {
    ApiError::Unavailable(format!("slow path: {e}"))
}

fn tag_of(tag: u64) -> Result<ContextTag, ApiError> {
    ContextTag::new(tag)
        .ok_or_else(|| ApiError::BadRequest(format!("tag: {tag} is not a 47-bit context tag")))
}

/// RFC 5533 §7.2 state, snake case (the names of [`api::model::CONTEXT_STATES`]).
pub(crate) fn state_name(s: ContextState) -> &'static str {
    match s {
        ContextState::I1Sent => "i1_sent",
        ContextState::I2Sent => "i2_sent",
        ContextState::I2bisSent => "i2bis_sent",
        ContextState::Established => "established",
    }
}

fn state_of(name: &str) -> Option<ContextState> {
    [
        ContextState::I1Sent,
        ContextState::I2Sent,
        ContextState::I2bisSent,
        ContextState::Established,
    ]
    .into_iter()
    .find(|s| state_name(*s) == name)
}

fn reap_name(s: ReapState) -> String {
    match s {
        ReapState::Operational => "operational".into(),
        ReapState::Exploring => "exploring".into(),
        ReapState::InboundOk => "inbound_ok".into(),
        ReapState::Unknown(n) => format!("unknown_{n}"),
    }
}

fn link_name(l: Option<bool>) -> String {
    match l {
        Some(true) => "up",
        Some(false) => "down",
        None => "unknown",
    }
    .into()
}

/// The JSON view of a context.
pub(crate) fn context_view(c: &ContextSnapshot) -> ContextView {
    let i = &c.info;
    ContextView {
        tag: i.local_tag.get(),
        peer_tag: i.peer_tag.map(ContextTag::get),
        local_ulid: i.local_ulid.0,
        peer_ulid: i.peer_ulid.0,
        fii: i.fii,
        state: state_name(i.state).into(),
        pair: LocatorPairView {
            local: i.pair.local.0,
            peer: i.pair.peer.0,
        },
        provider: c.provider,
        local_locators: i.local_locators.iter().map(|l| l.0).collect(),
        peer_locators: i
            .peer_locators
            .iter()
            .map(|p| PeerLocatorView {
                locator: p.locator.0,
                verified: p.verified,
                flags: p.flags,
                priority: p.priority,
                weight: p.weight,
            })
            .collect(),
        reap_state: i.reap_state.map(reap_name),
        update_pending: i.update_pending,
        traffic: c.activity.map(|a| TrafficView {
            rx_packets: a.rx_pkts,
            rx_bytes: a.rx_bytes,
            tx_packets: a.tx_pkts,
            tx_bytes: a.tx_bytes,
        }),
    }
}

/// Every engine counter by name (from its `Debug` form, so a new counter shows up without
/// touching this list).
pub(crate) fn engine_counters(e: &EngineStats) -> Vec<(String, u64)> {
    format!("{e:#?}")
        .lines()
        .skip(1)
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            let (n, v) = line.split_once(": ")?;
            Some((n.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn named(names: &[&str], values: &[u64]) -> BTreeMap<String, u64> {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| ((*n).to_string(), *v))
        .collect()
}

impl Bridge {
    /// The TE view once `done` holds for it (the slow path applies commands at its next
    /// step), or 503.
    fn te_view_when(&self, done: impl Fn(&TeView) -> bool) -> Result<TeView, ApiError> {
        let end = std::time::Instant::now() + TE_APPLY;
        loop {
            if let Some(v) = self.te.view().filter(|v| done(v)) {
                return Ok(v);
            }
            if std::time::Instant::now() >= end {
                return Err(ApiError::Unavailable(format!(
                    "traffic engineering did not apply the change within {TE_APPLY:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn drain_or_undrain(&self, name: &str, drain: bool) -> Result<ProviderView, ApiError> {
        let Some((id, _, _)) = self.provider_by_name(name).cloned() else {
            return Err(ApiError::NotFound(format!(
                "provider {name}: no such provider"
            )));
        };
        let r = if drain {
            self.te.drain(id)
        } else {
            self.te.undrain(id)
        };
        r.map_err(|e| match e {
            TeError::UnknownProvider(_) => {
                ApiError::NotFound(format!("provider {name}: no such provider"))
            }
            other => ApiError::Conflict(format!("provider {name}: {other}")),
        })?;
        self.te_view_when(|v| v.providers.iter().any(|p| p.id == id && p.drained == drain))?;
        use api::Appliance as _;
        self.providers()?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| ApiError::Internal(format!("provider {id} vanished")))
    }

    /// `[announce]`: each route installed or not, and the operator's withdrawal.
    fn metrics_announce(&self, w: &mut MetricsWriter) {
        let Some(a) = &self.announcer else {
            return;
        };
        let v = a.view();
        let samples: Vec<Sample> = v
            .routes
            .iter()
            .map(|r| {
                Sample::with(
                    vec![("prefix", r.prefix.clone()), ("towards", r.towards.clone())],
                    if r.installed { 1.0 } else { 0.0 },
                )
            })
            .collect();
        w.family(
            "pshim6_announce_route_installed",
            Kind::Gauge,
            "1 when the route is in the kernel for BIRD to announce ([announce]).",
            &samples,
        );
        w.gauge(
            "pshim6_announce_operator_withdrawn",
            "1 while the operator has withdrawn the announcement.",
            if v.operator_withdrawn { 1.0 } else { 0.0 },
        );
    }

    fn provider_by_name(&self, name: &str) -> Option<&(u16, PortId, String)> {
        self.providers
            .iter()
            .find(|(id, _, ifname)| ifname == name || id.to_string() == name)
    }

    fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers.iter().map(WorkerMonitor::stats).collect()
    }

    fn port_views(&self) -> Vec<PortView> {
        self.ports
            .iter()
            .map(|(port, name)| {
                let c = self.links.counters(*port).unwrap_or_default();
                PortView {
                    port: port.0,
                    name: name.clone(),
                    link: link_name(self.links.get(*port)),
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                    rx_dropped: c.rx_dropped,
                    tx_dropped: c.tx_dropped,
                }
            })
            .collect()
    }

    fn metrics_workers(&self, w: &mut MetricsWriter, stats: &[WorkerStats]) {
        let per_worker = |f: &dyn Fn(&WorkerStats) -> u64| -> Vec<Sample> {
            stats
                .iter()
                .enumerate()
                .map(|(i, s)| Sample::with(vec![("worker", i.to_string())], f(s) as f64))
                .collect()
        };
        let by_reason = |label: &'static str,
                         names: &[&str],
                         f: &dyn Fn(&WorkerStats) -> Vec<u64>|
         -> Vec<Sample> {
            let mut v = Vec::new();
            for (i, s) in stats.iter().enumerate() {
                for (n, c) in names.iter().zip(f(s)) {
                    v.push(Sample::with(
                        vec![("worker", i.to_string()), (label, (*n).to_string())],
                        c as f64,
                    ));
                }
            }
            v
        };
        w.family(
            "pshim6_worker_packets_total",
            Kind::Counter,
            "Frames a worker received.",
            &per_worker(&|s| s.fast_path.packets),
        );
        w.family(
            "pshim6_worker_heartbeat_total",
            Kind::Counter,
            "Worker loop iterations (moves even when idle).",
            &per_worker(&|s| s.heartbeat),
        );
        w.family(
            "pshim6_worker_pinned",
            Kind::Gauge,
            "1 when the worker runs pinned to its configured core.",
            &per_worker(&|s| u64::from(s.pinned)),
        );
        w.family(
            "pshim6_forwarded_total",
            Kind::Counter,
            "Frames forwarded by the fast path, per path.",
            &by_reason("path", &Path::NAMES, &|s| s.fast_path.forwarded.to_vec()),
        );
        w.family(
            "pshim6_punted_total",
            Kind::Counter,
            "Frames punted to the slow path, per reason.",
            &by_reason("reason", &PuntReason::NAMES, &|s| {
                s.fast_path.punted.to_vec()
            }),
        );
        w.family(
            "pshim6_punt_dropped_total",
            Kind::Counter,
            "Punts lost because the punt queue was full, per reason.",
            &by_reason("reason", &PuntReason::NAMES, &|s| s.punt_dropped.to_vec()),
        );
        let lanes: Vec<Sample> = stats
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                PuntLane::ALL.into_iter().map(move |lane| {
                    Sample::with(
                        vec![
                            ("worker", i.to_string()),
                            ("lane", PuntLane::NAMES[lane.index()].to_string()),
                        ],
                        s.punt_dropped_lane(lane) as f64,
                    )
                })
            })
            .collect();
        w.family(
            "pshim6_punt_lane_dropped_total",
            Kind::Counter,
            "Punts lost because their lane of the punt queue was full: `control` (Shim6 \
             control, ND, the proxy's own services) or `data` (no context, unknown tag: what a \
             flood is made of).",
            &lanes,
        );
        w.family(
            "pshim6_dropped_total",
            Kind::Counter,
            "Frames the fast path dropped, per reason.",
            &by_reason("reason", &DropReason::NAMES, &|s| {
                s.fast_path.dropped.to_vec()
            }),
        );
    }

    fn metrics_te(&self, w: &mut MetricsWriter) {
        let Some(v) = self.te.view() else {
            return;
        };
        let labels = |id: u16| {
            let name = self
                .providers
                .iter()
                .find(|(p, _, _)| *p == id)
                .map_or_else(String::new, |(_, _, n)| n.clone());
            vec![("provider", id.to_string()), ("interface", name)]
        };
        let fam = |w: &mut MetricsWriter,
                   name: &str,
                   help: &str,
                   f: &dyn Fn(&ProviderTeView) -> Option<f64>| {
            let samples: Vec<Sample> = v
                .providers
                .iter()
                .filter_map(|p| f(p).map(|x| Sample::with(labels(p.id), x)))
                .collect();
            w.family(name, Kind::Gauge, help, &samples);
        };
        fam(
            w,
            "pshim6_provider_drained",
            "1 when the provider is drained for maintenance.",
            &|p| Some(if p.drained { 1.0 } else { 0.0 }),
        );
        fam(
            w,
            "pshim6_provider_byte_share",
            "Share of the contexts' bytes on the provider (0..1).",
            &|p| Some(p.byte_share),
        );
        fam(
            w,
            "pshim6_provider_rate_mbps",
            "Recent rate on the provider, Mbit/s.",
            &|p| Some(p.rate_mbps),
        );
        fam(
            w,
            "pshim6_provider_target_share",
            "Share the TE policy aims for (weighted mode).",
            &|p| p.target_share,
        );
        let moves = [
            ("requested", v.moves_requested),
            ("done", v.moves_done),
            ("expired", v.moves_expired),
            ("refused", v.moves_refused),
        ];
        let samples: Vec<Sample> = moves
            .iter()
            .map(|(r, n)| Sample::with(vec![("result", (*r).to_string())], *n as f64))
            .collect();
        w.family(
            "pshim6_te_moves_total",
            Kind::Counter,
            "Context moves the rebalancer asked for, by outcome.",
            &samples,
        );
    }

    fn metrics_ports(&self, w: &mut MetricsWriter) {
        let ports = self.port_views();
        let fam = |w: &mut MetricsWriter, name: &str, help: &str, f: &dyn Fn(&PortView) -> u64| {
            let samples: Vec<Sample> = ports
                .iter()
                .map(|p| {
                    Sample::with(
                        vec![("port", p.port.to_string()), ("interface", p.name.clone())],
                        f(p) as f64,
                    )
                })
                .collect();
            w.family(name, Kind::Counter, help, &samples);
        };
        fam(
            w,
            "pshim6_port_rx_packets_total",
            "Frames received on a port.",
            &|p| p.rx_packets,
        );
        fam(
            w,
            "pshim6_port_rx_bytes_total",
            "Bytes received on a port.",
            &|p| p.rx_bytes,
        );
        fam(
            w,
            "pshim6_port_tx_packets_total",
            "Frames sent on a port.",
            &|p| p.tx_packets,
        );
        fam(
            w,
            "pshim6_port_tx_bytes_total",
            "Bytes sent on a port.",
            &|p| p.tx_bytes,
        );
        fam(
            w,
            "pshim6_port_rx_dropped_total",
            "Frames a port dropped on receive.",
            &|p| p.rx_dropped,
        );
        fam(
            w,
            "pshim6_port_tx_dropped_total",
            "Frames a port could not send.",
            &|p| p.tx_dropped,
        );
        let link: Vec<Sample> = ports
            .iter()
            .filter(|p| p.link != "unknown")
            .map(|p| {
                Sample::with(
                    vec![("port", p.port.to_string()), ("interface", p.name.clone())],
                    if p.link == "up" { 1.0 } else { 0.0 },
                )
            })
            .collect();
        w.family(
            "pshim6_port_link_up",
            Kind::Gauge,
            "1 when the port's link is up, 0 when down (absent when unknown).",
            &link,
        );
    }
}

impl api::Appliance for Bridge {
    fn contexts(&self, f: &ContextFilter) -> Result<ContextPage, ApiError> {
        let state = match f.state {
            Some(s) => Some(state_of(s).ok_or_else(|| {
                ApiError::BadRequest(format!("state: `{s}`: unknown context state"))
            })?),
            None => None,
        };
        let filter = control::ContextFilter {
            local: f.ulid.map(Ulid),
            peer: f.peer.map(Ulid),
            provider: f.provider,
            state,
            offset: f.offset,
            limit: f.limit,
        };
        let page = self.control.contexts(filter).map_err(unavailable)?;
        let end = f.offset.saturating_add(page.items.len());
        Ok(ContextPage {
            items: page.items.iter().map(context_view).collect(),
            total: page.total,
            offset: f.offset,
            limit: f.limit,
            next_offset: (end < page.total).then_some(end),
        })
    }

    fn context(&self, tag: u64) -> Result<ContextView, ApiError> {
        self.control
            .context(tag_of(tag)?)
            .map_err(unavailable)?
            .map(|c| context_view(&c))
            .ok_or_else(|| ApiError::NotFound(format!("context {tag}: no such context")))
    }

    fn delete_context(&self, tag: u64) -> Result<(), ApiError> {
        if self.control.delete(tag_of(tag)?).map_err(unavailable)? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!(
                "context {tag}: no such context"
            )))
        }
    }

    fn move_context(&self, tag: u64, to: MoveRequest) -> Result<ContextView, ApiError> {
        let pair = LocatorPair {
            local: Locator(to.local),
            peer: Locator(to.peer),
        };
        match self
            .control
            .move_to(tag_of(tag)?, pair)
            .map_err(unavailable)?
        {
            Ok(c) => Ok(context_view(&c)),
            Err(Shim6Error::UnknownContext(_)) => Err(ApiError::NotFound(format!(
                "context {tag}: no such context"
            ))),
            Err(e) => Err(ApiError::Conflict(format!("context {tag}: {e}"))),
        }
    }

    fn providers(&self) -> Result<Vec<ProviderView>, ApiError> {
        let snaps = self.control.providers().map_err(unavailable)?;
        let total: u64 = snaps.iter().map(|p| p.bytes).sum();
        let te = self.te.view();
        let drained = |id: u16| {
            te.as_ref()
                .is_some_and(|v| v.providers.iter().any(|p| p.id == id && p.drained))
        };
        Ok(snaps
            .iter()
            .map(|p| {
                let name = self
                    .providers
                    .iter()
                    .find(|(id, _, _)| *id == p.id)
                    .map_or_else(|| p.id.to_string(), |(_, _, n)| n.clone());
                let c = self.links.counters(p.port).unwrap_or_default();
                ProviderView {
                    id: p.id,
                    name,
                    prefix: format!("{}/64", p.prefix.network()),
                    link: link_name(p.link),
                    up: p.up,
                    drained: drained(p.id),
                    contexts: p.contexts,
                    reap: ReapView {
                        operational: p.reap.operational,
                        exploring: p.reap.exploring,
                        inbound_ok: p.reap.inbound_ok,
                    },
                    bytes: p.bytes,
                    traffic_share: if total == 0 {
                        0.0
                    } else {
                        p.bytes as f64 / total as f64
                    },
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    drops: c.rx_dropped.saturating_add(c.tx_dropped),
                    bgp: p.routes.map(|r| BgpRoutesView {
                        routes: r.routes,
                        synced: r.synced,
                        withdrawals: r.withdrawals,
                        last_withdraw_ms_ago: r
                            .last_withdraw_ago
                            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    }),
                }
            })
            .collect())
    }

    fn drain(&self, name: &str) -> Result<ProviderView, ApiError> {
        self.drain_or_undrain(name, true)
    }

    fn undrain(&self, name: &str) -> Result<ProviderView, ApiError> {
        self.drain_or_undrain(name, false)
    }

    fn te_policy(&self) -> Result<serde_json::Value, ApiError> {
        let v = self.te_view_when(|_| true)?;
        serde_json::to_value(v).map_err(|e| ApiError::Internal(format!("te view: {e}")))
    }

    fn set_te_policy(&self, policy: serde_json::Value) -> Result<serde_json::Value, ApiError> {
        let policy: TePolicy = serde_json::from_value(policy)
            .map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        self.te
            .set_policy(policy.clone())
            .map_err(|e| ApiError::Invalid(format!("policy: {e}")))?;
        let v = self.te_view_when(|v| v.policy == policy)?;
        serde_json::to_value(v).map_err(|e| ApiError::Internal(format!("te view: {e}")))
    }

    fn set_dns_upstreams(
        &self,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Result<Vec<std::net::SocketAddr>, ApiError> {
        match self
            .control
            .set_dns_upstreams(upstreams.clone())
            .map_err(unavailable)?
        {
            Some(Ok(())) => {
                tracing::info!(?upstreams, "dns upstreams replaced through the API");
                Ok(upstreams)
            }
            Some(Err(e)) => Err(ApiError::Invalid(format!("upstreams: {e}"))),
            None => Err(ApiError::NotImplemented(
                "no DNS ALG runs: add [dns] to the configuration".into(),
            )),
        }
    }

    fn hosts(&self) -> Result<Vec<HostView>, ApiError> {
        let hosts = self.control.hosts().map_err(unavailable)?.ok_or_else(|| {
            ApiError::NotImplemented(
                "no DHCPv6 server runs: add [dhcp] to the configuration".into(),
            )
        })?;
        Ok(hosts
            .into_iter()
            .map(|h| HostView {
                duid: h.duid.iter().map(|b| format!("{b:02x}")).collect(),
                cmula: h.ulid.0,
                locators: h.locators,
                state: h.state.into(),
                valid_until: h.valid_until,
            })
            .collect())
    }

    fn dns_cache(&self) -> Result<Vec<DnsCacheEntry>, ApiError> {
        let cache = self
            .control
            .peer_cache()
            .map_err(unavailable)?
            .ok_or_else(|| {
                ApiError::NotImplemented("no DNS ALG runs: add [dns] to the configuration".into())
            })?;
        Ok(cache
            .into_iter()
            .map(|e| DnsCacheEntry {
                ulid: e.ulid.0,
                locators: e.locators.iter().map(|l| l.0).collect(),
                remaining_secs: e.remaining.as_secs(),
            })
            .collect())
    }

    fn stats(&self) -> Result<StatsView, ApiError> {
        let stats = self.worker_stats();
        let workers = stats
            .iter()
            .enumerate()
            .map(|(i, s)| WorkerView {
                index: i,
                packets: s.fast_path.packets,
                bursts: s.bursts,
                heartbeat: s.heartbeat,
                pinned: s.pinned,
                forwarded: named(&Path::NAMES, &s.fast_path.forwarded),
                punted: named(&PuntReason::NAMES, &s.fast_path.punted),
                punt_dropped: named(&PuntReason::NAMES, &s.punt_dropped),
                dropped: named(&DropReason::NAMES, &s.fast_path.dropped),
            })
            .collect();
        let mut drops: BTreeMap<String, u64> = BTreeMap::new();
        for s in &stats {
            for (n, v) in DropReason::NAMES.iter().zip(s.fast_path.dropped) {
                *drops.entry((*n).to_string()).or_default() += v;
            }
        }
        // The slow path's part is optional: counters from the atomics still answer.
        let slow = self.control.stats().ok();
        let handshakes = slow
            .as_ref()
            .map(|s| HandshakeView {
                i1_sent: s.engine.i1_sent,
                i1_retransmitted: s.engine.i1_retransmitted,
                i2_sent: s.engine.i2_sent,
                r2_sent: s.engine.r2_sent,
                established: s.stats.table_established,
                contexts: s.contexts,
            })
            .unwrap_or_default();
        Ok(StatsView {
            workers,
            ports: self.port_views(),
            drops,
            punt_queue_depth: self.queues.punt_len(),
            inject_queue_depth: self.queues.inject_len(),
            handshakes,
            slow_path: slow.map(|s| s.stats.named().into_iter().collect()),
        })
    }

    fn routing(&self) -> Result<api::routing::RoutingView, ApiError> {
        match &self.announcer {
            Some(a) => Ok(a.view()),
            None => Err(ApiError::NotImplemented(
                "route announcement: no `[announce]` in the configuration".into(),
            )),
        }
    }

    fn set_routes_withdrawn(&self, withdrawn: bool) -> Result<api::routing::RoutingView, ApiError> {
        match &self.announcer {
            Some(a) => a.set_withdrawn(withdrawn).map_err(ApiError::Unavailable),
            None => Err(ApiError::NotImplemented(
                "route announcement: no `[announce]` in the configuration".into(),
            )),
        }
    }

    fn readiness(&self) -> Vec<CheckView> {
        let before: Vec<u64> = self.workers.iter().map(WorkerMonitor::heartbeat).collect();
        std::thread::sleep(HEARTBEAT_WINDOW);
        let stalled: Vec<usize> = self
            .workers
            .iter()
            .zip(&before)
            .enumerate()
            .filter(|(_, (w, b))| w.heartbeat() == **b)
            .map(|(i, _)| i)
            .collect();
        let workers = CheckView {
            name: "workers".into(),
            ok: stalled.is_empty(),
            detail: if stalled.is_empty() {
                format!("{} worker(s) heartbeating", self.workers.len())
            } else {
                format!("worker(s) {stalled:?} did not move in {HEARTBEAT_WINDOW:?}")
            },
        };
        let slow = match self.control.ping() {
            Ok(d) => CheckView {
                name: "slow_path".into(),
                ok: true,
                detail: format!("answered in {d:?}"),
            },
            Err(e) => CheckView {
                name: "slow_path".into(),
                ok: false,
                detail: e.to_string(),
            },
        };
        let mut checks = vec![workers, slow];
        if let Some(s) = self
            .control
            .stats()
            .ok()
            .filter(|s| s.services.iter().any(|(n, _)| n == "dns.upstream_sent"))
        {
            // Passive: since the previous check, did any upstream query get an answer?
            let sent = counter(&s.services, "dns.upstream_sent");
            let timeouts = counter(&s.services, "dns.upstream_timeouts");
            let mut seen = self
                .dns_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (ds, dt) = (sent.saturating_sub(seen.0), timeouts.saturating_sub(seen.1));
            *seen = (sent, timeouts);
            checks.push(CheckView {
                name: "dns_upstream".into(),
                ok: ds == 0 || dt < ds,
                detail: format!(
                    "{ds} upstream quer(ies) sent and {dt} timed out since the last check"
                ),
            });
        }
        checks
    }

    fn metrics(&self, w: &mut MetricsWriter) {
        let stats = self.worker_stats();
        self.metrics_workers(w, &stats);
        self.metrics_ports(w);
        w.gauge(
            "pshim6_punt_queue_depth",
            "Frames waiting in the punt queue.",
            self.queues.punt_len() as f64,
        );
        let depths: Vec<Sample> = PuntLane::ALL
            .into_iter()
            .map(|lane| {
                Sample::with(
                    vec![("lane", PuntLane::NAMES[lane.index()].to_string())],
                    self.queues.punt_lane_len(lane) as f64,
                )
            })
            .collect();
        w.family(
            "pshim6_punt_lane_depth",
            Kind::Gauge,
            "Frames waiting in one lane of the punt queue.",
            &depths,
        );
        w.gauge(
            "pshim6_inject_queue_depth",
            "Frames waiting in the inject queue.",
            self.queues.inject_len() as f64,
        );
        self.metrics_te(w);
        self.metrics_announce(w);
        let slow = self.control.stats().ok();
        w.gauge(
            "pshim6_slowpath_up",
            "1 when the slow path answered this scrape.",
            if slow.is_some() { 1.0 } else { 0.0 },
        );
        let Some(s) = slow else {
            return;
        };
        w.gauge(
            "pshim6_contexts",
            "Live SHIM6 contexts in the engine.",
            s.contexts as f64,
        );
        w.gauge(
            "pshim6_table_contexts",
            "Contexts in the data-plane table.",
            s.table as f64,
        );
        let slow_samples: Vec<Sample> = s
            .stats
            .named()
            .into_iter()
            .map(|(n, v)| Sample::with(vec![("counter", n)], v as f64))
            .collect();
        w.family(
            "pshim6_slowpath_events_total",
            Kind::Counter,
            "Slow-path counters by name.",
            &slow_samples,
        );
        let services: Vec<Sample> = s
            .services
            .iter()
            .map(|(n, v)| Sample::with(vec![("counter", n.clone())], *v as f64))
            .collect();
        w.family(
            "pshim6_services_events_total",
            Kind::Counter,
            "DNS ALG and DHCPv6 counters by name.",
            &services,
        );
        let engine: Vec<Sample> = engine_counters(&s.engine)
            .into_iter()
            .map(|(n, v)| Sample::with(vec![("counter", n)], v as f64))
            .collect();
        w.family(
            "pshim6_engine_events_total",
            Kind::Counter,
            "SHIM6 engine counters by name (RFC 5533 messages, verification, REAP).",
            &engine,
        );
    }
}
