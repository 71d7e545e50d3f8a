//! End to end against a real DHCPv6 client: dhcpcd (Debian `dhcpcd-base`, installed by
//! `ci/deps.sh`) in a network namespace, joined by a veth pair to the server in the root
//! namespace. Needs root, `ip` and `dhcpcd`; without them the test FAILS (never skips).
//!
//! One test, in phases sharing the namespaces:
//! 1. The standalone runner in this process (a thread): dhcpcd `-T` gets a CMULA; the address
//!    passes `pshim6 cga verify` with the CGA Parameters rebuilt from the journal, and the DNS
//!    option is the proxy's address. A Router Solicitation from the host gets an RA with M = 1
//!    and the ULID /64 with A = 0.
//! 2. The `pshim6 dhcp` binary as a child: same address and server DUID after a restart, and
//!    again after SIGKILL and a restart.
//! 3. 1,000 Solicits with distinct DUIDs, sent by this test over UDP: all advertised, all
//!    distinct, and all in the journal after another SIGKILL.
//!
//! The test lives in the `pshim6` crate so that cargo builds the binary it runs
//! (`CARGO_BIN_EXE_pshim6`), with the same features as the rest of the test run; it exercises
//! the `dhcp` crate's runner and journal directly as well.

// Test helpers outside #[test] functions: failing loudly is their job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dhcp::{DhcpConfig, JournalStore};
use dhcproto::v6::{DhcpOption, DhcpOptions, Message, MessageType, OptionCode, IANA, ORO};
use dhcproto::{Decodable, Decoder, Encodable};

const CLIENT_DUID: &str = "00:03:00:01:02:00:00:00:00:01";
const DNS: &str = "fc00:1:2:3::1";
const ULID_PREFIX: &str = "fc00:1:2:3::/64";

fn fail_setup(what: &str) -> ! {
    panic!("{what}: the DHCPv6 end-to-end test needs root, iproute2 and dhcpcd; run `bash ci/deps.sh` (as root) first");
}

fn run(cmd: &mut Command) -> String {
    e2e::cmd::output(cmd).unwrap_or_else(|e| fail_setup(&e.to_string()))
}

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

/// The lab: a host namespace with one end of a veth pair, the other end in the root namespace.
struct Lab {
    ns: String,
    server_if: String,
    host_if: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            fail_setup("not root");
        }
        for tool in [["ip", "-V"], ["dhcpcd", "--version"]] {
            if Command::new(tool[0]).arg(tool[1]).output().is_err() {
                fail_setup(&format!("`{}` not found", tool[0]));
            }
        }
        let id = std::process::id();
        let lab = Self {
            ns: format!("pdh{id}"),
            server_if: format!("pds{id}"),
            host_if: format!("pdh{id}"),
            dir: std::env::temp_dir().join(format!("pshim6-dhcp-e2e-{id}")),
            children: Vec::new(),
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).unwrap();
        let (ns, s, h) = (&lab.ns, &lab.server_if, &lab.host_if);
        ip(&["netns", "add", ns]);
        ip(&[
            "link", "add", s, "type", "veth", "peer", "name", h, "netns", ns,
        ]);
        // No duplicate address detection: link-local addresses are usable at once.
        run(Command::new("sysctl").args(["-qw", &format!("net.ipv6.conf.{s}.accept_dad=0")]));
        ip(&[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{h}.accept_dad=0"),
        ]);
        ip(&["link", "set", s, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "set", h, "up"]);
        lab.wait_link_local();
        lab
    }

    fn wait_link_local(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = ip(&["-6", "addr", "show", "dev", &self.server_if]);
            let h = ip(&["-n", &self.ns, "-6", "addr", "show", "dev", &self.host_if]);
            let ready = |t: &str| t.contains("fe80::") && !t.contains("tentative");
            if ready(&s) && ready(&h) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "link-local addresses never came up:\n{s}\n{h}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn host_ifindex(&self) -> u32 {
        let out = ip(&["-n", &self.ns, "-o", "link", "show", "dev", &self.host_if]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }

    fn write_config(&self) -> PathBuf {
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dhcp/tests/data/site-key.pem");
        let cfg = self.dir.join("dhcp.toml");
        std::fs::write(
            &cfg,
            format!(
                "[dhcp]\nsite_key = '{}'\nulid_prefix = '{ULID_PREFIX}'\n\
                 pa_prefixes = ['2001:db8:a:1::/64', '2001:db8:b:1::/64']\n\
                 dns_servers = ['{DNS}']\njournal = 'dhcp.journal'\npreference = 255\n\
                 [dhcp.rate_limit]\nper_second = 20.0\nburst = 40\n",
                key.display()
            ),
        )
        .unwrap();
        cfg
    }

    /// Runs `dhcpcd -T` (test mode: prints what it got, configures nothing) in the host
    /// namespace with a fixed DUID and one IA_NA; returns its variables.
    fn dhcpcd(&self) -> HashMap<String, String> {
        // noipv6rs: DHCPv6 starts at once (ia_na forces it), independent of RA timing.
        e2e::dhcpcd::test_lease(
            &self.ns,
            &self.host_if,
            &self.dir.join("dhcpcd.conf"),
            &format!("duid {CLIENT_DUID}\nia_na 1\nnoipv6rs\noption dhcp6_name_servers\n"),
            30,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `pshim6 dhcp` and waits until it serves.
    fn start_server(&mut self, bin: &Path, cfg: &Path) -> usize {
        let mut child = Command::new(bin)
            .args(["dhcp", "--interface", &self.server_if, "--config"])
            .arg(cfg)
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
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if l.contains("serving DHCPv6") => break,
                Ok(_) => {}
                Err(e) => panic!("pshim6 dhcp did not start: {e}"),
            }
        }
        self.children.push(child);
        self.children.len() - 1
    }

    fn kill9(&mut self, i: usize) {
        let c = &mut self.children[i];
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.server_if])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`: sockets it creates live there.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: `file` is an open namespace file for the duration of the call; setns
            // only switches this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    })
}

/// The `pshim6` binary cargo built for this test (with the features of the test run, so a
/// DPDK-enabled test run does not rebuild a binary without them).
fn pshim6_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pshim6"))
}

fn verify_cga(bin: &Path, address: &str, parameters: &str) -> (bool, String) {
    let out = Command::new(bin)
        .args([
            "cga",
            "verify",
            "--address",
            address,
            "--parameters",
            parameters,
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn site_key() -> cga::SiteKey {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dhcp/tests/data/site-key.pem"),
    )
    .unwrap();
    cga::SiteKey::from_pkcs8_pem(&pem).unwrap()
}

fn duid_bytes(text: &str) -> Vec<u8> {
    hex::decode(text.replace(':', "")).unwrap()
}

/// Sends a Router Solicitation from the host namespace and returns the first RA.
fn solicit_router(ns: &str, ifindex: u32) -> Vec<u8> {
    in_netns(ns, || {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        s.set_multicast_hops_v6(255).unwrap();
        s.set_multicast_if_v6(ifindex).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let all_routers =
            SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2), 0, 0, ifindex);
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            s.send_to(&[133, 0, 0, 0, 0, 0, 0, 0], &SockAddr::from(all_routers))
                .unwrap();
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                use std::io::Read;
                if let Ok(n) = (&s).read(&mut buf) {
                    if n >= 16 && buf[0] == 134 {
                        return buf[..n].to_vec();
                    }
                }
            }
        }
        panic!("no Router Advertisement within 15 s");
    })
}

/// Sends Solicits for `duids` from the host namespace, retransmitting until each has an
/// Advertise (or 5 rounds pass); returns DUID → advertised address.
fn mass_solicit(ns: &str, ifindex: u32, duids: &[Vec<u8>]) -> HashMap<Vec<u8>, Ipv6Addr> {
    in_netns(ns, || {
        let sock = UdpSocket::bind("[::]:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let to = SocketAddrV6::new(
            dhcp::standalone::ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
            547,
            0,
            ifindex,
        );
        let solicit = |i: usize, duid: &[u8]| {
            let mut m = Message::new_with_id(
                MessageType::Solicit,
                [(i >> 16) as u8, (i >> 8) as u8, i as u8],
            );
            m.opts_mut().insert(DhcpOption::ClientId(duid.to_vec()));
            m.opts_mut().insert(DhcpOption::ElapsedTime(0));
            m.opts_mut().insert(DhcpOption::ORO(ORO {
                opts: vec![OptionCode::DomainNameServers],
            }));
            m.opts_mut().insert(DhcpOption::IANA(IANA {
                id: 1,
                t1: 0,
                t2: 0,
                opts: DhcpOptions::new(),
            }));
            m.to_vec().unwrap()
        };
        let mut got: HashMap<Vec<u8>, Ipv6Addr> = HashMap::new();
        let mut buf = [0u8; 1500];
        for _round in 0..5 {
            let missing: Vec<usize> = (0..duids.len())
                .filter(|i| !got.contains_key(&duids[*i]))
                .collect();
            if missing.is_empty() {
                break;
            }
            for window in missing.chunks(64) {
                for &i in window {
                    sock.send_to(&solicit(i, &duids[i]), to).unwrap();
                }
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut pending = window.len();
                while pending > 0 && Instant::now() < deadline {
                    let Ok(n) = sock.recv(&mut buf) else { continue };
                    let Ok(m) = Message::decode(&mut Decoder::new(&buf[..n])) else {
                        continue;
                    };
                    if m.msg_type() != MessageType::Advertise {
                        continue;
                    }
                    let Some(DhcpOption::ClientId(c)) = m.opts().get(OptionCode::ClientId) else {
                        continue;
                    };
                    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
                        continue;
                    };
                    let Some(DhcpOption::IAAddr(a)) = ia.opts.get(OptionCode::IAAddr) else {
                        continue;
                    };
                    if got.insert(c.clone(), a.addr).is_none() {
                        pending -= 1;
                    }
                }
            }
        }
        got
    })
}

#[test]
fn dhcpcd_gets_a_verifiable_stable_cmula_and_every_solicit_is_journaled() {
    let mut lab = Lab::new();
    let cfg_path = lab.write_config();
    let cfg = DhcpConfig::load(&cfg_path).unwrap();
    let journal = cfg.journal.clone();
    let key = site_key();
    let bin = pshim6_binary();
    let client = duid_bytes(CLIENT_DUID);

    // Phase 1: the runner in this process.
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (stop, ifname, cfg) = (Arc::clone(&stop), lab.server_if.clone(), cfg.clone());
        std::thread::spawn(move || {
            dhcp::standalone::run(&ifname, cfg, &stop, &|l: &str| {
                eprintln!("[in-process] {l}")
            })
        })
    };
    let ra = solicit_router(&lab.ns, lab.host_ifindex());
    assert_eq!(ra[5] & 0x80, 0x80, "M flag set");
    let pio = ra
        .windows(4)
        .position(|w| w == [3, 4, 64, 0x80])
        .expect("Prefix Information, L=1 A=0");
    assert_eq!(
        &ra[pio + 16..pio + 24],
        &[0xfc, 0, 0, 1, 0, 2, 0, 3],
        "the ULID /64"
    );
    let first = lab.dhcpcd();
    stop.store(true, Ordering::Relaxed);
    let counters = server.join().unwrap().unwrap();
    assert!(counters.reply >= 1, "{counters:?}");
    let address = first["new_dhcp6_ia_na1_ia_addr1"].clone();
    let server_id = first["new_dhcp6_server_id"].clone();
    assert_eq!(
        first["new_dhcp6_name_servers"], DNS,
        "option 23 = the proxy"
    );
    assert_eq!(first["new_dhcp6_client_id"], hex::encode(&client));
    let addr: Ipv6Addr = address.parse().unwrap();
    assert!(cfg.ulid_prefix.contains(addr));

    let (state, report) = JournalStore::read(&journal).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        state.server_duid.as_deref().map(hex::encode).as_deref(),
        Some(server_id.as_str())
    );
    let b = state
        .bindings
        .iter()
        .find(|b| b.client.duid == client && b.client.iaid == 1)
        .expect("dhcpcd's binding");
    assert_eq!(b.address, addr);
    assert_eq!(b.locators.len(), 2);
    let params = hex::encode(b.cga_parameters(key.public_key_der()).to_bytes());
    let (ok, out) = verify_cga(&bin, &address, &params);
    assert!(
        ok && out.contains("valid"),
        "pshim6 cga verify refused {address}: {out}"
    );
    // The independent check can say no: another address with the same parameters fails.
    let mut other = addr.octets();
    other[15] ^= 1;
    assert!(!verify_cga(&bin, &Ipv6Addr::from(other).to_string(), &params).0);

    // Phase 2: the binary; a clean restart, then SIGKILL and restart.
    let s1 = lab.start_server(&bin, &cfg_path);
    let second = lab.dhcpcd();
    assert_eq!(
        second["new_dhcp6_ia_na1_ia_addr1"], address,
        "same DUID, same CMULA"
    );
    assert_eq!(
        second["new_dhcp6_server_id"], server_id,
        "server DUID persisted"
    );
    lab.kill9(s1);
    let s2 = lab.start_server(&bin, &cfg_path);
    let third = lab.dhcpcd();
    assert_eq!(
        third["new_dhcp6_ia_na1_ia_addr1"], address,
        "same CMULA after kill -9"
    );
    assert_eq!(third["new_dhcp6_server_id"], server_id);

    // The debug dump agrees with the journal and its parameters verify.
    let dump = run(Command::new(&bin)
        .args(["dhcp", "--dump", "--config"])
        .arg(&cfg_path));
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let entry = dump["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == address.as_str())
        .unwrap();
    assert_eq!(entry["duid"], hex::encode(&client));
    assert!(verify_cga(&bin, &address, entry["parameters"].as_str().unwrap()).0);

    // Phase 3: 1,000 Solicits from distinct DUIDs (DUID-UUID style), then SIGKILL.
    let duids: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| {
            let mut d = vec![0, 4];
            d.extend_from_slice(&[0x5a; 12]);
            d.extend_from_slice(&i.to_be_bytes());
            d
        })
        .collect();
    let started = Instant::now();
    let got = mass_solicit(&lab.ns, lab.host_ifindex(), &duids);
    eprintln!("1000 Solicits answered in {:?}", started.elapsed());
    assert_eq!(got.len(), 1000, "every Solicit advertised");
    let distinct: HashSet<_> = got.values().collect();
    assert_eq!(distinct.len(), 1000, "distinct CMULAs");
    lab.kill9(s2);
    let (state, report) = JournalStore::read(&journal).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let by_duid: HashMap<&[u8], &dhcp::Binding> = state
        .bindings
        .iter()
        .map(|b| (b.client.duid.as_slice(), b))
        .collect();
    for d in &duids {
        let b = by_duid
            .get(d.as_slice())
            .unwrap_or_else(|| panic!("{} not journaled", hex::encode(d)));
        assert_eq!(b.address, got[d], "journal matches the Advertise");
        cga::verify(b.address, &b.cga_parameters(key.public_key_der())).unwrap();
    }
    // dhcpcd's binding survived all of it.
    assert!(state
        .bindings
        .iter()
        .any(|b| b.client.duid == client && b.address == addr));
}
