//! A lab of network namespaces joined by veth pairs for the two-site tests on real kernel
//! interfaces (AF_PACKET and DPDK `net_af_packet`):
//!
//! ```text
//!  ns h1 ── veth ── [proxy 1: inside, 1A, 1B] ══ ns core (Linux router) ══ [proxy 2: 2A, 2B, inside] ── veth ── ns h2
//! ```
//!
//! [`Lab::two_sites`] wires it: the core forwards both sites' PA prefixes (on-link routes), the
//! hosts h1 and h2 are plain Linux hosts with their CMULA and a default route via their proxy,
//! with transmit checksum offload off (veth would hand the proxies frames with only the
//! pseudo-header summed). The proxies' interfaces have kernel IPv6 disabled. Each test opens the
//! proxies' ports its own way, then [`ping`] and [`tcp_exchange`] check the path.
//!
//! Needs root, `ip` (iproute2), `ping` (iputils-ping) and `ethtool`; FAILS rather than skips.
//! Every namespace is removed by a guard on drop, also when the test panics.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dataplane::backend::afpacket::{self, AfPacketConfig, AfPacketQueue};
use dataplane::backend::BufPool;
use dataplane::config::MacAddr;

use crate::twosite_common::{core_mac, Site};

pub(crate) fn require_tools() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the two-site lab needs root (network namespaces, veth, AF_PACKET); run it as root, as CI \
         does. It fails rather than skips so that a pass means it ran."
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("ethtool", "ethtool"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the two-site lab needs `{tool}` (Debian package {package}); install it (ci/deps.sh)"
        );
    }
}

pub(crate) fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mac_text(m: MacAddr) -> String {
    m.to_string()
}

/// The namespaces of one run; dropping it deletes them (and with them every veth).
pub(crate) struct Lab {
    id: String,
    namespaces: Vec<String>,
}

impl Lab {
    pub(crate) fn ns(&self, name: &str) -> String {
        format!("p6s-{}-{name}", self.id)
    }

    pub(crate) fn ifname(&self, name: &str) -> String {
        // IFNAMSIZ: "p" + ≤ 6 hex digits of the pid + counter + ≤ 3 characters.
        format!("p{}{name}", self.id)
    }

    pub(crate) fn new() -> Self {
        require_tools();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{:x}{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Self {
            id,
            namespaces: Vec::new(),
        };
        for n in ["h1", "p1", "core", "p2", "h2"] {
            let ns = lab.ns(n);
            run("ip", &["netns", "add", &ns]);
            lab.namespaces.push(ns);
            lab.sysctl(n, "net.ipv6.conf.all.accept_dad=0");
            lab.sysctl(n, "net.ipv6.conf.default.accept_dad=0");
        }
        lab
    }

    pub(crate) fn sysctl(&self, ns: &str, kv: &str) {
        run("ip", &["netns", "exec", &self.ns(ns), "sysctl", "-qw", kv]);
    }

    pub(crate) fn ip(&self, ns: &str, args: &[&str]) {
        let ns = self.ns(ns);
        let mut v = vec!["-n", ns.as_str()];
        v.extend_from_slice(args);
        run("ip", &v);
    }

    /// A veth pair `a` (in `ns_a`, MAC `mac_a`) ↔ `b` (in `ns_b`, MAC `mac_b`), both up.
    pub(crate) fn veth(
        &self,
        (ns_a, a, mac_a): (&str, &str, MacAddr),
        (ns_b, b, mac_b): (&str, &str, MacAddr),
    ) {
        let (ia, ib) = (self.ifname(a), self.ifname(b));
        run(
            "ip",
            &[
                "link",
                "add",
                &ia,
                "netns",
                &self.ns(ns_a),
                "address",
                &mac_text(mac_a),
                "type",
                "veth",
                "peer",
                "name",
                &ib,
                "netns",
                &self.ns(ns_b),
                "address",
                &mac_text(mac_b),
            ],
        );
        for (ns, i) in [(ns_a, &ia), (ns_b, &ib)] {
            if ns.starts_with('p') {
                // The proxy owns this interface: no kernel IPv6 on it.
                self.sysctl(ns, &format!("net.ipv6.conf.{i}.disable_ipv6=1"));
            }
            self.ip(ns, &["link", "set", i, "up"]);
        }
    }

    /// Opens one AF_PACKET queue on `ifname` from inside namespace `ns`.
    pub(crate) fn open(&self, ns: &str, ifname: &str, pool: &Arc<BufPool>) -> AfPacketQueue {
        let cfg = AfPacketConfig {
            queues: 1,
            rx_frames: 512,
            tx_frames: 256,
            ..Default::default()
        };
        let pool = Arc::clone(pool);
        let ifname = self.ifname(ifname);
        in_ns(&self.ns(ns), move || {
            afpacket::open(&ifname, &cfg, &pool)
                .expect("open AF_PACKET")
                .pop()
                .unwrap()
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that entered namespace `ns` (sockets it opens stay in `ns`).
pub(crate) fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).expect("namespace file");
        // SAFETY: `file` is an open namespace descriptor; setns(2) only changes the calling
        // thread's network namespace, and this thread ends with `f`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// A TCP exchange h1 → h2: `len` bytes sent, echoed back by h2, compared.
pub(crate) fn tcp_exchange(lab: &Lab, server: Ipv6Addr, len: usize) {
    let listener = in_ns(&lab.ns("h2"), move || {
        TcpListener::bind(SocketAddrV6::new(server, 5555, 0, 0)).expect("bind in h2")
    });
    let echo = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).expect("server read");
        s.write_all(&buf).expect("server write");
    });
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let sent = data.clone();
    let back = in_ns(&lab.ns("h1"), move || {
        let addr = SocketAddr::V6(SocketAddrV6::new(server, 5555, 0, 0));
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(15)).expect("connect h1 -> h2");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(&sent).expect("client write");
        let mut back = vec![0u8; sent.len()];
        s.read_exact(&mut back).expect("client read");
        back
    });
    echo.join().expect("echo server");
    assert!(back == data, "TCP data came back changed");
}

impl Lab {
    /// Both sites' links, the core router and the two legacy hosts.
    pub(crate) fn two_sites(&self, s1: &Site, s2: &Site) {
        let lab = self;
        let (u1, u2) = (s1.host().0, s2.host().0);
        // Links, with the MACs the proxies' configurations name.
        lab.veth(("h1", "h1", s1.host_mac), ("p1", "1i", s1.inside_mac));
        lab.veth(("p1", "1a", s1.prov_mac[0]), ("core", "c1a", core_mac(0)));
        lab.veth(("p1", "1b", s1.prov_mac[1]), ("core", "c1b", core_mac(1)));
        lab.veth(("p2", "2a", s2.prov_mac[0]), ("core", "c2a", core_mac(2)));
        lab.veth(("p2", "2b", s2.prov_mac[1]), ("core", "c2b", core_mac(3)));
        lab.veth(("p2", "2i", s2.inside_mac), ("h2", "h2", s2.host_mac));

        // The core: a router with fe80::1 on every link and on-link routes to the PA prefixes.
        lab.sysctl("core", "net.ipv6.conf.all.forwarding=1");
        for (link, prefix) in [
            ("c1a", s1.pa[0]),
            ("c1b", s1.pa[1]),
            ("c2a", s2.pa[0]),
            ("c2b", s2.pa[1]),
        ] {
            let i = lab.ifname(link);
            lab.ip("core", &["addr", "add", "fe80::1/64", "dev", &i, "nodad"]);
            lab.ip(
                "core",
                &["-6", "route", "add", &prefix.to_string(), "dev", &i],
            );
        }
        // The legacy hosts: their CMULA and a default route via the proxy.
        for (ns, ifn, u) in [("h1", "h1", u1), ("h2", "h2", u2)] {
            let i = lab.ifname(ifn);
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &lab.ns(ns),
                    "ethtool",
                    "-K",
                    &i,
                    "tx",
                    "off",
                ],
            );
            lab.ip(
                ns,
                &["addr", "add", &format!("{}/64", u.0), "dev", &i, "nodad"],
            );
            lab.ip(
                ns,
                &["-6", "route", "add", "default", "via", "fe80::1", "dev", &i],
            );
        }
    }
}

/// `ping -6` from h1 to `dst`: every one of three echoes must come back.
pub(crate) fn ping(lab: &Lab, dst: Ipv6Addr) {
    // ping -6 from h1 to h2's CMULA: every reply must come back.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("h1"),
            "ping",
            "-6",
            "-c",
            "3",
            "-i",
            "0.5",
            "-w",
            "20",
            &dst.to_string(),
        ])
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ping h1 -> h2 failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("3 received"), "ping: {text}");
}
