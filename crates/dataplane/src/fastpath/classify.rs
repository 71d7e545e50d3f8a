//! Pass one of a burst: check the headers once, settle everything that needs no context
//! (punts for the slow path, drops), and collect the lookup keys of the rest.
//!
//! Nothing here writes to the frame: a punted frame reaches the slow path exactly as received.

use table::PairKey;
use wire::{ContextTag, NO_NEXT_HEADER, PAYLOAD_HEADER_LEN, SHIM6_NEXT_HEADER};

use super::packet::{
    addr_at, be64, headers, ip, prefix_at, proto, upper_layer, Upper, ETHERTYPE_IPV6, ETH_LEN,
    IPV6_LEN,
};
use super::{DropReason, Parsed, PuntReason, State, Step, Verdict};
use crate::io::{PortId, BURST};

const fn punt(r: PuntReason) -> Step {
    Step::Done(Verdict::Punt(r))
}

const fn drop(r: DropReason) -> Step {
    Step::Done(Verdict::Drop(r))
}

/// fc00::/7 ([RFC 4193 §3.1](https://www.rfc-editor.org/rfc/rfc4193#section-3.1)): a remote
/// ULID (CMULA) is one, and is never routable.
#[inline]
pub(super) fn is_ula(a: &[u8; 16]) -> bool {
    a[0] & 0xfe == 0xfc
}

/// fe80::/10 or multicast: link-scope traffic the appliance itself answers.
#[inline]
fn is_link_scope(a: &[u8; 16]) -> bool {
    a[0] == 0xff || (a[0] == 0xfe && a[1] & 0xc0 == 0x80)
}

/// [`is_link_scope`] of an address given by its high half.
#[inline(always)]
fn is_link_scope_hi(hi: u64) -> bool {
    hi >> 56 == 0xff || hi >> 54 == 0xfe80 >> 6
}

/// ICMPv6 types of Neighbor Discovery: Router Solicitation .. Redirect
/// ([RFC 4861 §4](https://www.rfc-editor.org/rfc/rfc4861#section-4)).
const ND_TYPES: core::ops::RangeInclusive<u8> = 133..=137;

/// Checks Ethernet and IPv6 headers; the IPv6 packet is `f[14..end]`.
#[inline]
fn parse(f: &[u8]) -> Result<Parsed, DropReason> {
    let Some(hdr) = f.get(..ETH_LEN + IPV6_LEN) else {
        return Err(match f.get(12..14) {
            Some(t) if t != ETHERTYPE_IPV6 => DropReason::NotIpv6,
            _ => DropReason::Malformed,
        });
    };
    if hdr[12..14] != ETHERTYPE_IPV6 || hdr[ETH_LEN] >> 4 != 6 {
        return Err(DropReason::NotIpv6);
    }
    let l3 = ETH_LEN;
    let plen = usize::from(u16::from_be_bytes([hdr[l3 + 4], hdr[l3 + 5]]));
    let end = l3 + IPV6_LEN + plen;
    // Jumbograms (Payload Length 0 with a Jumbo option) are not supported: Malformed.
    if end > f.len() || (plen == 0 && hdr[l3 + ip::NEXT_HEADER] == 0) {
        return Err(DropReason::Malformed);
    }
    Ok(Parsed { l3, end })
}

/// Offset (from the IPv6 header) of the first Shim6 header, if any. A Shim6 header right
/// after the IPv6 header, or an upper-layer protocol there, is settled without a walk;
/// extension headers go through `wire::find_shim6`.
#[inline]
fn locate_shim6(f: &[u8], p: Parsed) -> Result<Option<usize>, ()> {
    match f[p.l3 + ip::NEXT_HEADER] {
        SHIM6_NEXT_HEADER if p.l3 + IPV6_LEN + PAYLOAD_HEADER_LEN <= p.end => Ok(Some(IPV6_LEN)),
        SHIM6_NEXT_HEADER => Err(()),
        proto::TCP | proto::UDP | proto::ICMPV6 | proto::IPV6 | NO_NEXT_HEADER => Ok(None),
        _ => wire::find_shim6(&f[p.l3..p.end])
            .map(|l| l.map(|l| l.offset))
            .map_err(|_| ()),
    }
}

impl State {
    /// Neighbor Discovery goes to the slow path's ND handling, everything else for the
    /// appliance (DHCPv6, DNS, echo, MLD) to its host stack.
    fn for_us(&self, f: &[u8], p: Parsed) -> Step {
        match upper_layer(f, p.l3, p.end) {
            Some(Upper::At {
                proto: proto::ICMPV6,
                off,
            }) => match f.get(off) {
                Some(t) if ND_TYPES.contains(t) => punt(PuntReason::Neighbor),
                _ => punt(PuntReason::ForUs),
            },
            Some(_) => punt(PuntReason::ForUs),
            None => drop(DropReason::Malformed),
        }
    }

    /// A frame from the inside port.
    pub(super) fn classify_inside(
        &self,
        f: &[u8],
        keys: &mut [PairKey; BURST],
        n: &mut usize,
    ) -> Step {
        let p = match parse(f) {
            Ok(p) => p,
            Err(r) => return drop(r),
        };
        // parse checked the length; this only gives the compiler the fixed size.
        let Some(h) = headers(f) else {
            return drop(DropReason::Malformed);
        };
        // The addresses as the table keeps them: four big-endian halves, compared and used
        // as the lookup key without further conversion.
        let l3 = ETH_LEN;
        let key = [
            be64(h, l3 + ip::SRC.start),
            be64(h, l3 + ip::SRC.start + 8),
            be64(h, l3 + ip::DST.start),
            be64(h, l3 + ip::DST.start + 8),
        ];
        let dst = [key[2], key[3]];
        if is_link_scope_hi(key[2])
            || dst == self.inside.global_w
            || dst == self.inside.link_local_w
        {
            return self.for_us(f, p);
        }
        if key[0] != self.ulid_prefix {
            // Only our hosts' ULIDs may leave through the proxy (a link-local or unspecified
            // source to a non-link-scope destination is equally wrong).
            return drop(DropReason::BadSource);
        }
        if key[2] == self.ulid_prefix {
            // Host to host inside the site: not ours to translate; the slow path redirects.
            return punt(PuntReason::ForUs);
        }
        if h[l3 + ip::HOP_LIMIT] <= 1 {
            return punt(PuntReason::HopLimit);
        }
        let i = *n;
        let Some(slot) = keys.get_mut(i) else {
            // Cannot happen: a chunk has at most BURST packets.
            return punt(PuntReason::NoContext);
        };
        *slot = key;
        *n += 1;
        Step::Outbound { p, key: i }
    }

    /// A frame from a provider port.
    pub(super) fn classify_outside(
        &self,
        rx_port: PortId,
        f: &[u8],
        tags: &mut [ContextTag; BURST],
        n: &mut usize,
    ) -> Step {
        let mut p = match parse(f) {
            Ok(p) => p,
            Err(r) => return drop(r),
        };
        let mut dst = addr_at(f, p.l3 + ip::DST.start);
        if is_link_scope(&dst) {
            return self.for_us(f, p);
        }
        // Neighbor Discovery is link business whatever the destination: a router's unicast
        // NUD probe for a host locator must reach the slow path's ND proxy, not be NATv6'd to
        // the inside host (RFC 4861 §7.3). ND has no extension headers in practice, so only
        // ICMPv6 right after the IPv6 header is looked at.
        if f[p.l3 + ip::NEXT_HEADER] == proto::ICMPV6
            && f.get(p.l3 + IPV6_LEN).is_some_and(|t| ND_TYPES.contains(t))
        {
            return punt(PuntReason::Neighbor);
        }
        // Our end of a provider tunnel: terminate it and look at the inner packet.
        let tunnel_end = self.tunnels
            && self.providers.iter().any(|q| {
                q.port == rx_port && q.tunnel.is_some_and(|(local, _)| local.octets() == dst)
            });
        if tunnel_end {
            if f[p.l3 + ip::NEXT_HEADER] != proto::IPV6 {
                return self.for_us(f, p);
            }
            let l3 = p.l3 + IPV6_LEN;
            let Some(inner) = f.get(l3..l3 + IPV6_LEN).filter(|h| h[0] >> 4 == 6) else {
                return drop(DropReason::Malformed);
            };
            let end = l3 + IPV6_LEN + usize::from(u16::from_be_bytes([inner[4], inner[5]]));
            if end > p.end {
                return drop(DropReason::Malformed);
            }
            p = Parsed { l3, end };
            dst = addr_at(f, l3 + ip::DST.start);
            if is_link_scope(&dst) {
                return drop(DropReason::NotOurs);
            }
        }
        if self.providers.iter().any(|q| q.address == Some(dst)) {
            return self.for_us(f, p);
        }
        let shim = match locate_shim6(f, p) {
            Ok(s) => s,
            Err(()) => return drop(DropReason::Malformed),
        };
        if let Some(offset) = shim {
            // locate_shim6 checked that the 8 header bytes are inside the packet; read them
            // as one big-endian word (no check per byte).
            let h = p.l3 + offset;
            let Some(ph) = f
                .get(h..h + PAYLOAD_HEADER_LEN)
                .and_then(|b| b.first_chunk::<8>())
            else {
                return drop(DropReason::Malformed);
            };
            let ph = u64::from_be_bytes(*ph);
            if ph & (1 << 47) == 0 {
                return punt(PuntReason::Control);
            }
            if (ph >> 48) & 0xff != 0 {
                // A payload header is exactly 8 bytes (RFC 5533 §5.2).
                return drop(DropReason::Malformed);
            }
            if f[p.l3 + ip::HOP_LIMIT] <= 1 {
                return punt(PuntReason::HopLimit);
            }
            let key = *n;
            let Some(slot) = tags.get_mut(key) else {
                // Cannot happen: a chunk has at most BURST packets.
                return punt(PuntReason::UnknownTag(ContextTag::from_wire(ph)));
            };
            // The low 47 bits are the tag (the P bit above them is masked off).
            *slot = ContextTag::from_wire(ph);
            *n += 1;
            return Step::Inbound {
                p,
                shim: offset,
                key,
            };
        }
        let Some(provider) = self.provider_of_prefix(prefix_at(f, p.l3 + ip::DST.start)) else {
            return drop(DropReason::NotOurs);
        };
        if prefix_at(f, p.l3 + ip::SRC.start) == self.ulid_prefix {
            // Our ULIDs are not routable: from outside such a source is spoofed.
            return drop(DropReason::BadSource);
        }
        // The proxy's own inside address, reached through its NATv6 locator.
        if f[p.l3 + ip::DST.start + 8..p.l3 + ip::DST.end] == self.inside.global[8..]
            && self.inside.global[..8] == self.ulid_prefix.to_be_bytes()
        {
            return self.for_us(f, p);
        }
        if f[p.l3 + ip::HOP_LIMIT] <= 1 {
            return punt(PuntReason::HopLimit);
        }
        Step::NatIn { p, provider }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        assert!(is_ula(&a("fc00::1")) && is_ula(&a("fdff::1")) && !is_ula(&a("fe80::1")));
        assert!(is_link_scope(&a("fe80::1")) && is_link_scope(&a("febf::1")));
        assert!(is_link_scope(&a("ff02::1:2")) && !is_link_scope(&a("fec0::1")));
        for s in [
            "fe80::1",
            "febf::1",
            "ff02::1",
            "fec0::1",
            "fe7f::1",
            "fc00::1",
            "2001:db8::1",
        ] {
            let hi = u64::from_be_bytes(a(s)[..8].try_into().unwrap());
            assert_eq!(is_link_scope_hi(hi), is_link_scope(&a(s)), "{s}");
        }
    }

    #[test]
    fn parse_checks_lengths() {
        let mut f = vec![0u8; 14 + 40 + 4];
        f[12] = 0x86;
        f[13] = 0xdd;
        f[14] = 0x60;
        f[14 + 5] = 4;
        f[14 + 6] = 17;
        assert_eq!(parse(&f), Ok(Parsed { l3: 14, end: 58 }));
        f[14 + 5] = 5;
        assert_eq!(parse(&f), Err(DropReason::Malformed));
        assert_eq!(parse(&f[..30]), Err(DropReason::Malformed));
        f[12] = 0x08;
        f[13] = 0x00;
        assert_eq!(parse(&f[..30]), Err(DropReason::NotIpv6));
        assert_eq!(parse(&f), Err(DropReason::NotIpv6));
    }
}
