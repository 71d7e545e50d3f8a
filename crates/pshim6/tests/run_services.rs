//! `pshim6 run` with its services on AF_PACKET, against real clients and a real server, in
//! network namespaces:
//!
//! ```text
//!  ns h: legacy host ── veth ── ns p: pshim6 run (inside, provider 1) ── veth ── ns r: exit router fe80::a
//!        dhcpcd, dig                kernel IPv6 off on both                     knotd on 2001:db8:53::53
//! ```
//!
//! 1. `dhcpcd -T` on the host gets a CMULA under the site's ULID /64 and the proxy's inside
//!    address as DNS server; the timeline says the host is bound, and the exit report counts
//!    one engine host.
//! 2. With that address on the host, `dig` through the proxy gets the ULID of a peer whose
//!    zone (Knot) has a ULID record: the query went upstream from the provider's address
//!    (the router only routes the provider prefix to the proxy) and came back.
//! 3. The host's first packet to that ULID makes the proxy send an I1 at once (locators from
//!    the DNS answer, no resolver).
//!
//! The host's and the router's veths have transmit checksum offload off (`ethtool -K`), as in
//! `dataplane/tests/afpacket_twosite.rs`: veth hands over frames with only the pseudo-header
//! summed, which the proxy (rightly) refuses.
//!
//! Needs root, `ip`, `ethtool`, `dhcpcd`, `knotd`, `dig` and `ping` (`ci/deps.sh` installs
//! them). Without them the test FAILS, naming that script; it never skips. Namespaces and
//! processes are removed by a guard, also when the test panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use std::borrow::BorrowMut;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const ULID_PREFIX: &str = "fc00:1:2:3::";
const INSIDE: &str = "fc00:1:2:3::1";
const PEER_ULID: &str = "fc00:99:88:77::2";
const PEER_LOCATOR: &str = "2001:db8:c:5::2";
const DNS_SERVER: &str = "2001:db8:53::53";
const KEY: &str = include_str!("../../sim/keys/site-a.pem");

fn fail_setup(what: &str) -> ! {
    panic!(
        "{what}: this test needs root, iproute2, ethtool, dhcpcd, knotd, dig and ping; \
         run `bash ci/deps.sh` as root first (CI does)"
    );
}

fn run(mut cmd: impl BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail_setup(&format!("{cmd:?}: {e}")));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Finds `tool` on PATH or in the sbin directories.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| fail_setup(&format!("`{name}` not found")))
}

/// Namespaces, files and processes of the test; all removed on drop.
struct Lab {
    tag: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        format!("psrv-{n}-{}", self.tag)
    }

    /// `ip netns exec NS args...`
    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new(tool("ip"));
        c.args(["netns", "exec", &self.ns(ns)]).args(args);
        c
    }

    fn ip(&self, ns: &str, args: &[&str]) {
        run(Command::new(tool("ip"))
            .arg("-n")
            .arg(self.ns(ns))
            .args(args));
    }

    fn new() -> Self {
        let uid = run(Command::new("id").arg("-u"));
        if uid.trim() != "0" {
            fail_setup("not root");
        }
        for t in ["ip", "ethtool", "dhcpcd", "knotd", "dig", "ping"] {
            tool(t);
        }
        let tag = format!("{}", std::process::id() % 100_000);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("run-services-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Self {
            tag,
            dir,
            children: Vec::new(),
        };
        for n in ["h", "p", "r"] {
            // A namespace left by a killed earlier run with the same id goes first.
            let _ = Command::new(tool("ip"))
                .args(["netns", "del", &lab.ns(n)])
                .stderr(Stdio::null())
                .status();
            run(Command::new(tool("ip")).args(["netns", "add", &lab.ns(n)]));
        }
        let (h, p, r) = (lab.ns("h"), lab.ns("p"), lab.ns("r"));
        run(Command::new(tool("ip")).args([
            "link", "add", "h0", "netns", &h, "type", "veth", "peer", "name", "p0", "netns", &p,
        ]));
        run(Command::new(tool("ip")).args([
            "link", "add", "p1", "netns", &p, "type", "veth", "peer", "name", "r1", "netns", &r,
        ]));
        // The proxy owns its interfaces: no kernel IPv6 on them.
        run(lab.exec(
            "p",
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.p0.disable_ipv6=1",
                "net.ipv6.conf.p1.disable_ipv6=1",
            ],
        ));
        run(lab.exec("h", &["sysctl", "-qw", "net.ipv6.conf.h0.accept_dad=0"]));
        run(lab.exec("r", &["sysctl", "-qw", "net.ipv6.conf.r1.accept_dad=0"]));
        for (ns, ifn) in [("h", "h0"), ("p", "p0"), ("p", "p1"), ("r", "r1")] {
            lab.ip(ns, &["link", "set", ifn, "up"]);
            lab.ip(ns, &["link", "set", "lo", "up"]);
        }
        for (ns, ifn) in [("h", "h0"), ("r", "r1")] {
            run(lab.exec(ns, &["ethtool", "-K", ifn, "tx", "off"]));
        }
        // The provider's exit router, which also hosts the DNS server; it routes the
        // provider's prefix to the proxy's link (and nothing else).
        lab.ip("r", &["addr", "add", "fe80::a/64", "dev", "r1", "nodad"]);
        lab.ip(
            "r",
            &["addr", "add", &format!("{DNS_SERVER}/128"), "dev", "lo"],
        );
        lab.ip(
            "r",
            &["-6", "route", "add", "2001:db8:a:1::/64", "dev", "r1"],
        );
        lab
    }

    /// Starts knotd in ns r serving `example.` with the peer's AAAA and ULID records.
    fn start_knot(&mut self) {
        let d = self.dir.display().to_string();
        let ulid_hex: String = PEER_ULID
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            self.dir.join("example.zone"),
            format!(
                "$ORIGIN example.\n\
                 @ 3600 IN SOA ns.example. admin.example. 1 3600 600 86400 300\n\
                 @ 3600 IN NS ns.example.\n\
                 ns 3600 IN AAAA {DNS_SERVER}\n\
                 peer 300 IN AAAA {PEER_LOCATOR}\n\
                 peer 300 IN AAAA 2001:db8:d:5::2\n\
                 peer 300 IN TYPE65280 \\# 16 {ulid_hex}\n"
            ),
        )
        .unwrap();
        let conf = self.dir.join("knot.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n    rundir: \"{d}\"\n    listen: {DNS_SERVER}@53\n\
                 database:\n    storage: \"{d}/db\"\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 template:\n  - id: default\n    storage: \"{d}\"\n\
                 zone:\n  - domain: example.\n    file: example.zone\n"
            ),
        )
        .unwrap();
        let child = self
            .exec("r", &["knotd", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("knotd.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| fail_setup(&format!("knotd: {e}")));
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self
                .exec(
                    "r",
                    &[
                        "dig",
                        "+short",
                        "+time=1",
                        "+tries=1",
                        &format!("@{DNS_SERVER}"),
                        "example.",
                        "SOA",
                    ],
                )
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("ns.example.") {
                return;
            }
            let log = std::fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "knotd never answered:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `pshim6 run` in ns p; returns its stderr lines as they come.
    fn start_proxy(&mut self) -> (Receiver<String>, usize) {
        let key = self.dir.join("site.pem");
        std::fs::write(&key, KEY).unwrap();
        run(Command::new("chmod").arg("600").arg(&key));
        let cfg = self.dir.join("pshim6.toml");
        std::fs::write(
            &cfg,
            format!(
                "ulid_prefix = \"{ULID_PREFIX}/64\"\nsite_key = \"site.pem\"\nworkers = 1\n\
                 [inside]\ninterface = \"p0\"\nlink_local = \"fe80::1\"\nglobal = \"{INSIDE}\"\n\
                 [inside.router_advertisements]\ninterval_secs = 30\nmanaged = true\n\
                 [[providers]]\nid = 1\ninterface = \"p1\"\nprefix = \"2001:db8:a:1::/64\"\n\
                 address = \"2001:db8:a:1::1\"\nexit = {{ next_hop = \"fe80::a\" }}\n\
                 [dns]\nupstream = [\"[{DNS_SERVER}]:53\"]\nupstream_timeout_ms = 500\n\
                 [dhcp]\njournal = \"leases.journal\"\n"
            ),
        )
        .unwrap();
        let mut child = self
            .exec("p", &[env!("CARGO_BIN_EXE_pshim6"), "run", "--config"])
            .arg(&cfg)
            .stdout(std::fs::File::create(self.dir.join("run.out")).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[pshim6] {line}");
                let _ = tx.send(line);
            }
        });
        self.children.push(child);
        let i = self.children.len() - 1;
        wait_line(&rx, "DHCPv6 on the inside link", Duration::from_secs(10));
        (rx, i)
    }

    /// `dhcpcd -T` on the host: the variables it would configure.
    fn dhcpcd(&self) -> HashMap<String, String> {
        e2e::dhcpcd::test_lease(
            &self.ns("h"),
            "h0",
            &self.dir.join("dhcpcd.conf"),
            "duid 00:03:00:01:02:00:00:00:00:31\nia_na 1\nnoipv6rs\noption dhcp6_name_servers\n",
            30,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stops child `i` with SIGTERM and waits for it.
    fn stop(&mut self, i: usize) {
        let pid = self.children[i].id().to_string();
        run(Command::new("kill").args(["-TERM", &pid]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.children[i].try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "pshim6 run did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in ["h", "p", "r"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for a line containing `needle`; returns it.
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

/// The value of `name` in the exit report.
fn counter(report: &str, name: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter `{name}` in:\n{report}"))
}

#[test]
fn dhcpcd_and_dig_through_pshim6_run() {
    let mut lab = Lab::new();
    lab.start_knot();
    let (lines, proxy) = lab.start_proxy();

    // 1. DHCPv6: a CMULA under the ULID prefix, and the proxy as DNS server.
    let vars = lab.dhcpcd();
    let cmula: Ipv6Addr = vars["new_dhcp6_ia_na1_ia_addr1"].parse().unwrap();
    assert_eq!(
        cmula.segments()[..4],
        ULID_PREFIX.parse::<Ipv6Addr>().unwrap().segments()[..4]
    );
    assert_eq!(
        vars.get("new_dhcp6_name_servers").map(String::as_str),
        Some(INSIDE)
    );
    let bound = wait_line(&lines, "host bound", Duration::from_secs(5));
    assert!(bound.contains(&cmula.to_string()), "{bound}");
    assert!(bound.contains("00030001020000000031"), "{bound}");

    // 2. DNS through the proxy, upstream to Knot from the provider's address.
    lab.ip(
        "h",
        &["addr", "add", &format!("{cmula}/64"), "dev", "h0", "nodad"],
    );
    let out = run(lab.exec(
        "h",
        &[
            "dig",
            "+short",
            "+time=3",
            "+tries=2",
            &format!("@{INSIDE}"),
            "peer.example.",
            "AAAA",
        ],
    ));
    assert_eq!(out.trim(), PEER_ULID, "the ULID, not the locators");
    let learnt = wait_line(&lines, "learnt from DNS", Duration::from_secs(5));
    assert!(
        learnt.contains(PEER_ULID) && learnt.contains(PEER_LOCATOR),
        "{learnt}"
    );

    // 3. The host's first packet to the ULID: an I1 to its locator at once. Nobody answers
    // it (the router has no route there), so ping fails; the proxy's counters tell.
    lab.ip(
        "h",
        &[
            "-6", "route", "replace", "default", "via", "fe80::1", "dev", "h0",
        ],
    );
    let _ = lab
        .exec("h", &["ping", "-6", "-c", "1", "-W", "1", PEER_ULID])
        .output();
    std::thread::sleep(Duration::from_millis(300));
    lab.stop(proxy);
    let report = std::fs::read_to_string(lab.dir.join("run.out")).unwrap();
    assert_eq!(counter(&report, "services.hosts"), 1, "{report}");
    assert_eq!(counter(&report, "services.peers"), 1);
    assert_eq!(counter(&report, "udp.no_route"), 0);
    assert_eq!(counter(&report, "udp.bad_checksum"), 0);
    assert!(counter(&report, "dns.ulid_answers") >= 1);
    assert!(counter(&report, "dhcp.reply") >= 1);
    assert_eq!(counter(&report, "no_context.connects"), 1, "{report}");
    assert_eq!(counter(&report, "no_context.resolving"), 0);
    assert!(counter(&report, "i1_sent") >= 1, "{report}");
}
