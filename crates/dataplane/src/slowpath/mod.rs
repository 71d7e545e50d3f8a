//! The slow-path core: one thread that owns the SHIM6 engine
//! ([RFC 5533](https://www.rfc-editor.org/rfc/rfc5533)), the context table's single writer and
//! the neighbour table's single writer, and never blocks a worker.
//!
//! Each [`SlowPath::poll`] iteration:
//! 1. drains a bounded number of punts and handles each by its reason ([`dispatch`](self)):
//!    Shim6 control → `handle_control`; unknown tag → `handle_unknown_tag` (R1bis); no context
//!    → the decision tree (context exists → hold / resend; cached peer locators → `connect`;
//!    else the [`LocatorResolver`] → `connect`; the packet waits in the [`PendingQueue`]);
//!    ND → [`nd`](self); Packet Too Big, Time Exceeded and echo → [`icmp`](self);
//!    UDP for the proxy's own addresses → the [`LocalServices`] (DNS ALG, DHCPv6);
//! 2. runs the engine's and the services' timers at `poll_timeout`;
//! 3. every `housekeeping` interval: provider link state → `set_provider_state`, table
//!    counters that moved → `payload_activity`, ND retransmissions and probes, pending expiry;
//! 4. drains the engine: each `Transmit` becomes an IPv6 (Next Header 140) + Ethernet frame on
//!    the provider port owning its source locator (next-hop MAC from the neighbour table, or
//!    resolved first); each event becomes a table write ([`events`](self)); packets waiting for
//!    a context go through the slow path's own [`FastPath`] once it is ESTABLISHED;
//! 5. hands the frames to the workers through the inject queue.
//!
//! Between 3 and 4 it answers the operator API's requests from its [`control`] channel.
//!
//! The slow path runs a [`FastPath`] of its own (its own counter shard in the table) to send
//! packets it held: what leaves is exactly what a worker would have produced.

mod activity;
pub mod bgp;
pub mod context_log;
pub mod control;
mod dispatch;
mod engine;
mod events;
pub mod frame;
mod icmp;
mod local;
mod nd;
mod pending;
mod pipeline;
mod resolver;
mod services;
mod stats;
pub mod te;

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cga::{CgaParameters, SiteKey};
use shim6::{
    ContextEngine, EngineConfig, LocalProvider, ProviderId, RandomTags, Shim6Error, SiteIdentity,
};
use table::TableWriter;
use wire::Ulid;

pub use activity::{LinkState, LinkWatch};
pub use icmp::{MAX_QUOTE, MIN_MTU};
pub use nd::{NdConfig, NdStats, RaConfig};
pub use pending::{PendingDrop, PendingQueue, PendingStats, UlidPair};
pub use pipeline::{Pipeline, PipelineConfig, PipelineReport, CONTROL_QUEUE, CONTROL_TIMEOUT};
pub use resolver::{
    LocatorResolver, PeerCacheStats, PeerLocatorCache, Resolution, StaticResolver,
    DEFAULT_PEER_CAPACITY,
};

/// How long the locators an asynchronous [`LocatorResolver`] found stay cached.
pub const RESOLVED_TTL: Duration = Duration::from_secs(300);
pub use services::{
    DatagramIn, DatagramOut, HostBinding, LocalServices, PeerCacheEntry, ServiceOutput,
};
pub use stats::SlowPathStats;

use crate::config::{ConfigError, DataplaneConfig, Exit, MacAddr};
use crate::fastpath::{FastPath, ProviderStatus, SetupError};
use crate::io::PortId;
use crate::neighbor::NeighborWriter;
use crate::punt::SlowPathLink;
use crate::worker::TICKS_PER_SECOND;
use events::TableSync;
use icmp::TokenBucket;
use nd::{Nd, NdPort, Outbox, Released};

/// Why a slow path (or a pipeline) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SlowPathError {
    /// The data-plane configuration does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine refused its configuration or site.
    #[error("SHIM6 engine: {0}")]
    Engine(#[from] Shim6Error),
    /// A configured host binding is refused (ULID not a CGA of the site key, wrong prefix, ...).
    #[error("host {ulid}: {source}")]
    Host {
        /// The host's ULID.
        ulid: Ulid,
        /// Why.
        source: Shim6Error,
    },
    /// A worker, the table or a thread could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The pipeline was given no worker queues, or queues for a port it does not know.
    #[error("pipeline: {0}")]
    Pipeline(&'static str),
}

/// Tuning of the slow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowPathConfig {
    /// Punts handled per iteration at most (the rest wait for the next one).
    pub punt_budget: usize,
    /// Period of the housekeeping: link state, activity reports, ND timers, pending expiry.
    pub housekeeping: Duration,
    /// Packets held per ULID pair while its handshake runs.
    pub pending_per_pair: usize,
    /// Packets held in all while handshakes run.
    pub pending_total: usize,
    /// How long packets wait for a handshake before they are dropped.
    pub pending_timeout: Duration,
    /// ICMPv6 errors (Packet Too Big, Time Exceeded) per second at most
    /// ([RFC 4443 §2.4 (f)](https://www.rfc-editor.org/rfc/rfc4443#section-2.4)).
    pub icmp_errors_per_sec: u32,
    /// Neighbor Discovery timers.
    pub nd: NdConfig,
    /// Router Advertisements on the inside link, if any.
    pub ra: Option<RaConfig>,
    /// Sleep when an iteration found nothing to do (the slow path shares cores).
    pub idle_sleep: Duration,
}

impl Default for SlowPathConfig {
    fn default() -> Self {
        Self {
            punt_budget: 256,
            housekeeping: Duration::from_millis(50),
            pending_per_pair: 16,
            pending_total: 4096,
            pending_timeout: Duration::from_secs(5),
            icmp_errors_per_sec: 100,
            nd: NdConfig::default(),
            ra: None,
            idle_sleep: Duration::from_micros(200),
        }
    }
}

/// The site the slow path speaks for: its key, engine settings, hosts and known peers.
pub struct SiteSetup {
    /// The site key (every host ULID is a CGA of it; it signs the locator lists).
    pub key: SiteKey,
    /// Engine timers and limits.
    pub engine: EngineConfig,
    /// Host bindings: ULID and its CGA Parameters (made with the site key).
    pub hosts: Vec<(Ulid, CgaParameters)>,
    /// Seed of the engine's random choices.
    pub seed: u64,
    /// Peer locators known in advance (configuration; the DNS ALG later).
    pub peers: PeerLocatorCache,
    /// Asked for peers the cache does not know.
    pub resolver: Box<dyn LocatorResolver>,
}

impl std::fmt::Debug for SiteSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteSetup")
            .field("hosts", &self.hosts.len())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// The shared structures the slow path writes or feeds.
pub struct SlowPathIo {
    /// The context table (the slow path is its only writer).
    pub table: TableWriter,
    /// The neighbour table (the slow path is its only writer).
    pub neighbors: NeighborWriter,
    /// Punt and inject queues shared with the workers.
    pub link: Arc<SlowPathLink>,
    /// Provider up/down as the workers see it.
    pub status: ProviderStatus,
    /// Port link state as the workers' queues report it.
    pub links: LinkState,
    /// Table counter shard of the slow path's own fast path (one past the workers').
    pub shard: usize,
    /// Start of the workers' activity clock.
    pub epoch: Instant,
}

/// The slow-path core (see the module docs).
pub struct SlowPath {
    cfg: SlowPathConfig,
    dp: DataplaneConfig,
    engine: ContextEngine,
    table: TableWriter,
    neighbors: NeighborWriter,
    link: Arc<SlowPathLink>,
    status: ProviderStatus,
    links: LinkState,
    provider_up: Vec<bool>,
    sync: TableSync,
    pending: PendingQueue,
    peers: PeerLocatorCache,
    resolver: Box<dyn LocatorResolver>,
    nd: Nd,
    fast: FastPath,
    epoch: Instant,
    icmp_limit: TokenBucket,
    out: Outbox,
    released: Vec<Released>,
    next_housekeeping: Instant,
    stats: SlowPathStats,
    control: Option<crossbeam_channel::Receiver<control::Request>>,
    services: Option<Box<dyn LocalServices>>,
    /// MAC each inside sender of a service datagram last used (for the answers).
    sender_macs: HashMap<Ipv6Addr, MacAddr>,
    /// Per provider: service datagrams sent through it since anything came back through it.
    upstream_unanswered: Vec<u32>,
    te: te::TrafficEngineer,
    te_handle: te::TeHandle,
    te_next_view: Instant,
    /// The routes each provider announces (BGP failure signal).
    routes: bgp::BgpRoutes,
}

impl std::fmt::Debug for SlowPathIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPathIo")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SlowPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPath")
            .field("engine", &self.engine)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SlowPath {
    /// Builds the engine for `site` (providers and ULID prefix from `dp`), its hosts, ND for
    /// every port, and the slow path's own fast path.
    pub fn new(
        cfg: SlowPathConfig,
        dp: DataplaneConfig,
        site: SiteSetup,
        io: SlowPathIo,
        now: Instant,
    ) -> Result<Self, SlowPathError> {
        dp.validate()?;
        let providers = dp
            .providers
            .iter()
            .map(|p| LocalProvider {
                id: ProviderId(p.id),
                prefix: p.prefix.0.to_be_bytes(),
                up: p.up,
            })
            .collect();
        let identity = SiteIdentity {
            key: site.key,
            ulid_prefix: dp.ulid_prefix.0.to_be_bytes(),
            providers,
        };
        let mut engine_cfg = site.engine;
        engine_cfg.max_contexts = engine_cfg.max_contexts.min(io.table.capacity());
        let mut engine = ContextEngine::new(
            engine_cfg,
            identity,
            Box::new(RandomTags::new()),
            site.seed,
            now,
        )?;
        let mut iids = std::collections::HashSet::new();
        for (ulid, params) in site.hosts {
            engine
                .add_local_host(ulid, params)
                .map_err(|source| SlowPathError::Host { ulid, source })?;
            iids.insert(frame::iid_of(ulid.0));
        }
        let mut ports = vec![NdPort {
            port: dp.inside.port,
            mac: dp.inside.mac,
            link_local: dp.inside.link_local,
            addresses: vec![dp.inside.global],
            locator_prefix: None,
            inside: true,
        }];
        for p in &dp.providers {
            let mut addresses: Vec<_> = p.address.into_iter().collect();
            if let Exit::Tunnel { local, .. } = p.exit {
                addresses.push(local);
            }
            ports.push(NdPort {
                port: p.port,
                mac: p.mac,
                link_local: frame::eui64_link_local(p.mac),
                addresses,
                locator_prefix: Some(p.prefix),
                inside: false,
            });
        }
        let mut nd = Nd::new(cfg.nd, ports, iids);
        for p in &dp.providers {
            nd.keep_resolved(p.port, p.exit.next_hop());
        }
        if let Some(ra) = cfg.ra {
            nd.enable_ra(ra, dp.ulid_prefix, now);
        }
        let fast = FastPath::new(
            &dp,
            io.table.reader(),
            io.shard,
            io.neighbors.reader(),
            io.status.clone(),
        )?;
        let provider_up: Vec<bool> = dp.providers.iter().map(|p| p.up).collect();
        let te_providers: Vec<(u16, bool)> = dp.providers.iter().map(|p| (p.id, p.up)).collect();
        let te_handle = te::TeHandle::new(te_providers.iter().map(|p| p.0).collect());
        Ok(Self {
            te: te::TrafficEngineer::new(&te_providers, now),
            te_handle,
            te_next_view: now,
            sync: TableSync::new(dp.providers.iter().map(|p| (p.id, p.prefix)).collect()),
            pending: PendingQueue::new(
                cfg.pending_per_pair,
                cfg.pending_total,
                cfg.pending_timeout,
            ),
            upstream_unanswered: vec![0; provider_up.len()],
            provider_up,
            icmp_limit: TokenBucket::new(cfg.icmp_errors_per_sec, now),
            cfg,
            dp,
            engine,
            table: io.table,
            neighbors: io.neighbors,
            link: io.link,
            status: io.status,
            links: io.links,
            peers: site.peers,
            resolver: site.resolver,
            nd,
            fast,
            epoch: io.epoch,
            out: Vec::new(),
            released: Vec::new(),
            next_housekeeping: now,
            stats: SlowPathStats::default(),
            control: None,
            services: None,
            sender_macs: HashMap::new(),
            routes: bgp::BgpRoutes::default(),
        })
    }

    /// The engine (read-only: contexts, stats).
    pub fn engine(&self) -> &ContextEngine {
        &self.engine
    }

    /// The peer locator cache (the DNS ALG fills it).
    pub fn peers_mut(&mut self) -> &mut PeerLocatorCache {
        &mut self.peers
    }

    /// Contexts in the data plane's table.
    pub fn table_len(&self) -> usize {
        self.sync.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> SlowPathStats {
        let peers = self.peers.stats();
        SlowPathStats {
            pending: self.pending.stats(),
            nd: self.nd.stats(),
            peers_expired: peers.expired,
            peers_evicted: peers.evicted,
            peers_refused: peers.refused,
            ..self.stats
        }
    }

    /// Runs `services` on the proxy's own addresses (see [`LocalServices`]); what they have
    /// to say already (e.g. the host bindings loaded from a lease journal) is applied now.
    pub fn set_services(&mut self, services: Box<dyn LocalServices>, now: Instant) {
        self.services = Some(services);
        self.poll_services(now);
    }

    /// The services' counters (empty without services).
    pub fn services_counters(&self) -> Vec<(String, u64)> {
        self.services
            .as_ref()
            .map(|s| s.counters())
            .unwrap_or_default()
    }

    /// Adds a local host at run time (e.g. a DHCPv6 lease): the engine acts for it and ND
    /// answers for its locators.
    pub fn add_local_host(
        &mut self,
        ulid: Ulid,
        params: CgaParameters,
    ) -> Result<(), SlowPathError> {
        self.engine
            .add_local_host(ulid, params)
            .map_err(|source| SlowPathError::Host { ulid, source })?;
        self.nd.add_host_iid(frame::iid_of(ulid.0));
        Ok(())
    }

    /// Stops acting for a local host (its lease is gone): its contexts are removed and ND no
    /// longer answers for its locators.
    pub fn remove_local_host(&mut self, ulid: Ulid) {
        self.engine.remove_local_host(ulid);
        self.nd.remove_host_iid(frame::iid_of(ulid.0));
    }

    /// One iteration (see the module docs); returns whether there was anything to do.
    pub fn poll(&mut self, now: Instant) -> bool {
        let link = Arc::clone(&self.link);
        let mut work = link.drain_punts(self.cfg.punt_budget, |p| {
            self.on_punt(now, p.reason, p.port, p.frame.as_slice())
        }) > 0;
        work |= self.poll_resolver(now);
        work |= self.poll_services(now);
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
            work = true;
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + self.cfg.housekeeping;
            self.housekeeping(now);
        }
        // Operator requests (deletes, moves) feed the engine: serve them before draining it.
        work |= self.serve_control(now);
        work |= self.drain_engine(now);
        self.process_released(now);
        work | self.flush()
    }

    /// Polls until `stop` is set, sleeping briefly whenever an iteration found nothing to do.
    /// The first iteration runs even when `stop` is set already (a thread started late on a
    /// loaded machine still does its start-up work: first housekeeping, ND of the exits).
    pub fn run(&mut self, stop: &AtomicBool) {
        loop {
            let work = self.poll(Instant::now());
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if !work {
                std::thread::sleep(self.cfg.idle_sleep);
            }
        }
        self.flush();
    }

    fn housekeeping(&mut self, now: Instant) {
        self.poll_links(now);
        self.peers.expire(now);
        let n = activity::report_activity(
            &mut self.sync,
            &self.table,
            &mut self.engine,
            now,
            self.epoch,
        );
        self.stats.activity_reports += n as u64;
        self.pending.expire(now);
        self.nd.poll(now, &mut self.neighbors, &mut self.out);
        self.te_poll(now);
    }

    /// Provider link changes seen by the workers' queues, or read here through their probes
    /// (AF_PACKET: an ioctl the workers must not make) → engine and NATv6 provider set.
    fn poll_links(&mut self, now: Instant) {
        self.links.poll_probes();
        for (i, p) in self.dp.providers.iter().enumerate() {
            let Some(up) = self.links.get(p.port) else {
                continue;
            };
            if self.provider_up.get(i) == Some(&up) {
                continue;
            }
            if let Some(slot) = self.provider_up.get_mut(i) {
                *slot = up;
            }
            self.status.set_up(p.id, up);
            self.engine.set_provider_state(now, ProviderId(p.id), up);
            self.te.set_up(p.id, up);
            self.stats.link_changes += 1;
        }
    }

    /// Answers from an asynchronous resolver (which gives no lifetime: they are cached for
    /// [`RESOLVED_TTL`]): connect the pairs waiting for that peer.
    fn poll_resolver(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some((peer, locators)) = self.resolver.poll_resolved() {
            any = true;
            self.peer_resolved(now, peer, locators, RESOLVED_TTL);
        }
        any
    }

    /// Packets whose neighbour got resolved.
    fn process_released(&mut self, now: Instant) {
        for (port, mac, held) in std::mem::take(&mut self.released) {
            match held {
                nd::Held::Ip(ip) => {
                    let src = self.port_mac(port);
                    self.out.push((port, frame::ethernet(mac, src, &ip)));
                }
                nd::Held::Reprocess { rx_port, frame } => self.reprocess(now, rx_port, vec![frame]),
            }
        }
    }

    /// Hands the outbox to the workers.
    fn flush(&mut self) -> bool {
        let any = !self.out.is_empty();
        for (port, frame) in self.out.drain(..) {
            match self.link.inject(port, &frame) {
                Ok(()) => self.stats.injected += 1,
                Err(_) => self.stats.inject_dropped += 1,
            }
        }
        any
    }

    /// Our MAC on `port`.
    fn port_mac(&self, port: PortId) -> MacAddr {
        if port == self.dp.inside.port {
            return self.dp.inside.mac;
        }
        self.dp
            .providers
            .iter()
            .find(|p| p.port == port)
            .map_or(self.dp.inside.mac, |p| p.mac)
    }

    /// The activity tick of `now` for the slow path's fast path.
    fn tick(&self, now: Instant) -> u32 {
        let e = now.saturating_duration_since(self.epoch);
        let t = e.as_secs().saturating_mul(u64::from(TICKS_PER_SECOND))
            + u64::from(e.subsec_nanos() / (1_000_000_000 / TICKS_PER_SECOND));
        u32::try_from(t).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests;
