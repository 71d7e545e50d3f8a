//! Shim6 Payload Extension Header ([RFC 5533 §5.2]): 8 bytes, P = 1, the receiver's tag.
//!
//! [RFC 5533 §5.2]: https://www.rfc-editor.org/rfc/rfc5533#section-5.2

use crate::{ContextTag, WireError};

mod field {
    use core::ops::Range;
    pub(super) const NEXT_HEADER: usize = 0;
    pub(super) const HDR_EXT_LEN: usize = 1;
    /// Byte 2 holds the P bit (0x80) and tag bits 46..40.
    pub(super) const P_BYTE: usize = 2;
    pub(super) const TAG: Range<usize> = 2..8;
}

/// Length of the payload extension header: always 8 (Hdr Ext Len 0).
pub const PAYLOAD_HEADER_LEN: usize = 8;

/// Zero-copy view of a Shim6 Payload Extension Header ([RFC 5533 §5.2]).
///
/// Once [`check_len`](Self::check_len) passed, no accessor panics.
///
/// [RFC 5533 §5.2]: https://www.rfc-editor.org/rfc/rfc5533#section-5.2
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PayloadHeader<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and checks its length ([`check_len`](Self::check_len)).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Ok` when the buffer holds at least the 8 header bytes; afterwards no getter panics.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < PAYLOAD_HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next Header: the header that follows (e.g. 17 UDP, 44 Fragment).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hdr Ext Len (0 for a well-formed payload header).
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// The P bit: true for a payload header, false for a control message.
    pub fn p_bit(&self) -> bool {
        self.buffer.as_ref()[field::P_BYTE] & 0x80 != 0
    }

    /// Receiver Context Tag: the 47 bits after the P bit.
    pub fn context_tag(&self) -> ContextTag {
        let b = &self.buffer.as_ref()[field::TAG];
        ContextTag::read([b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> PayloadHeader<T> {
    /// Sets Next Header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    /// Writes the tag, sets P = 1 and Hdr Ext Len = 0: after this the header is complete
    /// except for Next Header.
    pub fn set_context_tag(&mut self, tag: ContextTag) {
        let buf = self.buffer.as_mut();
        buf[field::HDR_EXT_LEN] = 0;
        buf[field::TAG].copy_from_slice(&tag.to_bytes());
        buf[field::P_BYTE] |= 0x80;
    }
}

/// Parsed payload extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadRepr {
    /// The header that follows.
    pub next_header: u8,
    /// The receiver's context tag, CT(peer) from the sender's view.
    pub tag: ContextTag,
}

impl PayloadRepr {
    /// Parses a payload header: needs 8 bytes, P = 1 and Hdr Ext Len = 0.
    pub fn parse<T: AsRef<[u8]>>(header: &PayloadHeader<T>) -> Result<Self, WireError> {
        header.check_len()?;
        if !header.p_bit() {
            return Err(WireError::NotPayload);
        }
        if header.hdr_ext_len() != 0 {
            return Err(WireError::BadLength);
        }
        Ok(Self {
            next_header: header.next_header(),
            tag: header.context_tag(),
        })
    }

    /// Parses the first 8 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        Self::parse(&PayloadHeader::new_unchecked(bytes))
    }

    /// Always [`PAYLOAD_HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PAYLOAD_HEADER_LEN
    }

    /// Writes the 8 bytes; the buffer must hold at least [`PAYLOAD_HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        header: &mut PayloadHeader<T>,
    ) -> Result<(), WireError> {
        if header.buffer.as_ref().len() < PAYLOAD_HEADER_LEN {
            return Err(WireError::BufferTooSmall);
        }
        header.set_next_header(self.next_header);
        header.set_context_tag(self.tag);
        Ok(())
    }

    /// The 8 header bytes.
    pub fn to_bytes(&self) -> [u8; PAYLOAD_HEADER_LEN] {
        let t = self.tag.to_bytes();
        [
            self.next_header,
            0,
            0x80 | t[0],
            t[1],
            t[2],
            t[3],
            t[4],
            t[5],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// shim6.md §4: tag 0x1234_5678_9abc, next header UDP.
    static PAYLOAD_UDP: [u8; 8] = [0x11, 0x00, 0x92, 0x34, 0x56, 0x78, 0x9a, 0xbc];

    fn tag() -> ContextTag {
        ContextTag::new(0x1234_5678_9abc).unwrap()
    }

    #[test]
    fn deconstruct() {
        let h = PayloadHeader::new_checked(&PAYLOAD_UDP[..]).unwrap();
        assert_eq!(h.next_header(), 17);
        assert_eq!(h.hdr_ext_len(), 0);
        assert!(h.p_bit());
        assert_eq!(h.context_tag(), tag());
        let r = PayloadRepr::parse(&h).unwrap();
        assert_eq!(
            r,
            PayloadRepr {
                next_header: 17,
                tag: tag()
            }
        );
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 8];
        let mut h = PayloadHeader::new_unchecked(&mut buf[..]);
        PayloadRepr {
            next_header: 17,
            tag: tag(),
        }
        .emit(&mut h)
        .unwrap();
        assert_eq!(buf, PAYLOAD_UDP);
        assert_eq!(
            PayloadRepr {
                next_header: 17,
                tag: tag()
            }
            .to_bytes(),
            PAYLOAD_UDP
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            PayloadRepr::parse_bytes(&PAYLOAD_UDP[..7]),
            Err(WireError::Truncated)
        );
        let mut control = PAYLOAD_UDP;
        control[2] &= 0x7f;
        assert_eq!(
            PayloadRepr::parse_bytes(&control),
            Err(WireError::NotPayload)
        );
        let mut long = PAYLOAD_UDP;
        long[1] = 1;
        assert_eq!(PayloadRepr::parse_bytes(&long), Err(WireError::BadLength));
        let mut small = [0u8; 7];
        let r = PayloadRepr {
            next_header: 17,
            tag: tag(),
        };
        assert_eq!(
            r.emit(&mut PayloadHeader::new_unchecked(&mut small[..])),
            Err(WireError::BufferTooSmall)
        );
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), t in 0u64..(1 << 47)) {
            let r = PayloadRepr { next_header: nh, tag: ContextTag::new(t).unwrap() };
            let mut buf = [0xa5u8; 8];
            r.emit(&mut PayloadHeader::new_unchecked(&mut buf[..])).unwrap();
            prop_assert_eq!(PayloadRepr::parse_bytes(&buf), Ok(r));
            prop_assert_eq!(buf, r.to_bytes());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let h = PayloadHeader::new_unchecked(&bytes[..]);
            if h.check_len().is_ok() {
                let _ = (h.next_header(), h.p_bit(), h.context_tag(), h.hdr_ext_len());
            }
            let _ = PayloadRepr::parse_bytes(&bytes);
        }
    }
}
