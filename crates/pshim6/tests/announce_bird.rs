//! Route announcement through real BIRD 2 (issue #9, "Routes" acceptance): a site router R and
//! two proxies P1 (primary) and P2 (backup), each running the real `pshim6 run` (AF_PACKET)
//! and its own BIRD with `configs/bird/proxy.conf`; R runs BIRD with
//! `configs/bird/site-router.conf` (only their `define`s rewritten for the addresses here).
//!
//! ```text
//!            ns R (bridge br0: fd99::ff, fc00:1::ff)              ns X (exit router fe80::a,
//!        ┌──────────┬───────────┬──────────┬──────────┐            2001:db8:e::2 on lo)
//!      m0 (P1 kernel, d0 (P1 data plane,  m0 (P2)   d0 (P2      x1, y1 ── e0, e1 (P1 providers)
//!      fd99::1, BGP)  fc00:1::1)          fd99::2)  fc00:1::2)  x2, y2 ── e0, e1 (P2 providers)
//! ```
//!
//! 1. R's kernel shows the inside prefix via P1's data-plane address; a ping from R to
//!    2001:db8:e::2 crosses P1's data plane (NPTv6 out of its provider port: X counts the
//!    echo on x1).
//! 2. SIGKILL P1's pshim6: R's route moves to P2 (measured, asserted under the proxy BIRD's
//!    `scan time` + 3 s); the ping now arrives on x2.
//! 3. P1 restarted: back to P1. 4. `POST /v1/routing/withdraw` on P1: to P2;
//!    `POST /v1/routing/announce`: back. 5. Draining provider 1 on P1 withdraws its PA prefix
//!    from P1's kernel, the inside prefix stays. 6. SIGTERM P2: its routes and device are gone.
//!
//! Needs root, `ip`, `ethtool`, `bird`, `birdc`, `ping`, `curl` (`ci/deps.sh`); without them it
//! FAILS. Run it under `flock /work/lab.lock`. Everything is removed by a guard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const KEY: &str = include_str!("../../sim/keys/site-a.pem");
const TOKEN: &str = "announce-test-token-0123456789abcdef";
/// The proxy BIRD's kernel `scan time` (configs/bird/proxy.conf): the longest a withdrawal
/// can wait should a netlink notification be lost. Convergence must stay under it + slack.
const SCAN_TIME: Duration = Duration::from_secs(2);
const CONVERGENCE_BOUND: Duration = Duration::from_secs(5);

fn fail_setup(what: &str) -> ! {
    panic!(
        "{what}: this test needs root, iproute2, ethtool, bird2 (bird, birdc), ping and curl; \
         run `bash ci/deps.sh` as root first (CI does)"
    );
}

fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| fail_setup(&format!("`{name}` not found")))
}

/// Children must not inherit the caller's descriptors (e.g. the `flock` on the lab lock).
fn no_inherited_fds(c: &mut Command) -> &mut Command {
    // SAFETY: close_range(2) is async-signal-safe; only descriptors >= 3 are closed.
    unsafe {
        c.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        })
    }
}

fn run(cmd: &mut Command) -> String {
    e2e::cmd::output(no_inherited_fds(cmd)).unwrap_or_else(|e| fail_setup(&e.to_string()))
}

/// Rewrites `define NAME = ...;` lines of a BIRD snippet.
fn with_defines(text: &str, defines: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut seen = 0;
    for line in text.lines() {
        let hit = defines
            .iter()
            .find(|(n, _)| line.starts_with(&format!("define {n} =")));
        match hit {
            Some((n, v)) => {
                seen += 1;
                out.push_str(&format!("define {n} = {v};\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert_eq!(seen, defines.len(), "a define is missing from the snippet");
    out
}

struct Proxy {
    ns: &'static str,
    inside: &'static str,
    provider_addr: &'static str,
    provider_b_addr: &'static str,
    link_local: &'static str,
    mgmt: &'static str,
    role: &'static str,
}

const P1: Proxy = Proxy {
    ns: "p1",
    inside: "fc00:1::1",
    provider_addr: "2001:db8:a:1::1",
    provider_b_addr: "2001:db8:b:1::1",
    link_local: "fe80::1",
    mgmt: "fd99::1",
    role: "primary",
};
const P2: Proxy = Proxy {
    ns: "p2",
    inside: "fc00:1::2",
    provider_addr: "2001:db8:a:1::2",
    provider_b_addr: "2001:db8:b:1::2",
    link_local: "fe80::2",
    mgmt: "fd99::2",
    role: "backup",
};

struct Lab {
    tag: String,
    dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        format!("pann-{n}-{}", self.tag)
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new(tool("ip"));
        c.args(["netns", "exec", &self.ns(ns)]).args(args);
        c
    }

    fn ip(&self, ns: &str, args: &[&str]) -> String {
        run(Command::new(tool("ip"))
            .arg("-n")
            .arg(self.ns(ns))
            .args(args))
    }

    fn new() -> Self {
        if run(Command::new("id").arg("-u")).trim() != "0" {
            fail_setup("not root");
        }
        for t in ["ip", "ethtool", "bird", "birdc", "ping", "curl"] {
            tool(t);
        }
        let tag = format!("{}", std::process::id() % 100_000);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("announce-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Self {
            tag,
            dir,
            children: Vec::new(),
        };
        for n in ["r", "p1", "p2", "x"] {
            let _ = Command::new(tool("ip"))
                .args(["netns", "del", &lab.ns(n)])
                .stderr(Stdio::null())
                .status();
            run(Command::new(tool("ip")).args(["netns", "add", &lab.ns(n)]));
            lab.ip(n, &["link", "set", "lo", "up"]);
        }
        lab.ip("r", &["link", "add", "br0", "type", "bridge"]);
        for (p, x) in [("p1", "x1"), ("p2", "x2")] {
            for (port, peer) in [("m0", "m"), ("d0", "d")] {
                let rname = format!("r{p}{peer}");
                run(Command::new(tool("ip")).args([
                    "link",
                    "add",
                    &rname,
                    "netns",
                    &lab.ns("r"),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    port,
                    "netns",
                    &lab.ns(p),
                ]));
                lab.ip("r", &["link", "set", &rname, "master", "br0", "up"]);
            }
            // Provider A's exit (fe80::a) on x1/x2, provider B's (fe80::b) on y1/y2.
            let y = x.replace('x', "y");
            for (xi, port, ll) in [(x, "e0", "fe80::a/64"), (y.as_str(), "e1", "fe80::b/64")] {
                run(Command::new(tool("ip")).args([
                    "link",
                    "add",
                    xi,
                    "netns",
                    &lab.ns("x"),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    port,
                    "netns",
                    &lab.ns(p),
                ]));
                lab.ip("x", &["link", "set", xi, "up"]);
                lab.ip("x", &["addr", "add", ll, "dev", xi, "nodad"]);
                run(&mut lab.exec("x", &["ethtool", "-K", xi, "tx", "off"]));
            }
            // The data-plane ports belong to pshim6: no kernel IPv6 on them.
            run(&mut lab.exec(
                p,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.d0.disable_ipv6=1",
                    "net.ipv6.conf.e0.disable_ipv6=1",
                    "net.ipv6.conf.e1.disable_ipv6=1",
                ],
            ));
            for i in ["m0", "d0", "e0", "e1"] {
                lab.ip(p, &["link", "set", i, "up"]);
            }
        }
        lab.ip("p1", &["addr", "add", "fd99::1/64", "dev", "m0", "nodad"]);
        lab.ip("p2", &["addr", "add", "fd99::2/64", "dev", "m0", "nodad"]);
        lab.ip("r", &["link", "set", "br0", "up"]);
        lab.ip("r", &["addr", "add", "fd99::ff/64", "dev", "br0", "nodad"]);
        lab.ip(
            "r",
            &["addr", "add", "fc00:1::ff/64", "dev", "br0", "nodad"],
        );
        run(&mut lab.exec("r", &["ethtool", "-K", "br0", "tx", "off"]));
        run(&mut lab.exec("r", &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]));
        lab.ip("x", &["addr", "add", "2001:db8:e::2/128", "dev", "lo"]);
        lab
    }

    fn spawn(&mut self, name: &str, mut cmd: Command, log: &str) {
        let child = no_inherited_fds(&mut cmd)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(log)).unwrap())
            .spawn()
            .unwrap_or_else(|e| fail_setup(&format!("{name}: {e}")));
        self.children.push((name.into(), child));
    }

    /// BIRD in the foreground in `ns` with `conf`.
    fn start_bird(&mut self, ns: &str, conf: &str) {
        let d = self.dir.join(ns);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("bird.conf"), conf).unwrap();
        let args: Vec<String> = ["-f", "-c", "bird.conf", "-s", "bird.ctl", "-P", "bird.pid"]
            .iter()
            .map(|a| match *a {
                "bird.conf" | "bird.ctl" | "bird.pid" => d.join(a).display().to_string(),
                other => other.to_string(),
            })
            .collect();
        let mut cmd = self.exec(ns, &[tool("bird").to_str().unwrap()]);
        cmd.args(&args);
        self.spawn(&format!("bird-{ns}"), cmd, &format!("bird-{ns}.log"));
    }

    fn birdc(&self, ns: &str, what: &[&str]) -> String {
        let sock = self.dir.join(ns).join("bird.ctl");
        let mut c = Command::new(tool("birdc"));
        c.arg("-s").arg(sock).args(what);
        run(&mut c)
    }

    fn proxy_config(&self, p: &Proxy) -> PathBuf {
        let d = self.dir.join(p.ns);
        std::fs::create_dir_all(&d).unwrap();
        for (f, text) in [("site.pem", KEY), ("api.token", TOKEN)] {
            std::fs::write(d.join(f), text).unwrap();
            run(Command::new("chmod").arg("600").arg(d.join(f)));
        }
        let cfg = d.join("pshim6.toml");
        std::fs::write(
            &cfg,
            format!(
                "backend = \"afpacket\"\nulid_prefix = \"fc00:1::/64\"\nsite_key = \"site.pem\"\n\
                 workers = 1\n\
                 [inside]\ninterface = \"d0\"\nlink_local = \"{}\"\nglobal = \"{}\"\n\
                 [[providers]]\nid = 1\ninterface = \"e0\"\nprefix = \"2001:db8:a:1::/64\"\n\
                 address = \"{}\"\nexit = {{ next_hop = \"fe80::a\" }}\n\
                 [[providers]]\nid = 2\ninterface = \"e1\"\nprefix = \"2001:db8:b:1::/64\"\n\
                 address = \"{}\"\nexit = {{ next_hop = \"fe80::b\" }}\n\
                 [api]\nlisten = \"[::1]:8080\"\ntoken_file = \"api.token\"\n\
                 [announce]\nrole = \"{}\"\ninside = [\"fc00::/7\", \"::/0\"]\n",
                p.link_local, p.inside, p.provider_addr, p.provider_b_addr, p.role
            ),
        )
        .unwrap();
        cfg
    }

    /// Starts `pshim6 run` for `p`; its stderr lines come through the receiver.
    fn start_proxy(&mut self, p: &Proxy) -> Receiver<String> {
        let cfg = self.proxy_config(p);
        let mut cmd = self.exec(p.ns, &[env!("CARGO_BIN_EXE_pshim6"), "run", "--config"]);
        cmd.arg(&cfg).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = no_inherited_fds(&mut cmd).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let name = p.ns;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[pshim6 {name}] {line}");
                let _ = tx.send(line);
            }
        });
        self.children.push((format!("pshim6-{}", p.ns), child));
        rx
    }

    fn child(&mut self, name: &str) -> &mut Child {
        let i = self
            .children
            .iter()
            .rposition(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no child {name}"));
        &mut self.children[i].1
    }

    fn signal(&mut self, name: &str, sig: &str) {
        let pid = self.child(name).id().to_string();
        run(Command::new("kill").args([sig, &pid]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child(name).try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{name} did not exit on {sig}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// R's kernel route for `prefix` (empty if none).
    fn route(&self, prefix: &str) -> String {
        self.ip("r", &["-6", "route", "show", prefix])
            .trim()
            .to_string()
    }

    /// Waits until R routes `prefix` via `via`; returns how long it took.
    fn wait_route_via(&self, prefix: &str, via: &str, within: Duration) -> Duration {
        let t0 = Instant::now();
        let want = format!("via {via} ");
        loop {
            let r = self.route(prefix);
            if r.contains(&want) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < within,
                "R: no route {prefix} {want}within {within:?}; now `{r}`\nR's BIRD:\n{}",
                self.birdc("r", &["show", "route", "all"])
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// ICMPv6 echo requests X received on `x` (per-interface SNMP counters).
    fn echos_on(&self, x: &str) -> u64 {
        let text = run(&mut self.exec("x", &["cat", &format!("/proc/net/dev_snmp6/{x}")]));
        text.lines()
            .find_map(|l| l.strip_prefix("Icmp6InEchos"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no Icmp6InEchos in /proc/net/dev_snmp6/{x}"))
    }

    /// Echo requests X received from P1 (x1, y1) and from P2 (x2, y2).
    fn echos(&self) -> (u64, u64) {
        (
            self.echos_on("x1") + self.echos_on("y1"),
            self.echos_on("x2") + self.echos_on("y2"),
        )
    }

    /// Pings X's address from R's inside address (no reply comes back: X has no route to
    /// the PA prefixes); returns the echoes X counted from (P1, P2).
    fn ping_through(&self) -> (u64, u64) {
        let before = self.echos();
        let _ = no_inherited_fds(&mut self.exec(
            "r",
            &[
                "ping",
                "-6",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                "-I",
                "fc00:1::ff",
                "2001:db8:e::2",
            ],
        ))
        .stdout(Stdio::null())
        .status();
        let after = self.echos();
        (after.0 - before.0, after.1 - before.1)
    }

    fn api(&self, p: &Proxy, method: &str, path: &str) -> serde_json::Value {
        let out = self.api_text(p, method, path);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{method} {path}: {e}: {out}"))
    }

    fn api_text(&self, p: &Proxy, method: &str, path: &str) -> String {
        run(&mut self.exec(
            p.ns,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-X",
                method,
                "-H",
                &format!("Authorization: Bearer {TOKEN}"),
                &format!("http://[::1]:8080{path}"),
            ],
        ))
    }

    /// pshim6's routes in `ns`'s kernel (protocol 250).
    fn proxy_routes(&self, ns: &str) -> String {
        self.ip(ns, &["-6", "route", "show", "proto", "250"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in ["r", "p1", "p2", "x"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn wait_line(rx: &Receiver<String>, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(_) => panic!("no `{needle}` from pshim6 run within {within:?}"),
        }
    }
}

#[test]
fn routes_follow_the_primary_through_bird() {
    let mut lab = Lab::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/bird");
    let proxy_snippet = std::fs::read_to_string(root.join("proxy.conf")).unwrap();
    let site_snippet = std::fs::read_to_string(root.join("site-router.conf")).unwrap();
    lab.start_bird("r", &site_snippet);
    for (p, id) in [(&P1, "192.0.2.1"), (&P2, "192.0.2.2")] {
        let conf = with_defines(
            &proxy_snippet,
            &[
                ("MGMT_ADDR", p.mgmt),
                ("DATAPLANE_INSIDE", p.inside),
                ("ROUTER_ID", id),
                ("INSIDE_PREFIXES", "[ fc00::/7, ::/0 ]"),
            ],
        );
        lab.start_bird(p.ns, &conf);
    }
    let rx1 = lab.start_proxy(&P1);
    let rx2 = lab.start_proxy(&P2);
    for rx in [&rx1, &rx2] {
        wait_line(rx, "announce: data plane up", Duration::from_secs(20));
    }

    // 1. The primary's announcement, and a real packet through its data plane.
    let t = lab.wait_route_via("fc00::/7", P1.inside, Duration::from_secs(60));
    eprintln!("initial: R routes fc00::/7 via P1 after {t:?} (BGP sessions coming up)");
    lab.wait_route_via("default", P1.inside, Duration::from_secs(10));
    let r = lab.route("fc00::/7");
    assert!(r.contains("proto bird"), "{r}");
    let (x1, x2) = lab.ping_through();
    assert!(
        x1 >= 1 && x2 == 0,
        "echoes from P1 {x1}, P2 {x2}: not through P1"
    );
    let v = lab.api(&P1, "GET", "/v1/routing");
    assert_eq!(v["role"], "primary");
    assert_eq!(v["state"], "announced", "{v}");
    assert_eq!(v["metric"], 100);
    assert_eq!(v["routes"].as_array().unwrap().len(), 4, "{v}");
    let m = lab.api_text(&P1, "GET", "/metrics");
    for want in [
        "pshim6_announce_route_installed{prefix=\"fc00::/7\",towards=\"inside\"} 1",
        "pshim6_announce_route_installed{prefix=\"2001:db8:b:1::/64\",towards=\"exit\"} 1",
        "pshim6_announce_operator_withdrawn 0",
    ] {
        assert!(m.contains(want), "no `{want}` in /metrics:\n{m}");
    }
    let b = lab.api(&P2, "GET", "/v1/routing");
    assert_eq!(
        (b["role"].as_str(), b["metric"].as_u64()),
        (Some("backup"), Some(200))
    );
    let p1_routes = lab.proxy_routes("p1");
    for want in [
        "fc00::/7 dev pshim6-ann",
        "2001:db8:a:1::/64 dev pshim6-ann",
        "2001:db8:b:1::/64 dev pshim6-ann",
        "metric 100",
    ] {
        assert!(p1_routes.contains(want), "P1 kernel: {p1_routes}");
    }

    // 2. SIGKILL the primary's pshim6 (its BIRD lives on): the backup's route within bound.
    let killed = Instant::now();
    lab.signal("pshim6-p1", "-KILL");
    let t = lab.wait_route_via("fc00::/7", P2.inside, CONVERGENCE_BOUND);
    let total = killed.elapsed();
    eprintln!("SIGKILL P1: R routes fc00::/7 via P2 after {t:?} ({total:?} from the kill)");
    assert!(total < CONVERGENCE_BOUND && SCAN_TIME < CONVERGENCE_BOUND);
    assert_eq!(
        lab.proxy_routes("p1").trim(),
        "",
        "the device took P1's routes"
    );
    lab.wait_route_via("default", P2.inside, Duration::from_secs(2));
    let (x1, x2) = lab.ping_through();
    assert!(
        x2 >= 1 && x1 == 0,
        "echoes from P1 {x1}, P2 {x2}: not through P2"
    );

    // 3. Restart the primary: back to it.
    let started = Instant::now();
    let rx1 = lab.start_proxy(&P1);
    wait_line(&rx1, "announce: data plane up", Duration::from_secs(20));
    let t = lab.wait_route_via("fc00::/7", P1.inside, Duration::from_secs(10));
    eprintln!(
        "restart P1: R routes via P1 {t:?} after its announcement, {:?} after exec",
        started.elapsed()
    );

    // 4. The operator withdraws the primary: to the backup; announces again: back.
    let t0 = Instant::now();
    let v = lab.api(&P1, "POST", "/v1/routing/withdraw");
    assert_eq!(v["state"], "withdrawn", "{v}");
    assert_eq!(v["operator_withdrawn"], true);
    assert_eq!(v["routes"][0]["reason"], "withdrawn by the operator", "{v}");
    lab.wait_route_via("fc00::/7", P2.inside, CONVERGENCE_BOUND);
    eprintln!("withdraw P1: R routes via P2 after {:?}", t0.elapsed());
    let v = lab.api(&P1, "GET", "/v1/routing");
    assert_eq!(v["last_change"], "withdrawn by the operator");
    let m = lab.api_text(&P1, "GET", "/metrics");
    assert!(m.contains("pshim6_announce_operator_withdrawn 1"), "{m}");
    assert!(
        m.contains("pshim6_announce_route_installed{prefix=\"fc00::/7\",towards=\"inside\"} 0"),
        "{m}"
    );
    let v = lab.api(&P1, "POST", "/v1/routing/announce");
    assert_eq!(v["state"], "announced", "{v}");
    lab.wait_route_via("fc00::/7", P1.inside, CONVERGENCE_BOUND);

    // 5. Draining provider 1 withdraws its PA prefix only.
    let d = lab.api(&P1, "POST", "/v1/providers/1/drain");
    assert_eq!(d["drained"], true, "{d}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while lab.proxy_routes("p1").contains("2001:db8:a:1::/64") {
        assert!(
            Instant::now() < deadline,
            "drained PA prefix still installed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = lab.proxy_routes("p1");
    assert!(
        left.contains("fc00::/7") && left.contains("2001:db8:b:1::/64"),
        "{left}"
    );
    let v = lab.api(&P1, "GET", "/v1/routing");
    assert_eq!(v["state"], "partial", "{v}");
    assert_eq!(v["routes"][2]["reason"], "provider 1 drained", "{v}");
    lab.api(&P1, "POST", "/v1/providers/1/undrain");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !lab.proxy_routes("p1").contains("2001:db8:a:1::/64") {
        assert!(Instant::now() < deadline, "undrained PA prefix not back");
        std::thread::sleep(Duration::from_millis(20));
    }

    // 6. Clean stop of the backup: routes deleted, device gone, R still on the primary.
    lab.signal("pshim6-p2", "-TERM");
    assert_eq!(lab.proxy_routes("p2").trim(), "");
    let links = lab.ip("p2", &["link", "show"]);
    assert!(!links.contains("pshim6-ann"), "{links}");
    assert!(lab
        .route("fc00::/7")
        .contains(&format!("via {} ", P1.inside)));
}
