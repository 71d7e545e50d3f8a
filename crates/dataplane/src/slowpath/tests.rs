//! The slow path as the workers see it: frames punted in, frames injected out.

use std::net::Ipv6Addr;

use rand::rngs::StdRng;
use rand::SeedableRng;
use table::TableConfig;
use wire::Locator;

use super::*;
use crate::neighbor::neighbor_table;
use crate::punt::PuntReason;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const ROUTER_A: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

struct Fixture {
    sp: SlowPath,
    link: Arc<SlowPathLink>,
    host: Ulid,
    t0: Instant,
}

fn fixture() -> Fixture {
    let dp = DataplaneConfig::example();
    let key = SiteKey::from_pkcs8_pem(include_str!("../../../sim/keys/site-a.pem")).unwrap();
    let (host, params) = cga::generate(
        key.public_key_der(),
        dp.ulid_prefix.0.to_be_bytes(),
        0,
        &[],
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let mut peers = PeerLocatorCache::new();
    peers.insert(Ulid(a("fc00:99::1")), vec![Locator(a("2001:db8:c::1"))]);
    let site = SiteSetup {
        key,
        engine: EngineConfig::default(),
        hosts: vec![(Ulid(host), params)],
        seed: 9,
        peers,
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
    let sp = SlowPath::new(SlowPathConfig::default(), dp, site, io, t0).unwrap();
    Fixture {
        sp,
        link,
        host: Ulid(host),
        t0,
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

/// A UDP packet from the inside host to `dst`, as the worker punts it (checksum irrelevant).
fn host_frame(src: Ulid, dst: Ipv6Addr) -> Vec<u8> {
    let ip = frame::ipv6(
        src.0,
        dst,
        17,
        64,
        &[0x11, 0x11, 0x22, 0x22, 0, 12, 0, 0, 1, 2, 3, 4],
    )
    .unwrap();
    frame::ethernet(MacAddr([0x02, 0, 0, 0, 0, 0x01]), MacAddr(HOST_MAC), &ip)
}

#[test]
fn first_packet_starts_a_handshake_on_the_provider_of_the_source_locator() {
    let Fixture {
        mut sp,
        link,
        host,
        t0,
    } = fixture();
    link.punt(
        PuntReason::NoContext,
        PortId(0),
        &host_frame(host, a("fc00:99::1")),
    )
    .unwrap();
    sp.poll(t0);
    // Neither exit router is resolved yet: one NS each, the I1 is held.
    let out = injected(&link);
    assert_eq!(out.len(), 2, "{out:02x?}");
    for (port, f) in &out {
        assert_eq!(f[54], 135, "a Neighbor Solicitation on port {port:?}");
    }
    assert_eq!(sp.stats().connects, 1);
    assert_eq!(sp.stats().pending.queued, 1);

    // Router A answers: the I1 leaves on provider A's port, from the host's locator there.
    let ll = frame::eui64_link_local(MacAddr([0x02, 0, 0, 0, 1, 0x01]));
    let mut na = nd_na(a("fe80::a"));
    let c = checksum(a("fe80::a"), ll, &na);
    na[2..4].copy_from_slice(&c.to_be_bytes());
    let ip = frame::ipv6(a("fe80::a"), ll, 58, 255, &na).unwrap();
    let f = frame::ethernet(MacAddr([0x02, 0, 0, 0, 1, 0x01]), MacAddr(ROUTER_A), &ip);
    link.punt(PuntReason::Neighbor, PortId(1), &f).unwrap();
    sp.poll(t0 + Duration::from_millis(10));
    let out = injected(&link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (port, i1) = &out[0];
    assert_eq!(*port, PortId(1));
    assert_eq!(&i1[0..6], &ROUTER_A);
    assert_eq!(i1[14 + 6], 140, "Next Header: Shim6");
    let loc = locator(a("2001:db8:a:1::"), host);
    assert_eq!(&i1[14 + 8..14 + 24], &loc.octets());
    assert_eq!(&i1[14 + 24..14 + 40], &a("2001:db8:c::1").octets());
    assert_eq!(i1[54 + 2] & 0x7f, 1, "an I1");
    assert_eq!(sp.engine().context_count(), 1);
}

#[test]
fn unknown_peers_and_foreign_sources_start_nothing() {
    let Fixture {
        mut sp,
        link,
        host,
        t0,
    } = fixture();
    link.punt(
        PuntReason::NoContext,
        PortId(0),
        &host_frame(host, a("fc00:77::1")),
    )
    .unwrap();
    link.punt(
        PuntReason::NoContext,
        PortId(0),
        &host_frame(Ulid(a("fc00:1:2:3::99")), a("fc00:99::1")),
    )
    .unwrap();
    sp.poll(t0);
    let s = sp.stats();
    assert_eq!((s.no_locators, s.connect_errors, s.connects), (1, 1, 0));
    assert_eq!(s.pending.queued, 0);
    assert_eq!(sp.engine().context_count(), 0);
}

/// The host's locator under `prefix` (the prefix swap of the addressing model).
fn locator(prefix: Ipv6Addr, host: Ulid) -> Ipv6Addr {
    crate::config::Prefix64::of(prefix).with_iid_of(host.0)
}

/// A solicited NA for `target` with its link-layer address (RFC 4861 §4.4), checksum zero.
fn nd_na(target: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    v.extend_from_slice(&target.octets());
    v.extend_from_slice(&[2, 1]);
    v.extend_from_slice(&ROUTER_A);
    v
}

fn checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut v = Vec::new();
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 58]);
    v.extend_from_slice(icmp);
    wire::checksum::checksum(&v)
}

/// Issue #10: a flood of first packets without a context fills the data lane of the punt
/// queue; the router's Neighbor Advertisement still reaches the slow path, which drains the
/// control lane first, and the handshake's I1 leaves in the same poll.
#[test]
fn a_no_context_flood_does_not_starve_neighbor_discovery() {
    let Fixture {
        mut sp,
        link,
        host,
        t0,
    } = fixture();
    let first = host_frame(host, a("fc00:99::1"));
    link.punt(PuntReason::NoContext, PortId(0), &first).unwrap();
    sp.poll(t0);
    assert_eq!(injected(&link).len(), 2, "one NS per exit router");

    // The flood: many more no-context frames than the queue holds, none drained.
    let mut refused = 0;
    for _ in 0..1_000 {
        if link.punt(PuntReason::NoContext, PortId(0), &first).is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 1_000 - 64, "the data lane holds 64");
    assert_eq!(link.punt_lane_len(crate::punt::PuntLane::Data), 64);

    // Router A answers: its NA is queued despite the flood.
    let ll = frame::eui64_link_local(MacAddr([0x02, 0, 0, 0, 1, 0x01]));
    let mut na = nd_na(a("fe80::a"));
    let c = checksum(a("fe80::a"), ll, &na);
    na[2..4].copy_from_slice(&c.to_be_bytes());
    let ip = frame::ipv6(a("fe80::a"), ll, 58, 255, &na).unwrap();
    let f = frame::ethernet(MacAddr([0x02, 0, 0, 0, 1, 0x01]), MacAddr(ROUTER_A), &ip);
    link.punt(PuntReason::Neighbor, PortId(1), &f).unwrap();
    sp.poll(t0 + Duration::from_millis(10));
    let out = injected(&link);
    let i1s: Vec<_> = out
        .iter()
        .filter(|(port, f)| *port == PortId(1) && f[14 + 6] == 140 && f[54 + 2] & 0x7f == 1)
        .collect();
    assert_eq!(i1s.len(), 1, "the I1 leaves on provider A: {out:02x?}");
    assert_eq!(&i1s[0].1[0..6], &ROUTER_A);
    assert_eq!(
        sp.stats().connects,
        1,
        "the flood is one pair: one handshake"
    );
}
