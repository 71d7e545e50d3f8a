//! The ALG core: sans-IO, transport-agnostic. It takes client queries, upstream answers and
//! time, and gives back messages to send ([`Transmit`]) and events for the slow path
//! ([`AlgEvent`]). The same core runs on the slow path's smoltcp sockets and, through
//! [`runner`](crate::runner), on kernel sockets.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use rand::rngs::StdRng;
use rand::SeedableRng;
use wire::{Locator, Ulid};

use crate::cache::{CacheEntry, LocatorCache};
use crate::config::AlgConfig;
use crate::hosts::reverse_name;
use crate::local::{cache_view, host_answer, host_ptr, is_cache_view};
use crate::msg::{
    aaaa_records, find_ulid, fit, parse_query, relay, response, synthesize, ClientQuery, Inbound,
    ReplyKind, TCP_MAX, UDP_NO_EDNS,
};
use crate::ratelimit::RateLimiter;
use crate::transmit::{AlgEvent, AlgStats, Destination, Transmit, Transport};
use crate::upstream::{JobId, Outcome, QueryFlags, Upstream};
use crate::DnsAlgError;

/// The state of one upstream question of a job.
#[derive(Debug)]
enum Slot {
    Waiting(u16),
    Done(Box<Message>),
    Failed,
}

impl Slot {
    fn settle(&mut self, id: u16, outcome: &mut Option<Outcome>) {
        if matches!(self, Slot::Waiting(w) if *w == id) {
            *self = match outcome.take() {
                Some(Outcome::Answer(m)) => Slot::Done(m),
                _ => Slot::Failed,
            };
        }
    }
    fn waiting(&self) -> Option<u16> {
        match self {
            Slot::Waiting(id) => Some(*id),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum ClientWork {
    /// Any question but AAAA: upstream's answer goes back as it is.
    Relay(Slot),
    /// AAAA: the AAAA set and the ULID record, asked in parallel.
    Forward { aaaa: Slot, ulid: Slot },
}

#[derive(Debug)]
enum ReverseStage {
    Ptr(Slot),
    Target { aaaa: Slot, ulid: Slot },
}

#[derive(Debug)]
enum Job {
    Client {
        client: SocketAddr,
        transport: Transport,
        q: ClientQuery,
        work: ClientWork,
    },
    Reverse {
        ulid: Ulid,
        stage: ReverseStage,
    },
}

/// What [`DnsAlg::resolve_ulid`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveStatus {
    /// The cache knows the locators: a [`AlgEvent::PeerLocators`] is queued already.
    Cached,
    /// A lookup started; its result comes as an event.
    Started,
    /// A lookup for this ULID is already under way.
    InProgress,
    /// Too much in progress (`max_pending`), or nothing could be sent: try again later.
    Busy,
}

/// The DNS ALG (see the crate docs for the behaviour).
///
/// Methods come in the quinn-proto kinds: `handle_*` feed input, `poll_*` take output, and
/// getters. After any `handle_*` call, drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event), then call [`handle_timeout`](Self::handle_timeout) once
/// `now >= poll_timeout()`. Time must never go backwards. No method panics on any input.
#[derive(Debug)]
pub struct DnsAlg {
    config: AlgConfig,
    rng: StdRng,
    jobs: HashMap<JobId, Job>,
    next_job: JobId,
    upstream: Upstream,
    cache: LocatorCache,
    limiter: RateLimiter,
    resolving: HashMap<Ulid, JobId>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<AlgEvent>,
    stats: AlgStats,
}

impl DnsAlg {
    /// A new ALG. `seed` drives the upstream message IDs (give it real entropy in
    /// production: unpredictable IDs are a defence against forged answers).
    pub fn new(config: AlgConfig, seed: u64) -> Result<Self, DnsAlgError> {
        config.validate()?;
        Ok(Self {
            cache: LocatorCache::new(config.cache_capacity),
            limiter: RateLimiter::new(config.rate_limit),
            config,
            rng: StdRng::seed_from_u64(seed),
            jobs: HashMap::new(),
            next_job: 0,
            upstream: Upstream::default(),
            resolving: HashMap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: AlgStats::default(),
        })
    }

    /// Replaces the upstream servers (a live reload): validated as at start (at least one);
    /// queries under way finish with their retries on the new list (an answer from a
    /// server no longer listed is ignored as unmatched).
    pub fn set_upstreams(
        &mut self,
        upstream: Vec<std::net::SocketAddr>,
    ) -> Result<(), DnsAlgError> {
        let mut next = self.config.clone();
        next.upstream = upstream;
        next.validate()?;
        self.config = next;
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &AlgConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &AlgStats {
        &self.stats
    }

    /// The live locator cache entries (what the debug view shows).
    pub fn cache_entries(&self, now: Instant) -> Vec<CacheEntry> {
        self.cache.entries(now)
    }

    /// The cached locators of `ulid` and their remaining lifetime.
    pub fn locators(&mut self, now: Instant, ulid: Ulid) -> Option<(Vec<Locator>, Duration)> {
        self.cache.get(now, ulid).map(|(l, t)| (l.to_vec(), t))
    }

    /// Client queries and reverse lookups in progress.
    pub fn pending(&self) -> usize {
        self.jobs.len()
    }

    /// A DNS message from `client` over `transport`.
    pub fn handle_query(
        &mut self,
        now: Instant,
        client: SocketAddr,
        bytes: &[u8],
        transport: Transport,
    ) {
        self.stats.queries += 1;
        if !self.limiter.allow(now, client.ip()) {
            self.stats.rate_limited += 1;
            return;
        }
        match parse_query(bytes, self.config.edns_payload) {
            Inbound::Drop => self.stats.dropped += 1,
            Inbound::Reply(msg, kind) => {
                match kind {
                    ReplyKind::FormErr => self.stats.formerr += 1,
                    ReplyKind::NotImp => self.stats.notimp += 1,
                    ReplyKind::BadVers => self.stats.badvers += 1,
                    ReplyKind::Refused => self.stats.refused += 1,
                }
                let limit = match transport {
                    Transport::Tcp => TCP_MAX,
                    Transport::Udp => usize::from(msg.max_payload()),
                };
                self.send_to_client(client, transport, msg, limit);
            }
            Inbound::Query(q) => self.dispatch(now, client, transport, q),
        }
    }

    fn dispatch(&mut self, now: Instant, client: SocketAddr, transport: Transport, q: ClientQuery) {
        let payload = self.config.edns_payload;
        let (qname, qtype, qclass) = (
            q.query.name().clone(),
            q.query.query_type(),
            q.query.query_class(),
        );
        if self.config.cache_view && is_cache_view(&q.query) {
            let entries = self.cache.entries(now);
            let msg = cache_view(&q, &entries, payload);
            return self.answer(client, transport, &q, msg);
        }
        if qclass == DNSClass::IN {
            if let Some(ulids) = self.config.hosts.lookup(&qname) {
                self.stats.host_answers += 1;
                let msg = host_answer(&q, ulids, self.config.host_ttl, payload);
                return self.answer(client, transport, &q, msg);
            }
            if qtype == RecordType::PTR {
                if let Some(target) = self.config.hosts.lookup_reverse(&qname) {
                    self.stats.host_answers += 1;
                    let msg = host_ptr(&q, target, self.config.host_ttl, payload);
                    return self.answer(client, transport, &q, msg);
                }
            }
        }
        if self.jobs.len() >= self.config.max_pending {
            self.stats.overload += 1;
            return;
        }
        let job = self.new_job_id();
        let flags = QueryFlags {
            rd: q.rd,
            cd: q.cd,
            dnssec_ok: q.edns.is_some_and(|e| e.dnssec_ok),
        };
        let work = if qclass == DNSClass::IN && qtype == RecordType::AAAA {
            let ulid_q = Query::query(qname, RecordType::from(self.config.ulid_type));
            let (Some(a), Some(u)) = (
                self.ask(now, job, q.query.clone(), flags),
                self.ask(now, job, ulid_q, flags),
            ) else {
                return self.fail_client(client, transport, &q);
            };
            ClientWork::Forward {
                aaaa: Slot::Waiting(a),
                ulid: Slot::Waiting(u),
            }
        } else {
            let Some(id) = self.ask(now, job, q.query.clone(), flags) else {
                return self.fail_client(client, transport, &q);
            };
            ClientWork::Relay(Slot::Waiting(id))
        };
        self.jobs.insert(
            job,
            Job::Client {
                client,
                transport,
                q,
                work,
            },
        );
    }

    /// Starts the data plane's reverse path for `ulid` (no cached locators for a destination
    /// ULID): PTR of its `ip6.arpa.` name, then AAAA and ULID record of the name it points to.
    /// No stock server adds those to the Additional section of a PTR answer, so the ALG asks
    /// itself. The ULID record must name `ulid` itself. The result comes as an event.
    pub fn resolve_ulid(&mut self, now: Instant, ulid: Ulid) -> ResolveStatus {
        if let Some((locators, ttl)) = self.locators(now, ulid) {
            self.events.push_back(AlgEvent::PeerLocators {
                ulid,
                locators,
                ttl,
            });
            return ResolveStatus::Cached;
        }
        if self.resolving.contains_key(&ulid) {
            return ResolveStatus::InProgress;
        }
        if self.jobs.len() >= self.config.max_pending {
            self.stats.overload += 1;
            return ResolveStatus::Busy;
        }
        let job = self.new_job_id();
        let q = Query::query(reverse_name(ulid.0), RecordType::PTR);
        let Some(id) = self.ask(now, job, q, REVERSE_FLAGS) else {
            return ResolveStatus::Busy;
        };
        self.resolving.insert(ulid, job);
        self.jobs.insert(
            job,
            Job::Reverse {
                ulid,
                stage: ReverseStage::Ptr(Slot::Waiting(id)),
            },
        );
        ResolveStatus::Started
    }

    /// A DNS message from upstream `server` (over either transport).
    pub fn handle_upstream(&mut self, now: Instant, server: SocketAddr, bytes: &[u8]) {
        if let Some((job, id, outcome)) = self.upstream.on_answer(
            now,
            &self.config,
            server,
            bytes,
            &mut self.outbox,
            &mut self.stats,
        ) {
            self.settle(now, job, id, outcome);
        }
    }

    /// Fires what is due at `now`: upstream retries, and failures once attempts run out.
    /// Extra calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let done = self
            .upstream
            .on_timeout(now, &self.config, &mut self.outbox, &mut self.stats);
        for (job, id, outcome) in done {
            self.settle(now, job, id, outcome);
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event for the slow path.
    pub fn poll_event(&mut self) -> Option<AlgEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.upstream.next_deadline()
    }

    fn new_job_id(&mut self) -> JobId {
        self.next_job = self.next_job.wrapping_add(1);
        self.next_job
    }

    fn ask(&mut self, now: Instant, job: JobId, q: Query, flags: QueryFlags) -> Option<u16> {
        self.upstream.start(
            now,
            &self.config,
            &mut self.rng,
            job,
            q,
            flags,
            &mut self.outbox,
            &mut self.stats,
        )
    }

    /// Records an upstream outcome in its job and moves the job on.
    fn settle(&mut self, now: Instant, job_id: JobId, id: u16, outcome: Outcome) {
        let Some(mut job) = self.jobs.remove(&job_id) else {
            return;
        };
        let mut outcome = Some(outcome);
        match &mut job {
            Job::Client { work, .. } => match work {
                ClientWork::Relay(s) => s.settle(id, &mut outcome),
                ClientWork::Forward { aaaa, ulid } => {
                    aaaa.settle(id, &mut outcome);
                    ulid.settle(id, &mut outcome);
                }
            },
            Job::Reverse { stage, .. } => match stage {
                ReverseStage::Ptr(s) => s.settle(id, &mut outcome),
                ReverseStage::Target { aaaa, ulid } => {
                    aaaa.settle(id, &mut outcome);
                    ulid.settle(id, &mut outcome);
                }
            },
        }
        let next = match job {
            Job::Client {
                client,
                transport,
                q,
                work,
            } => self.advance_client(now, client, transport, q, work),
            Job::Reverse { ulid, stage } => self.advance_reverse(now, job_id, ulid, stage),
        };
        if let Some(job) = next {
            self.jobs.insert(job_id, job);
        }
    }

    /// Answers the client once enough is known; otherwise gives the job back.
    fn advance_client(
        &mut self,
        now: Instant,
        client: SocketAddr,
        transport: Transport,
        q: ClientQuery,
        work: ClientWork,
    ) -> Option<Job> {
        let payload = self.config.edns_payload;
        match work {
            ClientWork::Relay(Slot::Waiting(_))
            | ClientWork::Forward {
                aaaa: Slot::Waiting(_),
                ..
            } => Some(Job::Client {
                client,
                transport,
                q,
                work,
            }),
            ClientWork::Relay(Slot::Done(m)) => {
                let msg = relay(&q, *m, payload);
                self.answer(client, transport, &q, msg);
                None
            }
            ClientWork::Relay(Slot::Failed)
            | ClientWork::Forward {
                aaaa: Slot::Failed, ..
            } => {
                if let ClientWork::Forward { ulid, .. } = &work {
                    self.cancel(ulid);
                }
                self.fail_client(client, transport, &q);
                None
            }
            ClientWork::Forward {
                aaaa: Slot::Done(a),
                ulid,
            } => {
                let has_aaaa = !aaaa_records(&a).is_empty();
                if has_aaaa && ulid.waiting().is_some() {
                    return Some(Job::Client {
                        client,
                        transport,
                        q,
                        work: ClientWork::Forward {
                            aaaa: Slot::Done(a),
                            ulid,
                        },
                    });
                }
                // No AAAA set: nothing to map, whatever the ULID query says.
                self.cancel(&ulid);
                let found = match &ulid {
                    Slot::Done(u) if has_aaaa => {
                        let f = find_ulid(u, self.config.ulid_type);
                        self.stats.bad_ulid_records += f.bad;
                        f.ulid
                    }
                    _ => None,
                };
                let msg = match found {
                    Some((peer, ulid_ttl)) => self.peer_answer(now, &q, &a, peer, ulid_ttl),
                    None => {
                        if has_aaaa {
                            self.stats.legacy_answers += 1;
                        }
                        relay(&q, *a, payload)
                    }
                };
                self.answer(client, transport, &q, msg);
                None
            }
        }
    }

    /// The ULID answer for a SHIM6 peer; caches its AAAA set and tells the slow path.
    fn peer_answer(
        &mut self,
        now: Instant,
        q: &ClientQuery,
        a: &Message,
        peer: Ulid,
        ulid_ttl: u32,
    ) -> Message {
        let records = aaaa_records(a);
        let aaaa_ttl = records.iter().map(|r| r.2).min().unwrap_or(0);
        let ttl = ulid_ttl.min(aaaa_ttl);
        let owner: Name = records
            .first()
            .map_or_else(|| q.query.name().clone(), |r| r.0.clone());
        let locators: Vec<Locator> = records.iter().map(|r| Locator(r.1)).collect();
        self.learn(now, peer, locators, ttl);
        self.stats.ulid_answers += 1;
        synthesize(q, a, &owner, peer, ttl, self.config.edns_payload)
    }

    /// Caches `locators` for `peer` (TTL capped by the configuration) and emits the event.
    fn learn(&mut self, now: Instant, peer: Ulid, mut locators: Vec<Locator>, ttl: u32) {
        let mut seen = Vec::with_capacity(locators.len());
        locators.retain(|l| {
            let new = !seen.contains(l);
            seen.push(*l);
            new
        });
        let ttl = Duration::from_secs(u64::from(ttl)).min(self.config.cache_max_ttl);
        self.cache.insert(now, peer, locators.clone(), ttl);
        self.events.push_back(AlgEvent::PeerLocators {
            ulid: peer,
            locators,
            ttl,
        });
    }

    fn advance_reverse(
        &mut self,
        now: Instant,
        job_id: JobId,
        ulid: Ulid,
        stage: ReverseStage,
    ) -> Option<Job> {
        match stage {
            ReverseStage::Ptr(Slot::Waiting(_))
            | ReverseStage::Target {
                aaaa: Slot::Waiting(_),
                ..
            }
            | ReverseStage::Target {
                ulid: Slot::Waiting(_),
                ..
            } => Some(Job::Reverse { ulid, stage }),
            ReverseStage::Ptr(Slot::Done(m)) => {
                let target = m.answers.iter().find_map(|r| match &r.data {
                    RData::PTR(p) => Some(p.0.clone()),
                    _ => None,
                });
                let Some(target) = target else {
                    return self.resolve_failed(ulid);
                };
                let a = self.ask(
                    now,
                    job_id,
                    Query::query(target.clone(), RecordType::AAAA),
                    REVERSE_FLAGS,
                );
                let u = self.ask(
                    now,
                    job_id,
                    Query::query(target, RecordType::from(self.config.ulid_type)),
                    REVERSE_FLAGS,
                );
                match (a, u) {
                    (Some(a), Some(u)) => Some(Job::Reverse {
                        ulid,
                        stage: ReverseStage::Target {
                            aaaa: Slot::Waiting(a),
                            ulid: Slot::Waiting(u),
                        },
                    }),
                    (a, u) => {
                        for id in [a, u].into_iter().flatten() {
                            self.upstream.cancel(id);
                        }
                        self.resolve_failed(ulid)
                    }
                }
            }
            ReverseStage::Ptr(Slot::Failed) => self.resolve_failed(ulid),
            ReverseStage::Target {
                aaaa: Slot::Done(a),
                ulid: Slot::Done(u),
            } => {
                let f = find_ulid(&u, self.config.ulid_type);
                self.stats.bad_ulid_records += f.bad;
                let records = aaaa_records(&a);
                match f.ulid {
                    // The ULID record must vouch for this very ULID: a PTR alone could point
                    // anywhere.
                    Some((found, ulid_ttl)) if found == ulid && !records.is_empty() => {
                        let ttl = records.iter().map(|r| r.2).min().unwrap_or(0).min(ulid_ttl);
                        let locators = records.iter().map(|r| Locator(r.1)).collect();
                        self.resolving.remove(&ulid);
                        self.learn(now, ulid, locators, ttl);
                        None
                    }
                    _ => self.resolve_failed(ulid),
                }
            }
            ReverseStage::Target { .. } => self.resolve_failed(ulid),
        }
    }

    fn resolve_failed(&mut self, ulid: Ulid) -> Option<Job> {
        self.resolving.remove(&ulid);
        self.events.push_back(AlgEvent::ResolveFailed { ulid });
        None
    }

    fn cancel(&mut self, slot: &Slot) {
        if let Some(id) = slot.waiting() {
            self.upstream.cancel(id);
        }
    }

    fn fail_client(&mut self, client: SocketAddr, transport: Transport, q: &ClientQuery) {
        self.stats.servfail += 1;
        let msg = response(q, ResponseCode::ServFail, self.config.edns_payload);
        self.answer(client, transport, q, msg);
    }

    /// Sends `msg` to the client of `q`, fitted to its transport.
    fn answer(&mut self, client: SocketAddr, transport: Transport, q: &ClientQuery, msg: Message) {
        let limit = match transport {
            Transport::Tcp => TCP_MAX,
            Transport::Udp => q.edns.map_or(UDP_NO_EDNS, |e| usize::from(e.payload)),
        };
        if !self.send_to_client(client, transport, msg, limit) {
            // Last resort: a bare SERVFAIL always encodes.
            let fallback = response(q, ResponseCode::ServFail, self.config.edns_payload);
            self.send_to_client(client, transport, fallback, limit);
        }
    }

    fn send_to_client(
        &mut self,
        client: SocketAddr,
        transport: Transport,
        msg: Message,
        limit: usize,
    ) -> bool {
        match fit(msg, limit.max(UDP_NO_EDNS)) {
            Ok(f) => {
                self.stats.answers += 1;
                self.stats.additional_shed += u64::try_from(f.shed).unwrap_or(u64::MAX);
                if f.truncated {
                    self.stats.truncated += 1;
                }
                self.outbox.push_back(Transmit {
                    destination: Destination::Client(client),
                    transport,
                    payload: f.bytes,
                });
                true
            }
            Err(_) => {
                self.stats.encode_errors += 1;
                false
            }
        }
    }
}

/// Flags of the ALG's own (reverse path) questions: recursion desired, no DNSSEC.
const REVERSE_FLAGS: QueryFlags = QueryFlags {
    rd: true,
    cd: false,
    dnssec_ok: false,
};

#[cfg(test)]
#[path = "alg_tests.rs"]
mod tests;
