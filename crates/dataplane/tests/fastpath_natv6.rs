//! Stateless NATv6 both ways: prefix swap with an RFC 1624 checksum update. Every expected
//! frame carries a checksum computed from scratch over the new pseudo-header (so a byte-exact
//! match proves the incremental update), and each result is verified once more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;

use std::net::Ipv6Addr;

use dataplane::fastpath::{DropReason, Path, PuntReason, Verdict};
use dataplane::io::PortId;
use fastpath_common::*;
use table::flags;

/// A site where only provider A is up, so every NATv6 flow leaves through A.
fn site_a_only() -> Site {
    let s = Site::new();
    assert!(s.status.set_up(2, false));
    s
}

fn outbound(l4: &[u8], proto: u8) -> Vec<u8> {
    cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(l4.len(), proto, 64, host_ulid(), internet_host()),
        l4,
    ])
}

#[test]
fn nat_out_udp() {
    let mut s = site_a_only();
    let frame = outbound(&udp(host_ulid(), internet_host(), 5353, 53, b"query"), 17);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    // Source: provider A's prefix, the host's interface id (= its SHIM6 locator).
    let want_l4 = udp(host_loc_a(), internet_host(), 5353, 53, b"query");
    let want = cat(&[
        &eth(ROUTER_A_MAC, PROV_A_MAC),
        &ipv6(want_l4.len(), 17, 63, host_loc_a(), internet_host()),
        &want_l4,
    ]);
    assert_frame(&out, &want);
    assert!(l4_checksum_ok(
        host_loc_a(),
        internet_host(),
        17,
        &out[54..]
    ));
    assert_eq!(s.fp.counters().forwarded[Path::NatOut.index()], 1);
}

#[test]
fn nat_out_tcp_and_icmpv6_echo() {
    let mut s = site_a_only();
    for payload in [&b""[..], b"x", b"odd-length payload!", &[0xff; 200]] {
        let frame = outbound(&tcp(host_ulid(), internet_host(), payload), 6);
        let (v, out) = s.run(INSIDE, &frame);
        assert_eq!(v, Verdict::Forward(PROV_A));
        let want_l4 = tcp(host_loc_a(), internet_host(), payload);
        assert_frame(&out[54..], &want_l4);
        assert!(l4_checksum_ok(host_loc_a(), internet_host(), 6, &out[54..]));
    }
    let echo = icmpv6(
        host_ulid(),
        internet_host(),
        128,
        0,
        &[0x12, 0x34, 0, 1, 0xde, 0xad],
    );
    let (v, out) = s.run(INSIDE, &outbound(&echo, 58));
    assert_eq!(v, Verdict::Forward(PROV_A));
    assert_frame(
        &out[54..],
        &icmpv6(
            host_loc_a(),
            internet_host(),
            128,
            0,
            &[0x12, 0x34, 0, 1, 0xde, 0xad],
        ),
    );
}

#[test]
fn nat_in_udp_and_tcp() {
    let mut s = Site::new();
    let u = udp(internet_host(), host_loc_b(), 53, 5353, b"answer");
    let frame = cat(&[
        &eth(PROV_B_MAC, ROUTER_B_MAC),
        &ipv6(u.len(), 17, 50, internet_host(), host_loc_b()),
        &u,
    ]);
    let (v, out) = s.run(PROV_B, &frame);
    assert_eq!(v, Verdict::Forward(INSIDE));
    let want_l4 = udp(internet_host(), host_ulid(), 53, 5353, b"answer");
    let want = cat(&[
        &eth(HOST_MAC, INSIDE_MAC),
        &ipv6(want_l4.len(), 17, 49, internet_host(), host_ulid()),
        &want_l4,
    ]);
    assert_frame(&out, &want);
    assert!(l4_checksum_ok(internet_host(), host_ulid(), 17, &out[54..]));

    let t = tcp(internet_host(), host_loc_a(), b"segment");
    let frame = cat(&[
        &eth(PROV_A_MAC, ROUTER_A_MAC),
        &ipv6(t.len(), 6, 50, internet_host(), host_loc_a()),
        &t,
    ]);
    let (v, out) = s.run(PROV_A, &frame);
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_frame(&out[54..], &tcp(internet_host(), host_ulid(), b"segment"));
    assert_eq!(s.fp.counters().forwarded[Path::NatIn.index()], 2);
}

#[test]
fn nat_round_trip_restores_the_original() {
    let mut s = site_a_only();
    let l4 = udp(host_ulid(), internet_host(), 1000, 2000, b"round trip");
    let (_, out) = s.run(INSIDE, &outbound(&l4, 17));
    // Reflect it: swap addresses as a server's reply would, same L4 bytes (checksum is
    // symmetric in src/dst).
    let mut reply = out.clone();
    reply[14 + 8..14 + 24].copy_from_slice(&internet_host().octets());
    reply[14 + 24..14 + 40].copy_from_slice(&host_loc_a().octets());
    let (v, back) = s.run(PROV_A, &reply);
    assert_eq!(v, Verdict::Forward(INSIDE));
    assert_eq!(&back[54..], &l4[..]);
    assert_eq!(&back[14 + 24..14 + 40], &host_ulid().octets());
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let mut s = site_a_only();
    let mut l4 = udp(host_ulid(), internet_host(), 9, 9, b"no checksum");
    l4[6] = 0;
    l4[7] = 0;
    let (v, out) = s.run(INSIDE, &outbound(&l4, 17));
    assert_eq!(v, Verdict::Forward(PROV_A));
    assert_eq!(&out[54..], &l4[..]);
}

#[test]
fn nat_out_fragments() {
    let mut s = site_a_only();
    let l4 = udp(host_ulid(), internet_host(), 9, 9, &[7; 64]);
    // First fragment (offset 0, M = 1): the UDP checksum is in it and gets updated.
    let first = cat(&[&[17, 0, 0x00, 0x01, 0xca, 0xfe, 0xba, 0xbe], &l4[..40]]);
    let frame = cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(first.len(), 44, 64, host_ulid(), internet_host()),
        &first,
    ]);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    let want_l4 = udp(host_loc_a(), internet_host(), 9, 9, &[7; 64]);
    assert_frame(&out[62..], &want_l4[..40]);
    // Non-first fragment (offset 5 units = 40 bytes): only the address changes.
    let rest = cat(&[&[17, 0, 0x00, 0x28, 0xca, 0xfe, 0xba, 0xbe], &l4[40..]]);
    let frame = cat(&[
        &eth(INSIDE_MAC, HOST_MAC),
        &ipv6(rest.len(), 44, 64, host_ulid(), internet_host()),
        &rest,
    ]);
    let (v, out) = s.run(INSIDE, &frame);
    assert_eq!(v, Verdict::Forward(PROV_A));
    assert_frame(&out[54..], &rest);
    assert_eq!(&out[14 + 8..14 + 24], &host_loc_a().octets());
}

#[test]
fn nat_out_through_a_tunnel_exit() {
    let mut s = Site::tunnelled();
    assert!(s.status.set_up(2, false));
    let l4 = udp(host_ulid(), internet_host(), 5353, 53, b"q");
    let (v, out) = s.run(INSIDE, &outbound(&l4, 17));
    assert_eq!(v, Verdict::Forward(PROV_A));
    let want_l4 = udp(host_loc_a(), internet_host(), 5353, 53, b"q");
    let inner = cat(&[
        &ipv6(want_l4.len(), 17, 63, host_loc_a(), internet_host()),
        &want_l4,
    ]);
    let want = cat(&[
        &eth(ROUTER_A_MAC, PROV_A_MAC),
        &ipv6(inner.len(), 41, 64, tunnel_local(), tunnel_remote()),
        &inner,
    ]);
    assert_frame(&out, &want);
}

#[test]
fn nat_too_big_and_icmp_errors_are_punted() {
    let mut s = site_a_only();
    let frame = outbound(
        &udp(host_ulid(), internet_host(), 1, 2, &vec![0; 1500 - 48 + 1]),
        17,
    );
    assert_eq!(
        s.run(INSIDE, &frame).0,
        Verdict::Punt(PuntReason::TooBig { mtu: 1500 })
    );
    // Destination Unreachable quoting a packet: the quote needs translating too.
    let err = icmpv6(host_ulid(), internet_host(), 1, 4, &[0; 52]);
    assert_eq!(
        s.run(INSIDE, &outbound(&err, 58)).0,
        Verdict::Punt(PuntReason::IcmpError)
    );
    let err = icmpv6(internet_host(), host_loc_a(), 3, 0, &[0; 52]);
    let frame = cat(&[
        &eth(PROV_A_MAC, ROUTER_A_MAC),
        &ipv6(err.len(), 58, 50, internet_host(), host_loc_a()),
        &err,
    ]);
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Punt(PuntReason::IcmpError)
    );
    // Inbound to a host whose MAC is unknown.
    let u = udp(internet_host(), a("2001:db8:a:1::77"), 1, 2, b"x");
    let frame = cat(&[
        &eth(PROV_A_MAC, ROUTER_A_MAC),
        &ipv6(u.len(), 17, 50, internet_host(), a("2001:db8:a:1::77")),
        &u,
    ]);
    assert_eq!(
        s.run(PROV_A, &frame).0,
        Verdict::Punt(PuntReason::NoNextHop)
    );
    // Hop limit.
    let mut frame = outbound(&udp(host_ulid(), internet_host(), 1, 2, b""), 17);
    frame[14 + 7] = 1;
    assert_eq!(s.run(INSIDE, &frame).0, Verdict::Punt(PuntReason::HopLimit));
}

#[test]
fn providers_going_down_move_flows() {
    let mut s = Site::new();
    let mut per_port = [0u32; 3];
    // Many hosts to one server: the hash spreads them over both providers.
    let mut frames = Vec::new();
    for i in 0..64u16 {
        let src = Ipv6Addr::from(host_ulid().to_bits() + u128::from(i) * 0x1_0001);
        let l4 = udp(src, internet_host(), 1, 2, b"");
        frames.push(cat(&[
            &eth(INSIDE_MAC, HOST_MAC),
            &ipv6(l4.len(), 17, 64, src, internet_host()),
            &l4,
        ]));
    }
    for f in &frames {
        match s.run(INSIDE, f).0 {
            Verdict::Forward(PortId(p)) => per_port[usize::from(p)] += 1,
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(per_port[0], 0);
    assert!(per_port[1] > 8 && per_port[2] > 8, "{per_port:?}");
    // The same flow always takes the same provider.
    let first = s.run(INSIDE, &frames[0]).0;
    assert_eq!(s.run(INSIDE, &frames[0]).0, first);
    // B down: everything through A; both down: dropped and counted.
    s.status.set_up(2, false);
    assert!(frames
        .iter()
        .all(|f| s.run(INSIDE, f).0 == Verdict::Forward(PROV_A)));
    s.status.set_up(1, false);
    assert_eq!(
        s.run(INSIDE, &frames[0]).0,
        Verdict::Drop(DropReason::NoProvider)
    );
    assert!(!s.status.is_up(1) && !s.status.is_up(2));
    s.status.set_up(2, true);
    assert_eq!(s.run(INSIDE, &frames[0]).0, Verdict::Forward(PROV_B));
}

#[test]
fn pinned_natv6_entry_chooses_the_provider() {
    let mut s = Site::new();
    // A TE policy pinned this host ↔ Internet server pair to provider B.
    s.table
        .insert(table::NewEntry {
            local_tag: tag(5),
            peer_tag: tag(5),
            local_ulid: wire::Ulid(host_ulid()),
            peer_ulid: wire::Ulid(internet_host()),
            pair: wire::LocatorPair {
                local: wire::Locator(host_loc_b()),
                peer: wire::Locator(internet_host()),
            },
            tx_provider: 2,
            flags: flags::NATV6,
        })
        .unwrap();
    let l4 = udp(host_ulid(), internet_host(), 1, 2, b"pinned");
    let (v, out) = s.run(INSIDE, &outbound(&l4, 17));
    assert_eq!(v, Verdict::Forward(PROV_B));
    assert_frame(
        &out[54..],
        &udp(host_loc_b(), internet_host(), 1, 2, b"pinned"),
    );
}
