//! IPv6 extension-header chain ([RFC 8200 §4]) and where the Shim6 header sits in it
//! ([RFC 5533 §4.6]).
//!
//! The shim sits below fragmentation, IPsec and end-to-end Destination Options and above the
//! routing sub-layer, so a payload header goes after the IPv6 header, Hop-by-Hop Options,
//! Routing header and a Destination Options header that precedes a Routing header, and before a
//! Fragment header, the final Destination Options, AH, ESP and the upper layer.
//!
//! Deliberate departure: pshim6 inserts and removes this header in transit, on behalf of
//! legacy hosts, although RFC 8200 §4 lets only the endpoints add or delete extension headers
//! (see `architecture.md`).
//!
//! [RFC 8200 §4]: https://www.rfc-editor.org/rfc/rfc8200#section-4
//! [RFC 5533 §4.6]: https://www.rfc-editor.org/rfc/rfc5533#section-4.6

use smoltcp::wire::Ipv6Packet;

use crate::payload::{PayloadRepr, PAYLOAD_HEADER_LEN};
use crate::types::IPV6_HEADER_LEN;
use crate::{ContextTag, WireError, SHIM6_NEXT_HEADER};

/// Next Header values this module knows.
pub mod next_header {
    /// Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (opaque: the walk stops there).
    pub const ESP: u8 = 50;
    /// Authentication Header (length in 4-octet units).
    pub const AH: u8 = 51;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header.
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol.
    pub const HIP: u8 = 139;
    /// Experimental (RFC 3692 style), generic extension-header format.
    pub const EXPERIMENTAL_1: u8 = 253;
    /// Experimental (RFC 3692 style), generic extension-header format.
    pub const EXPERIMENTAL_2: u8 = 254;
    /// Offset of the Next Header field in the IPv6 header.
    pub const IPV6_NH_FIELD: usize = 6;
}
use next_header::*;

/// Where a Shim6 header is (or goes) in an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShimLocation {
    /// Offset of the Shim6 header from the start of the IPv6 header.
    pub offset: usize,
    /// Offset of the Next Header byte that names it (6 when it follows the IPv6 header).
    pub nh_field: usize,
}

/// Checks the IPv6 header and returns the packet cut to `40 + Payload Length` bytes.
fn ipv6_packet(buf: &[u8]) -> Result<&[u8], WireError> {
    let ip = Ipv6Packet::new_checked(buf).map_err(|_| WireError::Truncated)?;
    if ip.version() != 6 {
        return Err(WireError::NotIpv6);
    }
    buf.get(..ip.total_len()).ok_or(WireError::Truncated)
}

/// Length of the extension header of type `nh` at `pkt[off..]`, checked to fit.
fn ext_len(pkt: &[u8], off: usize, nh: u8) -> Result<usize, WireError> {
    let len_byte = *pkt.get(off + 1).ok_or(WireError::Truncated)?;
    let len = match nh {
        FRAGMENT => 8,
        AH => (usize::from(len_byte) + 2) * 4,
        _ => (usize::from(len_byte) + 1) * 8,
    };
    if off + len > pkt.len() {
        return Err(WireError::Truncated);
    }
    Ok(len)
}

/// Walks the extension-header chain of `ipv6_packet` (starting at the IPv6 header) and returns
/// where the first Shim6 header (Next Header 140) is, payload or control.
///
/// Walks Hop-by-Hop, Routing, Destination Options, Fragment (first fragments only), AH,
/// Mobility, HIP and the experimental types; stops with `Ok(None)` at an upper-layer header,
/// No Next Header, ESP or a non-first fragment. Errors: `Truncated` (a header, or the 8 bytes
/// of the Shim6 header, run past Payload Length), `NotIpv6`.
pub fn find_shim6(ipv6_packet: &[u8]) -> Result<Option<ShimLocation>, WireError> {
    let pkt = self::ipv6_packet(ipv6_packet)?;
    let mut nh_field = IPV6_NH_FIELD;
    let mut off = IPV6_HEADER_LEN;
    loop {
        let nh = pkt[nh_field];
        match nh {
            SHIM6_NEXT_HEADER => {
                if off + PAYLOAD_HEADER_LEN > pkt.len() {
                    return Err(WireError::Truncated);
                }
                return Ok(Some(ShimLocation {
                    offset: off,
                    nh_field,
                }));
            }
            FRAGMENT => {
                let len = ext_len(pkt, off, nh)?;
                let frag_offset = u16::from_be_bytes([pkt[off + 2], pkt[off + 3]]) >> 3;
                if frag_offset != 0 {
                    // What follows is the middle of a fragmented payload, not headers.
                    return Ok(None);
                }
                nh_field = off;
                off += len;
            }
            HOP_BY_HOP | ROUTING | DEST_OPTS | AH | MOBILITY | HIP | EXPERIMENTAL_1
            | EXPERIMENTAL_2 => {
                let len = ext_len(pkt, off, nh)?;
                nh_field = off;
                off += len;
            }
            _ => return Ok(None),
        }
    }
}

/// Where a payload header goes ([RFC 5533 §4.6]): after the IPv6 header, a leading Hop-by-Hop
/// Options header, Routing headers and any Destination Options header directly followed by a
/// Routing header; before everything else.
///
/// [RFC 5533 §4.6]: https://www.rfc-editor.org/rfc/rfc5533#section-4.6
pub fn payload_insert_point(ipv6_packet: &[u8]) -> Result<ShimLocation, WireError> {
    let pkt = self::ipv6_packet(ipv6_packet)?;
    let mut nh_field = IPV6_NH_FIELD;
    let mut off = IPV6_HEADER_LEN;
    loop {
        let nh = pkt[nh_field];
        let skip = match nh {
            HOP_BY_HOP => off == IPV6_HEADER_LEN,
            ROUTING => true,
            DEST_OPTS => pkt.get(off) == Some(&ROUTING),
            _ => false,
        };
        if !skip {
            return Ok(ShimLocation {
                offset: off,
                nh_field,
            });
        }
        let len = ext_len(pkt, off, nh)?;
        nh_field = off;
        off += len;
    }
}

fn set_payload_len(packet: &mut [u8], len: usize) -> Result<(), WireError> {
    let len = u16::try_from(len).map_err(|_| WireError::PayloadTooLong)?;
    if packet.len() < IPV6_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    Ipv6Packet::new_unchecked(packet).set_payload_len(len);
    Ok(())
}

/// Inserts a payload extension header carrying `tag` ([RFC 5533 §11.1]).
///
/// `buf` = 8 spare bytes followed by the whole IPv6 packet. Moves the IPv6 header and the
/// routing-sublayer headers 8 bytes towards the front, writes the payload header at the insert
/// point ([`payload_insert_point`]), fixes the Next Header chain and Payload Length. Afterwards
/// the packet is `buf[..]`. Upper-layer checksums are not touched: they cover the ULIDs.
///
/// Errors: `Truncated`, `NotIpv6`, `Shim6Present` (the packet already has a Shim6 header at
/// that point), `PayloadTooLong`. On error `buf` is unchanged.
///
/// [RFC 5533 §11.1]: https://www.rfc-editor.org/rfc/rfc5533#section-11.1
pub fn insert_payload_header(buf: &mut [u8], tag: ContextTag) -> Result<(), WireError> {
    let pkt = buf.get(PAYLOAD_HEADER_LEN..).ok_or(WireError::Truncated)?;
    let loc = payload_insert_point(pkt)?;
    let old_nh = pkt[loc.nh_field];
    if old_nh == SHIM6_NEXT_HEADER {
        return Err(WireError::Shim6Present);
    }
    let plen = usize::from(Ipv6Packet::new_unchecked(pkt).payload_len());
    let new_plen = plen + PAYLOAD_HEADER_LEN;
    if new_plen > usize::from(u16::MAX) {
        return Err(WireError::PayloadTooLong);
    }
    buf.copy_within(PAYLOAD_HEADER_LEN..PAYLOAD_HEADER_LEN + loc.offset, 0);
    let hdr = PayloadRepr {
        next_header: old_nh,
        tag,
    };
    buf[loc.offset..loc.offset + PAYLOAD_HEADER_LEN].copy_from_slice(&hdr.to_bytes());
    buf[loc.nh_field] = SHIM6_NEXT_HEADER;
    set_payload_len(buf, new_plen)
}

/// Removes the payload extension header (inverse of [`insert_payload_header`]).
///
/// `buf` = a whole IPv6 packet carrying a payload header. Afterwards the packet is `buf[8..]`.
/// Returns the receiver context tag.
///
/// Errors: `NoShim6Header`, `NotPayload` (the Shim6 header is a control message),
/// `BadLength` (Hdr Ext Len ≠ 0), `Truncated`, `NotIpv6`. On error `buf` is unchanged.
pub fn remove_payload_header(buf: &mut [u8]) -> Result<ContextTag, WireError> {
    let loc = find_shim6(buf)?.ok_or(WireError::NoShim6Header)?;
    let hdr = PayloadRepr::parse_bytes(&buf[loc.offset..])?;
    let plen = usize::from(Ipv6Packet::new_unchecked(&*buf).payload_len());
    buf[loc.nh_field] = hdr.next_header;
    buf.copy_within(0..loc.offset, PAYLOAD_HEADER_LEN);
    // find_shim6 placed the 8-byte header inside Payload Length, so plen >= 8.
    set_payload_len(&mut buf[PAYLOAD_HEADER_LEN..], plen - PAYLOAD_HEADER_LEN)?;
    Ok(hdr.tag)
}

#[cfg(test)]
mod tests;
