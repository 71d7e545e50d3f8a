//! The ALG (standalone runner, kernel sockets) in front of a real Knot DNS server, queried
//! with the real `kdig` and `dig` clients.
//!
//! Knot and the ALG both listen on the loopback address `::1` on unprivileged ports chosen
//! at run time, so no network namespace is needed (nothing else talks to them). Knot, kdig
//! and dig come from Debian's `knot`, `knot-dnsutils` and `bind9-dnsutils`; `ci/deps.sh`
//! installs them. When one is missing the test FAILS, naming that script.

// Test helpers outside `#[test]` fns: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dns_alg::hickory_proto::op::{Message, MessageType, OpCode, Query};
use dns_alg::hickory_proto::rr::{Name, RecordType};
use dns_alg::runner::Runner;
use dns_alg::zone::{zone_records, ZoneConfig, ZoneHost};
use dns_alg::{AlgConfig, AlgEvent, HostTable};
use serde_json::Value;
use wire::{Locator, Ulid};

/// Finds `tool` on PATH or in the sbin directories (knotd lives in /usr/sbin).
fn tool(tool: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` not found: run ci/deps.sh (as root) to install knot, knot-dnsutils \
                 and bind9-dnsutils"
        )
    })
}

/// A port free for both UDP and TCP on ::1 right now.
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("[::1]:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A knotd process; killed and its directory removed on drop.
struct Knot {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Knot {
    /// Starts knotd serving `zones` (origin, zone-file text) and waits until it answers.
    fn start(zones: &[(&str, String)]) -> Self {
        let knotd = tool("knotd");
        let dir = scratch("knot");
        let port = free_port();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: ::1@{port}\n\
             database:\n    storage: \"{d}/db\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: \"{d}\"\n\
             zone:\n",
            d = dir.display()
        );
        for (i, (origin, text)) in zones.iter().enumerate() {
            let file = format!("zone{i}.zone");
            fs::write(dir.join(&file), text).unwrap();
            conf.push_str(&format!("  - domain: {origin}\n    file: {file}\n"));
        }
        let conf_path = dir.join("knot.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("knotd.log")).unwrap())
            .spawn()
            .expect("start knotd");
        let knot = Knot {
            child,
            dir,
            addr: SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        };
        knot.wait_ready(zones.iter().map(|z| z.0));
        knot
    }

    /// Polls each zone's SOA until knot answers NOERROR.
    fn wait_ready<'a>(&self, origins: impl Iterator<Item = &'a str>) {
        let sock = UdpSocket::bind("[::1]:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        for origin in origins {
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut m = Message::new(1, MessageType::Query, OpCode::Query);
            m.add_query(Query::query(
                Name::from_ascii(origin).unwrap(),
                RecordType::SOA,
            ));
            let q = m.to_vec().unwrap();
            loop {
                let _ = sock.send_to(&q, self.addr);
                let mut buf = [0u8; 4096];
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    let r = Message::from_vec(&buf[..n]).unwrap();
                    if r.metadata.response_code == dns_alg::hickory_proto::op::ResponseCode::NoError
                        && !r.answers.is_empty()
                    {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    let log = fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default();
                    panic!("knotd did not serve {origin} within 15 s; its log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Runs a DNS client against the ALG; returns stdout, failing on a non-zero exit.
fn client(program: &str, alg: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(tool(program))
        .arg(format!("@{}", alg.ip()))
        .arg("-p")
        .arg(alg.port().to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `kdig +json` (RFC 8427 JSON).
fn kdig_json(alg: SocketAddr, args: &[&str]) -> Value {
    let mut all = vec!["+json", "+retry=0", "+timeout=5"];
    all.extend_from_slice(args);
    let text = client("kdig", alg, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kdig output is not JSON ({e}): {text}"))
}

/// The AAAA addresses (and TTLs) in a kdig JSON answer section.
fn json_aaaa(v: &Value) -> Vec<(Ipv6Addr, u64)> {
    v["answerRRs"]
        .as_array()
        .map(|rrs| {
            rrs.iter()
                .filter(|rr| rr["TYPE"] == 28)
                .map(|rr| {
                    (
                        rr["rdataAAAA"].as_str().unwrap().parse().unwrap(),
                        rr["TTL"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const PEER_ULID: &str = "fc00::1:34bd:84c2:3689:9c47";
const PEER2_ULID: &str = "fc00:0:0:1::2";
const HOST_ULID: &str = "fc00:0:0:5::1";

fn peer_locators() -> Vec<Ipv6Addr> {
    vec![
        "2001:db8:a::1234".parse().unwrap(),
        "2001:db8:b::1234".parse().unwrap(),
    ]
}

/// The forward zone: the records `pshim6 dns zone` prints for `peer` (AAAA + RFC 3597 ULID
/// record), `peer2` with different TTLs, a legacy name and a 40-AAAA name.
/// Asserts that the runner's next event (within 5 s) reports `locators` for `ulid` with a
/// TTL of `ttl_secs`.
fn expect_peer_locators(runner: &Runner, ulid: &str, locators: Vec<Locator>, ttl_secs: u64) {
    let ev = runner
        .events()
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        ev,
        AlgEvent::PeerLocators {
            ulid: Ulid(ulid.parse().unwrap()),
            locators,
            ttl: Duration::from_secs(ttl_secs),
        }
    );
}

fn forward_zone(generated: &[String]) -> String {
    let mut z = String::from(
        "$ORIGIN example.test.\n$TTL 300\n\
         @ SOA ns hostmaster 1 3600 900 604800 300\n@ NS ns\nns AAAA ::1\n\
         legacy AAAA 2001:db8:c::1\n\
         peer2 120 AAAA 2001:db8:a::2\npeer2 900 TYPE65280 \\# 16 fc000000000000010000000000000002\n",
    );
    for i in 0..40 {
        z.push_str(&format!("many AAAA 2001:db8:d::{:x}\n", i + 1));
    }
    for l in generated {
        z.push_str(l);
        z.push('\n');
    }
    z
}

/// The reverse zone of fc00:0:0:1::/64 with the generated PTRs and one for peer2.
fn reverse_zone(generated: &[String]) -> String {
    let mut z = String::from(
        "$ORIGIN 1.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.ip6.arpa.\n$TTL 300\n\
         @ SOA ns.example.test. hostmaster.example.test. 1 3600 900 604800 300\n\
         @ NS ns.example.test.\n",
    );
    z.push_str(&format!(
        "{} PTR peer2.example.test.\n",
        dns_alg::reverse_name(PEER2_ULID.parse().unwrap()).to_ascii()
    ));
    for l in generated {
        z.push_str(l);
        z.push('\n');
    }
    z
}

#[test]
fn alg_against_knot_with_real_clients() {
    // Fail (never skip) without the tools, before starting anything.
    for t in ["knotd", "kdig", "dig"] {
        tool(t);
    }
    let site = ZoneConfig {
        zone: "example.test.".into(),
        ttl: 3600,
        ulid_type: 65280,
        hosts: vec![ZoneHost {
            name: "peer".into(),
            ulid: PEER_ULID.parse().unwrap(),
            locators: peer_locators(),
        }],
    };
    let records = zone_records(&site).unwrap();
    assert!(records
        .forward
        .iter()
        .any(|l| l.contains("TYPE65280 \\# 16 fc00")));
    let knot = Knot::start(&[
        ("example.test.", forward_zone(&records.forward)),
        (
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.ip6.arpa.",
            reverse_zone(&records.reverse),
        ),
    ]);

    let mut config = AlgConfig::new(vec![knot.addr]);
    config.upstream_timeout = Duration::from_millis(500);
    config.hosts = HostTable::parse(&format!("{HOST_ULID} www.site.test\n")).unwrap();
    let runner = Runner::start("[::1]:0".parse().unwrap(), config, 7).unwrap();
    let alg = runner.local_addr();

    // SHIM6 peer: a single AAAA carrying the ULID (kdig, JSON), and the event.
    let v = kdig_json(alg, &["peer.example.test", "AAAA"]);
    assert_eq!(v["RCODE"], 0, "{v}");
    assert_eq!(
        json_aaaa(&v),
        vec![(PEER_ULID.parse().unwrap(), 3600)],
        "{v}"
    );
    expect_peer_locators(
        &runner,
        PEER_ULID,
        peer_locators().into_iter().map(Locator).collect(),
        3600,
    );

    // TTL = min(AAAA 120, ULID record 900).
    let v = kdig_json(alg, &["peer2.example.test", "AAAA"]);
    assert_eq!(
        json_aaaa(&v),
        vec![(PEER2_ULID.parse().unwrap(), 120)],
        "{v}"
    );

    // Over TCP too.
    let v = kdig_json(alg, &["+tcp", "peer.example.test", "AAAA"]);
    assert_eq!(
        json_aaaa(&v),
        vec![(PEER_ULID.parse().unwrap(), 3600)],
        "{v}"
    );

    // Legacy peer (no ULID record): the real AAAA, with dig.
    let out = client("dig", alg, &["+short", "legacy.example.test", "AAAA"]);
    assert_eq!(out.trim(), "2001:db8:c::1");

    // The question's case comes back as asked.
    let out = client(
        "dig",
        alg,
        &["+noall", "+answer", "PeEr.ExAmPlE.tEsT", "AAAA"],
    );
    assert!(out.contains("PeEr.ExAmPlE.tEsT."), "{out}");
    assert!(out.contains(PEER_ULID), "{out}");

    // 40 AAAA records over UDP with a 512-byte EDNS buffer: TC, and the OPT record is kept.
    let v = kdig_json(
        alg,
        &["+bufsize=512", "+ignore", "many.example.test", "AAAA"],
    );
    assert_eq!(v["TC"], 1, "{v}");
    assert!(json_aaaa(&v).is_empty(), "{v}");
    assert!(
        v["additionalRRs"]
            .as_array()
            .is_some_and(|a| a.iter().any(|rr| rr["TYPE"] == 41)),
        "OPT kept: {v}"
    );
    let out = client(
        "dig",
        alg,
        &["+bufsize=512", "+ignore", "many.example.test", "AAAA"],
    );
    assert!(out.contains("flags: qr tc") || out.contains(" tc"), "{out}");
    assert!(out.contains("OPT PSEUDOSECTION"), "OPT kept: {out}");
    // Without EDNS: TC (512 bytes) and no OPT.
    let out = client(
        "dig",
        alg,
        &["+noedns", "+ignore", "many.example.test", "AAAA"],
    );
    assert!(out.contains(" tc"), "{out}");
    assert!(!out.contains("OPT PSEUDOSECTION"), "{out}");
    // The full answer over TCP, and dig's own fallback after TC.
    let v = kdig_json(alg, &["+tcp", "many.example.test", "AAAA"]);
    assert_eq!(json_aaaa(&v).len(), 40, "{v}");
    let out = client(
        "dig",
        alg,
        &["+bufsize=512", "+short", "many.example.test", "AAAA"],
    );
    assert_eq!(out.lines().count(), 40, "{out}");

    // Reverse: dig -x of the ULID gives its PTR.
    let out = client("dig", alg, &["+short", "-x", PEER_ULID]);
    assert_eq!(out.trim(), "peer.example.test.");

    // The site's own host: its CMULA, answered by the ALG itself.
    let out = client("dig", alg, &["+short", "www.site.test", "AAAA"]);
    assert_eq!(out.trim(), HOST_ULID);

    // EDNS version 1: BADVERS.
    let out = client("kdig", alg, &["+edns=1", "legacy.example.test", "AAAA"]);
    assert!(out.contains("BADVERS"), "{out}");

    // The data plane's reverse path against the real server: PTR, then AAAA + ULID record.
    runner.resolve_ulid(Ulid(PEER2_ULID.parse().unwrap()));
    expect_peer_locators(
        &runner,
        PEER2_ULID,
        vec![Locator("2001:db8:a::2".parse().unwrap())],
        120,
    );

    // The debug view: the locator cache holds the peers' AAAA sets.
    let out = client(
        "dig",
        alg,
        &["+short", "-c", "CH", "-t", "TXT", "cache.pshim6."],
    );
    let line = out
        .lines()
        .find(|l| l.contains(PEER_ULID))
        .unwrap_or_else(|| panic!("peer not in the cache view: {out}"));
    for l in peer_locators() {
        assert!(line.contains(&format!("\"{l}\"")), "{line}");
    }
    assert!(out.contains(PEER2_ULID), "{out}");
    assert!(
        !out.contains("2001:db8:c::1"),
        "legacy peers are not cached: {out}"
    );

    let (stats, cache) = runner.snapshot().unwrap();
    assert_eq!(cache.len(), 2);
    assert!(stats.ulid_answers >= 4, "{stats:?}");
    assert!(stats.truncated >= 2, "{stats:?}");
    assert_eq!(stats.servfail, 0, "{stats:?}");
    runner.shutdown();
    drop(knot);
}

#[test]
fn dead_upstreams_give_servfail() {
    tool("dig");
    // Two servers that never answer (nothing listens on these ports).
    let mut config = AlgConfig::new(vec![
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), free_port()),
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), free_port()),
    ]);
    config.upstream_timeout = Duration::from_millis(200);
    config.upstream_attempts = 3;
    let runner = Runner::start("[::1]:0".parse().unwrap(), config, 1).unwrap();
    let out = client(
        "dig",
        runner.local_addr(),
        &["+tries=1", "+timeout=5", "x.example.test", "TXT"],
    );
    assert!(out.contains("status: SERVFAIL"), "{out}");
    let (stats, _) = runner.snapshot().unwrap();
    assert_eq!(stats.upstream_sent, 3, "{stats:?}");
}
