//! The services on a real slow path, frames in and out as the workers see them: DHCPv6 makes
//! engine hosts, the DNS ALG goes upstream through a provider from the provider's address and
//! its answers fill the peer locator cache, so a host's first packet starts the handshake at
//! once.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cga::SiteKey;
use dataplane::config::{DataplaneConfig, MacAddr};
use dataplane::fastpath::{ProviderStatus, PuntReason};
use dataplane::io::PortId;
use dataplane::neighbor::neighbor_table;
use dataplane::punt::SlowPathLink;
use dataplane::slowpath::{
    LinkState, PeerLocatorCache, SiteSetup, SlowPath, SlowPathConfig, SlowPathIo, StaticResolver,
};
use dhcproto::v6::{DhcpOption, DhcpOptions, Message as Dhcp, MessageType, OptionCode, IANA, ORO};
use dhcproto::{Decodable, Decoder, Encodable};
use dns_alg::hickory_proto::op::{Message, MessageType as DnsType, OpCode, Query};
use dns_alg::hickory_proto::rr::rdata::{AAAA, NULL};
use dns_alg::hickory_proto::rr::{Name, RData, Record, RecordType};
use dns_alg::AlgConfig;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shim6::EngineConfig;
use table::{TableConfig, TableWriter};
use wire::{Locator, Ulid};

use super::dhcp::DhcpService;
use super::dns::DnsService;
use super::{Services, Timeline};

const KEY: &str = include_str!("../../../../sim/keys/site-a.pem");
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const ROUTER_A: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
const ROUTER_B: [u8; 6] = [0x02, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb];
const UPSTREAM_PORT: u16 = 50_000;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn sa(ip: Ipv6Addr, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(ip, port, 0, 0)
}

struct Fixture {
    sp: SlowPath,
    link: Arc<SlowPathLink>,
    /// A host configured statically (not through DHCPv6).
    host: Ulid,
    t0: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dataplane() -> DataplaneConfig {
    let mut dp = DataplaneConfig::example();
    dp.providers[0].address = Some(a("2001:db8:a:1::1"));
    dp.providers[1].address = Some(a("2001:db8:b:1::1"));
    dp
}

fn fixture(name: &str) -> Fixture {
    let dp = dataplane();
    let key = SiteKey::from_pkcs8_pem(KEY).unwrap();
    let (host, params) = cga::generate(
        key.public_key_der(),
        dp.ulid_prefix.0.to_be_bytes(),
        0,
        &[],
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("pshim6-services-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let timeline: Timeline = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));

    let dhcp_cfg = dhcp::DhcpConfig {
        site_key: dir.join("unused.pem"),
        ulid_prefix: dhcp::Prefix64(dp.ulid_prefix.0.to_be_bytes()),
        pa_prefixes: dp
            .providers
            .iter()
            .map(|p| dhcp::Prefix64(p.prefix.0.to_be_bytes()))
            .collect(),
        dns_servers: vec![dp.inside.global],
        journal: dir.join("leases.journal"),
        ..dhcp::DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/64'\njournal='j'\n",
        )
        .unwrap()
    };
    let dhcp = DhcpService::new(
        dhcp_cfg,
        key.public_key_der(),
        dp.inside.mac.0,
        3,
        Arc::clone(&timeline),
    )
    .unwrap();
    let mut alg = AlgConfig::new(vec!["[2001:db8:53::53]:53".parse().unwrap()]);
    alg.upstream_timeout = Duration::from_secs(2);
    let dns = DnsService::new(
        alg,
        dp.inside.global,
        UPSTREAM_PORT,
        4,
        Arc::clone(&timeline),
    )
    .unwrap();
    let services = Services::new(dp.inside.global, Some(dns), Some(dhcp), timeline);

    let site = SiteSetup {
        key,
        engine: EngineConfig::default(),
        hosts: vec![(Ulid(host), params)],
        seed: 9,
        peers: PeerLocatorCache::new(),
        resolver: Box::new(StaticResolver::default()),
    };
    let table = TableWriter::new(&TableConfig::new(64, 1).with_seed(1)).unwrap();
    let (neighbors, _) = neighbor_table(64);
    let link = Arc::new(SlowPathLink::new(64, 64));
    let t0 = Instant::now();
    let io = SlowPathIo {
        table,
        neighbors,
        link: Arc::clone(&link),
        status: ProviderStatus::new(&dp),
        links: LinkState::new(3),
        shard: 0,
        epoch: t0,
    };
    let mut sp = SlowPath::new(SlowPathConfig::default(), dp, site, io, t0).unwrap();
    sp.set_services(Box::new(services), t0);
    Fixture {
        sp,
        link,
        host: Ulid(host),
        t0,
        lines,
        dir,
    }
}

fn injected(link: &SlowPathLink) -> Vec<(PortId, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(i) = link.pop_inject() {
        v.push((i.port, i.frame.as_slice().to_vec()));
        link.recycle_inject(i.frame);
    }
    v
}

fn pseudo_sum(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, body: &[u8]) -> u16 {
    let mut v = Vec::new();
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, proto]);
    v.extend_from_slice(body);
    wire::checksum::checksum(&v)
}

/// Ethernet + IPv6 + `body` of protocol `proto` (checksum at `csum` filled in).
fn frame(
    (dst_mac, src_mac): ([u8; 6], [u8; 6]),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: u8,
    hop: u8,
    mut body: Vec<u8>,
    csum: usize,
) -> Vec<u8> {
    let c = pseudo_sum(src, dst, proto, &body);
    body[csum..csum + 2].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[proto, hop]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&body);
    f
}

fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: SocketAddrV6,
    dst: SocketAddrV6,
    payload: &[u8],
) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    frame((dst_mac, src_mac), *src.ip(), *dst.ip(), 17, 64, u, 6)
}

/// A received UDP frame: (eth dst, IPv6 src/port, IPv6 dst/port, payload), checksum checked.
fn parse_udp(f: &[u8]) -> ([u8; 6], SocketAddrV6, SocketAddrV6, Vec<u8>) {
    assert_eq!(&f[12..14], &[0x86, 0xdd], "IPv6");
    assert_eq!(f[20], 17, "UDP: {f:02x?}");
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    let udp = &f[54..];
    assert_eq!(pseudo_sum(src, dst, 17, udp), 0, "UDP checksum");
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    (
        f[..6].try_into().unwrap(),
        sa(src, sport),
        sa(dst, dport),
        udp[8..].to_vec(),
    )
}

/// Resolves both exit routers (fe80::a on port 1, fe80::b on port 2) and drains the output.
fn resolve_routers(fx: &mut Fixture) {
    fx.sp.poll(fx.t0);
    for (port, router, mac) in [(1, "fe80::a", ROUTER_A), (2, "fe80::b", ROUTER_B)] {
        let pmac = [0x02, 0, 0, 0, port as u8, 0x01];
        let ll = dataplane::slowpath::frame::eui64_link_local(MacAddr(pmac));
        let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend_from_slice(&a(router).octets());
        na.extend_from_slice(&[2, 1]);
        na.extend_from_slice(&mac);
        let f = frame((pmac, mac), a(router), ll, 58, 255, na, 2);
        fx.link
            .punt(PuntReason::Neighbor, PortId(port), &f)
            .unwrap();
    }
    fx.sp.poll(fx.t0 + Duration::from_millis(1));
    injected(&fx.link);
    assert_eq!(fx.sp.stats().nd.resolved, 2);
}

mod alg;
mod leases;
mod shared;

#[test]
fn context_events_make_one_timeline_line_each() {
    use shim6::{ContextEvent, FailReason, RemoveReason};
    use wire::{ContextTag, LocatorPair};
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let timeline: Timeline = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let mut s = Services::new(a("fc00:1:2:3::1"), None, None, timeline);
    let tag = |v| ContextTag::new(v).unwrap();
    let pair = |l: &str, p: &str| LocatorPair {
        local: Locator(a(l)),
        peer: Locator(a(p)),
    };
    let now = Instant::now();
    for ev in [
        ContextEvent::Established {
            local_tag: tag(5),
            peer_tag: tag(6),
            local_ulid: Ulid(a("fc00:1:2:3::10")),
            peer_ulid: Ulid(a("fc00:9::20")),
            pair: pair("2001:db8:a:1::10", "2001:db8:c::20"),
            recovered: false,
        },
        ContextEvent::PairChanged {
            local_tag: tag(5),
            pair: pair("2001:db8:b:1::10", "2001:db8:d::20"),
        },
        ContextEvent::Removed {
            local_tag: tag(5),
            reason: RemoveReason::Idle,
        },
        ContextEvent::Failed {
            local_ulid: Ulid(a("fc00:1:2:3::10")),
            peer_ulid: Ulid(a("fc00:9::21")),
            reason: FailReason::EFailed,
        },
    ] {
        dataplane::slowpath::LocalServices::on_context_event(&mut s, now, &ev);
    }
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (line, want) in lines.iter().zip([
        vec![
            "established",
            "fc00:1:2:3::10 <-> fc00:9::20",
            "2001:db8:a:1::10",
            "2001:db8:c::20",
        ],
        vec!["failed over", "2001:db8:b:1::10", "2001:db8:d::20"],
        vec!["removed", "Idle"],
        vec!["fc00:9::21", "failed", "EFailed"],
    ]) {
        for w in want {
            assert!(line.contains(w), "`{line}` lacks `{w}`");
        }
    }
    // Without services, datagrams are not taken.
    let d = dataplane::slowpath::DatagramIn {
        src: sa(a("fe80::2"), 546),
        dst: sa(a("ff02::1:2"), 547),
        inside: true,
        payload: &[1, 2, 3, 4],
    };
    assert!(!dataplane::slowpath::LocalServices::handle_datagram(
        &mut s, now, &d
    ));
}
