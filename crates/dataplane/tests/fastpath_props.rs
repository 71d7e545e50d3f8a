//! Properties: arbitrary or mutated frames never panic the fast path on any port, and what
//! one site's egress emits, the peer site's ingress turns back into the original packet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fastpath_common;

use dataplane::buf::HeapBuf;
use dataplane::fastpath::Verdict;
use dataplane::io::PortId;
use fastpath_common::*;
use proptest::prelude::*;

fn run_all_ports(s: &mut Site, frame: &[u8]) {
    for port in [INSIDE, PROV_A, PROV_B, PortId(7)] {
        let (v, out) = s.run(port, frame);
        if let Verdict::Punt(_) | Verdict::Drop(_) = v {
            // Punted and dropped frames are left exactly as received.
            assert_eq!(out, frame);
        }
    }
}

fn valid_frames() -> Vec<Vec<u8>> {
    let u = udp(peer_ulid(), host_ulid(), 1, 2, b"payload!");
    vec![
        inside_udp(host_ulid(), peer_ulid(), 64, b"egress"),
        inside_udp(host_ulid(), internet_host(), 64, b"nat"),
        cat(&[
            &eth(PROV_A_MAC, SENDER_MAC),
            &ipv6(u.len() + 16, 0, 60, peer_loc(), host_loc_a()),
            &hbh(140),
            &shim_payload(17, LOCAL_TAG),
            &u,
        ]),
        cat(&[
            &eth(PROV_A_MAC, SENDER_MAC),
            &ipv6(u.len() + 8, 140, 60, peer_loc(), host_loc_a()),
            &shim_payload(17, LOCAL_TAG),
            &u,
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut s = Site::new();
        s.add_context();
        run_all_ports(&mut s, &bytes);
        // The same bytes behind a valid Ethernet + IPv6 start.
        let mut f = eth(INSIDE_MAC, HOST_MAC);
        f.push(0x60);
        f.extend_from_slice(&bytes);
        run_all_ports(&mut s, &f);
        let mut t = Site::tunnelled();
        t.add_context();
        run_all_ports(&mut t, &f);
    }

    #[test]
    fn mutated_frames_never_panic(which in 0usize..4, flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6), cut in 0usize..8) {
        let mut s = Site::new();
        s.add_context();
        let mut t = Site::tunnelled();
        t.add_context();
        let mut f = valid_frames()[which].clone();
        for (at, v) in flips {
            // Keep the EtherType most of the time so mutations reach the IPv6 logic.
            let i = 14 + at % (f.len() - 14);
            f[i] = v;
        }
        f.truncate(f.len() - cut.min(f.len()));
        run_all_ports(&mut s, &f);
        run_all_ports(&mut t, &f);
    }

    /// Site 1's egress is site 2's ingress (its provider prefix and context mirrored): the
    /// host on site 2 gets the packet host 1 sent, hop limit two less.
    #[test]
    fn egress_then_ingress_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..600), hl in 3u8..=255, with_hbh: bool) {
        let mut s1 = Site::new();
        s1.add_context();
        let u = udp(host_ulid(), peer_ulid(), 4000, 5000, &payload);
        let frame = if with_hbh {
            cat(&[&eth(INSIDE_MAC, HOST_MAC), &ipv6(u.len() + 8, 0, hl, host_ulid(), peer_ulid()), &hbh(17), &u])
        } else {
            cat(&[&eth(INSIDE_MAC, HOST_MAC), &ipv6(u.len(), 17, hl, host_ulid(), peer_ulid()), &u])
        };
        let (v, wire_frame) = s1.run(INSIDE, &frame);
        prop_assert_eq!(v, Verdict::Forward(PROV_A));

        // Site 2 is the peer: its ULID prefix is the peer's, provider A's prefix holds the peer
        // locator, and its context has the tags the other way round.
        let mut cfg = dataplane::config::DataplaneConfig::example();
        cfg.ulid_prefix = dataplane::config::Prefix64::of(peer_ulid());
        cfg.inside.global = a("fc00:99:88:77::1");
        cfg.providers[0].prefix = dataplane::config::Prefix64::of(peer_loc());
        let mut s2 = Site::with_config(cfg);
        s2.nbr.insert(INSIDE, peer_ulid(), dataplane::config::MacAddr(HOST_MAC)).unwrap();
        s2.table.insert(table::NewEntry {
            local_tag: tag(PEER_TAG),
            peer_tag: tag(LOCAL_TAG),
            local_ulid: wire::Ulid(peer_ulid()),
            peer_ulid: wire::Ulid(host_ulid()),
            pair: wire::LocatorPair { local: wire::Locator(peer_loc()), peer: wire::Locator(host_loc_a()) },
            tx_provider: 1,
            flags: table::flags::ESTABLISHED,
        }).unwrap();
        let mut buf = [HeapBuf::from_slice(&wire_frame)];
        let mut vs = [Verdict::Forward(PortId(99))];
        s2.fp.process_burst(PROV_A, &mut buf, &mut vs);
        prop_assert_eq!(vs[0], Verdict::Forward(INSIDE));
        let got = buf[0].as_ref();
        prop_assert_eq!(&got[14..], &{
            let mut want = frame[14..].to_vec();
            want[7] = hl - 2;
            want
        }[..]);
        prop_assert!(l4_checksum_ok(host_ulid(), peer_ulid(), 17, &got[got.len() - u.len()..]));
    }
}
