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

const KEY: &str = include_str!("../../../sim/keys/site-a.pem");
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

#[test]
fn dhcpv6_solicit_gets_a_reply_with_a_cga_and_the_host_becomes_an_engine_host() {
    let mut fx = fixture("dhcp");
    let client_ll = a("fe80::11:22ff:fe33:4455");
    let duid = vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [1, 2, 3]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.clone()));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::RapidCommit);
    m.opts_mut().insert(DhcpOption::ORO(ORO {
        opts: vec![OptionCode::DomainNameServers],
    }));
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 7,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    let f = udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(client_ll, 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0);
    let out: Vec<_> = injected(&fx.link)
        .into_iter()
        .filter(|(_, f)| f[20] == 17)
        .collect();
    assert_eq!(out.len(), 1, "one UDP answer: {out:02x?}");
    let (port, f) = &out[0];
    assert_eq!(*port, PortId(0));
    let (mac, src, dst, payload) = parse_udp(f);
    assert_eq!(mac, HOST_MAC, "to the MAC the Solicit came from");
    assert_eq!(src, sa(a("fe80::1"), 547), "from our link-local");
    assert_eq!(dst, sa(client_ll, 546));
    let reply = Dhcp::decode(&mut Decoder::new(&payload)).unwrap();
    assert_eq!(reply.msg_type(), MessageType::Reply, "rapid commit");
    assert_eq!(
        reply.opts().get(OptionCode::DomainNameServers),
        Some(&DhcpOption::DomainNameServers(vec![a("fc00:1:2:3::1")])),
        "the ALG's address as DNS server"
    );
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    let cmula = ia
        .opts
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAAddr(x) => Some(x.addr),
            _ => None,
        })
        .expect("an address");
    assert!(DataplaneConfig::example().ulid_prefix.contains(cmula));
    // The engine took it: it checked that it is a CGA of the site key under the prefix.
    let locators = fx.sp.engine().local_locators(Ulid(cmula));
    assert_eq!(
        locators,
        vec![
            Locator(dataplane::config::Prefix64::of(a("2001:db8:a:1::")).with_iid_of(cmula)),
            Locator(dataplane::config::Prefix64::of(a("2001:db8:b:1::")).with_iid_of(cmula)),
        ]
    );
    let s = fx.sp.stats();
    assert_eq!((s.udp_in, s.udp_out, s.services_hosts), (1, 1, 1));
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("host bound")
            && l.contains(&cmula.to_string())
            && l.contains("0003000102112233")),
        "{lines:?}"
    );
    let counters = fx.sp.services_counters();
    assert!(
        counters.contains(&("dhcp.reply".to_string(), 1)),
        "{counters:?}"
    );

    // A restart loads the binding from the journal: the host is an engine host at once.
    let again = fixture_reusing(&fx.dir);
    assert_eq!(again.engine().local_locators(Ulid(cmula)).len(), 2);
}

/// A slow path whose DHCPv6 journal is `dir`'s (what a restart sees).
fn fixture_reusing(dir: &std::path::Path) -> SlowPath {
    let dp = dataplane();
    let key = SiteKey::from_pkcs8_pem(KEY).unwrap();
    let cfg = dhcp::DhcpConfig {
        ulid_prefix: dhcp::Prefix64(dp.ulid_prefix.0.to_be_bytes()),
        journal: dir.join("leases.journal"),
        ..dhcp::DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/64'\njournal='j'\n",
        )
        .unwrap()
    };
    let timeline: Timeline = Arc::new(|_: &str| {});
    let dhcp = DhcpService::new(
        cfg,
        key.public_key_der(),
        dp.inside.mac.0,
        5,
        Arc::clone(&timeline),
    )
    .unwrap();
    let site = SiteSetup {
        key,
        engine: EngineConfig::default(),
        hosts: vec![],
        seed: 1,
        peers: PeerLocatorCache::new(),
        resolver: Box::new(StaticResolver::default()),
    };
    let (neighbors, _) = neighbor_table(64);
    let t0 = Instant::now();
    let io = SlowPathIo {
        table: TableWriter::new(&TableConfig::new(64, 1).with_seed(1)).unwrap(),
        neighbors,
        link: Arc::new(SlowPathLink::new(64, 64)),
        status: ProviderStatus::new(&dp),
        links: LinkState::new(3),
        shard: 0,
        epoch: t0,
    };
    let inside = dp.inside.global;
    let mut sp = SlowPath::new(SlowPathConfig::default(), dp, site, io, t0).unwrap();
    sp.set_services(
        Box::new(Services::new(inside, None, Some(dhcp), timeline)),
        t0,
    );
    sp
}

fn dns_query(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, DnsType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(qname).unwrap(), qtype));
    m.to_vec().unwrap()
}

fn dns_reply(query: &[u8], answers: Vec<Record>) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::response(q.id, OpCode::Query);
    r.metadata.authoritative = true;
    r.add_queries(q.queries.iter().cloned());
    r.answers = answers;
    r.to_vec().unwrap()
}

#[test]
fn dns_answer_with_a_ulid_record_caches_locators_and_the_first_packet_starts_an_i1() {
    let mut fx = fixture("dns");
    resolve_routers(&mut fx);
    let peer = a("fc00:99:88:77::2");
    let locs = [a("2001:db8:c:5::2"), a("2001:db8:d:5::2")];
    let host = sa(fx.host.0, 40_000);
    let q = dns_query(0x1234, "peer.example.", RecordType::AAAA);
    let f = udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        HOST_MAC,
        host,
        sa(a("fc00:1:2:3::1"), 53),
        &q,
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(2));
    let out = injected(&fx.link);
    assert_eq!(
        out.len(),
        2,
        "AAAA and ULID-record questions upstream: {out:02x?}"
    );
    let mut replies = Vec::new();
    for (port, f) in &out {
        assert_eq!(*port, PortId(1), "through the first provider");
        let (mac, src, dst, payload) = parse_udp(f);
        assert_eq!(mac, ROUTER_A, "to its exit router");
        assert_eq!(
            src,
            sa(a("2001:db8:a:1::1"), UPSTREAM_PORT),
            "from the provider's own address"
        );
        assert_eq!(dst, sa(a("2001:db8:53::53"), 53));
        let m = Message::from_vec(&payload).unwrap();
        let name = Name::from_ascii("peer.example.").unwrap();
        let answers = match m.queries[0].query_type() {
            RecordType::AAAA => locs
                .iter()
                .map(|l| Record::from_rdata(name.clone(), 300, RData::AAAA(AAAA(*l))))
                .collect(),
            RecordType::Unknown(65280) => vec![Record::from_rdata(
                name.clone(),
                300,
                RData::Unknown {
                    code: RecordType::Unknown(65280),
                    rdata: NULL::with(peer.octets().to_vec()),
                },
            )],
            other => panic!("unexpected question {other}"),
        };
        replies.push(udp_frame(
            [0x02, 0, 0, 0, 1, 0x01],
            ROUTER_A,
            dst,
            src,
            &dns_reply(&payload, answers),
        ));
    }
    for r in &replies {
        fx.link.punt(PuntReason::ForUs, PortId(1), r).unwrap();
    }
    fx.sp.poll(fx.t0 + Duration::from_millis(3));
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "the host's answer: {out:02x?}");
    let (port, f) = &out[0];
    assert_eq!(*port, PortId(0));
    let (mac, src, dst, payload) = parse_udp(f);
    assert_eq!(
        (mac, src, dst),
        (HOST_MAC, sa(a("fc00:1:2:3::1"), 53), host)
    );
    let m = Message::from_vec(&payload).unwrap();
    assert_eq!(m.id, 0x1234);
    let got: Vec<_> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::AAAA(x) => Some(x.0),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![peer], "the ULID instead of the locators");
    assert_eq!(
        fx.sp.peers_mut().get(Ulid(peer)),
        Some(&[Locator(locs[0]), Locator(locs[1])][..])
    );
    assert_eq!(fx.sp.stats().services_peers, 1);
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("peer {peer} learnt from DNS"))),
        "{lines:?}"
    );

    // The host's first packet to the ULID: an I1 at once, no resolver involved.
    let mut udp = vec![0x11, 0x11, 0x22, 0x22, 0, 12, 0, 0, 1, 2, 3, 4];
    udp[6..8].copy_from_slice(&[0, 0]);
    let f = frame(
        ([0x02, 0, 0, 0, 0, 0x01], HOST_MAC),
        fx.host.0,
        peer,
        17,
        64,
        udp,
        6,
    );
    fx.link.punt(PuntReason::NoContext, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(4));
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (port, i1) = &out[0];
    assert_eq!(*port, PortId(1));
    assert_eq!(&i1[0..6], &ROUTER_A);
    assert_eq!(i1[20], 140, "Shim6");
    assert_eq!(
        &i1[38..54],
        &locs[0].octets(),
        "to the first cached locator"
    );
    assert_eq!(i1[56] & 0x7f, 1, "an I1");
    let s = fx.sp.stats();
    assert_eq!((s.connects, s.resolving, s.no_locators), (1, 0, 0));
}

#[test]
fn unknown_peer_ulid_is_resolved_by_reverse_dns_and_its_waiting_packet_starts_an_i1() {
    let mut fx = fixture("reverse");
    resolve_routers(&mut fx);
    let peer = a("fc00:99:88:77::9");
    let udp = vec![0x11, 0x11, 0x22, 0x22, 0, 12, 0, 0, 1, 2, 3, 4];
    let f = frame(
        ([0x02, 0, 0, 0, 0, 0x01], HOST_MAC),
        fx.host.0,
        peer,
        17,
        64,
        udp,
        6,
    );
    fx.link.punt(PuntReason::NoContext, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(2));
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (_, _, _, payload) = parse_udp(&out[0].1);
    let m = Message::from_vec(&payload).unwrap();
    assert_eq!(m.queries[0].query_type(), RecordType::PTR);
    assert_eq!(
        m.queries[0].name().to_ascii(),
        dns_alg::reverse_name(peer).to_ascii()
    );
    let s = fx.sp.stats();
    assert_eq!((s.resolving, s.pending.queued), (1, 1));

    // PTR → peer9.example.; the ALG asks its AAAA and ULID record; with them the waiting
    // packet's handshake starts at once.
    let target = Name::from_ascii("peer9.example.").unwrap();
    let ptr = Record::from_rdata(
        dns_alg::reverse_name(peer),
        300,
        RData::PTR(dns_alg::hickory_proto::rr::rdata::PTR(target.clone())),
    );
    let answer_upstream = |fx: &mut Fixture, f: &[u8], answers: Vec<Record>, at: u64| {
        let (_, src, dst, payload) = parse_udp(f);
        let r = udp_frame(
            [0x02, 0, 0, 0, 1, 0x01],
            ROUTER_A,
            dst,
            src,
            &dns_reply(&payload, answers),
        );
        fx.link.punt(PuntReason::ForUs, PortId(1), &r).unwrap();
        fx.sp.poll(fx.t0 + Duration::from_millis(at));
    };
    answer_upstream(&mut fx, &out[0].1, vec![ptr], 3);
    let out = injected(&fx.link);
    assert_eq!(
        out.len(),
        2,
        "AAAA and ULID record of the PTR target: {out:02x?}"
    );
    for (i, (_, f)) in out.iter().enumerate() {
        let (_, _, _, payload) = parse_udp(f);
        let m = Message::from_vec(&payload).unwrap();
        assert_eq!(m.queries[0].name(), &target);
        let answers = match m.queries[0].query_type() {
            RecordType::AAAA => vec![Record::from_rdata(
                target.clone(),
                300,
                RData::AAAA(AAAA(a("2001:db8:c:5::9"))),
            )],
            _ => vec![Record::from_rdata(
                target.clone(),
                300,
                RData::Unknown {
                    code: RecordType::Unknown(65280),
                    rdata: NULL::with(peer.octets().to_vec()),
                },
            )],
        };
        answer_upstream(&mut fx, f, answers, 4 + i as u64);
    }
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (port, i1) = &out[0];
    assert_eq!(*port, PortId(1));
    assert_eq!(i1[20], 140, "Shim6");
    assert_eq!(&i1[38..54], &a("2001:db8:c:5::9").octets());
    assert_eq!(i1[56] & 0x7f, 1, "an I1");
    assert_eq!(fx.sp.stats().connects, 1);

    // A DNS query from outside (to a provider address) is not served; a bad checksum is
    // dropped.
    let q = dns_query(1, "x.example.", RecordType::AAAA);
    let outside = udp_frame(
        [0x02, 0, 0, 0, 1, 0x01],
        ROUTER_A,
        sa(a("2001:db8:99::1"), 4000),
        sa(a("2001:db8:a:1::1"), 53),
        &q,
    );
    let mut bad = udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        HOST_MAC,
        sa(fx.host.0, 4000),
        sa(a("fc00:1:2:3::1"), 53),
        &q,
    );
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    fx.link
        .punt(PuntReason::ForUs, PortId(1), &outside)
        .unwrap();
    fx.link.punt(PuntReason::ForUs, PortId(0), &bad).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(3));
    let s = fx.sp.stats();
    assert_eq!((s.udp_unhandled, s.udp_bad_checksum), (1, 1));
    assert!(injected(&fx.link).is_empty());
}

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

#[test]
fn dhcpv6_through_workers_and_slow_path_on_the_mem_backend() {
    use dataplane::backend::mem::{pair, MemConfig};
    use dataplane::backend::BufPool;
    use dataplane::buf::PacketBuf;
    use dataplane::io::PortQueue;
    use dataplane::slowpath::{Pipeline, PipelineConfig};

    let dir = std::env::temp_dir().join(format!("pshim6-services-mem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dp = dataplane();
    let key = SiteKey::from_pkcs8_pem(KEY).unwrap();
    let cfg = dhcp::DhcpConfig {
        ulid_prefix: dhcp::Prefix64(dp.ulid_prefix.0.to_be_bytes()),
        dns_servers: vec![dp.inside.global],
        journal: dir.join("leases.journal"),
        ..dhcp::DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/64'\njournal='j'\n",
        )
        .unwrap()
    };
    let timeline: Timeline = Arc::new(|_: &str| {});
    let dhcp = DhcpService::new(
        cfg,
        key.public_key_der(),
        dp.inside.mac.0,
        6,
        Arc::clone(&timeline),
    )
    .unwrap();
    let services = Services::new(dp.inside.global, None, Some(dhcp), timeline);
    let pool = Arc::new(BufPool::new(1024, 2048));
    let mut far = Vec::new();
    let mut queues = Vec::new();
    for port in [PortId(0), PortId(1), PortId(2)] {
        let (near, other) = pair(&pool, &MemConfig::new(1)).unwrap();
        far.push(other.into_queues().pop().unwrap());
        queues.push((port, near.into_queues().pop().unwrap()));
    }
    let site = SiteSetup {
        key,
        engine: EngineConfig::default(),
        hosts: vec![],
        seed: 2,
        peers: PeerLocatorCache::new(),
        resolver: Box::new(StaticResolver::default()),
    };
    let pcfg = PipelineConfig {
        dataplane: dp,
        slow_path: SlowPathConfig::default(),
        table_capacity: 64,
        neighbor_capacity: 64,
    };
    let p =
        Pipeline::start_with_services(pcfg, site, Some(Box::new(services)), vec![queues]).unwrap();

    let client_ll = a("fe80::11:22ff:fe33:4455");
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [4, 5, 6]);
    m.opts_mut().insert(DhcpOption::ClientId(vec![
        0, 3, 0, 1, 2, 0x11, 0x22, 0x33, 0x44, 0x55,
    ]));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    let solicit = udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(client_ll, 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    );
    let inside = &mut far[0];
    let mut b = inside.alloc().unwrap();
    b.reset_from(&solicit).unwrap();
    assert_eq!(inside.tx_burst(&mut vec![b]), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rx = Vec::with_capacity(32);
    let advertise = 'wait: loop {
        assert!(
            Instant::now() < deadline,
            "no DHCPv6 answer on the inside port"
        );
        inside.rx_burst(&mut rx, 32);
        for b in rx.drain(..) {
            let f = b.as_ref().to_vec();
            inside.free(b);
            if f.len() > 56 && f[20] == 17 && f[54..56] == [2, 35] {
                break 'wait f;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (mac, src, dst, payload) = parse_udp(&advertise);
    assert_eq!(
        (mac, src, dst),
        (HOST_MAC, sa(a("fe80::1"), 547), sa(client_ll, 546))
    );
    let msg = Dhcp::decode(&mut Decoder::new(&payload)).unwrap();
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    let report = p.stop();
    let s = report.slow_path.unwrap();
    assert_eq!((s.udp_in, s.udp_out), (1, 1));
    assert_eq!(s.services_hosts, 0, "advertised, not yet bound");
    assert!(report.services.contains(&("dhcp.advertise".to_string(), 1)));
    assert_eq!(
        report.workers[0].fast_path.punted[PuntReason::ForUs.index()],
        1,
        "punted ForUs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn upstream_retries_leave_a_provider_that_never_answers() {
    let mut fx = fixture("silent");
    resolve_routers(&mut fx);
    let host = sa(fx.host.0, 40_001);
    let q = dns_query(0x4242, "peer.example.", RecordType::AAAA);
    let f = udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        HOST_MAC,
        host,
        sa(a("fc00:1:2:3::1"), 53),
        &q,
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    // Provider 1 is cut beyond its link: nothing comes back. Each upstream timeout (2 s)
    // retries both questions.
    let mut sent = Vec::new();
    for step in 0..4u64 {
        fx.sp.poll(fx.t0 + Duration::from_millis(2 + step * 2_100));
        sent.extend(injected(&fx.link).into_iter().filter(|(_, f)| f[20] == 17));
    }
    let via: Vec<(PortId, SocketAddrV6)> = sent
        .iter()
        .map(|(p, f)| {
            let (mac, src, _, _) = parse_udp(f);
            let router = if *p == PortId(1) { ROUTER_A } else { ROUTER_B };
            assert_eq!(mac, router, "to the provider's own exit router");
            (*p, src)
        })
        .collect();
    let p1 = sa(a("2001:db8:a:1::1"), UPSTREAM_PORT);
    let p2 = sa(a("2001:db8:b:1::1"), UPSTREAM_PORT);
    assert_eq!(
        via[..4],
        [(PortId(1), p1); 4],
        "four unanswered datagrams through provider 1 first: {via:?}"
    );
    assert!(via.len() > 4, "{via:?}");
    assert!(
        via[4..].iter().all(|v| *v == (PortId(2), p2)),
        "then provider 2, from its own address: {via:?}"
    );

    // An answer through provider 2 reaches the host.
    let (_, f) = sent.last().unwrap();
    let (_, src, dst, payload) = parse_udp(f);
    let m = Message::from_vec(&payload).unwrap();
    let answers = if m.queries[0].query_type() == RecordType::AAAA {
        vec![Record::from_rdata(
            Name::from_ascii("peer.example.").unwrap(),
            60,
            RData::AAAA(AAAA(a("2001:db8:c:5::7"))),
        )]
    } else {
        vec![]
    };
    let r = udp_frame(
        [0x02, 0, 0, 0, 2, 0x01],
        ROUTER_B,
        dst,
        src,
        &dns_reply(&payload, answers),
    );
    fx.link.punt(PuntReason::ForUs, PortId(2), &r).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(2 + 3 * 2_100 + 1));
    let s = fx.sp.stats();
    assert_eq!(s.udp_in, 2, "the query and the upstream answer");
    assert_eq!(s.udp_no_route, 0);
}

/// Sends `m` from the host's link-local to ff02::1:2 and returns the server's answer.
fn dhcp_exchange(fx: &mut Fixture, m: &Dhcp, at: Duration) -> Dhcp {
    let f = udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(a("fe80::11:22ff:fe33:4455"), 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + at);
    let out: Vec<_> = injected(&fx.link)
        .into_iter()
        .filter(|(_, f)| f[20] == 17)
        .collect();
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (_, _, _, payload) = parse_udp(&out[0].1);
    Dhcp::decode(&mut Decoder::new(&payload)).unwrap()
}

fn ia_na(id: u32, addr: Option<Ipv6Addr>) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    if let Some(addr) = addr {
        opts.insert(DhcpOption::IAAddr(dhcproto::v6::IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    DhcpOption::IANA(IANA {
        id,
        t1: 0,
        t2: 0,
        opts,
    })
}

#[test]
fn a_released_lease_is_no_longer_an_engine_host() {
    let mut fx = fixture("release");
    let duid = vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x66];
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [7, 7, 7]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.clone()));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::RapidCommit);
    m.opts_mut().insert(ia_na(3, None));
    let reply = dhcp_exchange(&mut fx, &m, Duration::ZERO);
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    let cmula = ia
        .opts
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAAddr(x) => Some(x.addr),
            _ => None,
        })
        .unwrap();
    let Some(DhcpOption::ServerId(server)) = reply.opts().get(OptionCode::ServerId) else {
        panic!("no Server ID");
    };
    assert_eq!(fx.sp.engine().local_locators(Ulid(cmula)).len(), 2);

    let mut rel = Dhcp::new_with_id(MessageType::Release, [8, 8, 8]);
    rel.opts_mut().insert(DhcpOption::ClientId(duid));
    rel.opts_mut().insert(DhcpOption::ServerId(server.clone()));
    rel.opts_mut().insert(DhcpOption::ElapsedTime(0));
    rel.opts_mut().insert(ia_na(3, Some(cmula)));
    let reply = dhcp_exchange(&mut fx, &rel, Duration::from_millis(1));
    assert_eq!(reply.msg_type(), MessageType::Reply);
    assert!(
        fx.sp.engine().local_locators(Ulid(cmula)).is_empty(),
        "the engine no longer acts for it"
    );
    let s = fx.sp.stats();
    assert_eq!((s.services_hosts, s.services_hosts_released), (1, 1));
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("host released") && l.contains(&cmula.to_string())),
        "{lines:?}"
    );
}

#[test]
fn the_same_peer_answer_again_makes_no_second_timeline_line() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let timeline: Timeline = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let alg = AlgConfig::new(vec!["[2001:db8:53::53]:53".parse().unwrap()]);
    let mut dns = DnsService::new(alg, a("fc00:1:2:3::1"), UPSTREAM_PORT, 1, timeline).unwrap();
    let now = Instant::now();
    let peer = a("fc00:99:88:77::2");
    let name = Name::from_ascii("peer.example.").unwrap();
    let mut outputs = Vec::new();
    for (round, loc) in [
        (1u16, "2001:db8:c:5::2"),
        (2, "2001:db8:c:5::2"),
        (3, "2001:db8:c:5::3"),
    ] {
        let q = dns_query(round, "peer.example.", RecordType::AAAA);
        let d = dataplane::slowpath::DatagramIn {
            src: sa(a("fc00:1:2:3::10"), 40_000),
            dst: sa(a("fc00:1:2:3::1"), 53),
            inside: true,
            payload: &q,
        };
        dns.handle_query(now, &d);
        let ups: Vec<_> = std::iter::from_fn(|| dns.poll_datagram()).collect();
        assert_eq!(ups.len(), 2, "{ups:?}");
        for u in ups {
            assert_eq!(u.src.port(), UPSTREAM_PORT);
            let m = Message::from_vec(&u.payload).unwrap();
            let answers = if m.queries[0].query_type() == RecordType::AAAA {
                vec![Record::from_rdata(
                    name.clone(),
                    60,
                    RData::AAAA(AAAA(a(loc))),
                )]
            } else {
                vec![Record::from_rdata(
                    name.clone(),
                    60,
                    RData::Unknown {
                        code: RecordType::Unknown(65280),
                        rdata: NULL::with(peer.octets().to_vec()),
                    },
                )]
            };
            let r = dns_reply(&u.payload, answers);
            let d = dataplane::slowpath::DatagramIn {
                src: u.dst,
                dst: sa(a("2001:db8:a:1::1"), UPSTREAM_PORT),
                inside: false,
                payload: &r,
            };
            dns.handle_upstream(now, &d);
        }
        let to_host: Vec<_> = std::iter::from_fn(|| dns.poll_datagram()).collect();
        assert_eq!(to_host.len(), 1);
        assert_eq!(to_host[0].src, sa(a("fc00:1:2:3::1"), 53));
        outputs.extend(std::iter::from_fn(|| dns.poll_output()));
    }
    assert_eq!(
        outputs.len(),
        3,
        "every answer goes to the slow path: {outputs:?}"
    );
    let learnt: Vec<_> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("learnt from DNS"))
        .cloned()
        .collect();
    assert_eq!(
        learnt.len(),
        2,
        "a line only when the locators change: {learnt:?}"
    );
    assert!(learnt[1].contains("2001:db8:c:5::3"));
}
