//! proptest strategies shared by the unit tests.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::options::{is_known_option, option_allowed, option_type::*};
use crate::*;

pub(crate) fn tag() -> impl Strategy<Value = ContextTag> {
    (0u64..=ContextTag::MASK).prop_map(ContextTag::from_wire)
}

pub(crate) fn nonce() -> impl Strategy<Value = Nonce> {
    any::<u32>().prop_map(Nonce)
}

pub(crate) fn locator() -> impl Strategy<Value = Locator> {
    any::<[u8; 16]>().prop_map(Locator::from_octets)
}

pub(crate) fn ulid() -> impl Strategy<Value = Ulid> {
    any::<[u8; 16]>().prop_map(Ulid::from_octets)
}

pub(crate) fn locator_list(max: usize) -> impl Strategy<Value = LocatorList> {
    (
        any::<u32>(),
        vec(
            (locator(), any::<u8>().prop_map(VerificationMethod::from)),
            1..=max,
        ),
    )
        .prop_map(|(generation, entries)| LocatorList {
            generation,
            entries,
        })
}

pub(crate) fn preferences() -> impl Strategy<Value = LocatorPreferences> {
    (any::<u32>(), 1u8..=5, vec(any::<(u8, u8, u8)>(), 0..10)).prop_map(|(generation, e, els)| {
        LocatorPreferences {
            generation,
            element_len: e,
            elements: els
                .into_iter()
                .map(|(flags, p, w)| PreferenceElement {
                    flags,
                    priority: if e >= 2 { p } else { 0 },
                    weight: if e >= 3 { w } else { 0 },
                })
                .collect(),
        }
    })
}

/// Any option that parses back to itself when found in a message of type `msg`.
pub(crate) fn option_for(msg: MessageType) -> BoxedStrategy<ShimOption> {
    let allowed = move |k: u16| option_allowed(msg, k);
    let mut choices: Vec<BoxedStrategy<ShimOption>> =
        vec![(0u16..=MAX, any::<bool>(), vec(any::<u8>(), 0..24))
            .prop_filter(
                "known and allowed types parse as typed",
                move |(k, _, _)| !(is_known_option(*k) && allowed(*k)),
            )
            .prop_map(|(kind, critical, data)| ShimOption::Unknown {
                kind,
                critical,
                data,
            })
            .boxed()];
    if allowed(RESPONDER_VALIDATOR) {
        choices.push(
            vec(any::<u8>(), 1..40)
                .prop_map(ShimOption::ResponderValidator)
                .boxed(),
        );
    }
    if allowed(LOCATOR_LIST) {
        choices.push(locator_list(8).prop_map(ShimOption::LocatorList).boxed());
    }
    if allowed(LOCATOR_PREFERENCES) {
        choices.push(
            preferences()
                .prop_map(ShimOption::LocatorPreferences)
                .boxed(),
        );
    }
    if allowed(CGA_PARAMETERS) {
        choices.push(
            vec(any::<u8>(), 1..200)
                .prop_map(ShimOption::CgaParameters)
                .boxed(),
        );
    }
    if allowed(CGA_SIGNATURE) {
        choices.push(
            vec(any::<u8>(), 1..130)
                .prop_map(ShimOption::CgaSignature)
                .boxed(),
        );
    }
    if allowed(ULID_PAIR) {
        choices.push(
            (ulid(), ulid())
                .prop_map(|(sender, receiver)| ShimOption::UlidPair { sender, receiver })
                .boxed(),
        );
    }
    if allowed(FORKED_INSTANCE) {
        choices.push(any::<u32>().prop_map(ShimOption::ForkedInstance).boxed());
    }
    if allowed(KEEPALIVE_TIMEOUT) {
        choices.push(any::<u16>().prop_map(ShimOption::KeepaliveTimeout).boxed());
    }
    proptest::strategy::Union::new(choices).boxed()
}

/// Any typed option (parsed without message context).
pub(crate) fn any_option() -> BoxedStrategy<ShimOption> {
    option_for(MessageType::I2)
}

fn report() -> impl Strategy<Value = ProbeReport> {
    (locator(), locator(), nonce(), any::<u32>()).prop_map(|(src, dst, nonce, data)| ProbeReport {
        src,
        dst,
        nonce,
        data,
    })
}

pub(crate) fn probe() -> impl Strategy<Value = ProbeRepr> {
    (tag(), 0u8..4, vec(report(), 1..=15), vec(report(), 0..=15)).prop_map(
        |(receiver_tag, s, sent, received)| ProbeRepr {
            receiver_tag,
            state: ReapState::from(s),
            sent,
            received,
        },
    )
}

pub(crate) fn body() -> BoxedStrategy<MessageBody> {
    prop_oneof![
        (tag(), nonce()).prop_map(|(initiator_tag, initiator_nonce)| MessageBody::I1 {
            initiator_tag,
            initiator_nonce
        }),
        (nonce(), nonce()).prop_map(|(initiator_nonce, responder_nonce)| MessageBody::R1 {
            initiator_nonce,
            responder_nonce
        }),
        (tag(), nonce(), nonce()).prop_map(|(initiator_tag, initiator_nonce, responder_nonce)| {
            MessageBody::I2 {
                initiator_tag,
                initiator_nonce,
                responder_nonce,
            }
        }),
        (tag(), nonce()).prop_map(|(responder_tag, initiator_nonce)| MessageBody::R2 {
            responder_tag,
            initiator_nonce
        }),
        (tag(), nonce()).prop_map(|(packet_tag, responder_nonce)| MessageBody::R1bis {
            packet_tag,
            responder_nonce
        }),
        (tag(), nonce(), nonce(), tag()).prop_map(
            |(initiator_tag, initiator_nonce, responder_nonce, packet_tag)| MessageBody::I2bis {
                initiator_tag,
                initiator_nonce,
                responder_nonce,
                packet_tag
            }
        ),
        (tag(), nonce()).prop_map(|(receiver_tag, request_nonce)| MessageBody::UpdateRequest {
            receiver_tag,
            request_nonce
        }),
        (tag(), nonce()).prop_map(|(receiver_tag, request_nonce)| MessageBody::UpdateAck {
            receiver_tag,
            request_nonce
        }),
        tag().prop_map(|receiver_tag| MessageBody::Keepalive { receiver_tag }),
        probe().prop_map(MessageBody::Probe),
        // Hdr Ext Len >= 1: the packet in error is at least 8 (padded) bytes.
        (0u8..128, any::<u16>(), vec(any::<u64>(), 1..40)).prop_map(|(c, pointer, words)| {
            MessageBody::Error {
                code: ErrorCode::from(c),
                pointer,
                packet: words.iter().flat_map(|w| w.to_be_bytes()).collect(),
            }
        }),
        (0u8..128, 0usize..20, any::<[u8; 256]>())
            .prop_filter("unknown types only", |(t, _, _)| !MessageType::from(*t)
                .is_known())
            .prop_map(|(msg_type, words, bytes)| MessageBody::Unknown {
                msg_type,
                // 6 + body is a multiple of 8, so nothing is padded.
                body: bytes[..2 + 8 * words].to_vec(),
            }),
    ]
    .boxed()
}

/// A control message that `emit` accepts, or that fails only with `MessageTooLarge`.
pub(crate) fn control() -> impl Strategy<Value = ControlRepr> {
    body().prop_flat_map(|body| {
        let ty = body.msg_type();
        let opts = if matches!(ty, MessageType::Error | MessageType::Unknown(_)) {
            Just(Vec::new()).boxed()
        } else {
            vec(option_for(ty), 0..5).boxed()
        };
        (Just(body), opts).prop_map(|(body, options)| ControlRepr { body, options })
    })
}
