//! Shim6 option TLVs ([RFC 5533 §5.15]): raw view, iterator and the parsed [`ShimOption`].
//!
//! Wire form: a 16-bit word `(type << 1) | C`, a 16-bit Length of the contents (padding not
//! counted), the contents, then zero padding so the whole option is a multiple of 8 bytes.
//!
//! [RFC 5533 §5.15]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15

use crate::types::pad8;
use crate::{MessageType, Ulid, WireError};

pub use crate::locator_list::{
    LocatorList, LocatorPreferences, PreferenceElement, VerificationMethod,
};

/// Option type code points ([RFC 5533 §5.15 Table 3], [RFC 5534 §5.3]).
///
/// [RFC 5533 §5.15 Table 3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15
/// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
pub mod option_type {
    /// Responder Validator.
    pub const RESPONDER_VALIDATOR: u16 = 1;
    /// Locator List.
    pub const LOCATOR_LIST: u16 = 2;
    /// Locator Preferences.
    pub const LOCATOR_PREFERENCES: u16 = 3;
    /// CGA Parameter Data Structure.
    pub const CGA_PARAMETERS: u16 = 4;
    /// CGA Signature.
    pub const CGA_SIGNATURE: u16 = 5;
    /// ULID Pair.
    pub const ULID_PAIR: u16 = 6;
    /// Forked Instance Identifier.
    pub const FORKED_INSTANCE: u16 = 7;
    /// Keepalive Timeout (RFC 5534).
    pub const KEEPALIVE_TIMEOUT: u16 = 10;
    /// Largest 15-bit type value.
    pub const MAX: u16 = 0x7fff;
}

/// Length of the option header (Type/C word + Length).
pub const OPTION_HEADER_LEN: usize = 4;

/// True for the option types this crate parses into typed variants.
pub fn is_known_option(kind: u16) -> bool {
    matches!(kind, 1..=7 | 10)
}

/// True when option `kind` is listed as valid for `msg` ([RFC 5533 §5.4–§5.11], [RFC 5534
/// §5.3]). Any other option counts as "not understood" for that message: ignored when C = 0,
/// Error code 1 when C = 1 ([RFC 5533 §5.15]).
///
/// [RFC 5533 §5.4–§5.11]: https://www.rfc-editor.org/rfc/rfc5533#section-5.4
/// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
/// [RFC 5533 §5.15]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15
pub fn option_allowed(msg: MessageType, kind: u16) -> bool {
    use option_type::*;
    match msg {
        MessageType::I1 => matches!(kind, ULID_PAIR | FORKED_INSTANCE),
        MessageType::R1 | MessageType::R1bis => kind == RESPONDER_VALIDATOR,
        MessageType::I2 | MessageType::I2bis => is_known_option(kind),
        MessageType::R2 | MessageType::UpdateRequest => matches!(
            kind,
            LOCATOR_LIST | LOCATOR_PREFERENCES | CGA_PARAMETERS | CGA_SIGNATURE | KEEPALIVE_TIMEOUT
        ),
        MessageType::UpdateAck
        | MessageType::Keepalive
        | MessageType::Probe
        | MessageType::Error
        | MessageType::Unknown(_) => false,
    }
}

/// Zero-copy view of one option TLV.
///
/// [`check_len`](Self::check_len) requires the header, the contents **and the padding** to fit
/// the buffer; afterwards no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimOptionView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ShimOptionView<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and runs [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// `OptionOverrun` when the header, contents or padding run past the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < OPTION_HEADER_LEN || len < self.total_len() {
            Err(WireError::OptionOverrun)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The 15-bit option type.
    pub fn kind(&self) -> u16 {
        self.word() >> 1
    }

    /// The C (critical) bit.
    pub fn critical(&self) -> bool {
        self.word() & 1 != 0
    }

    /// Length of the contents (without header or padding).
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Whole option size on the wire: `round_up(4 + Length, 8)`.
    pub fn total_len(&self) -> usize {
        pad8(OPTION_HEADER_LEN + usize::from(self.length()))
    }

    /// The contents (Length bytes after the header).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[OPTION_HEADER_LEN..OPTION_HEADER_LEN + usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ShimOptionView<T> {
    /// Writes the Type/C word; `kind` is truncated to 15 bits.
    pub fn set_kind(&mut self, kind: u16, critical: bool) {
        let w = (kind << 1) | u16::from(critical);
        self.buffer.as_mut()[0..2].copy_from_slice(&w.to_be_bytes());
    }

    /// Writes Length (may break the `check_len` guarantee).
    pub fn set_length(&mut self, len: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Mutable contents.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.length());
        &mut self.buffer.as_mut()[OPTION_HEADER_LEN..OPTION_HEADER_LEN + len]
    }
}

/// Iterator over the options region of a message. Yields checked views and stops after the
/// first error (which it yields once).
#[derive(Debug, Clone)]
pub struct ShimOptionIter<'a> {
    data: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> ShimOptionIter<'a> {
    /// Iterates over `data`, which must start at an option and end at the end of the message.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            offset: 0,
            done: false,
        }
    }

    /// Offset (within `data`) of the option the next call to `next` returns.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for ShimOptionIter<'a> {
    type Item = Result<ShimOptionView<&'a [u8]>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.data.get(self.offset..)?;
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        match ShimOptionView::new_checked(rest) {
            Ok(v) => {
                let total = v.total_len();
                self.offset += total;
                Some(Ok(ShimOptionView::new_unchecked(&rest[..total])))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A parsed option ([RFC 5533 §5.15.1–§5.15.7], [RFC 5534 §5.3]).
///
/// Known options are sent with C = 0 and their C bit is ignored on receipt (spec `shim6.md`
/// §8.1); unknown ones keep theirs.
///
/// [RFC 5533 §5.15.1–§5.15.7]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.1
/// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShimOption {
    /// Type 1: opaque validator made by the responder; never empty.
    ResponderValidator(Vec<u8>),
    /// Type 2.
    LocatorList(LocatorList),
    /// Type 3.
    LocatorPreferences(LocatorPreferences),
    /// Type 4: RFC 3972 CGA Parameters of the sender's ULID; never empty.
    CgaParameters(Vec<u8>),
    /// Type 5: RSASSA-PKCS1-v1_5/SHA-1 signature; never empty.
    CgaSignature(Vec<u8>),
    /// Type 6: Length exactly 36 (4 reserved bytes, two ULIDs).
    UlidPair {
        /// ULID of the host sending the message.
        sender: Ulid,
        /// ULID of the host it is sent to.
        receiver: Ulid,
    },
    /// Type 7: Length exactly 4.
    ForkedInstance(u32),
    /// Type 10 ([RFC 5534 §5.3]): Length exactly 4 (2 reserved bytes, u16 seconds).
    ///
    /// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
    KeepaliveTimeout(u16),
    /// Any option not understood (unknown type, or a type not valid for the message).
    Unknown {
        /// 15-bit type.
        kind: u16,
        /// C bit.
        critical: bool,
        /// Contents (Length bytes).
        data: Vec<u8>,
    },
}

impl ShimOption {
    /// The 15-bit type of this option.
    pub fn kind(&self) -> u16 {
        use option_type::*;
        match self {
            Self::ResponderValidator(_) => RESPONDER_VALIDATOR,
            Self::LocatorList(_) => LOCATOR_LIST,
            Self::LocatorPreferences(_) => LOCATOR_PREFERENCES,
            Self::CgaParameters(_) => CGA_PARAMETERS,
            Self::CgaSignature(_) => CGA_SIGNATURE,
            Self::UlidPair { .. } => ULID_PAIR,
            Self::ForkedInstance(_) => FORKED_INSTANCE,
            Self::KeepaliveTimeout(_) => KEEPALIVE_TIMEOUT,
            Self::Unknown { kind, .. } => *kind,
        }
    }

    /// C bit as emitted: 0 for every defined option.
    pub fn critical(&self) -> bool {
        matches!(self, Self::Unknown { critical: true, .. })
    }

    /// Parses one option whatever message carries it (all known types become typed).
    pub fn parse<T: AsRef<[u8]>>(view: &ShimOptionView<T>) -> Result<Self, WireError> {
        view.check_len()?;
        let data = view.data();
        let non_empty = |d: &[u8]| {
            if d.is_empty() {
                Err(WireError::ZeroLengthOption)
            } else {
                Ok(d.to_vec())
            }
        };
        use option_type::*;
        Ok(match view.kind() {
            RESPONDER_VALIDATOR => Self::ResponderValidator(non_empty(data)?),
            LOCATOR_LIST => Self::LocatorList(LocatorList::parse_contents(data)?),
            LOCATOR_PREFERENCES => {
                Self::LocatorPreferences(LocatorPreferences::parse_contents(data)?)
            }
            CGA_PARAMETERS => Self::CgaParameters(non_empty(data)?),
            CGA_SIGNATURE => Self::CgaSignature(non_empty(data)?),
            ULID_PAIR => {
                let d: &[u8; 36] = data.try_into().map_err(|_| WireError::BadOptionLength)?;
                let mut s = [0u8; 16];
                let mut r = [0u8; 16];
                s.copy_from_slice(&d[4..20]);
                r.copy_from_slice(&d[20..36]);
                Self::UlidPair {
                    sender: Ulid::from_octets(s),
                    receiver: Ulid::from_octets(r),
                }
            }
            FORKED_INSTANCE => {
                let d: [u8; 4] = data.try_into().map_err(|_| WireError::BadOptionLength)?;
                Self::ForkedInstance(u32::from_be_bytes(d))
            }
            KEEPALIVE_TIMEOUT => {
                let d: [u8; 4] = data.try_into().map_err(|_| WireError::BadOptionLength)?;
                Self::KeepaliveTimeout(u16::from_be_bytes([d[2], d[3]]))
            }
            kind => Self::Unknown {
                kind,
                critical: view.critical(),
                data: data.to_vec(),
            },
        })
    }

    /// Parses one option as found in a message of type `msg`: an option not valid for `msg`
    /// is kept as [`ShimOption::Unknown`] without interpreting its contents.
    pub fn parse_in<T: AsRef<[u8]>>(
        view: &ShimOptionView<T>,
        msg: MessageType,
    ) -> Result<Self, WireError> {
        view.check_len()?;
        if option_allowed(msg, view.kind()) {
            Self::parse(view)
        } else {
            Ok(Self::Unknown {
                kind: view.kind(),
                critical: view.critical(),
                data: view.data().to_vec(),
            })
        }
    }

    /// Length field value (contents only).
    pub fn contents_len(&self) -> usize {
        match self {
            Self::ResponderValidator(d) | Self::CgaParameters(d) | Self::CgaSignature(d) => d.len(),
            Self::LocatorList(l) => l.contents_len(),
            Self::LocatorPreferences(p) => p.contents_len(),
            Self::UlidPair { .. } => 36,
            Self::ForkedInstance(_) | Self::KeepaliveTimeout(_) => 4,
            Self::Unknown { data, .. } => data.len(),
        }
    }

    /// Whole option size on the wire, padding included.
    pub fn buffer_len(&self) -> usize {
        pad8(OPTION_HEADER_LEN + self.contents_len())
    }

    /// Writes the option (header, contents, zero padding) at the start of `buf` and returns
    /// [`buffer_len`](Self::buffer_len).
    ///
    /// Errors: `ZeroLengthOption` (empty validator/PDS/signature, empty Locator List),
    /// `TooManyLocators`, `BadElementLength`, `InvalidField` (type above 15 bits),
    /// `MessageTooLarge` (contents above 65535 bytes), `BufferTooSmall`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let kind = self.kind();
        if kind > option_type::MAX {
            return Err(WireError::InvalidField);
        }
        let clen = self.contents_len();
        let len16 = u16::try_from(clen).map_err(|_| WireError::MessageTooLarge)?;
        let total = self.buffer_len();
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        out.fill(0);
        let mut view = ShimOptionView::new_unchecked(&mut *out);
        view.set_kind(kind, self.critical());
        view.set_length(len16);
        let data = view.data_mut();
        match self {
            Self::ResponderValidator(d) | Self::CgaParameters(d) | Self::CgaSignature(d) => {
                if d.is_empty() {
                    return Err(WireError::ZeroLengthOption);
                }
                data.copy_from_slice(d);
            }
            Self::LocatorList(l) => {
                l.emit_contents(data)?;
            }
            Self::LocatorPreferences(p) => {
                p.emit_contents(data)?;
            }
            Self::UlidPair { sender, receiver } => {
                data[4..20].copy_from_slice(&sender.octets());
                data[20..36].copy_from_slice(&receiver.octets());
            }
            Self::ForkedInstance(v) => data.copy_from_slice(&v.to_be_bytes()),
            Self::KeepaliveTimeout(v) => data[2..4].copy_from_slice(&v.to_be_bytes()),
            Self::Unknown { data: d, .. } => data.copy_from_slice(d),
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Locator;

    /// shim6.md §9: Locator List, generation 7, two CGA locators.
    static LOCATOR_LIST: [u8; 48] = [
        0x00, 0x04, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x07, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x01,
    ];
    /// shim6.md §9 / reap.md §4: Keepalive Timeout 15 s.
    static KEEPALIVE_TIMEOUT: [u8; 8] = [0x00, 0x14, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0f];

    fn spec_list() -> ShimOption {
        ShimOption::LocatorList(LocatorList {
            generation: 7,
            entries: vec![
                (
                    Locator("2001:db8:a::1".parse().unwrap()),
                    VerificationMethod::Cga,
                ),
                (
                    Locator("2001:db8:b::1".parse().unwrap()),
                    VerificationMethod::Cga,
                ),
            ],
        })
    }

    fn emit_a5(o: &ShimOption) -> Vec<u8> {
        let mut buf = vec![0xa5; o.buffer_len()];
        assert_eq!(o.emit(&mut buf), Ok(buf.len()));
        buf
    }

    #[test]
    fn locator_list_deconstruct() {
        let v = ShimOptionView::new_checked(&LOCATOR_LIST[..]).unwrap();
        assert_eq!(v.kind(), 2);
        assert!(!v.critical());
        assert_eq!(v.length(), 44);
        assert_eq!(v.total_len(), 48);
        let o = ShimOption::parse(&v).unwrap();
        let ShimOption::LocatorList(l) = &o else {
            panic!("not a locator list: {o:?}")
        };
        assert_eq!(l.generation, 7);
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[0].0, Locator("2001:db8:a::1".parse().unwrap()));
        assert_eq!(l.entries[1].0, Locator("2001:db8:b::1".parse().unwrap()));
        assert!(l.entries.iter().all(|(_, m)| *m == VerificationMethod::Cga));
        assert_eq!(o, spec_list());
    }

    #[test]
    fn locator_list_construct() {
        assert_eq!(emit_a5(&spec_list()), LOCATOR_LIST);
    }

    #[test]
    fn keepalive_timeout_kat() {
        let v = ShimOptionView::new_checked(&KEEPALIVE_TIMEOUT[..]).unwrap();
        assert_eq!((v.kind(), v.critical(), v.length()), (10, false, 4));
        assert_eq!(ShimOption::parse(&v), Ok(ShimOption::KeepaliveTimeout(15)));
        assert_eq!(
            emit_a5(&ShimOption::KeepaliveTimeout(15)),
            KEEPALIVE_TIMEOUT
        );
    }

    #[test]
    fn responder_validator_padding() {
        // shim6.md §18 R1: 20-byte validator -> Length 20, total 24.
        let o = ShimOption::ResponderValidator((0x10..=0x23).collect());
        let b = emit_a5(&o);
        assert_eq!(&b[..4], &[0x00, 0x02, 0x00, 0x14]);
        assert_eq!(&b[4..24], &(0x10..=0x23).collect::<Vec<u8>>()[..]);
        assert_eq!(b.len(), 24);
        let o = ShimOption::ResponderValidator(vec![9]);
        assert_eq!(emit_a5(&o), [0, 2, 0, 1, 9, 0, 0, 0]);
    }

    #[test]
    fn fixed_options() {
        let u = ShimOption::UlidPair {
            sender: Ulid("fd00::1".parse().unwrap()),
            receiver: Ulid("fd00::2".parse().unwrap()),
        };
        let b = emit_a5(&u);
        assert_eq!(b.len(), 40);
        assert_eq!(&b[..8], &[0x00, 0x0c, 0x00, 0x24, 0, 0, 0, 0]);
        assert_eq!(b[8], 0xfd);
        assert_eq!(b[23], 1);
        assert_eq!(b[39], 2);
        assert_eq!(
            ShimOption::parse(&ShimOptionView::new_unchecked(&b[..])),
            Ok(u)
        );
        assert_eq!(
            emit_a5(&ShimOption::ForkedInstance(0x01020304)),
            [0x00, 0x0e, 0x00, 0x04, 1, 2, 3, 4]
        );
    }

    #[test]
    fn wrong_lengths_are_typed_errors() {
        let cases: &[(&[u8], WireError)] = &[
            (
                &[0x00, 0x02, 0x00, 0x00, 0, 0, 0, 0],
                WireError::ZeroLengthOption,
            ),
            (
                &[0x00, 0x08, 0x00, 0x00, 0, 0, 0, 0],
                WireError::ZeroLengthOption,
            ),
            (
                &[0x00, 0x0a, 0x00, 0x00, 0, 0, 0, 0],
                WireError::ZeroLengthOption,
            ),
            (
                &[0x00, 0x0c, 0x00, 0x04, 0, 0, 0, 0],
                WireError::BadOptionLength,
            ),
            (
                &[0x00, 0x0e, 0x00, 0x03, 0, 0, 0, 0],
                WireError::BadOptionLength,
            ),
            (
                &[0x00, 0x0e, 0x00, 0x00, 0, 0, 0, 0],
                WireError::BadOptionLength,
            ),
            (
                &[0x00, 0x14, 0x00, 0x02, 0, 0, 0, 0],
                WireError::BadOptionLength,
            ),
            (
                &[0x00, 0x14, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                WireError::BadOptionLength,
            ),
            // Locator List with 0 locators.
            (
                &[0x00, 0x04, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                WireError::ZeroLengthOption,
            ),
            // Length runs past the buffer.
            (
                &[0x00, 0x02, 0x00, 0x05, 1, 2, 3, 4],
                WireError::OptionOverrun,
            ),
            (&[0x00, 0x02, 0x00], WireError::OptionOverrun),
        ];
        for (bytes, err) in cases {
            assert_eq!(
                ShimOption::parse(&ShimOptionView::new_unchecked(*bytes)),
                Err(*err),
                "{bytes:02x?}"
            );
        }
        assert_eq!(
            ShimOption::ResponderValidator(vec![]).emit(&mut [0; 8]),
            Err(WireError::ZeroLengthOption)
        );
        assert_eq!(
            ShimOption::Unknown {
                kind: 0x8000,
                critical: false,
                data: vec![]
            }
            .emit(&mut [0; 8]),
            Err(WireError::InvalidField)
        );
        assert_eq!(
            ShimOption::KeepaliveTimeout(1).emit(&mut [0; 7]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn unknown_and_critical() {
        let b = [0x01, 0x03, 0x00, 0x01, 0xee, 0, 0, 0];
        let v = ShimOptionView::new_checked(&b[..]).unwrap();
        assert_eq!(v.kind(), 0x81);
        assert!(v.critical());
        let o = ShimOption::parse(&v).unwrap();
        assert_eq!(
            o,
            ShimOption::Unknown {
                kind: 0x81,
                critical: true,
                data: vec![0xee]
            }
        );
        assert_eq!(emit_a5(&o), b);
        // A known option in a message that does not list it is not interpreted.
        let o = ShimOption::parse_in(
            &ShimOptionView::new_unchecked(&LOCATOR_LIST[..]),
            MessageType::I1,
        )
        .unwrap();
        assert_eq!(
            o,
            ShimOption::Unknown {
                kind: 2,
                critical: false,
                data: LOCATOR_LIST[4..].to_vec()
            }
        );
    }

    #[test]
    fn iterator_walks_and_stops_at_error() {
        let mut region = LOCATOR_LIST.to_vec();
        region.extend_from_slice(&KEEPALIVE_TIMEOUT);
        region.extend_from_slice(&[0x00, 0x02, 0x00, 0x09, 0, 0, 0, 0]);
        let mut it = ShimOptionIter::new(&region);
        assert_eq!(it.offset(), 0);
        assert_eq!(it.next().unwrap().unwrap().kind(), 2);
        assert_eq!(it.offset(), 48);
        assert_eq!(it.next().unwrap().unwrap().kind(), 10);
        assert_eq!(it.offset(), 56);
        assert_eq!(it.next(), Some(Err(WireError::OptionOverrun)));
        assert_eq!(it.next(), None);
        assert_eq!(ShimOptionIter::new(&[]).next(), None);
    }

    #[test]
    fn allowed_table() {
        use option_type::*;
        assert!(option_allowed(MessageType::I1, ULID_PAIR));
        assert!(!option_allowed(MessageType::I1, RESPONDER_VALIDATOR));
        assert!(option_allowed(MessageType::R1, RESPONDER_VALIDATOR));
        assert!(!option_allowed(MessageType::R1, LOCATOR_LIST));
        assert!(option_allowed(MessageType::I2bis, KEEPALIVE_TIMEOUT));
        assert!(!option_allowed(MessageType::R2, ULID_PAIR));
        assert!(option_allowed(MessageType::UpdateRequest, CGA_SIGNATURE));
        assert!(!option_allowed(MessageType::UpdateAck, LOCATOR_LIST));
        assert!(!option_allowed(MessageType::I2, 8));
    }

    proptest::proptest! {
        #[test]
        fn option_roundtrip(o in crate::arb::any_option()) {
            let mut buf = vec![0xa5u8; o.buffer_len()];
            proptest::prop_assert_eq!(o.emit(&mut buf), Ok(buf.len()));
            proptest::prop_assert_eq!(buf.len() % 8, 0);
            let v = ShimOptionView::new_checked(&buf[..]).unwrap();
            proptest::prop_assert_eq!(v.total_len(), buf.len());
            proptest::prop_assert_eq!(usize::from(v.length()), o.contents_len());
            // Padding is zero.
            proptest::prop_assert!(buf[4 + o.contents_len()..].iter().all(|&b| b == 0));
            proptest::prop_assert_eq!(ShimOption::parse(&v), Ok(o));
        }

        #[test]
        fn option_iter_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut seen = 0usize;
            for item in ShimOptionIter::new(&bytes) {
                match item {
                    Ok(v) => {
                        seen += v.total_len();
                        let _ = (v.kind(), v.critical(), v.data());
                        let _ = ShimOption::parse(&v);
                        let _ = ShimOption::parse_in(&v, MessageType::I1);
                    }
                    Err(e) => proptest::prop_assert_eq!(e, WireError::OptionOverrun),
                }
            }
            proptest::prop_assert!(seen <= bytes.len());
            let _ = LocatorList::parse_contents(&bytes);
            let _ = LocatorPreferences::parse_contents(&bytes);
        }

        #[test]
        fn contents_roundtrip(l in crate::arb::locator_list(40), p in crate::arb::preferences()) {
            let mut buf = vec![0xa5u8; l.contents_len()];
            proptest::prop_assert_eq!(l.emit_contents(&mut buf), Ok(buf.len()));
            proptest::prop_assert_eq!(LocatorList::parse_contents(&buf), Ok(l));
            let mut buf = vec![0xa5u8; p.contents_len()];
            proptest::prop_assert_eq!(p.emit_contents(&mut buf), Ok(buf.len()));
            proptest::prop_assert_eq!(LocatorPreferences::parse_contents(&buf), Ok(p));
        }
    }
}
