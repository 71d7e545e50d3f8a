//! Shared fixtures of the fast-path tests: a site (config, context table, neighbour table,
//! fast path) and frame builders that write every header field by field, independently of the
//! code under test (no `wire` emitters, own checksum).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;

use dataplane::buf::HeapBuf;
use dataplane::config::{DataplaneConfig, Exit, MacAddr};
use dataplane::fastpath::{FastPath, ProviderStatus, Verdict};
use dataplane::io::PortId;
use dataplane::neighbor::{neighbor_table, NeighborWriter};
use table::{flags, NewEntry, TableConfig, TableWriter};
use wire::{ContextTag, Locator, LocatorPair, Ulid};

pub(crate) fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

// ---- the site (DataplaneConfig::example) ----
pub(crate) const INSIDE: PortId = PortId(0);
pub(crate) const PROV_A: PortId = PortId(1);
pub(crate) const PROV_B: PortId = PortId(2);
pub(crate) const INSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub(crate) const PROV_A_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x01];
pub(crate) const PROV_B_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 0x01];
/// The exit routers (next hops fe80::a and fe80::b) and the legacy host.
pub(crate) const ROUTER_A_MAC: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
pub(crate) const ROUTER_B_MAC: [u8; 6] = [0x02, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb];
pub(crate) const HOST_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
/// What a host (or the outside) puts as Ethernet addresses of what it sends us.
pub(crate) const SENDER_MAC: [u8; 6] = [0x02, 0x99, 0x99, 0x99, 0x99, 0x99];

pub(crate) fn host_ulid() -> Ipv6Addr {
    a("fc00:1:2:3:a1b2:c3d4:e5f6:1001")
}
/// The host's locator under provider A's prefix: same interface id.
pub(crate) fn host_loc_a() -> Ipv6Addr {
    a("2001:db8:a:1:a1b2:c3d4:e5f6:1001")
}
pub(crate) fn host_loc_b() -> Ipv6Addr {
    a("2001:db8:b:1:a1b2:c3d4:e5f6:1001")
}
pub(crate) fn peer_ulid() -> Ipv6Addr {
    a("fc00:99:88:77::2002")
}
pub(crate) fn peer_loc() -> Ipv6Addr {
    a("2001:db8:c:5::2002")
}
/// A non-SHIM6 host on the Internet.
pub(crate) fn internet_host() -> Ipv6Addr {
    a("2001:db8:f00d::53")
}
pub(crate) const LOCAL_TAG: u64 = 0x1234_5678_9abc;
pub(crate) const PEER_TAG: u64 = 0x0abc_def0_1357;

pub(crate) fn tag(v: u64) -> ContextTag {
    ContextTag::new(v).unwrap()
}

pub(crate) struct Site {
    pub(crate) cfg: DataplaneConfig,
    pub(crate) table: TableWriter,
    pub(crate) nbr: NeighborWriter,
    pub(crate) status: ProviderStatus,
    pub(crate) fp: FastPath,
}

impl Site {
    /// The example config with neighbours resolved (both routers and the host).
    pub(crate) fn new() -> Self {
        Self::with_config(DataplaneConfig::example())
    }

    pub(crate) fn with_config(cfg: DataplaneConfig) -> Self {
        let table = TableWriter::new(&TableConfig::new(1024, 2).with_seed(7)).unwrap();
        let (mut nbr, reader) = neighbor_table(64);
        nbr.insert(PROV_A, a("fe80::a"), MacAddr(ROUTER_A_MAC))
            .unwrap();
        nbr.insert(PROV_B, a("fe80::b"), MacAddr(ROUTER_B_MAC))
            .unwrap();
        nbr.insert(INSIDE, host_ulid(), MacAddr(HOST_MAC)).unwrap();
        let status = ProviderStatus::new(&cfg);
        let fp = FastPath::new(&cfg, table.reader(), 0, reader, status.clone()).unwrap();
        Site {
            cfg,
            table,
            nbr,
            status,
            fp,
        }
    }

    /// Provider A exits through an IPv6-in-IPv6 tunnel.
    pub(crate) fn tunnelled() -> Self {
        let mut cfg = DataplaneConfig::example();
        cfg.providers[0].exit = Exit::Tunnel {
            local: tunnel_local(),
            remote: tunnel_remote(),
            next_hop: a("fe80::a"),
        };
        Self::with_config(cfg)
    }

    /// The context host ↔ peer over provider A, established.
    pub(crate) fn add_context(&mut self) {
        self.add_context_with(flags::ESTABLISHED, host_loc_a(), 1);
    }

    pub(crate) fn add_context_with(&mut self, flags: u8, local_loc: Ipv6Addr, provider: u16) {
        self.table
            .insert(NewEntry {
                local_tag: tag(LOCAL_TAG),
                peer_tag: tag(PEER_TAG),
                local_ulid: Ulid(host_ulid()),
                peer_ulid: Ulid(peer_ulid()),
                pair: LocatorPair {
                    local: Locator(local_loc),
                    peer: Locator(peer_loc()),
                },
                tx_provider: provider,
                flags,
            })
            .unwrap();
    }

    /// Runs one frame through the fast path: its verdict and the frame afterwards.
    pub(crate) fn run(&mut self, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
        let mut bufs = [HeapBuf::from_slice(frame)];
        let mut v = [Verdict::Forward(PortId(99))];
        self.fp.process_burst(port, &mut bufs, &mut v);
        (v[0], bufs[0].as_ref().to_vec())
    }
}

pub(crate) fn tunnel_local() -> Ipv6Addr {
    a("2001:db8:a:ffff::1")
}
pub(crate) fn tunnel_remote() -> Ipv6Addr {
    a("2001:db8:a:ffff::fe")
}

// ---- frame builders (field by field) ----

/// One's-complement sum of big-endian 16-bit words (RFC 1071), folded.
pub(crate) fn ocsum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += u64::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1) plus the upper-layer bytes.
pub(crate) fn pseudo_sum(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut v = Vec::new();
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&(l4.len() as u32).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, proto]);
    v.extend_from_slice(l4);
    ocsum(&v)
}

/// Whether the upper-layer checksum of `l4` verifies for these addresses.
pub(crate) fn l4_checksum_ok(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> bool {
    pseudo_sum(src, dst, proto, l4) == 0xffff
}

pub(crate) fn eth(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    v.extend_from_slice(&[0x86, 0xdd]);
    v
}

/// Version 6, traffic class 0x2e, flow label 0x5_4321 (so copies of them can be checked).
pub(crate) fn ipv6(plen: usize, nh: u8, hl: u8, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![0x62, 0xe5, 0x43, 0x21];
    v.extend_from_slice(&(plen as u16).to_be_bytes());
    v.push(nh);
    v.push(hl);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v
}

/// UDP header + payload with a correct checksum for (src, dst).
pub(crate) fn udp(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    let mut c = !pseudo_sum(src, dst, 17, &v);
    if c == 0 {
        c = 0xffff;
    }
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

/// A TCP segment (20-byte header, ACK|PSH) with a correct checksum.
pub(crate) fn tcp(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&40000u16.to_be_bytes());
    v.extend_from_slice(&443u16.to_be_bytes());
    v.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    v.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    v.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    let c = !pseudo_sum(src, dst, 6, &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    v
}

/// An ICMPv6 message of `typ`/`code` with `body`, checksummed.
pub(crate) fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, typ: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ, code, 0, 0];
    v.extend_from_slice(body);
    let c = !pseudo_sum(src, dst, 58, &v);
    v[2..4].copy_from_slice(&c.to_be_bytes());
    v
}

/// Shim6 payload extension header (RFC 5533 §5.2), written field by field.
pub(crate) fn shim_payload(nh: u8, tag: u64) -> [u8; 8] {
    [
        nh,
        0,
        0x80 | ((tag >> 40) & 0x7f) as u8,
        (tag >> 32) as u8,
        (tag >> 24) as u8,
        (tag >> 16) as u8,
        (tag >> 8) as u8,
        tag as u8,
    ]
}

/// A Hop-by-Hop Options header of 8 bytes (a PadN option filling it).
pub(crate) fn hbh(nh: u8) -> [u8; 8] {
    [nh, 0, 1, 4, 0, 0, 0, 0]
}

/// Concatenates parts.
pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// What arrives from provider A for the host: the peer's UDP datagram carrying `payload`
/// between the locators, behind a payload header with our tag CT(local), hop limit `hl`.
pub(crate) fn from_peer_with(hl: u8, payload: &[u8]) -> Vec<u8> {
    let u = udp(peer_ulid(), host_ulid(), 7777, 5353, payload);
    cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len() + 8, 140, hl, peer_loc(), host_loc_a()),
        &shim_payload(17, LOCAL_TAG),
        &u,
    ])
}

/// What the host gets for [`from_peer_with`]: the same datagram between the ULIDs, hop
/// limit `hl`.
pub(crate) fn to_host_with(hl: u8, payload: &[u8]) -> Vec<u8> {
    let u = udp(peer_ulid(), host_ulid(), 7777, 5353, payload);
    cat(&[
        &eth(HOST_MAC, INSIDE_MAC),
        &ipv6(u.len(), 17, hl, peer_ulid(), host_ulid()),
        &u,
    ])
}

/// An inside host's UDP packet to `dst`, as an Ethernet frame to the proxy.
pub(crate) fn inside_udp(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, payload: &[u8]) -> Vec<u8> {
    let u = udp(src, dst, 5353, 7777, payload);
    cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(u.len(), 17, hl, src, dst),
        &u,
    ])
}

/// Hex dump difference helper for byte-exact comparisons.
pub(crate) fn assert_frame(got: &[u8], want: &[u8]) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(x, y)| x != y)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "frames differ at byte {first} (len got {}, want {})\n got: {:02x?}\nwant: {:02x?}",
            got.len(),
            want.len(),
            &got[first.saturating_sub(4)..got.len().min(first + 16)],
            &want[first.saturating_sub(4)..want.len().min(first + 16)]
        );
    }
}
