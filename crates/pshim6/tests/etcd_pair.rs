//! Two `pshim6 run` processes of one site sharing their host bindings on a real etcd (issue 9,
//! acceptance "two proxies on the etcd store"), with a real DHCPv6 client, in namespaces:
//!
//! ```text
//!  ns ha: host (dhcpcd) ── veth ─┐                 ┌─ veth ── ns r: provider router
//!                                ns p: proxy A (pa0 inside, pa1 provider)
//!                                      proxy B (pb0 inside, pb1 provider)
//!  ns hb: host (dhcpcd) ── veth ─┘     etcd on 127.0.0.1
//! ```
//!
//! 1. A host (DUID X) gets a CMULA from proxy A through dhcpcd.
//! 2. Proxy B starts after that: before it answers anything it has loaded X's binding from
//!    etcd (its timeline announces the host "from the shared store").
//! 3. The same host (same DUID) on B's link gets the same CMULA from B.
//! 4. A second host bound through B reaches A's engine through the watch (A's timeline).
//!
//! Needs root, `ip`, `dhcpcd`, `etcd`, `etcdctl` (`ci/deps.sh`); FAILS without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use etcd_store::testing::EtcdProcess;

const KEY: &str = include_str!("../../sim/keys/site-a.pem");

fn run(cmd: &mut Command) -> String {
    e2e::cmd::output(cmd).unwrap_or_else(|e| panic!("{e}"))
}

struct Lab {
    tag: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        format!("petc-{n}-{}", self.tag)
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(ns)]).args(args);
        c
    }

    fn new() -> Self {
        assert_eq!(run(Command::new("id").arg("-u")).trim(), "0", "needs root");
        let tag = format!("{}", std::process::id() % 100_000);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("etcd-pair-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Self {
            tag,
            dir,
            children: Vec::new(),
        };
        for n in ["ha", "hb", "p", "r"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &lab.ns(n)])
                .stderr(Stdio::null())
                .status();
            run(Command::new("ip").args(["netns", "add", &lab.ns(n)]));
        }
        for (a, an, b, bn) in [
            ("ha0", "ha", "pa0", "p"),
            ("hb0", "hb", "pb0", "p"),
            ("pa1", "p", "ra1", "r"),
            ("pb1", "p", "rb1", "r"),
        ] {
            run(Command::new("ip").args([
                "link",
                "add",
                a,
                "netns",
                &lab.ns(an),
                "type",
                "veth",
                "peer",
                "name",
                b,
                "netns",
                &lab.ns(bn),
            ]));
        }
        run(&mut lab.exec(
            "p",
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.pa0.disable_ipv6=1",
                "net.ipv6.conf.pa1.disable_ipv6=1",
                "net.ipv6.conf.pb0.disable_ipv6=1",
                "net.ipv6.conf.pb1.disable_ipv6=1",
            ],
        ));
        for (ns, ifn) in [
            ("ha", "ha0"),
            ("hb", "hb0"),
            ("p", "pa0"),
            ("p", "pa1"),
            ("p", "pb0"),
            ("p", "pb1"),
            ("r", "ra1"),
            ("r", "rb1"),
        ] {
            run(Command::new("ip").args(["-n", &lab.ns(ns), "link", "set", ifn, "up"]));
            run(Command::new("ip").args(["-n", &lab.ns(ns), "link", "set", "lo", "up"]));
        }
        for (ns, ifn) in [("ha", "ha0"), ("hb", "hb0")] {
            run(&mut lab.exec(
                ns,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{ifn}.accept_dad=0"),
                ],
            ));
        }
        let key = lab.dir.join("site.pem");
        std::fs::write(&key, KEY).unwrap();
        run(Command::new("chmod").arg("600").arg(&key));
        lab
    }

    /// Starts proxy `name` (inside `{name}0`, provider `{name}1`) on the etcd at `endpoint`.
    fn start_proxy(&mut self, name: &str, endpoint: &str) -> Receiver<String> {
        let cfg = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "ulid_prefix = \"fc00:1:2:3::/64\"\nsite_key = \"site.pem\"\nworkers = 1\n\
                 [inside]\ninterface = \"{name}0\"\nlink_local = \"fe80::1\"\n\
                 global = \"fc00:1:2:3::1\"\n\
                 [inside.router_advertisements]\ninterval_secs = 30\nmanaged = true\n\
                 [[providers]]\nid = 1\ninterface = \"{name}1\"\nprefix = \"2001:db8:a:1::/64\"\n\
                 exit = {{ next_hop = \"fe80::a\" }}\n\
                 [dhcp]\n[dhcp.store]\nbackend = \"etcd\"\nendpoints = [\"{endpoint}\"]\n\
                 prefix = \"/pshim6/test\"\ntimeout_ms = 2000\n"
            ),
        )
        .unwrap();
        let mut child = self
            .exec("p", &[env!("CARGO_BIN_EXE_pshim6"), "run", "--config"])
            .arg(&cfg)
            .stdout(std::fs::File::create(self.dir.join(format!("{name}.out"))).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let tag = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
                let _ = tx.send(line);
            }
        });
        self.children.push(child);
        rx
    }

    /// `dhcpcd -T` in `ns` on `ifn` with DUID `duid`: the address it would configure.
    fn dhcpcd(&self, ns: &str, ifn: &str, duid: &str) -> Ipv6Addr {
        self.dhcpcd_within(ns, ifn, duid, 30)
            .unwrap_or_else(|text| panic!("dhcpcd got no address:\n{text}"))
    }

    /// `dhcpcd -T` giving up after `secs`: the address, or what dhcpcd said.
    fn dhcpcd_within(
        &self,
        ns: &str,
        ifn: &str,
        duid: &str,
        secs: u32,
    ) -> Result<Ipv6Addr, String> {
        let vars = e2e::dhcpcd::test_lease(
            &self.ns(ns),
            ifn,
            &self.dir.join(format!("dhcpcd-{ns}.conf")),
            &format!("duid {duid}\nia_na 1\nnoipv6rs\n"),
            secs,
        )
        .map_err(|e| e.to_string())?;
        Ok(vars[e2e::dhcpcd::ADDRESS_VAR].parse().unwrap())
    }

    /// Stops child `i` with SIGTERM; its exit report (stdout).
    fn stop(&mut self, i: usize, name: &str) -> String {
        let pid = self.children[i].id().to_string();
        run(Command::new("kill").args(["-TERM", &pid]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.children[i].try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "pshim6 run did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(self.dir.join(format!("{name}.out"))).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in ["ha", "hb", "p", "r"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for a line containing every one of `needles`; returns it.
fn wait_line(rx: &Receiver<String>, needles: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if needles.iter().all(|n| l.contains(n)) => return l,
            Ok(_) => {}
            Err(_) => panic!("no line with {needles:?} from pshim6 run within {within:?}"),
        }
    }
}

#[test]
fn two_pshim6_run_share_host_bindings_on_etcd() {
    let mut lab = Lab::new();
    let etcd = EtcdProcess::start_in_netns(&lab.ns("p")).unwrap();
    let ep = etcd.endpoint();
    let a = lab.start_proxy("pa", &ep);
    wait_line(
        &a,
        &["DHCPv6 bindings on etcd", "synchronised"],
        Duration::from_secs(15),
    );

    // 1. Host X through A.
    let x = lab.dhcpcd("ha", "ha0", "00:03:00:01:02:00:00:00:00:41");
    wait_line(
        &a,
        &["host bound", "00030001020000000041", &x.to_string()],
        Duration::from_secs(5),
    );

    // 2. B starts afterwards and has X before it answers anything.
    let b = lab.start_proxy("pb", &ep);
    wait_line(
        &b,
        &[
            "host from the shared store",
            "00030001020000000041",
            &x.to_string(),
        ],
        Duration::from_secs(15),
    );

    // 3. Host X on B's link: the same CMULA.
    let x_b = lab.dhcpcd("hb", "hb0", "00:03:00:01:02:00:00:00:00:41");
    assert_eq!(x_b, x, "B hands host X the CMULA A gave it");

    // 4. Host Y through B reaches A through the watch.
    let t = Instant::now();
    let y = lab.dhcpcd("hb", "hb0", "00:03:00:01:02:00:00:00:00:42");
    assert_ne!(y, x);
    wait_line(
        &a,
        &[
            "host from another proxy",
            "00030001020000000042",
            &y.to_string(),
        ],
        Duration::from_secs(5),
    );
    eprintln!(
        "host Y bound through B reached A within {:?} of its dhcpcd start",
        t.elapsed()
    );

    // 5. etcd dies: a new host gets no Reply (nothing durable backs one) ...
    let mut etcd = etcd;
    etcd.kill();
    let z = lab.dhcpcd_within("ha", "ha0", "00:03:00:01:02:00:00:00:00:43", 4);
    assert!(z.is_err(), "no address while etcd is down: {z:?}");
    // ... and after etcd's restart (same data) the host's retries succeed; nothing
    // acknowledged before is lost.
    etcd.restart().unwrap();
    let z = lab.dhcpcd("ha", "ha0", "00:03:00:01:02:00:00:00:00:43");
    wait_line(
        &a,
        &["host bound", "00030001020000000043", &z.to_string()],
        Duration::from_secs(5),
    );
    wait_line(
        &b,
        &["host from another proxy", "00030001020000000043"],
        Duration::from_secs(10),
    );
    assert_eq!(lab.dhcpcd("hb", "hb0", "00:03:00:01:02:00:00:00:00:41"), x);
    let report = lab.stop(0, "pa");
    let counter = |name: &str| -> u64 {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter `{name}` in:\n{report}"))
    };
    assert!(counter("dhcp.store_errors") >= 1, "{report}");
    assert!(counter("dhcp.store.write_failures") >= 1, "{report}");
    assert!(counter("dhcp.store.resyncs") >= 2, "{report}");
    // X, Y, Z, plus the re-announcements of X and Y after renewals through B.
    assert!(counter("services.hosts") >= 3, "{report}");
    eprintln!(
        "proxy A: dhcp.store_errors {}, dhcp.store.write_failures {}, dhcp.store.resyncs {}",
        counter("dhcp.store_errors"),
        counter("dhcp.store.write_failures"),
        counter("dhcp.store.resyncs")
    );
    drop(etcd);
}
