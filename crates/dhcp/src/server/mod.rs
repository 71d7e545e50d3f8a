//! The sans-IO DHCPv6 server ([RFC 8415](https://www.rfc-editor.org/rfc/rfc8415)): datagrams in,
//! datagrams out, time passed in, randomness seeded by the caller. Stateful IA_NA only; every
//! address is the client's CMULA.

mod lease;
mod reply;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use dhcproto::v6::{DhcpOption, Message, MessageType, OptionCode, Status, IANA};
use dhcproto::{Decodable, Decoder, Encodable};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::config::{DhcpConfig, MAX_DUID_LEN, MIN_DUID_LEN};
use crate::duid::{duid_llt, duid_uuid, ServerIdentity};
use crate::precheck::check_message;
use crate::ratelimit::RateLimiter;
use crate::store::BindingStore;
use crate::{Binding, BindingState, ClientKey, Counters, DhcpError};
use lease::{Commit, Refusal};
use reply::{add_config, answer, ia_na_stale, ia_na_with, ia_status, status, IaKind, Times};

/// Why a message gets no answer (each has a counter).
enum Silence {
    /// An RFC 8415 §16 / §18.3 rule says discard, or there is nothing to say.
    Discard,
    /// Over the client's rate limit.
    RateLimited,
    /// The store could not make the change durable.
    Store,
}

type Outcome = Result<Message, Silence>;

/// The DHCPv6 server. Feed it every datagram received on UDP port 547 with
/// [`handle`](Self::handle); send what it returns to the datagram's source address and port,
/// on the interface it came in on ([RFC 8415 §18.3.10](https://www.rfc-editor.org/rfc/rfc8415#section-18.3.10)).
///
/// Relay messages are discarded (clients must be on the server's link), and so is anything
/// that fails the structural check or the decoder. Unicast detection (RFC 8415 §16, §18.4)
/// needs the datagram's destination, which this interface does not carry: the server never
/// sends a Server Unicast option, so well-behaved clients always multicast.
#[derive(Debug)]
pub struct DhcpServer<S: BindingStore> {
    cfg: DhcpConfig,
    key_der: Vec<u8>,
    store: S,
    bindings: HashMap<ClientKey, Binding>,
    /// Bound and declined addresses → holder, for collision checks.
    by_addr: HashMap<Ipv6Addr, ClientKey>,
    /// Bindings that count against `max_bindings` (not from the configuration).
    dynamic: usize,
    server_duid: Vec<u8>,
    rng: StdRng,
    limiter: RateLimiter,
    counters: Counters,
}

/// Unix seconds of `t` (0 before the epoch).
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unix_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The first option of `code` that carries a DUID of legal length.
fn duid_option(msg: &Message, code: OptionCode) -> Option<&[u8]> {
    match msg.opts().get(code)? {
        DhcpOption::ClientId(d) | DhcpOption::ServerId(d)
            if (MIN_DUID_LEN..=MAX_DUID_LEN).contains(&d.len()) =>
        {
            Some(d)
        }
        _ => None,
    }
}

fn ias(msg: &Message) -> impl Iterator<Item = &IANA> {
    msg.opts()
        .get_all(OptionCode::IANA)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IANA(ia) => Some(ia),
            _ => None,
        })
}

/// IAIDs of the client's IA_TA and IA_PD options, which this server never fills.
fn other_ias(msg: &Message) -> Vec<(IaKind, u32)> {
    msg.opts()
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IATA(ia) => Some((IaKind::Ta, ia.id)),
            DhcpOption::IAPD(ia) => Some((IaKind::Pd, ia.id)),
            _ => None,
        })
        .collect()
}

/// The addresses a client listed in an IA_NA.
fn listed(ia: &IANA) -> Vec<Ipv6Addr> {
    ia.opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(a.addr),
            _ => None,
        })
        .collect()
}

impl<S: BindingStore> DhcpServer<S> {
    /// The IA_NA status for a client refused because the binding cap is reached (counted).
    fn refuse_no_addrs(&mut self, iaid: u32) -> DhcpOption {
        self.counters.no_addrs_avail += 1;
        ia_status(
            IaKind::Na,
            iaid,
            Status::NoAddrsAvail,
            "binding limit reached",
        )
    }

    /// Starts a server: validates `cfg`, loads the store, makes (and persists) the server DUID
    /// if the store has none, installs the static bindings. `site_key_der` is the site key's
    /// SubjectPublicKeyInfo; `rng_seed` seeds every random choice (modifiers, DUID-UUID).
    pub fn new(
        cfg: DhcpConfig,
        site_key_der: &[u8],
        mut store: S,
        identity: ServerIdentity,
        rng_seed: u64,
        now: SystemTime,
    ) -> Result<Self, DhcpError> {
        cfg.validate()?;
        let state = store.load()?;
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let server_duid = match state.server_duid {
            Some(d) => d,
            None => {
                let d = match identity {
                    ServerIdentity::LinkLayerTime(mac) => duid_llt(mac, unix(now)),
                    ServerIdentity::Uuid => duid_uuid(&mut rng),
                };
                store.claim_server_duid(&d)?
            }
        };
        let limiter = RateLimiter::new(
            cfg.rate_limit.per_second,
            cfg.rate_limit.burst,
            cfg.max_bindings.saturating_mul(2),
        );
        let mut server = Self {
            key_der: site_key_der.to_vec(),
            store,
            bindings: HashMap::new(),
            by_addr: HashMap::new(),
            dynamic: 0,
            server_duid,
            rng,
            limiter,
            counters: Counters::default(),
            cfg,
        };
        // Checks the key encoding once, so a bad key fails here and not per client.
        server.derive([0; 16], 0, 0)?;
        for b in state.bindings {
            server.install(b);
        }
        for s in server.cfg.static_bindings.clone() {
            let mut start = [0u8; 16];
            start.copy_from_slice(&s.modifier.0);
            let (address, modifier) = server.derive(start, s.collision_count, server.cfg.sec)?;
            let b = Binding {
                client: ClientKey {
                    duid: s.duid.0,
                    iaid: s.iaid,
                },
                modifier,
                prefix: server.cfg.ulid_prefix,
                collision_count: s.collision_count,
                sec: server.cfg.sec,
                address,
                locators: server.locators_of(address),
                state: BindingState::Bound,
                valid_until: 0,
                preferred_until: 0,
                declined: Vec::new(),
                fixed: true,
            };
            server.install(b);
        }
        Ok(server)
    }

    /// Handles one datagram from `client_addr` received at `now`; returns the answer to send
    /// back, or `None` when the message is discarded (see [`Counters`] for why).
    pub fn handle(
        &mut self,
        now: SystemTime,
        client_addr: Ipv6Addr,
        bytes: &[u8],
    ) -> Option<Vec<u8>> {
        self.counters.received += 1;
        let Some(&msg_type) = bytes.first() else {
            self.counters.malformed += 1;
            return None;
        };
        self.counters.count_type(msg_type);
        let parsed = check_message(bytes)
            .ok()
            .and_then(|()| Message::decode(&mut Decoder::new(bytes)).ok());
        let Some(msg) = parsed else {
            self.counters.malformed += 1;
            return None;
        };
        match self.dispatch(now, client_addr, &msg) {
            Ok(reply) => {
                let out = reply.to_vec().ok();
                match (out.is_some(), reply.msg_type()) {
                    (false, _) => self.counters.malformed += 1,
                    (true, MessageType::Advertise) => self.counters.advertise += 1,
                    (true, _) => self.counters.reply += 1,
                }
                out
            }
            Err(Silence::Discard) => {
                self.counters.discarded += 1;
                None
            }
            Err(Silence::RateLimited) => {
                self.counters.rate_limited += 1;
                None
            }
            Err(Silence::Store) => {
                self.counters.store_errors += 1;
                None
            }
        }
    }

    fn dispatch(&mut self, now: SystemTime, client_addr: Ipv6Addr, msg: &Message) -> Outcome {
        let client = duid_option(msg, OptionCode::ClientId);
        let server = msg
            .opts()
            .get(OptionCode::ServerId)
            .map(|_| duid_option(msg, OptionCode::ServerId));
        let ours = server == Some(Some(self.server_duid.as_slice()));
        // RFC 8415 §16.2–§16.12: which messages need or forbid which identifiers.
        let valid = match msg.msg_type() {
            MessageType::Solicit | MessageType::Confirm | MessageType::Rebind => {
                client.is_some() && server.is_none()
            }
            MessageType::Request
            | MessageType::Renew
            | MessageType::Release
            | MessageType::Decline => client.is_some() && ours,
            MessageType::InformationRequest => {
                (server.is_none() || ours) && ias(msg).next().is_none() && other_ias(msg).is_empty()
            }
            _ => false,
        };
        if !valid {
            return Err(Silence::Discard);
        }
        let limit_key = client.map_or_else(|| client_addr.octets().to_vec(), <[u8]>::to_vec);
        if !self.limiter.allow(&limit_key, unix_f64(now)) {
            return Err(Silence::RateLimited);
        }
        let now = unix(now);
        let client = client.map(<[u8]>::to_vec);
        match (msg.msg_type(), client) {
            (MessageType::Solicit, Some(c)) => self.solicit(now, msg, &c),
            (MessageType::Request, Some(c)) => self.request(now, msg, &c),
            (MessageType::Renew, Some(c)) => self.renew(now, msg, &c, false),
            (MessageType::Rebind, Some(c)) => self.renew(now, msg, &c, true),
            (MessageType::Release, Some(c)) => self.release(now, msg, &c),
            (MessageType::Decline, Some(c)) => self.decline(msg, &c),
            (MessageType::Confirm, Some(c)) => self.confirm(msg, &c),
            (MessageType::InformationRequest, c) => Ok(self.information(msg, c.as_deref())),
            _ => Err(Silence::Discard),
        }
    }

    fn times(&self) -> Times {
        Times {
            t1: self.cfg.t1(),
            t2: self.cfg.t2(),
            preferred: self.cfg.preferred_lifetime,
            valid: self.cfg.valid_lifetime,
        }
    }

    /// Grants every IA_NA of `msg`; IAs without an address get NoAddrsAvail, IA_TA and IA_PD get
    /// NoAddrsAvail / NoPrefixAvail (RFC 8415 §18.3.2, §18.3.9).
    fn grant_all(
        &mut self,
        now: u64,
        msg: &Message,
        duid: &[u8],
        commit: Commit,
        reply: &mut Message,
    ) -> Result<(), Silence> {
        let times = self.times();
        let prefix = self.cfg.ulid_prefix;
        for ia in ias(msg) {
            let key = ClientKey {
                duid: duid.to_vec(),
                iaid: ia.id,
            };
            // A Request naming an address off our link gets NotOnLink (RFC 8415 §18.3.2).
            if commit == Commit::Bind
                && msg.msg_type() == MessageType::Request
                && listed(ia).iter().any(|a| !prefix.contains(*a))
            {
                let o = ia_status(
                    IaKind::Na,
                    ia.id,
                    Status::NotOnLink,
                    "address not on this link",
                );
                reply.opts_mut().insert(o);
                continue;
            }
            match self.grant(now, &key, commit) {
                Ok(b) => reply
                    .opts_mut()
                    .insert(ia_na_with(ia.id, b.address, times, &[])),
                Err(Refusal::NoAddrs) => {
                    let o = self.refuse_no_addrs(ia.id);
                    reply.opts_mut().insert(o);
                }
                Err(Refusal::Store | Refusal::Superseded) => return Err(Silence::Store),
            }
        }
        for (kind, iaid) in other_ias(msg) {
            let (code, text) = match kind {
                IaKind::Pd => (Status::NoPrefixAvail, "no prefix delegation here"),
                _ => (Status::NoAddrsAvail, "only IA_NA is served"),
            };
            reply.opts_mut().insert(ia_status(kind, iaid, code, text));
        }
        Ok(())
    }

    /// Solicit → Advertise, or Reply with Rapid Commit (RFC 8415 §18.3.1, §18.3.9).
    fn solicit(&mut self, now: u64, msg: &Message, duid: &[u8]) -> Outcome {
        let rapid = self.cfg.rapid_commit && msg.opts().get(OptionCode::RapidCommit).is_some();
        let (ty, commit) = if rapid {
            (MessageType::Reply, Commit::Bind)
        } else {
            (MessageType::Advertise, Commit::Offer)
        };
        let mut reply = answer(ty, msg.xid(), &self.server_duid, Some(duid));
        self.grant_all(now, msg, duid, commit, &mut reply)?;
        if rapid {
            reply.opts_mut().insert(DhcpOption::RapidCommit);
        }
        if self.cfg.preference != 0 {
            reply
                .opts_mut()
                .insert(DhcpOption::Preference(self.cfg.preference));
        }
        add_config(&mut reply, msg, &self.cfg.dns_servers);
        Ok(reply)
    }

    /// Request → Reply with committed bindings (RFC 8415 §18.3.2).
    fn request(&mut self, now: u64, msg: &Message, duid: &[u8]) -> Outcome {
        let mut reply = answer(MessageType::Reply, msg.xid(), &self.server_duid, Some(duid));
        self.grant_all(now, msg, duid, Commit::Bind, &mut reply)?;
        add_config(&mut reply, msg, &self.cfg.dns_servers);
        Ok(reply)
    }

    /// Renew and Rebind → Reply extending the bindings (RFC 8415 §18.3.4, §18.3.5). Listed
    /// addresses that are not the client's CMULA go back with lifetimes 0. A Renew for an
    /// unknown IA creates the binding; a Rebind does only when rapid commit is on (§18.3.5
    /// SHOULD), otherwise it gets NoBinding.
    fn renew(&mut self, now: u64, msg: &Message, duid: &[u8], rebind: bool) -> Outcome {
        let mut reply = answer(MessageType::Reply, msg.xid(), &self.server_duid, Some(duid));
        let times = self.times();
        for ia in ias(msg) {
            let key = ClientKey {
                duid: duid.to_vec(),
                iaid: ia.id,
            };
            let known = self.bindings.contains_key(&key);
            if !known && rebind && !self.cfg.rapid_commit {
                let stale: Vec<_> = listed(ia)
                    .into_iter()
                    .filter(|a| !self.cfg.ulid_prefix.contains(*a))
                    .collect();
                let o = if stale.is_empty() {
                    ia_status(
                        IaKind::Na,
                        ia.id,
                        Status::NoBinding,
                        "no binding for this IA",
                    )
                } else {
                    ia_na_stale(ia.id, &stale)
                };
                reply.opts_mut().insert(o);
                continue;
            }
            match self.grant(now, &key, Commit::Bind) {
                Ok(b) => {
                    let stale: Vec<_> =
                        listed(ia).into_iter().filter(|a| *a != b.address).collect();
                    reply
                        .opts_mut()
                        .insert(ia_na_with(ia.id, b.address, times, &stale));
                }
                Err(Refusal::NoAddrs) => {
                    let o = self.refuse_no_addrs(ia.id);
                    reply.opts_mut().insert(o);
                }
                Err(Refusal::Store | Refusal::Superseded) => return Err(Silence::Store),
            }
        }
        for (kind, iaid) in other_ias(msg) {
            reply.opts_mut().insert(ia_status(
                kind,
                iaid,
                Status::NoBinding,
                "no binding for this IA",
            ));
        }
        add_config(&mut reply, msg, &self.cfg.dns_servers);
        Ok(reply)
    }

    /// Release → the bindings are deleted; Reply Success, NoBinding for unknown IAs
    /// (RFC 8415 §18.3.7). A configured binding keeps its address and only loses its lease.
    fn release(&mut self, now: u64, msg: &Message, duid: &[u8]) -> Outcome {
        let mut reply = answer(MessageType::Reply, msg.xid(), &self.server_duid, Some(duid));
        reply.opts_mut().insert(status(Status::Success, "released"));
        for ia in ias(msg) {
            let key = ClientKey {
                duid: duid.to_vec(),
                iaid: ia.id,
            };
            match self.bindings.get_mut(&key) {
                Some(b) if b.fixed => b.valid_until = now,
                Some(_) => {
                    self.store.remove(&key).map_err(|_| Silence::Store)?;
                    self.forget(&key);
                    self.counters.released += 1;
                }
                None => reply.opts_mut().insert(ia_status(
                    IaKind::Na,
                    ia.id,
                    Status::NoBinding,
                    "no binding for this IA",
                )),
            }
        }
        for (kind, iaid) in other_ias(msg) {
            reply.opts_mut().insert(ia_status(
                kind,
                iaid,
                Status::NoBinding,
                "no binding for this IA",
            ));
        }
        Ok(reply)
    }

    /// Decline → the address is marked declined: never handed out again, and the client's
    /// next grant makes a new CMULA (RFC 8415 §18.3.8).
    fn decline(&mut self, msg: &Message, duid: &[u8]) -> Outcome {
        let mut reply = answer(MessageType::Reply, msg.xid(), &self.server_duid, Some(duid));
        reply.opts_mut().insert(status(Status::Success, "declined"));
        for ia in ias(msg) {
            let key = ClientKey {
                duid: duid.to_vec(),
                iaid: ia.id,
            };
            let Some(b) = self.bindings.get(&key) else {
                reply.opts_mut().insert(ia_status(
                    IaKind::Na,
                    ia.id,
                    Status::NoBinding,
                    "no binding for this IA",
                ));
                continue;
            };
            // Addresses the client does not hold from us are ignored (§18.3.8).
            if b.fixed || b.state == BindingState::Declined || !listed(ia).contains(&b.address) {
                continue;
            }
            let mut b = b.clone();
            b.state = BindingState::Declined;
            if b.declined.len() >= crate::binding::MAX_DECLINED {
                b.declined.remove(0);
            }
            b.declined.push(b.address);
            match self.store_binding(&b) {
                Ok(()) => {}
                // Another proxy changed the binding meanwhile: it is installed; the client's
                // next message is answered from it.
                Err(Refusal::Superseded) => continue,
                Err(_) => return Err(Silence::Store),
            }
            self.install(b);
            self.counters.declined += 1;
        }
        Ok(reply)
    }

    /// Confirm → Success when every listed address is on the ULID /64, NotOnLink otherwise,
    /// nothing when no address is listed (RFC 8415 §18.3.3).
    fn confirm(&mut self, msg: &Message, duid: &[u8]) -> Outcome {
        let addrs: Vec<Ipv6Addr> = ias(msg).flat_map(listed).collect();
        if addrs.is_empty() {
            return Err(Silence::Discard);
        }
        let on_link = addrs.iter().all(|a| self.cfg.ulid_prefix.contains(*a));
        let mut reply = answer(MessageType::Reply, msg.xid(), &self.server_duid, Some(duid));
        reply.opts_mut().insert(if on_link {
            status(Status::Success, "all addresses on link")
        } else {
            status(Status::NotOnLink, "address not on this link")
        });
        Ok(reply)
    }

    /// Information-request → Reply with configuration only (RFC 8415 §18.3.6).
    fn information(&mut self, msg: &Message, duid: Option<&[u8]>) -> Message {
        let mut reply = answer(MessageType::Reply, msg.xid(), &self.server_duid, duid);
        add_config(&mut reply, msg, &self.cfg.dns_servers);
        reply
    }

    /// Applies a binding another proxy of the site wrote to the shared store (its watch):
    /// the maps take it as is, nothing is written back. A configured binding of the same
    /// client wins (configuration is per proxy, identical on all of them).
    pub fn apply_stored(&mut self, b: Binding) {
        if self.bindings.get(&b.client).is_some_and(|c| c.fixed) {
            return;
        }
        self.counters.remote_updates += 1;
        self.install(Binding { fixed: false, ..b });
    }

    /// Applies a deletion another proxy wrote to the shared store (a release or an eviction).
    pub fn apply_removed(&mut self, client: &ClientKey) {
        if self.bindings.get(client).is_some_and(|c| !c.fixed) {
            self.counters.remote_updates += 1;
            self.forget(client);
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The Server Identifier DUID.
    pub fn server_duid(&self) -> &[u8] {
        &self.server_duid
    }

    /// The binding of `client`, if any.
    pub fn binding(&self, client: &ClientKey) -> Option<&Binding> {
        self.bindings.get(client)
    }

    /// Every binding (dynamic and configured), in no particular order.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }

    /// The binding holding `addr` (as its CMULA or a declined address).
    pub fn holder_of(&self, addr: Ipv6Addr) -> Option<&Binding> {
        self.by_addr.get(&addr).and_then(|k| self.bindings.get(k))
    }

    /// The configuration in force.
    pub fn config(&self) -> &DhcpConfig {
        &self.cfg
    }

    /// The binding store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The binding store, mutably (tests inject failures through it).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
}
