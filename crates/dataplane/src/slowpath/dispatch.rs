//! Punted frames, handled by the reason the fast path gave.

use std::net::Ipv6Addr;
use std::time::Instant;

use wire::{ContextTag, Ulid};

use super::frame::{self, Ipv6Frame};
use super::icmp;
use super::nd::Held;
use super::resolver::Resolution;
use super::SlowPath;
use crate::config::Exit;
use crate::fastpath::packet::proto;
use crate::io::PortId;
use crate::punt::PuntReason;

/// ICMPv6 Parameter Problem ([RFC 4443 §3.4](https://www.rfc-editor.org/rfc/rfc4443#section-3.4)).
const PARAM_PROBLEM: u8 = 4;
/// ICMPv6 Echo Request ([RFC 4443 §4.1](https://www.rfc-editor.org/rfc/rfc4443#section-4.1)).
const ECHO_REQUEST: u8 = 128;

impl SlowPath {
    /// Handles one punted frame received on `port`.
    pub(super) fn on_punt(&mut self, now: Instant, reason: PuntReason, port: PortId, frame: &[u8]) {
        if let Some(c) = self.stats.punts.get_mut(reason.index()) {
            *c += 1;
        }
        let Some(v) =
            Ipv6Frame::parse(frame).and_then(|v| v.inner_if_tunnel(self.tunnel_local(port)))
        else {
            self.stats.malformed += 1;
            return;
        };
        match reason {
            PuntReason::NoContext => self.no_context(now, port, &v, frame),
            PuntReason::UnknownTag(tag) => {
                self.stats.unknown_tag += 1;
                self.engine.handle_unknown_tag(now, v.src(), v.dst(), tag);
            }
            PuntReason::Control => self.control(now, &v),
            PuntReason::Neighbor => {
                self.nd.handle(
                    now,
                    port,
                    &v,
                    &mut self.neighbors,
                    &mut self.out,
                    &mut self.released,
                );
            }
            PuntReason::ForUs => self.for_us(now, port, &v),
            PuntReason::NoNextHop => self.hold_for_next_hop(now, port, frame.to_vec()),
            PuntReason::TooBig { mtu } => self.icmp_error(now, port, &v, Some(mtu)),
            PuntReason::HopLimit => self.icmp_error(now, port, &v, None),
            PuntReason::LocatorMismatch => self.mismatch(now, &v),
            PuntReason::IcmpError => self.icmp_in(now, &v),
        }
    }

    /// Our end of `port`'s provider tunnel, if it has one.
    fn tunnel_local(&self, port: PortId) -> Option<Ipv6Addr> {
        self.dp
            .providers
            .iter()
            .find(|p| p.port == port)
            .and_then(|p| match p.exit {
                Exit::Tunnel { local, .. } => Some(local),
                Exit::Direct { .. } => None,
            })
    }

    /// The decision tree for a packet from an inside host to a peer ULID without a usable
    /// context: context exists → wait for it (or send, if the table got it meanwhile); cached
    /// locators → handshake; resolver → handshake; else drop. The packet waits in the pending
    /// queue for the handshake ([RFC 5533 §7.3](https://www.rfc-editor.org/rfc/rfc5533#section-7.3)).
    fn no_context(&mut self, now: Instant, port: PortId, v: &Ipv6Frame<'_>, frame: &[u8]) {
        if port != self.dp.inside.port {
            self.stats.malformed += 1;
            return;
        }
        let pair = (Ulid(v.src()), Ulid(v.dst()));
        if let Some(tag) = self.engine.find(pair.0, pair.1) {
            self.stats.context_races += 1;
            if self
                .table
                .get(tag)
                .is_some_and(|e| e.flags & table::flags::ESTABLISHED != 0)
            {
                // The worker looked before the entry was written.
                self.reprocess(now, port, vec![frame.to_vec()]);
            } else {
                let _ = self.pending.push(now, pair, frame);
            }
            return;
        }
        if self.pending.contains(pair) {
            // A handshake or a lookup for the pair is under way.
            let _ = self.pending.push(now, pair, frame);
            return;
        }
        let locators = match self.peers.get(now, pair.1) {
            Some(l) => l.to_vec(),
            None => match self.lookup_peer(now, pair.1) {
                Resolution::Found(l) => {
                    self.peers.insert(pair.1, l.clone());
                    l
                }
                Resolution::Pending => {
                    self.stats.resolving += 1;
                    let _ = self.pending.push(now, pair, frame);
                    return;
                }
                Resolution::NotFound => {
                    self.stats.no_locators += 1;
                    return;
                }
            },
        };
        if self.connect(now, pair, &locators) {
            let _ = self.pending.push(now, pair, frame);
        }
    }

    /// The configured resolver, then the services' reverse lookup.
    fn lookup_peer(&mut self, now: Instant, peer: Ulid) -> Resolution {
        match self.resolver.lookup(peer) {
            Resolution::NotFound => match self.services.as_mut() {
                Some(s) => s.lookup(now, peer),
                None => Resolution::NotFound,
            },
            r => r,
        }
    }

    /// A Shim6 control message: to the engine with its addresses.
    fn control(&mut self, now: Instant, v: &Ipv6Frame<'_>) {
        let packet = v.packet();
        match wire::find_shim6(packet) {
            Ok(Some(loc)) => match packet.get(loc.offset..) {
                Some(shim) => {
                    self.stats.control_in += 1;
                    self.engine.handle_control(now, v.src(), v.dst(), shim);
                }
                None => self.stats.malformed += 1,
            },
            _ => self.stats.malformed += 1,
        }
    }

    /// Addressed to the proxy: echo requests are answered, Parameter Problems go to the
    /// engine (NO-SUPPORT detection), UDP goes to the local services (DNS, DHCPv6), the rest
    /// is counted.
    fn for_us(&mut self, now: Instant, port: PortId, v: &Ipv6Frame<'_>) {
        match v.upper() {
            Some((proto::ICMPV6, icmp)) if icmp.first() == Some(&ECHO_REQUEST) => {
                if !self.nd.owns(port, v.dst()) {
                    self.stats.unhandled += 1;
                    return;
                }
                match icmp::echo_reply(v.dst(), v.src(), icmp) {
                    Some(ip) => {
                        self.stats.echo_replies += 1;
                        self.reply(now, port, v, ip);
                    }
                    None => self.stats.malformed += 1,
                }
            }
            Some((proto::ICMPV6, icmp)) if icmp.first() == Some(&PARAM_PROBLEM) => {
                self.icmp_in(now, v)
            }
            Some((proto::UDP, udp)) => self.udp_in(now, port, v, udp),
            _ => self.stats.unhandled += 1,
        }
    }

    /// Sends `ip` back towards the sender of `v` (its Ethernet source on `port`; through the
    /// provider tunnel when `v` came through it).
    pub(super) fn reply(&mut self, now: Instant, port: PortId, v: &Ipv6Frame<'_>, ip: Vec<u8>) {
        if v.l3 != crate::fastpath::packet::ETH_LEN {
            if let Some(idx) = self.dp.providers.iter().position(|p| p.port == port) {
                self.send_via_provider(now, idx, ip);
                return;
            }
        }
        let src = self.port_mac(port);
        self.out.push((port, frame::ethernet(v.eth_src, src, &ip)));
    }

    /// Packet Too Big (`mtu`) or Time Exceeded (`None`) about a punted packet, from one of our
    /// addresses on the port it came in on.
    fn icmp_error(&mut self, now: Instant, port: PortId, v: &Ipv6Frame<'_>, mtu: Option<u16>) {
        let invoking = v.packet();
        if !icmp::may_report(invoking, mtu.is_some()) || !self.icmp_limit.take(now) {
            self.stats.icmp_suppressed += 1;
            return;
        }
        let src = if port == self.dp.inside.port {
            self.dp.inside.global
        } else {
            // One of our addresses on the provider link: its own, else the host locator the
            // packet was sent to (the proxy owns it).
            self.dp
                .providers
                .iter()
                .find(|p| p.port == port)
                .and_then(|p| p.address)
                .unwrap_or(v.dst())
        };
        let ip = match mtu {
            Some(m) => icmp::packet_too_big(src, u32::from(m), invoking),
            None => icmp::time_exceeded(src, invoking),
        };
        let Some(ip) = ip else {
            self.stats.malformed += 1;
            return;
        };
        if mtu.is_some() {
            self.stats.too_big_sent += 1;
        } else {
            self.stats.time_exceeded_sent += 1;
        }
        self.reply(now, port, v, ip);
    }

    /// An ICMPv6 error for the engine: a Parameter Problem quoting one of our I1s means the
    /// peer has no SHIM6 ([RFC 5533 §7.8](https://www.rfc-editor.org/rfc/rfc5533#section-7.8)).
    fn icmp_in(&mut self, now: Instant, v: &Ipv6Frame<'_>) {
        match v.upper() {
            Some((proto::ICMPV6, icmp))
                if icmp.first() == Some(&PARAM_PROBLEM) && icmp.len() >= 8 =>
            {
                let pointer = u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]);
                self.stats.param_problems += 1;
                self.engine
                    .handle_icmp_parameter_problem(now, icmp[1], pointer, &icmp[8..]);
            }
            _ => self.stats.unhandled += 1,
        }
    }

    /// A payload packet for a known tag whose locators are not the context's current pair.
    /// REAP lets each side send on its own pair, so the peer may use any verified locator of
    /// its set towards any of ours: such a packet is delivered here (ULIDs restored, header
    /// removed). Anything else is what RFC 5533 §7.17 answers with R1bis.
    fn mismatch(&mut self, now: Instant, v: &Ipv6Frame<'_>) {
        let packet = v.packet();
        let Some(tag) = payload_tag(packet) else {
            self.stats.malformed += 1;
            return;
        };
        let info = self.engine.context(tag).filter(|c| c.state.usable());
        let ok = info.as_ref().is_some_and(|c| {
            c.peer_locators
                .iter()
                .any(|p| p.locator.0 == v.src() && p.verified)
                && frame::iid_of(v.dst()) == frame::iid_of(c.local_ulid.0)
                && self.dp.providers.iter().any(|p| p.prefix.contains(v.dst()))
        });
        let (Some(info), true) = (info, ok) else {
            self.stats.mismatch_rejected += 1;
            self.engine.handle_unknown_tag(now, v.src(), v.dst(), tag);
            return;
        };
        let mut p = packet.to_vec();
        if p.len() < 40 || p[7] <= 1 {
            self.stats.malformed += 1;
            return;
        }
        p[7] -= 1;
        p[8..24].copy_from_slice(&info.peer_ulid.octets());
        p[24..40].copy_from_slice(&info.local_ulid.octets());
        if wire::remove_payload_header(&mut p).is_err() {
            self.stats.malformed += 1;
            return;
        }
        let inner = p.split_off(wire::PAYLOAD_HEADER_LEN);
        self.stats.mismatch_delivered += 1;
        self.engine.payload_activity(now, tag, Some(now), None);
        let inside = self.dp.inside.port;
        self.send_ip(now, inside, info.local_ulid.0, inner);
    }

    /// A frame the fast path could not send for lack of a MAC: resolve the neighbour it needs
    /// and run the frame through the fast path again once it answers.
    pub(super) fn hold_for_next_hop(&mut self, now: Instant, rx_port: PortId, frame: Vec<u8>) {
        let Some(v) =
            Ipv6Frame::parse(&frame).and_then(|v| v.inner_if_tunnel(self.tunnel_local(rx_port)))
        else {
            self.stats.malformed += 1;
            return;
        };
        let target = if rx_port == self.dp.inside.port {
            // Out to a provider: the context's provider, else (NATv6) the first provider whose
            // exit router is not resolved.
            let provider = match self.table.get_by_ulids(Ulid(v.src()), Ulid(v.dst())) {
                Some(e) => self.dp.providers.iter().find(|p| p.id == e.tx_provider),
                None => self
                    .dp
                    .providers
                    .iter()
                    .find(|p| self.neighbors.lookup(p.port, p.exit.next_hop()).is_none()),
            };
            provider.map(|p| (p.port, p.exit.next_hop()))
        } else {
            // In to a host: its ULID is the prefix swap of the locator (or NATv6 address).
            Some((
                self.dp.inside.port,
                self.dp.ulid_prefix.with_iid_of(v.dst()),
            ))
        };
        let Some((port, addr)) = target else {
            self.stats.reprocess_dropped += 1;
            return;
        };
        self.nd.resolve(
            now,
            port,
            addr,
            Some(Held::Reprocess { rx_port, frame }),
            &mut self.out,
        );
    }
}

/// The tag of the payload extension header of an IPv6 packet, if it has one.
fn payload_tag(packet: &[u8]) -> Option<ContextTag> {
    let loc = wire::find_shim6(packet).ok()??;
    let h = packet.get(loc.offset..loc.offset + 8)?;
    (h[2] & 0x80 != 0).then(|| ContextTag::read([h[2], h[3], h[4], h[5], h[6], h[7]]))
}
