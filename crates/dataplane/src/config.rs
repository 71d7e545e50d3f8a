//! Data-plane configuration: the site's ULID prefix, the inside port, the providers and how
//! each is reached, queue sizes and worker cores. Built by the binary from its config file and
//! checked once with [`DataplaneConfig::validate`]; the fast path then trusts it.
//!
//! Addressing model (architecture.md): host H has ULID `PU:IID(H)` and one locator per
//! provider, `PX:IID(H)`. Both prefixes are /64s, so mapping a ULID to a locator (and the
//! stateless NATv6 fallback) is a swap of the upper 64 bits that keeps the interface id.

use std::fmt;
use std::net::Ipv6Addr;

use crate::io::{PortId, BURST};

/// Most providers one appliance serves: the provider-up set is a bit mask and the fast path
/// keeps per-provider state in a small fixed array.
pub const MAX_PROVIDERS: usize = 16;

/// The IPv6 minimum link MTU ([RFC 8200 §5](https://www.rfc-editor.org/rfc/rfc8200#section-5)).
pub const IPV6_MIN_MTU: u16 = 1280;

/// Bytes an IPv6-in-IPv6 tunnel exit adds: the outer IPv6 header
/// ([RFC 2473 §3](https://www.rfc-editor.org/rfc/rfc2473#section-3)).
pub const TUNNEL_OVERHEAD: u16 = 40;

/// Bytes the Shim6 payload extension header adds to a translated packet
/// ([RFC 5533 §5.2](https://www.rfc-editor.org/rfc/rfc5533#section-5.2)).
pub const SHIM6_OVERHEAD: u16 = 8;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for a group (multicast/broadcast) address: the I/G bit of the first octet.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// True for 00:00:00:00:00:00.
    pub const fn is_zero(&self) -> bool {
        u64::from_be_bytes([
            0, 0, self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]) == 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A /64 prefix, kept as the upper 64 bits of the address so that matching and swapping are
/// one 64-bit compare / store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Prefix64(pub u64);

impl Prefix64 {
    /// The /64 that contains `addr` (the interface id is ignored).
    pub const fn of(addr: Ipv6Addr) -> Self {
        Self((addr.to_bits() >> 64) as u64)
    }

    /// Whether `addr` lies in this prefix.
    pub const fn contains(&self, addr: Ipv6Addr) -> bool {
        (addr.to_bits() >> 64) as u64 == self.0
    }

    /// Whether the 16 bytes `addr` (as found in a packet) lie in this prefix.
    pub fn contains_bytes(&self, addr: &[u8; 16]) -> bool {
        let mut hi = [0u8; 8];
        hi.copy_from_slice(&addr[..8]);
        u64::from_be_bytes(hi) == self.0
    }

    /// The prefix with interface id zero, e.g. `2001:db8:1:2::`.
    pub const fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from_bits((self.0 as u128) << 64)
    }

    /// `addr` with its upper 64 bits replaced by this prefix (the interface id is kept).
    pub const fn with_iid_of(&self, addr: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from_bits(((self.0 as u128) << 64) | (addr.to_bits() & (u64::MAX as u128)))
    }
}

impl fmt::Display for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/64", self.network())
    }
}

impl fmt::Debug for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The inside (site) port: where the legacy hosts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsideConfig {
    /// The port the hosts are reached on.
    pub port: PortId,
    /// Our MAC on that port (Ethernet source of everything forwarded inside).
    pub mac: MacAddr,
    /// Link MTU of the inside link (IPv6 packet size, Ethernet header not counted).
    pub mtu: u16,
    /// The proxy's link-local address on the inside link (ND, DHCPv6 server).
    pub link_local: Ipv6Addr,
    /// The proxy's global address on the inside link (DNS, operator access).
    pub global: Ipv6Addr,
}

/// How packets leave towards a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The provider's exit router is on the link: frames go to `next_hop`'s MAC.
    Direct {
        /// The exit router's address on the provider link (resolved through the neighbour
        /// table).
        next_hop: Ipv6Addr,
    },
    /// IPv6-in-IPv6 to the provider's exit router ([RFC 2473](https://www.rfc-editor.org/rfc/rfc2473)):
    /// the paper's answer when several exit routers share one link.
    Tunnel {
        /// Outer source: our tunnel endpoint address.
        local: Ipv6Addr,
        /// Outer destination: the provider's exit router.
        remote: Ipv6Addr,
        /// The on-link next hop towards `remote` (resolved through the neighbour table).
        next_hop: Ipv6Addr,
    },
}

impl Exit {
    /// The on-link next hop whose MAC the frame is sent to.
    pub const fn next_hop(&self) -> Ipv6Addr {
        match *self {
            Exit::Direct { next_hop } | Exit::Tunnel { next_hop, .. } => next_hop,
        }
    }

    /// Bytes the exit adds in front of the packet (0, or the outer IPv6 header).
    pub const fn overhead(&self) -> u16 {
        match self {
            Exit::Direct { .. } => 0,
            Exit::Tunnel { .. } => TUNNEL_OVERHEAD,
        }
    }
}

/// One provider (upstream ISP): its PA prefix and how to reach its exit router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The provider's id, as stored in the context table's `tx_provider`.
    pub id: u16,
    /// The port its link is on.
    pub port: PortId,
    /// Our MAC on that port.
    pub mac: MacAddr,
    /// Link MTU (IPv6 packet size, Ethernet header not counted).
    pub mtu: u16,
    /// The PA /64 the provider delegated: our hosts' locators under it are `prefix:IID(H)`.
    pub prefix: Prefix64,
    /// Direct next hop or tunnel.
    pub exit: Exit,
    /// The proxy's own address on the provider link, if it has one besides the link-local
    /// (traffic to it is punted to the slow path).
    pub address: Option<Ipv6Addr>,
    /// Whether the provider is usable at start (the slow path changes it at run time through
    /// [`crate::fastpath::ProviderStatus`]).
    pub up: bool,
}

/// Everything the data plane needs to know about the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// The site's ULID prefix (a CMULA /64 under fc00::/7): sources the hosts use.
    pub ulid_prefix: Prefix64,
    /// The inside port.
    pub inside: InsideConfig,
    /// The providers, at most [`MAX_PROVIDERS`].
    pub providers: Vec<ProviderConfig>,
    /// Frames the punt queue (workers to slow path) holds before dropping.
    pub punt_queue: usize,
    /// Frames the inject queue (slow path to workers) holds.
    pub inject_queue: usize,
    /// Frames per receive burst, 1..=[`BURST`].
    pub burst: usize,
    /// One entry per worker: `Some(core)` pins the worker to that core, `None` leaves it
    /// unpinned (tests).
    pub worker_cores: Vec<Option<usize>>,
}

/// A configuration value that cannot work; `field` names it as in the config file
/// (`providers[1].mtu`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid data-plane config `{field}`: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn err(field: impl Into<String>, reason: &'static str) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason,
    }
}

fn is_ula(a: Ipv6Addr) -> bool {
    a.octets()[0] & 0xfe == 0xfc
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A unicast address a packet can be sent to or from: not unspecified, loopback or multicast.
fn is_unicast(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast())
}

fn check_mac(field: String, mac: MacAddr) -> Result<(), ConfigError> {
    if mac.is_zero() || mac.is_multicast() {
        return Err(err(field, "must be a unicast MAC address"));
    }
    Ok(())
}

impl DataplaneConfig {
    /// Checks everything the fast path relies on; the first problem found names its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_ula(self.ulid_prefix.network()) {
            return Err(err(
                "ulid_prefix",
                "must be a unique local (fc00::/7) prefix",
            ));
        }
        self.validate_inside()?;
        self.validate_providers()?;
        if self.punt_queue == 0 {
            return Err(err("punt_queue", "must be at least 1"));
        }
        if self.inject_queue == 0 {
            return Err(err("inject_queue", "must be at least 1"));
        }
        if self.burst == 0 || self.burst > BURST {
            return Err(err("burst", "must be between 1 and 32"));
        }
        if self.worker_cores.is_empty() {
            return Err(err("worker_cores", "needs at least one worker"));
        }
        for (i, core) in self.worker_cores.iter().enumerate() {
            if let Some(c) = core {
                if self.worker_cores[..i].contains(&Some(*c)) {
                    return Err(err(format!("worker_cores[{i}]"), "core used twice"));
                }
            }
        }
        Ok(())
    }

    fn validate_inside(&self) -> Result<(), ConfigError> {
        let inside = &self.inside;
        check_mac("inside.mac".into(), inside.mac)?;
        if inside.mtu < IPV6_MIN_MTU {
            return Err(err("inside.mtu", "below the IPv6 minimum MTU of 1280"));
        }
        if usize::from(inside.mtu) + 14 > crate::buf::MAX_FRAME {
            return Err(err("inside.mtu", "larger than a packet buffer"));
        }
        if !is_link_local(inside.link_local) {
            return Err(err(
                "inside.link_local",
                "must be a link-local (fe80::/10) address",
            ));
        }
        if !is_unicast(inside.global) || is_link_local(inside.global) {
            return Err(err("inside.global", "must be a global unicast address"));
        }
        Ok(())
    }

    fn validate_providers(&self) -> Result<(), ConfigError> {
        if self.providers.is_empty() {
            return Err(err("providers", "needs at least one provider"));
        }
        if self.providers.len() > MAX_PROVIDERS {
            return Err(err("providers", "more than 16 providers"));
        }
        for (i, p) in self.providers.iter().enumerate() {
            let f = |name: &str| format!("providers[{i}].{name}");
            if self.providers[..i].iter().any(|q| q.id == p.id) {
                return Err(err(f("id"), "provider id used twice"));
            }
            if p.port == self.inside.port {
                return Err(err(f("port"), "is the inside port"));
            }
            check_mac(f("mac"), p.mac)?;
            // The Packet Too Big we report for a translated packet must stay a legal IPv6 MTU.
            let overhead = SHIM6_OVERHEAD + p.exit.overhead();
            if p.mtu < IPV6_MIN_MTU + overhead {
                return Err(err(
                    f("mtu"),
                    "too small for 1280 plus the Shim6 and tunnel overhead",
                ));
            }
            if usize::from(p.mtu) + 14 > crate::buf::MAX_FRAME {
                return Err(err(f("mtu"), "larger than a packet buffer"));
            }
            let net = p.prefix.network();
            if is_ula(net) || is_link_local(net) || !is_unicast(net) {
                return Err(err(f("prefix"), "must be a global unicast (PA) prefix"));
            }
            if p.prefix == self.ulid_prefix
                || self.providers[..i].iter().any(|q| q.prefix == p.prefix)
            {
                return Err(err(f("prefix"), "prefix used twice"));
            }
            if !is_unicast(p.exit.next_hop()) {
                return Err(err(f("exit.next_hop"), "must be a unicast address"));
            }
            if let Exit::Tunnel { local, remote, .. } = p.exit {
                if !is_unicast(local) || is_link_local(local) {
                    return Err(err(f("exit.local"), "must be a global unicast address"));
                }
                if !is_unicast(remote) || is_link_local(remote) {
                    return Err(err(f("exit.remote"), "must be a global unicast address"));
                }
            }
            if let Some(a) = p.address {
                if !is_unicast(a) {
                    return Err(err(f("address"), "must be a unicast address"));
                }
            }
        }
        Ok(())
    }

    /// The provider with id `id`, if configured.
    pub fn provider(&self, id: u16) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// An example configuration (two directly connected providers), used by tests, benches
    /// and as documentation of the expected shapes.
    pub fn example() -> Self {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED);
        DataplaneConfig {
            ulid_prefix: Prefix64::of(a("fc00:1:2:3::")),
            inside: InsideConfig {
                port: PortId(0),
                mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
                mtu: 1500,
                link_local: a("fe80::1"),
                global: a("fc00:1:2:3::1"),
            },
            providers: vec![
                ProviderConfig {
                    id: 1,
                    port: PortId(1),
                    mac: MacAddr([0x02, 0, 0, 0, 1, 0x01]),
                    mtu: 1500,
                    prefix: Prefix64::of(a("2001:db8:a:1::")),
                    exit: Exit::Direct {
                        next_hop: a("fe80::a"),
                    },
                    address: None,
                    up: true,
                },
                ProviderConfig {
                    id: 2,
                    port: PortId(2),
                    mac: MacAddr([0x02, 0, 0, 0, 2, 0x01]),
                    mtu: 1500,
                    prefix: Prefix64::of(a("2001:db8:b:1::")),
                    exit: Exit::Direct {
                        next_hop: a("fe80::b"),
                    },
                    address: None,
                    up: true,
                },
            ],
            punt_queue: 1024,
            inject_queue: 256,
            burst: BURST,
            worker_cores: vec![None],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn example_is_valid() {
        DataplaneConfig::example().validate().unwrap();
    }

    #[test]
    fn prefix_swap_keeps_the_iid() {
        let pu = Prefix64::of(a("fc00:1:2:3::"));
        let px = Prefix64::of(a("2001:db8:a:1::"));
        assert_eq!(pu.0, 0xfc00_0001_0002_0003);
        assert!(pu.contains(a("fc00:1:2:3:aaaa:bbbb:cccc:dddd")));
        assert!(!pu.contains(a("fc00:1:2:4::1")));
        assert!(pu.contains_bytes(&a("fc00:1:2:3::9").octets()));
        assert_eq!(
            px.with_iid_of(a("fc00:1:2:3:aaaa:bbbb:cccc:dddd")),
            a("2001:db8:a:1:aaaa:bbbb:cccc:dddd")
        );
        assert_eq!(px.to_string(), "2001:db8:a:1::/64");
        assert_eq!(
            MacAddr([2, 0, 0xab, 0, 0, 1]).to_string(),
            "02:00:ab:00:00:01"
        );
    }

    fn field_of(c: &DataplaneConfig) -> String {
        c.validate().unwrap_err().field
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = DataplaneConfig::example();
        c.ulid_prefix = Prefix64::of(a("2001:db8::"));
        assert_eq!(field_of(&c), "ulid_prefix");

        let mut c = DataplaneConfig::example();
        c.inside.mac = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(field_of(&c), "inside.mac");

        let mut c = DataplaneConfig::example();
        c.inside.link_local = a("2001:db8::1");
        assert_eq!(field_of(&c), "inside.link_local");

        let mut c = DataplaneConfig::example();
        c.providers[1].mtu = 1287;
        assert_eq!(field_of(&c), "providers[1].mtu");
        c.providers[1].mtu = 1288;
        c.validate().unwrap();
        c.providers[1].exit = Exit::Tunnel {
            local: a("2001:db8:b:1::1"),
            remote: a("2001:db8:ff::1"),
            next_hop: a("fe80::b"),
        };
        // 1288 leaves no room for the outer header.
        assert_eq!(field_of(&c), "providers[1].mtu");

        let mut c = DataplaneConfig::example();
        c.providers[1].id = 1;
        assert_eq!(field_of(&c), "providers[1].id");

        let mut c = DataplaneConfig::example();
        c.providers[0].prefix = Prefix64::of(a("fd00::"));
        assert_eq!(field_of(&c), "providers[0].prefix");

        let mut c = DataplaneConfig::example();
        c.providers[1].prefix = c.providers[0].prefix;
        assert_eq!(field_of(&c), "providers[1].prefix");

        let mut c = DataplaneConfig::example();
        c.providers[0].port = c.inside.port;
        assert_eq!(field_of(&c), "providers[0].port");

        let mut c = DataplaneConfig::example();
        c.burst = 33;
        assert_eq!(field_of(&c), "burst");

        let mut c = DataplaneConfig::example();
        c.worker_cores = vec![Some(1), Some(1)];
        assert_eq!(field_of(&c), "worker_cores[1]");

        let mut c = DataplaneConfig::example();
        c.punt_queue = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid data-plane config `punt_queue`: must be at least 1"
        );
    }
}
