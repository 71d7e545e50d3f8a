//! Inside → provider with an established context
//! ([RFC 5533 §11.1](https://www.rfc-editor.org/rfc/rfc5533#section-11.1), spec shim6.md §14):
//! source and destination become the context's locator pair, the 8-byte payload extension
//! header with the peer's tag CT(peer) goes in after the routing-sublayer headers, the hop
//! limit drops by one, and the frame leaves through the provider that owns the source locator
//! (so the provider's ingress filtering accepts it), directly or through its tunnel. Upper-layer
//! checksums stay as they are: they cover the ULIDs, which the peer restores.
//!
//! The payload header is inserted by growing the buffer 8 bytes at the front and moving only
//! the headers in front of it; the payload does not move. Without routing-sublayer headers
//! (the common case) only the first 8 bytes of the IPv6 header move, since the addresses are
//! rewritten anyway; with them `wire::insert_payload_header` walks the chain.

use table::{flags, RawEntry};
use wire::exthdr::next_header::{DEST_OPTS, HOP_BY_HOP, ROUTING};
use wire::{PAYLOAD_HEADER_LEN, SHIM6_NEXT_HEADER};

use super::classify::is_ula;
use super::packet::{
    addr_at, ip, put_addr, put_addr_at, write_eth, write_tunnel_header, ETH_LEN, IPV6_LEN,
};
use super::{DropReason, Parsed, Path, PuntReason, State, Verdict};
use crate::buf::PacketBuf;
use crate::config::SHIM6_OVERHEAD;

impl State {
    /// The provider owning `e`'s source locator: `tx_provider` when it agrees with the
    /// locator's prefix, else whichever provider's prefix holds it.
    #[inline]
    fn provider_for(&self, e: &RawEntry) -> Option<usize> {
        let prefix = e.local_locator()[0];
        let tx = e.tx_provider();
        match self.providers.iter().position(|p| p.id == tx) {
            Some(i) if self.providers[i].prefix == prefix => Some(i),
            _ => self.provider_of_prefix(prefix),
        }
    }

    /// An outbound packet whose (src, dst) has a table entry.
    pub(super) fn egress<B: PacketBuf>(&mut self, pkt: &mut B, p: Parsed, e: &RawEntry) -> Verdict {
        let fl = e.flags();
        if fl & flags::NATV6 != 0 {
            // A flow the slow path pinned to a provider for a non-SHIM6 peer.
            let prefix = e.local_locator()[0];
            return match self.provider_of_prefix(prefix) {
                Some(i) => self.nat_out(pkt, p, i),
                None => Verdict::Punt(PuntReason::LocatorMismatch),
            };
        }
        if fl & flags::ESTABLISHED == 0 {
            // Handshake under way: the slow path holds the packet until it completes.
            return Verdict::Punt(PuntReason::NoContext);
        }
        let Some(i) = self.provider_for(e) else {
            return Verdict::Punt(PuntReason::LocatorMismatch);
        };
        let prov = &self.providers[i];
        let total = p.end - p.l3;
        let added = usize::from(SHIM6_OVERHEAD + prov.overhead);
        if total + added > usize::from(prov.mtu) {
            return Verdict::Punt(PuntReason::TooBig {
                mtu: prov.mtu - SHIM6_OVERHEAD - prov.overhead,
            });
        }
        let Some(nh_mac) = prov.nh_mac else {
            return Verdict::Punt(PuntReason::NoNextHop);
        };
        if pkt.headroom() < added {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        // Drop Ethernet padding so Payload Length and the frame agree after the insert.
        pkt.truncate(p.end);
        if pkt.prepend(PAYLOAD_HEADER_LEN).is_err() {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let f = pkt.as_mut();
        // f = 8 new bytes | Ethernet (14) | IPv6 ...
        let nh = f[PAYLOAD_HEADER_LEN + ETH_LEN + ip::NEXT_HEADER];
        let l3 = ETH_LEN;
        let chain = matches!(nh, HOP_BY_HOP | ROUTING | DEST_OPTS | SHIM6_NEXT_HEADER);
        if chain {
            // Routing-sublayer headers stay in front of the payload header (RFC 5533 §4.6):
            // let wire walk the chain; give it the 8 bytes in front of the IPv6 packet (the
            // Ethernet bytes there are rewritten below anyway).
            if wire::insert_payload_header(&mut f[ETH_LEN..], e.peer_tag()).is_err() {
                // Already carries a Shim6 header, or a broken chain: nothing changed.
                let _ = pkt.adj(PAYLOAD_HEADER_LEN);
                return Verdict::Drop(DropReason::Malformed);
            }
        } else {
            // Common case: the payload header goes right after the IPv6 header. Move only the
            // first 8 bytes of the IPv6 header; the addresses are rewritten below anyway.
            // Everything happens in the first 62 bytes (8 new | Ethernet | IPv6), taken as a
            // fixed-size array: constant offsets, no bounds check per field.
            let Some(h) = f
                .get_mut(..PAYLOAD_HEADER_LEN + ETH_LEN + IPV6_LEN)
                .and_then(|h| {
                    <&mut [u8; PAYLOAD_HEADER_LEN + ETH_LEN + IPV6_LEN]>::try_from(h).ok()
                })
            else {
                return Verdict::Drop(DropReason::Malformed);
            };
            let mut first = [0u8; PAYLOAD_HEADER_LEN];
            first.copy_from_slice(&h[l3 + PAYLOAD_HEADER_LEN..l3 + 2 * PAYLOAD_HEADER_LEN]);
            h[l3..l3 + PAYLOAD_HEADER_LEN].copy_from_slice(&first);
            // Payload header (RFC 5533 §5.2): Next Header, Hdr Ext Len 0, P = 1, CT(peer)
            // in 47 bits: one big-endian word.
            let ph = (u64::from(nh) << 56) | (1 << 47) | e.peer_tag().get();
            h[l3 + IPV6_LEN..l3 + IPV6_LEN + PAYLOAD_HEADER_LEN].copy_from_slice(&ph.to_be_bytes());
            h[l3 + ip::NEXT_HEADER] = SHIM6_NEXT_HEADER;
            // total <= mtu - 8 (checked above), so the new Payload Length fits.
            let plen = (total - IPV6_LEN + PAYLOAD_HEADER_LEN) as u16;
            h[l3 + ip::PAYLOAD_LEN.start..l3 + ip::PAYLOAD_LEN.end]
                .copy_from_slice(&plen.to_be_bytes());
            put_addr(h, l3 + ip::SRC.start, e.local_locator());
            put_addr(h, l3 + ip::DST.start, e.peer_locator());
            h[l3 + ip::HOP_LIMIT] = h[l3 + ip::HOP_LIMIT].wrapping_sub(1);
            write_eth(h, nh_mac, prov.mac);
        }
        if chain {
            let f = pkt.as_mut();
            put_addr_at(f, l3 + ip::SRC.start, e.local_locator());
            put_addr_at(f, l3 + ip::DST.start, e.peer_locator());
            f[l3 + ip::HOP_LIMIT] -= 1;
        }
        let out_len = total + PAYLOAD_HEADER_LEN;
        if let Some((local, remote)) = prov.tunnel {
            if pkt.prepend(usize::from(prov.overhead)).is_err() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
            // out_len <= mtu <= u16::MAX (checked above).
            write_tunnel_header(pkt.as_mut(), ETH_LEN, out_len as u16, &local, &remote);
            write_eth(pkt.as_mut(), nh_mac, prov.mac);
        } else if chain {
            write_eth(pkt.as_mut(), nh_mac, prov.mac);
        }
        let port = prov.port;
        self.count_context(e.slot(), out_len as u32, false);
        self.stats.forwarded[Path::Egress.index()] += 1;
        Verdict::Forward(port)
    }

    /// An outbound packet with no table entry: a remote ULID (ULA) waits for a context; any
    /// other destination is a non-SHIM6 peer reached by stateless NATv6.
    pub(super) fn no_context<B: PacketBuf>(&mut self, pkt: &mut B, p: Parsed) -> Verdict {
        let dst = addr_at(pkt.as_ref(), p.l3 + ip::DST.start);
        if is_ula(&dst) {
            return Verdict::Punt(PuntReason::NoContext);
        }
        match self.pick_provider(pkt.as_ref(), p) {
            Some(i) => self.nat_out(pkt, p, i),
            None => Verdict::Drop(DropReason::NoProvider),
        }
    }
}
