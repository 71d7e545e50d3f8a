//! The DNS ALG on the slow path: upstream through a provider, answers into the peer cache.

use super::*;

fn dns_query(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, DnsType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(qname).unwrap(), qtype));
    m.to_vec().unwrap()
}

fn dns_reply(query: &[u8], answers: Vec<Record>) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::response(q.id, OpCode::Query);
    r.metadata.authoritative = true;
    r.add_queries(q.queries.iter().cloned());
    r.answers = answers;
    r.to_vec().unwrap()
}

#[test]
fn dns_answer_with_a_ulid_record_caches_locators_and_the_first_packet_starts_an_i1() {
    let mut fx = fixture("dns");
    resolve_routers(&mut fx);
    let peer = a("fc00:99:88:77::2");
    let locs = [a("2001:db8:c:5::2"), a("2001:db8:d:5::2")];
    let host = sa(fx.host.0, 40_000);
    let q = dns_query(0x1234, "peer.example.", RecordType::AAAA);
    let f = udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        HOST_MAC,
        host,
        sa(a("fc00:1:2:3::1"), 53),
        &q,
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(2));
    let out = injected(&fx.link);
    assert_eq!(
        out.len(),
        2,
        "AAAA and ULID-record questions upstream: {out:02x?}"
    );
    let mut replies = Vec::new();
    for (port, f) in &out {
        assert_eq!(*port, PortId(1), "through the first provider");
        let (mac, src, dst, payload) = parse_udp(f);
        assert_eq!(mac, ROUTER_A, "to its exit router");
        assert_eq!(
            src,
            sa(a("2001:db8:a:1::1"), UPSTREAM_PORT),
            "from the provider's own address"
        );
        assert_eq!(dst, sa(a("2001:db8:53::53"), 53));
        let m = Message::from_vec(&payload).unwrap();
        let name = Name::from_ascii("peer.example.").unwrap();
        let answers = match m.queries[0].query_type() {
            RecordType::AAAA => locs
                .iter()
                .map(|l| Record::from_rdata(name.clone(), 300, RData::AAAA(AAAA(*l))))
                .collect(),
            RecordType::Unknown(65280) => vec![Record::from_rdata(
                name.clone(),
                300,
                RData::Unknown {
                    code: RecordType::Unknown(65280),
                    rdata: NULL::with(peer.octets().to_vec()),
                },
            )],
            other => panic!("unexpected question {other}"),
        };
        replies.push(udp_frame(
            [0x02, 0, 0, 0, 1, 0x01],
            ROUTER_A,
            dst,
            src,
            &dns_reply(&payload, answers),
        ));
    }
    for r in &replies {
        fx.link.punt(PuntReason::ForUs, PortId(1), r).unwrap();
    }
    fx.sp.poll(fx.t0 + Duration::from_millis(3));
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "the host's answer: {out:02x?}");
    let (port, f) = &out[0];
    assert_eq!(*port, PortId(0));
    let (mac, src, dst, payload) = parse_udp(f);
    assert_eq!(
        (mac, src, dst),
        (HOST_MAC, sa(a("fc00:1:2:3::1"), 53), host)
    );
    let m = Message::from_vec(&payload).unwrap();
    assert_eq!(m.id, 0x1234);
    let got: Vec<_> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::AAAA(x) => Some(x.0),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![peer], "the ULID instead of the locators");
    assert_eq!(
        fx.sp.peers_mut().get(fx.t0, Ulid(peer)),
        Some(&[Locator(locs[0]), Locator(locs[1])][..])
    );
    assert_eq!(fx.sp.stats().services_peers, 1);
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("peer {peer} learnt from DNS"))),
        "{lines:?}"
    );

    // The host's first packet to the ULID: an I1 at once, no resolver involved.
    let mut udp = vec![0x11, 0x11, 0x22, 0x22, 0, 12, 0, 0, 1, 2, 3, 4];
    udp[6..8].copy_from_slice(&[0, 0]);
    let f = frame(
        ([0x02, 0, 0, 0, 0, 0x01], HOST_MAC),
        fx.host.0,
        peer,
        17,
        64,
        udp,
        6,
    );
    fx.link.punt(PuntReason::NoContext, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(4));
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (port, i1) = &out[0];
    assert_eq!(*port, PortId(1));
    assert_eq!(&i1[0..6], &ROUTER_A);
    assert_eq!(i1[20], 140, "Shim6");
    assert_eq!(
        &i1[38..54],
        &locs[0].octets(),
        "to the first cached locator"
    );
    assert_eq!(i1[56] & 0x7f, 1, "an I1");
    let s = fx.sp.stats();
    assert_eq!((s.connects, s.resolving, s.no_locators), (1, 0, 0));
}

#[test]
fn unknown_peer_ulid_is_resolved_by_reverse_dns_and_its_waiting_packet_starts_an_i1() {
    let mut fx = fixture("reverse");
    resolve_routers(&mut fx);
    let peer = a("fc00:99:88:77::9");
    let udp = vec![0x11, 0x11, 0x22, 0x22, 0, 12, 0, 0, 1, 2, 3, 4];
    let f = frame(
        ([0x02, 0, 0, 0, 0, 0x01], HOST_MAC),
        fx.host.0,
        peer,
        17,
        64,
        udp,
        6,
    );
    fx.link.punt(PuntReason::NoContext, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(2));
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (_, _, _, payload) = parse_udp(&out[0].1);
    let m = Message::from_vec(&payload).unwrap();
    assert_eq!(m.queries[0].query_type(), RecordType::PTR);
    assert_eq!(
        m.queries[0].name().to_ascii(),
        dns_alg::reverse_name(peer).to_ascii()
    );
    let s = fx.sp.stats();
    assert_eq!((s.resolving, s.pending.queued), (1, 1));

    // PTR → peer9.example.; the ALG asks its AAAA and ULID record; with them the waiting
    // packet's handshake starts at once.
    let target = Name::from_ascii("peer9.example.").unwrap();
    let ptr = Record::from_rdata(
        dns_alg::reverse_name(peer),
        300,
        RData::PTR(dns_alg::hickory_proto::rr::rdata::PTR(target.clone())),
    );
    let answer_upstream = |fx: &mut Fixture, f: &[u8], answers: Vec<Record>, at: u64| {
        let (_, src, dst, payload) = parse_udp(f);
        let r = udp_frame(
            [0x02, 0, 0, 0, 1, 0x01],
            ROUTER_A,
            dst,
            src,
            &dns_reply(&payload, answers),
        );
        fx.link.punt(PuntReason::ForUs, PortId(1), &r).unwrap();
        fx.sp.poll(fx.t0 + Duration::from_millis(at));
    };
    answer_upstream(&mut fx, &out[0].1, vec![ptr], 3);
    let out = injected(&fx.link);
    assert_eq!(
        out.len(),
        2,
        "AAAA and ULID record of the PTR target: {out:02x?}"
    );
    for (i, (_, f)) in out.iter().enumerate() {
        let (_, _, _, payload) = parse_udp(f);
        let m = Message::from_vec(&payload).unwrap();
        assert_eq!(m.queries[0].name(), &target);
        let answers = match m.queries[0].query_type() {
            RecordType::AAAA => vec![Record::from_rdata(
                target.clone(),
                300,
                RData::AAAA(AAAA(a("2001:db8:c:5::9"))),
            )],
            _ => vec![Record::from_rdata(
                target.clone(),
                300,
                RData::Unknown {
                    code: RecordType::Unknown(65280),
                    rdata: NULL::with(peer.octets().to_vec()),
                },
            )],
        };
        answer_upstream(&mut fx, f, answers, 4 + i as u64);
    }
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (port, i1) = &out[0];
    assert_eq!(*port, PortId(1));
    assert_eq!(i1[20], 140, "Shim6");
    assert_eq!(&i1[38..54], &a("2001:db8:c:5::9").octets());
    assert_eq!(i1[56] & 0x7f, 1, "an I1");
    assert_eq!(fx.sp.stats().connects, 1);

    // A DNS query from outside (to a provider address) is not served (no open resolver): it
    // gets a port unreachable; a bad checksum is dropped silently.
    let q = dns_query(1, "x.example.", RecordType::AAAA);
    let outside = udp_frame(
        [0x02, 0, 0, 0, 1, 0x01],
        ROUTER_A,
        sa(a("2001:db8:99::1"), 4000),
        sa(a("2001:db8:a:1::1"), 53),
        &q,
    );
    let mut bad = udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        HOST_MAC,
        sa(fx.host.0, 4000),
        sa(a("fc00:1:2:3::1"), 53),
        &q,
    );
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    fx.link
        .punt(PuntReason::ForUs, PortId(1), &outside)
        .unwrap();
    fx.link.punt(PuntReason::ForUs, PortId(0), &bad).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(3));
    let s = fx.sp.stats();
    assert_eq!((s.udp_unhandled, s.udp_bad_checksum), (1, 1));
    assert_eq!(s.port_unreachable_sent, 1);
    let out = injected(&fx.link);
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (port, f) = &out[0];
    assert_eq!((*port, &f[..6]), (PortId(1), &ROUTER_A[..]));
    assert_eq!(f[20], 58, "ICMPv6");
    assert_eq!(
        &f[22..38],
        &a("2001:db8:a:1::1").octets(),
        "from the address asked"
    );
    assert_eq!(&f[38..54], &a("2001:db8:99::1").octets());
    assert_eq!(
        &f[54..56],
        &[1, 4],
        "destination unreachable, port unreachable"
    );
    assert_eq!(&f[62..], &outside[14..], "quoting the query");

    // Multicast nobody serves (mDNS) is counted, never answered with an error.
    let mdns = udp_frame(
        [0x33, 0x33, 0, 0, 0, 0xfb],
        HOST_MAC,
        sa(a("fe80::11:22ff:fe33:4455"), 5353),
        sa(a("ff02::fb"), 5353),
        &q,
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &mdns).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(4));
    let s = fx.sp.stats();
    assert_eq!(
        (s.udp_unhandled, s.port_unreachable_sent, s.icmp_suppressed),
        (2, 1, 0)
    );
    assert!(injected(&fx.link).is_empty());
}

#[test]
fn upstream_retries_leave_a_provider_that_never_answers() {
    let mut fx = fixture("silent");
    resolve_routers(&mut fx);
    let host = sa(fx.host.0, 40_001);
    let q = dns_query(0x4242, "peer.example.", RecordType::AAAA);
    let f = udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        HOST_MAC,
        host,
        sa(a("fc00:1:2:3::1"), 53),
        &q,
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    // Provider 1 is cut beyond its link: nothing comes back. Each upstream timeout (2 s)
    // retries both questions.
    let mut sent = Vec::new();
    for step in 0..4u64 {
        fx.sp.poll(fx.t0 + Duration::from_millis(2 + step * 2_100));
        sent.extend(injected(&fx.link).into_iter().filter(|(_, f)| f[20] == 17));
    }
    let via: Vec<(PortId, SocketAddrV6)> = sent
        .iter()
        .map(|(p, f)| {
            let (mac, src, _, _) = parse_udp(f);
            let router = if *p == PortId(1) { ROUTER_A } else { ROUTER_B };
            assert_eq!(mac, router, "to the provider's own exit router");
            (*p, src)
        })
        .collect();
    let p1 = sa(a("2001:db8:a:1::1"), UPSTREAM_PORT);
    let p2 = sa(a("2001:db8:b:1::1"), UPSTREAM_PORT);
    assert_eq!(
        via[..4],
        [(PortId(1), p1); 4],
        "four unanswered datagrams through provider 1 first: {via:?}"
    );
    assert!(via.len() > 4, "{via:?}");
    assert!(
        via[4..].iter().all(|v| *v == (PortId(2), p2)),
        "then provider 2, from its own address: {via:?}"
    );

    // An answer through provider 2 reaches the host.
    let (_, f) = sent.last().unwrap();
    let (_, src, dst, payload) = parse_udp(f);
    let m = Message::from_vec(&payload).unwrap();
    let answers = if m.queries[0].query_type() == RecordType::AAAA {
        vec![Record::from_rdata(
            Name::from_ascii("peer.example.").unwrap(),
            60,
            RData::AAAA(AAAA(a("2001:db8:c:5::7"))),
        )]
    } else {
        vec![]
    };
    let r = udp_frame(
        [0x02, 0, 0, 0, 2, 0x01],
        ROUTER_B,
        dst,
        src,
        &dns_reply(&payload, answers),
    );
    fx.link.punt(PuntReason::ForUs, PortId(2), &r).unwrap();
    fx.sp.poll(fx.t0 + Duration::from_millis(2 + 3 * 2_100 + 1));
    let s = fx.sp.stats();
    assert_eq!(s.udp_in, 2, "the query and the upstream answer");
    assert_eq!(s.udp_no_route, 0);
}

#[test]
fn the_same_peer_answer_again_makes_no_second_timeline_line() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let timeline: Timeline = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let alg = AlgConfig::new(vec!["[2001:db8:53::53]:53".parse().unwrap()]);
    let mut dns = DnsService::new(alg, a("fc00:1:2:3::1"), UPSTREAM_PORT, 1, timeline).unwrap();
    let now = Instant::now();
    let peer = a("fc00:99:88:77::2");
    let name = Name::from_ascii("peer.example.").unwrap();
    let mut outputs = Vec::new();
    for (round, loc) in [
        (1u16, "2001:db8:c:5::2"),
        (2, "2001:db8:c:5::2"),
        (3, "2001:db8:c:5::3"),
    ] {
        let q = dns_query(round, "peer.example.", RecordType::AAAA);
        let d = dataplane::slowpath::DatagramIn {
            src: sa(a("fc00:1:2:3::10"), 40_000),
            dst: sa(a("fc00:1:2:3::1"), 53),
            inside: true,
            payload: &q,
        };
        dns.handle_query(now, &d);
        let ups: Vec<_> = std::iter::from_fn(|| dns.poll_datagram()).collect();
        assert_eq!(ups.len(), 2, "{ups:?}");
        for u in ups {
            assert_eq!(u.src.port(), UPSTREAM_PORT);
            let m = Message::from_vec(&u.payload).unwrap();
            let answers = if m.queries[0].query_type() == RecordType::AAAA {
                vec![Record::from_rdata(
                    name.clone(),
                    60,
                    RData::AAAA(AAAA(a(loc))),
                )]
            } else {
                vec![Record::from_rdata(
                    name.clone(),
                    60,
                    RData::Unknown {
                        code: RecordType::Unknown(65280),
                        rdata: NULL::with(peer.octets().to_vec()),
                    },
                )]
            };
            let r = dns_reply(&u.payload, answers);
            let d = dataplane::slowpath::DatagramIn {
                src: u.dst,
                dst: sa(a("2001:db8:a:1::1"), UPSTREAM_PORT),
                inside: false,
                payload: &r,
            };
            dns.handle_upstream(now, &d);
        }
        let to_host: Vec<_> = std::iter::from_fn(|| dns.poll_datagram()).collect();
        assert_eq!(to_host.len(), 1);
        assert_eq!(to_host[0].src, sa(a("fc00:1:2:3::1"), 53));
        outputs.extend(std::iter::from_fn(|| dns.poll_output()));
    }
    assert_eq!(
        outputs.len(),
        3,
        "every answer goes to the slow path: {outputs:?}"
    );
    let learnt: Vec<_> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("learnt from DNS"))
        .cloned()
        .collect();
    assert_eq!(
        learnt.len(),
        2,
        "a line only when the locators change: {learnt:?}"
    );
    assert!(learnt[1].contains("2001:db8:c:5::3"));
}
