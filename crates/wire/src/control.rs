//! Common Shim6 control header ([RFC 5533 §5.3]) and the message type code points.
//!
//! [RFC 5533 §5.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3

use crate::{checksum, ContextTag, WireError};

pub(crate) mod field {
    use core::ops::Range;
    pub(crate) const NEXT_HEADER: usize = 0;
    pub(crate) const HDR_EXT_LEN: usize = 1;
    /// P (0x80) + 7-bit Type.
    pub(crate) const TYPE: usize = 2;
    /// 7 type-specific bits + S (0x01).
    pub(crate) const TYPE_SPECIFIC: usize = 3;
    pub(crate) const CHECKSUM: Range<usize> = 4..6;
    /// R + 47-bit tag of the messages that start their body with one.
    pub(crate) const TAG: Range<usize> = 6..12;
}

/// Length of the fixed common part (bytes 0–7); also the smallest Shim6 header.
pub const CONTROL_HEADER_MIN_LEN: usize = 8;

/// Shim6 control message types ([RFC 5533 §5.3 Table 1], [RFC 5534 §5.1–§5.2]).
///
/// [RFC 5533 §5.3 Table 1]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3
/// [RFC 5534 §5.1–§5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// 1: first establishment message from the initiator.
    I1,
    /// 2: stateless answer to I1.
    R1,
    /// 3: second establishment message from the initiator.
    I2,
    /// 4: second establishment message from the responder.
    R2,
    /// 5: "no context for that tag".
    R1bis,
    /// 6: answer to R1bis.
    I2bis,
    /// 64: Update Request.
    UpdateRequest,
    /// 65: Update Acknowledgement.
    UpdateAck,
    /// 66: REAP Keepalive ([RFC 5534 §5.1]).
    ///
    /// [RFC 5534 §5.1]: https://www.rfc-editor.org/rfc/rfc5534#section-5.1
    Keepalive,
    /// 67: REAP Probe ([RFC 5534 §5.2]).
    ///
    /// [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2
    Probe,
    /// 68: Error message ([RFC 5533 §5.14]).
    ///
    /// [RFC 5533 §5.14]: https://www.rfc-editor.org/rfc/rfc5533#section-5.14
    Error,
    /// Any other value (kept so it survives a round trip).
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::I1,
            2 => Self::R1,
            3 => Self::I2,
            4 => Self::R2,
            5 => Self::R1bis,
            6 => Self::I2bis,
            64 => Self::UpdateRequest,
            65 => Self::UpdateAck,
            66 => Self::Keepalive,
            67 => Self::Probe,
            68 => Self::Error,
            other => Self::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::I1 => 1,
            MessageType::R1 => 2,
            MessageType::I2 => 3,
            MessageType::R2 => 4,
            MessageType::R1bis => 5,
            MessageType::I2bis => 6,
            MessageType::UpdateRequest => 64,
            MessageType::UpdateAck => 65,
            MessageType::Keepalive => 66,
            MessageType::Probe => 67,
            MessageType::Error => 68,
            MessageType::Unknown(v) => v,
        }
    }
}

impl MessageType {
    /// Types 64–127 provoke an R1bis when their Receiver Context Tag is unknown; 0–63 never do
    /// ([RFC 5533 §5.3, §7.17]).
    ///
    /// [RFC 5533 §5.3, §7.17]: https://www.rfc-editor.org/rfc/rfc5533#section-7.17
    pub fn needs_r1bis_for_unknown_tag(self) -> bool {
        (64..=127).contains(&u8::from(self))
    }

    /// True for the types this crate parses into a typed body.
    pub fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// Smallest total length (bytes) of a message of this type: the RFC's minimum Hdr Ext Len
    /// discard checks ([RFC 5533 §7.9 ff.], [RFC 5534 §5.2]); 8 for unknown types.
    ///
    /// [RFC 5533 §7.9 ff.]: https://www.rfc-editor.org/rfc/rfc5533#section-7.9
    /// [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2
    pub fn min_len(self) -> usize {
        match self {
            Self::I2 => 24,
            Self::I2bis => 32,
            Self::Probe => 56,
            Self::Unknown(_) => CONTROL_HEADER_MIN_LEN,
            _ => 16,
        }
    }

    /// Offset of the first option from the start of the Shim6 header for types with a fixed
    /// body, `None` for Probe (depends on its report counts), Error and unknown types (no
    /// options).
    pub fn options_offset(self) -> Option<usize> {
        match self {
            Self::I1
            | Self::R1
            | Self::R2
            | Self::R1bis
            | Self::UpdateRequest
            | Self::UpdateAck
            | Self::Keepalive => Some(16),
            Self::I2 => Some(24),
            Self::I2bis => Some(32),
            Self::Probe | Self::Error | Self::Unknown(_) => None,
        }
    }
}

/// Zero-copy view of a Shim6 control header ([RFC 5533 §5.3]).
///
/// [`check_len`](Self::check_len) ensures 8 bytes and that Hdr Ext Len fits the buffer; after
/// it, no accessor panics. [`set_hdr_ext_len`](Self::set_hdr_ext_len) can break that.
///
/// [RFC 5533 §5.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ControlHeader<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and runs [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Truncated` below 8 bytes, `BadLength` when `(Hdr Ext Len + 1) * 8` exceeds the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < CONTROL_HEADER_MIN_LEN {
            Err(WireError::Truncated)
        } else if len < self.total_len() {
            Err(WireError::BadLength)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next Header (59 for control messages).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hdr Ext Len: length in 8-octet units not counting the first 8.
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// Length of the whole Shim6 header: `(Hdr Ext Len + 1) * 8`.
    pub fn total_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// P bit: false for a control message.
    pub fn p_bit(&self) -> bool {
        self.buffer.as_ref()[field::TYPE] & 0x80 != 0
    }

    /// Message type (7 bits).
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.raw_type())
    }

    /// Message type as the raw 7-bit value.
    pub fn raw_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE] & 0x7f
    }

    /// The 7 type-specific bits of byte 3 (the Error Code of an Error message).
    pub fn type_specific(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE_SPECIFIC] >> 1
    }

    /// S bit: must be 0 for Shim6 (1 = HIP).
    pub fn s_bit(&self) -> bool {
        self.buffer.as_ref()[field::TYPE_SPECIFIC] & 0x01 != 0
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// True when the checksum over `total_len()` bytes verifies (no pseudo-header). Under
    /// `cfg(fuzzing)` it always passes so the fuzzer reaches the body parsers.
    pub fn verify_checksum(&self) -> bool {
        if cfg!(fuzzing) {
            return true;
        }
        match self.buffer.as_ref().get(..self.total_len()) {
            Some(msg) => checksum::verify(msg),
            None => false,
        }
    }

    /// Bytes 6..12 as a tag with the R bit masked: the Receiver Context Tag of types 64–127 (and
    /// the Packet Context Tag of R1bis). Needs 12 bytes; `None` when shorter.
    pub fn receiver_tag(&self) -> Option<ContextTag> {
        let b = self.buffer.as_ref().get(field::TAG)?;
        Some(ContextTag::read([b[0], b[1], b[2], b[3], b[4], b[5]]))
    }

    /// The whole message: the first `total_len()` bytes (`None` if the buffer is shorter).
    pub fn message(&self) -> Option<&[u8]> {
        self.buffer.as_ref().get(..self.total_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ControlHeader<T> {
    /// Sets Next Header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets Hdr Ext Len (may break the `check_len` guarantee).
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = v;
    }

    /// Sets P = 0 and the 7-bit type.
    pub fn set_msg_type(&mut self, t: MessageType) {
        self.buffer.as_mut()[field::TYPE] = u8::from(t) & 0x7f;
    }

    /// Sets the 7 type-specific bits and S = 0.
    pub fn set_type_specific(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE_SPECIFIC] = v << 1;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Computes and stores the checksum over `total_len()` bytes (no-op if the buffer is
    /// shorter than that).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let len = self.total_len();
        if let Some(msg) = self.buffer.as_ref().get(..len) {
            let c = checksum::checksum(msg);
            self.set_checksum(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEEPALIVE: [u8; 16] = [
        0x3b, 0x01, 0x42, 0x00, 0x7f, 0x95, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x00, 0x00, 0x00,
        0x00,
    ];

    #[test]
    fn deconstruct_keepalive() {
        let h = ControlHeader::new_checked(&KEEPALIVE[..]).unwrap();
        assert_eq!(h.next_header(), 59);
        assert_eq!(h.hdr_ext_len(), 1);
        assert_eq!(h.total_len(), 16);
        assert!(!h.p_bit());
        assert_eq!(h.msg_type(), MessageType::Keepalive);
        assert_eq!(h.type_specific(), 0);
        assert!(!h.s_bit());
        assert_eq!(h.checksum(), 0x7f95);
        assert!(h.verify_checksum());
        assert_eq!(h.receiver_tag(), ContextTag::new(0x1234_5678_9abc));
    }

    #[test]
    fn construct_header() {
        let mut buf = KEEPALIVE;
        buf[..6].fill(0xa5);
        let mut h = ControlHeader::new_unchecked(&mut buf[..]);
        h.set_next_header(59);
        h.set_hdr_ext_len(1);
        h.set_msg_type(MessageType::Keepalive);
        h.set_type_specific(0);
        h.fill_checksum();
        assert_eq!(buf, KEEPALIVE);
    }

    #[test]
    fn lengths() {
        assert_eq!(
            ControlHeader::new_checked(&KEEPALIVE[..7]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            ControlHeader::new_checked(&KEEPALIVE[..15]).err(),
            Some(WireError::BadLength)
        );
        let h = ControlHeader::new_unchecked(&KEEPALIVE[..8]);
        assert_eq!(h.receiver_tag(), None);
        assert!(!h.verify_checksum());
    }

    #[test]
    fn type_codes() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(MessageType::from(v)), v);
            assert_eq!(
                MessageType::from(v).needs_r1bis_for_unknown_tag(),
                (64..128).contains(&v)
            );
        }
        assert_eq!(MessageType::from(68), MessageType::Error);
        assert_eq!(MessageType::from(7), MessageType::Unknown(7));
        assert!(!MessageType::I2bis.needs_r1bis_for_unknown_tag());
        assert!(MessageType::Probe.needs_r1bis_for_unknown_tag());
    }

    #[test]
    fn error_code_and_s_bit() {
        let mut b = KEEPALIVE;
        b[3] = (4 << 1) | 1;
        let h = ControlHeader::new_unchecked(&b[..]);
        assert_eq!(h.type_specific(), 4);
        assert!(h.s_bit());
    }
}
