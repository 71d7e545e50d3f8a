//! Test harness: two engines on a virtual clock joined by a fake network with one-way
//! latency, random loss, per-locator-pair drop sets and a packet filter (after quinn-proto's
//! `tests/util.rs`). `step` delivers what is due, else jumps to the earliest wake-up.

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wire::{ContextTag, ControlRepr, Locator, LocatorList, MessageBody, Nonce, ShimOption, Ulid};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use crate::{
    ConnectOutcome, ContextEngine, ContextEvent, ContextState, EngineConfig, LocalProvider,
    ProviderId, RandomTags, SiteIdentity, TagAllocator, Transmit,
};

/// Message type codes.
pub(crate) const I1: u8 = 1;
pub(crate) const R1: u8 = 2;
pub(crate) const I2: u8 = 3;
pub(crate) const R2: u8 = 4;
pub(crate) const R1BIS: u8 = 5;
pub(crate) const I2BIS: u8 = 6;
pub(crate) const UPDATE_REQUEST: u8 = 64;
pub(crate) const UPDATE_ACK: u8 = 65;
pub(crate) const ERROR: u8 = 68;

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn ms(s: u64) -> Duration {
    Duration::from_millis(s)
}

/// One fixed origin so test times print as small offsets.
pub(crate) fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

pub(crate) fn p64(s: &str) -> [u8; 8] {
    crate::prefix64(s.parse().unwrap())
}

pub(crate) fn msg_type(t: &Transmit) -> u8 {
    t.payload[2] & 0x7f
}

pub(crate) fn parse(t: &Transmit) -> ControlRepr {
    ControlRepr::parse(&t.payload).unwrap()
}

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    AtoB,
    BtoA,
}

/// How one side is built.
#[derive(Clone)]
pub(crate) struct SideSpec {
    pub(crate) pem: &'static str,
    pub(crate) ulid_prefix: [u8; 8],
    pub(crate) providers: Vec<LocalProvider>,
    pub(crate) hosts: usize,
    pub(crate) config: EngineConfig,
    pub(crate) narrow_tags: bool,
    pub(crate) seed: u64,
}

impl SideSpec {
    /// A proxy: CMULA ULIDs under `fc00:0:0:<n>::/64`, providers `2001:db8:<n>1::/64` and
    /// `2001:db8:<n>2::/64`.
    pub(crate) fn proxy(pem: &'static str, n: u16, seed: u64) -> Self {
        Self {
            pem,
            ulid_prefix: p64(&format!("fc00:0:0:{n:x}::")),
            providers: vec![
                LocalProvider {
                    id: ProviderId(1),
                    prefix: p64(&format!("2001:db8:{:x}::", n * 16 + 1)),
                    up: true,
                },
                LocalProvider {
                    id: ProviderId(2),
                    prefix: p64(&format!("2001:db8:{:x}::", n * 16 + 2)),
                    up: true,
                },
            ],
            hosts: 2,
            config: EngineConfig::default(),
            narrow_tags: false,
            seed,
        }
    }

    /// A plain SHIM6 host: its ULID is its locator on the first provider.
    pub(crate) fn host(pem: &'static str, n: u16, seed: u64) -> Self {
        let mut s = Self::proxy(pem, n, seed);
        s.ulid_prefix = s.providers[0].prefix;
        s.hosts = 1;
        s
    }
}

pub(crate) struct Side {
    pub(crate) spec: SideSpec,
    pub(crate) engine: ContextEngine,
    pub(crate) hosts: Vec<Ulid>,
    pub(crate) params: Vec<cga::CgaParameters>,
    pub(crate) events: Vec<(Instant, ContextEvent)>,
    /// Everything this side sent (delivered or not).
    pub(crate) sent: Vec<(Instant, Transmit)>,
}

fn site_key(pem: &str) -> cga::SiteKey {
    cga::SiteKey::from_pkcs8_pem(pem).unwrap()
}

impl Side {
    pub(crate) fn build(spec: SideSpec, now: Instant) -> Self {
        Self::build_with_tags(spec, now, None)
    }

    pub(crate) fn build_with_tags(
        spec: SideSpec,
        now: Instant,
        tags: Option<Box<dyn TagAllocator + Send>>,
    ) -> Self {
        let key = site_key(spec.pem);
        let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x5eed);
        let mut hosts = Vec::new();
        let mut params = Vec::new();
        for _ in 0..spec.hosts {
            let (addr, p) =
                cga::generate(key.public_key_der(), spec.ulid_prefix, 0, &[], &mut rng).unwrap();
            hosts.push(Ulid(addr));
            params.push(p);
        }
        let mut side = Self {
            engine: Self::engine(&spec, key, now, tags),
            spec,
            hosts,
            params,
            events: Vec::new(),
            sent: Vec::new(),
        };
        side.add_hosts();
        side
    }

    fn engine(
        spec: &SideSpec,
        key: cga::SiteKey,
        now: Instant,
        tags: Option<Box<dyn TagAllocator + Send>>,
    ) -> ContextEngine {
        let identity = SiteIdentity {
            key,
            ulid_prefix: spec.ulid_prefix,
            providers: spec.providers.clone(),
        };
        let tags = tags.unwrap_or_else(|| {
            if spec.narrow_tags {
                Box::new(RandomTags::narrow())
            } else {
                Box::new(RandomTags::new())
            }
        });
        ContextEngine::new(spec.config.clone(), identity, tags, spec.seed, now).unwrap()
    }

    fn add_hosts(&mut self) {
        for (u, p) in self.hosts.iter().zip(&self.params) {
            self.engine.add_local_host(*u, p.clone()).unwrap();
        }
    }

    /// Loses every context: a fresh engine with the same key, hosts and providers.
    pub(crate) fn restart(&mut self, now: Instant, seed: u64) {
        self.spec.seed = seed;
        self.engine = Self::engine(&self.spec, site_key(self.spec.pem), now, None);
        self.add_hosts();
    }

    /// Locators of host `i` (all providers, in order).
    pub(crate) fn locators(&self, i: usize) -> Vec<Locator> {
        self.spec
            .providers
            .iter()
            .map(|p| crate::locator_for(p.prefix, self.hosts[i]))
            .collect()
    }

    pub(crate) fn sent_of(&self, ty: u8) -> Vec<(Instant, Transmit)> {
        self.sent
            .iter()
            .filter(|(_, t)| msg_type(t) == ty)
            .cloned()
            .collect()
    }

    pub(crate) fn count_sent(&self, ty: u8) -> usize {
        self.sent.iter().filter(|(_, t)| msg_type(t) == ty).count()
    }

    pub(crate) fn established(&self) -> Vec<ContextEvent> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, ContextEvent::Established { .. }))
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub(crate) fn has_event(&self, f: impl Fn(&ContextEvent) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }

    /// Whether this side holds context `tag` in ESTABLISHED.
    pub(crate) fn is_established(&self, tag: ContextTag) -> bool {
        self.engine
            .context(tag)
            .is_some_and(|c| c.state == ContextState::Established)
    }

    pub(crate) fn only_context(&self) -> crate::ContextInfo {
        let all: Vec<_> = self.engine.contexts().collect();
        assert_eq!(all.len(), 1, "expected exactly one context, got {all:#?}");
        all.into_iter().next().unwrap()
    }
}

type Filter = Box<dyn FnMut(Dir, &Transmit) -> bool>;

pub(crate) struct Pair {
    pub(crate) a: Side,
    pub(crate) b: Side,
    pub(crate) now: Instant,
    pub(crate) latency: Duration,
    pub(crate) loss: f64,
    rng: StdRng,
    /// Directional (src, dst) pairs whose packets are lost.
    pub(crate) blocked: HashSet<(Ipv6Addr, Ipv6Addr)>,
    /// Returns false to drop a packet.
    pub(crate) filter: Option<Filter>,
    in_flight: Vec<(Instant, u64, Dir, Transmit)>,
    seq: u64,
    pub(crate) dropped: Vec<(Instant, Dir, Transmit)>,
}

impl Pair {
    pub(crate) fn new(seed: u64) -> Self {
        Self::with(
            SideSpec::proxy(SITE_A_PEM, 0xa, seed),
            SideSpec::proxy(SITE_B_PEM, 0xb, seed + 1),
        )
    }

    pub(crate) fn with(a: SideSpec, b: SideSpec) -> Self {
        let now = t0();
        let seed = a.seed;
        Self::from_sides(Side::build(a, now), Side::build(b, now), seed)
    }

    /// Two proxies (A seeded `seed_a`, B `seed_b`) where B's tag allocator hands out `tags`
    /// first: forces tag re-use (RFC 5533 §7.6 confusion, §7.20 fresh tags).
    pub(crate) fn with_scripted_b_tags(seed_a: u64, seed_b: u64, tags: &[u64]) -> Self {
        let now = t0();
        let a = Side::build(SideSpec::proxy(SITE_A_PEM, 0xa, seed_a), now);
        let b = Side::build_with_tags(
            SideSpec::proxy(SITE_B_PEM, 0xb, seed_b),
            now,
            Some(Box::new(ScriptedTags::new(tags))),
        );
        Self::from_sides(a, b, seed_a)
    }

    pub(crate) fn from_sides(a: Side, b: Side, seed: u64) -> Self {
        Self {
            a,
            b,
            now: t0(),
            latency: ms(10),
            loss: 0.0,
            rng: StdRng::seed_from_u64(seed ^ 0x1055),
            blocked: HashSet::new(),
            filter: None,
            in_flight: Vec::new(),
            seq: 0,
            dropped: Vec::new(),
        }
    }

    pub(crate) fn side(&mut self, d: Dir) -> &mut Side {
        match d {
            Dir::AtoB => &mut self.a,
            Dir::BtoA => &mut self.b,
        }
    }

    /// Moves transmits and events out of both engines onto the wire / into the logs.
    pub(crate) fn flush(&mut self) {
        for dir in [Dir::AtoB, Dir::BtoA] {
            let now = self.now;
            let side = self.side(dir);
            let mut out = Vec::new();
            while let Some(t) = side.engine.poll_transmit() {
                side.sent.push((now, t.clone()));
                out.push(t);
            }
            while let Some(e) = side.engine.poll_event() {
                side.events.push((now, e));
            }
            for t in out {
                let lost = self.loss > 0.0 && self.rng.gen_bool(self.loss);
                let blocked = self.blocked.contains(&(t.src, t.dst));
                let kept = self.filter.as_mut().is_none_or(|f| f(dir, &t));
                if lost || blocked || !kept {
                    self.dropped.push((now, dir, t));
                } else {
                    self.seq += 1;
                    self.in_flight.push((now + self.latency, self.seq, dir, t));
                }
            }
        }
    }

    /// Earliest thing that will happen.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        let wire = self.in_flight.iter().map(|(t, ..)| *t).min();
        [
            wire,
            self.a.engine.poll_timeout(),
            self.b.engine.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Delivers one due packet, or fires due timers, or jumps to the next wake-up. Returns
    /// false when nothing is left to happen.
    pub(crate) fn step(&mut self) -> bool {
        self.flush();
        let due = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, (t, ..))| *t <= self.now)
            .min_by_key(|(_, (t, s, ..))| (*t, *s))
            .map(|(i, _)| i);
        if let Some(i) = due {
            let (_, _, dir, t) = self.in_flight.remove(i);
            self.deliver(dir, &t);
            self.flush();
            return true;
        }
        let timers_due = [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
            .into_iter()
            .flatten()
            .any(|t| t <= self.now);
        if !timers_due {
            match self.next_wakeup() {
                Some(t) => self.now = self.now.max(t),
                None => return false,
            }
        }
        let now = self.now;
        if self.a.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.a.engine.handle_timeout(now);
        }
        if self.b.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.b.engine.handle_timeout(now);
        }
        self.flush();
        true
    }

    /// Hands a packet to the receiving engine as its data plane would.
    pub(crate) fn deliver(&mut self, dir: Dir, t: &Transmit) {
        let now = self.now;
        let to = match dir {
            Dir::AtoB => &mut self.b,
            Dir::BtoA => &mut self.a,
        };
        to.engine.handle_control(now, t.src, t.dst, &t.payload);
    }

    /// Injects a packet as if `dir`'s sender had sent it now.
    pub(crate) fn inject(&mut self, dir: Dir, t: Transmit) {
        self.seq += 1;
        self.in_flight
            .push((self.now + self.latency, self.seq, dir, t));
    }

    /// Steps until `cond` holds; panics after `max` steps (a test must not hang).
    pub(crate) fn drive_bounded(&mut self, max: usize, mut cond: impl FnMut(&Self) -> bool) {
        for _ in 0..max {
            if cond(self) {
                return;
            }
            if !self.step() {
                break;
            }
        }
        assert!(
            cond(self),
            "condition not reached within {max} steps (t = {:?})",
            self.now - t0()
        );
    }

    /// Runs everything that happens up to `deadline`, then sets the clock to it.
    pub(crate) fn drive_until(&mut self, deadline: Instant) {
        for _ in 0..1_000_000 {
            self.flush();
            let due_now = self.in_flight.iter().any(|(t, ..)| *t <= self.now)
                || [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .any(|t| t <= self.now);
            if !due_now && self.next_wakeup().is_none_or(|t| t > deadline) {
                self.now = self.now.max(deadline);
                return;
            }
            self.step();
        }
        panic!("drive_until did not converge");
    }

    pub(crate) fn drive_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.drive_until(deadline);
    }

    /// A's host `i` starts a context with B's host `j` through B's locators (nothing is
    /// driven yet). Returns A's tag; panics unless the engine started a new exchange.
    pub(crate) fn start_connect(&mut self, i: usize, j: usize) -> ContextTag {
        let (local, peer) = (self.a.hosts[i], self.b.hosts[j]);
        let locs = self.b.locators(j);
        let out = self.a.engine.connect(self.now, local, peer, &locs).unwrap();
        let ConnectOutcome::Started(tag_a) = out else {
            panic!("connect: {out:?}")
        };
        tag_a
    }

    /// A's host `i` connects to B's host `j` through B's locators; drives until both sides
    /// are ESTABLISHED. Returns (A's tag, B's tag).
    pub(crate) fn connect(&mut self, i: usize, j: usize) -> (ContextTag, ContextTag) {
        let (local, peer) = (self.a.hosts[i], self.b.hosts[j]);
        let tag_a = self.start_connect(i, j);
        self.drive_bounded(200, |p| {
            p.a.is_established(tag_a)
                && p.b
                    .engine
                    .find(peer, local)
                    .is_some_and(|t| p.b.is_established(t))
        });
        let tag_b = self.b.engine.find(peer, local).unwrap();
        (tag_a, tag_b)
    }

    /// B's host `j` starts a context with A's host `i` through A's locators; drives until A's
    /// side is ESTABLISHED. Returns A's tag.
    pub(crate) fn connect_from_b(&mut self, j: usize, i: usize) -> ContextTag {
        let (local, peer) = (self.b.hosts[j], self.a.hosts[i]);
        let locs = self.a.locators(i);
        self.b.engine.connect(self.now, local, peer, &locs).unwrap();
        self.drive_bounded(100, |p| {
            p.a.engine
                .find(peer, local)
                .is_some_and(|t| p.a.is_established(t))
        });
        self.a.engine.find(peer, local).unwrap()
    }

    /// Drops every packet of type `ty` sent in direction `dir` (kept in `dropped`).
    pub(crate) fn drop_type(&mut self, dir: Dir, ty: u8) {
        self.filter = Some(Box::new(move |d, t| !(d == dir && msg_type(t) == ty)));
    }

    /// Lets only the packets sent in direction `dir` through.
    pub(crate) fn pass_only(&mut self, dir: Dir) {
        self.filter = Some(Box::new(move |d, _| d == dir));
    }

    /// Drops every packet, both ways.
    pub(crate) fn drop_everything(&mut self) {
        self.filter = Some(Box::new(|_, _| false));
    }

    /// The first dropped packet of type `ty` sent in direction `dir`; panics if none was.
    pub(crate) fn first_dropped(&self, dir: Dir, ty: u8) -> Transmit {
        self.dropped
            .iter()
            .find(|(_, d, t)| *d == dir && msg_type(t) == ty)
            .unwrap_or_else(|| panic!("no dropped message of type {ty} {dir:?}"))
            .2
            .clone()
    }

    /// Loses every packet between locators `x` and `y`, both ways (a broken path).
    pub(crate) fn cut(&mut self, x: Locator, y: Locator) {
        self.blocked.insert((x.0, y.0));
        self.blocked.insert((y.0, x.0));
    }

    /// B loses context `tb` while A's payload of context `ta` keeps coming with tag `tb` on
    /// A's current pair: B's data plane punts it as an unknown tag (RFC 5533 §7.17, R1bis).
    pub(crate) fn b_loses_context(&mut self, ta: ContextTag, tb: ContextTag) {
        let pair = self.a.engine.context(ta).unwrap().pair;
        self.b.engine.remove(self.now, tb);
        self.b
            .engine
            .handle_unknown_tag(self.now, pair.local.0, pair.peer.0, tb);
    }

    /// Drops packets of type `ty` sent in direction `dir`, runs `trigger` and drives for
    /// `wait`. Returns the first packet so held back (undelivered); the filter stays.
    pub(crate) fn held_back(
        &mut self,
        dir: Dir,
        ty: u8,
        wait: Duration,
        trigger: impl FnOnce(&mut Self),
    ) -> Transmit {
        self.drop_type(dir, ty);
        trigger(self);
        self.drive_for(wait);
        self.first_dropped(dir, ty)
    }

    /// Holds back the Update Request A sends after `change` (A's locator set or
    /// preferences), then lets only B → A through. Returns the held request, undelivered.
    pub(crate) fn held_update_request(&mut self, change: impl FnOnce(&mut Self)) -> Transmit {
        let ur = self.held_back(Dir::AtoB, UPDATE_REQUEST, ms(20), change);
        self.pass_only(Dir::BtoA);
        ur
    }

    /// A's context `ta` sends payload (and hears nothing) every 500 ms, for 30 s at most,
    /// until A reports a pair change (REAP failover, RFC 5534).
    pub(crate) fn a_sends_until_pair_changes(&mut self, ta: ContextTag) {
        for _ in 0..60 {
            self.drive_for(ms(500));
            let now = self.now;
            self.a.engine.payload_activity(now, ta, None, Some(now));
            if self
                .a
                .has_event(|e| matches!(e, ContextEvent::PairChanged { .. }))
            {
                break;
            }
        }
    }
}

/// The peer locators of context `ctx` (its Ls(peer)), in order.
pub(crate) fn peer_locators_of(ctx: &crate::ContextInfo) -> Vec<Locator> {
    ctx.peer_locators.iter().map(|l| l.locator).collect()
}

/// Site A's provider 3 (`2001:db8:a3::/64`, up): adding it makes A announce a new locator
/// list (RFC 5533 §10.1).
pub(crate) fn provider_a3() -> LocalProvider {
    LocalProvider {
        id: ProviderId(3),
        prefix: p64("2001:db8:a3::"),
        up: true,
    }
}

/// An I1 from `sender` to `receiver` with the ULID Pair option, as bytes.
pub(crate) fn i1_payload(sender: Ulid, receiver: Ulid, tag: ContextTag, nonce: Nonce) -> Vec<u8> {
    ControlRepr {
        body: MessageBody::I1 {
            initiator_tag: tag,
            initiator_nonce: nonce,
        },
        options: vec![ShimOption::UlidPair { sender, receiver }],
    }
    .to_bytes()
    .unwrap()
}

/// `t` with `f` applied to each of its options (re-emitted; see [`forge`]).
pub(crate) fn forge_options(t: &Transmit, mut f: impl FnMut(&mut ShimOption)) -> Transmit {
    forge(t, |r| r.options.iter_mut().for_each(&mut f))
}

/// `t` with `f` applied to its Locator List option (re-emitted; see [`forge`]).
pub(crate) fn forge_locator_list(t: &Transmit, mut f: impl FnMut(&mut LocatorList)) -> Transmit {
    forge_options(t, |o| {
        if let ShimOption::LocatorList(l) = o {
            f(l);
        }
    })
}

/// A Transmit rebuilt from a modified Repr (re-emitted, so the checksum is right).
pub(crate) fn forge(t: &Transmit, f: impl FnOnce(&mut ControlRepr)) -> Transmit {
    let mut repr = parse(t);
    f(&mut repr);
    Transmit {
        src: t.src,
        dst: t.dst,
        payload: repr.to_bytes().unwrap(),
    }
}

pub(crate) fn body(t: &Transmit) -> MessageBody {
    parse(t).body
}

/// A tag allocator that hands out scripted tags first (to force re-use and confusion).
pub(crate) struct ScriptedTags {
    pub(crate) next: std::collections::VecDeque<u64>,
    inner: RandomTags,
}

impl ScriptedTags {
    pub(crate) fn new(tags: &[u64]) -> Self {
        Self {
            next: tags.iter().copied().collect(),
            inner: RandomTags::new(),
        }
    }
}

impl TagAllocator for ScriptedTags {
    fn allocate(&mut self, rng: &mut dyn rand::RngCore) -> Option<ContextTag> {
        match self.next.pop_front() {
            Some(v) => ContextTag::new(v),
            None => self.inner.allocate(rng),
        }
    }
    fn release(&mut self, tag: ContextTag) {
        self.inner.release(tag);
    }
}
