//! Byte offsets and small readers/writers for Ethernet II + IPv6 frames: the fast path works on
//! raw offsets (checked once per packet) instead of building views per header.
//!
//! IPv6 header layout: [RFC 8200 §3](https://www.rfc-editor.org/rfc/rfc8200#section-3).

use std::net::Ipv6Addr;

use wire::exthdr::next_header::{AH, DEST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};

use crate::config::MacAddr;

/// Ethernet II header length.
pub const ETH_LEN: usize = 14;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
/// IPv6 header length.
pub const IPV6_LEN: usize = 40;

/// Offsets inside the IPv6 header.
pub mod ip {
    use core::ops::Range;
    /// Payload Length.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Next Header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop Limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: Range<usize> = 8..24;
    /// Destination address.
    pub const DST: Range<usize> = 24..40;
}

/// IP protocol numbers the fast path looks at.
pub mod proto {
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IPv6 ([RFC 2473](https://www.rfc-editor.org/rfc/rfc2473)).
    pub const IPV6: u8 = 41;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// Reads 16 address bytes at `off`; the caller checked the length.
#[inline]
pub(crate) fn addr_at(f: &[u8], off: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&f[off..off + 16]);
    a
}

/// The upper 64 bits of the 16 address bytes at `off`.
#[inline]
pub(crate) fn prefix_at(f: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&f[off..off + 8]);
    u64::from_be_bytes(b)
}

/// The lower 64 bits (interface id) of the 16 address bytes at `off`.
#[inline]
pub(crate) fn iid_at(f: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&f[off + 8..off + 16]);
    u64::from_be_bytes(b)
}

/// Bytes of Ethernet + IPv6 header: what pass one reads at fixed offsets.
pub(crate) const HEADERS_LEN: usize = ETH_LEN + IPV6_LEN;

/// The Ethernet and IPv6 headers as a fixed-size array (constant offsets, no bounds check
/// per field); `None` when the frame is shorter.
#[inline(always)]
pub(crate) fn headers(f: &[u8]) -> Option<&[u8; HEADERS_LEN]> {
    f.first_chunk()
}

/// The big-endian 64-bit word at `h[off..off + 8]`.
#[inline(always)]
pub(crate) fn be64<const N: usize>(h: &[u8; N], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[off..off + 8]);
    u64::from_be_bytes(b)
}

/// An address as its big-endian halves `[high, low]`, the form the table keeps.
pub(crate) fn halves(a: Ipv6Addr) -> [u64; 2] {
    let b = a.to_bits();
    [(b >> 64) as u64, b as u64]
}

/// Writes address halves `a` at `h[off..off + 16]`.
#[inline(always)]
pub(crate) fn put_addr<const N: usize>(h: &mut [u8; N], off: usize, a: [u64; 2]) {
    h[off..off + 8].copy_from_slice(&a[0].to_be_bytes());
    h[off + 8..off + 16].copy_from_slice(&a[1].to_be_bytes());
}

/// Writes address halves `a` at `f[off..off + 16]` of a frame the caller checked.
#[inline]
pub(crate) fn put_addr_at(f: &mut [u8], off: usize, a: [u64; 2]) {
    f[off..off + 8].copy_from_slice(&a[0].to_be_bytes());
    f[off + 8..off + 16].copy_from_slice(&a[1].to_be_bytes());
}

/// Writes the Ethernet II header for an IPv6 frame.
#[inline]
pub(crate) fn write_eth(f: &mut [u8], dst: MacAddr, src: MacAddr) {
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV6);
}

/// Hop limit a tunnel entry point gives the outer header (the inner one is not copied:
/// [RFC 2473 §3.1](https://www.rfc-editor.org/rfc/rfc2473#section-3.1) treats the tunnel as one
/// link).
pub const TUNNEL_HOP_LIMIT: u8 = 64;

/// Writes an outer IPv6 header at `f[off..off + 40]` for an IPv6-in-IPv6 tunnel
/// ([RFC 2473 §3](https://www.rfc-editor.org/rfc/rfc2473#section-3)) carrying `inner_len`
/// bytes, copying traffic class and flow label from the inner header that follows (keeps
/// DSCP and ECMP entropy).
#[inline]
pub(crate) fn write_tunnel_header(
    f: &mut [u8],
    off: usize,
    inner_len: u16,
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
) {
    let (outer, inner) = f[off..].split_at_mut(IPV6_LEN);
    outer[0..4].copy_from_slice(&inner[0..4]);
    outer[4..6].copy_from_slice(&inner_len.to_be_bytes());
    outer[ip::NEXT_HEADER] = proto::IPV6;
    outer[ip::HOP_LIMIT] = TUNNEL_HOP_LIMIT;
    outer[ip::SRC].copy_from_slice(&src.octets());
    outer[ip::DST].copy_from_slice(&dst.octets());
}

/// Where the upper-layer header of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upper {
    /// Protocol `proto` starts at `off` (absolute offset in the frame).
    At {
        /// Protocol number.
        proto: u8,
        /// Offset of its header.
        off: usize,
    },
    /// A non-first fragment, ESP or an unknown header: no upper-layer header to look at.
    Opaque,
}

/// Walks the extension headers of the IPv6 packet at `f[l3..end]` to the upper-layer header
/// ([RFC 8200 §4](https://www.rfc-editor.org/rfc/rfc8200#section-4)). `None` when a header
/// runs past `end`.
pub(crate) fn upper_layer(f: &[u8], l3: usize, end: usize) -> Option<Upper> {
    let mut nh = *f.get(l3 + ip::NEXT_HEADER)?;
    let mut off = l3 + IPV6_LEN;
    loop {
        let len = match nh {
            HOP_BY_HOP | ROUTING | DEST_OPTS => (usize::from(*f.get(off + 1)?) + 1) * 8,
            AH => (usize::from(*f.get(off + 1)?) + 2) * 4,
            FRAGMENT => {
                let b = f.get(off + 2..off + 4)?;
                if u16::from_be_bytes([b[0], b[1]]) >> 3 != 0 {
                    return Some(Upper::Opaque);
                }
                8
            }
            _ => {
                if off > end {
                    return None;
                }
                return Some(Upper::At { proto: nh, off });
            }
        };
        if off + len > end {
            return None;
        }
        nh = f[off];
        off += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_to_the_upper_layer() {
        let mut f = vec![0u8; 14 + 40 + 8 + 8 + 8];
        f[14 + 6] = HOP_BY_HOP;
        f[54] = FRAGMENT; // HbH: next = Fragment, len 0
        f[62] = proto::UDP; // Fragment: next = UDP, offset 0
        let end = f.len();
        assert_eq!(
            upper_layer(&f, 14, end),
            Some(Upper::At {
                proto: proto::UDP,
                off: 70
            })
        );
        // Non-first fragment: nothing to look at.
        f[64] = 0x01;
        assert_eq!(upper_layer(&f, 14, end), Some(Upper::Opaque));
        // A header running past the end.
        f[54] = DEST_OPTS;
        f[55] = 0;
        f[62] = 0;
        f[63] = 2; // Destination Options of 24 bytes, only 16 left
        f[62] = DEST_OPTS;
        assert_eq!(upper_layer(&f, 14, end), None);
    }
}
