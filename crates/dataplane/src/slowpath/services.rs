//! Local services on the proxy's own addresses (the DNS ALG, the DHCPv6 server): the slow
//! path carries their UDP, and consumes what they learn.
//!
//! The appliance owns its interfaces (the kernel's IPv6 is off on them), so there is no host
//! stack: the fast path punts what is addressed to the proxy (`PuntReason::ForUs`, multicast
//! such as ff02::1:2 included) and the slow path hands each UDP datagram to a
//! [`LocalServices`] implementation, sans-IO like the engines. The data plane does not know
//! the services (dependencies point `dataplane <- binary`); the binary implements the trait
//! with the `dns-alg` and `dhcp` crates.
//!
//! The slow path builds and parses the IPv6/UDP frames (checksum over the pseudo-header,
//! [RFC 8200 §8.1](https://www.rfc-editor.org/rfc/rfc8200#section-8.1)) and routes what the
//! services send:
//! - to an inside address (link-local, link-scope multicast, or under the ULID /64): on the
//!   inside port, to the MAC the peer last sent from, else resolved by ND;
//! - anywhere else (upstream DNS servers): out of the first UP provider that has an address of
//!   its own (`ProviderConfig::address`), **sourced from that address**, so the provider's
//!   ingress filtering accepts it and its answer comes back to the proxy. A provider through
//!   which a few datagrams left and nothing came back is passed over for the next one, so
//!   retries get through a provider cut beyond its link.
//!
//! What the services learn comes back as [`ServiceOutput`]: peer locators (into the
//! `PeerLocatorCache`, starting the handshake at once for the pairs waiting for them) and host
//! bindings (`SlowPath::add_local_host`). `lookup` is the reverse-DNS fallback of the
//! no-context decision tree, after the cache and the configured `LocatorResolver`.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use cga::CgaParameters;
use shim6::ContextEvent;
use wire::{Locator, Ulid};

use super::resolver::Resolution;

/// A UDP datagram the slow path received for one of the proxy's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramIn<'a> {
    /// Sender address and port.
    pub src: SocketAddrV6,
    /// Our address (or the multicast group) and port it was sent to.
    pub dst: SocketAddrV6,
    /// Received on the inside port (from the site's hosts), else on a provider port.
    pub inside: bool,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// A UDP datagram a service sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramOut {
    /// Source address and port. For destinations outside the site the address is replaced
    /// by the chosen provider's own address (the port is kept); to inside destinations an
    /// unspecified address becomes the inside global address (link-local for link-local or
    /// multicast destinations).
    pub src: SocketAddrV6,
    /// Destination.
    pub dst: SocketAddrV6,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// What a service learnt that the slow path acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceOutput {
    /// DNS gave a peer ULID's locators: cache them, start the handshake for pairs waiting.
    PeerLocators {
        /// The peer's ULID.
        peer: Ulid,
        /// Its locators (contact addresses for the I1).
        locators: Vec<Locator>,
        /// How long they may be used (the DNS answer's TTL): the cache forgets them after.
        ttl: std::time::Duration,
    },
    /// A reverse lookup of `peer` (from [`LocalServices::lookup`]) found nothing: the pairs
    /// waiting for it are dropped.
    PeerUnresolved {
        /// The peer's ULID.
        peer: Ulid,
    },
    /// A host gave its ULID back (DHCPv6 Release, or Decline and a new address): the engine
    /// stops acting for it, its contexts go.
    HostReleased {
        /// The host's former ULID.
        ulid: Ulid,
    },
    /// A host got (or renewed) its ULID: the engine must act for it.
    HostBound {
        /// The host's ULID (a CGA of the site key).
        ulid: Ulid,
        /// Its CGA Parameters.
        params: CgaParameters,
    },
}

/// The services behind the proxy's own addresses, driven by the slow path (see the module
/// docs). Sans-IO: no method may block; the slow path calls them from its own thread.
pub trait LocalServices: Send {
    /// A datagram for one of our addresses; whether a service took it (otherwise it is
    /// counted as unhandled and answered with an ICMPv6 port unreachable).
    fn handle_datagram(&mut self, now: Instant, datagram: &DatagramIn<'_>) -> bool;

    /// The next datagram to send.
    fn poll_datagram(&mut self) -> Option<DatagramOut>;

    /// The next output for the slow path.
    fn poll_output(&mut self) -> Option<ServiceOutput>;

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Fires the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// Reverse lookup of a peer ULID neither the cache nor the resolver knows; an answer
    /// given later comes as [`ServiceOutput::PeerLocators`] or
    /// [`ServiceOutput::PeerUnresolved`].
    fn lookup(&mut self, _now: Instant, _peer: Ulid) -> Resolution {
        Resolution::NotFound
    }

    /// An engine event the slow path applied (for an operator timeline; never per packet).
    fn on_context_event(&mut self, _now: Instant, _event: &ContextEvent) {}

    /// A host binding the engine refused (its ULID is not a CGA of the site key under the
    /// ULID prefix).
    fn on_host_refused(&mut self, _ulid: Ulid, _reason: &str) {}

    /// Counters, name and value, for the exit report.
    fn counters(&self) -> Vec<(String, u64)>;

    /// The DHCPv6 bindings, for the operator API; `None` when no DHCPv6 server runs.
    fn host_bindings(&self) -> Option<Vec<HostBinding>> {
        None
    }

    /// Replaces the DNS ALG's upstream servers (a live reload); `None` when no DNS ALG runs,
    /// else whether the list was taken (the reason when refused).
    fn set_dns_upstreams(
        &mut self,
        _upstreams: Vec<std::net::SocketAddr>,
    ) -> Option<Result<(), String>> {
        None
    }

    /// The DNS ALG's peer locator cache at `now`, for the operator API; `None` when no DNS
    /// ALG runs.
    fn peer_cache(&self, _now: Instant) -> Option<Vec<PeerCacheEntry>> {
        None
    }
}

/// One DHCPv6 binding as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBinding {
    /// Client DUID (opaque bytes, RFC 8415 §11).
    pub duid: Vec<u8>,
    /// The CMULA handed out: the host's ULID.
    pub ulid: Ulid,
    /// Its locators, one per provider prefix.
    pub locators: Vec<Ipv6Addr>,
    /// `offered`, `bound` or `declined`.
    pub state: &'static str,
    /// End of the valid lifetime, seconds since the Unix epoch.
    pub valid_until: u64,
}

/// One peer of the DNS ALG's locator cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCacheEntry {
    /// The peer ULID.
    pub ulid: Ulid,
    /// Its locators, in DNS order.
    pub locators: Vec<Locator>,
    /// Lifetime left.
    pub remaining: Duration,
}

/// Whether `dst` is reached on the inside link: link-local, multicast, or under `ulid`.
pub(crate) fn is_inside_destination(dst: Ipv6Addr, ulid: crate::config::Prefix64) -> bool {
    dst.is_multicast() || dst.is_unicast_link_local() || ulid.contains(dst)
}
