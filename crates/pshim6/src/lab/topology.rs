//! The lab's network: names, addressing plan and the namespaces and veth pairs that make it.
//!
//! ```text
//!                         ┌ r1a (provider A of S1) ┐            ┌ r2a ┐
//!  h1 ── s1 (proxy) ──────┤                        ├── core ────┤     ├── s2 (proxy) ── h2
//!                         └ r1b (provider B of S1) ┘   │  │     └ r2b ┘
//!                                                     ext dns
//! ```
//!
//! Every namespace, interface and file the lab makes carries the prefix `p6l` so that
//! `pshim6 lab --clean` finds all of it, also after a crash. Veths are created directly inside
//! their namespaces (nothing in the root namespace), so deleting the namespaces deletes them.
//!
//! Addressing (all /64): site N's ULID (CMULA) prefix is `fc00:N::/64`; its provider X
//! (`a` or `b`) assigns the PA prefix `2001:db8:N:X::/64`. The proxy's inside address is
//! `fc00:N::1` (and `fe80::1`), its own address on provider X is `2001:db8:N:X::1`. The
//! provider routers are `fe80::a` / `fe80::b` on the site links (the proxies' next hops) and
//! forward to the core over link-local addresses; the core routes every PA prefix. The legacy
//! external host is `2001:db8:e::2`, the DNS server (Knot) `2001:db8:53::53`.

use std::net::Ipv6Addr;

use anyhow::Result;

use super::cmd::{exec, ip, sysctl};

/// The prefix of everything the lab creates.
pub(crate) const PREFIX: &str = "p6l";

/// The legacy external host (no proxy, no ULID record).
pub(crate) const EXT_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe, 0, 0, 0, 0, 2);
/// The authoritative DNS server of the lab's zones.
pub(crate) const DNS_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x53, 0, 0, 0, 0, 0x53);

/// Namespace name of a lab node.
pub(crate) fn ns(node: &str) -> String {
    format!("{PREFIX}-{node}")
}

/// Interface names (each inside its own namespace, so they repeat across namespaces).
pub(crate) mod ifname {
    /// A host's (h1, h2, ext, dns) only interface.
    pub(crate) const HOST: &str = "p6l-eth";
    /// A proxy's inside interface.
    pub(crate) const INSIDE: &str = "p6l-in";
    /// A provider router's port towards the site (a bridge member).
    pub(crate) const SITE_PORT: &str = "p6l-site";
    /// A provider router's bridge carrying its address on the site link.
    pub(crate) const BRIDGE: &str = "p6l-br";
    /// A provider router's link to the core.
    pub(crate) const UPLINK: &str = "p6l-up";
}

/// One of a site's two providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prov {
    /// Provider A (id 1).
    A,
    /// Provider B (id 2).
    B,
}

impl Prov {
    /// Both providers.
    pub(crate) const ALL: [Prov; 2] = [Prov::A, Prov::B];

    /// `a` or `b`.
    pub(crate) fn letter(self) -> char {
        match self {
            Prov::A => 'a',
            Prov::B => 'b',
        }
    }

    /// The provider id in the proxy's configuration.
    pub(crate) fn id(self) -> u16 {
        match self {
            Prov::A => 1,
            Prov::B => 2,
        }
    }

    /// The provider with configuration id `id`.
    pub(crate) fn from_id(id: u16) -> Option<Prov> {
        Prov::ALL.into_iter().find(|p| p.id() == id)
    }

    fn nibble(self) -> u16 {
        match self {
            Prov::A => 0xa,
            Prov::B => 0xb,
        }
    }
}

/// One multihomed site (1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site(pub(crate) u16);

impl Site {
    /// Both sites.
    pub(crate) const ALL: [Site; 2] = [Site(1), Site(2)];

    /// Namespace of the legacy host.
    pub(crate) fn host_ns(self) -> String {
        ns(&format!("h{}", self.0))
    }

    /// Namespace of the proxy.
    pub(crate) fn proxy_ns(self) -> String {
        ns(&format!("s{}", self.0))
    }

    /// Namespace of provider `p`'s router.
    pub(crate) fn router_ns(self, p: Prov) -> String {
        ns(&format!("r{}{}", self.0, p.letter()))
    }

    /// The proxy's interface towards provider `p`.
    pub(crate) fn proxy_if(self, p: Prov) -> String {
        format!("{PREFIX}-{}", p.letter())
    }

    /// The core's interface towards provider `p`'s router.
    pub(crate) fn core_if(self, p: Prov) -> String {
        format!("{PREFIX}-{}{}", self.0, p.letter())
    }

    /// The host's name in DNS.
    pub(crate) fn host_name(self) -> String {
        format!("h{}.s{}.lab.", self.0, self.0)
    }

    /// The ULID (CMULA) /64, as its first address.
    pub(crate) fn ulid_prefix(self) -> Ipv6Addr {
        Ipv6Addr::new(0xfc00, self.0, 0, 0, 0, 0, 0, 0)
    }

    /// Provider `p`'s PA /64, as its first address.
    pub(crate) fn pa_prefix(self, p: Prov) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, self.0, p.nibble(), 0, 0, 0, 0)
    }

    /// The proxy's inside address (DNS server and DHCPv6 server of the hosts).
    pub(crate) fn proxy_inside(self) -> Ipv6Addr {
        Ipv6Addr::new(0xfc00, self.0, 0, 0, 0, 0, 0, 1)
    }

    /// The proxy's own address on provider `p`.
    pub(crate) fn proxy_provider_addr(self, p: Prov) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, self.0, p.nibble(), 0, 0, 0, 1)
    }

    /// Provider `p`'s router on the site link (the proxy's next hop).
    pub(crate) fn router_ll(self, p: Prov) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, p.nibble())
    }
}

/// `addr` with its first 64 bits replaced by `prefix`'s.
pub(crate) fn with_prefix(prefix: Ipv6Addr, addr: Ipv6Addr) -> Ipv6Addr {
    let p = prefix.to_bits() & !u128::from(u64::MAX);
    Ipv6Addr::from_bits(p | (addr.to_bits() & u128::from(u64::MAX)))
}

/// Whether `a` is a CMULA (fc00::/7).
pub(crate) fn is_cmula(a: Ipv6Addr) -> bool {
    a.octets()[0] & 0xfe == 0xfc
}

/// Every namespace of the lab, in creation order.
pub(crate) fn namespaces() -> Vec<String> {
    let mut v = vec![ns("core"), ns("ext"), ns("dns")];
    for s in Site::ALL {
        v.push(s.host_ns());
        v.push(s.proxy_ns());
        for p in Prov::ALL {
            v.push(s.router_ns(p));
        }
    }
    v
}

/// A veth pair `a` (in `ns_a`) ↔ `b` (in `ns_b`), both up, transmit checksum offload off on
/// both ends: AF_PACKET hands frames on as they are and veth never completes a partial
/// checksum, so every sender in the lab must compute its checksums in full.
pub(crate) fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<()> {
    super::cmd::run(
        "ip",
        &[
            "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ],
    )?;
    for (n, i) in [(ns_a, a), (ns_b, b)] {
        exec(n, &["ethtool", "-K", i, "tx", "off"])?;
        ip(n, &["link", "set", i, "up"])?;
    }
    Ok(())
}

/// Adds `addr/len` on `dev` without duplicate address detection.
pub(crate) fn addr_add(ns: &str, addr: &str, dev: &str) -> Result<()> {
    ip(ns, &["-6", "addr", "add", addr, "dev", dev, "nodad"]).map(drop)
}

/// Creates every namespace and link, and configures the plain hosts, the provider routers and
/// the core (see `routers`). Proxies, DNS and host addresses come later.
pub(crate) fn build() -> Result<()> {
    for n in namespaces() {
        super::cmd::run("ip", &["netns", "add", &n])?;
        ip(&n, &["link", "set", "lo", "up"])?;
        sysctl(&n, "net.ipv6.conf.all.accept_dad=0")?;
        sysctl(&n, "net.ipv6.conf.default.accept_dad=0")?;
    }
    let core = ns("core");
    for s in Site::ALL {
        // Host ↔ proxy inside; the proxy owns its interfaces (no kernel IPv6 on them).
        veth(&s.host_ns(), ifname::HOST, &s.proxy_ns(), ifname::INSIDE)?;
        sysctl(
            &s.proxy_ns(),
            &format!("net.ipv6.conf.{}.disable_ipv6=1", ifname::INSIDE),
        )?;
        for p in Prov::ALL {
            let r = s.router_ns(p);
            veth(&s.proxy_ns(), &s.proxy_if(p), &r, ifname::SITE_PORT)?;
            sysctl(
                &s.proxy_ns(),
                &format!("net.ipv6.conf.{}.disable_ipv6=1", s.proxy_if(p)),
            )?;
            veth(&r, ifname::UPLINK, &core, &s.core_if(p))?;
        }
    }
    veth(&ns("ext"), ifname::HOST, &core, "p6l-ext")?;
    veth(&ns("dns"), ifname::HOST, &core, "p6l-dns")?;
    super::routers::configure(false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan() {
        let s = Site(1);
        assert_eq!(s.pa_prefix(Prov::B).to_string(), "2001:db8:1:b::");
        assert_eq!(s.ulid_prefix().to_string(), "fc00:1::");
        assert_eq!(s.router_ns(Prov::A), "p6l-r1a");
        assert_eq!(s.core_if(Prov::B), "p6l-1b");
        let h: Ipv6Addr = "fc00:1::1234:5678:9abc:def0".parse().unwrap();
        assert_eq!(
            with_prefix(s.pa_prefix(Prov::A), h).to_string(),
            "2001:db8:1:a:1234:5678:9abc:def0"
        );
        assert!(is_cmula(h) && !is_cmula(with_prefix(s.pa_prefix(Prov::A), h)));
        assert_eq!(namespaces().len(), 11);
        assert!(namespaces().iter().all(|n| n.starts_with("p6l-")));
        // IFNAMSIZ: 15 characters at most.
        for n in [
            ifname::SITE_PORT,
            ifname::BRIDGE,
            "p6l-ext",
            &s.core_if(Prov::A),
        ] {
            assert!(n.len() <= 15);
        }
        assert_eq!(Prov::from_id(2), Some(Prov::B));
    }
}
