//! The provider routers, the core router and the plain hosts around them (external host, DNS
//! server), the providers' ingress filters (nftables, with counters) and the link cuts.
//!
//! A provider router has its address on a bridge whose only member is the port towards the
//! site. Cutting the link "at the provider side" disables that bridge port: the proxy's own
//! interface keeps its carrier and sees nothing, so it can learn of the failure only through
//! REAP ([RFC 5534 §3](https://www.rfc-editor.org/rfc/rfc5534#section-3)), as with a fibre cut
//! behind the provider's switch.
//!
//! Ingress filtering ([BCP 38], as every provider applies it): a packet forwarded from the
//! site link whose source is not in the provider's PA prefix is dropped and counted. A proxy
//! that sent a context's packets out of the wrong provider, or leaked a CMULA, shows up here.
//!
//! [BCP 38]: https://www.rfc-editor.org/rfc/rfc2827

use anyhow::{anyhow, Context, Result};

use super::cmd::{exec, ip, run, sysctl};
use super::topology::{addr_add, ifname, ns, Prov, Site, DNS_ADDR, EXT_ADDR};

/// The core's address on each of its links.
const CORE_LL: &str = "fe80::c";
/// A provider router's address on its uplink.
const ROUTER_UP_LL: &str = "fe80::2";

/// Routes and addresses of the core, the provider routers, the external host and the DNS
/// server; the providers' ingress filters. `multi`: the multi-proxy lab (`multi`), where a
/// provider router's site link is shared by a site's primary and backup proxies and the PA
/// prefix is routed to whichever announces it (BIRD), not on-link.
pub(crate) fn configure(multi: bool) -> Result<()> {
    let core = ns("core");
    sysctl(&core, "net.ipv6.conf.all.forwarding=1")?;
    for s in Site::ALL {
        for p in Prov::ALL {
            let ci = s.core_if(p);
            addr_add(&core, &format!("{CORE_LL}/64"), &ci)?;
            let pa = format!("{}/64", s.pa_prefix(p));
            ip(
                &core,
                &["-6", "route", "add", &pa, "via", ROUTER_UP_LL, "dev", &ci],
            )?;
            provider_router(s, p, multi)?;
        }
    }
    for (node, dev, addr, net) in [
        ("ext", "p6l-ext", EXT_ADDR, "2001:db8:e::/64"),
        ("dns", "p6l-dns", DNS_ADDR, "2001:db8:53::/64"),
    ] {
        addr_add(&core, &format!("{CORE_LL}/64"), dev)?;
        ip(&core, &["-6", "route", "add", net, "dev", dev])?;
        let n = ns(node);
        addr_add(&n, &format!("{addr}/64"), ifname::HOST)?;
        ip(
            &n,
            &[
                "-6",
                "route",
                "add",
                "default",
                "via",
                CORE_LL,
                "dev",
                ifname::HOST,
            ],
        )?;
    }
    Ok(())
}

fn provider_router(s: Site, p: Prov, multi: bool) -> Result<()> {
    let r = s.router_ns(p);
    sysctl(&r, "net.ipv6.conf.all.forwarding=1")?;
    // No MLD snooping: the proxy sends no MLD reports, its ND must still get through.
    ip(
        &r,
        &[
            "link",
            "add",
            ifname::BRIDGE,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    )?;
    ip(
        &r,
        &["link", "set", ifname::SITE_PORT, "master", ifname::BRIDGE],
    )?;
    if multi {
        ip(
            &r,
            &[
                "link",
                "set",
                super::multi::SITE_PORT2,
                "master",
                ifname::BRIDGE,
            ],
        )?;
    }
    ip(&r, &["link", "set", ifname::BRIDGE, "up"])?;
    addr_add(&r, &format!("{}/64", s.router_ll(p)), ifname::BRIDGE)?;
    let pa = format!("{}/64", s.pa_prefix(p));
    if !multi {
        // The PA prefix is on the site link: the router resolves the hosts' locators by ND,
        // which the proxy answers.
        ip(&r, &["-6", "route", "add", &pa, "dev", ifname::BRIDGE])?;
    }
    addr_add(&r, &format!("{ROUTER_UP_LL}/64"), ifname::UPLINK)?;
    ip(
        &r,
        &[
            "-6",
            "route",
            "add",
            "default",
            "via",
            CORE_LL,
            "dev",
            ifname::UPLINK,
        ],
    )?;
    let rules = format!(
        "table inet p6l {{\n  chain ingress {{\n    type filter hook forward priority 0; policy accept;\n    \
         iifname \"{br}\" ip6 saddr != {pa} counter drop\n  }}\n}}\n",
        br = ifname::BRIDGE
    );
    nft_load(&r, &rules)
}

fn nft_load(ns: &str, rules: &str) -> Result<()> {
    let dir = super::cleanup::state_dir();
    let file = dir.join(format!("{ns}.nft"));
    std::fs::write(&file, rules).with_context(|| format!("writing {}", file.display()))?;
    exec(ns, &["nft", "-f", &file.to_string_lossy()]).map(drop)
}

/// Packets provider `p` of site `s` dropped by ingress filtering so far.
pub(crate) fn ingress_drops(s: Site, p: Prov) -> Result<u64> {
    let text = exec(
        &s.router_ns(p),
        &["nft", "list", "chain", "inet", "p6l", "ingress"],
    )?;
    parse_drops(&text).ok_or_else(|| {
        anyhow!(
            "no counter in the ingress chain of {}:\n{text}",
            s.router_ns(p)
        )
    })
}

/// The drop counter in `nft list chain` output.
pub(crate) fn parse_drops(text: &str) -> Option<u64> {
    let rest = text.split("counter packets ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Drops on every provider of both sites.
pub(crate) fn all_ingress_drops() -> Result<u64> {
    let mut n = 0;
    for s in Site::ALL {
        for p in Prov::ALL {
            n += ingress_drops(s, p)?;
        }
    }
    Ok(n)
}

/// Cuts (or restores) the link between site `s` and provider `p` at the provider's side:
/// the bridge port is disabled (forwarding), the proxy's carrier stays up.
pub(crate) fn provider_side_link(s: Site, p: Prov, up: bool) -> Result<()> {
    let state = if up { "3" } else { "0" };
    run(
        "bridge",
        &[
            "-n",
            &s.router_ns(p),
            "link",
            "set",
            "dev",
            ifname::SITE_PORT,
            "state",
            state,
        ],
    )
    .map(drop)
}

/// Takes the proxy's own interface towards `p` down (or up): a local link event.
pub(crate) fn proxy_side_link(s: Site, p: Prov, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    ip(&s.proxy_ns(), &["link", "set", &s.proxy_if(p), state]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_drop_counter() {
        let text = "table inet p6l {\n\tchain ingress {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname \"p6l-br\" ip6 saddr != 2001:db8:1:a::/64 counter packets 17 bytes 1200 drop\n\t}\n}\n";
        assert_eq!(parse_drops(text), Some(17));
        assert_eq!(parse_drops("table inet p6l {}"), None);
    }
}
