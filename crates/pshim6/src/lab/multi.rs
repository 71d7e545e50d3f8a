//! The multi-proxy lab of the takeover scenarios (issue #9): each site has a primary and a
//! backup proxy behind a BIRD-run site router, and the provider routers learn from BIRD which
//! proxy holds the site's PA prefixes.
//!
//! ```text
//!            ┌─(inside)─ sN  (primary) ─┬─ rNa ─┐
//!  hN ── srN ┤                          │       ├─ core ─ …
//!            └─(inside)─ sNb (backup)  ─┴─ rNb ─┘
//!   srN ══ BGP (route reflector) ══ sN, sNb, rNa, rNb   (kernel-owned control links)
//! ```
//!
//! - **hN**: a plain host with a static CMULA (a CGA of the site key the lab computes) and
//!   srN as its default router. No DHCPv6 or DNS here: the proxies are no longer on the
//!   host's link; both proxies get the host's binding (its CGA Parameter Data Structure) as a
//!   `[[hosts]]` entry and the peer host's locators as a `[[peers]]` entry — the state the
//!   shared binding store and the DNS cache give them in a deployment.
//! - **srN** (site router): routes the hosts' link; learns `fc00::/7` (every remote CMULA)
//!   by iBGP from the proxies, with next hop the announcing proxy's inside address, and sends
//!   the hosts' traffic to the best one (local preference 900 for the primary, 800 for the
//!   backup, from the metric pshim6 gives its routes by role); reflects the proxies' PA prefixes to the provider routers. It answers ND for
//!   the hosts' CMULAs on the proxies' links (proxy NDP) so that a proxy delivers to them
//!   through it.
//! - **sN / sNb**: `pshim6 run` (same site key, same host binding, own inside and provider
//!   addresses: `fc00:N::1` / `fc00:N::2`, `2001:db8:N:X::1` / `::2`, `[announce] role`) and
//!   a BIRD announcing what it installs. Each has a kernel-owned control link to srN for BGP and BFD (100 ms × 3): a
//!   proxy box that dies silently is noticed within 300 ms.
//! - **rNX**: the provider router's site link is a bridge with both proxies' ports; the PA
//!   prefix is routed to the BGP next hop (the announcing proxy's provider address).
//!
//! pshim6 announces itself (`[announce]`, docs/routing.md): kernel routes on its TAP device
//! that the BIRD beside it learns and that vanish with the process, so a SIGKILL of
//! `pshim6 run` withdraws the primary's routes at once and the backup's win.

use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::Path;

use anyhow::{Context, Result};
use cga::SiteKey;

use super::bird::{preamble, Bird};
use super::cmd::{ip, sysctl};
use super::topology::{addr_add, ifname, ns, veth, with_prefix, Prov, Site};

/// A provider router's second site port (towards the backup proxy), a bridge member.
pub(crate) const SITE_PORT2: &str = "p6l-site2";
/// The control (BGP) link's name inside a proxy or provider router namespace.
const CTL: &str = "p6l-ctl";
/// The site router's address on its hosts' link.
const SR_LL: &str = "fe80::5";
/// The site's AS number (iBGP everywhere).
const AS: u32 = 65001;
/// The rtnetlink protocol of pshim6's announced routes (`[announce] protocol`, default).
const ANNOUNCE_PROTO: u8 = 250;
/// BFD transmit interval (ms) and detection multiplier on the control links.
const BFD_INTERVAL_MS: u64 = 100;
/// BFD detection multiplier.
const BFD_MULTIPLIER: u64 = 3;

/// A proxy's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Announces with high priority; carries the traffic while alive.
    Primary,
    /// Announces with low priority; takes over when the primary's routes go.
    Backup,
}

impl Role {
    /// Both roles.
    pub(crate) const ALL: [Role; 2] = [Role::Primary, Role::Backup];

    /// `primary` / `backup`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
        }
    }

    /// Last group of its addresses (inside `fc00:N::K`, provider `2001:db8:N:X::K`).
    fn k(self) -> u16 {
        match self {
            Role::Primary => 1,
            Role::Backup => 2,
        }
    }
}

/// The proxy's short name (`s1`, `s1b`): namespace `p6l-NAME`, logs `NAME.log`.
pub(crate) fn proxy_name(s: Site, r: Role) -> String {
    match r {
        Role::Primary => format!("s{}", s.0),
        Role::Backup => format!("s{}b", s.0),
    }
}

/// The proxy's namespace.
pub(crate) fn proxy_ns(s: Site, r: Role) -> String {
    ns(&proxy_name(s, r))
}

/// The site router's namespace.
pub(crate) fn site_router_ns(s: Site) -> String {
    ns(&format!("sr{}", s.0))
}

/// The proxy's inside address (its BGP next hop for `fc00::/7`).
pub(crate) fn inside_addr(s: Site, r: Role) -> Ipv6Addr {
    Ipv6Addr::new(0xfc00, s.0, 0, 0, 0, 0, 0, r.k())
}

/// The proxy's address on provider `p` (the BGP next hop of the PA prefix).
pub(crate) fn provider_addr(s: Site, p: Prov, r: Role) -> Ipv6Addr {
    with_prefix(s.pa_prefix(p), Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, r.k()))
}

/// The site router's interface towards a proxy's inside port.
fn sr_inside_if(r: Role) -> &'static str {
    match r {
        Role::Primary => "p6l-p",
        Role::Backup => "p6l-q",
    }
}

/// Control links of site `s`: (index, peer namespace, site router's interface name).
fn control_links(s: Site) -> Vec<(u16, String, String)> {
    vec![
        (1, proxy_ns(s, Role::Primary), "p6l-cp".into()),
        (2, proxy_ns(s, Role::Backup), "p6l-cq".into()),
        (3, s.router_ns(Prov::A), "p6l-ca".into()),
        (4, s.router_ns(Prov::B), "p6l-cb".into()),
    ]
}

/// Address `end` (1 = the site router, 2 = the peer) on control link `k` of site `s`.
fn ctl_addr(s: Site, k: u16, end: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xcc, s.0 * 16 + k, 0, 0, 0, end)
}

/// Every namespace of the multi-proxy lab, in creation order.
pub(crate) fn namespaces() -> Vec<String> {
    let mut v = vec![ns("core"), ns("ext"), ns("dns")];
    for s in Site::ALL {
        v.push(s.host_ns());
        v.push(site_router_ns(s));
        for r in Role::ALL {
            v.push(proxy_ns(s, r));
        }
        for p in Prov::ALL {
            v.push(s.router_ns(p));
        }
    }
    v
}

/// Creates the namespaces, links and static addressing, the core and the provider routers.
pub(crate) fn build() -> Result<()> {
    for n in namespaces() {
        super::cmd::run("ip", &["netns", "add", &n])?;
        ip(&n, &["link", "set", "lo", "up"])?;
        sysctl(&n, "net.ipv6.conf.all.accept_dad=0")?;
        sysctl(&n, "net.ipv6.conf.default.accept_dad=0")?;
    }
    let core = ns("core");
    for s in Site::ALL {
        let sr = site_router_ns(s);
        sysctl(&sr, "net.ipv6.conf.all.forwarding=1")?;
        sysctl(&sr, "net.ipv6.conf.all.proxy_ndp=1")?;
        veth(&s.host_ns(), ifname::HOST, &sr, "p6l-h")?;
        for r in Role::ALL {
            let pns = proxy_ns(s, r);
            // Data links: owned by the proxy (AF_PACKET, no kernel IPv6 on its side).
            veth(&sr, sr_inside_if(r), &pns, ifname::INSIDE)?;
            sysctl(
                &pns,
                &format!("net.ipv6.conf.{}.disable_ipv6=1", ifname::INSIDE),
            )?;
            for p in Prov::ALL {
                let port = match r {
                    Role::Primary => ifname::SITE_PORT,
                    Role::Backup => SITE_PORT2,
                };
                veth(&pns, &s.proxy_if(p), &s.router_ns(p), port)?;
                sysctl(
                    &pns,
                    &format!("net.ipv6.conf.{}.disable_ipv6=1", s.proxy_if(p)),
                )?;
            }
        }
        for p in Prov::ALL {
            veth(&s.router_ns(p), ifname::UPLINK, &core, &s.core_if(p))?;
        }
        for (k, peer_ns, sr_if) in control_links(s) {
            veth(&sr, &sr_if, &peer_ns, CTL)?;
            addr_add(&sr, &format!("{}/64", ctl_addr(s, k, 1)), &sr_if)?;
            addr_add(&peer_ns, &format!("{}/64", ctl_addr(s, k, 2)), CTL)?;
        }
        addr_add(&sr, &format!("{SR_LL}/64"), "p6l-h")?;
        addr_add(
            &sr,
            &format!("{}/64", with_prefix(s.ulid_prefix(), "::5".parse()?)),
            "p6l-h",
        )?;
    }
    veth(&ns("ext"), ifname::HOST, &core, "p6l-ext")?;
    veth(&ns("dns"), ifname::HOST, &core, "p6l-dns")?;
    super::routers::configure(true)?;
    Ok(())
}

/// A host's binding: its CMULA (a CGA, Sec 0, of the site key) and its CGA Parameter Data
/// Structure in hex, as `[[hosts]]` takes them.
pub(crate) fn host_binding(key: &SiteKey, s: Site) -> Result<(Ipv6Addr, String)> {
    let prefix: [u8; 8] = s.ulid_prefix().octets()[..8]
        .try_into()
        .context("a /64 prefix")?;
    let (addr, params) =
        cga::generate(key.public_key_der(), prefix, 0, &[], &mut rand::rngs::OsRng)
            .context("generating the host's CGA")?;
    Ok((addr, hex::encode(params.to_bytes())))
}

/// Configures host `s` (its CMULA, srN as default router) and the site router's proxy NDP
/// for it on both proxies' links.
pub(crate) fn configure_host(s: Site, ulid: Ipv6Addr) -> Result<()> {
    addr_add(&s.host_ns(), &format!("{ulid}/64"), ifname::HOST)?;
    ip(
        &s.host_ns(),
        &[
            "-6",
            "route",
            "add",
            "default",
            "via",
            SR_LL,
            "dev",
            ifname::HOST,
        ],
    )?;
    let sr = site_router_ns(s);
    let u = ulid.to_string();
    for r in Role::ALL {
        ip(
            &sr,
            &["-6", "neigh", "add", "proxy", &u, "dev", sr_inside_if(r)],
        )?;
    }
    Ok(())
}

/// The `pshim6 run` configuration of site `s`'s proxy in role `r`: the lab's single-proxy
/// configuration with this role's addresses, no DHCPv6/DNS/RA (the proxy is not on the
/// hosts' link), the host binding and the peer's locators.
pub(crate) fn proxy_config(
    s: Site,
    r: Role,
    key_file: &Path,
    token_file: &Path,
    host: (Ipv6Addr, &str),
    peer: (Ipv6Addr, &[Ipv6Addr]),
) -> String {
    let base = super::proxies::config_text(s, key_file, token_file);
    let mut t = String::new();
    let mut skip = false;
    for line in base.lines() {
        // Drop the services the multi-proxy lab does not use.
        if line.starts_with('[') {
            skip = line.starts_with("[inside.router_advertisements]")
                || line.starts_with("[dns]")
                || line.starts_with("[dhcp]")
                || line.starts_with("[bgp_signal]");
        }
        if skip {
            continue;
        }
        let line = line.replace(
            &format!("global = \"{}\"", s.proxy_inside()),
            &format!("global = \"{}\"", inside_addr(s, r)),
        );
        let mut line = line;
        for p in Prov::ALL {
            line = line.replace(
                &format!("address = \"{}\"", s.proxy_provider_addr(p)),
                &format!("address = \"{}\"", provider_addr(s, p, r)),
            );
        }
        t.push_str(&line);
        t.push('\n');
    }
    // pshim6 announces through kernel routes on its TAP device (docs/routing.md), which
    // the BIRD beside it learns (protocol 250, metric by role).
    // A worker silent for 1 s (the default) withdraws everything: on the lab's few shared
    // cores, four proxies' busy-polling workers at nice 10 can be starved that long, and
    // the routes would flap between primary and backup with no proxy failing.
    let _ = writeln!(
        t,
        "\n[announce]\nrole = \"{}\"\nheartbeat_timeout_ms = 5000",
        r.name()
    );
    let _ = writeln!(
        t,
        "\n[[hosts]]\nulid = \"{}\"\nparameters = \"{}\"",
        host.0, host.1
    );
    let locs: Vec<String> = peer.1.iter().map(|l| format!("\"{l}\"")).collect();
    let _ = writeln!(
        t,
        "\n[[peers]]\nulid = \"{}\"\nlocators = [{}]",
        peer.0,
        locs.join(", ")
    );
    t
}

fn bfd(iface_glob: &str) -> String {
    format!(
        "protocol bfd {{ interface \"{iface_glob}\" {{ interval {BFD_INTERVAL_MS} ms; multiplier {BFD_MULTIPLIER}; }}; }}\n"
    )
}

fn bgp_timers() -> &'static str {
    "hold time 3; keepalive time 1; connect retry time 1; bfd on;"
}

/// BIRD configuration beside site `s`'s proxy in role `r` (docs/routing.md): learns the
/// routes pshim6 installs (protocol 250; they vanish with the process, even on SIGKILL) and
/// announces them to the site router: `fc00::/7` with next hop the proxy's inside address, the
/// PA prefixes with next hop its provider addresses, local preference `1000 - metric` (the
/// role is pshim6's: primary 900, backup 800).
pub(crate) fn proxy_bird(s: Site, r: Role) -> String {
    let mut c = preamble(u8::try_from(s.0 * 10).unwrap_or(0) + u8::try_from(r.k()).unwrap_or(0));
    c.push_str(&bfd(CTL));
    let _ = writeln!(
        c,
        "protocol kernel pshim6_routes {{ ipv6 {{ import where krt_source = {ANNOUNCE_PROTO}; export none; }}; learn; scan time 1; }}"
    );
    let _ = write!(
        c,
        "filter to_site {{\n  if krt_source != {ANNOUNCE_PROTO} then reject;\n  bgp_local_pref = 1000 - krt_metric;\n  if net = fc00::/7 then {{ bgp_next_hop = {ins}; accept; }}\n",
        ins = inside_addr(s, r)
    );
    for p in Prov::ALL {
        let _ = writeln!(
            c,
            "  if net = {}/64 then {{ bgp_next_hop = {}; accept; }}",
            s.pa_prefix(p),
            provider_addr(s, p, r)
        );
    }
    c.push_str("  reject;\n}\n");
    let k = r.k();
    let _ = writeln!(
        c,
        "protocol bgp site {{ local {} as {AS}; neighbor {} as {AS}; {} ipv6 {{ import none; export filter to_site; }}; }}",
        ctl_addr(s, k, 2),
        ctl_addr(s, k, 1),
        bgp_timers()
    );
    c
}

/// BIRD configuration of site `s`'s site router: route reflector for the proxies and the
/// provider routers; installs `fc00::/7` (recursively through the proxies' inside addresses).
pub(crate) fn site_router_bird(s: Site) -> String {
    let mut c = preamble(u8::try_from(s.0 * 10).unwrap_or(0));
    c.push_str(&bfd("p6l-c*"));
    c.push_str("protocol kernel { ipv6 { import none; export where net ~ [ fc00::/7+ ]; }; }\n");
    c.push_str("protocol static nexthops { ipv6;");
    for r in Role::ALL {
        let _ = write!(
            c,
            " route {}/128 via \"{}\";",
            inside_addr(s, r),
            sr_inside_if(r)
        );
    }
    c.push_str(" }\n");
    for (k, _, _) in control_links(s) {
        // Named after the peer (`primary` is a BIRD keyword).
        let name = match k {
            1 => proxy_name(s, Role::Primary),
            2 => proxy_name(s, Role::Backup),
            3 => format!("r{}a", s.0),
            _ => format!("r{}b", s.0),
        };
        let import = if k <= 2 {
            "import all;"
        } else {
            "import none;"
        };
        let export = if k <= 2 {
            "export none;"
        } else {
            "export where net ~ [ 2001:db8::/32{64,64} ];"
        };
        let _ = writeln!(
            c,
            "protocol bgp {name} {{ local {} as {AS}; neighbor {} as {AS}; rr client; {} ipv6 {{ {import} {export} next hop keep; gateway recursive; igp table master6; }}; }}",
            ctl_addr(s, k, 1),
            ctl_addr(s, k, 2),
            bgp_timers()
        );
    }
    c
}

/// BIRD configuration of site `s`'s provider `p` router: learns the PA prefix from the site
/// router and routes it to the BGP next hop on its site bridge.
pub(crate) fn provider_bird(s: Site, p: Prov) -> String {
    let k: u16 = match p {
        Prov::A => 3,
        Prov::B => 4,
    };
    let mut c = preamble(u8::try_from(s.0 * 10 + k).unwrap_or(0));
    c.push_str(&bfd(CTL));
    let _ = writeln!(
        c,
        "protocol kernel {{ ipv6 {{ import none; export where net ~ [ {}/64+ ]; }}; }}",
        s.pa_prefix(p)
    );
    c.push_str("protocol static nexthops { ipv6;");
    for r in Role::ALL {
        let _ = write!(
            c,
            " route {}/128 via \"{}\";",
            provider_addr(s, p, r),
            ifname::BRIDGE
        );
    }
    c.push_str(" }\n");
    let _ = writeln!(
        c,
        "protocol bgp site {{ local {} as {AS}; neighbor {} as {AS}; {} ipv6 {{ import all; export none; gateway recursive; igp table master6; }}; }}",
        ctl_addr(s, k, 2),
        ctl_addr(s, k, 1),
        bgp_timers()
    );
    c
}

/// Starts every BIRD of the lab: site routers first, then provider routers and proxies.
pub(crate) fn start_birds() -> Result<Vec<Bird>> {
    let mut v = Vec::new();
    for s in Site::ALL {
        v.push(Bird::start(
            &format!("sr{}", s.0),
            &site_router_ns(s),
            &site_router_bird(s),
        )?);
        for p in Prov::ALL {
            v.push(Bird::start(
                &format!("r{}{}", s.0, p.letter()),
                &s.router_ns(p),
                &provider_bird(s, p),
            )?);
        }
        for r in Role::ALL {
            v.push(Bird::start(
                &proxy_name(s, r),
                &proxy_ns(s, r),
                &proxy_bird(s, r),
            )?);
        }
    }
    // Every session to the site routers up (connect retry 1 s).
    for b in v.iter().filter(|b| !b.name().starts_with("sr")) {
        b.wait_up("site", std::time::Duration::from_secs(20))?;
    }
    Ok(v)
}

/// The next hop of BIRD `name`'s best route for exactly `prefix` (`birdc show route PREFIX
/// primary`; the control socket answers without the kernel's RTNL lock, which `ip` waits
/// for on a loaded machine).
fn bird_via(birds: &[Bird], name: &str, prefix: &str) -> Option<Ipv6Addr> {
    let b = birds.iter().find(|b| b.name() == name)?;
    let out = b.query(&["show", "route", prefix, "primary"]).ok()?;
    parse_via(&out)
}

/// The first `via ADDR` in `birdc show route` output.
fn parse_via(text: &str) -> Option<Ipv6Addr> {
    let mut w = text.split_whitespace();
    while let Some(x) = w.next() {
        if x == "via" {
            return w.next()?.parse().ok();
        }
    }
    None
}

/// Whether the BIRD beside site `s`'s proxy in role `r` still holds the `fc00::/7` route
/// pshim6 installed (a dead BIRD holds nothing).
pub(crate) fn announced(birds: &[Bird], s: Site, r: Role) -> bool {
    birds
        .iter()
        .find(|b| b.name() == proxy_name(s, r))
        .and_then(|b| {
            b.query(&["show", "route", "fc00::/7", "protocol", "pshim6_routes"])
                .ok()
        })
        .is_some_and(|o| o.contains("fc00::/7"))
}

/// Where site `s`'s routes point: `Some(role)` when the site router's best `fc00::/7` and
/// both provider routers' best PA prefixes all go to that role's proxy.
pub(crate) fn routes_point_to(birds: &[Bird], s: Site) -> Option<Role> {
    let inside = bird_via(birds, &format!("sr{}", s.0), "fc00::/7")?;
    let r = Role::ALL
        .into_iter()
        .find(|r| inside_addr(s, *r) == inside)?;
    let all = Prov::ALL.into_iter().all(|p| {
        bird_via(
            birds,
            &format!("r{}{}", s.0, p.letter()),
            &format!("{}/64", s.pa_prefix(p)),
        ) == Some(provider_addr(s, p, r))
    });
    all.then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_next_hop_of_birdc_show_route() {
        let text = "BIRD 2.0.12 ready.\nTable master6:\nfc00::/7             unicast [s1b 19:15:01.980 from 2001:db8:cc:12::2] * (100/?) [i]\n\tvia fc00:1::2 on p6l-q\n";
        assert_eq!(parse_via(text), Some("fc00:1::2".parse().unwrap()));
        assert_eq!(parse_via("BIRD 2.0.12 ready.\nNetwork not found\n"), None);
    }

    #[test]
    fn plan_and_configs() {
        let s = Site(1);
        assert_eq!(proxy_ns(s, Role::Backup), "p6l-s1b");
        assert_eq!(site_router_ns(s), "p6l-sr1");
        assert_eq!(inside_addr(s, Role::Backup).to_string(), "fc00:1::2");
        assert_eq!(
            provider_addr(s, Prov::B, Role::Primary).to_string(),
            "2001:db8:1:b::1"
        );
        assert_eq!(ctl_addr(Site(2), 3, 1).to_string(), "2001:db8:cc:23::1");
        assert_eq!(namespaces().len(), 15);
        for n in [SITE_PORT2, CTL, "p6l-cp", "p6l-cq", "p6l-ca", "p6l-cb"] {
            assert!(n.len() <= 15);
        }
        let b = proxy_bird(s, Role::Backup);
        assert!(b.contains("import where krt_source = 250"), "{b}");
        assert!(b.contains("bgp_local_pref = 1000 - krt_metric;"), "{b}");
        assert!(b.contains("bgp_next_hop = fc00:1::2;"), "{b}");
        assert!(b.contains("bgp_next_hop = 2001:db8:1:a::2;"), "{b}");
        assert!(b.contains("neighbor 2001:db8:cc:12::1 as 65001"), "{b}");
        let p = proxy_bird(s, Role::Primary);
        assert!(p.contains("bgp_next_hop = fc00:1::1;"), "{p}");
        let sr = site_router_bird(s);
        assert_eq!(sr.matches("rr client").count(), 4, "{sr}");
        assert!(sr.contains("route fc00:1::2/128 via \"p6l-q\""), "{sr}");
        let r = provider_bird(s, Prov::A);
        assert!(
            r.contains("route 2001:db8:1:a::2/128 via \"p6l-br\""),
            "{r}"
        );
    }

    #[test]
    fn proxy_config_has_role_addresses_bindings_and_no_host_services() {
        let dir = std::env::temp_dir();
        let t = proxy_config(
            Site(1),
            Role::Backup,
            &dir.join("k.pem"),
            &dir.join("t"),
            ("fc00:1::1234".parse().unwrap(), "00ff"),
            (
                "fc00:2::99".parse().unwrap(),
                &["2001:db8:2:a::99".parse().unwrap()],
            ),
        );
        assert!(t.contains("global = \"fc00:1::2\""), "{t}");
        assert!(t.contains("address = \"2001:db8:1:a::2\""), "{t}");
        assert!(t.contains("address = \"2001:db8:1:b::2\""), "{t}");
        assert!(!t.contains("[dhcp]") && !t.contains("[dns]"), "{t}");
        assert!(!t.contains("router_advertisements"), "{t}");
        assert!(t.contains("[[hosts]]\nulid = \"fc00:1::1234\""), "{t}");
        assert!(t.contains("locators = [\"2001:db8:2:a::99\"]"), "{t}");
        assert!(t.contains("[api]") && t.contains("[engine]"), "{t}");
        assert!(t.contains("[announce]\nrole = \"backup\""), "{t}");
    }
}
