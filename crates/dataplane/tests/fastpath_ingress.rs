//! Provider → inside with a Shim6 header: ULID restore (direct and through our tunnel end),
//! extension-header chains, unknown tags, control messages and the hygiene checks. Expected
//! frames are written field by field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;

use dataplane::config::DataplaneConfig;
use dataplane::fastpath::{DropReason, Path, PuntReason, Verdict};
use fastpath_common::*;

const PAYLOAD: &[u8] = b"reply from the remote site";

/// UDP as the peer's ULP built it: checksummed over the ULIDs.
fn peer_udp() -> Vec<u8> {
    udp(peer_ulid(), host_ulid(), 7777, 5353, PAYLOAD)
}

/// What arrives from provider A: locators, payload header with our tag CT(local).
fn from_peer(hl: u8) -> Vec<u8> {
    from_peer_with(hl, PAYLOAD)
}

fn to_host(hl: u8) -> Vec<u8> {
    to_host_with(hl, PAYLOAD)
}

#[test]
fn ingress_restores_the_ulids() {
    let mut s = Site::new();
    s.add_context();
    let (v, out) = s.run(PROV_A, &from_peer(60));
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_frame(&out, &to_host(59));
    assert!(l4_checksum_ok(peer_ulid(), host_ulid(), 17, &out[54..]));
    assert_eq!(s.fp.counters().forwarded[Path::Ingress.index()], 1);
    let e = s.table.get(tag(LOCAL_TAG)).unwrap();
    let act = s.table.activity(e.slot).unwrap();
    assert_eq!(
        (act.rx_pkts, act.rx_bytes, act.tx_pkts),
        (1, (out.len() - 14) as u64, 0)
    );
    // The peer may use our other locator (REAP): still ours, still accepted.
    let mut other = from_peer(60);
    other[14 + 24..14 + 40].copy_from_slice(&host_loc_b().octets());
    let (v, out) = s.run(PROV_B, &other);
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_frame(&out, &to_host(59));
}

#[test]
fn ingress_through_our_tunnel_end() {
    let mut s = Site::tunnelled();
    s.add_context();
    let inner = &from_peer(60)[14..];
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(inner.len(), 41, 50, tunnel_remote(), tunnel_local()),
        inner,
    ]);
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_frame(&out, &to_host(59));
}

#[test]
fn ingress_with_hop_by_hop_before_shim6() {
    let mut s = Site::new();
    s.add_context();
    let u = peer_udp();
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len() + 16, 0, 60, peer_loc(), host_loc_a()),
        &hbh(140),
        &shim_payload(17, LOCAL_TAG),
        &u,
    ]);
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(v, Verdict::Forward(INSIDE));
    let want = cat(&[
        &eth(HOST_MAC, INSIDE_MAC),
        &ipv6(u.len() + 8, 0, 59, peer_ulid(), host_ulid()),
        &hbh(17),
        &u,
    ]);
    assert_frame(&out, &want);
}

#[test]
fn unknown_tag_is_punted_for_r1bis() {
    let mut s = Site::new();
    s.add_context();
    let mut frame = from_peer(60);
    frame[54..62].copy_from_slice(&shim_payload(17, 0x7fff_0000_0001));
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(
        v,
        Verdict::Punt(PuntReason::UnknownTag(tag(0x7fff_0000_0001)))
    );
    assert_frame(&out, &frame);
    // A context still in its handshake is not used either (the slow path decides).
    let mut t = Site::new();
    t.add_context_with(0, host_loc_a(), 1);
    assert_eq!(
        t.run(PROV_A, &from_peer(60)).0,
        Verdict::Punt(PuntReason::UnknownTag(tag(LOCAL_TAG)))
    );
}

#[test]
fn control_messages_are_punted() {
    let mut s = Site::new();
    s.add_context();
    // spec/shim6.md §18: I1, P = 0.
    let i1: [u8; 16] = [
        0x3b, 0x01, 0x01, 0x00, 0x5b, 0x0e, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xa1, 0xb2, 0xc3,
        0xd4,
    ];
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(16, 140, 64, peer_loc(), host_loc_a()),
        &i1,
    ]);
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::Control));
    assert_frame(&out, &frame);
    // Keepalive behind a Hop-by-Hop header, with hop limit 1: still control, still ours.
    let ka: [u8; 16] = [
        0x3b, 0x01, 0x42, 0x00, 0x7f, 0x95, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0, 0, 0, 0,
    ];
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(24, 0, 1, peer_loc(), host_loc_a()),
        &hbh(140),
        &ka,
    ]);
    assert_eq!(s.run(PROV_A, &frame).0, Verdict::Punt(PuntReason::Control));
    assert_eq!(s.fp.counters().punted[PuntReason::Control.index()], 2);
}

#[test]
fn hop_limit_one_is_punted() {
    let mut s = Site::new();
    s.add_context();
    let frame = from_peer(1);
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(v, Verdict::Punt(PuntReason::HopLimit));
    assert_frame(&out, &frame);
}

#[test]
fn malformed_shim6_headers_are_dropped() {
    let mut s = Site::new();
    s.add_context();
    // A payload header must be 8 bytes: Hdr Ext Len 1 is malformed.
    let mut frame = from_peer(60);
    frame[55] = 1;
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // Payload Length too short to hold the 8-byte header.
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(4, 140, 60, peer_loc(), host_loc_a()),
        &shim_payload(17, LOCAL_TAG)[..4],
    ]);
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // A tunnel packet whose inner header claims more than the outer carries.
    let mut t = Site::tunnelled();
    t.add_context();
    let inner = &from_peer(60)[14..];
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(inner.len() - 1, 41, 50, tunnel_remote(), tunnel_local()),
        &inner[..inner.len() - 1],
    ]);
    assert_eq!(
        t.run(PROV_A, &frame).0,
        Verdict::Drop(DropReason::Malformed)
    );
}

#[test]
fn destination_must_be_the_hosts_locator() {
    let mut s = Site::new();
    s.add_context();
    // Source is another locator of the peer than the current pair's (REAP: each side picks
    // its own pair): demultiplexed by tag alone (RFC 5533 §12.2), accepted.
    let mut frame = from_peer(60);
    frame[14 + 8..14 + 24].copy_from_slice(&a("2001:db8:c:6::2002").octets());
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_frame(&out, &to_host(59));
    // Destination is in our prefix but another host's interface id.
    let mut frame = from_peer(60);
    frame[14 + 39] ^= 1;
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Punt(PuntReason::LocatorMismatch)
    );
}

#[test]
fn unknown_host_mac_is_punted() {
    let mut s = Site::new();
    s.add_context();
    assert!(s.nbr.remove(INSIDE, host_ulid()));
    assert_eq!(
        s.run(PROV_A, &from_peer(60)).0,
        Verdict::Punt(PuntReason::NoNextHop)
    );
}

#[test]
fn inside_mtu_is_checked() {
    let mut cfg = DataplaneConfig::example();
    cfg.inside.mtu = 1280;
    let mut s = Site::with_config(cfg);
    s.add_context();
    let big = vec![1u8; 1281 - 40 - 8];
    let u = udp(peer_ulid(), host_ulid(), 7777, 5353, &big);
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len() + 8, 140, 60, peer_loc(), host_loc_a()),
        &shim_payload(17, LOCAL_TAG),
        &u,
    ]);
    // The peer sends packets 8 bytes larger than what reaches the host.
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Punt(PuntReason::TooBig { mtu: 1288 })
    );
}

#[test]
fn outside_punts_and_drops() {
    let mut s = Site::new();
    // Router Advertisement to all-nodes.
    let ra = icmpv6(
        a("fe80::a"),
        a("ff02::1"),
        134,
        0,
        &[64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    let frame = cat(&[
        &eth([0x33, 0x33, 0, 0, 0, 1], ROUTER_A_MAC),
        &ipv6(ra.len(), 58, 255, a("fe80::a"), a("ff02::1")),
        &ra,
    ]);
    assert_eq!(s.run(PROV_A, &frame).0, Verdict::Punt(PuntReason::Neighbor));
    // Not for any of our prefixes.
    let u = udp(internet_host(), a("2001:db8:77::1"), 1, 2, b"x");
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len(), 17, 60, internet_host(), a("2001:db8:77::1")),
        &u,
    ]);
    assert_eq!(s.run(PROV_A, &frame).0, Verdict::Drop(DropReason::NotOurs));
    // A spoofed ULID source from outside.
    let u = udp(a("fc00:1:2:3::66"), host_loc_a(), 1, 2, b"x");
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len(), 17, 60, a("fc00:1:2:3::66"), host_loc_a()),
        &u,
    ]);
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Drop(DropReason::BadSource)
    );
    // The proxy's own inside address through its NATv6 locator.
    let u = udp(internet_host(), a("2001:db8:a:1::1"), 1, 2, b"x");
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(u.len(), 17, 60, internet_host(), a("2001:db8:a:1::1")),
        &u,
    ]);
    assert_eq!(s.run(PROV_A, &frame).0, Verdict::Punt(PuntReason::ForUs));
}

#[test]
fn unicast_neighbor_discovery_is_punted() {
    let mut s = Site::new();
    s.add_context();
    // A router's NUD probe (Neighbor Solicitation) sent unicast to a host locator, and the
    // host's Neighbor Advertisement shape to one: ND whatever the destination, never NATv6.
    for (ty, target) in [
        (135u8, host_loc_a()),
        (136, host_loc_a()),
        (137, host_loc_b()),
    ] {
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&target.octets());
        let nd = icmpv6(a("2001:db8:a:1::fe"), target, ty, 0, &body);
        let frame = cat(&[
            &eth(PROV_A_MAC, ROUTER_A_MAC),
            &ipv6(nd.len(), 58, 255, a("2001:db8:a:1::fe"), target),
            &nd,
        ]);
        assert_eq!(
            s.run(PROV_A, &frame).0,
            Verdict::Punt(PuntReason::Neighbor),
            "ND type {ty}"
        );
    }
    // Other ICMPv6 to the same locator is still NATv6'd in (echo request).
    let echo = icmpv6(internet_host(), host_loc_a(), 128, 0, &[0, 1, 0, 1]);
    let frame = cat(&[
        &eth(PROV_A_MAC, SENDER_MAC),
        &ipv6(echo.len(), 58, 60, internet_host(), host_loc_a()),
        &echo,
    ]);
    assert_eq!(s.run(PROV_A, &frame).0, Verdict::Forward(INSIDE));
}
