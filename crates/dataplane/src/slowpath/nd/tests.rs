//! ND responder and resolver tests. Solicitations and advertisements are written field by
//! field with their own checksum (not with the emitters under test).

use super::*;
use crate::neighbor::neighbor_table;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const INSIDE: PortId = PortId(0);
const PROV: PortId = PortId(1);
const INSIDE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const PROV_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x01]);
const ROUTER_MAC: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const HOST_IID: u64 = 0xa1b2_c3d4_e5f6_1001;

fn nd() -> Nd {
    let ports = vec![
        NdPort {
            port: INSIDE,
            mac: INSIDE_MAC,
            link_local: a("fe80::1"),
            addresses: vec![a("fc00:1:2:3::1")],
            locator_prefix: None,
            inside: true,
        },
        NdPort {
            port: PROV,
            mac: PROV_MAC,
            link_local: frame::eui64_link_local(PROV_MAC),
            addresses: vec![],
            locator_prefix: Some(Prefix64::of(a("2001:db8:a:1::"))),
            inside: false,
        },
    ];
    Nd::new(NdConfig::default(), ports, [HOST_IID].into_iter().collect())
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn icmp_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut s = sum16(&src.octets()) + sum16(&dst.octets()) + icmp.len() as u32 + 58 + sum16(icmp);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv6/ICMPv6 frame with hop limit `hl`, written field by field.
fn icmp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hl: u8,
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    icmp[2..4].fill(0);
    let c = icmp_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hl]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// NS for `target` with an optional source link-layer option (RFC 4861 §4.3).
fn ns(target: Ipv6Addr, slla: Option<[u8; 6]>) -> Vec<u8> {
    let mut v = vec![135, 0, 0, 0, 0, 0, 0, 0];
    v.extend_from_slice(&target.octets());
    if let Some(m) = slla {
        v.extend_from_slice(&[1, 1]);
        v.extend_from_slice(&m);
    }
    v
}

/// NA for `target` with flags and a target link-layer option (RFC 4861 §4.4).
fn na(flags: u8, target: Ipv6Addr, tlla: [u8; 6]) -> Vec<u8> {
    let mut v = vec![136, 0, 0, 0, flags, 0, 0, 0];
    v.extend_from_slice(&target.octets());
    v.extend_from_slice(&[2, 1]);
    v.extend_from_slice(&tlla);
    v
}

struct Run {
    nbr: NeighborWriter,
    out: Outbox,
    released: Vec<Released>,
}

impl Run {
    fn new() -> Self {
        Self {
            nbr: neighbor_table(64).0,
            out: Vec::new(),
            released: Vec::new(),
        }
    }
    fn feed(&mut self, nd: &mut Nd, now: Instant, port: PortId, f: &[u8]) -> bool {
        let v = Ipv6Frame::parse(f).unwrap();
        nd.handle(
            now,
            port,
            &v,
            &mut self.nbr,
            &mut self.out,
            &mut self.released,
        )
    }
}

#[test]
fn ns_for_a_host_locator_on_a_provider_port_gets_an_na() {
    let mut nd = nd();
    let mut r = Run::new();
    let loc = a("2001:db8:a:1:a1b2:c3d4:e5f6:1001");
    let router = a("fe80::a");
    let f = icmp_frame(
        [0x33, 0x33, 0xff, 0xf6, 0x10, 0x01],
        ROUTER_MAC,
        router,
        a("ff02::1:fff6:1001"),
        255,
        ns(loc, Some(ROUTER_MAC)),
    );
    assert!(r.feed(&mut nd, Instant::now(), PROV, &f));
    assert_eq!(r.out.len(), 1);
    let (port, na) = &r.out[0];
    assert_eq!(*port, PROV);
    // Ethernet: to the soliciting router, from our provider-port MAC.
    assert_eq!(&na[0..6], &ROUTER_MAC);
    assert_eq!(&na[6..12], &PROV_MAC.0);
    assert_eq!(&na[12..14], &[0x86, 0xdd]);
    let ip = &na[14..];
    assert_eq!(ip[6], 58);
    assert_eq!(ip[7], 255, "ND hop limit");
    assert_eq!(&ip[8..24], &loc.octets(), "source = the target");
    assert_eq!(&ip[24..40], &router.octets());
    let icmp = &ip[40..];
    assert_eq!(usize::from(u16::from_be_bytes([ip[4], ip[5]])), icmp.len());
    assert_eq!(icmp[0], 136);
    assert_eq!(
        icmp[4], 0x60,
        "Solicited + Override, not Router on a provider link"
    );
    assert_eq!(&icmp[8..24], &loc.octets(), "target");
    assert_eq!(&icmp[24..26], &[2, 1], "target link-layer address option");
    assert_eq!(&icmp[26..32], &PROV_MAC.0);
    assert_eq!(icmp_checksum(loc, router, icmp), 0, "checksum verifies");
    // The router is learnt (it solicited one of ours), so answering it needs no resolution.
    assert_eq!(r.nbr.lookup(PROV, router), Some(MacAddr(ROUTER_MAC)));
    assert_eq!(nd.stats().na_out, 1);
}

#[test]
fn ns_for_other_addresses_is_not_answered() {
    let mut nd = nd();
    let mut r = Run::new();
    let now = Instant::now();
    // Another interface id under our prefix, and a host locator on the inside port.
    for (port, target) in [
        (PROV, a("2001:db8:a:1::99")),
        (INSIDE, a("2001:db8:a:1:a1b2:c3d4:e5f6:1001")),
        (PROV, a("2001:db8:b:1:a1b2:c3d4:e5f6:1001")),
    ] {
        let f = icmp_frame(
            [0x33; 6],
            ROUTER_MAC,
            a("fe80::a"),
            solicited_node(target),
            255,
            ns(target, Some(ROUTER_MAC)),
        );
        assert!(r.feed(&mut nd, now, port, &f));
    }
    assert!(r.out.is_empty());
    // Hop limit other than 255: invalid (§7.1.1), ignored.
    let loc = a("2001:db8:a:1:a1b2:c3d4:e5f6:1001");
    let f = icmp_frame(
        [0x33; 6],
        ROUTER_MAC,
        a("fe80::a"),
        solicited_node(loc),
        254,
        ns(loc, Some(ROUTER_MAC)),
    );
    assert!(!r.feed(&mut nd, now, PROV, &f));
    // Bad checksum: ignored.
    let mut f = icmp_frame(
        [0x33; 6],
        ROUTER_MAC,
        a("fe80::a"),
        solicited_node(loc),
        255,
        ns(loc, Some(ROUTER_MAC)),
    );
    let n = f.len();
    f[n - 1] ^= 0xff;
    assert!(!r.feed(&mut nd, now, PROV, &f));
    assert!(r.out.is_empty());
}

#[test]
fn inside_answers_as_router_learns_hosts_and_answers_dad() {
    let mut nd = nd();
    let mut r = Run::new();
    let host = a("fc00:1:2:3:a1b2:c3d4:e5f6:1001");
    let f = icmp_frame(
        [0x33, 0x33, 0xff, 0, 0, 1],
        HOST_MAC,
        host,
        a("ff02::1:ff00:1"),
        255,
        ns(a("fe80::1"), Some(HOST_MAC)),
    );
    assert!(r.feed(&mut nd, Instant::now(), INSIDE, &f));
    let icmp = &r.out[0].1[54..];
    assert_eq!(icmp[4], 0xe0, "Router + Solicited + Override on the inside");
    assert_eq!(&r.out[0].1[0..6], &HOST_MAC);
    assert_eq!(r.nbr.lookup(INSIDE, host), Some(MacAddr(HOST_MAC)));
    // DAD probe for our global address: answered to all-nodes, not solicited.
    let f = icmp_frame(
        [0x33; 6],
        HOST_MAC,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(a("fc00:1:2:3::1")),
        255,
        ns(a("fc00:1:2:3::1"), None),
    );
    assert!(r.feed(&mut nd, Instant::now(), INSIDE, &f));
    let f = &r.out[1].1;
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(&f[14 + 24..14 + 40], &ALL_NODES.octets());
    assert_eq!(f[54 + 4], 0xa0, "Router + Override, no Solicited");
}

#[test]
fn resolution_holds_then_releases_or_drops() {
    let mut nd = nd();
    let mut r = Run::new();
    let t0 = Instant::now();
    let router = a("fe80::a");
    nd.resolve(t0, PROV, router, Some(Held::Ip(vec![1, 2, 3])), &mut r.out);
    nd.resolve(t0, PROV, router, Some(Held::Ip(vec![4])), &mut r.out);
    // One multicast NS, to the solicited-node group, with our source link-layer address.
    assert_eq!(r.out.len(), 1);
    let f = r.out[0].1.clone();
    assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 0, 0x0a]);
    assert_eq!(
        &f[14 + 8..14 + 24],
        &frame::eui64_link_local(PROV_MAC).octets()
    );
    assert_eq!(&f[14 + 24..14 + 40], &a("ff02::1:ff00:a").octets());
    assert_eq!(f[54], 135);
    assert_eq!(&f[54 + 8..54 + 24], &router.octets());
    assert_eq!(&f[54 + 24..54 + 32], &[1, 1, 2, 0, 0, 0, 1, 1]);
    // Retransmitted after RETRANS_TIMER.
    nd.poll(t0 + Duration::from_millis(500), &mut r.nbr, &mut r.out);
    assert_eq!(r.out.len(), 1);
    nd.poll(t0 + Duration::from_secs(1), &mut r.nbr, &mut r.out);
    assert_eq!(r.out.len(), 2);
    // The answer releases both held packets, in order.
    let ours = frame::eui64_link_local(PROV_MAC);
    let f = icmp_frame(
        PROV_MAC.0,
        ROUTER_MAC,
        router,
        ours,
        255,
        na(0x60, router, ROUTER_MAC),
    );
    assert!(r.feed(&mut nd, t0 + Duration::from_millis(1100), PROV, &f));
    assert_eq!(r.nbr.lookup(PROV, router), Some(MacAddr(ROUTER_MAC)));
    assert_eq!(
        r.released,
        vec![
            (PROV, MacAddr(ROUTER_MAC), Held::Ip(vec![1, 2, 3])),
            (PROV, MacAddr(ROUTER_MAC), Held::Ip(vec![4]))
        ]
    );

    // Nobody answers for fe80::b: three solicitations, then the held packet is dropped.
    let mut r = Run::new();
    nd.resolve(t0, PROV, a("fe80::b"), Some(Held::Ip(vec![9])), &mut r.out);
    for s in 1..=3 {
        nd.poll(t0 + Duration::from_secs(s), &mut r.nbr, &mut r.out);
    }
    assert_eq!(r.out.len(), 3);
    assert_eq!(nd.stats().failed, 1);
    assert_eq!(nd.stats().held_dropped, 1);
    // An unsolicited NA for an address we never asked about is not learnt on a provider port.
    let f = icmp_frame(
        PROV_MAC.0,
        ROUTER_MAC,
        a("fe80::c"),
        ours,
        255,
        na(0x20, a("fe80::c"), ROUTER_MAC),
    );
    assert!(r.feed(&mut nd, t0, PROV, &f));
    assert_eq!(r.nbr.lookup(PROV, a("fe80::c")), None);
}

#[test]
fn aged_entries_are_probed_and_removed_when_silent() {
    let mut nd = nd();
    let mut r = Run::new();
    let t0 = Instant::now();
    let host = a("fc00:1:2:3::77");
    // Learnt from the host's NA on the inside.
    let f = icmp_frame(
        INSIDE_MAC.0,
        HOST_MAC,
        host,
        a("fe80::1"),
        255,
        na(0x20, host, HOST_MAC),
    );
    assert!(r.feed(&mut nd, t0, INSIDE, &f));
    assert_eq!(r.nbr.lookup(INSIDE, host), Some(MacAddr(HOST_MAC)));
    nd.poll(t0 + Duration::from_secs(29), &mut r.nbr, &mut r.out);
    assert!(r.out.is_empty());
    // After REACHABLE_TIME: a unicast probe to the known MAC.
    nd.poll(t0 + Duration::from_secs(30), &mut r.nbr, &mut r.out);
    assert_eq!(r.out.len(), 1);
    assert_eq!(&r.out[0].1[0..6], &HOST_MAC);
    assert_eq!(&r.out[0].1[14 + 24..14 + 40], &host.octets());
    for s in 31..=33 {
        nd.poll(t0 + Duration::from_secs(s), &mut r.nbr, &mut r.out);
    }
    assert_eq!(r.out.len(), 3);
    assert_eq!(r.nbr.lookup(INSIDE, host), None, "silent neighbour removed");
}

#[test]
fn router_solicitation_gets_an_advertisement_of_the_site_prefix() {
    let mut nd = nd();
    let mut r = Run::new();
    let t0 = Instant::now();
    nd.enable_ra(
        RaConfig {
            mtu: Some(1492),
            ..RaConfig::default()
        },
        Prefix64::of(a("fc00:1:2:3::")),
        t0 + Duration::from_secs(20),
    );
    let host_ll = a("fe80::1234");
    let mut rs = vec![133, 0, 0, 0, 0, 0, 0, 0, 1, 1];
    rs.extend_from_slice(&HOST_MAC);
    let f = icmp_frame(
        [0x33, 0x33, 0, 0, 0, 2],
        HOST_MAC,
        host_ll,
        a("ff02::2"),
        255,
        rs,
    );
    assert!(r.feed(&mut nd, t0, INSIDE, &f));
    assert_eq!(r.out.len(), 1);
    let f = &r.out[0].1;
    assert_eq!(
        &f[0..6],
        &HOST_MAC,
        "unicast to the soliciting host (learnt from its RS)"
    );
    let icmp = &f[54..];
    assert_eq!(
        (icmp[0], icmp[4], icmp[5]),
        (134, 64, 0xc0),
        "RA, hop limit 64, M and O"
    );
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1800);
    assert_eq!(icmp_checksum(a("fe80::1"), host_ll, icmp), 0);
    // The prefix information option carries the site /64, on-link, not autonomous.
    let opts = &icmp[16..];
    let pi = opts.chunks(8).position(|c| c[0] == 3).unwrap() * 8;
    assert_eq!((opts[pi + 1], opts[pi + 2], opts[pi + 3]), (4, 64, 0x80));
    assert_eq!(&opts[pi + 16..pi + 32], &a("fc00:1:2:3::").octets());
    assert!(
        opts.chunks(8)
            .any(|c| c[0] == 5 && c[4..8] == 1492u32.to_be_bytes()),
        "MTU option"
    );
    // Periodic: none before the first due time, one at it.
    nd.poll(t0 + Duration::from_secs(19), &mut r.nbr, &mut r.out);
    assert_eq!(r.out.len(), 1);
    nd.poll(t0 + Duration::from_secs(20), &mut r.nbr, &mut r.out);
    assert_eq!(r.out.len(), 2);
    assert_eq!(&r.out[1].1[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
}
