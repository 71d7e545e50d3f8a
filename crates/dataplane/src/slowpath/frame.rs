//! Frame parsing and building for the slow path: the Ethernet and IPv6 headers around what the
//! engines, ND and ICMPv6 produce, and the view of a punted frame the handlers share.
//!
//! Headers are emitted with smoltcp's wire types (`EthernetRepr`, `Ipv6Repr`); ICMPv6 bodies
//! with `Icmpv6Packet` so their checksum covers the pseudo-header
//! ([RFC 8200 §8.1](https://www.rfc-editor.org/rfc/rfc8200#section-8.1)).

use std::net::{Ipv6Addr, SocketAddrV6};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Packet, Ipv6Repr,
};

use crate::config::MacAddr;
use crate::fastpath::packet::{proto, upper_layer, Upper, ETH_LEN, IPV6_LEN};

/// Hop limit of the packets the slow path originates (control messages, ICMPv6 errors, echo
/// replies). ND uses 255 ([RFC 4861 §6.1.2](https://www.rfc-editor.org/rfc/rfc4861#section-6.1.2)).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// Hop limit every Neighbor Discovery message carries and requires
/// ([RFC 4861 §7.1.1](https://www.rfc-editor.org/rfc/rfc4861#section-7.1.1)).
pub const ND_HOP_LIMIT: u8 = 255;

/// All-nodes link-scope multicast `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The IPv6 packet of a punted frame, with padding cut off at the Payload Length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv6Frame<'a> {
    /// Ethernet source (the neighbour that sent it).
    pub(crate) eth_src: MacAddr,
    /// The whole frame as received.
    pub(crate) frame: &'a [u8],
    /// Offset of the IPv6 header in `frame` (14, or 54 inside a tunnel we terminate).
    pub(crate) l3: usize,
    /// End of the IPv6 packet in `frame`.
    pub(crate) end: usize,
}

impl<'a> Ipv6Frame<'a> {
    /// Parses an Ethernet II / IPv6 frame; `None` when it is not one or is truncated.
    pub(crate) fn parse(frame: &'a [u8]) -> Option<Self> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv6 {
            return None;
        }
        let eth_src = MacAddr(eth.src_addr().0);
        let ip = Ipv6Packet::new_checked(frame.get(ETH_LEN..)?).ok()?;
        if ip.version() != 6 {
            return None;
        }
        let end = ETH_LEN
            .checked_add(IPV6_LEN)?
            .checked_add(usize::from(ip.payload_len()))?;
        if end > frame.len() {
            return None;
        }
        Some(Self {
            eth_src,
            frame,
            l3: ETH_LEN,
            end,
        })
    }

    /// When the frame is IPv6-in-IPv6 addressed to `tunnel_local`, the inner packet
    /// ([RFC 2473](https://www.rfc-editor.org/rfc/rfc2473)); otherwise the frame itself.
    pub(crate) fn inner_if_tunnel(self, tunnel_local: Option<Ipv6Addr>) -> Option<Self> {
        if tunnel_local != Some(self.dst()) || self.next_header() != proto::IPV6 {
            return Some(self);
        }
        let l3 = self.l3.checked_add(IPV6_LEN)?;
        let inner = Ipv6Packet::new_checked(self.frame.get(l3..self.end)?).ok()?;
        let end = l3
            .checked_add(IPV6_LEN)?
            .checked_add(usize::from(inner.payload_len()))?;
        (end <= self.end).then_some(Self { l3, end, ..self })
    }

    /// The IPv6 packet, header included.
    pub(crate) fn packet(&self) -> &'a [u8] {
        self.frame.get(self.l3..self.end).unwrap_or_default()
    }

    fn addr(&self, off: usize) -> Ipv6Addr {
        let mut a = [0u8; 16];
        if let Some(b) = self.frame.get(self.l3 + off..self.l3 + off + 16) {
            a.copy_from_slice(b);
        }
        Ipv6Addr::from(a)
    }

    /// IPv6 source.
    pub(crate) fn src(&self) -> Ipv6Addr {
        self.addr(8)
    }

    /// IPv6 destination.
    pub(crate) fn dst(&self) -> Ipv6Addr {
        self.addr(24)
    }

    /// Next Header of the fixed header.
    pub(crate) fn next_header(&self) -> u8 {
        self.frame.get(self.l3 + 6).copied().unwrap_or(0)
    }

    /// Hop Limit.
    pub(crate) fn hop_limit(&self) -> u8 {
        self.frame.get(self.l3 + 7).copied().unwrap_or(0)
    }

    /// The upper-layer protocol and its bytes (to the end of the packet), past any extension
    /// headers; `None` for an opaque (fragment, ESP) or broken chain.
    pub(crate) fn upper(&self) -> Option<(u8, &'a [u8])> {
        match upper_layer(self.frame, self.l3, self.end)? {
            Upper::At { proto, off } => Some((proto, self.frame.get(off..self.end)?)),
            Upper::Opaque => None,
        }
    }
}

/// Ethernet II header + `ip` as one frame.
pub(crate) fn ethernet(dst: MacAddr, src: MacAddr, ip: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: EthernetAddress(src.0),
        dst_addr: EthernetAddress(dst.0),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut f = vec![0u8; repr.buffer_len() + ip.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut f[..]);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(ip);
    f
}

/// An IPv6 packet: fixed header (traffic class and flow label zero) + `payload`. `None` when
/// the payload does not fit the 16-bit Payload Length.
pub(crate) fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::from(next_header),
        payload_len: payload.len(),
        hop_limit,
    };
    u16::try_from(payload.len()).ok()?;
    let mut p = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut p[..]);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(payload);
    Some(p)
}

/// An IPv6 packet carrying the ICMPv6 message `repr` (checksum filled in).
pub(crate) fn icmpv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    repr: &Icmpv6Repr<'_>,
) -> Option<Vec<u8>> {
    let mut body = vec![0u8; repr.buffer_len()];
    let mut pkt = Icmpv6Packet::new_unchecked(&mut body[..]);
    repr.emit(&src, &dst, &mut pkt, &ChecksumCapabilities::default());
    ipv6(src, dst, proto::ICMPV6, hop_limit, &body)
}

/// The UDP checksum of `udp` (header with a zero checksum field, then payload) between
/// `src` and `dst`: over the IPv6 pseudo-header
/// ([RFC 8200 §8.1](https://www.rfc-editor.org/rfc/rfc8200#section-8.1)); a computed zero is
/// sent as 0xffff, zero itself meaning "no checksum", which IPv6 forbids.
fn udp_checksum(src: Ipv6Addr, dst: Ipv6Addr, udp: &[u8]) -> u16 {
    let mut v = Vec::with_capacity(40 + udp.len());
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&(udp.len() as u32).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, proto::UDP]);
    v.extend_from_slice(udp);
    match wire::checksum::checksum(&v) {
        0 => 0xffff,
        c => c,
    }
}

/// An IPv6 packet carrying one UDP datagram from `src` to `dst` (checksum filled in).
pub(crate) fn udp(
    src: SocketAddrV6,
    dst: SocketAddrV6,
    hop_limit: u8,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len().checked_add(8)?).ok()?;
    let mut d = Vec::with_capacity(usize::from(len));
    d.extend_from_slice(&src.port().to_be_bytes());
    d.extend_from_slice(&dst.port().to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let c = udp_checksum(*src.ip(), *dst.ip(), &d);
    d[6..8].copy_from_slice(&c.to_be_bytes());
    ipv6(*src.ip(), *dst.ip(), proto::UDP, hop_limit, &d)
}

/// The UDP datagram `udp` (the bytes after the IPv6 headers) between `src` and `dst`: source
/// port, destination port and payload, once its length and checksum are right.
pub(crate) fn parse_udp(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    udp: &[u8],
) -> Result<(u16, u16, &[u8]), UdpError> {
    let h = udp.get(..8).ok_or(UdpError::Malformed)?;
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if len < 8 || len > udp.len() {
        return Err(UdpError::Malformed);
    }
    let d = udp.get(..len).ok_or(UdpError::Malformed)?;
    if h[6..8] == [0, 0] {
        return Err(UdpError::Checksum);
    }
    let mut v = Vec::with_capacity(40 + len);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&(len as u32).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, proto::UDP]);
    v.extend_from_slice(d);
    if !wire::checksum::verify(&v) {
        return Err(UdpError::Checksum);
    }
    Ok((
        u16::from_be_bytes([h[0], h[1]]),
        u16::from_be_bytes([h[2], h[3]]),
        d.get(8..).unwrap_or_default(),
    ))
}

/// Why a UDP datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UdpError {
    /// Shorter than its header, or its Length disagrees with the packet.
    Malformed,
    /// Zero or wrong checksum.
    Checksum,
}

/// The solicited-node multicast address of `target`: `ff02::1:ffXX:XXXX`
/// ([RFC 4291 §2.7.1](https://www.rfc-editor.org/rfc/rfc4291#section-2.7.1)).
pub(crate) fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet multicast MAC of an IPv6 multicast address: `33:33` + its low 32 bits
/// ([RFC 2464 §7](https://www.rfc-editor.org/rfc/rfc2464#section-7)).
pub(crate) fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The link-local address made from a MAC by modified EUI-64
/// ([RFC 4291 App. A](https://www.rfc-editor.org/rfc/rfc4291#appendix-A)): the proxy's own
/// address on a provider link, source of its Neighbor Solicitations there.
pub fn eui64_link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// The interface id (low 64 bits) of an address.
pub(crate) fn iid_of(a: Ipv6Addr) -> u64 {
    a.to_bits() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn multicast_and_link_local_derivations() {
        // RFC 4291 §2.7.1 example form and RFC 2464 §7 mapping.
        assert_eq!(
            solicited_node(a("2001:db8::1:2:3:4567:89ab")),
            a("ff02::1:ff67:89ab")
        );
        assert_eq!(
            multicast_mac(a("ff02::1:ff67:89ab")),
            MacAddr([0x33, 0x33, 0xff, 0x67, 0x89, 0xab])
        );
        assert_eq!(
            eui64_link_local(MacAddr([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30])),
            a("fe80::5eff:fe10:2030")
        );
    }

    #[test]
    fn frames_round_trip_and_padding_is_cut() {
        let ip = ipv6(a("fe80::1"), a("fe80::2"), 59, 7, &[1, 2, 3]).unwrap();
        let mut f = ethernet(
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 1]),
            &ip,
        );
        f.extend_from_slice(&[0xee; 9]); // Ethernet padding
        let v = Ipv6Frame::parse(&f).unwrap();
        assert_eq!(
            (v.src(), v.dst(), v.next_header(), v.hop_limit()),
            (a("fe80::1"), a("fe80::2"), 59, 7)
        );
        assert_eq!(v.packet(), &ip[..]);
        assert_eq!(v.eth_src, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(v.upper(), Some((59, &[1u8, 2, 3][..])));
        // Truncated: Payload Length past the end.
        assert!(Ipv6Frame::parse(&f[..14 + 41]).is_none());
        assert!(Ipv6Frame::parse(&[]).is_none());
    }

    #[test]
    fn udp_round_trip_and_checksum() {
        let src = SocketAddrV6::new(a("fc00:1:2:3::10"), 40000, 0, 0);
        let dst = SocketAddrV6::new(a("fc00:1:2:3::1"), 53, 0, 0);
        let ip = udp(src, dst, 64, b"hello").unwrap();
        assert_eq!(ip[6], 17);
        let f = ethernet(
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 1]),
            &ip,
        );
        let v = Ipv6Frame::parse(&f).unwrap();
        let (p, body) = v.upper().unwrap();
        assert_eq!(p, 17);
        assert_eq!(
            parse_udp(v.src(), v.dst(), body),
            Ok((40000, 53, &b"hello"[..]))
        );
        // Another destination: the pseudo-header no longer matches.
        assert_eq!(
            parse_udp(v.src(), a("fc00:1:2:3::2"), body),
            Err(UdpError::Checksum)
        );
        let mut zero = body.to_vec();
        zero[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(parse_udp(v.src(), v.dst(), &zero), Err(UdpError::Checksum));
        assert_eq!(
            parse_udp(v.src(), v.dst(), &body[..7]),
            Err(UdpError::Malformed)
        );
        let mut long = body.to_vec();
        long[4..6].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(parse_udp(v.src(), v.dst(), &long), Err(UdpError::Malformed));
    }

    #[test]
    fn tunnel_inner_packet() {
        let inner = ipv6(a("2001:db8::1"), a("2001:db8::2"), 59, 9, &[7; 4]).unwrap();
        let outer = ipv6(a("2001:db8:ff::1"), a("2001:db8:ff::2"), 41, 64, &inner).unwrap();
        let f = ethernet(
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 1]),
            &outer,
        );
        let v = Ipv6Frame::parse(&f).unwrap();
        let same = v.inner_if_tunnel(Some(a("2001:db8:ff::9"))).unwrap();
        assert_eq!(same.dst(), a("2001:db8:ff::2"));
        let i = v.inner_if_tunnel(Some(a("2001:db8:ff::2"))).unwrap();
        assert_eq!(
            (i.src(), i.dst(), i.hop_limit()),
            (a("2001:db8::1"), a("2001:db8::2"), 9)
        );
        assert_eq!(i.packet(), &inner[..]);
    }
}
