//! The control channel into the slow path: how the operator API (another thread) reads and
//! changes what only the slow path owns (the engine, the table writer, the peer cache).
//!
//! Requests go through a bounded crossbeam channel, each with its own one-slot reply channel.
//! The slow path serves a few per [`SlowPath::poll`] iteration and answers with `try_send`,
//! so it never waits on the API; the API side waits for the answer with a timeout and gives
//! up (the answer is then dropped) if the slow path is busy or stopped. Data-plane counters
//! are not asked for here: the API reads them from the workers' atomics.

use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use shim6::{ContextInfo, ContextState, EngineStats, Shim6Error};
use table::Activity;
use wire::{ContextTag, Locator, LocatorPair, ReapState, Ulid};

use super::bgp::{RouteChange, RouteStats};
use super::{HostBinding, PeerCacheEntry, SlowPath, SlowPathStats};
use crate::config::Prefix64;
use crate::io::PortId;

/// Requests served per poll iteration at most (the rest wait for the next one).
pub const SERVE_PER_POLL: usize = 8;

/// Which contexts a listing wants, and which page of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContextFilter {
    /// Local ULID.
    pub local: Option<Ulid>,
    /// Peer ULID.
    pub peer: Option<Ulid>,
    /// Provider owning the current local locator.
    pub provider: Option<u16>,
    /// State.
    pub state: Option<ContextState>,
    /// Matching contexts to skip, in ascending tag order.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
}

impl ContextFilter {
    fn matches(&self, c: &ContextInfo, provider: Option<u16>) -> bool {
        self.local.is_none_or(|u| u == c.local_ulid)
            && self.peer.is_none_or(|u| u == c.peer_ulid)
            && self.state.is_none_or(|s| s == c.state)
            && self.provider.is_none_or(|p| Some(p) == provider)
    }
}

/// One context as the slow path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSnapshot {
    /// The engine's view.
    pub info: ContextInfo,
    /// Provider owning the current local locator.
    pub provider: Option<u16>,
    /// Traffic, when the context is in the data-plane table.
    pub activity: Option<Activity>,
}

/// One page of contexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPage {
    /// The page, in ascending tag order.
    pub items: Vec<ContextSnapshot>,
    /// Contexts matching the filter over all pages.
    pub total: usize,
}

/// Contexts by REAP state ([RFC 5534 §5.2](https://www.rfc-editor.org/rfc/rfc5534#section-5.2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReapCounts {
    /// Operational.
    pub operational: usize,
    /// Exploring.
    pub exploring: usize,
    /// InboundOk.
    pub inbound_ok: usize,
}

/// One provider as the slow path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSnapshot {
    /// Provider id.
    pub id: u16,
    /// Its port.
    pub port: PortId,
    /// Its PA prefix.
    pub prefix: Prefix64,
    /// Link state the port reports (`None`: unknown).
    pub link: Option<bool>,
    /// Whether the engine offers its locators.
    pub up: bool,
    /// Contexts whose current local locator is on this provider.
    pub contexts: usize,
    /// Those contexts by REAP state.
    pub reap: ReapCounts,
    /// Bytes (both directions) of those contexts that are in the table.
    pub bytes: u64,
    /// The routes the provider announces (`None`: no BGP signal for it).
    pub routes: Option<RouteStats>,
}

/// The slow path's and the engine's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPathSnapshot {
    /// Slow-path counters.
    pub stats: SlowPathStats,
    /// Engine counters.
    pub engine: EngineStats,
    /// Live contexts in the engine.
    pub contexts: usize,
    /// Contexts in the data-plane table.
    pub table: usize,
    /// The local services' counters (DNS ALG, DHCPv6), by name.
    pub services: Vec<(String, u64)>,
}

/// What the API can ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A page of contexts.
    Contexts(ContextFilter),
    /// One context.
    Context(ContextTag),
    /// Remove a context at once.
    Delete(ContextTag),
    /// Move a context to a pair through the engine's `prefer_pair`.
    Move(ContextTag, LocatorPair),
    /// Every provider.
    Providers,
    /// Counters.
    Stats,
    /// Replace the peer locators known from the configuration (live reload).
    SetPeers(Vec<(Ulid, Vec<Locator>)>),
    /// Answer at once (readiness: is the slow path responsive?).
    Ping,
    /// The DHCPv6 bindings of the local services.
    Hosts,
    /// The DNS ALG's peer locator cache.
    PeerCache,
    /// Changes of the providers' route tables (BGP failure signal), in order.
    Routes(Vec<RouteChange>),
    /// Replace the DNS ALG's upstream servers (live reload).
    SetDnsUpstreams(Vec<std::net::SocketAddr>),
}

/// The slow path's answers, one variant per [`Command`].
#[derive(Debug)]
pub enum Reply {
    /// To [`Command::Contexts`].
    Contexts(ContextPage),
    /// To [`Command::Context`].
    Context(Option<Box<ContextSnapshot>>),
    /// To [`Command::Delete`]: whether it existed.
    Deleted(bool),
    /// To [`Command::Move`].
    Moved(Result<Box<ContextSnapshot>, Shim6Error>),
    /// To [`Command::Providers`].
    Providers(Vec<ProviderSnapshot>),
    /// To [`Command::Stats`].
    Stats(Box<SlowPathSnapshot>),
    /// To [`Command::SetPeers`], [`Command::Ping`] and [`Command::Routes`].
    Done,
    /// To [`Command::Hosts`] (`None`: no DHCPv6 server runs).
    Hosts(Option<Vec<HostBinding>>),
    /// To [`Command::PeerCache`] (`None`: no DNS ALG runs).
    PeerCache(Option<Vec<PeerCacheEntry>>),
    /// To [`Command::SetDnsUpstreams`] (`None`: no DNS ALG runs; else taken or why not).
    DnsUpstreams(Option<Result<(), String>>),
}

/// A request with the channel its answer goes back on.
#[derive(Debug)]
pub struct Request {
    command: Command,
    reply: Sender<Reply>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The request queue is full: the slow path is behind.
    #[error("the slow path's command queue is full")]
    Busy,
    /// No answer within the timeout.
    #[error("the slow path did not answer within {0:?}")]
    Timeout(Duration),
    /// The slow path is gone.
    #[error("the slow path has stopped")]
    Stopped,
    /// The answer does not match the question (a bug).
    #[error("the slow path answered another question")]
    Mismatch,
}

/// The API's end of the channel (cheap to clone).
#[derive(Debug, Clone)]
pub struct ControlClient {
    tx: Sender<Request>,
    timeout: Duration,
}

/// A control channel: the client for the API, the receiver for [`SlowPath::set_control`].
pub fn channel(capacity: usize, timeout: Duration) -> (ControlClient, Receiver<Request>) {
    let (tx, rx) = bounded(capacity.max(1));
    (ControlClient { tx, timeout }, rx)
}

impl ControlClient {
    /// Sends `command` and waits (at most the timeout) for the answer.
    pub fn ask(&self, command: Command) -> Result<Reply, ControlError> {
        let (reply, answer) = bounded(1);
        self.tx
            .try_send(Request { command, reply })
            .map_err(|e| match e {
                TrySendError::Full(_) => ControlError::Busy,
                TrySendError::Disconnected(_) => ControlError::Stopped,
            })?;
        answer.recv_timeout(self.timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => ControlError::Timeout(self.timeout),
            RecvTimeoutError::Disconnected => ControlError::Stopped,
        })
    }

    /// A page of contexts.
    pub fn contexts(&self, filter: ContextFilter) -> Result<ContextPage, ControlError> {
        match self.ask(Command::Contexts(filter))? {
            Reply::Contexts(p) => Ok(p),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// One context.
    pub fn context(&self, tag: ContextTag) -> Result<Option<ContextSnapshot>, ControlError> {
        match self.ask(Command::Context(tag))? {
            Reply::Context(c) => Ok(c.map(|b| *b)),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Removes a context; whether it existed.
    pub fn delete(&self, tag: ContextTag) -> Result<bool, ControlError> {
        match self.ask(Command::Delete(tag))? {
            Reply::Deleted(d) => Ok(d),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Moves a context to `pair`; the context after the request.
    pub fn move_to(
        &self,
        tag: ContextTag,
        pair: LocatorPair,
    ) -> Result<Result<ContextSnapshot, Shim6Error>, ControlError> {
        match self.ask(Command::Move(tag, pair))? {
            Reply::Moved(r) => Ok(r.map(|b| *b)),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Every provider.
    pub fn providers(&self) -> Result<Vec<ProviderSnapshot>, ControlError> {
        match self.ask(Command::Providers)? {
            Reply::Providers(p) => Ok(p),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Result<SlowPathSnapshot, ControlError> {
        match self.ask(Command::Stats)? {
            Reply::Stats(s) => Ok(*s),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Replaces the configured peer locators.
    pub fn set_peers(&self, peers: Vec<(Ulid, Vec<Locator>)>) -> Result<(), ControlError> {
        match self.ask(Command::SetPeers(peers))? {
            Reply::Done => Ok(()),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Replaces the DNS ALG's upstream servers: `None` when no DNS ALG runs, else whether
    /// the list was taken (the reason when refused).
    pub fn set_dns_upstreams(
        &self,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Result<Option<Result<(), String>>, ControlError> {
        match self.ask(Command::SetDnsUpstreams(upstreams))? {
            Reply::DnsUpstreams(r) => Ok(r),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// The DHCPv6 bindings; `None` when no DHCPv6 server runs.
    pub fn hosts(&self) -> Result<Option<Vec<HostBinding>>, ControlError> {
        match self.ask(Command::Hosts)? {
            Reply::Hosts(h) => Ok(h),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// The DNS ALG's peer cache; `None` when no DNS ALG runs.
    pub fn peer_cache(&self) -> Result<Option<Vec<PeerCacheEntry>>, ControlError> {
        match self.ask(Command::PeerCache)? {
            Reply::PeerCache(c) => Ok(c),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Hands route changes to the slow path. Re-sending a batch whose answer timed out is
    /// harmless: the changes are idempotent and the queue keeps their order.
    pub fn routes(&self, changes: Vec<RouteChange>) -> Result<(), ControlError> {
        match self.ask(Command::Routes(changes))? {
            Reply::Done => Ok(()),
            _ => Err(ControlError::Mismatch),
        }
    }

    /// Round trip; the time it took.
    pub fn ping(&self) -> Result<Duration, ControlError> {
        let t = Instant::now();
        match self.ask(Command::Ping)? {
            Reply::Done => Ok(t.elapsed()),
            _ => Err(ControlError::Mismatch),
        }
    }
}

impl SlowPath {
    /// Serves the control channel `rx` from now on (one per slow path).
    pub fn set_control(&mut self, rx: Receiver<Request>) {
        self.control = Some(rx);
    }

    /// Answers up to [`SERVE_PER_POLL`] waiting requests; whether there were any.
    pub(super) fn serve_control(&mut self, now: Instant) -> bool {
        let Some(rx) = self.control.clone() else {
            return false;
        };
        let mut any = false;
        for req in rx.try_iter().take(SERVE_PER_POLL) {
            any = true;
            let reply = self.answer(now, req.command);
            // One slot and one answer: never blocks; a client that gave up is no error.
            let _ = req.reply.try_send(reply);
        }
        any
    }

    fn answer(&mut self, now: Instant, command: Command) -> Reply {
        match command {
            Command::Contexts(f) => Reply::Contexts(self.context_page(&f)),
            Command::Context(tag) => Reply::Context(self.snapshot(tag).map(Box::new)),
            Command::Delete(tag) => Reply::Deleted(self.engine.remove(now, tag)),
            Command::Move(tag, pair) => Reply::Moved(
                self.engine
                    .prefer_pair(now, tag, pair)
                    .and_then(|()| self.snapshot(tag).ok_or(Shim6Error::UnknownContext(tag)))
                    .map(Box::new),
            ),
            Command::Providers => Reply::Providers(self.provider_snapshots(now)),
            Command::Stats => Reply::Stats(Box::new(SlowPathSnapshot {
                stats: self.stats(),
                engine: self.engine.stats().clone(),
                contexts: self.engine.context_count(),
                table: self.sync.len(),
                services: self.services_counters(),
            })),
            Command::SetPeers(peers) => {
                for (ulid, locators) in peers {
                    self.peers.insert(ulid, locators);
                }
                Reply::Done
            }
            Command::Ping => Reply::Done,
            Command::Routes(changes) => {
                self.apply_routes(now, &changes);
                Reply::Done
            }
            Command::Hosts => Reply::Hosts(self.services.as_ref().and_then(|s| s.host_bindings())),
            Command::PeerCache => {
                Reply::PeerCache(self.services.as_ref().and_then(|s| s.peer_cache(now)))
            }
            Command::SetDnsUpstreams(upstreams) => Reply::DnsUpstreams(
                self.services
                    .as_mut()
                    .and_then(|s| s.set_dns_upstreams(upstreams)),
            ),
        }
    }

    fn activity_of(&self, tag: ContextTag) -> Option<Activity> {
        self.sync
            .slot_of(tag)
            .and_then(|slot| self.table.activity(slot))
    }

    fn snapshot_of(&self, info: ContextInfo) -> ContextSnapshot {
        ContextSnapshot {
            provider: self.sync.provider_of(info.pair.local),
            activity: self.activity_of(info.local_tag),
            info,
        }
    }

    fn snapshot(&self, tag: ContextTag) -> Option<ContextSnapshot> {
        self.engine.context(tag).map(|i| self.snapshot_of(i))
    }

    fn context_page(&self, f: &ContextFilter) -> ContextPage {
        let mut matching: Vec<ContextInfo> = self
            .engine
            .contexts()
            .filter(|c| f.matches(c, self.sync.provider_of(c.pair.local)))
            .collect();
        matching.sort_by_key(|c| c.local_tag);
        let total = matching.len();
        let items = matching
            .into_iter()
            .skip(f.offset)
            .take(f.limit)
            .map(|i| self.snapshot_of(i))
            .collect();
        ContextPage { items, total }
    }

    fn provider_snapshots(&self, now: Instant) -> Vec<ProviderSnapshot> {
        let mut out: Vec<ProviderSnapshot> = self
            .dp
            .providers
            .iter()
            .zip(&self.provider_up)
            .map(|(p, up)| ProviderSnapshot {
                id: p.id,
                port: p.port,
                prefix: p.prefix,
                link: self.links.get(p.port),
                up: *up,
                contexts: 0,
                reap: ReapCounts::default(),
                bytes: 0,
                routes: self.routes.stats(now, p.id),
            })
            .collect();
        for c in self.engine.contexts() {
            let Some(id) = self.sync.provider_of(c.pair.local) else {
                continue;
            };
            let Some(p) = out.iter_mut().find(|p| p.id == id) else {
                continue;
            };
            p.contexts += 1;
            match c.reap_state {
                Some(ReapState::Operational) => p.reap.operational += 1,
                Some(ReapState::Exploring) => p.reap.exploring += 1,
                Some(ReapState::InboundOk) => p.reap.inbound_ok += 1,
                _ => {}
            }
            if let Some(a) = self.activity_of(c.local_tag) {
                p.bytes = p
                    .bytes
                    .saturating_add(a.rx_bytes)
                    .saturating_add(a.tx_bytes);
            }
        }
        out
    }
}
