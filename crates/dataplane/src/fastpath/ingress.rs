//! Provider → inside with a payload extension header and a known tag
//! ([RFC 5533 §12.2](https://www.rfc-editor.org/rfc/rfc5533#section-12.2), spec shim6.md §14):
//! the source and destination locators become the peer's and the host's ULIDs again, the
//! 8-byte header comes out (only the headers in front of it move, then the buffer start moves
//! forward; `wire::remove_payload_header` when routing-sublayer headers precede it), and the
//! frame goes to the host's MAC from the neighbour table.
//!
//! The RFC demultiplexes payload packets by tag alone
//! ([RFC 5533 §12.2](https://www.rfc-editor.org/rfc/rfc5533#section-12.2)), and the source
//! locator is not checked: REAP lets each side pick its own locator pair, so a peer may
//! legitimately send from any of its locators, not only the one in our current pair
//! (asymmetric traffic: each side explores its own direction,
//! [RFC 5534 §4.2](https://www.rfc-editor.org/rfc/rfc5534#section-4.2)), and the table
//! entry only holds that current pair. As hygiene the fast path still wants the destination
//! to be one of the host's locators (one of our PA prefixes + the ULID's interface id);
//! anything else is punted (`LocatorMismatch`) to the slow path.

use std::net::Ipv6Addr;

use table::{flags, RawEntry};
use wire::PAYLOAD_HEADER_LEN;

use super::packet::{iid_at, ip, prefix_at, put_addr, put_addr_at, write_eth, ETH_LEN, IPV6_LEN};
use super::{DropReason, Parsed, Path, PuntReason, State, Verdict};
use crate::buf::PacketBuf;

impl State {
    /// A payload packet whose tag found `e`; its payload header is at `p.l3 + shim`.
    pub(super) fn ingress<B: PacketBuf>(
        &mut self,
        pkt: &mut B,
        p: Parsed,
        shim: usize,
        e: &RawEntry,
    ) -> Verdict {
        let fl = e.flags();
        if fl & flags::ESTABLISHED == 0 || fl & flags::NATV6 != 0 {
            // A context still being set up (RFC 5533 §12.2: I2-SENT and I2BIS-SENT resend
            // and then process; I1-SENT discards) or a NATv6 placeholder: slow path.
            return Verdict::Punt(PuntReason::UnknownTag(e.local_tag()));
        }
        let local_ulid = e.local_ulid();
        let f = pkt.as_ref();
        let dst_ok = iid_at(f, p.l3 + ip::DST.start) == local_ulid[1]
            && self
                .provider_of_prefix(prefix_at(f, p.l3 + ip::DST.start))
                .is_some();
        if !dst_ok {
            return Verdict::Punt(PuntReason::LocatorMismatch);
        }
        let total = p.end - p.l3 - PAYLOAD_HEADER_LEN;
        if total > usize::from(self.inside.mtu) {
            // Report the size the peer's packets (with the payload header) may have.
            let removed = p.l3 - ETH_LEN + PAYLOAD_HEADER_LEN;
            return Verdict::Punt(PuntReason::TooBig {
                mtu: self.inside.mtu.saturating_add(removed as u16),
            });
        }
        let host =
            Ipv6Addr::from_bits((u128::from(local_ulid[0]) << 64) | u128::from(local_ulid[1]));
        let Some(host_mac) = self.host_mac(host) else {
            return Verdict::Punt(PuntReason::NoNextHop);
        };
        pkt.truncate(p.end);
        let f = pkt.as_mut();
        let l3 = p.l3;
        if shim == IPV6_LEN {
            // Common case: the payload header follows the IPv6 header. Write the fixed part
            // of the IPv6 header 8 bytes further on, over the old addresses, with the
            // payload header's Next Header, then the ULIDs: nothing else moves. The IPv6 and
            // payload headers (48 bytes) as a fixed-size array: constant offsets, no bounds
            // check per field.
            let Some(h) = f
                .get_mut(l3..l3 + IPV6_LEN + PAYLOAD_HEADER_LEN)
                .and_then(|h| <&mut [u8; IPV6_LEN + PAYLOAD_HEADER_LEN]>::try_from(h).ok())
            else {
                return Verdict::Drop(DropReason::Malformed);
            };
            let nh = h[IPV6_LEN];
            let plen = (total - IPV6_LEN) as u16;
            let hl = h[ip::HOP_LIMIT].wrapping_sub(1);
            // Fixed-size copies (no memmove call): version, traffic class, flow label.
            let mut first = [0u8; 4];
            first.copy_from_slice(&h[..4]);
            let o = PAYLOAD_HEADER_LEN;
            h[o..o + 4].copy_from_slice(&first);
            h[o + ip::PAYLOAD_LEN.start..o + ip::PAYLOAD_LEN.end]
                .copy_from_slice(&plen.to_be_bytes());
            h[o + ip::NEXT_HEADER] = nh;
            h[o + ip::HOP_LIMIT] = hl;
            put_addr(h, o + ip::SRC.start, e.peer_ulid());
            put_addr(h, o + ip::DST.start, local_ulid);
        } else {
            put_addr_at(f, l3 + ip::SRC.start, e.peer_ulid());
            put_addr_at(f, l3 + ip::DST.start, local_ulid);
            f[l3 + ip::HOP_LIMIT] -= 1;
            // Headers in front of it (Hop-by-Hop, routing): wire walks the chain.
            if wire::remove_payload_header(&mut f[l3..p.end]).is_err() {
                // Cannot happen after classify (it found the header and checked its length).
                return Verdict::Drop(DropReason::Malformed);
            }
        }
        // The packet is now f[l3 + 8..end]; move the start so it follows a fresh Ethernet
        // header (this also drops the outer header of a tunnel we terminated).
        if pkt.adj(p.l3 - ETH_LEN + PAYLOAD_HEADER_LEN).is_err() {
            return Verdict::Drop(DropReason::Malformed);
        }
        write_eth(pkt.as_mut(), host_mac, self.inside.mac);
        self.count_context(e.slot(), total as u32, true);
        self.stats.forwarded[Path::Ingress.index()] += 1;
        Verdict::Forward(self.inside.port)
    }
}
