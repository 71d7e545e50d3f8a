//! One simulated site: a SHIM6 engine (the proxy's slow path), a translation table fed by the
//! engine's events (the proxy's fast path, reduced to its rules), and one legacy host that sends
//! numbered UDP datagrams addressed by ULIDs.
//!
//! A site can also stand for a plain SHIM6 *host* with no proxy: its ULID prefix is then one of
//! its provider prefixes, so its ULID is one of its own routable locators.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv6Addr;
use std::time::Instant;

use cga::{CgaParameters, SiteKey};
use rand::rngs::StdRng;
use rand::SeedableRng;
use shim6::{
    prefix64, ConnectOutcome, ContextEngine, ContextEvent, EngineConfig, LocalProvider, ProviderId,
    RandomTags, SiteIdentity,
};
use wire::{ContextTag, Locator, LocatorPair, MessageType, Ulid};

use crate::network::{Network, WirePacket};
use crate::SimError;

/// Most ULID packets a site holds while a handshake runs (the rest are dropped and counted).
const PENDING_MAX: usize = 64;
/// Bytes of UDP payload in every host datagram: the sequence number then a filler pattern.
const DATAGRAM_LEN: usize = 56;
/// UDP port both hosts use.
const UDP_PORT: u16 = 4242;

/// How a site is built.
#[derive(Debug, Clone)]
pub struct SiteSpec {
    /// Short name used in reports ("a", "b").
    pub name: &'static str,
    /// PKCS#8 PEM of the site key.
    pub key_pem: &'static str,
    /// The /64 under which the host's ULID (a CGA of the site key) is made.
    pub ulid_prefix: [u8; 8],
    /// The provider (PA) prefixes, in order; the first one is provider 0.
    pub providers: Vec<[u8; 8]>,
    /// Engine settings.
    pub config: EngineConfig,
}

/// One entry of the translation table: what the data plane needs per context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableEntry {
    /// Our host's ULID.
    pub local_ulid: Ulid,
    /// The peer's ULID.
    pub peer_ulid: Ulid,
    /// Tag the peer expects in payload we send.
    pub peer_tag: ContextTag,
    /// Locator pair used for sending.
    pub pair: LocatorPair,
}

#[derive(Debug, Clone, Copy, Default)]
struct Activity {
    last_rx: Option<Instant>,
    last_tx: Option<Instant>,
    dirty: bool,
}

/// One datagram that reached this site's host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// When it arrived.
    pub at: Instant,
    /// Locator pair it crossed the wire on (sender's locator, our locator).
    pub wire_src: Ipv6Addr,
    /// Our locator it was sent to.
    pub wire_dst: Ipv6Addr,
    /// Its sequence number.
    pub seq: u64,
}

/// Counters of one site.
#[derive(Debug, Clone, Default)]
pub struct SiteStats {
    /// Datagrams the host sent.
    pub sent: u64,
    /// Datagrams delivered to the host byte-exact.
    pub delivered: u64,
    /// Datagrams delivered but not byte-identical to what the peer host sent (must stay 0).
    pub corrupted: u64,
    /// Datagrams dropped because no context existed and the pending queue was full, or the
    /// handshake failed.
    pub dropped_no_context: u64,
    /// Payload packets that arrived with a tag we do not know (each leads to an R1bis).
    pub unknown_tag: u64,
    /// Every delivery, in order.
    pub deliveries: Vec<Delivery>,
    /// Number of Established events (first handshakes and recoveries).
    pub established_events: u64,
    /// Number of PairChanged events.
    pub pair_changes: u64,
    /// Every tag of ours that a context was established with (payload to us carries one).
    pub local_tags: Vec<ContextTag>,
}

/// A simulated site.
pub struct Site {
    spec: SiteSpec,
    seed: u64,
    engine: ContextEngine,
    providers: Vec<LocalProvider>,
    /// The host's ULID.
    pub host: Ulid,
    host_params: CgaParameters,
    table: HashMap<ContextTag, TableEntry>,
    egress: HashMap<(Ulid, Ulid), ContextTag>,
    activity: HashMap<ContextTag, Activity>,
    dns: HashMap<Ulid, Vec<Locator>>,
    pending: VecDeque<(Ulid, u64)>,
    /// Counters.
    pub stats: SiteStats,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.spec.name)
            .field("host", &self.host)
            .finish()
    }
}

fn engine_err(e: impl std::fmt::Display) -> SimError {
    SimError::Engine(e.to_string())
}

impl Site {
    /// Builds the site: loads its key, makes the host's CGA ULID, starts the engine.
    pub fn new(spec: SiteSpec, seed: u64, now: Instant) -> Result<Self, SimError> {
        let key =
            SiteKey::from_pkcs8_pem(spec.key_pem).map_err(|e| SimError::Cga(e.to_string()))?;
        let mut rng = StdRng::seed_from_u64(seed);
        let (ulid, host_params) =
            cga::generate(key.public_key_der(), spec.ulid_prefix, 0, &[], &mut rng)
                .map_err(|e| SimError::Cga(e.to_string()))?;
        let providers: Vec<LocalProvider> = spec
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| LocalProvider {
                id: ProviderId(i as u16),
                prefix: *p,
                up: true,
            })
            .collect();
        let engine = Self::start_engine(&spec, &providers, seed, now, Ulid(ulid), &host_params)?;
        Ok(Self {
            spec,
            seed,
            engine,
            providers,
            host: Ulid(ulid),
            host_params,
            table: HashMap::new(),
            egress: HashMap::new(),
            activity: HashMap::new(),
            dns: HashMap::new(),
            pending: VecDeque::new(),
            stats: SiteStats::default(),
        })
    }

    fn start_engine(
        spec: &SiteSpec,
        providers: &[LocalProvider],
        seed: u64,
        now: Instant,
        host: Ulid,
        params: &CgaParameters,
    ) -> Result<ContextEngine, SimError> {
        let key =
            SiteKey::from_pkcs8_pem(spec.key_pem).map_err(|e| SimError::Cga(e.to_string()))?;
        let identity = SiteIdentity {
            key,
            ulid_prefix: spec.ulid_prefix,
            providers: providers.to_vec(),
        };
        let mut engine = ContextEngine::new(
            spec.config.clone(),
            identity,
            Box::new(RandomTags::new()),
            seed,
            now,
        )
        .map_err(engine_err)?;
        engine
            .add_local_host(host, params.clone())
            .map_err(engine_err)?;
        Ok(engine)
    }

    /// Site name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The engine (read-only), for reports and checks.
    pub fn engine(&self) -> &ContextEngine {
        &self.engine
    }

    /// The translation table.
    pub fn table(&self) -> impl Iterator<Item = (&ContextTag, &TableEntry)> {
        self.table.iter()
    }

    /// The host's locators on every provider that is up.
    pub fn locators(&self) -> Vec<Locator> {
        self.engine.local_locators(self.host)
    }

    /// Whether `addr` is one of this site's provider addresses (how the core routes).
    pub fn owns(&self, addr: Ipv6Addr) -> bool {
        let p = prefix64(addr);
        self.providers.iter().any(|lp| lp.prefix == p)
    }

    /// Provider prefixes (also those that are down).
    pub fn provider_prefixes(&self) -> Vec<[u8; 8]> {
        self.providers.iter().map(|p| p.prefix).collect()
    }

    /// What the DNS ALG would have cached for a peer ULID.
    pub fn learn_peer(&mut self, peer: Ulid, locators: Vec<Locator>) {
        self.dns.insert(peer, locators);
    }

    /// The host sends datagram `seq` to `dst`.
    pub fn host_send(
        &mut self,
        now: Instant,
        net: &mut Network,
        dst: Ulid,
        seq: u64,
    ) -> Result<(), SimError> {
        self.stats.sent += 1;
        if let Some(tag) = self.egress.get(&(self.host, dst)).copied() {
            return self.translate_out(now, net, tag, seq);
        }
        if self.pending.len() >= PENDING_MAX {
            self.stats.dropped_no_context += 1;
        } else {
            self.pending.push_back((dst, seq));
        }
        let locators = self.dns.get(&dst).cloned().unwrap_or_default();
        match self
            .engine
            .connect(now, self.host, dst, &locators)
            .map_err(engine_err)?
        {
            ConnectOutcome::Existing(tag) => {
                // The engine has a context the table does not know yet (event not polled).
                let _ = tag;
            }
            ConnectOutcome::Started(_) => {}
            ConnectOutcome::HeldDown { .. } | ConnectOutcome::Refused => {
                self.drop_pending_for(dst);
            }
        }
        Ok(())
    }

    fn drop_pending_for(&mut self, dst: Ulid) {
        let before = self.pending.len();
        self.pending.retain(|(d, _)| *d != dst);
        self.stats.dropped_no_context += (before - self.pending.len()) as u64;
    }

    fn translate_out(
        &mut self,
        now: Instant,
        net: &mut Network,
        tag: ContextTag,
        seq: u64,
    ) -> Result<(), SimError> {
        let Some(entry) = self.table.get(&tag).copied() else {
            self.stats.dropped_no_context += 1;
            return Ok(());
        };
        let mut buf = vec![0u8; wire::PAYLOAD_HEADER_LEN];
        buf.extend_from_slice(&ulid_datagram(entry.local_ulid, entry.peer_ulid, seq));
        // Rewrite ULIDs to locators, then insert the payload header with the peer's tag.
        buf[8 + 8..8 + 24].copy_from_slice(&entry.pair.local.0.octets());
        buf[8 + 24..8 + 40].copy_from_slice(&entry.pair.peer.0.octets());
        wire::insert_payload_header(&mut buf, entry.peer_tag)
            .map_err(|e| SimError::Wire(e.to_string()))?;
        let a = self.activity.entry(tag).or_default();
        a.last_tx = Some(now);
        a.dirty = true;
        net.send(now, WirePacket { bytes: buf }, "payload")
    }

    /// A packet from the wire reached one of our locators.
    pub fn receive(&mut self, now: Instant, packet: WirePacket) -> Result<(), SimError> {
        let (src, dst) = (packet.src(), packet.dst());
        let Ok(Some(loc)) = wire::find_shim6(&packet.bytes) else {
            return Ok(()); // not SHIM6: nothing in this simulation sends such packets
        };
        let Some(&flags) = packet.bytes.get(loc.offset + 2) else {
            return Ok(());
        };
        if flags & 0x80 == 0 {
            let Some(shim) = packet.bytes.get(loc.offset..) else {
                return Ok(());
            };
            self.engine.handle_control(now, src, dst, shim);
            return Ok(());
        }
        let mut bytes = packet.bytes;
        let tag =
            wire::remove_payload_header(&mut bytes).map_err(|e| SimError::Wire(e.to_string()))?;
        let Some(entry) = self.table.get(&tag).copied() else {
            self.stats.unknown_tag += 1;
            self.engine.handle_unknown_tag(now, src, dst, tag);
            return Ok(());
        };
        let inner = &mut bytes[wire::PAYLOAD_HEADER_LEN..];
        inner[8..24].copy_from_slice(&entry.peer_ulid.0.octets());
        inner[24..40].copy_from_slice(&entry.local_ulid.0.octets());
        let a = self.activity.entry(tag).or_default();
        a.last_rx = Some(now);
        a.dirty = true;
        let seq = datagram_seq(inner);
        if inner == ulid_datagram(entry.peer_ulid, entry.local_ulid, seq).as_slice() {
            self.stats.delivered += 1;
            self.stats.deliveries.push(Delivery {
                at: now,
                wire_src: src,
                wire_dst: dst,
                seq,
            });
        } else {
            self.stats.corrupted += 1;
        }
        Ok(())
    }

    /// Reports the data-plane activity counters that moved since the last report.
    pub fn report_activity(&mut self, now: Instant) {
        for (tag, a) in self.activity.iter_mut() {
            if a.dirty {
                a.dirty = false;
                self.engine
                    .payload_activity(now, *tag, a.last_rx, a.last_tx);
            }
        }
    }

    /// Runs the engine's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
    }

    /// When the engine next needs [`Site::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// Sends what the engine queued and applies its events to the table.
    pub fn flush(&mut self, now: Instant, net: &mut Network) -> Result<(), SimError> {
        loop {
            let mut progressed = false;
            while let Some(t) = self.engine.poll_transmit() {
                progressed = true;
                let kind = control_kind(&t.payload);
                net.send(
                    now,
                    WirePacket {
                        bytes: ipv6_packet(t.src, t.dst, &t.payload),
                    },
                    &kind,
                )?;
            }
            while let Some(ev) = self.engine.poll_event() {
                progressed = true;
                self.apply(now, net, ev)?;
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    fn apply(&mut self, now: Instant, net: &mut Network, ev: ContextEvent) -> Result<(), SimError> {
        match ev {
            ContextEvent::Established {
                local_tag,
                peer_tag,
                local_ulid,
                peer_ulid,
                pair,
                ..
            } => {
                self.stats.established_events += 1;
                if !self.stats.local_tags.contains(&local_tag) {
                    self.stats.local_tags.push(local_tag);
                }
                self.table.insert(
                    local_tag,
                    TableEntry {
                        local_ulid,
                        peer_ulid,
                        peer_tag,
                        pair,
                    },
                );
                self.egress.insert((local_ulid, peer_ulid), local_tag);
                let waiting: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(d, _)| *d == peer_ulid)
                    .map(|(_, s)| *s)
                    .collect();
                self.pending.retain(|(d, _)| *d != peer_ulid);
                for seq in waiting {
                    self.translate_out(now, net, local_tag, seq)?;
                }
            }
            ContextEvent::PairChanged { local_tag, pair } => {
                self.stats.pair_changes += 1;
                if let Some(e) = self.table.get_mut(&local_tag) {
                    e.pair = pair;
                }
            }
            ContextEvent::PeerTagChanged {
                local_tag,
                peer_tag,
            } => {
                if let Some(e) = self.table.get_mut(&local_tag) {
                    e.peer_tag = peer_tag;
                }
            }
            ContextEvent::Removed { local_tag, .. } => {
                if let Some(e) = self.table.remove(&local_tag) {
                    self.egress.remove(&(e.local_ulid, e.peer_ulid));
                }
                self.activity.remove(&local_tag);
            }
            ContextEvent::Failed { peer_ulid, .. } => self.drop_pending_for(peer_ulid),
        }
        Ok(())
    }

    /// The proxy crashes and restarts: every context and table entry is lost; the key and the
    /// host binding (durable state) survive.
    pub fn restart(&mut self, now: Instant) -> Result<(), SimError> {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.engine = Self::start_engine(
            &self.spec,
            &self.providers,
            self.seed,
            now,
            self.host,
            &self.host_params,
        )?;
        self.table.clear();
        self.egress.clear();
        self.activity.clear();
        self.pending.clear();
        Ok(())
    }

    /// A new provider prefix is connected.
    pub fn add_provider(&mut self, now: Instant, prefix: [u8; 8]) {
        let p = LocalProvider {
            id: ProviderId(self.providers.len() as u16),
            prefix,
            up: true,
        };
        self.providers.push(p.clone());
        self.engine.add_provider(now, p);
    }

    /// A provider is disconnected for good.
    pub fn remove_provider(&mut self, now: Instant, prefix: [u8; 8]) {
        if let Some(p) = self.providers.iter().find(|p| p.prefix == prefix) {
            let id = p.id;
            self.engine.remove_provider(now, id);
        }
    }

    /// The local link to a provider went down or came back (a local signal).
    pub fn set_provider_up(&mut self, now: Instant, prefix: [u8; 8], up: bool) {
        if let Some(p) = self.providers.iter_mut().find(|p| p.prefix == prefix) {
            p.up = up;
            let id = p.id;
            self.engine.set_provider_state(now, id, up);
        }
    }

    /// The pair our context with `peer` sends on, if established.
    pub fn current_pair(&self, peer: Ulid) -> Option<LocatorPair> {
        let tag = self.egress.get(&(self.host, peer))?;
        self.table.get(tag).map(|e| e.pair)
    }
}

/// The datagram the legacy host sends: IPv6 (ULIDs) + UDP with a valid checksum over the ULIDs.
pub fn ulid_datagram(src: Ulid, dst: Ulid, seq: u64) -> Vec<u8> {
    let mut udp = vec![0u8; 8 + DATAGRAM_LEN];
    udp[0..2].copy_from_slice(&UDP_PORT.to_be_bytes());
    udp[2..4].copy_from_slice(&UDP_PORT.to_be_bytes());
    let len = udp.len() as u16;
    udp[4..6].copy_from_slice(&len.to_be_bytes());
    udp[8..16].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in udp[16..].iter_mut().enumerate() {
        *b = (i as u8) ^ (seq as u8);
    }
    // Pseudo-header checksum (RFC 8200 §8.1) over the ULIDs: the shim never touches it.
    let mut pseudo = Vec::with_capacity(40 + udp.len());
    pseudo.extend_from_slice(&src.0.octets());
    pseudo.extend_from_slice(&dst.0.octets());
    pseudo.extend_from_slice(&u32::from(len).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    pseudo.extend_from_slice(&udp);
    let sum = match wire::checksum::checksum(&pseudo) {
        0 => 0xffff,
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut packet = ipv6_packet(src.0, dst.0, &udp);
    packet[6] = 17;
    packet
}

fn datagram_seq(packet: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = packet.get(48..56) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

/// An IPv6 packet with Next Header 140 around a Shim6 message.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(wire::SHIM6_NEXT_HEADER);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// "I1", "Probe", ... for a Shim6 control message.
fn control_kind(shim: &[u8]) -> String {
    let t = shim.get(2).map_or(0, |b| b & 0x7f);
    match MessageType::from(t) {
        MessageType::Unknown(v) => format!("type{v}"),
        known => format!("{known:?}"),
    }
}
