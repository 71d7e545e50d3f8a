//! The local services of `pshim6 run`: the DNS ALG ([`dns`]) and the DHCPv6 server
//! ([`dhcp`]) behind the proxy's own addresses, carried by the slow path through
//! [`LocalServices`], and the operator's timeline (one stderr line per host bound, peer
//! learnt from DNS, context established / failed over / removed; never per packet).
//!
//! Which datagram goes where:
//! - inside, to UDP 547 (ff02::1:2 or our link-local): DHCPv6;
//! - inside, to `inside.global` UDP 53: a DNS query from a host;
//! - on a provider port, to the ALG's upstream source port: an upstream DNS answer.
//!
//! Anything else is left to the slow path, which counts it.
//!
//! Timeline lines (after `pshim6: [   SECONDS s] `), one per event, for people and scripts:
//! - `DNS ALG on [ADDR]:53, upstream SERVERS from port N`, `DHCPv6 on the inside link, journal PATH`
//! - `host bound: DUID HEX IAID N -> CMULA ADDR (valid Ns)` (`host from the journal: ...` at
//!   start, `(static)` for configured bindings), `host released: DUID HEX IAID N gave back CMULA ADDR`
//! - `peer ULID learnt from DNS: locators L1, L2 (ttl Ns)` (again only when they change)
//! - `context established: LOCAL <-> PEER, tags CT(local)/CT(peer), locators PAIR`
//!   (`re-established` after a recovery), `context TAG: failed over to PAIR`,
//!   `context TAG: peer tag now TAG`, `context TAG: removed (REASON)`,
//!   `context LOCAL <-> PEER: failed (REASON)`

pub(crate) mod dhcp;
pub(crate) mod dhcp_store;
pub(crate) mod dns;

use std::fmt::Debug;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Instant;

use dataplane::slowpath::{DatagramIn, DatagramOut, LocalServices, Resolution, ServiceOutput};
use shim6::ContextEvent;
use wire::Ulid;

/// Where timeline lines go (stderr in `pshim6 run`, a buffer in tests).
pub(crate) type Timeline = Arc<dyn Fn(&str) + Send + Sync>;

/// A timeline on stderr, each line stamped with the seconds since `start`.
pub(crate) fn stderr_timeline(start: Instant) -> Timeline {
    Arc::new(move |line: &str| {
        eprintln!("pshim6: [{:>9.3}s] {line}", start.elapsed().as_secs_f64());
    })
}

/// DHCPv6 server port ([RFC 8415 §7.2](https://www.rfc-editor.org/rfc/rfc8415#section-7.2)).
pub(crate) const DHCP_SERVER_PORT: u16 = 547;
/// DNS port.
pub(crate) const DNS_PORT: u16 = 53;

/// The services `pshim6 run` offers, as the slow path drives them.
pub(crate) struct Services {
    /// The proxy's inside global address (where the ALG answers).
    inside_global: Ipv6Addr,
    dns: Option<dns::DnsService>,
    dhcp: Option<dhcp::DhcpService>,
    timeline: Timeline,
}

impl Services {
    /// Services on `inside_global`, either of which may be absent.
    pub(crate) fn new(
        inside_global: Ipv6Addr,
        dns: Option<dns::DnsService>,
        dhcp: Option<dhcp::DhcpService>,
        timeline: Timeline,
    ) -> Self {
        Self {
            inside_global,
            dns,
            dhcp,
            timeline,
        }
    }
}

impl LocalServices for Services {
    fn handle_datagram(&mut self, now: Instant, d: &DatagramIn<'_>) -> bool {
        if d.inside && d.dst.port() == DHCP_SERVER_PORT {
            if let Some(s) = self.dhcp.as_mut() {
                s.handle(d);
                return true;
            }
        }
        if let Some(s) = self.dns.as_mut() {
            if d.inside && d.dst.port() == DNS_PORT && *d.dst.ip() == self.inside_global {
                s.handle_query(now, d);
                return true;
            }
            if !d.inside && d.dst.port() == s.upstream_port() {
                s.handle_upstream(now, d);
                return true;
            }
        }
        false
    }

    fn poll_datagram(&mut self) -> Option<DatagramOut> {
        if let Some(d) = self
            .dhcp
            .as_mut()
            .and_then(dhcp::DhcpService::poll_datagram)
        {
            return Some(d);
        }
        self.dns.as_mut().and_then(dns::DnsService::poll_datagram)
    }

    fn poll_output(&mut self) -> Option<ServiceOutput> {
        if let Some(o) = self.dhcp.as_mut().and_then(dhcp::DhcpService::poll_output) {
            return Some(o);
        }
        self.dns.as_mut().and_then(dns::DnsService::poll_output)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let dns = self.dns.as_ref().and_then(dns::DnsService::poll_timeout);
        let dhcp = self.dhcp.as_ref().and_then(dhcp::DhcpService::poll_timeout);
        match (dns, dhcp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(s) = self.dns.as_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        if let Some(s) = self.dhcp.as_mut() {
            s.handle_timeout(now);
        }
        if let Some(s) = self.dhcp.as_mut() {
            s.handle_timeout(now);
        }
    }

    fn lookup(&mut self, now: Instant, peer: Ulid) -> Resolution {
        match self.dns.as_mut() {
            Some(s) => s.lookup(now, peer),
            None => Resolution::NotFound,
        }
    }

    fn on_context_event(&mut self, _now: Instant, ev: &ContextEvent) {
        let line = match ev {
            ContextEvent::Established {
                local_tag,
                peer_tag,
                local_ulid,
                peer_ulid,
                pair,
                recovered,
            } => format!(
                "context {}: {local_ulid} <-> {peer_ulid}, tags {local_tag}/{peer_tag}, locators {pair}",
                if *recovered { "re-established" } else { "established" }
            ),
            ContextEvent::PairChanged { local_tag, pair } => {
                format!("context {local_tag}: failed over to {pair}")
            }
            ContextEvent::PeerTagChanged {
                local_tag,
                peer_tag,
            } => format!("context {local_tag}: peer tag now {peer_tag}"),
            ContextEvent::Removed { local_tag, reason } => {
                format!("context {local_tag}: removed ({reason:?})")
            }
            ContextEvent::Failed {
                local_ulid,
                peer_ulid,
                reason,
            } => format!("context {local_ulid} <-> {peer_ulid}: failed ({reason:?})"),
        };
        (self.timeline)(&line);
    }

    fn on_host_refused(&mut self, ulid: Ulid, reason: &str) {
        (self.timeline)(&format!("host {ulid}: refused by the engine: {reason}"));
    }

    fn host_bindings(&self) -> Option<Vec<dataplane::slowpath::HostBinding>> {
        self.dhcp.as_ref().map(dhcp::DhcpService::bindings)
    }

    fn set_dns_upstreams(
        &mut self,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Option<Result<(), String>> {
        self.dns.as_mut().map(|d| d.set_upstreams(upstreams))
    }

    fn peer_cache(&self, now: Instant) -> Option<Vec<dataplane::slowpath::PeerCacheEntry>> {
        self.dns.as_ref().map(|d| d.cache(now))
    }

    fn counters(&self) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        if let Some(s) = &self.dns {
            v.extend(s.counters());
        }
        if let Some(s) = &self.dhcp {
            v.extend(s.counters());
        }
        v
    }
}

/// `name value` pairs of a counters struct, from its `{:#?}` form (`prefix.name`); arrays
/// and non-numeric fields are left out.
pub(crate) fn debug_counters(prefix: &str, c: &impl Debug) -> Vec<(String, u64)> {
    format!("{c:#?}")
        .lines()
        .filter_map(|l| {
            let (n, v) = l.trim().trim_end_matches(',').split_once(": ")?;
            Some((format!("{prefix}.{n}"), v.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests;
