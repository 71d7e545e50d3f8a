//! The CGA Parameters data structure ("PDS",
//! [RFC 3972 §3](https://www.rfc-editor.org/rfc/rfc3972#section-3)): a zero-copy view
//! ([`CgaParamsView`]) and an owned form ([`CgaParameters`]).

use crate::ext::{Extensions, MultiPrefix};
use crate::CgaError;

/// Byte ranges of the fixed part; the Public Key starts at [`field::PUBLIC_KEY`].
mod field {
    use core::ops::Range;
    pub(crate) const MODIFIER: Range<usize> = 0..16;
    pub(crate) const SUBNET_PREFIX: Range<usize> = 16..24;
    pub(crate) const COLLISION_COUNT: usize = 24;
    pub(crate) const PUBLIC_KEY: usize = 25;
}

/// Length of the fixed part before the Public Key (modifier, prefix, collision count).
pub const FIXED_LEN: usize = field::PUBLIC_KEY;

/// Total length (header + contents) of the DER SEQUENCE at the start of `der`, read from its
/// header alone. The PDS has no key length field, so this is how a parser finds where the key
/// ends and the extensions begin ([RFC 3972 §3, §5](https://www.rfc-editor.org/rfc/rfc3972#section-3)).
///
/// Accepts the short form and long forms of 1–4 length bytes; rejects other tags and the
/// indefinite form (not DER). The result may exceed `der.len()`: callers compare.
pub fn der_sequence_len(der: &[u8]) -> Result<usize, CgaError> {
    match der {
        [] | [_] => Err(CgaError::Truncated),
        [0x30, first, rest @ ..] => {
            if first & 0x80 == 0 {
                return Ok(2 + usize::from(*first));
            }
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(CgaError::MalformedKey);
            }
            let bytes = rest.get(..n).ok_or(CgaError::Truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            len.checked_add(2 + n).ok_or(CgaError::MalformedKey)
        }
        _ => Err(CgaError::MalformedKey),
    }
}

/// Zero-copy view of a CGA Parameters data structure
/// ([RFC 3972 §3](https://www.rfc-editor.org/rfc/rfc3972#section-3)).
///
/// Layout: Modifier (16) ‖ Subnet Prefix (8) ‖ Collision Count (1) ‖ Public Key (DER
/// SubjectPublicKeyInfo) ‖ Extension Fields (RFC 4581 TLVs, rest of the buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgaParamsView<T: AsRef<[u8]>> {
    buffer: T,
    /// Offset of the first byte after the DER key, found by `check_len`.
    key_end: usize,
}

impl<T: AsRef<[u8]>> CgaParamsView<T> {
    /// Wraps `buffer` after checking it is long enough for the fixed part and the DER key its
    /// header announces. Once this returns `Ok`, no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self, CgaError> {
        let bytes = buffer.as_ref();
        let key = bytes.get(field::PUBLIC_KEY..).ok_or(CgaError::Truncated)?;
        let key_len = der_sequence_len(key)?;
        if key_len > key.len() {
            return Err(CgaError::Truncated);
        }
        Ok(Self {
            key_end: field::PUBLIC_KEY + key_len,
            buffer,
        })
    }

    /// The 128-bit Modifier.
    pub fn modifier(&self) -> [u8; 16] {
        let mut m = [0; 16];
        m.copy_from_slice(&self.buffer.as_ref()[field::MODIFIER]);
        m
    }

    /// The 64-bit Subnet Prefix.
    pub fn subnet_prefix(&self) -> [u8; 8] {
        let mut p = [0; 8];
        p.copy_from_slice(&self.buffer.as_ref()[field::SUBNET_PREFIX]);
        p
    }

    /// The Collision Count (valid values 0..=2 are checked by verification, not here).
    pub fn collision_count(&self) -> u8 {
        self.buffer.as_ref()[field::COLLISION_COUNT]
    }

    /// The DER-encoded SubjectPublicKeyInfo (or HBA pseudo key).
    pub fn public_key(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PUBLIC_KEY..self.key_end]
    }

    /// The raw Extension Fields: every byte after the key.
    pub fn extensions(&self) -> &[u8] {
        &self.buffer.as_ref()[self.key_end..]
    }

    /// Iterates the extension TLVs ([RFC 4581 §2](https://www.rfc-editor.org/rfc/rfc4581#section-2)).
    pub fn extension_tlvs(&self) -> Extensions<'_> {
        Extensions::new(self.extensions())
    }

    /// The whole structure.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Public Key and Extension Fields together: the hashed tail after the collision count.
    pub(crate) fn key_and_extensions(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PUBLIC_KEY..]
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> CgaParamsView<T> {
    /// Sets the Modifier.
    pub fn set_modifier(&mut self, modifier: [u8; 16]) {
        self.buffer.as_mut()[field::MODIFIER].copy_from_slice(&modifier);
    }

    /// Sets the Subnet Prefix (RFC 5535 §7.2 substitutes it to check HBA membership).
    pub fn set_subnet_prefix(&mut self, prefix: [u8; 8]) {
        self.buffer.as_mut()[field::SUBNET_PREFIX].copy_from_slice(&prefix);
    }

    /// Sets the Collision Count.
    pub fn set_collision_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COLLISION_COUNT] = count;
    }
}

/// Owned CGA Parameters data structure
/// ([RFC 3972 §3](https://www.rfc-editor.org/rfc/rfc3972#section-3)), as sent in the SHIM6 CGA
/// Parameter Data Structure option
/// ([RFC 5533 §5.15.4](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.4)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CgaParameters {
    /// 128-bit modifier (big-endian integer; incremented during the Sec search).
    pub modifier: [u8; 16],
    /// The 64-bit subnet prefix of the address.
    pub subnet_prefix: [u8; 8],
    /// Collision count, 0..=2 when valid.
    pub collision_count: u8,
    /// DER SubjectPublicKeyInfo (a real RSA key or an HBA pseudo key).
    pub public_key: Vec<u8>,
    /// Raw extension TLVs (RFC 4581), kept verbatim: unknown ones are hashed too.
    pub extensions: Vec<u8>,
}

impl CgaParameters {
    /// Parses a PDS. The key length comes from its DER header; everything after the key is
    /// extensions, kept verbatim (RFC 3972 §5: unrecognised extensions are ignored, but hashed).
    pub fn parse(bytes: &[u8]) -> Result<Self, CgaError> {
        let view = CgaParamsView::new_checked(bytes)?;
        Ok(Self::from_view(&view))
    }

    /// Copies the fields out of a checked view.
    pub fn from_view<T: AsRef<[u8]>>(view: &CgaParamsView<T>) -> Self {
        Self {
            modifier: view.modifier(),
            subnet_prefix: view.subnet_prefix(),
            collision_count: view.collision_count(),
            public_key: view.public_key().to_vec(),
            extensions: view.extensions().to_vec(),
        }
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + self.public_key.len() + self.extensions.len()
    }

    /// Writes the encoding into the first [`Self::buffer_len`] bytes of `buf` (e.g. straight
    /// into a SHIM6 option body) and returns that length; `Truncated` if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, CgaError> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(CgaError::Truncated)?;
        let (fixed, rest) = out.split_at_mut(FIXED_LEN);
        let (key, ext) = rest.split_at_mut(self.public_key.len());
        fixed[field::MODIFIER].copy_from_slice(&self.modifier);
        fixed[field::SUBNET_PREFIX].copy_from_slice(&self.subnet_prefix);
        fixed[field::COLLISION_COUNT] = self.collision_count;
        key.copy_from_slice(&self.public_key);
        ext.copy_from_slice(&self.extensions);
        Ok(len)
    }

    /// Encodes `modifier ‖ prefix ‖ collision count ‖ key ‖ extensions` (RFC 3972 §4 step 9).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        out.extend_from_slice(&self.modifier);
        out.extend_from_slice(&self.subnet_prefix);
        out.push(self.collision_count);
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.extensions);
        out
    }

    /// Iterates the extension TLVs.
    pub fn extension_tlvs(&self) -> Extensions<'_> {
        Extensions::new(&self.extensions)
    }

    /// The first well-formed Multi-Prefix extension
    /// ([RFC 5535 §5](https://www.rfc-editor.org/rfc/rfc5535#section-5)), if any. The scan stops
    /// at the first malformed TLV.
    pub fn multi_prefix(&self) -> Option<MultiPrefix> {
        MultiPrefix::find(&self.extensions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::RFC3972_PDS;

    #[test]
    fn deconstruct_rfc3972_example() {
        let view = CgaParamsView::new_checked(&RFC3972_PDS[..]).unwrap();
        assert_eq!(view.modifier()[..4], [0x89, 0xa8, 0xa8, 0xb2]);
        assert_eq!(view.modifier()[15], 0x9b);
        assert_eq!(view.subnet_prefix(), [0xfe, 0x80, 0, 0, 0, 0, 0, 0]);
        assert_eq!(view.collision_count(), 0);
        assert_eq!(view.public_key().len(), 94);
        assert_eq!(view.public_key()[..2], [0x30, 0x5c]);
        assert!(view.extensions().is_empty());
        let repr = CgaParameters::parse(&RFC3972_PDS).unwrap();
        assert_eq!(repr.public_key, &RFC3972_PDS[25..]);
        assert_eq!(repr.to_bytes(), RFC3972_PDS);
        assert_eq!(repr.buffer_len(), 119);
        assert_eq!(repr.multi_prefix(), None);
    }

    #[test]
    fn construct_with_emit() {
        let repr = CgaParameters::parse(&RFC3972_PDS).unwrap();
        let mut buf = [0xa5; 125];
        assert_eq!(repr.emit(&mut buf).unwrap(), 119);
        assert_eq!(buf[..119], RFC3972_PDS);
        assert_eq!(buf[119..], [0xa5; 6], "nothing written past buffer_len");
        assert!(matches!(
            repr.emit(&mut buf[..118]),
            Err(CgaError::Truncated)
        ));
    }

    #[test]
    fn trailing_bytes_become_extensions() {
        let mut bytes = RFC3972_PDS.to_vec();
        bytes.extend_from_slice(&[0xff, 0xfd, 0, 1, 0xaa]);
        let repr = CgaParameters::parse(&bytes).unwrap();
        assert_eq!(repr.public_key.len(), 94);
        assert_eq!(repr.extensions, [0xff, 0xfd, 0, 1, 0xaa]);
        assert_eq!(repr.to_bytes(), bytes);
    }

    #[test]
    fn setters_write_in_place() {
        let mut buf = RFC3972_PDS;
        let mut view = CgaParamsView::new_checked(&mut buf[..]).unwrap();
        view.set_modifier([0x11; 16]);
        view.set_subnet_prefix([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1]);
        view.set_collision_count(2);
        assert_eq!(view.modifier(), [0x11; 16]);
        assert_eq!(view.subnet_prefix(), [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1]);
        assert_eq!(view.collision_count(), 2);
        assert_eq!(buf[..16], [0x11; 16]);
        assert_eq!(buf[24], 2);
        assert_eq!(buf[25..], RFC3972_PDS[25..]);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_sequence_len(&[0x30, 0x05]).unwrap(), 7);
        assert_eq!(der_sequence_len(&[0x30, 0x81, 0x9f]).unwrap(), 0x9f + 3);
        assert_eq!(
            der_sequence_len(&[0x30, 0x82, 0x01, 0x22]).unwrap(),
            0x122 + 4
        );
        assert!(matches!(
            der_sequence_len(&[0x30, 0x80]),
            Err(CgaError::MalformedKey)
        ));
        assert!(matches!(
            der_sequence_len(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(CgaError::MalformedKey)
        ));
        assert!(matches!(
            der_sequence_len(&[0x31, 0x05]),
            Err(CgaError::MalformedKey)
        ));
        assert!(matches!(
            der_sequence_len(&[0x30, 0x82, 0x01]),
            Err(CgaError::Truncated)
        ));
        assert!(matches!(
            der_sequence_len(&[0x30]),
            Err(CgaError::Truncated)
        ));
    }

    #[test]
    fn truncated_or_bad_key_rejected() {
        for len in 0..RFC3972_PDS.len() {
            assert!(
                matches!(
                    CgaParameters::parse(&RFC3972_PDS[..len]),
                    Err(CgaError::Truncated)
                ),
                "length {len}"
            );
        }
        let mut bad = RFC3972_PDS;
        bad[25] = 0x31;
        assert!(matches!(
            CgaParameters::parse(&bad),
            Err(CgaError::MalformedKey)
        ));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// A DER-ish SEQUENCE of the given content length, in the short or long form.
        fn der_blob() -> impl Strategy<Value = Vec<u8>> {
            prop::collection::vec(any::<u8>(), 0..600).prop_map(|content| {
                let mut out = vec![0x30];
                let len = content.len();
                if len < 0x80 {
                    out.push(len as u8);
                } else if len < 0x100 {
                    out.extend_from_slice(&[0x81, len as u8]);
                } else {
                    out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
                }
                out.extend_from_slice(&content);
                out
            })
        }

        proptest! {
            #[test]
            fn parse_to_bytes_round_trip(
                modifier in any::<[u8; 16]>(),
                subnet_prefix in any::<[u8; 8]>(),
                collision_count in any::<u8>(),
                public_key in der_blob(),
                extensions in prop::collection::vec(any::<u8>(), 0..200),
            ) {
                let repr = CgaParameters { modifier, subnet_prefix, collision_count, public_key, extensions };
                let bytes = repr.to_bytes();
                prop_assert_eq!(bytes.len(), repr.buffer_len());
                let mut emitted = vec![0xa5; bytes.len()];
                prop_assert_eq!(repr.emit(&mut emitted).unwrap(), bytes.len());
                prop_assert_eq!(&emitted, &bytes);
                prop_assert_eq!(CgaParameters::parse(&bytes).unwrap(), repr);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                if let Ok(repr) = CgaParameters::parse(&bytes) {
                    prop_assert_eq!(repr.to_bytes(), bytes);
                    let _ = repr.multi_prefix();
                    let _ = repr.extension_tlvs().count();
                }
            }
        }
    }
}
