//! The context engine: one instance acts for every local host (ULID) of the site and any
//! number of peers. Sans-IO in the style of quinn-proto: every input takes `now`, outputs come
//! only from [`ContextEngine::poll_transmit`], [`ContextEngine::poll_event`] and
//! [`ContextEngine::poll_timeout`].
//!
//! Method kinds: getters (`context`, `contexts`, `find`, `stats`, `local_locators`),
//! `handle_*` (packets and time), mutators (`connect`, `remove`, `prefer_pair`, hosts and
//! providers) and `poll_*`. After any `handle_*` or mutator call, drain `poll_transmit` and
//! `poll_event`, then sleep until `poll_timeout` and call `handle_timeout`. Time must never go
//! backwards.

mod build;
mod dispatch;
mod establish;
mod local;
mod recovery;
mod routing;
mod table;
mod timers;
mod update;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wire::{ContextTag, Locator, Ulid};

use crate::context::{Context, ContextInfo};
use crate::event::{ContextEvent, FailReason, RemoveReason, Transmit};
use crate::ratelimit::TokenBucket;
use crate::site::{ProviderId, Site, SiteIdentity};
use crate::validator::Validators;
use crate::verify::Verifier;
use crate::{EngineConfig, EngineStats, Shim6Error, TagAllocator};

pub use routing::MAX_UNREACHABLE;
use table::Table;

/// The SHIM6 context engine ([RFC 5533](https://www.rfc-editor.org/rfc/rfc5533)).
pub struct ContextEngine {
    config: EngineConfig,
    site: Site,
    tags: Box<dyn TagAllocator + Send>,
    rng: StdRng,
    table: Table,
    validators: Validators,
    verifier: Verifier,
    /// E-FAILED / NO-SUPPORT negative cache per ULID pair.
    holddowns: HashMap<(Ulid, Ulid), (Instant, FailReason)>,
    holddown_timers: BTreeSet<(Instant, Ulid, Ulid)>,
    /// (provider, peer locator) pairs a routing signal marked unreachable.
    unreachable: HashSet<(ProviderId, Locator)>,
    r1_limit: TokenBucket,
    r1bis_limit: TokenBucket,
    error_limit: TokenBucket,
    outbox: VecDeque<Transmit>,
    events: VecDeque<ContextEvent>,
    stats: EngineStats,
}

impl std::fmt::Debug for ContextEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextEngine")
            .field("contexts", &self.table.len())
            .field("hosts", &self.site.hosts.len())
            .finish_non_exhaustive()
    }
}

impl ContextEngine {
    /// Creates an engine for `site`. `seed` makes every random choice (nonces, tags, secrets,
    /// timer jitter) repeatable.
    pub fn new(
        config: EngineConfig,
        site: SiteIdentity,
        tags: Box<dyn TagAllocator + Send>,
        seed: u64,
        now: Instant,
    ) -> Result<Self, Shim6Error> {
        config.validate()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let validators = Validators::new(config.validator_lifetime, now, &mut rng);
        let generation = rand::RngCore::next_u32(&mut rng);
        Ok(Self {
            verifier: Verifier::new(config.cache_peer_verification),
            r1_limit: TokenBucket::new(config.r1_per_sec, now),
            r1bis_limit: TokenBucket::new(config.r1bis_per_sec, now),
            error_limit: TokenBucket::new(config.error_per_sec, now),
            site: Site::new(site, generation),
            config,
            tags,
            rng,
            table: Table::default(),
            validators,
            holddowns: HashMap::new(),
            holddown_timers: BTreeSet::new(),
            unreachable: HashSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: EngineStats::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The next Shim6 control message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next context change for the data plane, if any.
    pub fn poll_event(&mut self) -> Option<ContextEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ctx = self.table.next_deadline();
        let hold = self.holddown_timers.first().map(|(t, _, _)| *t);
        match (ctx, hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A snapshot of the context with local tag `tag`.
    pub fn context(&self, tag: ContextTag) -> Option<ContextInfo> {
        self.table.get(tag).map(|c| self.info(c))
    }

    /// Snapshots of every context.
    pub fn contexts(&self) -> impl Iterator<Item = ContextInfo> + '_ {
        self.table.iter().map(|c| self.info(c))
    }

    /// Number of live contexts.
    pub fn context_count(&self) -> usize {
        self.table.len()
    }

    /// The default (FII 0) context of a ULID pair.
    pub fn find(&self, local: Ulid, peer: Ulid) -> Option<ContextTag> {
        self.table.find(local, peer, 0)
    }

    /// The E-FAILED / NO-SUPPORT hold-down of a ULID pair, if one is running.
    pub fn holddown(&self, local: Ulid, peer: Ulid) -> Option<(Instant, FailReason)> {
        self.holddowns.get(&(local, peer)).copied()
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Entries held in every per-context, per-peer and cache table (contexts, indexes, timers,
    /// hold-downs, signature and verification caches). A stateless exchange (I1 → R1) must not
    /// move it; tests use it to check that floods keep no state.
    pub fn state_entries(&self) -> usize {
        self.table.entries()
            + self.holddowns.len()
            + self.holddown_timers.len()
            + self.verifier.cache_entries()
            + self.site.cache_entries()
    }

    /// Our locators for a local host: one per provider that is up.
    pub fn local_locators(&self, ulid: Ulid) -> Vec<Locator> {
        if self.site.is_host(ulid) {
            self.site.up_locators(ulid)
        } else {
            Vec::new()
        }
    }

    /// Removes a context at once (no message is sent: SHIM6 has no teardown,
    /// [RFC 5533 §9](https://www.rfc-editor.org/rfc/rfc5533#section-9)). Returns whether it existed.
    pub fn remove(&mut self, _now: Instant, tag: ContextTag) -> bool {
        match self.table.take(tag) {
            Some(ctx) => {
                self.drop_context(ctx, Some(RemoveReason::Explicit));
                true
            }
            None => false,
        }
    }

    fn info(&self, c: &Context) -> ContextInfo {
        ContextInfo {
            local_tag: c.local_tag,
            peer_tag: c.peer_tag,
            local_ulid: c.local_ulid,
            peer_ulid: c.peer_ulid,
            fii: c.fii,
            state: c.state,
            pair: c.pair,
            local_locators: self.site.up_locators(c.local_ulid),
            peer_locators: c.peer_locators.clone(),
            peer_generation: c.peer_generation,
            reap_state: c.reap.as_ref().map(reap::ReapMachine::state),
            update_pending: c.update.is_some(),
        }
    }

    /// Puts a context back into the table (re-indexed, deadline refiled).
    fn put(&mut self, ctx: Context) {
        self.table.put(ctx, self.config.idle_timeout);
    }

    /// Forgets a context taken out of the table: releases its tag and tells the data plane.
    fn drop_context(&mut self, ctx: Context, reason: Option<RemoveReason>) {
        self.tags.release(ctx.local_tag);
        // Only contexts the data plane knows of (ESTABLISHED / I2BIS-SENT) are announced.
        if let Some(reason) = reason.filter(|_| ctx.state.usable()) {
            self.events.push_back(ContextEvent::Removed {
                local_tag: ctx.local_tag,
                reason,
            });
        }
    }

    /// A fresh CT(local) from the allocator, never `avoid` (the I2bis Packet Context Tag, which
    /// RFC 5533 §7.20 says SHOULD NOT be re-used) and never a live tag (defence against a
    /// faulty allocator: inbound demultiplexing relies on uniqueness, §7.1).
    fn allocate_tag(&mut self, avoid: Option<ContextTag>) -> Option<ContextTag> {
        let mut rejected = Vec::new();
        let mut found = None;
        for _ in 0..4 {
            let Some(tag) = self.tags.allocate(&mut self.rng) else {
                break;
            };
            if Some(tag) == avoid || self.table.get(tag).is_some() {
                rejected.push(tag);
                continue;
            }
            found = Some(tag);
            break;
        }
        for tag in rejected {
            if self.table.get(tag).is_none() {
                self.tags.release(tag);
            }
        }
        found
    }
}
