//! The DNS ALG (`dns_alg::DnsAlg`, sans-IO) as a local service: queries from the inside hosts
//! to `inside.global`:53, upstream queries from one source port through a provider (the slow
//! path sources them from the provider's own address), and what the ALG learns
//! (`AlgEvent::PeerLocators`) handed to the slow path, which starts the handshake at once.
//!
//! UDP only: a TCP transmit of the ALG (a client over TCP, or the upstream fallback after a
//! truncated answer) is dropped and counted; the ALG then retries or answers SERVFAIL.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV6};
use std::time::Instant;

use dataplane::slowpath::{DatagramIn, DatagramOut, Resolution, ServiceOutput};
use dns_alg::{AlgConfig, AlgEvent, Destination, DnsAlg, ResolveStatus, Transport};
use wire::{Locator, Ulid};

use super::{debug_counters, Timeline, DNS_PORT};

/// The ALG with its addresses.
pub(crate) struct DnsService {
    alg: DnsAlg,
    /// Where clients send their queries (the inside global address, port 53).
    listen: SocketAddrV6,
    /// Source port of the upstream queries.
    upstream_port: u16,
    /// TCP transmits dropped (no TCP on the slow path).
    tcp_dropped: u64,
    /// The locators last shown on the timeline per peer (a host asking again for the same
    /// name makes no new line); bounded, forgotten all at once when full.
    shown: HashMap<Ulid, Vec<Locator>>,
    timeline: Timeline,
}

/// Peers whose last timeline line is remembered.
const SHOWN_PEERS: usize = 4096;

impl DnsService {
    /// An ALG answering on `listen` (port 53 of the inside global address), querying upstream
    /// from `upstream_port`.
    pub(crate) fn new(
        config: AlgConfig,
        listen: std::net::Ipv6Addr,
        upstream_port: u16,
        seed: u64,
        timeline: Timeline,
    ) -> Result<Self, dns_alg::DnsAlgError> {
        Ok(Self {
            alg: DnsAlg::new(config, seed)?,
            listen: SocketAddrV6::new(listen, DNS_PORT, 0, 0),
            upstream_port,
            tcp_dropped: 0,
            shown: HashMap::new(),
            timeline,
        })
    }

    /// The upstream source port (answers come back to it).
    pub(crate) fn upstream_port(&self) -> u16 {
        self.upstream_port
    }

    /// A query from an inside host.
    pub(crate) fn handle_query(&mut self, now: Instant, d: &DatagramIn<'_>) {
        self.alg
            .handle_query(now, SocketAddr::V6(d.src), d.payload, Transport::Udp);
    }

    /// An answer from an upstream server.
    pub(crate) fn handle_upstream(&mut self, now: Instant, d: &DatagramIn<'_>) {
        self.alg
            .handle_upstream(now, SocketAddr::V6(d.src), d.payload);
    }

    /// The next datagram the ALG sends.
    pub(crate) fn poll_datagram(&mut self) -> Option<DatagramOut> {
        loop {
            let t = self.alg.poll_transmit()?;
            if t.transport == Transport::Tcp {
                self.tcp_dropped += 1;
                continue;
            }
            let (src, dst) = match t.destination {
                Destination::Client(SocketAddr::V6(c)) => (self.listen, c),
                Destination::Upstream(SocketAddr::V6(s)) => (
                    SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, self.upstream_port, 0, 0),
                    s,
                ),
                // IPv4 upstreams are refused by the configuration; clients are IPv6.
                _ => continue,
            };
            return Some(DatagramOut {
                src,
                dst,
                payload: t.payload,
            });
        }
    }

    /// The next output for the slow path (peer locators learnt, reverse lookups failed).
    pub(crate) fn poll_output(&mut self) -> Option<ServiceOutput> {
        match self.alg.poll_event()? {
            AlgEvent::PeerLocators {
                ulid,
                locators,
                ttl,
            } => {
                if self.shown.get(&ulid) != Some(&locators) {
                    if self.shown.len() >= SHOWN_PEERS {
                        self.shown.clear();
                    }
                    self.shown.insert(ulid, locators.clone());
                    self.show_peer(ulid, &locators, ttl);
                }
                Some(ServiceOutput::PeerLocators {
                    peer: ulid,
                    locators,
                    ttl,
                })
            }
            AlgEvent::ResolveFailed { ulid } => {
                (self.timeline)(&format!("peer {ulid}: reverse DNS found no locators"));
                Some(ServiceOutput::PeerUnresolved { peer: ulid })
            }
        }
    }

    fn show_peer(&self, ulid: Ulid, locators: &[Locator], ttl: std::time::Duration) {
        (self.timeline)(&format!(
            "peer {ulid} learnt from DNS: locators {} (ttl {}s)",
            locators
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            ttl.as_secs()
        ));
    }

    /// When the ALG's timers are due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.alg.poll_timeout()
    }

    /// Fires the ALG's timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.alg.handle_timeout(now);
    }

    /// Reverse DNS of a peer ULID (PTR, then AAAA + ULID record): the answer comes as an
    /// output.
    pub(crate) fn lookup(&mut self, now: Instant, peer: Ulid) -> Resolution {
        match self.alg.resolve_ulid(now, peer) {
            ResolveStatus::Cached | ResolveStatus::Started | ResolveStatus::InProgress => {
                Resolution::Pending
            }
            ResolveStatus::Busy => Resolution::NotFound,
        }
    }

    /// Replaces the upstream servers (SIGHUP, `PUT /v1/dns/upstreams`); IPv6 only, as the
    /// configuration requires.
    pub(crate) fn set_upstreams(
        &mut self,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Result<(), String> {
        if let Some(v4) = upstreams.iter().find(|u| u.is_ipv4()) {
            return Err(format!("{v4}: the appliance speaks IPv6 only"));
        }
        self.alg.set_upstreams(upstreams).map_err(|e| e.to_string())
    }

    /// The peer locator cache, for `GET /v1/dns/cache`.
    pub(crate) fn cache(&self, now: Instant) -> Vec<dataplane::slowpath::PeerCacheEntry> {
        self.alg
            .cache_entries(now)
            .into_iter()
            .map(|e| dataplane::slowpath::PeerCacheEntry {
                ulid: e.ulid,
                locators: e.locators,
                remaining: e.remaining,
            })
            .collect()
    }

    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        let mut v = debug_counters("dns", self.alg.stats());
        v.push(("dns.tcp_dropped".into(), self.tcp_dropped));
        v
    }
}
