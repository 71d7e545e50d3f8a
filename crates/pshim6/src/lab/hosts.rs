//! The legacy hosts' own configuration, as a plain Linux host gets it on a site behind the
//! proxy: the default router from the proxy's Router Advertisements (the kernel's own RA
//! handling; M = 1, A = 0, so no SLAAC), and the CMULA plus the DNS server from the proxy's
//! DHCPv6 server through the real `dhcpcd` (RFC 8415).
//!
//! dhcpcd runs in test mode (`-T`: it does the whole exchange and prints what it would
//! configure) and the lab adds the address itself: a dhcpcd daemon would run hooks that
//! rewrite the machine's shared `/etc/resolv.conf`, which network namespaces do not separate.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::cleanup::state_dir;
use super::cmd::{exec, ip};
use super::topology::{addr_add, ifname, Site};

/// What a host got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Its CMULA (ULID).
    pub(crate) ulid: Ipv6Addr,
    /// The DNS server DHCPv6 named (the proxy's inside address).
    pub(crate) dns: Ipv6Addr,
}

/// dhcpcd's `-T` output (`name='value'` lines) as a map.
pub(crate) fn parse_vars(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect()
}

/// Runs dhcpcd on site `s`'s host and configures the address it got.
pub(crate) fn dhcp(s: Site) -> Result<Lease> {
    let conf = state_dir().join(format!("dhcpcd-h{}.conf", s.0));
    std::fs::write(
        &conf,
        format!(
            "duid 00:03:00:01:02:00:00:00:00:{:02x}\nia_na 1\nnoipv6rs\noption dhcp6_name_servers\n",
            s.0
        ),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    let out = exec(
        &s.host_ns(),
        &[
            "dhcpcd",
            "-T",
            "-6",
            "-t",
            "20",
            "-f",
            &conf.to_string_lossy(),
            ifname::HOST,
        ],
    )
    .context("dhcpcd (package dhcpcd-base)")?;
    let vars = parse_vars(&out);
    let ulid: Ipv6Addr = vars
        .get("new_dhcp6_ia_na1_ia_addr1")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow!("dhcpcd on h{} got no address:\n{out}", s.0))?;
    let dns: Ipv6Addr = vars
        .get("new_dhcp6_name_servers")
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow!("dhcpcd on h{} got no DNS server:\n{out}", s.0))?;
    addr_add(&s.host_ns(), &format!("{ulid}/64"), ifname::HOST)?;
    Ok(Lease { ulid, dns })
}

/// Waits until site `s`'s host learnt a default router from a Router Advertisement; returns
/// the router's address.
pub(crate) fn wait_default_route(s: Site, timeout: Duration) -> Result<Ipv6Addr> {
    let until = Instant::now() + timeout;
    loop {
        let text = ip(&s.host_ns(), &["-6", "route", "show", "default"])?;
        // "default via fe80::1 dev p6l-eth proto ra metric 1024 expires 1799sec ..."
        if let Some(r) = text
            .split_whitespace()
            .skip_while(|w| *w != "via")
            .nth(1)
            .and_then(|a| a.parse().ok())
        {
            return Ok(r);
        }
        if Instant::now() > until {
            bail!("h{} got no Router Advertisement within {timeout:?}", s.0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dhcpcd_test_output() {
        let v = parse_vars(
            "interface='p6l-eth'\nnew_dhcp6_ia_na1_ia_addr1='fc00:1::5'\nnew_dhcp6_name_servers='fc00:1::1'\n",
        );
        assert_eq!(v["new_dhcp6_ia_na1_ia_addr1"], "fc00:1::5");
        assert_eq!(v["new_dhcp6_name_servers"], "fc00:1::1");
    }
}
