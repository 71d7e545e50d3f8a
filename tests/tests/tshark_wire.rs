//! Writes one packet of every Shim6 control message type and a payload packet to a pcap, has
//! the real tshark dissect it, and checks what tshark reads reliably (spec `shim6.md` §17):
//! the message type, a Good checksum, and the payload header's P bit and context tag.

// Test helpers outside #[test] fns: a failed setup must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;

use e2e::tshark;
use wire::pcap::{EthernetLink, PcapWriter};
use wire::{
    ContextTag, ControlRepr, ErrorCode, Locator, LocatorList, MessageBody, Nonce, ProbeReport,
    ProbeRepr, ReapState, ShimOption, Ulid, VerificationMethod,
};

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn tag(v: u64) -> ContextTag {
    ContextTag::new(v).unwrap()
}

fn every_message() -> Vec<ControlRepr> {
    let a = Locator(addr("2001:db8:a::1"));
    let b = Locator(addr("2001:db8:b::1"));
    let c = Locator(addr("2001:db8:c::2"));
    let validator = ShimOption::ResponderValidator((0x10..0x24).collect());
    let list = ShimOption::LocatorList(LocatorList {
        generation: 7,
        entries: vec![(a, VerificationMethod::Cga), (b, VerificationMethod::Cga)],
    });
    let ulids = ShimOption::UlidPair {
        sender: Ulid(addr("fc00:0:0:1::10")),
        receiver: Ulid(addr("fc00:0:0:2::20")),
    };
    let ct = tag(0x1234_5678_9abc);
    let n = Nonce(0xa1b2_c3d4);
    let m = |body, options| ControlRepr { body, options };
    vec![
        m(
            MessageBody::I1 {
                initiator_tag: ct,
                initiator_nonce: n,
            },
            vec![ulids.clone()],
        ),
        m(
            MessageBody::R1 {
                initiator_nonce: n,
                responder_nonce: Nonce(0x102),
            },
            vec![validator.clone()],
        ),
        m(
            MessageBody::I2 {
                initiator_tag: ct,
                initiator_nonce: n,
                responder_nonce: Nonce(0x102),
            },
            vec![
                validator.clone(),
                ulids.clone(),
                list.clone(),
                ShimOption::CgaParameters(vec![0x42; 187]),
                ShimOption::CgaSignature(vec![0x5a; 128]),
                ShimOption::KeepaliveTimeout(15),
            ],
        ),
        m(
            MessageBody::R2 {
                responder_tag: tag(0x0bad_cafe_0001),
                initiator_nonce: n,
            },
            vec![list.clone()],
        ),
        m(
            MessageBody::R1bis {
                packet_tag: ct,
                responder_nonce: Nonce(0x102),
            },
            vec![validator.clone()],
        ),
        m(
            MessageBody::I2bis {
                initiator_tag: ct,
                initiator_nonce: Nonce(0x1111_1111),
                responder_nonce: Nonce(0x102),
                packet_tag: tag(0x0bad_cafe_0001),
            },
            vec![validator, ulids],
        ),
        m(
            MessageBody::UpdateRequest {
                receiver_tag: ct,
                request_nonce: Nonce(9),
            },
            vec![list],
        ),
        m(
            MessageBody::UpdateAck {
                receiver_tag: ct,
                request_nonce: Nonce(9),
            },
            vec![],
        ),
        m(MessageBody::Keepalive { receiver_tag: ct }, vec![]),
        m(
            MessageBody::Probe(ProbeRepr {
                receiver_tag: ct,
                state: ReapState::Exploring,
                sent: vec![ProbeReport {
                    src: a,
                    dst: c,
                    nonce: Nonce(0x5566_7788),
                    data: 0,
                }],
                received: vec![ProbeReport {
                    src: c,
                    dst: b,
                    nonce: Nonce(0x99),
                    data: 1,
                }],
            }),
            vec![],
        ),
        m(
            MessageBody::Error {
                code: ErrorCode::UnknownType,
                pointer: 42,
                packet: vec![0x60; 56],
            },
            vec![],
        ),
    ]
}

#[test]
fn tshark_dissects_every_message_type_and_the_payload_header() {
    let dir = std::env::temp_dir().join(format!("pshim6-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("every-message.pcap");
    let link = EthernetLink::simulated(1, 2);
    let (src, dst) = (addr("2001:db8:a::1"), addr("2001:db8:c::2"));

    let messages = every_message();
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (i, msg) in messages.iter().enumerate() {
        let bytes = msg.to_bytes().unwrap();
        w.write_ipv6(
            i as u64 * 1_000_000,
            &link,
            src,
            dst,
            wire::SHIM6_NEXT_HEADER,
            &bytes,
        )
        .unwrap();
    }
    // A payload packet: Shim6 payload header (tag, next header UDP) followed by a UDP datagram.
    let payload_tag = 0x0765_4321_0fed;
    let mut payload = wire::PayloadRepr {
        next_header: 17,
        tag: tag(payload_tag),
    }
    .to_bytes()
    .to_vec();
    payload.extend_from_slice(&[
        0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0x00, 0x00, b'p', b'i', b'n', b'g',
    ]);
    w.write_ipv6(
        99_000_000,
        &link,
        src,
        dst,
        wire::SHIM6_NEXT_HEADER,
        &payload,
    )
    .unwrap();
    w.into_inner().unwrap();

    let frames = tshark::dissect(&path).expect("tshark must be installed (ci/deps.sh)");
    assert_eq!(frames.len(), messages.len() + 1);
    for (msg, frame) in messages.iter().zip(&frames) {
        let want: u8 = msg.msg_type().into();
        assert!(
            frame.protocols.ends_with("shim6"),
            "frame {}: {}",
            frame.number,
            frame.protocols
        );
        assert_eq!(frame.shim6_type, Some(want), "frame {}", frame.number);
        assert_eq!(frame.p, Some(false), "frame {}", frame.number);
        assert_eq!(
            frame.checksum_status.as_deref(),
            Some("Good"),
            "frame {} (type {want})",
            frame.number
        );
    }
    let last = frames.last().unwrap();
    assert_eq!(last.p, Some(true));
    assert_eq!(last.payload_tag, Some(payload_tag));
    assert!(
        last.protocols.ends_with("shim6:udp:data"),
        "{}",
        last.protocols
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
