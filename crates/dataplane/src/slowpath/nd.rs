//! Neighbor Discovery ([RFC 4861](https://www.rfc-editor.org/rfc/rfc4861)) on every port the
//! appliance owns, parsed and emitted with smoltcp's `NdiscRepr`:
//!
//! - **Answers** Neighbor Solicitations for the proxy's own addresses on each port (inside:
//!   link-local and global; provider: the EUI-64 link-local, the configured address, the tunnel
//!   end) and, on provider ports, for every locator of every local host (PA prefix + host
//!   interface id): the hosts never see the provider links, the proxy owns their locators.
//! - **Resolves** next hops (provider exit routers, inside hosts for delivery): multicast NS,
//!   [`NdConfig::max_solicit`] tries [`NdConfig::retrans`] apart, packets held meanwhile
//!   (bounded per neighbour); a learnt entry older than [`NdConfig::reachable`] is probed with
//!   unicast NS and removed from the neighbour table if the probes go unanswered (a simplified
//!   Neighbor Unreachability Detection, §7.3).
//! - **Learns** inside hosts' MACs from their NS / RS (source link-layer option) and NA
//!   (target link-layer option) into the neighbour table the workers read.
//! - **Advertises** the site ULID /64 on the inside link (Router Advertisements, optional,
//!   periodic and in answer to Router Solicitations).
//!
//! Validity checks of §7.1 are applied: hop limit 255, code 0, valid checksum, target not
//! multicast, no source link-layer option with an unspecified source.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6Packet, Icmpv6Repr, NdiscNeighborFlags, NdiscPrefixInfoFlags, NdiscPrefixInformation,
    NdiscRepr, NdiscRouterFlags, RawHardwareAddress,
};

use super::frame::{self, multicast_mac, solicited_node, Ipv6Frame, ALL_NODES, ND_HOP_LIMIT};
use crate::config::{MacAddr, Prefix64};
use crate::fastpath::packet::proto;
use crate::io::PortId;
use crate::neighbor::NeighborWriter;

/// Neighbor Discovery timers and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdConfig {
    /// Gap between solicitations for one neighbour (RETRANS_TIMER, 1 s).
    pub retrans: Duration,
    /// Solicitations before giving up (MAX_MULTICAST_SOLICIT / MAX_UNICAST_SOLICIT, 3).
    pub max_solicit: u32,
    /// Age after which a learnt neighbour is probed again (REACHABLE_TIME, 30 s).
    pub reachable: Duration,
    /// Packets held per neighbour while it is resolved.
    pub hold_per_neighbor: usize,
}

impl Default for NdConfig {
    fn default() -> Self {
        Self {
            retrans: Duration::from_secs(1),
            max_solicit: 3,
            reachable: Duration::from_secs(30),
            hold_per_neighbor: 16,
        }
    }
}

/// Router Advertisements on the inside link
/// ([RFC 4861 §6.2](https://www.rfc-editor.org/rfc/rfc4861#section-6.2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaConfig {
    /// Gap between unsolicited advertisements.
    pub interval: Duration,
    /// M flag: addresses come from DHCPv6 (the proxy hands out the hosts' CGA ULIDs).
    pub managed: bool,
    /// O flag: other configuration from DHCPv6.
    pub other: bool,
    /// A flag of the prefix: hosts may form addresses themselves (off: a ULID must be a CGA of
    /// the site key, which only the proxy can make).
    pub autonomous: bool,
    /// Router Lifetime in seconds (0: not a default router).
    pub router_lifetime: u16,
    /// MTU option, if any (e.g. the provider MTU less the Shim6 header, so hosts never need a
    /// Packet Too Big).
    pub mtu: Option<u32>,
}

impl Default for RaConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(200),
            managed: true,
            other: true,
            autonomous: false,
            router_lifetime: 1800,
            mtu: None,
        }
    }
}

/// One port as ND sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NdPort {
    pub(crate) port: PortId,
    pub(crate) mac: MacAddr,
    /// Source of our solicitations on the link.
    pub(crate) link_local: Ipv6Addr,
    /// Our other addresses on the link.
    pub(crate) addresses: Vec<Ipv6Addr>,
    /// Provider ports: the PA prefix under which every host locator is ours.
    pub(crate) locator_prefix: Option<Prefix64>,
    /// The inside port (we are its router: R flag, RAs, host learning).
    pub(crate) inside: bool,
}

/// A packet waiting for a neighbour's MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// An IPv6 packet the slow path built: send it in an Ethernet frame to the neighbour.
    Ip(Vec<u8>),
    /// A frame the fast path punted for lack of a MAC (received on `rx_port`): run it through
    /// the fast path again.
    Reprocess {
        /// Where it came in.
        rx_port: PortId,
        /// The frame as received.
        frame: Vec<u8>,
    },
}

/// Counters of ND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdStats {
    /// Valid Neighbor Solicitations received.
    pub ns_in: u64,
    /// Valid Neighbor Advertisements received.
    pub na_in: u64,
    /// Router Solicitations received.
    pub rs_in: u64,
    /// ND messages dropped as invalid (§7.1) or of a kind we do not act on.
    pub ignored: u64,
    /// Advertisements sent in answer to a solicitation for one of ours.
    pub na_out: u64,
    /// Solicitations sent (resolution and probes).
    pub ns_out: u64,
    /// Router Advertisements sent.
    pub ra_out: u64,
    /// Neighbours written into the table.
    pub learned: u64,
    /// Resolutions that succeeded.
    pub resolved: u64,
    /// Resolutions (or probes) that got no answer.
    pub failed: u64,
    /// Held packets dropped (hold full, or resolution failed).
    pub held_dropped: u64,
    /// Neighbour table refused a write (full).
    pub table_full: u64,
}

#[derive(Debug)]
struct Resolving {
    tries: u32,
    next_at: Instant,
    /// Probing a known neighbour (unicast) rather than resolving (multicast).
    unicast: Option<MacAddr>,
    held: VecDeque<Held>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    mac: MacAddr,
    confirmed: Instant,
}

/// A packet whose neighbour just got resolved: send it to `mac` on `port`.
pub(crate) type Released = (PortId, MacAddr, Held);

/// Frames to transmit: (port, Ethernet frame).
pub(crate) type Outbox = Vec<(PortId, Vec<u8>)>;

/// The ND state of the appliance.
#[derive(Debug)]
pub(crate) struct Nd {
    cfg: NdConfig,
    ports: Vec<NdPort>,
    host_iids: HashSet<u64>,
    known: HashMap<(PortId, Ipv6Addr), Known>,
    resolving: HashMap<(PortId, Ipv6Addr), Resolving>,
    /// Neighbours kept resolved at all times (provider exit routers).
    keep: Vec<(PortId, Ipv6Addr)>,
    ra: Option<(RaConfig, Prefix64, Instant)>,
    stats: NdStats,
}

impl Nd {
    /// ND over `ports`, proxying for the hosts with interface ids `host_iids`.
    pub(crate) fn new(cfg: NdConfig, ports: Vec<NdPort>, host_iids: HashSet<u64>) -> Self {
        Self {
            cfg,
            ports,
            host_iids,
            known: HashMap::new(),
            resolving: HashMap::new(),
            keep: Vec::new(),
            ra: None,
            stats: NdStats::default(),
        }
    }

    /// Sends Router Advertisements for `prefix` on the inside port from `now` on.
    pub(crate) fn enable_ra(&mut self, ra: RaConfig, prefix: Prefix64, now: Instant) {
        self.ra = Some((ra, prefix, now));
    }

    /// Keeps `addr` on `port` resolved (a provider's exit router).
    pub(crate) fn keep_resolved(&mut self, port: PortId, addr: Ipv6Addr) {
        if !self.keep.contains(&(port, addr)) {
            self.keep.push((port, addr));
        }
    }

    /// A new local host: its locators are ours on every provider link.
    pub(crate) fn add_host_iid(&mut self, iid: u64) {
        self.host_iids.insert(iid);
    }

    /// A local host gone: its locators are no longer ours.
    pub(crate) fn remove_host_iid(&mut self, iid: u64) {
        self.host_iids.remove(&iid);
    }

    /// Counters.
    pub(crate) fn stats(&self) -> NdStats {
        self.stats
    }

    fn port(&self, port: PortId) -> Option<&NdPort> {
        self.ports.iter().find(|p| p.port == port)
    }

    /// Whether `addr` is one of ours on `port` (answer NS for it).
    pub(crate) fn owns(&self, port: PortId, addr: Ipv6Addr) -> bool {
        let Some(p) = self.port(port) else {
            return false;
        };
        addr == p.link_local
            || p.addresses.contains(&addr)
            || p.locator_prefix.is_some_and(|pre| {
                pre.contains(addr) && self.host_iids.contains(&frame::iid_of(addr))
            })
    }

    /// Handles a punted ND message received on `port`; `false` when it is not a valid one.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        port: PortId,
        v: &Ipv6Frame<'_>,
        nbr: &mut NeighborWriter,
        out: &mut Outbox,
        released: &mut Vec<Released>,
    ) -> bool {
        let Some(repr) = parse_nd(v) else {
            self.stats.ignored += 1;
            return false;
        };
        let (src, dst) = (v.src(), v.dst());
        match repr {
            NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                if target_addr.is_multicast()
                    || (src.is_unspecified()
                        && (lladdr.is_some() || dst != solicited_node(target_addr)))
                {
                    self.stats.ignored += 1;
                    return false;
                }
                self.stats.ns_in += 1;
                let ours = self.owns(port, target_addr);
                let mac = lladdr.and_then(mac_of);
                if let Some(mac) = mac.filter(|_| !src.is_unspecified()) {
                    // §7.2.3: a solicitation for one of ours creates / updates the sender's
                    // entry; on the inside it is how hosts become reachable.
                    if ours || self.is_inside(port) || self.tracks(port, src) {
                        self.learn(now, port, src, mac, nbr, released);
                    }
                }
                if ours {
                    self.advertise(port, target_addr, src, mac.unwrap_or(v.eth_src), out);
                }
            }
            NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                if target_addr.is_multicast()
                    || (dst.is_multicast() && flags.contains(NdiscNeighborFlags::SOLICITED))
                {
                    self.stats.ignored += 1;
                    return false;
                }
                self.stats.na_in += 1;
                // §7.2.5: only an entry we hold (or are resolving) is updated; inside hosts
                // are learnt as they announce themselves.
                if self.tracks(port, target_addr) || self.is_inside(port) {
                    let mac = lladdr.and_then(mac_of).unwrap_or(v.eth_src);
                    self.learn(now, port, target_addr, mac, nbr, released);
                }
            }
            NdiscRepr::RouterSolicit { lladdr } => {
                if src.is_unspecified() && lladdr.is_some() {
                    self.stats.ignored += 1;
                    return false;
                }
                self.stats.rs_in += 1;
                if !self.is_inside(port) {
                    return true;
                }
                if let Some(mac) = lladdr.and_then(mac_of).filter(|_| !src.is_unspecified()) {
                    self.learn(now, port, src, mac, nbr, released);
                }
                let to = if src.is_unspecified() { ALL_NODES } else { src };
                self.send_ra(port, to, out);
            }
            _ => self.stats.ignored += 1,
        }
        true
    }

    fn is_inside(&self, port: PortId) -> bool {
        self.port(port).is_some_and(|p| p.inside)
    }

    fn tracks(&self, port: PortId, addr: Ipv6Addr) -> bool {
        self.resolving.contains_key(&(port, addr)) || self.known.contains_key(&(port, addr))
    }

    /// Records `addr` → `mac` on `port` and releases the packets that waited for it.
    fn learn(
        &mut self,
        now: Instant,
        port: PortId,
        addr: Ipv6Addr,
        mac: MacAddr,
        nbr: &mut NeighborWriter,
        released: &mut Vec<Released>,
    ) {
        if mac.is_multicast() || mac.is_zero() || addr.is_unspecified() || addr.is_multicast() {
            return;
        }
        let changed = !matches!(self.known.get(&(port, addr)), Some(k) if k.mac == mac);
        if changed {
            if nbr.insert(port, addr, mac).is_err() {
                self.stats.table_full += 1;
                return;
            }
            self.stats.learned += 1;
        }
        self.known.insert(
            (port, addr),
            Known {
                mac,
                confirmed: now,
            },
        );
        if let Some(r) = self.resolving.remove(&(port, addr)) {
            if r.unicast.is_none() {
                self.stats.resolved += 1;
            }
            released.extend(r.held.into_iter().map(|h| (port, mac, h)));
        }
    }

    /// The NA for one of ours (`target`) to the solicitation from `to`
    /// ([RFC 4861 §7.2.4](https://www.rfc-editor.org/rfc/rfc4861#section-7.2.4)).
    fn advertise(
        &mut self,
        port: PortId,
        target: Ipv6Addr,
        to: Ipv6Addr,
        to_mac: MacAddr,
        out: &mut Outbox,
    ) {
        let Some(p) = self.port(port) else { return };
        let mut flags = NdiscNeighborFlags::OVERRIDE;
        if p.inside {
            flags |= NdiscNeighborFlags::ROUTER;
        }
        let (dst, dst_mac) = if to.is_unspecified() {
            // Answer to duplicate address detection: to all nodes, not solicited.
            (ALL_NODES, multicast_mac(ALL_NODES))
        } else {
            flags |= NdiscNeighborFlags::SOLICITED;
            (to, to_mac)
        };
        let repr = NdiscRepr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&p.mac.0)),
        };
        let src_mac = p.mac;
        if let Some(ip) = frame::icmpv6(target, dst, ND_HOP_LIMIT, &Icmpv6Repr::Ndisc(repr)) {
            out.push((port, frame::ethernet(dst_mac, src_mac, &ip)));
            self.stats.na_out += 1;
        }
    }

    /// A solicitation for `target` on `port`: to its solicited-node group, or unicast to
    /// `unicast` (a probe of a known neighbour).
    fn solicit(
        &mut self,
        port: PortId,
        target: Ipv6Addr,
        unicast: Option<MacAddr>,
        out: &mut Outbox,
    ) {
        let Some(p) = self.port(port) else { return };
        let (dst, dst_mac) = match unicast {
            Some(mac) => (target, mac),
            None => {
                let group = solicited_node(target);
                (group, multicast_mac(group))
            }
        };
        let repr = NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&p.mac.0)),
        };
        let (src, src_mac) = (p.link_local, p.mac);
        if let Some(ip) = frame::icmpv6(src, dst, ND_HOP_LIMIT, &Icmpv6Repr::Ndisc(repr)) {
            out.push((port, frame::ethernet(dst_mac, src_mac, &ip)));
            self.stats.ns_out += 1;
        }
    }

    /// Starts resolving `addr` on `port` unless under way, holding `held` (if any) for it.
    pub(crate) fn resolve(
        &mut self,
        now: Instant,
        port: PortId,
        addr: Ipv6Addr,
        held: Option<Held>,
        out: &mut Outbox,
    ) {
        let key = (port, addr);
        if !self.resolving.contains_key(&key) {
            self.solicit(port, addr, None, out);
            self.resolving.insert(
                key,
                Resolving {
                    tries: 1,
                    next_at: now + self.cfg.retrans,
                    unicast: None,
                    held: VecDeque::new(),
                },
            );
        }
        if let (Some(h), Some(r)) = (held, self.resolving.get_mut(&key)) {
            if r.held.len() < self.cfg.hold_per_neighbor {
                r.held.push_back(h);
            } else {
                self.stats.held_dropped += 1;
            }
        }
    }

    /// Retransmissions, failures, probes of aged entries, periodic RAs.
    pub(crate) fn poll(&mut self, now: Instant, nbr: &mut NeighborWriter, out: &mut Outbox) {
        let due: Vec<(PortId, Ipv6Addr)> = self
            .resolving
            .iter()
            .filter(|(_, r)| r.next_at <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(r) = self.resolving.get_mut(&key) else {
                continue;
            };
            if r.tries >= self.cfg.max_solicit {
                if let Some(r) = self.resolving.remove(&key) {
                    self.stats.failed += 1;
                    self.stats.held_dropped += r.held.len() as u64;
                }
                if self.known.remove(&key).is_some() {
                    nbr.remove(key.0, key.1);
                }
                continue;
            }
            r.tries += 1;
            r.next_at = now + self.cfg.retrans;
            let unicast = r.unicast;
            self.solicit(key.0, key.1, unicast, out);
        }
        let reachable = self.cfg.reachable;
        let stale: Vec<((PortId, Ipv6Addr), MacAddr)> = self
            .known
            .iter()
            .filter(|(k, v)| {
                now.saturating_duration_since(v.confirmed) >= reachable
                    && !self.resolving.contains_key(k)
            })
            .map(|(k, v)| (*k, v.mac))
            .collect();
        for (key, mac) in stale {
            self.solicit(key.0, key.1, Some(mac), out);
            self.resolving.insert(
                key,
                Resolving {
                    tries: 1,
                    next_at: now + self.cfg.retrans,
                    unicast: Some(mac),
                    held: VecDeque::new(),
                },
            );
        }
        for (port, addr) in self.keep.clone() {
            if !self.tracks(port, addr) {
                self.resolve(now, port, addr, None, out);
            }
        }
        if let Some((ra, _, next)) = self.ra {
            if next <= now {
                if let Some(inside) = self.ports.iter().find(|p| p.inside).map(|p| p.port) {
                    self.send_ra(inside, ALL_NODES, out);
                }
                self.ra = self.ra.map(|(c, p, _)| (c, p, now + ra.interval));
            }
        }
    }

    /// A Router Advertisement of the site ULID /64 to `to`.
    fn send_ra(&mut self, port: PortId, to: Ipv6Addr, out: &mut Outbox) {
        let Some((ra, prefix, _)) = self.ra else {
            return;
        };
        let Some(p) = self.port(port).filter(|p| p.inside) else {
            return;
        };
        let mut flags = NdiscRouterFlags::empty();
        if ra.managed {
            flags |= NdiscRouterFlags::MANAGED;
        }
        if ra.other {
            flags |= NdiscRouterFlags::OTHER;
        }
        let mut pflags = NdiscPrefixInfoFlags::ON_LINK;
        if ra.autonomous {
            pflags |= NdiscPrefixInfoFlags::ADDRCONF;
        }
        let repr = NdiscRepr::RouterAdvert {
            hop_limit: frame::DEFAULT_HOP_LIMIT,
            flags,
            router_lifetime: smoltcp::time::Duration::from_secs(u64::from(ra.router_lifetime)),
            reachable_time: smoltcp::time::Duration::from_millis(0),
            retrans_time: smoltcp::time::Duration::from_millis(0),
            lladdr: Some(RawHardwareAddress::from_bytes(&p.mac.0)),
            mtu: ra.mtu,
            prefix_info: Some(NdiscPrefixInformation {
                prefix_len: 64,
                flags: pflags,
                valid_lifetime: smoltcp::time::Duration::from_secs(86_400),
                preferred_lifetime: smoltcp::time::Duration::from_secs(14_400),
                prefix: prefix.network(),
            }),
        };
        let dst_mac = if to.is_multicast() {
            multicast_mac(to)
        } else {
            self.known
                .get(&(port, to))
                .map_or(multicast_mac(ALL_NODES), |k| k.mac)
        };
        let (src, src_mac) = (p.link_local, p.mac);
        if let Some(ip) = frame::icmpv6(src, to, ND_HOP_LIMIT, &Icmpv6Repr::Ndisc(repr)) {
            out.push((port, frame::ethernet(dst_mac, src_mac, &ip)));
            self.stats.ra_out += 1;
        }
    }
}

/// The ND message of a frame, if it is a valid one (§7.1: hop limit 255, ICMPv6 checksum, code 0).
fn parse_nd<'a>(v: &Ipv6Frame<'a>) -> Option<NdiscRepr<'a>> {
    if v.hop_limit() != ND_HOP_LIMIT {
        return None;
    }
    let (p, icmp) = v.upper()?;
    if p != proto::ICMPV6 {
        return None;
    }
    let pkt = Icmpv6Packet::new_checked(icmp).ok()?;
    match Icmpv6Repr::parse(&v.src(), &v.dst(), &pkt, &ChecksumCapabilities::default()).ok()? {
        Icmpv6Repr::Ndisc(r) => Some(r),
        _ => None,
    }
}

fn mac_of(raw: RawHardwareAddress) -> Option<MacAddr> {
    let b = raw.as_bytes();
    (b.len() == 6).then(|| MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]]))
}

#[cfg(test)]
mod tests;
