//! Golden test of `pshim6 replay`: a fixed capture (`tests/data/replay-golden-in.pcap`, made
//! by [`golden_input`] below) replayed through the pipeline of a fixed configuration (seed
//! 7) in simulated time. The output must equal `tests/data/replay-golden-out.pcap` byte for
//! byte; the frames the test can build on its own (echo reply, NATv6 both ways) are also
//! compared with independently built expected frames, and tshark must read the Shim6 control
//! messages (I1, R1bis) with good checksums.
//!
//! Regenerating the data after a deliberate change of behaviour:
//! `PSHIM6_BLESS=1 cargo test -p pshim6 --test replay_golden` rewrites both captures (and
//! still runs every check); review the diff with `tshark -r ...` before committing.

// Test helpers outside `#[test]` fns: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::too_many_arguments)]

use std::fs;
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wire::pcap::{PcapReader, PcapWriter};

const PROXY_IN: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PROXY_A: [u8; 6] = [0x02, 0, 0, 0, 1, 0x01];
const PROXY_B: [u8; 6] = [0x02, 0, 0, 0, 2, 0x01];
const HOST: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const ROUTER_A: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
const ROUTER_B: [u8; 6] = [0x02, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb];
/// A legacy (non-SHIM6) server on the Internet: reached through NATv6.
const LEGACY: &str = "2001:db8:99::80";
/// A SHIM6 peer whose locators the configuration knows.
const PEER: &str = "fc00:99:88:77::2002";

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The site's one host: a Sec 0 CGA of the site key under the ULID prefix (seeded, so the
/// same on every run).
fn host() -> (Ipv6Addr, cga::CgaParameters) {
    let pem = include_str!("../../sim/keys/site-a.pem");
    let key = cga::SiteKey::from_pkcs8_pem(pem).unwrap();
    let (ulid, params) = cga::generate(
        key.public_key_der(),
        a("fc00:1:2:3::").octets()[..8].try_into().unwrap(),
        0,
        &[],
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    (ulid, params)
}

/// Upper-layer checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
fn l4_checksum(src: Ipv6Addr, dst: Ipv6Addr, next: u8, body: &[u8]) -> u16 {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(body.len() as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, next]);
    p.extend_from_slice(body);
    wire::checksum::checksum(&p)
}

/// Ethernet + IPv6 frame; `csum_at` is where the upper-layer checksum goes in `body`.
fn frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop: u8,
    body: &[u8],
    csum_at: Option<usize>,
) -> Vec<u8> {
    let mut body = body.to_vec();
    if let Some(at) = csum_at {
        body[at..at + 2].copy_from_slice(&[0, 0]);
        let c = l4_checksum(src, dst, next, &body);
        body[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, hop]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&body);
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Neighbor Advertisement (solicited, override) for `target` with its link-layer address.
fn na(router_mac: [u8; 6], proxy_mac: [u8; 6], target: Ipv6Addr, to: Ipv6Addr) -> Vec<u8> {
    let mut b = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[2, 1]);
    b.extend_from_slice(&router_mac);
    frame(proxy_mac, router_mac, target, to, 58, 255, &b, Some(2))
}

fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 2,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

fn locator(prefix: &str, ulid: Ipv6Addr) -> Ipv6Addr {
    let mut o = ulid.octets();
    o[..8].copy_from_slice(&a(prefix).octets()[..8]);
    Ipv6Addr::from(o)
}

fn locator_a(ulid: Ipv6Addr) -> Ipv6Addr {
    locator("2001:db8:a:1::", ulid)
}

/// The NATv6 packets of the capture, inside and outside views (the test builds both).
struct Nat {
    out_inside: Vec<u8>,
    out_provider: Vec<u8>,
    in_provider: Vec<u8>,
    in_inside: Vec<u8>,
}

/// The NATv6 provider of a flow is a hash of its address pair (`natv6::flow_hash`); for
/// this host and [`LEGACY`] it is provider B, pinned here.
fn nat_frames(ulid: Ipv6Addr) -> Nat {
    let loc = locator("2001:db8:b:1::", ulid);
    let legacy = a(LEGACY);
    let q = udp(40000, 7777, b"golden query");
    let r = udp(7777, 40000, b"golden answer");
    Nat {
        out_inside: frame(PROXY_IN, HOST, ulid, legacy, 17, 64, &q, Some(6)),
        // Prefix swap to provider B's locator, hop limit - 1, checksum recomputed from
        // scratch here (the appliance updates it incrementally, RFC 1624).
        out_provider: frame(ROUTER_B, PROXY_B, loc, legacy, 17, 63, &q, Some(6)),
        in_provider: frame(PROXY_B, ROUTER_B, legacy, loc, 17, 60, &r, Some(6)),
        in_inside: frame(HOST, PROXY_IN, legacy, ulid, 17, 59, &r, Some(6)),
    }
}

/// The input capture: (time in ns, frame).
fn golden_input() -> Vec<(u64, Vec<u8>)> {
    let (ulid, _) = host();
    let ms = |m: u64| 1_700_000_000_000_000_000 + m * 1_000_000;
    let nat = nat_frames(ulid);
    let mut v = Vec::new();
    // Both exit routers answer the slow path's start-up solicitations.
    v.push((
        ms(1),
        na(ROUTER_A, PROXY_A, a("fe80::a"), link_local(PROXY_A)),
    ));
    v.push((
        ms(2),
        na(ROUTER_B, PROXY_B, a("fe80::b"), link_local(PROXY_B)),
    ));
    // The host solicits its router (multicast: inside port), announcing its MAC.
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&a("fe80::1").octets());
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&HOST);
    v.push((
        ms(10),
        frame(
            [0x33, 0x33, 0xff, 0, 0, 1],
            HOST,
            ulid,
            a("ff02::1:ff00:1"),
            58,
            255,
            &ns,
            Some(2),
        ),
    ));
    // Echo request to the proxy's inside address.
    let echo = [128, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    v.push((
        ms(20),
        frame(
            PROXY_IN,
            HOST,
            ulid,
            a("fc00:1:2:3::1"),
            58,
            64,
            &echo,
            Some(2),
        ),
    ));
    // NATv6 out and its answer in.
    v.push((ms(30), nat.out_inside));
    v.push((ms(40), nat.in_provider));
    // First packet to a SHIM6 peer: punted, the slow path sends I1 (then retransmits).
    let p = udp(40001, 7, b"to a shim6 peer");
    v.push((
        ms(50),
        frame(PROXY_IN, HOST, ulid, a(PEER), 17, 64, &p, Some(6)),
    ));
    // Payload for a context tag nobody holds: R1bis (RFC 5533 §7.17).
    let mut shim = vec![17, 0, 0x80 | 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc];
    shim.extend_from_slice(&udp(7, 40001, b"stale"));
    v.push((
        ms(60),
        frame(
            PROXY_A,
            ROUTER_A,
            a("2001:db8:c:5::2002"),
            locator_a(ulid),
            140,
            60,
            &shim,
            None,
        ),
    ));
    v
}

fn to_pcap(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (t, f) in frames {
        w.write_frame(*t, f).unwrap();
    }
    w.into_inner().unwrap()
}

fn read_pcap(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut r = PcapReader::new(fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        v.push((rec.nanos, rec.frame));
    }
    v
}

fn blessing() -> bool {
    std::env::var_os("PSHIM6_BLESS").is_some()
}

/// Config in a fresh directory, with the site key at mode 0600 beside it.
fn config_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pshim6-replay-golden-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let key = dir.join("site.pem");
    fs::write(&key, include_str!("../../sim/keys/site-a.pem")).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let (ulid, params) = host();
    let toml = format!(
        r#"backend = "mem"
ulid_prefix = "fc00:1:2:3::/64"
site_key = "site.pem"
workers = 1
seed = 7
[inside]
interface = "in0"
mac = "02:00:00:00:00:01"
link_local = "fe80::1"
global = "fc00:1:2:3::1"
[[providers]]
id = 1
interface = "pa0"
mac = "02:00:00:00:01:01"
prefix = "2001:db8:a:1::/64"
exit = {{ next_hop = "fe80::a" }}
[[providers]]
id = 2
interface = "pb0"
mac = "02:00:00:00:02:01"
prefix = "2001:db8:b:1::/64"
exit = {{ next_hop = "fe80::b" }}
[[hosts]]
ulid = "{ulid}"
parameters = "{}"
[[peers]]
ulid = "{PEER}"
locators = ["2001:db8:c:5::2002", "2001:db8:d:5::2002"]
"#,
        hex::encode(params.to_bytes())
    );
    fs::write(dir.join("pshim6.toml"), toml).unwrap();
    dir
}

#[test]
fn replay_matches_the_golden_capture() {
    let input = golden_input();
    let bytes = to_pcap(&input);
    let in_path = data("replay-golden-in.pcap");
    if blessing() {
        fs::write(&in_path, &bytes).unwrap();
    }
    assert_eq!(
        fs::read(&in_path).unwrap(),
        bytes,
        "tests/data/replay-golden-in.pcap is not what golden_input() builds (bless: see module docs)"
    );

    let dir = config_dir();
    let out_path = dir.join("out.pcap");
    let run = Command::new(env!("CARGO_BIN_EXE_pshim6"))
        .arg("replay")
        .arg("--config")
        .arg(dir.join("pshim6.toml"))
        .arg("--in")
        .arg(&in_path)
        .arg("--out")
        .arg(&out_path)
        .args(["--port", "auto", "--linger", "5"])
        // `PSHIM6_*` variables are configuration overrides for the binary; this one is ours.
        .env_remove("PSHIM6_BLESS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "replay failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    for want in [
        "replay: 8 frame(s) fed, 0 refused, 5.059 s simulated",
        "  forwarded.nat_out 1",
        "  forwarded.nat_in 1",
        "  punted.no_context 1",
        "  punted.unknown_tag 1",
        "  punted.neighbor 3",
        "  punted.for_us 1",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in:\n{stdout}");
    }

    let out = read_pcap(&out_path);
    let golden = data("replay-golden-out.pcap");
    if blessing() {
        fs::copy(&out_path, &golden).unwrap();
    }
    assert_eq!(
        fs::read(&out_path).unwrap(),
        fs::read(&golden).unwrap(),
        "output differs from tests/data/replay-golden-out.pcap; frames:\n{:02x?}",
        out.iter().map(|(_, f)| f).collect::<Vec<_>>()
    );

    // Independently built expectations.
    let (ulid, _) = host();
    let nat = nat_frames(ulid);
    let frames: Vec<&Vec<u8>> = out.iter().map(|(_, f)| f).collect();
    assert!(
        frames.contains(&&nat.out_provider),
        "NATv6 out not byte-exact"
    );
    assert!(frames.contains(&&nat.in_inside), "NATv6 in not byte-exact");
    let echo = [129, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    let reply = frame(
        HOST,
        PROXY_IN,
        a("fc00:1:2:3::1"),
        ulid,
        58,
        64,
        &echo,
        Some(2),
    );
    assert!(frames.contains(&&reply), "echo reply not byte-exact");

    // tshark reads the control messages (RFC 5533 §5.3): an I1 (type 1) from the host's
    // locator on provider A, retransmitted (randomised timeout) to the peer's second
    // locator, and an R1bis (type 5) answering the unknown tag.
    let d = e2e::tshark::dissect(&out_path).unwrap();
    assert_eq!(d.len(), out.len());
    let i1: Vec<_> = d.iter().filter(|x| x.shim6_type == Some(1)).collect();
    let r1bis: Vec<_> = d.iter().filter(|x| x.shim6_type == Some(5)).collect();
    assert_eq!(i1.len(), 2, "{d:#?}");
    assert_eq!(r1bis.len(), 1, "{d:#?}");
    for x in i1.iter().chain(&r1bis) {
        assert_eq!(x.checksum_status.as_deref(), Some("Good"), "{x:?}");
        assert_eq!(x.src, Some(locator_a(ulid)), "{x:?}");
    }
    assert_eq!(i1[0].dst, Some(a("2001:db8:c:5::2002")));
    assert_eq!(i1[1].dst, Some(a("2001:db8:d:5::2002")));
    assert_eq!(r1bis[0].dst, Some(a("2001:db8:c:5::2002")));
    let _ = fs::remove_dir_all(dir);
}
