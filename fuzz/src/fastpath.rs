//! The fast path of `DataplaneConfig::example()` (inside port 0, providers A and B on ports 1
//! and 2) with three contexts: one ESTABLISHED over provider A, one over provider B, one
//! NATv6, and the next hops resolved.

use std::net::Ipv6Addr;

use dataplane::buf::HeapBuf;
use dataplane::config::{DataplaneConfig, MacAddr};
use dataplane::fastpath::{FastPath, ProviderStatus, Verdict};
use dataplane::io::PortId;
use dataplane::neighbor::{neighbor_table, NeighborWriter};
use table::{flags, NewEntry, TableConfig, TableWriter};
use wire::{ContextTag, Locator, LocatorPair, Ulid};

pub const INSIDE: PortId = PortId(0);
pub const PROV_A: PortId = PortId(1);
pub const PROV_B: PortId = PortId(2);
pub const INSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const PROV_A_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x01];

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Context `i`: (local tag, peer tag, host ULID, host locator, peer ULID, peer locator).
pub fn context(i: u64) -> (u64, u64, Ipv6Addr, Ipv6Addr, Ipv6Addr, Ipv6Addr) {
    let host = Ipv6Addr::from_bits(a("fc00:1:2:3::").to_bits() | 0x1000 + u128::from(i));
    let prefix = if i == 1 {
        "2001:db8:b:1::"
    } else {
        "2001:db8:a:1::"
    };
    let loc = Ipv6Addr::from_bits(a(prefix).to_bits() | 0x1000 + u128::from(i));
    (
        0x1234_5678_9a00 + i,
        0x0abc_def0_1300 + i,
        host,
        loc,
        Ipv6Addr::from_bits(a("fc00:99:88:77::").to_bits() | 0x2000 + u128::from(i)),
        Ipv6Addr::from_bits(a("2001:db8:c:5::").to_bits() | 0x2000 + u128::from(i)),
    )
}

/// The site and its fast path.
pub struct Site {
    pub table: TableWriter,
    pub nbr: NeighborWriter,
    pub fp: FastPath,
}

impl Site {
    pub fn new() -> Self {
        let cfg = DataplaneConfig::example();
        let mut table = TableWriter::new(&TableConfig::new(64, 1).with_seed(7)).unwrap();
        let (mut nbr, reader) = neighbor_table(64);
        nbr.insert(
            PROV_A,
            a("fe80::a"),
            MacAddr([2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]),
        )
        .unwrap();
        nbr.insert(
            PROV_B,
            a("fe80::b"),
            MacAddr([2, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb]),
        )
        .unwrap();
        for i in 0..3 {
            let (lt, pt, host, loc, peer, peer_loc) = context(i);
            nbr.insert(INSIDE, host, MacAddr([2, 0x11, 0, 0, 0, i as u8]))
                .unwrap();
            table
                .insert(NewEntry {
                    local_tag: ContextTag::new(lt).unwrap(),
                    peer_tag: ContextTag::new(pt).unwrap(),
                    local_ulid: Ulid(host),
                    peer_ulid: Ulid(peer),
                    pair: LocatorPair {
                        local: Locator(loc),
                        peer: Locator(peer_loc),
                    },
                    tx_provider: if i == 1 { 2 } else { 1 },
                    flags: if i == 2 {
                        flags::ESTABLISHED | flags::NATV6
                    } else {
                        flags::ESTABLISHED
                    },
                })
                .unwrap();
        }
        let status = ProviderStatus::new(&cfg);
        let fp = FastPath::new(&cfg, table.reader(), 0, reader, status).unwrap();
        Self { table, nbr, fp }
    }

    /// Runs a burst of frames received on `port`; returns the verdicts and frames after.
    pub fn run(&mut self, port: PortId, frames: &[&[u8]]) -> Vec<(Verdict, Vec<u8>)> {
        let mut bufs: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::from_slice(f)).collect();
        let mut v = vec![Verdict::Forward(PortId(99)); bufs.len()];
        self.fp.process_burst(port, &mut bufs, &mut v);
        v.into_iter()
            .zip(bufs.iter().map(|b| b.as_ref().to_vec()))
            .collect()
    }
}

impl Default for Site {
    fn default() -> Self {
        Self::new()
    }
}

/// An Ethernet + IPv6 frame (no options) carrying `payload` with Next Header `nh`.
pub fn frame(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[0x02, 0x99, 0x99, 0x99, 0x99, 0x99]);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[nh, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(payload);
    f
}

/// A UDP datagram (ports 40000 → 8080, checksum left non-zero and unverified).
pub fn udp(payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0x9c, 0x40, 0x1f, 0x90];
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0x12, 0x34]);
    u.extend_from_slice(payload);
    u
}

/// A Shim6 payload extension header with CT `tag` in front of `inner` (Next Header `nh`).
pub fn shim_payload(nh: u8, tag: u64, inner: &[u8]) -> Vec<u8> {
    let t = tag.to_be_bytes();
    let mut p = vec![nh, 0, 0x80 | t[2], t[3], t[4], t[5], t[6], t[7]];
    p.extend_from_slice(inner);
    p
}
