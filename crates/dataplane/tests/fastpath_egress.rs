//! Inside → provider: SHIM6 egress rewrite (direct and tunnel exits), and every punt or drop
//! an inside packet can meet. Expected frames are written field by field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;

use dataplane::config::MacAddr;
use dataplane::fastpath::{DropReason, Path, PuntReason, Verdict};
use fastpath_common::*;
use table::flags;

const PAYLOAD: &[u8] = b"hello from a legacy host";

/// The translated packet: locators, payload header with CT(peer) after the IPv6 header,
/// hop limit - 1, same UDP bytes (checksum untouched: it covers the ULIDs).
fn expected_inner(hl_in: u8) -> Vec<u8> {
    let u = udp(host_ulid(), peer_ulid(), 5353, 7777, PAYLOAD);
    cat(&[
        &ipv6(u.len() + 8, 140, hl_in - 1, host_loc_a(), peer_loc()),
        &shim_payload(17, PEER_TAG),
        &u,
    ])
}

#[test]
fn egress_rewrite_direct_exit() {
    let mut s = Site::new();
    s.add_context();
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    let want = cat(&[&eth(ROUTER_A_MAC, PROV_A_MAC), &expected_inner(64)]);
    assert_frame(&out, &want);
    // The ULP checksum still verifies over the ULIDs, which the peer restores.
    assert!(l4_checksum_ok(
        host_ulid(),
        peer_ulid(),
        17,
        &out[14 + 48..]
    ));
    assert_eq!(s.fp.counters().forwarded[Path::Egress.index()], 1);
    // Per-context tx counter on the table.
    let e = s.table.get(tag(LOCAL_TAG)).unwrap();
    let act = s.table.activity(e.slot).unwrap();
    assert_eq!(
        (act.tx_pkts, act.tx_bytes, act.rx_pkts),
        (1, (out.len() - 14) as u64, 0)
    );
}

#[test]
fn egress_rewrite_tunnel_exit() {
    let mut s = Site::tunnelled();
    s.add_context();
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    let inner = expected_inner(64);
    // Outer header (RFC 2473): traffic class and flow label copied, hop limit 64, NH 41.
    let outer = ipv6(inner.len(), 41, 64, tunnel_local(), tunnel_remote());
    let want = cat(&[&eth(ROUTER_A_MAC, PROV_A_MAC), &outer, &inner]);
    assert_frame(&out, &want);
}

#[test]
fn egress_inserts_after_hop_by_hop() {
    let mut s = Site::new();
    s.add_context();
    let u = udp(host_ulid(), peer_ulid(), 5353, 7777, PAYLOAD);
    let frame = cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(u.len() + 8, 0, 10, host_ulid(), peer_ulid()),
        &hbh(17),
        &u,
    ]);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    // RFC 5533 §4.6: the payload header goes after Hop-by-Hop, which now names it.
    let want = cat(&[
        &eth(ROUTER_A_MAC, PROV_A_MAC),
        &ipv6(u.len() + 16, 0, 9, host_loc_a(), peer_loc()),
        &hbh(140),
        &shim_payload(17, PEER_TAG),
        &u,
    ]);
    assert_frame(&out, &want);
}

#[test]
fn egress_strips_ethernet_padding() {
    let mut s = Site::new();
    s.add_context();
    let mut frame = inside_udp(host_ulid(), peer_ulid(), 64, b"");
    frame.extend_from_slice(&[0xee; 6]);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    let u = udp(host_ulid(), peer_ulid(), 5353, 7777, b"");
    let want = cat(&[
        &eth(ROUTER_A_MAC, PROV_A_MAC),
        &ipv6(u.len() + 8, 140, 63, host_loc_a(), peer_loc()),
        &shim_payload(17, PEER_TAG),
        &u,
    ]);
    assert_frame(&out, &want);
}

#[test]
fn egress_follows_the_source_locator_not_a_stale_provider_id() {
    let mut s = Site::new();
    // The entry claims provider 1, but the local locator is under provider B's prefix:
    // ingress filtering at B accepts only B's prefix, so the frame must leave through B.
    s.add_context_with(flags::ESTABLISHED, host_loc_b(), 1);
    let (v, out) = s.run(INSIDE, &inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD));
    assert_eq!(v, Verdict::Forward(PROV_B));
    assert_eq!(&out[..12], &cat(&[&ROUTER_B_MAC, &PROV_B_MAC])[..]);
    assert_eq!(&out[14 + 8..14 + 24], &host_loc_b().octets());
}

#[test]
fn packet_too_big_is_punted_with_the_reduced_mtu() {
    let mut s = Site::new();
    s.add_context();
    // 1500-byte IPv6 packet: fits the 1500 link untranslated, not with 8 more bytes.
    let big = vec![0x5a; 1500 - 40 - 8];
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, &big);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::TooBig { mtu: 1492 }));
    assert_frame(&out, &frame);
    // 8 bytes less fits exactly.
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, &big[8..]);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    assert_eq!(out.len(), 14 + 1500);

    let mut t = Site::tunnelled();
    t.add_context();
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, &big[40..]);
    let (v, _) = t.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::TooBig { mtu: 1452 }));
    assert_eq!(
        t.fp.counters().punted[PuntReason::TooBig { mtu: 0 }.index()],
        1
    );
}

#[test]
fn hop_limit_one_is_punted_untouched() {
    let mut s = Site::new();
    s.add_context();
    let frame = inside_udp(host_ulid(), peer_ulid(), 1, PAYLOAD);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::HopLimit));
    assert_frame(&out, &frame);
    let (v, _) = s.run(INSIDE, &inside_udp(host_ulid(), peer_ulid(), 2, PAYLOAD));
    assert_eq!(v, Verdict::Forward(PROV_A));
}

#[test]
fn remote_ulid_without_context_is_punted() {
    let mut s = Site::new();
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::NoContext));
    assert_frame(&out, &frame);
    // A placeholder entry (handshake under way) is punted the same way.
    s.add_context_with(0, host_loc_a(), 1);
    let (v, _) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::NoContext));
    assert_eq!(s.fp.counters().punted[PuntReason::NoContext.index()], 2);
}

#[test]
fn unresolved_next_hop_is_punted() {
    let mut s = Site::new();
    s.add_context();
    assert!(s.nbr.remove(PROV_A, a("fe80::a")));
    let frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    assert_eq!(
        s.run(INSIDE, &frame).0,
        Verdict::Punt(PuntReason::NoNextHop)
    );
    // Once the slow path resolves it, the cached MAC is refreshed (table version changed).
    s.nbr
        .insert(
            PROV_A,
            a("fe80::a"),
            MacAddr([2, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]),
        )
        .unwrap();
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    assert_eq!(&out[..6], &[2, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]);
}

#[test]
fn traffic_for_the_appliance_is_punted() {
    let mut s = Site::new();
    s.add_context();
    // Neighbor Solicitation to the proxy's solicited-node group.
    let ns_body = cat(&[&[0; 4], &a("fe80::1").octets()]);
    let ns = icmpv6(a("fe80::1234"), a("ff02::1:ff00:1"), 135, 0, &ns_body);
    let frame = cat(&[
        &eth([0x33, 0x33, 0xff, 0, 0, 1], HOST_MAC),
        &ipv6(ns.len(), 58, 255, a("fe80::1234"), a("ff02::1:ff00:1")),
        &ns,
    ]);
    assert_eq!(s.run(INSIDE, &frame).0, Verdict::Punt(PuntReason::Neighbor));
    // DHCPv6 Solicit to All_DHCP_Relay_Agents_and_Servers.
    let frame = inside_udp(a("fe80::1234"), a("ff02::1:2"), 1, b"\x01\x00\x00\x01");
    assert_eq!(s.run(INSIDE, &frame).0, Verdict::Punt(PuntReason::ForUs));
    // DNS to the proxy's global address.
    let frame = inside_udp(host_ulid(), a("fc00:1:2:3::1"), 64, b"dns");
    assert_eq!(s.run(INSIDE, &frame).0, Verdict::Punt(PuntReason::ForUs));
    // Echo to the proxy's link-local address.
    let echo = icmpv6(host_ulid(), a("fe80::1"), 128, 0, &[0, 1, 0, 1]);
    let frame = cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(echo.len(), 58, 64, host_ulid(), a("fe80::1")),
        &echo,
    ]);
    assert_eq!(s.run(INSIDE, &frame).0, Verdict::Punt(PuntReason::ForUs));
}

#[test]
fn impossible_sources_and_broken_frames_are_dropped() {
    let mut s = Site::new();
    s.add_context();
    // A source outside the ULID prefix.
    let frame = inside_udp(a("2001:db8:a:1::99"), peer_ulid(), 64, PAYLOAD);
    assert_eq!(
        s.run(INSIDE, &frame).0,
        Verdict::Drop(DropReason::BadSource)
    );
    // Payload Length past the end of the frame.
    let mut frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    frame.truncate(frame.len() - 1);
    assert_eq!(
        s.run(INSIDE, &frame).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // Not IPv6.
    let mut frame = inside_udp(host_ulid(), peer_ulid(), 64, PAYLOAD);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(s.run(INSIDE, &frame).0, Verdict::Drop(DropReason::NotIpv6));
    // A Hop-by-Hop header that runs past Payload Length.
    let u = udp(host_ulid(), peer_ulid(), 1, 2, b"");
    let mut h = hbh(17);
    h[1] = 3;
    let frame = cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(u.len() + 8, 0, 64, host_ulid(), peer_ulid()),
        &h,
        &u,
    ]);
    assert_eq!(
        s.run(INSIDE, &frame).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // A frame on a port the config does not know.
    assert_eq!(
        s.run(dataplane::io::PortId(9), &frame).0,
        Verdict::Drop(DropReason::UnknownPort)
    );
    let c = s.fp.counters();
    assert_eq!(c.dropped[DropReason::Malformed.index()], 2);
    assert_eq!(c.dropped.iter().sum::<u64>(), 5);
    assert_eq!(c.packets, 5);
}
