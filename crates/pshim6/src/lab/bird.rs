//! BIRD 2 (Debian `bird2`) in a lab namespace: the lab writes a configuration, runs
//! `bird -f -c CONF -s SOCK -P PID` inside the namespace as its child, queries it with
//! `birdc -s SOCK …` (the control socket is a file, so the queries run from the root
//! namespace) and stops it. Each daemon is recorded in the lab's pid files, so
//! `pshim6 lab --clean` ends one left behind by a crash; its files (configuration, control
//! socket, pid file, log) live in `bird/` under the lab's state directory.
//!
//! Used by the multi-proxy scenarios (issue #9): the site routers and the proxies' BIRDs
//! exchange the routes pshim6 announces (a proxy's kernel routes, picked up by BIRD's
//! `kernel` protocol with `learn`), and the provider routers' BIRDs feed the BGP failure
//! signal.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cleanup::{forget_pid, record_pid, state_dir, terminate};
use super::cmd::{command_in, have_tool};

/// Where BIRD is installed by Debian's `bird2`.
const BIRD_PATHS: [&str; 3] = ["/usr/sbin/bird", "/usr/bin/bird", "/sbin/bird"];
/// How long a daemon may take to answer on its control socket after it starts.
const START_WITHIN: Duration = Duration::from_secs(15);

/// The directory of the lab's BIRD files.
pub(crate) fn bird_dir() -> PathBuf {
    state_dir().join("bird")
}

/// The BIRD binary's path (the pid file records it, so `--clean` recognises the process).
fn bird_binary() -> Result<&'static str> {
    BIRD_PATHS
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .map_or_else(
            || {
                if have_tool("bird") {
                    Ok("bird")
                } else {
                    bail!("the lab's routers need BIRD 2 (package bird2): run `bash ci/deps.sh`")
                }
            },
            Ok,
        )
}

/// A BIRD router id (BIRD 2 wants a 32-bit id even when it speaks only IPv6): `10.0.0.N`.
pub(crate) fn router_id(n: u8) -> String {
    format!("10.0.0.{n}")
}

/// The lines every lab configuration starts with: log to stderr (the daemon's log file),
/// the router id, and the `device` protocol BIRD needs to know the interfaces.
pub(crate) fn preamble(id: u8) -> String {
    format!(
        "log stderr all;\nrouter id {};\nprotocol device {{ scan time 1; }}\n",
        router_id(id)
    )
}

/// One line of `birdc show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProtocolState {
    /// The protocol's name in the configuration.
    pub(crate) name: String,
    /// Its kind (`BGP`, `OSPF`, `Kernel`, `Static`, …).
    pub(crate) proto: String,
    /// `up`, `down`, `start`, …
    pub(crate) state: String,
    /// The rest of the line (for BGP: `Established`, `Active`, …).
    pub(crate) info: String,
}

/// Parses `birdc show protocols` output (the header and the `BIRD … ready.` banner skipped).
pub(crate) fn parse_protocols(text: &str) -> Vec<ProtocolState> {
    text.lines()
        .filter(|l| !l.starts_with("BIRD ") && !l.starts_with("Name "))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // Name Proto Table State Since Info… (`Since` is one word: BIRD's default
            // `timeformat protocol` prints the time, or the date once a day has passed).
            if w.len() < 5 {
                return None;
            }
            let info = w.get(5..).map(|r| r.join(" ")).unwrap_or_default();
            Some(ProtocolState {
                name: w[0].to_string(),
                proto: w[1].to_string(),
                state: w[3].to_string(),
                info,
            })
        })
        .collect()
}

/// Runs `birdc -s SOCK args…`; its output, or an error with what it printed.
pub(crate) fn birdc(sock: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(sock)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .context("running birdc (package bird2)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains("Unable to connect") {
        bail!(
            "`birdc -s {} {}` failed ({}): {}{}",
            sock.display(),
            args.join(" "),
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// A running BIRD daemon.
#[derive(Debug)]
pub(crate) struct Bird {
    name: String,
    child: Option<Child>,
    sock: PathBuf,
    log: PathBuf,
}

impl Bird {
    /// Writes `config` to `bird/NAME.conf` and starts BIRD in namespace `ns`; returns once it
    /// answers on its control socket.
    pub(crate) fn start(name: &str, ns: &str, config: &str) -> Result<Self> {
        let bin = bird_binary()?;
        if !have_tool("birdc") {
            bail!("the lab needs birdc (package bird2): run `bash ci/deps.sh`");
        }
        let dir = bird_dir();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let conf = dir.join(format!("{name}.conf"));
        let sock = dir.join(format!("{name}.ctl"));
        let pid = dir.join(format!("{name}.pid"));
        let log = dir.join(format!("{name}.log"));
        let _ = fs::remove_file(&sock);
        fs::write(&conf, config).with_context(|| format!("writing {}", conf.display()))?;
        let log_file =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let (conf_s, sock_s, pid_s) = (
            conf.to_string_lossy().into_owned(),
            sock.to_string_lossy().into_owned(),
            pid.to_string_lossy().into_owned(),
        );
        let child = command_in(ns, &[bin, "-f", "-c", &conf_s, "-s", &sock_s, "-P", &pid_s])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting bird (package bird2)")?;
        let pid_name = format!("bird-{name}");
        record_pid(&pid_name, child.id(), bin)?;
        let mut bird = Self {
            name: name.to_string(),
            child: Some(child),
            sock,
            log,
        };
        let until = Instant::now() + START_WITHIN;
        loop {
            if birdc(&bird.sock, &["show", "status"]).is_ok_and(|o| o.contains("up and running")) {
                return Ok(bird);
            }
            let exited = bird
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > until {
                let text = bird.log_text();
                bird.stop();
                bail!("BIRD {name} in {ns} did not start; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's name (its files are `bird/NAME.*`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What it logged so far.
    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `birdc -s SOCK args…` against this daemon.
    pub(crate) fn query(&self, args: &[&str]) -> Result<String> {
        birdc(&self.sock, args)
    }

    /// Its protocols and their states.
    pub(crate) fn protocols(&self) -> Result<Vec<ProtocolState>> {
        Ok(parse_protocols(&self.query(&["show", "protocols"])?))
    }

    /// Waits until protocol `proto` is up (for BGP: `Established`); how long it took.
    pub(crate) fn wait_up(&self, proto: &str, within: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        loop {
            let ps = self.protocols()?;
            let up = ps.iter().any(|p| {
                p.name == proto
                    && p.state == "up"
                    && (p.proto != "BGP" || p.info.starts_with("Established"))
            });
            if up {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > within {
                bail!(
                    "BIRD {}: protocol {proto} not up within {within:?}: {ps:?}\nlog:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the daemon (SIGTERM, SIGKILL after 2 s) and removes its control socket.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(c.id(), Duration::from_secs(2));
            let _ = c.wait();
            forget_pid(&format!("bird-{}", self.name));
        }
        let _ = fs::remove_file(&self.sock);
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_protocols() {
        let text = "BIRD 2.0.12 ready.\n\
Name       Proto      Table      State  Since         Info\n\
device1    Device     ---        up     18:50:01.123  \n\
kernel1    Kernel     master6    up     18:50:01.123  \n\
site       BGP        ---        up     18:50:02.456  Established   \n\
backup     BGP        ---        start  18:50:02.456  Active        Socket: Connection refused\n";
        let p = parse_protocols(text);
        assert_eq!(p.len(), 4, "{p:?}");
        assert_eq!(p[2].name, "site");
        assert_eq!(p[2].proto, "BGP");
        assert_eq!(p[2].state, "up");
        assert_eq!(p[2].info, "Established");
        assert_eq!(p[3].state, "start");
        assert!(p[3].info.starts_with("Active"), "{:?}", p[3]);
        assert_eq!(p[1].info, "");
    }

    #[test]
    fn preamble_has_a_router_id_and_device() {
        let p = preamble(7);
        assert!(p.contains("router id 10.0.0.7;"), "{p}");
        assert!(p.contains("protocol device"), "{p}");
    }
}
