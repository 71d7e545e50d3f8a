//! The slow path's side of the [`LocalServices`]: UDP in from the punts, UDP out to the
//! inside link or through a provider, and the services' outputs applied (see
//! [`services`](super::services) for the rules).

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use wire::{Locator, Ulid};

use super::frame::{self, Ipv6Frame, UdpError, DEFAULT_HOP_LIMIT};
use super::icmp;
use super::services::{is_inside_destination, DatagramIn, DatagramOut, ServiceOutput};
use super::SlowPath;
use crate::io::PortId;

/// Datagrams sent through a provider with nothing coming back after which the next provider
/// is preferred for upstream traffic (a DNS question and its retries are a few datagrams).
const UPSTREAM_SUSPECT: u32 = 4;

/// Senders whose MAC is remembered for the answers (bounded; forgotten all at once when full).
const SENDER_MACS: usize = 4096;

impl SlowPath {
    /// A UDP datagram for us (`udp`: the bytes after the IPv6 headers of `v`, received on
    /// `port`): to the services when they run and the destination is ours.
    pub(super) fn udp_in(&mut self, now: Instant, port: PortId, v: &Ipv6Frame<'_>, udp: &[u8]) {
        let inside = port == self.dp.inside.port;
        if !(self.nd.owns(port, v.dst()) || (inside && v.dst().is_multicast())) {
            self.stats.unhandled += 1;
            return;
        }
        let (sport, dport, payload) = match frame::parse_udp(v.src(), v.dst(), udp) {
            Ok(d) => d,
            Err(UdpError::Malformed) => {
                self.stats.malformed += 1;
                return;
            }
            Err(UdpError::Checksum) => {
                self.stats.udp_bad_checksum += 1;
                return;
            }
        };
        let d = DatagramIn {
            src: SocketAddrV6::new(v.src(), sport, 0, 0),
            dst: SocketAddrV6::new(v.dst(), dport, 0, 0),
            inside,
            payload,
        };
        let taken = match self.services.as_mut() {
            Some(s) => s.handle_datagram(now, &d),
            None => false,
        };
        if !taken {
            self.stats.udp_unhandled += 1;
            if !v.dst().is_multicast() {
                // Multicast (mDNS, SSDP, ...) is never answered with an error (RFC 4443 §2.4 (e)).
                self.port_unreachable(now, port, v);
            }
            return;
        }
        self.stats.udp_in += 1;
        if let Some(i) = self.dp.providers.iter().position(|p| p.port == port) {
            // Something came back through this provider: it carries our upstream traffic.
            if let Some(n) = self.upstream_unanswered.get_mut(i) {
                *n = 0;
            }
        }
        if inside && v.l3 == crate::fastpath::packet::ETH_LEN {
            if self.sender_macs.len() >= SENDER_MACS {
                self.sender_macs.clear();
            }
            self.sender_macs.insert(v.src(), v.eth_src);
        }
    }

    /// Port unreachable about `v` (to one of our unicast addresses), rate-limited with the
    /// other ICMPv6 errors; never about multicast or errors (RFC 4443 §2.4 (e)).
    fn port_unreachable(&mut self, now: Instant, port: PortId, v: &Ipv6Frame<'_>) {
        let invoking = v.packet();
        if !icmp::may_report(invoking, false) || !self.icmp_limit.take(now) {
            self.stats.icmp_suppressed += 1;
            return;
        }
        match icmp::port_unreachable(v.dst(), invoking) {
            Some(ip) => {
                self.stats.port_unreachable_sent += 1;
                self.reply(now, port, v, ip);
            }
            None => self.stats.malformed += 1,
        }
    }

    /// Runs the services' timers and drains what they send and learnt; whether there was
    /// anything.
    pub(super) fn poll_services(&mut self, now: Instant) -> bool {
        let Some(mut s) = self.services.take() else {
            return false;
        };
        let mut any = false;
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
            any = true;
        }
        loop {
            let mut progressed = false;
            while let Some(d) = s.poll_datagram() {
                progressed = true;
                self.send_datagram(now, d);
            }
            while let Some(o) = s.poll_output() {
                progressed = true;
                self.apply_service_output(now, &mut *s, o);
            }
            if !progressed {
                break;
            }
            any = true;
        }
        self.services = Some(s);
        any
    }

    fn apply_service_output(
        &mut self,
        now: Instant,
        s: &mut dyn super::LocalServices,
        o: ServiceOutput,
    ) {
        match o {
            ServiceOutput::PeerLocators {
                peer,
                locators,
                ttl,
            } => {
                self.stats.services_peers += 1;
                self.peer_resolved(now, peer, locators, ttl);
            }
            ServiceOutput::PeerUnresolved { peer } => {
                self.peer_resolved(now, peer, Vec::new(), Duration::ZERO)
            }
            ServiceOutput::HostReleased { ulid } => {
                self.stats.services_hosts_released += 1;
                self.remove_local_host(ulid);
            }
            ServiceOutput::HostBound { ulid, params } => match self.add_local_host(ulid, params) {
                Ok(()) => self.stats.services_hosts += 1,
                Err(e) => {
                    self.stats.services_hosts_refused += 1;
                    s.on_host_refused(ulid, &e.to_string());
                }
            },
        }
    }

    /// A peer's locators are known for `ttl` (or, empty, unknowable): cache them and start
    /// the handshake for every pair waiting for that peer, or drop their packets.
    pub(super) fn peer_resolved(
        &mut self,
        now: Instant,
        peer: Ulid,
        locators: Vec<Locator>,
        ttl: Duration,
    ) {
        self.peers.learn(now, peer, locators.clone(), ttl);
        for pair in self.pending.pairs_for_peer(peer) {
            if self.engine.find(pair.0, pair.1).is_some() {
                continue;
            }
            if locators.is_empty() || !self.connect(now, pair, &locators) {
                self.pending.fail(pair);
            }
        }
    }

    /// Sends a service's datagram (routing rules in the [`services`](super::services) docs).
    fn send_datagram(&mut self, now: Instant, d: DatagramOut) {
        let dst = *d.dst.ip();
        if is_inside_destination(dst, self.dp.ulid_prefix) {
            let src_ip = if dst.is_multicast() || dst.is_unicast_link_local() {
                self.dp.inside.link_local
            } else if d.src.ip().is_unspecified() {
                self.dp.inside.global
            } else {
                *d.src.ip()
            };
            let src = SocketAddrV6::new(src_ip, d.src.port(), 0, 0);
            let Some(ip) = frame::udp(src, d.dst, DEFAULT_HOP_LIMIT, &d.payload) else {
                self.stats.udp_no_route += 1;
                return;
            };
            self.stats.udp_out += 1;
            let port = self.dp.inside.port;
            let mac = if dst.is_multicast() {
                Some(frame::multicast_mac(dst))
            } else {
                self.sender_macs
                    .get(&dst)
                    .copied()
                    .or_else(|| self.neighbors.lookup(port, dst))
            };
            match mac {
                Some(mac) => {
                    let src_mac = self.dp.inside.mac;
                    self.out.push((port, frame::ethernet(mac, src_mac, &ip)));
                }
                None => self.send_ip(now, port, dst, ip),
            }
            return;
        }
        let Some((idx, addr)) = self.upstream_provider() else {
            self.stats.udp_no_route += 1;
            return;
        };
        let src = SocketAddrV6::new(addr, d.src.port(), 0, 0);
        let Some(ip) = frame::udp(src, d.dst, DEFAULT_HOP_LIMIT, &d.payload) else {
            self.stats.udp_no_route += 1;
            return;
        };
        self.stats.udp_out += 1;
        if let Some(n) = self.upstream_unanswered.get_mut(idx) {
            *n = n.saturating_add(1);
        }
        self.send_via_provider(now, idx, ip);
    }

    /// The provider for a datagram leaving the site: among those that are up and have an
    /// address of its own, the first that has not sent [`UPSTREAM_SUSPECT`] datagrams without
    /// anything coming back through it, else the one with the fewest such. A provider cut
    /// beyond its link (which only REAP would notice) is thus left after a few unanswered
    /// upstream queries: the services' retries go out through the next one.
    fn upstream_provider(&self) -> Option<(usize, Ipv6Addr)> {
        let candidates = self
            .dp
            .providers
            .iter()
            .enumerate()
            .filter(|(i, _)| self.provider_up.get(*i).copied().unwrap_or(false))
            .filter_map(|(i, p)| p.address.map(|a| (i, a)));
        let unanswered = |i: usize| self.upstream_unanswered.get(i).copied().unwrap_or(0);
        candidates
            .clone()
            .find(|(i, _)| unanswered(*i) < UPSTREAM_SUSPECT)
            .or_else(|| candidates.min_by_key(|(i, _)| unanswered(*i)))
    }
}
