//! ICMPv6 the proxy originates ([RFC 4443](https://www.rfc-editor.org/rfc/rfc4443)):
//!
//! - **Packet Too Big** to an inside host whose packet would exceed the provider MTU once the
//!   8-byte Shim6 payload header is inserted (the fast path punts it with the MTU the host
//!   must use, link MTU − 8 − tunnel overhead). The proxy inserts that header in transit, a
//!   deliberate departure from [RFC 8200 §4](https://www.rfc-editor.org/rfc/rfc8200#section-4)
//!   (architecture.md); this message is how the hosts learn to leave room for it.
//! - **Time Exceeded** for a forwarded packet whose hop limit ran out (§3.3).
//! - **Echo Reply** for echo requests to the proxy's own addresses (§4.2).
//!
//! Errors quote as much of the invoking packet as fits in the minimum MTU (§2.4 (c)), byte for
//! byte (the quoted header is copied, not re-emitted), are rate-limited (§2.4 (f)) and are never
//! sent about an ICMPv6 error, a multicast destination (Packet Too Big excepted) or a
//! non-unicast source (§2.4 (e)).

use std::net::Ipv6Addr;
use std::time::Instant;

use smoltcp::wire::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr};

use super::frame::{self, DEFAULT_HOP_LIMIT};
use crate::fastpath::packet::{proto, IPV6_LEN};

/// The IPv6 minimum MTU: an ICMPv6 error never exceeds it
/// ([RFC 4443 §2.4 (c)](https://www.rfc-editor.org/rfc/rfc4443#section-2.4)).
pub const MIN_MTU: usize = 1280;

/// Bytes of the ICMPv6 error header (type, code, checksum, 32-bit parameter).
const ERROR_HEADER_LEN: usize = 8;

/// Most bytes of the invoking packet an error quotes.
pub const MAX_QUOTE: usize = MIN_MTU - IPV6_LEN - ERROR_HEADER_LEN;

/// A token bucket: `per_sec` tokens a second, at most `per_sec` stored (a one-second burst).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    per_sec: u32,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(per_sec: u32, now: Instant) -> Self {
        Self {
            per_sec,
            tokens: f64::from(per_sec),
            last: now,
        }
    }

    /// Takes a token if one is left.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let cap = f64::from(self.per_sec);
        self.tokens = (self.tokens + dt * cap).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether an ICMPv6 error may be sent about `invoking` (an IPv6 packet)
/// ([RFC 4443 §2.4 (e)](https://www.rfc-editor.org/rfc/rfc4443#section-2.4)). `too_big`: the
/// error is a Packet Too Big, which may answer a multicast destination.
pub(crate) fn may_report(invoking: &[u8], too_big: bool) -> bool {
    let Some(hdr) = invoking.get(..IPV6_LEN) else {
        return false;
    };
    let mut s = [0u8; 16];
    s.copy_from_slice(&hdr[8..24]);
    let src = Ipv6Addr::from(s);
    if src.is_unspecified() || src.is_multicast() {
        return false;
    }
    if hdr[24] == 0xff && !too_big {
        return false;
    }
    if hdr[6] == proto::ICMPV6 {
        // An ICMPv6 error (type < 128) is never answered with one; the type follows the fixed
        // header when no extension header comes first.
        if invoking.get(IPV6_LEN).is_some_and(|t| *t < 128) {
            return false;
        }
    }
    true
}

/// An ICMPv6 error message from `src` to `dst`: `typ`/`code`, the 32-bit `param` (MTU,
/// pointer or zero), then `invoking` cut to [`MAX_QUOTE`]; as an IPv6 packet.
fn error(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    typ: Icmpv6Message,
    code: u8,
    param: u32,
    invoking: &[u8],
) -> Option<Vec<u8>> {
    let quoted = invoking.get(..invoking.len().min(MAX_QUOTE))?;
    let mut body = vec![0u8; ERROR_HEADER_LEN + quoted.len()];
    body[4..8].copy_from_slice(&param.to_be_bytes());
    body[ERROR_HEADER_LEN..].copy_from_slice(quoted);
    let mut pkt = Icmpv6Packet::new_unchecked(&mut body[..]);
    pkt.set_msg_type(typ);
    pkt.set_msg_code(code);
    pkt.fill_checksum(&src, &dst);
    frame::ipv6(src, dst, proto::ICMPV6, DEFAULT_HOP_LIMIT, &body)
}

/// Packet Too Big with `mtu` about `invoking`, from `src` (an address of the proxy) to the
/// invoking packet's source ([RFC 4443 §3.2](https://www.rfc-editor.org/rfc/rfc4443#section-3.2)).
pub(crate) fn packet_too_big(src: Ipv6Addr, mtu: u32, invoking: &[u8]) -> Option<Vec<u8>> {
    let dst = source_of(invoking)?;
    error(src, dst, Icmpv6Message::PktTooBig, 0, mtu, invoking)
}

/// Time Exceeded, code 0 "hop limit exceeded in transit"
/// ([RFC 4443 §3.3](https://www.rfc-editor.org/rfc/rfc4443#section-3.3)).
pub(crate) fn time_exceeded(src: Ipv6Addr, invoking: &[u8]) -> Option<Vec<u8>> {
    let dst = source_of(invoking)?;
    error(src, dst, Icmpv6Message::TimeExceeded, 0, 0, invoking)
}

/// Destination Unreachable, code 4 (port unreachable), from `src` about `invoking`: a UDP
/// datagram for one of our addresses that no service takes
/// ([RFC 4443 §3.1](https://www.rfc-editor.org/rfc/rfc4443#section-3.1)).
pub(crate) fn port_unreachable(src: Ipv6Addr, invoking: &[u8]) -> Option<Vec<u8>> {
    let dst = source_of(invoking)?;
    error(src, dst, Icmpv6Message::DstUnreachable, 4, 0, invoking)
}

/// The Echo Reply to an Echo Request (`icmp` = its ICMPv6 bytes) sent from `peer` to
/// `ours` ([RFC 4443 §4.2](https://www.rfc-editor.org/rfc/rfc4443#section-4.2)); `None` when it
/// is not a valid Echo Request.
pub(crate) fn echo_reply(ours: Ipv6Addr, peer: Ipv6Addr, icmp: &[u8]) -> Option<Vec<u8>> {
    let pkt = Icmpv6Packet::new_checked(icmp).ok()?;
    let repr = Icmpv6Repr::parse(
        &peer,
        &ours,
        &pkt,
        &smoltcp::phy::ChecksumCapabilities::default(),
    )
    .ok()?;
    let Icmpv6Repr::EchoRequest {
        ident,
        seq_no,
        data,
    } = repr
    else {
        return None;
    };
    frame::icmpv6(
        ours,
        peer,
        DEFAULT_HOP_LIMIT,
        &Icmpv6Repr::EchoReply {
            ident,
            seq_no,
            data,
        },
    )
}

fn source_of(invoking: &[u8]) -> Option<Ipv6Addr> {
    let mut s = [0u8; 16];
    s.copy_from_slice(invoking.get(8..24)?);
    Some(Ipv6Addr::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv6Packet;
    use std::time::Duration;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A UDP packet of `len` bytes in all from the host to a peer ULID.
    fn invoking(len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..len - IPV6_LEN).map(|i| i as u8).collect();
        let mut p = frame::ipv6(a("fc00:1:2:3::10"), a("fc00:9::20"), 17, 63, &payload).unwrap();
        p[1] = 0x2e; // traffic class bits: the quote must keep them
        p
    }

    /// Independent checksum over the pseudo-header and `icmp` (RFC 8200 §8.1).
    fn verifies(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> bool {
        let mut v = Vec::new();
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 58]);
        v.extend_from_slice(icmp);
        wire::checksum::verify(&v)
    }

    #[test]
    fn packet_too_big_quotes_and_checksums() {
        let inv = invoking(1500);
        let ptb = packet_too_big(a("fc00:1:2:3::1"), 1492, &inv).unwrap();
        // Never larger than the minimum MTU; quotes the first 1232 bytes verbatim.
        assert_eq!(ptb.len(), MIN_MTU);
        let ip = Ipv6Packet::new_checked(&ptb[..]).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr()),
            (a("fc00:1:2:3::1"), a("fc00:1:2:3::10"))
        );
        assert_eq!(u8::from(ip.next_header()), 58);
        let icmp = ip.payload();
        assert_eq!(&icmp[..2], &[2, 0]);
        assert_eq!(
            u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            1492
        );
        assert_eq!(&icmp[8..], &inv[..MAX_QUOTE]);
        assert!(verifies(ip.src_addr(), ip.dst_addr(), icmp));
        // A small packet is quoted whole.
        let inv = invoking(100);
        let ptb = packet_too_big(a("fc00:1:2:3::1"), 1280, &inv).unwrap();
        assert_eq!(&ptb[IPV6_LEN + 8..], &inv[..]);
    }

    #[test]
    fn time_exceeded_and_echo() {
        let inv = invoking(80);
        let te = time_exceeded(a("fc00:1:2:3::1"), &inv).unwrap();
        assert_eq!(&te[IPV6_LEN..IPV6_LEN + 2], &[3, 0]);
        assert!(verifies(
            a("fc00:1:2:3::1"),
            a("fc00:1:2:3::10"),
            &te[IPV6_LEN..]
        ));

        let pu = port_unreachable(a("fc00:1:2:3::1"), &inv).unwrap();
        assert_eq!(&pu[IPV6_LEN..IPV6_LEN + 2], &[1, 4]);
        assert_eq!(
            &pu[24..40],
            &inv[8..24],
            "back to the invoking packet's source"
        );
        assert!(verifies(
            a("fc00:1:2:3::1"),
            a("fc00:1:2:3::10"),
            &pu[IPV6_LEN..]
        ));

        let req = frame::icmpv6(
            a("fc00:1:2:3::10"),
            a("fc00:1:2:3::1"),
            64,
            &Icmpv6Repr::EchoRequest {
                ident: 7,
                seq_no: 9,
                data: b"ping",
            },
        )
        .unwrap();
        let rep = echo_reply(a("fc00:1:2:3::1"), a("fc00:1:2:3::10"), &req[IPV6_LEN..]).unwrap();
        let icmp = &rep[IPV6_LEN..];
        assert_eq!(icmp[0], 129);
        assert_eq!(&icmp[4..], &[0, 7, 0, 9, b'p', b'i', b'n', b'g']);
        assert!(verifies(a("fc00:1:2:3::1"), a("fc00:1:2:3::10"), icmp));
        // A corrupted request is not answered.
        let mut bad = req.clone();
        bad[IPV6_LEN + 9] ^= 1;
        assert!(echo_reply(a("fc00:1:2:3::1"), a("fc00:1:2:3::10"), &bad[IPV6_LEN..]).is_none());
    }

    #[test]
    fn errors_are_not_sent_about_errors_or_multicast() {
        let inv = invoking(80);
        assert!(may_report(&inv, false));
        let te = time_exceeded(a("fc00:1:2:3::1"), &inv).unwrap();
        assert!(!may_report(&te, false));
        let mut mcast = inv.clone();
        mcast[24] = 0xff;
        assert!(!may_report(&mcast, false));
        assert!(may_report(&mcast, true));
        let mut unspec = inv.clone();
        unspec[8..24].fill(0);
        assert!(!may_report(&unspec, true));
        assert!(!may_report(&inv[..39], true));
    }

    #[test]
    fn token_bucket_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, t0);
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
    }
}
