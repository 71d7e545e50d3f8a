//! `pshim6 lab`: two multihomed sites of unmodified Linux hosts in network namespaces, each
//! behind a `pshim6 run` proxy with two providers, a core, Knot for the sites' zones and a
//! legacy external host; then scenarios with live TCP across provider failures (issue #7).
//!
//! One concern per file: `topology` (names, namespaces, veths), `routers` (provider and core
//! routers, ingress filters, cuts), `dns` (Knot and the zones), `proxies` (configurations and
//! `pshim6 run` children), `traffic` (the TCP stream tool), `capture` (provider-link captures),
//! `timeline` (the live log), `report` (JSON and checks), `scenarios`, `drain` (the operator
//! API's drain, through `api_client`), `cleanup`, `bird` (BIRD 2 daemons in namespaces),
//! `multi` (the multi-proxy lab: a primary and a backup proxy per site behind a BIRD-run
//! site router) and `takeover` (its scenarios).

mod api_client;
mod bgp_bird;
mod bgp_withdraw;
mod bird;
mod capture;
mod cleanup;
mod cmd;
mod dns;
mod drain;
mod hosts;
mod multi;
mod proxies;
mod report;
mod routers;
mod scenarios;
mod takeover;
mod timeline;
mod topology;
pub(crate) mod traffic;

use std::io::Write;
use std::net::Ipv6Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::Args;

use proxies::Proxy;
use report::ScenarioReport;
use timeline::Timeline;
use topology::{Site, EXT_ADDR};

/// Arguments of `pshim6 lab`.
#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    /// `failover`, `local-down`, `natv6`, `drain`, or `all` (each in turn); `bgp-withdraw`
    /// (runs BIRD; not part of `all`); or `takeover`, `takeover-remote`, or `takeover-all`
    /// (both) on the multi-proxy lab.
    #[arg(long, default_value = "all")]
    pub(crate) scenario: String,
    /// Leave the lab running afterwards and print how to enter each namespace.
    #[arg(long)]
    pub(crate) keep: bool,
    /// Print one JSON object per scenario on stdout (the timeline stays on stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Remove everything a previous lab left (namespaces, veths, processes) and exit.
    #[arg(long)]
    pub(crate) clean: bool,
}

const SCENARIOS: [&str; 4] = ["failover", "local-down", "natv6", "drain"];
/// The BGP-signal scenario (issue #9): it starts BIRD, so `all` leaves it out.
const BGP_WITHDRAW: &str = "bgp-withdraw";
/// Scenarios of the multi-proxy lab (its own topology; not part of `all`).
const MULTI_SCENARIOS: [&str; 2] = ["takeover", "takeover-remote"];

/// A built lab. Dropping it tears everything down.
pub(crate) struct Lab {
    timeline: Arc<Timeline>,
    proxies: Vec<Proxy>,
    birds: Vec<bird::Bird>,
    knot: Option<dns::Knot>,
    leases: Vec<hosts::Lease>,
    interrupted: Arc<AtomicBool>,
    resolution: Mutex<Option<(String, Vec<String>)>>,
}

impl Lab {
    /// Site `s`'s host ULID.
    pub(crate) fn ulid(&self, s: Site) -> Ipv6Addr {
        self.leases
            .get(usize::from(s.0 - 1))
            .map_or(Ipv6Addr::UNSPECIFIED, |l| l.ulid)
    }

    /// Fails once Ctrl-C (or SIGTERM) was received.
    pub(crate) fn check_interrupted(&self) -> Result<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// What the last name resolution gave.
    pub(crate) fn last_resolution(&self) -> Option<(String, Vec<String>)> {
        self.resolution.lock().ok().and_then(|r| r.clone())
    }

    /// Resolves `name` (AAAA) from `from`'s host through its DNS server (the proxy's ALG);
    /// notes and remembers the answer.
    fn resolve(&self, from: Site, name: &str) -> Result<Vec<Ipv6Addr>> {
        let server = self
            .leases
            .get(usize::from(from.0 - 1))
            .map_or(Ipv6Addr::UNSPECIFIED, |l| l.dns);
        let got = dns::resolve(&from.host_ns(), server, name)?;
        let text: Vec<String> = got.iter().map(ToString::to_string).collect();
        self.timeline.note(
            &format!("h{}", from.0),
            &format!("resolved {name} through {server}: {}", text.join(", ")),
        );
        if let Ok(mut r) = self.resolution.lock() {
            *r = Some((name.to_string(), text));
        }
        Ok(got)
    }

    /// `from`'s host resolves `to`'s host by name: the ALG must answer its ULID (and learn
    /// its locators from the ULID record).
    pub(crate) fn resolve_peer(&self, from: Site, to: Site) -> Result<Ipv6Addr> {
        let want = self.ulid(to);
        let got = self.resolve(from, &to.host_name())?;
        if got != [want] {
            bail!(
                "{} resolved to {got:?}, not to its ULID {want}",
                to.host_name()
            );
        }
        Ok(want)
    }

    /// `from`'s host resolves the external host (no ULID record: its plain address).
    pub(crate) fn resolve_ext(&self, from: Site) -> Result<Ipv6Addr> {
        let got = self.resolve(from, dns::EXT_NAME)?;
        if got != [EXT_ADDR] {
            bail!("{} resolved to {got:?}, not to {EXT_ADDR}", dns::EXT_NAME);
        }
        Ok(EXT_ADDR)
    }

    fn build(timeline: Arc<Timeline>, interrupted: Arc<AtomicBool>) -> Result<Self> {
        let mut lab = Self {
            timeline,
            proxies: Vec::new(),
            birds: Vec::new(),
            knot: None,
            leases: Vec::new(),
            interrupted,
            resolution: Mutex::new(None),
        };
        let tl = Arc::clone(&lab.timeline);
        topology::build()?;
        tl.note(
            "lab",
            "namespaces, links, provider routers (ingress filters) and core up",
        );
        for s in Site::ALL {
            lab.check_interrupted()?;
            let (_, key_file) = proxies::site_key(s)?;
            let p = Proxy::start(s, &key_file, &tl)?;
            lab.proxies.push(p);
        }
        for s in Site::ALL {
            lab.check_interrupted()?;
            let lease = hosts::dhcp(s)?;
            tl.note(
                &format!("h{}", s.0),
                &format!(
                    "got its CMULA {} and DNS server {} by DHCPv6 (dhcpcd)",
                    lease.ulid, lease.dns
                ),
            );
            lab.leases.push(lease);
        }
        for s in Site::ALL {
            // Unsolicited RAs come every 4 s; the rest is room for a slow, loaded kernel.
            let r = hosts::wait_default_route(s, std::time::Duration::from_secs(45))?;
            tl.note(
                &format!("h{}", s.0),
                &format!("default router {r} from a Router Advertisement"),
            );
        }
        let hosts: Vec<(Site, Ipv6Addr)> = Site::ALL.iter().map(|s| (*s, lab.ulid(*s))).collect();
        lab.knot = Some(dns::Knot::start(&dns::zones(&hosts)?)?);
        tl.note(
            "dns",
            "Knot serves lab. (AAAA = locators, ULID record, PTR) and ext.lab. (AAAA only)",
        );
        Ok(lab)
    }

    /// The multi-proxy lab (`multi`): a primary and a backup proxy per site, BIRD on the
    /// site routers, the provider routers and beside each proxy.
    fn build_multi(timeline: Arc<Timeline>, interrupted: Arc<AtomicBool>) -> Result<Self> {
        let mut lab = Self {
            timeline,
            proxies: Vec::new(),
            birds: Vec::new(),
            knot: None,
            leases: Vec::new(),
            interrupted,
            resolution: Mutex::new(None),
        };
        let tl = Arc::clone(&lab.timeline);
        multi::build()?;
        tl.note(
            "lab",
            "multi-proxy lab: namespaces, links, site routers, provider routers and core up",
        );
        let mut keys = Vec::new();
        let mut bindings = Vec::new();
        for s in Site::ALL {
            let (key, file) = proxies::site_key(s)?;
            let (ulid, params) = multi::host_binding(&key, s)?;
            multi::configure_host(s, ulid)?;
            tl.note(
                &format!("h{}", s.0),
                &format!(
                    "CMULA {ulid} (a CGA of site {}'s key), default router sr{}",
                    s.0, s.0
                ),
            );
            lab.leases.push(hosts::Lease {
                ulid,
                dns: Ipv6Addr::UNSPECIFIED,
            });
            keys.push(file);
            bindings.push((ulid, params));
        }
        lab.birds = multi::start_birds()?;
        tl.note(
            "lab",
            "BIRD runs on the site routers, provider routers and proxies",
        );
        for (i, s) in Site::ALL.into_iter().enumerate() {
            let peer = Site::ALL[1 - i];
            let (peer_ulid, _) = bindings[1 - i];
            let peer_locs: Vec<Ipv6Addr> = topology::Prov::ALL
                .iter()
                .map(|p| topology::with_prefix(peer.pa_prefix(*p), peer_ulid))
                .collect();
            let token = api_client::write_token(s)?;
            for r in multi::Role::ALL {
                lab.check_interrupted()?;
                let text = multi::proxy_config(
                    s,
                    r,
                    &keys[i],
                    &token,
                    (bindings[i].0, &bindings[i].1),
                    (peer_ulid, &peer_locs),
                );
                let p = Proxy::spawn(&multi::proxy_name(s, r), &multi::proxy_ns(s, r), &text, &tl)?;
                lab.proxies.push(p);
            }
        }
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // Every proxy announces (its API is up by then), the primaries' routes win.
        for s in Site::ALL {
            for r in multi::Role::ALL {
                while !multi::announced(&lab.birds, s, r) {
                    lab.check_interrupted()?;
                    if std::time::Instant::now() > until {
                        bail!("{} never announced its routes", multi::proxy_name(s, r));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
        for s in Site::ALL {
            while multi::routes_point_to(&lab.birds, s) != Some(multi::Role::Primary) {
                lab.check_interrupted()?;
                if std::time::Instant::now() > until {
                    let logs: Vec<String> = lab
                        .birds
                        .iter()
                        .map(|b| format!("{}: {:?}", b.name(), b.protocols()))
                        .collect();
                    bail!(
                        "site {}'s routes never pointed to its primary; BIRD protocols:\n{}",
                        s.0,
                        logs.join("\n")
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            tl.note(
                &format!("sr{}", s.0),
                &format!("routes of site {} point to its primary (BGP)", s.0),
            );
        }
        Ok(lab)
    }

    /// Kills site `s`'s proxy in role `r` (`pshim6 run`) with SIGKILL; its pid. It is reaped
    /// when the lab stops. Its BIRD stays: the routes go with the process's TAP device.
    pub(crate) fn kill_proxy(&self, s: Site, r: multi::Role) -> Result<u32> {
        let name = multi::proxy_name(s, r);
        let Some(pid) = self
            .proxies
            .iter()
            .find(|p| p.name() == name)
            .map(Proxy::pid)
        else {
            bail!("no proxy {name} to kill");
        };
        let p = libc::pid_t::try_from(pid).context("a pid")?;
        // SAFETY: kill(2) on a child of ours that has not been reaped; no memory involved.
        unsafe { libc::kill(p, libc::SIGKILL) };
        Ok(pid)
    }

    /// Stops the proxies (their context dumps reach the timeline), BIRD and Knot.
    fn stop_services(&mut self) {
        for p in &mut self.proxies {
            let _ = p.stop();
        }
        self.proxies.clear();
        self.birds.clear();
        self.knot = None;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_services();
        let _ = cleanup::clean();
    }
}

fn print_keep_help() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "The lab keeps running. Enter a namespace with:");
    for n in cleanup::existing_namespaces() {
        let _ = writeln!(out, "  ip netns exec {n} bash");
    }
    let _ = writeln!(
        out,
        "Files (configurations, logs, captures): {}\nRemove it all with: pshim6 lab --clean",
        cleanup::state_dir().display()
    );
}

/// `pshim6 lab`.
pub(crate) fn main(args: &LabArgs) -> Result<ExitCode> {
    if !cmd::is_root() {
        bail!(
            "pshim6 lab needs root (network namespaces, veth pairs, AF_PACKET): run it with sudo"
        );
    }
    if args.clean {
        let done = cleanup::clean();
        // A closed stdout (e.g. `| head`) must not stop the report half-way with a panic.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "pshim6 lab --clean: removed {} item(s)", done.len());
        for d in done {
            let _ = writeln!(out, "  {d}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let wanted: Vec<&str> = match args.scenario.as_str() {
        "all" => SCENARIOS.to_vec(),
        "takeover-all" => MULTI_SCENARIOS.to_vec(),
        s if SCENARIOS.contains(&s) || MULTI_SCENARIOS.contains(&s) || s == BGP_WITHDRAW => {
            vec![s]
        }
        other => bail!(
            "--scenario {other}: expected failover, local-down, natv6, drain, all, {BGP_WITHDRAW}, \
             takeover, takeover-remote or takeover-all"
        ),
    };
    let multi = wanted.iter().all(|w| MULTI_SCENARIOS.contains(w));
    cmd::require_tools()?;
    let left = cleanup::leftovers();
    if !left.is_empty() {
        bail!(
            "a lab is running or was left behind ({}): run `pshim6 lab --clean` first",
            left.join(", ")
        );
    }
    let dir = cleanup::state_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("installing the signal handlers")?;
    }
    let timeline = Arc::new(Timeline::new());
    // The multi-proxy scenarios each kill a proxy: every one gets a fresh lab.
    let groups: Vec<Vec<&str>> = if multi {
        wanted.iter().map(|w| vec![*w]).collect()
    } else {
        vec![wanted]
    };
    let last = groups.len().saturating_sub(1);
    let mut all_ok = true;
    for (g, group) in groups.into_iter().enumerate() {
        if g > 0 {
            let left = cleanup::leftovers();
            if !left.is_empty() {
                bail!("the previous lab left {}", left.join(", "));
            }
        }
        let lab = if multi {
            Lab::build_multi(Arc::clone(&timeline), Arc::clone(&interrupted))
        } else {
            Lab::build(Arc::clone(&timeline), Arc::clone(&interrupted))
        };
        let lab = match lab {
            Ok(l) => l,
            Err(e) => {
                let _ = cleanup::clean();
                return Err(e);
            }
        };
        for name in group {
            let r: Result<ScenarioReport> = match name {
                "failover" => scenarios::failover(&lab, false),
                "local-down" => scenarios::failover(&lab, true),
                "drain" => drain::drain(&lab),
                "takeover" => takeover::takeover(&lab, Site(1)),
                "takeover-remote" => takeover::takeover(&lab, Site(2)),
                BGP_WITHDRAW => bgp_withdraw::bgp_withdraw(&lab),
                _ => scenarios::natv6(&lab),
            };
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    lab.check_interrupted()?;
                    ScenarioReport {
                        scenario: name.into(),
                        problems: vec![format!("{e:#}")],
                        ..ScenarioReport::default()
                    }
                }
            };
            all_ok &= r.ok();
            let mut out = std::io::stdout().lock();
            if args.json {
                writeln!(out, "{}", r.to_json())?;
            } else {
                writeln!(out, "{}", r.summary())?;
            }
            out.flush()?;
        }
        if args.keep && g == last {
            print_keep_help();
            // Leave every process and namespace as it is.
            std::mem::forget(lab);
        } else {
            drop(lab);
            timeline.note("lab", "torn down");
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
