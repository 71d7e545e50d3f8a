//! Parsed Shim6 control messages ([RFC 5533 §5.4–§5.14], [RFC 5534 §5.1–§5.2]).
//!
//! Offsets below are from the first byte of the Shim6 header; bytes 0–5 are the common header
//! (see `control.rs`).
//!
//! [RFC 5533 §5.4–§5.14]: https://www.rfc-editor.org/rfc/rfc5533#section-5.4
//! [RFC 5534 §5.1–§5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.1

use crate::control::{ControlHeader, CONTROL_HEADER_MIN_LEN};
use crate::options::{is_known_option, option_allowed, ShimOptionIter, ShimOptionView};
use crate::types::{pad8, MAX_CONTROL_MESSAGE};
use crate::{
    ContextTag, LocatorList, LocatorPreferences, Nonce, ProbeRepr, ShimOption, Ulid, WireError,
    NO_NEXT_HEADER,
};

pub use crate::control::MessageType;

mod field {
    use core::ops::Range;
    /// R + 47-bit tag (I1, I2, R2, R1bis, I2bis, UR, UA, Keepalive).
    pub(super) const TAG: Range<usize> = 6..12;
    /// Nonce right after the tag (I1, I2, R2, R1bis, I2bis, UR, UA).
    pub(super) const NONCE_12: Range<usize> = 12..16;
    /// R1: Initiator Nonce after 16 reserved bits.
    pub(super) const R1_INIT_NONCE: Range<usize> = 8..12;
    /// I2 / I2bis Responder Nonce.
    pub(super) const NONCE_16: Range<usize> = 16..20;
    /// I2bis: 49 reserved bits, then the Packet Context Tag in the low 47 bits of 26..32.
    pub(super) const I2BIS_PACKET_TAG: Range<usize> = 26..32;
    /// Error: Pointer.
    pub(super) const POINTER: Range<usize> = 6..8;
    /// Error: packet in error starts here.
    pub(super) const ERROR_PACKET: usize = 8;
    /// Unknown types: everything after the checksum.
    pub(super) const UNKNOWN_BODY: usize = 6;
}

/// Error message codes ([RFC 5533 §5.14 Table 2]).
///
/// [RFC 5533 §5.14 Table 2]: https://www.rfc-editor.org/rfc/rfc5533#section-5.14
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// 0: unknown Shim6 message type (Pointer → the Type octet).
    UnknownType,
    /// 1: critical option not recognised (Pointer → the option's Type field).
    UnrecognisedCriticalOption,
    /// 2: locator verification method failed (Pointer → the Verification Method octet).
    LocatorVerificationFailed,
    /// 3: Locator List Generation out of sync.
    GenerationOutOfSync,
    /// 4: Locator Preferences element count ≠ number of locators.
    PreferenceCountMismatch,
    /// Other 7-bit codes (120–127 are for debugging).
    Unknown(u8),
}

impl From<u8> for ErrorCode {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::UnknownType,
            1 => Self::UnrecognisedCriticalOption,
            2 => Self::LocatorVerificationFailed,
            3 => Self::GenerationOutOfSync,
            4 => Self::PreferenceCountMismatch,
            other => Self::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u8 {
    fn from(c: ErrorCode) -> u8 {
        match c {
            ErrorCode::UnknownType => 0,
            ErrorCode::UnrecognisedCriticalOption => 1,
            ErrorCode::LocatorVerificationFailed => 2,
            ErrorCode::GenerationOutOfSync => 3,
            ErrorCode::PreferenceCountMismatch => 4,
            ErrorCode::Unknown(v) => v,
        }
    }
}

/// The type-specific part of a control message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageBody {
    /// I1 ([RFC 5533 §5.4](https://www.rfc-editor.org/rfc/rfc5533#section-5.4)).
    I1 {
        /// The initiator's CT(local).
        initiator_tag: ContextTag,
        /// Echoed in R1 / R2.
        initiator_nonce: Nonce,
    },
    /// R1 ([RFC 5533 §5.5](https://www.rfc-editor.org/rfc/rfc5533#section-5.5)): no tag.
    R1 {
        /// Copied from the I1.
        initiator_nonce: Nonce,
        /// Echoed in the I2.
        responder_nonce: Nonce,
    },
    /// I2 ([RFC 5533 §5.6](https://www.rfc-editor.org/rfc/rfc5533#section-5.6)).
    I2 {
        /// The initiator's CT(local).
        initiator_tag: ContextTag,
        /// Echoed in R2.
        initiator_nonce: Nonce,
        /// Copied from the R1.
        responder_nonce: Nonce,
    },
    /// R2 ([RFC 5533 §5.7](https://www.rfc-editor.org/rfc/rfc5533#section-5.7)).
    R2 {
        /// The responder's CT(local).
        responder_tag: ContextTag,
        /// Copied from the I1/I2/I2bis answered.
        initiator_nonce: Nonce,
    },
    /// R1bis ([RFC 5533 §5.8](https://www.rfc-editor.org/rfc/rfc5533#section-5.8)).
    R1bis {
        /// The tag found in the packet that had no context.
        packet_tag: ContextTag,
        /// Echoed in the I2bis.
        responder_nonce: Nonce,
    },
    /// I2bis ([RFC 5533 §5.9](https://www.rfc-editor.org/rfc/rfc5533#section-5.9)).
    I2bis {
        /// The sender's CT(local).
        initiator_tag: ContextTag,
        /// Echoed in R2.
        initiator_nonce: Nonce,
        /// Copied from the R1bis.
        responder_nonce: Nonce,
        /// The Packet Context Tag of the R1bis (after 49 reserved bits).
        packet_tag: ContextTag,
    },
    /// Update Request ([RFC 5533 §5.10](https://www.rfc-editor.org/rfc/rfc5533#section-5.10)).
    UpdateRequest {
        /// CT(peer) from the sender's view.
        receiver_tag: ContextTag,
        /// Echoed in the Update Ack.
        request_nonce: Nonce,
    },
    /// Update Acknowledgement
    /// ([RFC 5533 §5.11](https://www.rfc-editor.org/rfc/rfc5533#section-5.11)).
    UpdateAck {
        /// CT(peer) from the sender's view.
        receiver_tag: ContextTag,
        /// Copied from the Update Request.
        request_nonce: Nonce,
    },
    /// Keepalive ([RFC 5534 §5.1](https://www.rfc-editor.org/rfc/rfc5534#section-5.1)).
    Keepalive {
        /// CT(peer) from the sender's view.
        receiver_tag: ContextTag,
    },
    /// Probe ([RFC 5534 §5.2](https://www.rfc-editor.org/rfc/rfc5534#section-5.2)).
    Probe(ProbeRepr),
    /// Error ([RFC 5533 §5.14](https://www.rfc-editor.org/rfc/rfc5533#section-5.14)).
    Error {
        /// 7-bit code.
        code: ErrorCode,
        /// Octet offset in the invoking packet where the error was detected.
        pointer: u16,
        /// The invoking packet (from its IPv6 header); zero-padded to a multiple of 8 (at
        /// least 8) on emit, and parse keeps every byte after offset 8.
        packet: Vec<u8>,
    },
    /// A type this crate does not know: parsed so the engine can answer with Error code 0.
    Unknown {
        /// 7-bit type.
        msg_type: u8,
        /// Bytes 6..end (after the checksum); zero-padded on emit so the message is a
        /// multiple of 8.
        body: Vec<u8>,
    },
}

impl MessageBody {
    /// The message type of this body.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Self::I1 { .. } => MessageType::I1,
            Self::R1 { .. } => MessageType::R1,
            Self::I2 { .. } => MessageType::I2,
            Self::R2 { .. } => MessageType::R2,
            Self::R1bis { .. } => MessageType::R1bis,
            Self::I2bis { .. } => MessageType::I2bis,
            Self::UpdateRequest { .. } => MessageType::UpdateRequest,
            Self::UpdateAck { .. } => MessageType::UpdateAck,
            Self::Keepalive { .. } => MessageType::Keepalive,
            Self::Probe(_) => MessageType::Probe,
            Self::Error { .. } => MessageType::Error,
            Self::Unknown { msg_type, .. } => MessageType::from(*msg_type),
        }
    }

    /// Bytes from the start of the Shim6 header to where options start (or to the end for
    /// Error/Unknown, padding included).
    fn fixed_len(&self) -> usize {
        match self {
            Self::Probe(p) => p.body_len(),
            // At least 16 bytes: Hdr Ext Len >= 1 (RFC 5533 §5.14).
            Self::Error { packet, .. } => pad8(field::ERROR_PACKET + packet.len().max(1)),
            Self::Unknown { body, .. } => pad8(field::UNKNOWN_BODY + body.len()),
            other => other.msg_type().options_offset().unwrap_or(16),
        }
    }
}

/// A parsed control message: body + options in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlRepr {
    /// Type-specific fields.
    pub body: MessageBody,
    /// Options in the order they appear. Options not valid for the message type (or unknown)
    /// are [`ShimOption::Unknown`].
    pub options: Vec<ShimOption>,
}

fn read_tag(b: &[u8], r: core::ops::Range<usize>) -> Result<ContextTag, WireError> {
    let s = b.get(r).ok_or(WireError::TooShortForType)?;
    Ok(ContextTag::read([s[0], s[1], s[2], s[3], s[4], s[5]]))
}

fn read_nonce(b: &[u8], r: core::ops::Range<usize>) -> Result<Nonce, WireError> {
    let s = b.get(r).ok_or(WireError::TooShortForType)?;
    Ok(Nonce(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
}

/// Runs the generic header checks and returns the message (exactly `total_len` bytes).
fn checked_message(bytes: &[u8]) -> Result<(&[u8], MessageType), WireError> {
    let h = ControlHeader::new_checked(bytes)?;
    if h.p_bit() {
        return Err(WireError::NotControl);
    }
    if h.s_bit() {
        return Err(WireError::HipPacket);
    }
    let msg = bytes.get(..h.total_len()).ok_or(WireError::BadLength)?;
    Ok((msg, h.msg_type()))
}

impl ControlRepr {
    /// Parses a control message. `bytes` starts at the Shim6 header and may run longer (the
    /// length comes from Hdr Ext Len).
    ///
    /// Checks, in order (spec `shim6.md` §5.3, [RFC 5533 §12.3]): at least 8 bytes (`Truncated`), Hdr Ext Len
    /// within the buffer (`BadLength`), P = 0 (`NotControl`), S = 0 (`HipPacket`), checksum
    /// (`BadChecksum`), the type's minimum length (`TooShortForType`), then every option
    /// (`OptionOverrun`, `ZeroLengthOption`, `BadOptionLength`, `BadElementLength`, ...).
    /// Unknown types and unknown (even critical) options are not errors: see
    /// [`first_unrecognised_critical_option`].
    ///
    /// [RFC 5533 §12.3]: https://www.rfc-editor.org/rfc/rfc5533#section-12.3
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let (msg, ty) = checked_message(bytes)?;
        if !ControlHeader::new_unchecked(msg).verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if msg.len() < ty.min_len() {
            return Err(WireError::TooShortForType);
        }
        let (body, opt_off) = match ty {
            MessageType::I1 => (
                MessageBody::I1 {
                    initiator_tag: read_tag(msg, field::TAG)?,
                    initiator_nonce: read_nonce(msg, field::NONCE_12)?,
                },
                16,
            ),
            MessageType::R1 => (
                MessageBody::R1 {
                    initiator_nonce: read_nonce(msg, field::R1_INIT_NONCE)?,
                    responder_nonce: read_nonce(msg, field::NONCE_12)?,
                },
                16,
            ),
            MessageType::I2 => (
                MessageBody::I2 {
                    initiator_tag: read_tag(msg, field::TAG)?,
                    initiator_nonce: read_nonce(msg, field::NONCE_12)?,
                    responder_nonce: read_nonce(msg, field::NONCE_16)?,
                },
                24,
            ),
            MessageType::R2 => (
                MessageBody::R2 {
                    responder_tag: read_tag(msg, field::TAG)?,
                    initiator_nonce: read_nonce(msg, field::NONCE_12)?,
                },
                16,
            ),
            MessageType::R1bis => (
                MessageBody::R1bis {
                    packet_tag: read_tag(msg, field::TAG)?,
                    responder_nonce: read_nonce(msg, field::NONCE_12)?,
                },
                16,
            ),
            MessageType::I2bis => (
                MessageBody::I2bis {
                    initiator_tag: read_tag(msg, field::TAG)?,
                    initiator_nonce: read_nonce(msg, field::NONCE_12)?,
                    responder_nonce: read_nonce(msg, field::NONCE_16)?,
                    packet_tag: read_tag(msg, field::I2BIS_PACKET_TAG)?,
                },
                32,
            ),
            MessageType::UpdateRequest => (
                MessageBody::UpdateRequest {
                    receiver_tag: read_tag(msg, field::TAG)?,
                    request_nonce: read_nonce(msg, field::NONCE_12)?,
                },
                16,
            ),
            MessageType::UpdateAck => (
                MessageBody::UpdateAck {
                    receiver_tag: read_tag(msg, field::TAG)?,
                    request_nonce: read_nonce(msg, field::NONCE_12)?,
                },
                16,
            ),
            MessageType::Keepalive => (
                MessageBody::Keepalive {
                    receiver_tag: read_tag(msg, field::TAG)?,
                },
                16,
            ),
            MessageType::Probe => {
                let (p, off) = ProbeRepr::parse_body(msg)?;
                (MessageBody::Probe(p), off)
            }
            MessageType::Error => {
                let h = ControlHeader::new_unchecked(msg);
                let p = msg.get(field::POINTER).ok_or(WireError::TooShortForType)?;
                let packet = msg.get(field::ERROR_PACKET..).unwrap_or_default();
                (
                    MessageBody::Error {
                        code: ErrorCode::from(h.type_specific()),
                        pointer: u16::from_be_bytes([p[0], p[1]]),
                        packet: packet.to_vec(),
                    },
                    msg.len(),
                )
            }
            MessageType::Unknown(t) => (
                MessageBody::Unknown {
                    msg_type: t,
                    body: msg.get(field::UNKNOWN_BODY..).unwrap_or_default().to_vec(),
                },
                msg.len(),
            ),
        };
        let region = msg.get(opt_off..).ok_or(WireError::TooShortForType)?;
        let options = ShimOptionIter::new(region)
            .map(|v| v.and_then(|v| ShimOption::parse_in(&v, ty)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { body, options })
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        self.body.msg_type()
    }

    /// Total length of the emitted message (a multiple of 8).
    pub fn buffer_len(&self) -> usize {
        self.body.fixed_len()
            + self
                .options
                .iter()
                .map(ShimOption::buffer_len)
                .sum::<usize>()
    }

    /// Checks everything `emit` would reject, before touching the output.
    fn validate(&self) -> Result<(), WireError> {
        let ty = self.msg_type();
        let bad_body = match &self.body {
            // A known type number would parse back as the typed body.
            MessageBody::Unknown { msg_type, .. } => *msg_type > 0x7f || ty.is_known(),
            // 7-bit code; an `Unknown` holding a defined code would parse back typed.
            MessageBody::Error { code, .. } => {
                let v = u8::from(*code);
                v > 0x7f || (matches!(code, ErrorCode::Unknown(_)) && v <= 4)
            }
            MessageBody::Probe(p) => {
                p.check()?;
                false
            }
            _ => false,
        };
        if bad_body {
            return Err(WireError::InvalidField);
        }
        if matches!(ty, MessageType::Error | MessageType::Unknown(_)) && !self.options.is_empty() {
            // These bodies run to the end of the message: there is no room for options.
            return Err(WireError::OptionNotAllowed);
        }
        for o in &self.options {
            match o {
                ShimOption::Unknown { kind, .. } => {
                    // A known, allowed type would parse back as the typed variant.
                    if *kind > crate::options::option_type::MAX
                        || (is_known_option(*kind) && option_allowed(ty, *kind))
                    {
                        return Err(WireError::InvalidField);
                    }
                }
                typed => {
                    if !option_allowed(ty, typed.kind()) {
                        return Err(WireError::OptionNotAllowed);
                    }
                    if let ShimOption::LocatorList(l) = typed {
                        if l.entries.len() > LocatorList::MAX_LOCATORS {
                            return Err(WireError::TooManyLocators);
                        }
                    }
                }
            }
        }
        if self.buffer_len() > MAX_CONTROL_MESSAGE {
            return Err(WireError::MessageTooLarge);
        }
        Ok(())
    }

    /// Writes the message at the start of `buf` (Next Header 59, Hdr Ext Len, zeroed reserved
    /// fields and padding, checksum) and returns its length.
    ///
    /// Errors: `BufferTooSmall`; `TooManyLocators`; `MessageTooLarge` when the message plus a
    /// bare IPv6 header would exceed 1280 bytes ([RFC 5533 §5.1]); `OptionNotAllowed` for a
    /// typed option the message type does not list; `InvalidField` / `BadReportCount` /
    /// `ZeroLengthOption` / `BadElementLength` for values that cannot be encoded or would not
    /// parse back to the same repr.
    ///
    /// [RFC 5533 §5.1]: https://www.rfc-editor.org/rfc/rfc5533#section-5.1
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        let total = self.buffer_len();
        let hel = u8::try_from(total / 8 - 1).map_err(|_| WireError::MessageTooLarge)?;
        let msg = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        msg.fill(0);
        let ty = self.msg_type();
        {
            let mut h = ControlHeader::new_unchecked(&mut *msg);
            h.set_next_header(NO_NEXT_HEADER);
            h.set_hdr_ext_len(hel);
            h.set_msg_type(ty);
            h.set_type_specific(match &self.body {
                MessageBody::Error { code, .. } => u8::from(*code),
                _ => 0,
            });
        }
        let put_tag = |m: &mut [u8], r: core::ops::Range<usize>, t: ContextTag| {
            m[r].copy_from_slice(&t.to_bytes());
        };
        let put_nonce = |m: &mut [u8], r: core::ops::Range<usize>, n: Nonce| {
            m[r].copy_from_slice(&n.0.to_be_bytes());
        };
        match &self.body {
            MessageBody::I1 {
                initiator_tag,
                initiator_nonce,
            } => {
                put_tag(msg, field::TAG, *initiator_tag);
                put_nonce(msg, field::NONCE_12, *initiator_nonce);
            }
            MessageBody::R1 {
                initiator_nonce,
                responder_nonce,
            } => {
                put_nonce(msg, field::R1_INIT_NONCE, *initiator_nonce);
                put_nonce(msg, field::NONCE_12, *responder_nonce);
            }
            MessageBody::I2 {
                initiator_tag,
                initiator_nonce,
                responder_nonce,
            } => {
                put_tag(msg, field::TAG, *initiator_tag);
                put_nonce(msg, field::NONCE_12, *initiator_nonce);
                put_nonce(msg, field::NONCE_16, *responder_nonce);
            }
            MessageBody::R2 {
                responder_tag,
                initiator_nonce,
            } => {
                put_tag(msg, field::TAG, *responder_tag);
                put_nonce(msg, field::NONCE_12, *initiator_nonce);
            }
            MessageBody::R1bis {
                packet_tag,
                responder_nonce,
            } => {
                put_tag(msg, field::TAG, *packet_tag);
                put_nonce(msg, field::NONCE_12, *responder_nonce);
            }
            MessageBody::I2bis {
                initiator_tag,
                initiator_nonce,
                responder_nonce,
                packet_tag,
            } => {
                put_tag(msg, field::TAG, *initiator_tag);
                put_nonce(msg, field::NONCE_12, *initiator_nonce);
                put_nonce(msg, field::NONCE_16, *responder_nonce);
                put_tag(msg, field::I2BIS_PACKET_TAG, *packet_tag);
            }
            MessageBody::UpdateRequest {
                receiver_tag,
                request_nonce,
            }
            | MessageBody::UpdateAck {
                receiver_tag,
                request_nonce,
            } => {
                put_tag(msg, field::TAG, *receiver_tag);
                put_nonce(msg, field::NONCE_12, *request_nonce);
            }
            MessageBody::Keepalive { receiver_tag } => put_tag(msg, field::TAG, *receiver_tag),
            MessageBody::Probe(p) => {
                p.emit_body(msg)?;
            }
            MessageBody::Error {
                pointer, packet, ..
            } => {
                msg[field::POINTER].copy_from_slice(&pointer.to_be_bytes());
                let end = field::ERROR_PACKET + packet.len();
                msg[field::ERROR_PACKET..end].copy_from_slice(packet);
            }
            MessageBody::Unknown { body, .. } => {
                let end = field::UNKNOWN_BODY + body.len();
                msg[field::UNKNOWN_BODY..end].copy_from_slice(body);
            }
        }
        let mut at = self.body.fixed_len();
        for o in &self.options {
            at += o.emit(&mut msg[at..])?;
        }
        ControlHeader::new_unchecked(&mut *msg).fill_checksum();
        Ok(total)
    }

    /// Emits into a fresh vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut v = vec![0u8; self.buffer_len()];
        let n = self.emit(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    fn find<'a, R>(&'a self, f: impl Fn(&'a ShimOption) -> Option<R>) -> Option<R> {
        self.options.iter().find_map(f)
    }

    /// Contents of the first Responder Validator option.
    pub fn responder_validator(&self) -> Option<&[u8]> {
        self.find(|o| match o {
            ShimOption::ResponderValidator(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    /// The first Locator List option.
    pub fn locator_list(&self) -> Option<&LocatorList> {
        self.find(|o| match o {
            ShimOption::LocatorList(l) => Some(l),
            _ => None,
        })
    }

    /// The first Locator Preferences option.
    pub fn locator_preferences(&self) -> Option<&LocatorPreferences> {
        self.find(|o| match o {
            ShimOption::LocatorPreferences(p) => Some(p),
            _ => None,
        })
    }

    /// Contents of the first CGA Parameter Data Structure option.
    pub fn cga_parameters(&self) -> Option<&[u8]> {
        self.find(|o| match o {
            ShimOption::CgaParameters(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    /// Contents of the first CGA Signature option.
    pub fn cga_signature(&self) -> Option<&[u8]> {
        self.find(|o| match o {
            ShimOption::CgaSignature(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    /// The first ULID Pair option as (sender, receiver).
    pub fn ulid_pair(&self) -> Option<(Ulid, Ulid)> {
        self.find(|o| match o {
            ShimOption::UlidPair { sender, receiver } => Some((*sender, *receiver)),
            _ => None,
        })
    }

    /// The first Forked Instance Identifier (absent means FII 0).
    pub fn forked_instance(&self) -> Option<u32> {
        self.find(|o| match o {
            ShimOption::ForkedInstance(v) => Some(*v),
            _ => None,
        })
    }

    /// The first Keepalive Timeout option, in seconds.
    pub fn keepalive_timeout(&self) -> Option<u16> {
        self.find(|o| match o {
            ShimOption::KeepaliveTimeout(v) => Some(*v),
            _ => None,
        })
    }
}

/// Scans the raw options of a control message (already checksum-verified) and returns the
/// offset, from the start of the Shim6 header, of the first option whose C bit is set and whose
/// type is unknown or not valid for this message type ([RFC 5533 §5.15, §12.3]) — the Pointer
/// of an Error code 1 is that offset plus the length of the headers in front of the Shim6
/// header.
///
/// Returns `None` when there is no such option, when the header is not a usable control
/// message, or for types without options (Error, unknown types). The walk stops at the first
/// malformed option; known options' contents are not checked.
///
/// [RFC 5533 §5.15, §12.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15
pub fn first_unrecognised_critical_option(bytes: &[u8]) -> Option<u16> {
    let (msg, ty) = checked_message(bytes).ok()?;
    if msg.len() < ty.min_len().max(CONTROL_HEADER_MIN_LEN) {
        return None;
    }
    let start = match ty {
        MessageType::Probe => ProbeRepr::parse_body(msg).ok()?.1,
        other => other.options_offset()?,
    };
    let mut it = ShimOptionIter::new(msg.get(start..)?);
    loop {
        let at = start + it.offset();
        let v: ShimOptionView<&[u8]> = it.next()?.ok()?;
        if v.critical() && !(is_known_option(v.kind()) && option_allowed(ty, v.kind())) {
            return u16::try_from(at).ok();
        }
    }
}

#[cfg(test)]
mod tests;
