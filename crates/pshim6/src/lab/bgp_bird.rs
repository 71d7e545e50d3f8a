//! BIRD for the `bgp-withdraw` scenario (issue #9 "BGP as a failure signal"): S1's proxy
//! namespace runs a BIRD with one eBGP session to each of S1's provider routers, over a
//! kernel-owned control link of its own (the proxy's data-plane interfaces have IPv6
//! disabled). It exports the routes learned from provider X into kernel table
//! [`table_of`]`(X)`, which `pshim6 run` follows (`[bgp_signal]`). Each provider router's BIRD
//! announces site 2's PA prefixes (static protocol `peer_site`) and a few unrelated prefixes
//! (`others`, so that a withdrawal of site 2 leaves a non-empty table).
//!
//! ```text
//!  s1: bird ── p6l-bgpa ═══ p6l-bgp ── r1a: bird   (2001:db8:bb:1a::1 ↔ ::2)
//!            └ p6l-bgpb ═══ p6l-bgp ── r1b: bird   (2001:db8:bb:1b::1 ↔ ::2)
//! ```
//!
//! Started on demand by the scenario (the other scenarios run without BIRD: with empty
//! tables the proxy's BGP signal gives no verdict), stopped with the lab (every process in a
//! lab namespace is ended by `cleanup`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cleanup::{record_pid, state_dir};
use super::cmd::{exec, ip, run};
use super::topology::{addr_add, Prov, Site};

/// Kernel table of provider `p` in S1's proxy namespace.
pub(crate) fn table_of(p: Prov) -> u32 {
    100 + u32::from(p.id())
}

/// The proxy's end of the control link to `p`.
fn proxy_if(p: Prov) -> String {
    format!("p6l-bgp{}", p.letter())
}

/// The router's end (in the router's namespace).
const ROUTER_IF: &str = "p6l-bgp";

/// Control-link addresses: (proxy, router).
fn link_addrs(s: Site, p: Prov) -> (String, String) {
    let net = format!("2001:db8:bb:{}{}", s.0, p.letter());
    (format!("{net}::1"), format!("{net}::2"))
}

/// The prefixes `peer_site` announces: site 2's PA prefixes.
pub(crate) fn peer_prefixes() -> Vec<String> {
    Prov::ALL
        .iter()
        .map(|&p| format!("{}/64", Site(2).pa_prefix(p)))
        .collect()
}

/// The `[bgp_signal]` table of S1's configuration.
pub(crate) fn signal_config() -> String {
    let list: Vec<String> = Prov::ALL
        .iter()
        .map(|&p| format!("{{ id = {}, table = {} }}", p.id(), table_of(p)))
        .collect();
    format!("\n[bgp_signal]\nproviders = [{}]\n", list.join(", "))
}

fn socket(node: &str) -> String {
    state_dir()
        .join(format!("bird-{node}.ctl"))
        .to_string_lossy()
        .into_owned()
}

/// S1's proxy BIRD: one table and one kernel export per provider, eBGP to each router.
fn proxy_config(s: Site) -> String {
    let mut c = format!(
        "router id 10.255.{}.1;\nprotocol device {{ scan time 2; }}\n",
        s.0
    );
    for p in Prov::ALL {
        let (me, router) = link_addrs(s, p);
        let l = p.letter();
        let _ = write!(
            c,
            "ipv6 table prov_{l};\n\
             protocol kernel kernel_{l} {{ ipv6 {{ table prov_{l}; import none; export all; }}; \
             kernel table {table}; }}\n\
             protocol bgp bgp_{l} {{ local {me} as 64512; neighbor {router} as {asn}; \
             connect delay time 1; connect retry time 2; error wait time 1, 4; \
             ipv6 {{ table prov_{l}; import all; export none; }}; }}\n",
            table = table_of(p),
            asn = 64600 + u32::from(p.id()),
        );
    }
    c
}

/// A provider router's BIRD: announces site 2 (`peer_site`) and other prefixes.
fn router_config(s: Site, p: Prov) -> String {
    let (proxy, me) = link_addrs(s, p);
    let peer: String = peer_prefixes()
        .iter()
        .map(|n| format!(" route {n} unreachable;"))
        .collect();
    format!(
        "router id 10.255.{site}.{id};\nprotocol device {{ scan time 2; }}\n\
         protocol static peer_site {{ ipv6;{peer} }}\n\
         protocol static others {{ ipv6; route 2001:db8:e::/64 unreachable; \
         route 2001:db8:53::/64 unreachable; }}\n\
         protocol bgp proxy {{ local {me} as {asn}; neighbor {proxy} as 64512; \
         connect delay time 1; connect retry time 2; error wait time 1, 4; \
         ipv6 {{ import none; export all; }}; }}\n",
        site = s.0,
        id = 10 + u32::from(p.id()),
        asn = 64600 + u32::from(p.id()),
    )
}

/// Starts BIRD in `ns` with `config`; `node` names its files.
fn start_bird(ns: &str, node: &str, config: &str) -> Result<()> {
    let dir = state_dir();
    let conf = dir.join(format!("bird-{node}.conf"));
    let pid = dir.join(format!("bird-{node}.pid"));
    std::fs::write(&conf, config).with_context(|| format!("writing {}", conf.display()))?;
    let (conf_s, pid_s) = (conf.to_string_lossy(), pid.to_string_lossy());
    let sock = socket(node);
    exec(ns, &["bird", "-c", &conf_s, "-s", &sock, "-P", &pid_s])
        .with_context(|| format!("starting BIRD in {ns}"))?;
    let text = std::fs::read_to_string(&pid).unwrap_or_default();
    if let Ok(n) = text.trim().parse::<u32>() {
        record_pid(&format!("bird-{node}"), n, "bird")?;
    }
    Ok(())
}

/// `birdc` on `node`'s control socket.
pub(crate) fn birdc(node: &str, args: &[&str]) -> Result<String> {
    let sock = socket(node);
    let mut all = vec!["-s", sock.as_str()];
    all.extend_from_slice(args);
    run("birdc", &all)
}

/// Router node name of provider `p` of site `s` (its BIRD files and socket).
pub(crate) fn router_node(s: Site, p: Prov) -> String {
    format!("r{}{}", s.0, p.letter())
}

/// Whether the BIRDs already run (a previous `bgp-withdraw` in the same lab).
fn running() -> bool {
    birdc("s1", &["show", "status"]).is_ok_and(|t| t.contains("Daemon is up"))
}

/// Control links, the three BIRDs, then waits until both of S1's provider tables hold site
/// 2's prefixes (the sessions are up and the routes exported).
pub(crate) fn start(timeout: Duration) -> Result<()> {
    let s = Site(1);
    if !running() {
        for p in Prov::ALL {
            let r = s.router_ns(p);
            run(
                "ip",
                &[
                    "link",
                    "add",
                    &proxy_if(p),
                    "netns",
                    &s.proxy_ns(),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    ROUTER_IF,
                    "netns",
                    &r,
                ],
            )?;
            let (a, b) = link_addrs(s, p);
            addr_add(&s.proxy_ns(), &format!("{a}/64"), &proxy_if(p))?;
            addr_add(&r, &format!("{b}/64"), ROUTER_IF)?;
            ip(&s.proxy_ns(), &["link", "set", &proxy_if(p), "up"])?;
            ip(&r, &["link", "set", ROUTER_IF, "up"])?;
            start_bird(&r, &router_node(s, p), &router_config(s, p))?;
        }
        start_bird(&s.proxy_ns(), "s1", &proxy_config(s))?;
    }
    let until = Instant::now() + timeout;
    loop {
        let mut missing = Vec::new();
        for p in Prov::ALL {
            let t = table_of(p).to_string();
            // The table does not exist until BIRD puts its first route there.
            let routes =
                ip(&s.proxy_ns(), &["-6", "route", "show", "table", &t]).unwrap_or_default();
            for n in peer_prefixes() {
                if !routes.contains(n.as_str()) {
                    missing.push(format!("{n} in table {t}"));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > until {
            let status = birdc("s1", &["show", "protocols"]).unwrap_or_default();
            bail!(
                "BIRD did not export {} within {timeout:?}; s1 protocols:\n{status}",
                missing.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Provider `p` of S1 withdraws site 2's prefixes (`withdraw`) or announces them again,
/// and stops (or resumes) forwarding towards them: blackhole routes in its namespace, so
/// the path really breaks, in the direction S1 → S2 only.
pub(crate) fn set_peer_site(p: Prov, withdraw: bool) -> Result<()> {
    let s = Site(1);
    let r = s.router_ns(p);
    for n in peer_prefixes() {
        let verb = if withdraw { "add" } else { "del" };
        ip(&r, &["-6", "route", verb, "blackhole", &n])?;
    }
    let verb = if withdraw { "disable" } else { "enable" };
    let out = birdc(&router_node(s, p), &[verb, "peer_site"])?;
    if !out.contains("peer_site") {
        bail!("birdc {verb} peer_site on {r}: {out}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs() {
        assert_eq!(table_of(Prov::A), 101);
        assert_eq!(
            signal_config(),
            "\n[bgp_signal]\nproviders = [{ id = 1, table = 101 }, { id = 2, table = 102 }]\n"
        );
        let c = proxy_config(Site(1));
        assert!(c.contains("kernel table 101;") && c.contains("kernel table 102;"));
        assert!(c.contains("neighbor 2001:db8:bb:1a::2 as 64601;"));
        let r = router_config(Site(1), Prov::B);
        assert!(r.contains("route 2001:db8:2:a::/64 unreachable;"));
        assert!(r.contains("route 2001:db8:2:b::/64 unreachable;"));
        assert!(
            r.contains("local 2001:db8:bb:1b::2 as 64602; neighbor 2001:db8:bb:1b::1 as 64512;")
        );
        assert!(proxy_if(Prov::B).len() <= 15);
    }

    /// BIRD itself accepts the lab's configurations and the example in `configs/bird/`
    /// (`bird -p`: parse only). Needs BIRD (`ci/deps.sh`); fails without it.
    #[test]
    fn bird_parses_the_configs() {
        let dir = std::env::temp_dir().join(format!("p6l-bird-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/bird/bgp-signal.conf"
        );
        let mut files = vec![std::path::PathBuf::from(example)];
        for (name, text) in [
            ("proxy", proxy_config(Site(1))),
            ("ra", router_config(Site(1), Prov::A)),
            ("rb", router_config(Site(1), Prov::B)),
        ] {
            let f = dir.join(format!("{name}.conf"));
            std::fs::write(&f, text).unwrap();
            files.push(f);
        }
        for f in files {
            let out = std::process::Command::new("bird")
                .arg("-p")
                .arg("-c")
                .arg(&f)
                .output()
                .expect("run bird (package bird2: run ci/deps.sh)");
            assert!(
                out.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
