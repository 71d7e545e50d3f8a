//! Stateless NATv6 for peers that do not speak SHIM6: a prefix swap with an incremental
//! checksum update.
//!
//! Outbound, the source's ULID prefix `PU` becomes the PA prefix `PX` of the provider chosen
//! for the flow; inbound, a destination under `PX` becomes `PU` again. Both prefixes are /64s
//! and the interface id is kept, so host H's NATv6 address *is* its SHIM6 locator
//! `PX:IID(H)` and the inbound mapping is the same pure prefix swap (no per-flow state).
//!
//! **Why not RFC 6296's checksum-neutral mapping.** NPTv6
//! ([RFC 6296 §3.1–§3.5](https://www.rfc-editor.org/rfc/rfc6296#section-3.1)) keeps transport
//! checksums valid by also changing one 16-bit word of the address: with /64 prefixes that is
//! a word of the interface id (§3.5). Host H would then appear as `PX:IID'(H)`, an address
//! that is not its locator: a peer could not reach H's locator through NATv6 state, a peer
//! that later upgrades to SHIM6 would see a different address than the NATv6 flow used, and
//! IIDs whose four words are 0xFFFF are untranslatable (§3.7). So we swap the prefix only and
//! patch the one checksum field that covers the addresses (TCP, UDP or ICMPv6 via the
//! pseudo-header, [RFC 8200 §8.1](https://www.rfc-editor.org/rfc/rfc8200#section-8.1)) with
//! the incremental update of [RFC 1624 §3](https://www.rfc-editor.org/rfc/rfc1624#section-3)
//! (Eqn. 3: `HC' = ~(~HC + ~m + m')`), summed over the four prefix words and precomputed per
//! provider ([`checksum_delta`]). Cost: one 16-bit read-modify-write per packet.
//!
//! - Non-first fragments carry no transport header: only the address changes (the checksum
//!   in the first fragment covers the reassembled datagram and is fixed there).
//! - Protocols without an address-covering checksum we know of (ESP, others) are translated
//!   without a checksum change.
//! - **UDP checksum 0** (no checksum, only legal over IPv6 for tunnel protocols under RFC 6935)
//!   stays 0: we do not invent a checksum the sender did not compute. A computed result of 0 is
//!   sent as 0xFFFF ([RFC 768](https://www.rfc-editor.org/rfc/rfc768), RFC 8200 §8.1), because
//!   0 means "none" in UDP.
//! - ICMPv6 errors quote the packet that caused them; translating the quote is slow-path work
//!   (`Punt(IcmpError)`).
//!
//! Provider choice (the traffic-engineering hook point): a hash of the (source, destination)
//! address pair over the providers that are up ([`flow_hash`]), so all packets between two
//! hosts keep one external address. A TE policy replaces `State::pick_provider`, or pins a
//! flow with a NATV6 table entry whose local locator names the provider.

use super::packet::{
    addr_at, ip, proto, upper_layer, write_eth, write_tunnel_header, Upper, ETH_LEN,
};
use super::{DropReason, Parsed, Path, PuntReason, State, Verdict};
use crate::buf::PacketBuf;

#[inline]
fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The one's-complement sum `Σ ~m + Σ m'` over the four 16-bit words of a /64 prefix changing
/// from `from` to `to` ([RFC 1624 §3](https://www.rfc-editor.org/rfc/rfc1624#section-3)).
pub fn checksum_delta(from: u64, to: u64) -> u16 {
    let mut s = 0u32;
    for k in 0..4 {
        let shift = 48 - 16 * k;
        let m = (from >> shift) as u16;
        let m2 = (to >> shift) as u16;
        s += u32::from(!m) + u32::from(m2);
    }
    fold(s)
}

/// Applies a delta from [`checksum_delta`] to checksum field value `hc`: RFC 1624 Eqn. 3,
/// `HC' = ~(~HC + delta)`.
pub fn checksum_update(hc: u16, delta: u16) -> u16 {
    !fold(u32::from(!hc) + u32::from(delta))
}

/// A hash of a (source, destination) address pair, spread over 32 bits.
#[inline]
pub fn flow_hash(src: &[u8; 16], dst: &[u8; 16]) -> u32 {
    let w = |a: &[u8; 16], i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&a[i..i + 8]);
        u64::from_ne_bytes(b)
    };
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for x in [w(src, 0), w(src, 8), w(dst, 0), w(dst, 8)] {
        h = (h ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    (h >> 32) as u32
}

/// Where the address-covering checksum of a packet is: `(offset, is_udp)`, `None` when there
/// is none to update, `Err` when the packet is cut short or must be punted.
fn checksum_field(f: &[u8], p: Parsed) -> Result<Option<(usize, bool)>, Verdict> {
    let malformed = Verdict::Drop(DropReason::Malformed);
    let (field, udp) = match upper_layer(f, p.l3, p.end) {
        None => return Err(malformed),
        Some(Upper::Opaque) => return Ok(None),
        Some(Upper::At {
            proto: proto::TCP,
            off,
        }) => (off + 16, false),
        Some(Upper::At {
            proto: proto::UDP,
            off,
        }) => (off + 6, true),
        Some(Upper::At {
            proto: proto::ICMPV6,
            off,
        }) => {
            match f.get(off) {
                Some(&t) if off < p.end && t < 128 => {
                    return Err(Verdict::Punt(PuntReason::IcmpError))
                }
                _ => {}
            }
            (off + 2, false)
        }
        Some(Upper::At { .. }) => return Ok(None),
    };
    if field + 2 > p.end {
        return Err(malformed);
    }
    Ok(Some((field, udp)))
}

#[inline]
fn apply_delta(f: &mut [u8], field: Option<(usize, bool)>, delta: u16) {
    let Some((off, udp)) = field else { return };
    let hc = u16::from_be_bytes([f[off], f[off + 1]]);
    if udp && hc == 0 {
        return;
    }
    let mut n = checksum_update(hc, delta);
    if udp && n == 0 {
        n = 0xffff;
    }
    f[off..off + 2].copy_from_slice(&n.to_be_bytes());
}

impl State {
    /// The provider for a NATv6 flow: hash of the address pair over the providers that are up.
    #[inline]
    pub(super) fn pick_provider(&self, f: &[u8], p: Parsed) -> Option<usize> {
        let n = self.nat_up_len as u64;
        if n == 0 {
            return None;
        }
        let h = flow_hash(
            &addr_at(f, p.l3 + ip::SRC.start),
            &addr_at(f, p.l3 + ip::DST.start),
        );
        let k = ((u64::from(h) * n) >> 32) as usize;
        self.nat_up.get(k).map(|&i| usize::from(i))
    }

    /// Inside → provider `i`: source prefix `PU` → `PX`.
    pub(super) fn nat_out<B: PacketBuf>(&mut self, pkt: &mut B, p: Parsed, i: usize) -> Verdict {
        let field = match checksum_field(pkt.as_ref(), p) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let Some(prov) = self.providers.get(i) else {
            return Verdict::Drop(DropReason::NoProvider);
        };
        let total = p.end - p.l3;
        if total + usize::from(prov.overhead) > usize::from(prov.mtu) {
            return Verdict::Punt(PuntReason::TooBig {
                mtu: prov.mtu - prov.overhead,
            });
        }
        let Some(nh_mac) = prov.nh_mac else {
            return Verdict::Punt(PuntReason::NoNextHop);
        };
        if pkt.headroom() < usize::from(prov.overhead) {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        pkt.truncate(p.end);
        let f = pkt.as_mut();
        f[p.l3 + ip::SRC.start..p.l3 + ip::SRC.start + 8]
            .copy_from_slice(&prov.prefix.to_be_bytes());
        apply_delta(f, field, prov.to_pa);
        f[p.l3 + ip::HOP_LIMIT] -= 1;
        if let Some((local, remote)) = prov.tunnel {
            if pkt.prepend(usize::from(prov.overhead)).is_err() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
            // total <= mtu <= u16::MAX (checked above).
            write_tunnel_header(pkt.as_mut(), ETH_LEN, total as u16, &local, &remote);
        }
        write_eth(pkt.as_mut(), nh_mac, prov.mac);
        self.stats.forwarded[Path::NatOut.index()] += 1;
        Verdict::Forward(prov.port)
    }

    /// Provider `i`'s prefix → inside: destination prefix `PX` → `PU`.
    pub(super) fn nat_in<B: PacketBuf>(&mut self, pkt: &mut B, p: Parsed, i: usize) -> Verdict {
        let field = match checksum_field(pkt.as_ref(), p) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let Some(prov) = self.providers.get(i) else {
            return Verdict::Drop(DropReason::NotOurs);
        };
        let delta = prov.to_ulid;
        let total = p.end - p.l3;
        if total > usize::from(self.inside.mtu) {
            let removed = (p.l3 - ETH_LEN) as u16;
            return Verdict::Punt(PuntReason::TooBig {
                mtu: self.inside.mtu.saturating_add(removed),
            });
        }
        let mut host = addr_at(pkt.as_ref(), p.l3 + ip::DST.start);
        host[..8].copy_from_slice(&self.ulid_prefix.to_be_bytes());
        let Some(host_mac) = self.host_mac(host.into()) else {
            return Verdict::Punt(PuntReason::NoNextHop);
        };
        pkt.truncate(p.end);
        let f = pkt.as_mut();
        f[p.l3 + ip::DST.start..p.l3 + ip::DST.start + 8].copy_from_slice(&host[..8]);
        apply_delta(f, field, delta);
        f[p.l3 + ip::HOP_LIMIT] -= 1;
        if pkt.adj(p.l3 - ETH_LEN).is_err() {
            return Verdict::Drop(DropReason::Malformed);
        }
        write_eth(pkt.as_mut(), host_mac, self.inside.mac);
        self.stats.forwarded[Path::NatIn.index()] += 1;
        Verdict::Forward(self.inside.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::checksum::ones_complement_sum;

    /// RFC 1624 §4 example: HC = 0xDD2F, m = 0x5555 → m' = 0x3285 gives HC' = 0x0000.
    #[test]
    fn rfc1624_example() {
        let s = u32::from(!0x5555u16) + 0x3285;
        assert_eq!(!fold(u32::from(!0xdd2fu16) + u32::from(fold(s))), 0x0000);
        // Same thing through the prefix delta (only the last word changes).
        let d = checksum_delta(0x0000_0000_0000_5555, 0x0000_0000_0000_3285);
        assert_eq!(checksum_update(0xdd2f, d), 0x0000);
    }

    #[test]
    fn identity_and_inverse() {
        let (a, b) = (0xfc00_0001_0002_0003, 0x2001_0db8_000a_0001);
        assert_eq!(checksum_update(0x1234, checksum_delta(a, a)), 0x1234);
        let there = checksum_update(0x1234, checksum_delta(a, b));
        assert_eq!(checksum_update(there, checksum_delta(b, a)), 0x1234);
    }

    #[test]
    fn incremental_equals_recomputed() {
        // Sum over a buffer whose first 8 bytes are a prefix, checksum stored at 20..22.
        let mut data = [0u8; 40];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let set_prefix = |d: &mut [u8; 40], p: u64| d[..8].copy_from_slice(&p.to_be_bytes());
        let full = |d: &[u8; 40]| {
            let mut z = *d;
            z[20] = 0;
            z[21] = 0;
            !ones_complement_sum(&z)
        };
        for (from, to) in [
            (0xfc00_0001_0002_0003u64, 0x2001_0db8_000a_0001u64),
            (0xffff_ffff_ffff_ffff, 0),
            (0, 0xffff_ffff_ffff_ffff),
            (0x2001_0db8_000b_0001, 0xfc00_0001_0002_0003),
        ] {
            set_prefix(&mut data, from);
            let hc = full(&data);
            set_prefix(&mut data, to);
            let want = full(&data);
            let got = checksum_update(hc, checksum_delta(from, to));
            // 0x0000 and 0xFFFF are the same one's-complement value.
            assert!(
                got == want || (got ^ want == 0xffff && (got == 0 || want == 0)),
                "{got:#x} vs {want:#x}"
            );
        }
    }

    #[test]
    fn flow_hash_depends_on_both_addresses() {
        let a = [1u8; 16];
        let mut b = [1u8; 16];
        b[15] = 2;
        assert_ne!(flow_hash(&a, &b), flow_hash(&a, &a));
        assert_ne!(flow_hash(&b, &a), flow_hash(&a, &a));
        assert_eq!(flow_hash(&a, &b), flow_hash(&a, &b));
    }
}
