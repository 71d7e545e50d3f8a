//! The two proxies: site keys, the `pshim6 run` configuration the lab writes for each, and
//! the `pshim6 run` child processes (this very binary, `std::env::current_exe()`), whose
//! `pshim6-event` lines feed the timeline.
//!
//! REAP timers are shortened from the RFC defaults ([RFC 5534 §7]: 15 s Send Timeout) so a
//! lab run stays well under a minute; [`reap_bound`] is the failover bound they imply.
//!
//! [RFC 5534 §7]: https://www.rfc-editor.org/rfc/rfc5534#section-7

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cga::SiteKey;

use super::cleanup::{forget_pid, record_pid, state_dir, terminate};
use super::cmd::command_in;
use super::timeline::Timeline;
use super::topology::{ifname, Prov, Site, DNS_ADDR};

/// REAP Send Timeout of the lab's proxies.
pub(crate) const SEND_TIMEOUT_MS: u64 = 1000;
/// REAP Keepalive Timeout announced by the lab's proxies.
pub(crate) const KEEPALIVE_TIMEOUT_MS: u64 = 1000;
/// REAP Initial Probe Timeout of the lab's proxies.
pub(crate) const INITIAL_PROBE_MS: u64 = 200;

/// The REAP failover bound of the lab's timers: Send Timeout + the initial probe rounds
/// (`reap::failover_bound`).
pub(crate) fn reap_bound() -> Duration {
    let c = reap::ReapConfig {
        send_timeout: Duration::from_millis(SEND_TIMEOUT_MS),
        default_keepalive_timeout: Duration::from_millis(KEEPALIVE_TIMEOUT_MS),
        initial_probe_timeout: Duration::from_millis(INITIAL_PROBE_MS),
        ..reap::ReapConfig::default()
    };
    reap::failover_bound(&c)
}

/// Generates site `s`'s key (1024 bits: the lab's handshakes sign with it, and a smaller key
/// keeps start-up fast) and writes it next to the configuration.
pub(crate) fn site_key(s: Site) -> Result<(SiteKey, PathBuf)> {
    let key = SiteKey::generate(1024, &mut rand::rngs::OsRng).context("generating a site key")?;
    let path = state_dir().join(format!("s{}.pem", s.0));
    fs::write(&path, key.to_pkcs8_pem()?).with_context(|| format!("writing {}", path.display()))?;
    // `pshim6 run` refuses a private key others can read.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))?;
    Ok((key, path))
}

/// The `pshim6 run` configuration of site `s`'s proxy.
///
/// The hosts get their CMULA from the proxy's DHCPv6 server (`[dhcp]`) and use its DNS ALG
/// (`[dns]`, upstream Knot reached from the provider addresses); the peers' locators come from
/// DNS at run time, so no host or peer is configured statically.
pub(crate) fn config_text(s: Site, key_file: &Path, token_file: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Written by `pshim6 lab` for site {}.", s.0);
    let _ = writeln!(t, "backend = \"afpacket\"");
    let _ = writeln!(t, "ulid_prefix = \"{}/64\"", s.ulid_prefix());
    let _ = writeln!(t, "site_key = \"{}\"", key_file.display());
    let _ = writeln!(t, "workers = 1\nbuffers = 4096\ntable_capacity = 1024");
    let _ = writeln!(
        t,
        "\n[inside]\ninterface = \"{}\"\nmtu = 1500\nlink_local = \"fe80::1\"\nglobal = \"{}\"",
        ifname::INSIDE,
        s.proxy_inside()
    );
    let _ = writeln!(
        t,
        "\n[inside.router_advertisements]\ninterval_secs = 4\nmanaged = true\nother = true\n\
         autonomous = false\nrouter_lifetime = 1800\nmtu = 1492"
    );
    for p in Prov::ALL {
        let _ = writeln!(
            t,
            "\n[[providers]]\nid = {}\ninterface = \"{}\"\nmtu = 1500\nprefix = \"{}/64\"\n\
             address = \"{}\"\nexit = {{ next_hop = \"{}\" }}",
            p.id(),
            s.proxy_if(p),
            s.pa_prefix(p),
            s.proxy_provider_addr(p),
            s.router_ll(p)
        );
    }
    let _ = writeln!(
        t,
        "\n[dns]\nupstream = [\"[{DNS_ADDR}]:53\"]\nupstream_timeout_ms = 1000\n\n\
         [dhcp]\njournal = \"s{}.leases\"",
        s.0
    );
    let _ = writeln!(
        t,
        "\n[engine]\ni1_timeout_ms = 500\nreap_send_timeout_ms = {SEND_TIMEOUT_MS}\n\
         reap_keepalive_timeout_ms = {KEEPALIVE_TIMEOUT_MS}\n\
         reap_initial_probe_timeout_ms = {INITIAL_PROBE_MS}\nreap_max_probe_timeout_ms = 2000"
    );
    // The operator API on the namespace's loopback (the `drain` scenario drives it).
    let _ = writeln!(
        t,
        "\n[api]\nlisten = \"{}\"\ntoken_file = \"{}\"",
        super::api_client::LISTEN,
        token_file.display()
    );
    let _ = writeln!(
        t,
        "\n[afpacket]\nrx_frames = 1024\ntx_frames = 512\npromiscuous = true"
    );
    if s == Site(1) {
        // BGP failure signal (`bgp-withdraw`): the tables S1's BIRD fills when it runs.
        t.push_str(&super::bgp_bird::signal_config());
    }
    t
}

/// The text of a `pshim6 run` services timeline line (`pshim6: [   1.234s] host bound: …`),
/// except the context lines the lab shows from the event lines instead.
fn services_line(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pshim6: [")?;
    let (_, text) = rest.split_once("s] ")?;
    (!text.starts_with("context ")).then_some(text)
}

/// Nice value of the proxies' busy-polling workers in the lab.
///
/// Why: the lab runs two appliances, their hosts, routers and tools on a machine's few shared
/// cores. An appliance's workers own their cores and spin on them; here two spinning workers
/// at the default priority would take the cores from the slow paths (whose REAP timers the
/// failover bound counts on) and from the kernel forwarding for the routers and hosts. Not the
/// lowest priority either: the worker also reads the link state (the `local-down` signal), so
/// other load on the machine must not starve it.
pub(crate) const WORKER_NICE: i32 = 10;

/// Lowers the priority of `pid`'s worker threads (`pshim6-worker-N`), waiting up to `within`
/// for them to appear; returns how many it changed.
fn renice_workers(pid: u32, within: Duration) -> usize {
    let until = std::time::Instant::now() + within;
    loop {
        let mut n = 0;
        if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                let Ok(tid) = t.file_name().to_string_lossy().parse::<libc::id_t>() else {
                    continue;
                };
                if comm.starts_with("pshim6-worker") {
                    // SAFETY: setpriority(2) on one thread id; no memory is passed.
                    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, WORKER_NICE) } == 0 {
                        n += 1;
                    }
                }
            }
        }
        if n > 0 || std::time::Instant::now() > until {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running proxy.
#[derive(Debug)]
pub(crate) struct Proxy {
    name: String,
    child: Child,
    events: Option<JoinHandle<()>>,
    counters: Option<JoinHandle<String>>,
}

impl Proxy {
    /// Writes site `s`'s configuration and starts `pshim6 run` in its namespace; returns once
    /// the proxy says it runs.
    pub(crate) fn start(s: Site, key_file: &Path, timeline: &Arc<Timeline>) -> Result<Self> {
        let token_file = super::api_client::write_token(s)?;
        let text = config_text(s, key_file, &token_file);
        Self::spawn(&format!("s{}", s.0), &s.proxy_ns(), &text, timeline)
    }

    /// Writes configuration `text` to `NAME.toml` and starts `pshim6 run` with it in
    /// namespace `ns`; returns once the proxy says it runs.
    pub(crate) fn spawn(
        name: &str,
        ns: &str,
        text: &str,
        timeline: &Arc<Timeline>,
    ) -> Result<Self> {
        let name = name.to_string();
        let dir = state_dir();
        let conf = dir.join(format!("{name}.toml"));
        fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        let exe = std::env::current_exe().context("finding the pshim6 binary")?;
        let exe_s = exe.to_string_lossy().into_owned();
        let conf_s = conf.to_string_lossy().into_owned();
        let mut child = command_in(ns, &[&exe_s, "run", "--config", &conf_s])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pshim6 run")?;
        record_pid(&name, child.id(), &exe_s)?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("no stderr pipe"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<String>();
        let tl = Arc::clone(timeline);
        let who = name.clone();
        let log_path = dir.join(format!("{name}.log"));
        let events = std::thread::spawn(move || {
            let mut log = fs::File::create(&log_path).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    let _ = std::io::Write::write_all(f, format!("{line}\n").as_bytes());
                }
                match line.strip_prefix(crate::run_events::PREFIX) {
                    Some(json) => {
                        if let Ok(v) = serde_json::from_str(json) {
                            tl.proxy_event(&who, v);
                        }
                    }
                    None => {
                        if let Some(text) = services_line(&line) {
                            tl.note(&who, text);
                        }
                        let _ = ready_tx.send(line);
                    }
                }
            }
        });
        let counters = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut s);
            s
        });
        let mut proxy = Self {
            name,
            child,
            events: Some(events),
            counters: Some(counters),
        };
        loop {
            match ready_rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("running on") => break,
                Ok(line) if line.starts_with("error") => {
                    proxy.stop();
                    bail!("proxy {}: {line}", proxy.name);
                }
                Ok(_) => {}
                Err(_) => {
                    proxy.stop();
                    bail!(
                        "proxy {} did not start (see {})",
                        proxy.name,
                        dir.join(format!("{}.log", proxy.name)).display()
                    );
                }
            }
        }
        let reniced = renice_workers(proxy.child.id(), Duration::from_secs(10));
        timeline.note(
            &proxy.name,
            &format!(
                "pshim6 run started ({}; {reniced} busy-polling worker(s) at nice {WORKER_NICE})",
                conf.display()
            ),
        );
        Ok(proxy)
    }

    /// Its name (`s1`, `s1b`, …).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the proxy (SIGTERM: it dumps its context table and prints its counters) and
    /// returns the counters it printed.
    pub(crate) fn stop(&mut self) -> String {
        terminate(self.child.id(), Duration::from_secs(5));
        let _ = self.child.wait();
        forget_pid(&self.name);
        if let Some(h) = self.events.take() {
            let _ = h.join();
        }
        self.counters
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.events.is_some() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_loads_and_bound_is_the_reap_sum() {
        // 1000 + 4 × 200 × 1.2 ms.
        assert_eq!(reap_bound(), Duration::from_millis(1960));
        let dir = std::env::temp_dir().join(format!("p6l-conf-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let key = SiteKey::generate(1024, &mut rand::rngs::OsRng).unwrap();
        let key_file = dir.join("k.pem");
        fs::write(&key_file, key.to_pkcs8_pem().unwrap()).unwrap();
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
        let token_file = dir.join("s1.token");
        fs::write(&token_file, "0123456789abcdef0123456789abcdef\n").unwrap();
        fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).unwrap();
        let text = config_text(Site(1), &key_file, &token_file)
            .replace(
                "interface = \"p6l-in\"",
                "interface = \"p6l-in\"\nmac = \"02:00:00:00:00:01\"",
            )
            .replace(
                "interface = \"p6l-a\"",
                "interface = \"p6l-a\"\nmac = \"02:00:00:00:00:02\"",
            )
            .replace(
                "interface = \"p6l-b\"",
                "interface = \"p6l-b\"\nmac = \"02:00:00:00:00:03\"",
            );
        let path = dir.join("pshim6.toml");
        fs::write(&path, text).unwrap();
        let cfg = run_config::load(&path).unwrap();
        assert_eq!(cfg.interfaces.len(), 3);
        assert!(cfg.site.hosts.is_empty());
        assert!(cfg.dns.is_some() && cfg.dhcp.is_some());
        assert!(
            cfg.api.is_some(),
            "the lab's proxies serve the operator API"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn services_lines_without_contexts() {
        assert_eq!(
            services_line("pshim6: [    1.250s] host bound: DUID 00 -> CMULA fc00:1::5"),
            Some("host bound: DUID 00 -> CMULA fc00:1::5")
        );
        assert_eq!(
            services_line("pshim6: [    1.250s] context 0x1: removed"),
            None
        );
        assert_eq!(services_line("pshim6: running on a, b"), None);
    }
}
