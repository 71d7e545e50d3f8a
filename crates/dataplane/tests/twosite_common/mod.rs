//! Shared fixtures of the two-site tests: two multihomed sites (keys, ULID prefixes, two
//! providers each, one legacy host each) and frame builders written field by field, with
//! their own checksum, independently of the code under test. Submodules: `core_routes`, the
//! routing decision of the core router between the sites' providers; `te`, what the
//! traffic-engineering simulations share. The in-memory lab built from these is `mem_lab`,
//! the network-namespace one `netns_lab`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;
use std::time::Duration;

use cga::{CgaParameters, SiteKey};
use dataplane::config::{DataplaneConfig, Exit, InsideConfig, MacAddr, Prefix64, ProviderConfig};
use dataplane::io::{PortId, BURST};
use dataplane::slowpath::{
    PeerLocatorCache, PipelineConfig, SiteSetup, SlowPathConfig, StaticResolver,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use shim6::EngineConfig;
use wire::{Locator, Ulid};

pub(crate) mod core_routes;
pub(crate) mod te;

pub(crate) const INSIDE: PortId = PortId(0);
pub(crate) const PROV_A: PortId = PortId(1);
pub(crate) const PROV_B: PortId = PortId(2);
/// The provider routers' link-local address on every provider link (the exits' next hop).
pub(crate) const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// The proxies' link-local address on their inside link (the hosts' default router).
pub(crate) const PROXY_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub(crate) const UDP_PORT: u16 = 4242;

pub(crate) fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// One site of the lab.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub(crate) n: u8,
    pub(crate) key_pem: &'static str,
    pub(crate) ulid_prefix: Prefix64,
    /// PA prefixes of providers A and B.
    pub(crate) pa: [Prefix64; 2],
    pub(crate) inside_mac: MacAddr,
    /// Our MACs on providers A and B.
    pub(crate) prov_mac: [MacAddr; 2],
    /// The legacy host's MAC.
    pub(crate) host_mac: MacAddr,
}

pub(crate) fn site(n: u8) -> Site {
    let (key_pem, ulid, pa) = match n {
        1 => (
            include_str!("../../../sim/keys/site-a.pem"),
            "fc00:1:1:1::",
            ["2001:db8:1a::", "2001:db8:1b::"],
        ),
        _ => (
            include_str!("../../../sim/keys/site-b.pem"),
            "fc00:2:2:2::",
            ["2001:db8:2a::", "2001:db8:2b::"],
        ),
    };
    Site {
        n,
        key_pem,
        ulid_prefix: Prefix64::of(a(ulid)),
        pa: [Prefix64::of(a(pa[0])), Prefix64::of(a(pa[1]))],
        inside_mac: MacAddr([0x02, 0x50, n, 0, 0, 0x01]),
        prov_mac: [
            MacAddr([0x02, 0x50, n, 0, 0x0a, 0x01]),
            MacAddr([0x02, 0x50, n, 0, 0x0b, 0x01]),
        ],
        host_mac: MacAddr([0x02, 0x40, n, 0, 0, 0x10]),
    }
}

/// The core router's MAC on link `i` (0 = site 1 A, 1 = site 1 B, 2 = site 2 A, 3 = site 2 B).
pub(crate) fn core_mac(i: usize) -> MacAddr {
    MacAddr([0x02, 0xc0, 0, 0, 0, i as u8 + 1])
}

impl Site {
    pub(crate) fn key(&self) -> SiteKey {
        SiteKey::from_pkcs8_pem(self.key_pem).unwrap()
    }

    /// The legacy host's ULID: a CGA (Sec 0) of the site key, the same on every run.
    pub(crate) fn host(&self) -> (Ulid, CgaParameters) {
        let mut rng = StdRng::seed_from_u64(u64::from(self.n) * 7919);
        self.cga_host(&self.key(), &mut rng)
    }

    /// `n` hosts of the site (the many-host simulations): CGAs (Sec 0) of the site key, the
    /// same on every run.
    pub(crate) fn hosts(&self, n: usize) -> Vec<(Ulid, CgaParameters)> {
        let key = self.key();
        let mut rng = StdRng::seed_from_u64(u64::from(self.n) * 31);
        (0..n).map(|_| self.cga_host(&key, &mut rng)).collect()
    }

    /// A ULID in the site's prefix: a CGA (Sec 0) of `key` with parameters drawn from `rng`.
    fn cga_host(&self, key: &SiteKey, rng: &mut StdRng) -> (Ulid, CgaParameters) {
        let (addr, params) = cga::generate(
            key.public_key_der(),
            self.ulid_prefix.0.to_be_bytes(),
            0,
            &[],
            rng,
        )
        .unwrap();
        (Ulid(addr), params)
    }

    /// The host's locators (PA prefix + its interface id), providers A and B.
    pub(crate) fn host_locators(&self) -> Vec<Locator> {
        let (u, _) = self.host();
        self.pa
            .iter()
            .map(|p| Locator(p.with_iid_of(u.0)))
            .collect()
    }

    pub(crate) fn global(&self) -> Ipv6Addr {
        self.ulid_prefix.with_iid_of(a("::1"))
    }

    pub(crate) fn dataplane(&self) -> DataplaneConfig {
        let provider = |i: usize| ProviderConfig {
            id: i as u16 + 1,
            port: PortId(i as u16 + 1),
            mac: self.prov_mac[i],
            mtu: 1500,
            prefix: self.pa[i],
            exit: Exit::Direct {
                next_hop: ROUTER_LL,
            },
            address: None,
            up: true,
        };
        DataplaneConfig {
            ulid_prefix: self.ulid_prefix,
            inside: InsideConfig {
                port: INSIDE,
                mac: self.inside_mac,
                mtu: 1500,
                link_local: PROXY_LL,
                global: self.global(),
            },
            providers: vec![provider(0), provider(1)],
            punt_queue: 1024,
            inject_queue: 1024,
            burst: BURST,
            worker_cores: vec![None],
        }
    }

    /// Engine settings with REAP timers short enough for a test (Send Timeout 2 s).
    pub(crate) fn engine(&self) -> EngineConfig {
        let mut e = EngineConfig::default();
        e.reap.send_timeout = Duration::from_secs(2);
        e.reap.default_keepalive_timeout = Duration::from_secs(2);
        e.reap.initial_probe_timeout = Duration::from_millis(200);
        e.i1_timeout = Duration::from_secs(1);
        e
    }

    /// The site setup knowing `peer`'s host locators (as the configuration would list them).
    pub(crate) fn setup(&self, peer: &Site) -> SiteSetup {
        self.setup_for(vec![self.host()], &[peer.host()], peer, self.engine())
    }

    /// The site setup for `hosts`, knowing the locators of `peer`'s hosts `peers` (their
    /// interface ids on each of `peer`'s PA prefixes), with `engine`.
    pub(crate) fn setup_for(
        &self,
        hosts: Vec<(Ulid, CgaParameters)>,
        peers: &[(Ulid, CgaParameters)],
        peer: &Site,
        engine: EngineConfig,
    ) -> SiteSetup {
        let mut cache = PeerLocatorCache::new();
        for (u, _) in peers {
            cache.insert(
                *u,
                peer.pa
                    .iter()
                    .map(|p| Locator(p.with_iid_of(u.0)))
                    .collect(),
            );
        }
        SiteSetup {
            key: self.key(),
            engine,
            hosts,
            seed: u64::from(self.n),
            peers: cache,
            resolver: Box::new(StaticResolver::default()),
        }
    }

    pub(crate) fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            dataplane: self.dataplane(),
            slow_path: SlowPathConfig::default(),
            table_capacity: 1024,
            neighbor_capacity: 256,
        }
    }
}

// ---- frames, field by field ----

pub(crate) fn ocsum(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// Checksum over the IPv6 pseudo-header and `l4` (RFC 8200 §8.1).
pub(crate) fn l4_checksum(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut s = ocsum(&src.octets())
        + ocsum(&dst.octets())
        + l4.len() as u32
        + u32::from(proto)
        + ocsum(l4);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub(crate) fn eth(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut v = dst.0.to_vec();
    v.extend_from_slice(&src.0);
    v.extend_from_slice(&[0x86, 0xdd]);
    v
}

/// IPv6 header with traffic class 0x2e and flow label 0x54321 (so the copy can be checked).
pub(crate) fn ipv6(plen: usize, nh: u8, hl: u8, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![0x62, 0xe5, 0x43, 0x21];
    v.extend_from_slice(&(plen as u16).to_be_bytes());
    v.extend_from_slice(&[nh, hl]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v
}

/// The legacy host's datagram `seq` (an IPv6 packet: ULIDs, UDP with a checksum over them).
pub(crate) fn datagram(src: Ulid, dst: Ulid, seq: u32) -> Vec<u8> {
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend((0..60u8).map(|i| i ^ seq as u8));
    let mut udp = UDP_PORT.to_be_bytes().to_vec();
    udp.extend_from_slice(&UDP_PORT.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    let c = match l4_checksum(src.0, dst.0, 17, &udp) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut p = ipv6(udp.len(), 17, 64, src.0, dst.0);
    p.extend_from_slice(&udp);
    p
}

/// What differs between the IPv6 packet `ip` a host received and datagram `seq` from `src`
/// to `dst` as sent ([`datagram`]): the hop limit must be 61 (64, less one per proxy and one
/// in the core), every other byte the same.
pub(crate) fn datagram_faults(ip: &[u8], src: Ulid, dst: Ulid, seq: u32) -> Vec<String> {
    let want = datagram(src, dst, seq);
    let mut got = ip.to_vec();
    let mut faults = Vec::new();
    if got.get(7) != Some(&61) {
        faults.push(format!("hop limit {:?}, want 61", got.get(7)));
    }
    if let Some(hl) = got.get_mut(7) {
        *hl = want[7];
    }
    if got != want {
        faults.push(format!("packet differs\n got {got:02x?}\nwant {want:02x?}"));
    }
    faults
}

/// The source and destination ULIDs and the sequence number of a datagram built by
/// [`datagram`].
pub(crate) fn datagram_id(ip: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, u32)> {
    let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
    let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
    Some((Ipv6Addr::from(src), Ipv6Addr::from(dst), datagram_seq(ip)?))
}

/// The sequence number of a datagram built by [`datagram`].
pub(crate) fn datagram_seq(packet: &[u8]) -> Option<u32> {
    let b = packet.get(48..52)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A Neighbor Advertisement (RFC 4861 §4.4) for `target` with its link-layer address, from
/// `src` to `dst`, as an Ethernet frame.
pub(crate) fn na_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    router: bool,
) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0, if router { 0xe0 } else { 0x60 }, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&src_mac.0);
    let c = l4_checksum(src, dst, 58, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = eth(dst_mac, src_mac);
    f.extend_from_slice(&ipv6(icmp.len(), 58, 255, src, dst));
    f.extend_from_slice(&icmp);
    f
}

/// If `frame` is a Neighbor Solicitation: (its IPv6 source, its target, its sender's MAC).
pub(crate) fn as_ns(frame: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, MacAddr)> {
    if frame.get(12..14)? != [0x86, 0xdd] || *frame.get(20)? != 58 || *frame.get(54)? != 135 {
        return None;
    }
    let src: [u8; 16] = frame.get(22..38)?.try_into().ok()?;
    let target: [u8; 16] = frame.get(62..78)?.try_into().ok()?;
    let mac: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    Some((Ipv6Addr::from(src), Ipv6Addr::from(target), MacAddr(mac)))
}

/// Whether an Ethernet/IPv6 frame carries a Shim6 payload header right after the IPv6 header.
pub(crate) fn is_shim6_payload(frame: &[u8]) -> bool {
    frame.get(20) == Some(&140) && frame.get(54 + 2).is_some_and(|b| b & 0x80 != 0)
}
