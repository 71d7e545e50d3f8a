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
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cga::{CgaParameters, SiteKey};

use super::cleanup::{forget_pid, record_pid, state_dir, terminate};
use super::cmd::command_in;
use super::timeline::Timeline;
use super::topology::{ifname, with_prefix, Prov, Site};

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

/// A host's binding: its CMULA and the CGA Parameters proving it.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// The ULID (a CGA under the site's ULID prefix).
    pub(crate) ulid: Ipv6Addr,
    /// Its CGA Parameters.
    pub(crate) params: CgaParameters,
}

impl Binding {
    /// The host's locator under provider `p` of site `s` (same interface id).
    pub(crate) fn locator(&self, s: Site, p: Prov) -> Ipv6Addr {
        with_prefix(s.pa_prefix(p), self.ulid)
    }
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

/// A CGA binding for a host of site `s` (what the proxy's DHCPv6 server hands out).
pub(crate) fn binding(key: &SiteKey, s: Site) -> Result<Binding> {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&s.ulid_prefix().octets()[..8]);
    let (ulid, params) =
        cga::generate(key.public_key_der(), prefix, 0, &[], &mut rand::rngs::OsRng)?;
    Ok(Binding { ulid, params })
}

/// What goes into one proxy's configuration besides the fixed plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyInputs {
    /// Static host bindings (`[[hosts]]`).
    pub(crate) hosts: Vec<Binding>,
    /// Peers known in advance (`[[peers]]`: ULID, locators).
    pub(crate) peers: Vec<(Ipv6Addr, Vec<Ipv6Addr>)>,
}

/// The `pshim6 run` configuration of site `s`'s proxy.
pub(crate) fn config_text(s: Site, key_file: &Path, inputs: &ProxyInputs) -> String {
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
    for h in &inputs.hosts {
        let _ = writeln!(
            t,
            "\n[[hosts]]\nulid = \"{}\"\nparameters = \"{}\"",
            h.ulid,
            hex::encode(h.params.to_bytes())
        );
    }
    for (ulid, locs) in &inputs.peers {
        let list: Vec<String> = locs.iter().map(|l| format!("\"{l}\"")).collect();
        let _ = writeln!(
            t,
            "\n[[peers]]\nulid = \"{ulid}\"\nlocators = [{}]",
            list.join(", ")
        );
    }
    let _ = writeln!(
        t,
        "\n[engine]\ni1_timeout_ms = 500\nreap_send_timeout_ms = {SEND_TIMEOUT_MS}\n\
         reap_keepalive_timeout_ms = {KEEPALIVE_TIMEOUT_MS}\n\
         reap_initial_probe_timeout_ms = {INITIAL_PROBE_MS}\nreap_max_probe_timeout_ms = 2000"
    );
    let _ = writeln!(
        t,
        "\n[afpacket]\nrx_frames = 1024\ntx_frames = 512\npromiscuous = true"
    );
    t
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
    pub(crate) fn start(
        s: Site,
        key_file: &Path,
        inputs: &ProxyInputs,
        timeline: &Arc<Timeline>,
    ) -> Result<Self> {
        let name = format!("s{}", s.0);
        let dir = state_dir();
        let conf = dir.join(format!("{name}.toml"));
        fs::write(&conf, config_text(s, key_file, inputs))
            .with_context(|| format!("writing {}", conf.display()))?;
        let exe = std::env::current_exe().context("finding the pshim6 binary")?;
        let exe_s = exe.to_string_lossy().into_owned();
        let conf_s = conf.to_string_lossy().into_owned();
        let mut child = command_in(&s.proxy_ns(), &[&exe_s, "run", "--config", &conf_s])
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
        timeline.note(
            &proxy.name,
            &format!("pshim6 run started ({})", conf.display()),
        );
        Ok(proxy)
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
        let b = binding(&key, Site(1)).unwrap();
        assert_eq!(
            b.locator(Site(1), Prov::B).octets()[8..],
            b.ulid.octets()[8..]
        );
        let inputs = ProxyInputs {
            hosts: vec![b.clone()],
            peers: vec![(
                "fc00:2::5".parse().unwrap(),
                vec!["2001:db8:2:a::5".parse().unwrap()],
            )],
        };
        let text = config_text(Site(1), &key_file, &inputs)
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
        let cfg = crate::run_config::load(&path).unwrap();
        assert_eq!(cfg.interfaces.len(), 3);
        assert_eq!(cfg.site.hosts.len(), 1);
        assert_eq!(cfg.site.hosts[0].0 .0, b.ulid);
        let _ = fs::remove_dir_all(dir);
    }
}
