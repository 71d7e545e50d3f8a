use super::*;
use crate::payload::PayloadHeader;
use proptest::prelude::*;

const UDP: u8 = 17;

/// One extension header: its type and its bytes after the Next Header byte.
#[derive(Debug, Clone)]
struct Ext(u8, Vec<u8>);

fn generic(kind: u8, units: u8, fill: u8) -> Ext {
    // (units + 1) * 8 bytes in all; byte 1 is Hdr Ext Len.
    let mut b = vec![fill; (usize::from(units) + 1) * 8 - 1];
    b[0] = units;
    Ext(kind, b)
}

fn fragment(offset: u16, id: u32) -> Ext {
    let mut b = vec![0u8; 7];
    b[1..3].copy_from_slice(&(offset << 3).to_be_bytes());
    b[3..7].copy_from_slice(&id.to_be_bytes());
    Ext(FRAGMENT, b)
}

fn ah(len: u8) -> Ext {
    let mut b = vec![0x5a; (usize::from(len) + 2) * 4 - 1];
    b[0] = len;
    Ext(AH, b)
}

/// IPv6 header 2001:db8:a::1 -> 2001:db8:c::2, then the chain, then `ulp` + `payload`.
fn packet(chain: &[Ext], ulp: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let kinds: Vec<u8> = chain.iter().map(|e| e.0).chain([ulp]).collect();
    for (i, e) in chain.iter().enumerate() {
        body.push(kinds[i + 1]);
        body.extend_from_slice(&e.1);
    }
    body.extend_from_slice(payload);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    p.push(kinds[0]);
    p.push(64);
    p.extend_from_slice(
        &"2001:db8:a::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(
        &"2001:db8:c::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(&body);
    p
}

fn udp64() -> Vec<u8> {
    // 40-byte IPv6 header + 8-byte UDP header + 16 bytes of data = 64 bytes.
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0x00, 0x18, 0xab, 0xcd];
    udp.extend(0u8..16);
    packet(&[], UDP, &udp)
}

fn tag() -> ContextTag {
    ContextTag::new(0x1234_5678_9abc).unwrap()
}

fn insert(pkt: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut buf = vec![0xa5u8; 8];
    buf.extend_from_slice(pkt);
    insert_payload_header(&mut buf, tag())?;
    Ok(buf)
}

#[test]
fn insert_into_plain_udp() {
    let orig = udp64();
    let out = insert(&orig).unwrap();
    assert_eq!(out.len(), 72);
    // Payload Length 24 -> 32, Next Header UDP -> 140.
    assert_eq!(&out[4..8], &[0x00, 0x20, 140, 64]);
    assert_eq!(&out[8..40], &orig[8..40]);
    // shim6.md §4: 11 00 92 34 56 78 9a bc.
    assert_eq!(
        &out[40..48],
        &[0x11, 0x00, 0x92, 0x34, 0x56, 0x78, 0x9a, 0xbc]
    );
    assert_eq!(&out[48..], &orig[40..]);
    assert_eq!(
        find_shim6(&out),
        Ok(Some(ShimLocation {
            offset: 40,
            nh_field: 6
        }))
    );

    let mut back = out.clone();
    assert_eq!(remove_payload_header(&mut back), Ok(tag()));
    assert_eq!(&back[8..], &orig[..]);
}

#[test]
fn insert_point_follows_rfc5533_4_6() {
    // HbH, DestOpts (before Routing), Routing | Fragment, DestOpts (final), UDP.
    let chain = [
        generic(HOP_BY_HOP, 0, 1),
        generic(DEST_OPTS, 1, 2),
        generic(ROUTING, 2, 3),
        fragment(0, 7),
        generic(DEST_OPTS, 0, 4),
    ];
    let p = packet(&chain, UDP, &[9; 8]);
    let routing_end = 40 + 8 + 16 + 24;
    assert_eq!(
        payload_insert_point(&p),
        Ok(ShimLocation {
            offset: routing_end,
            nh_field: 40 + 8 + 16
        })
    );
    let out = insert(&p).unwrap();
    // The Routing header now names Shim6; the payload header names Fragment.
    assert_eq!(out[40 + 8 + 16], 140);
    let hdr = PayloadHeader::new_checked(&out[routing_end..]).unwrap();
    assert_eq!(hdr.next_header(), FRAGMENT);
    assert_eq!(hdr.context_tag(), tag());
    assert_eq!(&out[routing_end + 8..], &p[routing_end..]);

    // A final Destination Options header alone: insert before it.
    let p = packet(&[generic(DEST_OPTS, 0, 4)], UDP, &[]);
    assert_eq!(
        payload_insert_point(&p),
        Ok(ShimLocation {
            offset: 40,
            nh_field: 6
        })
    );
    // A Hop-by-Hop header that is not first is not skipped.
    let p = packet(
        &[generic(ROUTING, 0, 3), generic(HOP_BY_HOP, 0, 1)],
        UDP,
        &[],
    );
    assert_eq!(
        payload_insert_point(&p),
        Ok(ShimLocation {
            offset: 48,
            nh_field: 40
        })
    );
    // AH and ESP come after the shim.
    let p = packet(&[generic(HOP_BY_HOP, 0, 1), ah(4)], 50, &[0; 16]);
    assert_eq!(
        payload_insert_point(&p),
        Ok(ShimLocation {
            offset: 48,
            nh_field: 40
        })
    );
}

#[test]
fn find_walks_the_chain() {
    let ctl = [
        0x3b, 0x01, 0x42, 0x00, 0x7f, 0x95, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0, 0, 0, 0,
    ];
    let p = packet(&[generic(HOP_BY_HOP, 0, 0), ah(1)], 140, &ctl);
    let loc = find_shim6(&p).unwrap().unwrap();
    assert_eq!(
        loc,
        ShimLocation {
            offset: 40 + 8 + 12,
            nh_field: 48
        }
    );
    // A control message is not a payload header.
    let mut c = p.clone();
    assert_eq!(remove_payload_header(&mut c), Err(WireError::NotPayload));
    assert_eq!(c, p, "unchanged on error");
    // Insert refuses a packet that already has a Shim6 header at the insert point.
    let p = packet(&[], 140, &ctl);
    assert_eq!(insert(&p), Err(WireError::Shim6Present));

    assert_eq!(find_shim6(&udp64()), Ok(None));
    assert_eq!(find_shim6(&packet(&[], 59, &[])), Ok(None));
    // ESP: opaque.
    assert_eq!(find_shim6(&packet(&[], 50, &[0; 16])), Ok(None));
    // Behind a first fragment (RFC 8200 §4.5 placement) it is still found...
    let pl = PayloadRepr {
        next_header: UDP,
        tag: tag(),
    }
    .to_bytes();
    let p = packet(&[fragment(0, 1)], 140, &pl);
    assert_eq!(
        find_shim6(&p),
        Ok(Some(ShimLocation {
            offset: 48,
            nh_field: 40
        }))
    );
    // ... but not behind a later fragment, whose bytes are payload.
    let p = packet(&[fragment(3, 1)], 140, &pl);
    assert_eq!(find_shim6(&p), Ok(None));
    let mut c = p.clone();
    assert_eq!(remove_payload_header(&mut c), Err(WireError::NoShim6Header));
}

#[test]
fn malformed_packets() {
    let p = udp64();
    assert_eq!(find_shim6(&p[..39]), Err(WireError::Truncated));
    // Payload Length beyond the buffer.
    assert_eq!(find_shim6(&p[..63]), Err(WireError::Truncated));
    assert_eq!(insert(&p[..63]), Err(WireError::Truncated));
    let mut v4 = p.clone();
    v4[0] = 0x45;
    assert_eq!(find_shim6(&v4), Err(WireError::NotIpv6));
    assert_eq!(payload_insert_point(&v4), Err(WireError::NotIpv6));
    // An extension header that runs past Payload Length.
    let mut p = packet(&[generic(HOP_BY_HOP, 0, 0)], UDP, &[]);
    p[41] = 1;
    assert_eq!(find_shim6(&p), Err(WireError::Truncated));
    assert_eq!(insert(&p), Err(WireError::Truncated));
    // A Shim6 header cut short.
    let p = packet(&[], 140, &[17, 0, 0x80, 0]);
    assert_eq!(find_shim6(&p), Err(WireError::Truncated));
    // Payload header with Hdr Ext Len != 0.
    let mut p = packet(
        &[],
        140,
        &[17, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(remove_payload_header(&mut p), Err(WireError::BadLength));
    // No spare room.
    assert_eq!(
        insert_payload_header(&mut [0u8; 7], tag()),
        Err(WireError::Truncated)
    );
    // Payload Length would overflow.
    let big = packet(&[], UDP, &vec![0u8; 65530]);
    assert_eq!(insert(&big), Err(WireError::PayloadTooLong));
}

#[test]
fn trailing_bytes_after_the_packet_are_left_alone() {
    // An Ethernet minimum-size pad after the IPv6 packet.
    let mut p = udp64();
    p.extend_from_slice(&[0xee; 6]);
    let out = insert(&p).unwrap();
    assert_eq!(&out[out.len() - 6..], &[0xee; 6]);
    let mut back = out;
    remove_payload_header(&mut back).unwrap();
    assert_eq!(&back[8..], &p[..]);
}

fn ext() -> impl Strategy<Value = Ext> {
    prop_oneof![
        (
            prop_oneof![
                Just(HOP_BY_HOP),
                Just(ROUTING),
                Just(DEST_OPTS),
                Just(MOBILITY)
            ],
            0u8..4,
            any::<u8>()
        )
            .prop_map(|(k, u, f)| generic(k, u, f)),
        (any::<u16>(), any::<u32>()).prop_map(|(o, id)| fragment(o & 0x1fff, id)),
        (1u8..6).prop_map(ah),
    ]
}

proptest! {
    #[test]
    fn insert_remove_roundtrip(
        chain in proptest::collection::vec(ext(), 0..6),
        ulp in prop_oneof![Just(6u8), Just(17), Just(58), Just(59), Just(50)],
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        t in 0u64..(1 << 47),
    ) {
        let p = packet(&chain, ulp, &payload);
        let tag = ContextTag::new(t).unwrap();
        let point = payload_insert_point(&p).unwrap();
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(&p);
        insert_payload_header(&mut buf, tag).unwrap();
        // Only the 8 new bytes differ; everything before the point moved forward.
        prop_assert_eq!(find_shim6(&buf), Ok(Some(point)));
        prop_assert_eq!(&buf[point.offset + 8..], &p[point.offset..]);
        prop_assert_eq!(
            PayloadRepr::parse_bytes(&buf[point.offset..]),
            Ok(PayloadRepr { next_header: p[point.nh_field], tag })
        );
        prop_assert_eq!(remove_payload_header(&mut buf), Ok(tag));
        prop_assert_eq!(&buf[8..], &p[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200), t in 0u64..(1 << 47)) {
        // Make the IPv6 header plausible half of the time so the walk goes deep.
        if bytes.len() >= 48 && t & 1 == 0 {
            bytes[0] = 0x60;
            let plen = u16::try_from(bytes.len() - 48).unwrap();
            bytes[12..14].copy_from_slice(&plen.to_be_bytes());
            bytes[8 + 4..8 + 6].copy_from_slice(&plen.to_be_bytes());
        }
        let _ = find_shim6(&bytes);
        let _ = payload_insert_point(&bytes);
        let orig = bytes.clone();
        if insert_payload_header(&mut bytes, ContextTag::from_wire(t)).is_err() {
            prop_assert_eq!(&bytes, &orig, "insert changed the buffer on error");
        }
        let before = bytes.clone();
        if remove_payload_header(&mut bytes).is_err() {
            prop_assert_eq!(&bytes, &before, "remove changed the buffer on error");
        }
    }
}
