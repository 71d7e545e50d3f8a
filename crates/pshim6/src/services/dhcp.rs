//! The DHCPv6 server (`dhcp::DhcpServer` on its lease journal) as a local service on the
//! inside link: Solicit / Request / Renew ... from the hosts' link-local addresses to
//! ff02::1:2 port 547, answers to their port 546. Every binding bound (new, renewed, or
//! loaded from the journal at start) becomes an engine host: its CMULA is a CGA of the site
//! key, and the slow path checks it ([`ServiceOutput::HostBound`]). A binding released (or
//! given up after a Decline) stops being one ([`ServiceOutput::HostReleased`]), and so does a
//! lease whose valid lifetime runs out without a Renew (issue #10: the engine's hosts stay
//! bounded by the live leases; RFC 8415 §18.3.4: the address is no longer the client's).
//!
//! With the bindings on etcd ([`SiteStore::Etcd`]), bindings other proxies of the site write
//! arrive through the store's watch: [`DhcpService::handle_timeout`] applies them to the
//! server every [`SHARED_POLL`] and announces them to the engine like local ones.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use dataplane::slowpath::{DatagramIn, DatagramOut, ServiceOutput};
use dhcp::{BindingState, ClientKey, DhcpConfig, DhcpServer, ServerIdentity};
use etcd_store::Change;
use wire::Ulid;

use super::dhcp_store::SiteStore;
use super::{debug_counters, Timeline, DHCP_SERVER_PORT};
use run_config::StoreSettings;

/// How often the bindings other proxies wrote are picked up (a channel poll: no I/O).
pub(crate) const SHARED_POLL: Duration = Duration::from_millis(10);

/// Option code of the Client Identifier ([RFC 8415 §21.2](https://www.rfc-editor.org/rfc/rfc8415#section-21.2)).
const OPTION_CLIENTID: u16 = 1;
/// Option code of the Identity Association for Non-temporary Addresses (§21.4).
const OPTION_IA_NA: u16 = 3;

/// The server and the bindings already announced to the slow path.
pub(crate) struct DhcpService {
    server: DhcpServer<SiteStore>,
    /// When the shared store is next polled (`None`: the journal, nobody else writes).
    next_poll: Option<Instant>,
    key_der: Vec<u8>,
    /// Per binding: the address and valid lifetime last announced.
    announced: HashMap<ClientKey, (Ipv6Addr, u64)>,
    out: VecDeque<DatagramOut>,
    outputs: VecDeque<ServiceOutput>,
    timeline: Timeline,
    /// The slow path's clock at start and the Unix time then: lease times (Unix seconds) as
    /// the `Instant`s the slow path polls with.
    epoch: (Instant, u64),
    /// Earliest valid-until (Unix seconds) of an announced lease; may be early (a renewal
    /// moved it), never late.
    next_expiry: Option<u64>,
}

impl DhcpService {
    /// Opens the journal of `cfg` and starts the server; every binding it holds bound is
    /// announced as a host.
    #[cfg(test)]
    pub(crate) fn new(
        cfg: DhcpConfig,
        key_der: &[u8],
        mac: [u8; 6],
        seed: u64,
        timeline: Timeline,
    ) -> Result<Self> {
        let settings = StoreSettings::Journal(cfg.journal.clone());
        Self::with_store(cfg, &settings, key_der, mac, seed, timeline)
    }

    /// Opens the store of `settings` (for etcd: waits for the first synchronisation) and
    /// starts the server on it; every binding it holds bound is announced as a host.
    pub(crate) fn with_store(
        cfg: DhcpConfig,
        settings: &StoreSettings,
        key_der: &[u8],
        mac: [u8; 6],
        seed: u64,
        timeline: Timeline,
    ) -> Result<Self> {
        let store = SiteStore::open(settings, &timeline)?;
        let next_poll = store.shared().then(Instant::now);
        let server = DhcpServer::new(
            cfg,
            key_der,
            store,
            ServerIdentity::LinkLayerTime(mac),
            seed,
            SystemTime::now(),
        )
        .context("starting the DHCPv6 server")?;
        let mut s = Self {
            server,
            next_poll,
            key_der: key_der.to_vec(),
            announced: HashMap::new(),
            out: VecDeque::new(),
            outputs: VecDeque::new(),
            timeline,
            epoch: (Instant::now(), unix_now()),
            next_expiry: None,
        };
        let how = if s.next_poll.is_some() {
            "from the shared store"
        } else {
            "from the journal"
        };
        s.announce(None, how);
        Ok(s)
    }

    /// When [`Self::handle_timeout`] wants to run: the next poll of the shared store or the
    /// next lease to run out, whichever comes first.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_poll, self.expiry_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs what is due at `now`: bindings from other proxies, then expired leases.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.poll_shared(now);
        self.expire_leases(now);
    }

    /// Applies the bindings other proxies wrote to the shared store and announces them.
    fn poll_shared(&mut self, now: Instant) {
        if self.next_poll.is_none_or(|t| t > now) {
            return;
        }
        self.next_poll = Some(now + SHARED_POLL);
        let changes = self.server.store_mut().poll_changes();
        if changes.is_empty() {
            return;
        }
        let mut keys = Vec::with_capacity(changes.len());
        for c in changes {
            match c {
                Change::Bound(b) => {
                    keys.push(b.client.clone());
                    self.server.apply_stored(b);
                }
                Change::Removed(k) => {
                    self.server.apply_removed(&k);
                    keys.push(k);
                }
            }
        }
        self.announce(Some(&keys), "from another proxy");
    }

    /// A datagram to port 547 from the inside link.
    pub(crate) fn handle(&mut self, d: &DatagramIn<'_>) {
        let Some(reply) = self
            .server
            .handle(SystemTime::now(), *d.src.ip(), d.payload)
        else {
            return;
        };
        // RFC 8415 §18.3.10: back to the client's address and port, from our link-local.
        self.out.push_back(DatagramOut {
            src: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, DHCP_SERVER_PORT, 0, 0),
            dst: d.src,
            payload: reply,
        });
        if let Some((duid, iaids)) = client_ias(d.payload) {
            let keys: Vec<ClientKey> = iaids
                .into_iter()
                .map(|iaid| ClientKey {
                    duid: duid.to_vec(),
                    iaid,
                })
                .collect();
            self.announce(Some(&keys), "bound");
        }
    }

    /// Announces the bound bindings (those of `keys`, or all) that are new or changed. Per
    /// message only the client's own IAs are looked at, so the cost does not grow with the
    /// number of bindings.
    fn announce(&mut self, keys: Option<&[ClientKey]>, how: &str) {
        let now = unix_now();
        if let Some(keys) = keys {
            // Released, or moved to another address (after a Decline): the old ULID goes.
            for k in keys {
                let current = self
                    .server
                    .binding(k)
                    .filter(|b| b.state == BindingState::Bound)
                    .map(|b| b.address);
                let Some(&(old, _)) = self.announced.get(k) else {
                    continue;
                };
                if current != Some(old) {
                    self.announced.remove(k);
                    (self.timeline)(&format!(
                        "host released: DUID {} IAID {} gave back CMULA {old}",
                        hex::encode(&k.duid),
                        k.iaid
                    ));
                    self.outputs
                        .push_back(ServiceOutput::HostReleased { ulid: Ulid(old) });
                }
            }
        }
        let mut fresh = Vec::new();
        let bindings: Vec<&dhcp::Binding> = match keys {
            Some(keys) => keys.iter().filter_map(|k| self.server.binding(k)).collect(),
            None => self.server.bindings().collect(),
        };
        for b in bindings {
            if b.state != BindingState::Bound || (!b.fixed && b.expired(now)) {
                continue;
            }
            let seen = (b.address, b.valid_until);
            if self.announced.get(&b.client) != Some(&seen) {
                fresh.push((b.client.clone(), seen, b.cga_parameters(&self.key_der)));
            }
        }
        for (client, (address, valid_until), params) in fresh {
            (self.timeline)(&format!(
                "host {how}: DUID {} IAID {} -> CMULA {address}{}",
                hex::encode(&client.duid),
                client.iaid,
                if valid_until == 0 {
                    " (static)".to_string()
                } else {
                    format!(" (valid {}s)", valid_until.saturating_sub(now))
                }
            ));
            self.announced.insert(client, (address, valid_until));
            if valid_until != 0 {
                self.next_expiry =
                    Some(self.next_expiry.map_or(valid_until, |t| t.min(valid_until)));
            }
            self.outputs.push_back(ServiceOutput::HostBound {
                ulid: Ulid(address),
                params,
            });
        }
    }

    /// When the next announced lease runs out.
    fn expiry_at(&self) -> Option<Instant> {
        let (at, unix) = self.epoch;
        self.next_expiry
            .map(|t| at + Duration::from_secs(t.saturating_sub(unix)))
    }

    /// Withdraws the hosts whose lease ran out at `now` (not renewed, not static).
    fn expire_leases(&mut self, now: Instant) {
        let (at, unix) = self.epoch;
        let now = unix + now.saturating_duration_since(at).as_secs();
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let server = &self.server;
        let gone: Vec<(ClientKey, Ipv6Addr)> = self
            .announced
            .iter()
            .filter(|(k, (_, until))| {
                *until != 0
                    && *until <= now
                    && !server.binding(k).is_some_and(|b| {
                        b.fixed || (b.state == BindingState::Bound && b.valid_until > now)
                    })
            })
            .map(|(k, (addr, _))| (k.clone(), *addr))
            .collect();
        for (k, addr) in gone {
            self.announced.remove(&k);
            (self.timeline)(&format!(
                "host expired: DUID {} IAID {} lease of CMULA {addr} ran out",
                hex::encode(&k.duid),
                k.iaid
            ));
            self.outputs
                .push_back(ServiceOutput::HostReleased { ulid: Ulid(addr) });
        }
        self.next_expiry = self
            .announced
            .values()
            .map(|(_, until)| *until)
            .filter(|t| *t != 0 && *t > now)
            .min();
    }

    /// The next answer to send.
    pub(crate) fn poll_datagram(&mut self) -> Option<DatagramOut> {
        self.out.pop_front()
    }

    /// The next host binding for the slow path.
    pub(crate) fn poll_output(&mut self) -> Option<ServiceOutput> {
        self.outputs.pop_front()
    }

    /// The server's counters.
    /// Every binding, for `GET /v1/hosts`.
    pub(crate) fn bindings(&self) -> Vec<dataplane::slowpath::HostBinding> {
        self.server
            .bindings()
            .map(|b| dataplane::slowpath::HostBinding {
                duid: b.client.duid.clone(),
                ulid: wire::Ulid(b.address),
                locators: b.locators.clone(),
                state: match b.state {
                    dhcp::BindingState::Offered => "offered",
                    dhcp::BindingState::Bound => "bound",
                    dhcp::BindingState::Declined => "declined",
                },
                valid_until: b.valid_until,
            })
            .collect()
    }

    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        let mut v = debug_counters("dhcp", self.server.counters());
        v.extend(self.server.store().counters());
        v
    }
}

/// Seconds since the Unix epoch (the lease times' clock).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The Client Identifier and the IAIDs of the IA_NA options of a client message:
/// `msg-type(1) transaction-id(3)` then options `code(2) len(2) data`
/// ([RFC 8415 §8, §21.1](https://www.rfc-editor.org/rfc/rfc8415#section-21.1)); an IA_NA's
/// data starts with its IAID (§21.4).
fn client_ias(msg: &[u8]) -> Option<(&[u8], Vec<u32>)> {
    let mut rest = msg.get(4..)?;
    let mut duid = None;
    let mut iaids = Vec::new();
    while rest.len() >= 4 {
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let data = rest.get(4..4 + len)?;
        match (code, data) {
            (OPTION_CLIENTID, d) => duid = duid.or(Some(d)),
            (OPTION_IA_NA, [a, b, c, d, ..]) => iaids.push(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => {}
        }
        rest = rest.get(4 + len..)?;
    }
    duid.map(|d| (d, iaids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_duid_and_iaids_are_found_among_options() {
        // Solicit, xid 010203, Elapsed Time (8), Client ID (1), IA_NA (3) IAID 7, IA_NA IAID 9.
        let mut msg = vec![1, 1, 2, 3, 0, 8, 0, 2, 0, 0, 0, 1, 0, 4, 0, 3, 0, 1];
        for iaid in [7u8, 9] {
            msg.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, iaid, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(client_ias(&msg), Some((&[0, 3, 0, 1][..], vec![7, 9])));
        assert_eq!(client_ias(&msg[..17]), None, "truncated option");
        assert_eq!(client_ias(&msg[..18]), Some((&[0, 3, 0, 1][..], vec![])));
        assert_eq!(client_ias(&[1, 1, 2, 3]), None, "no Client ID");
    }
}
