//! Locator List ([RFC 5533 §5.15.2]) and Locator Preferences ([RFC 5533 §5.15.3]) option
//! contents.
//!
//! [RFC 5533 §5.15.2]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.2
//! [RFC 5533 §5.15.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3

use crate::{Locator, WireError};

/// Locator verification method ([RFC 5533 §5.15.2 Table 4]).
///
/// Table 4 says 1 = HBA, 2 = CGA; the IANA section (§17) of the same RFC swaps them. LinShim6
/// and Wireshark follow Table 4 and so do we (spec `shim6.md` §8.4). These two constants are
/// the only place that decides.
///
/// [RFC 5533 §5.15.2 Table 4]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.2
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VerificationMethod {
    /// 1: Hash-Based Address ([RFC 5535](https://www.rfc-editor.org/rfc/rfc5535)).
    Hba,
    /// 2: Cryptographically Generated Address, authorised by a CGA Signature option.
    Cga,
    /// Any other value (0 and 255 reserved, 3–254 unassigned or experimental).
    Unknown(u8),
}

impl VerificationMethod {
    /// Wire value of [`VerificationMethod::Hba`].
    pub const HBA: u8 = 1;
    /// Wire value of [`VerificationMethod::Cga`].
    pub const CGA: u8 = 2;
}

impl From<u8> for VerificationMethod {
    fn from(v: u8) -> Self {
        match v {
            Self::HBA => Self::Hba,
            Self::CGA => Self::Cga,
            other => Self::Unknown(other),
        }
    }
}

impl From<VerificationMethod> for u8 {
    fn from(m: VerificationMethod) -> u8 {
        match m {
            VerificationMethod::Hba => VerificationMethod::HBA,
            VerificationMethod::Cga => VerificationMethod::CGA,
            VerificationMethod::Unknown(v) => v,
        }
    }
}

/// Contents of a Locator List option ([RFC 5533 §5.15.2]).
///
/// Layout: Generation (4), Num Locators N (1), N verification methods, zero padding so that
/// the locators start 8-aligned relative to the option start (`7 - N % 8` bytes, counted in
/// Length), then N 16-byte locators.
///
/// [RFC 5533 §5.15.2]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.2
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LocatorList {
    /// Locator List Generation: the Locator Preferences option and CGA signature refer to it.
    pub generation: u32,
    /// The locators in list order (Locator Preferences index them) with their methods.
    pub entries: Vec<(Locator, VerificationMethod)>,
}

impl LocatorList {
    /// Most locators one option can carry (Num Locators is 8 bits).
    pub const MAX_LOCATORS: usize = 255;

    /// Builds a list, rejecting more than 255 entries (`TooManyLocators`) and none
    /// (`ZeroLengthOption`).
    pub fn new(
        generation: u32,
        entries: Vec<(Locator, VerificationMethod)>,
    ) -> Result<Self, WireError> {
        let l = Self {
            generation,
            entries,
        };
        l.check()?;
        Ok(l)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.entries.is_empty() {
            Err(WireError::ZeroLengthOption)
        } else if self.entries.len() > Self::MAX_LOCATORS {
            Err(WireError::TooManyLocators)
        } else {
            Ok(())
        }
    }

    /// The locators in list order.
    pub fn locators(&self) -> Vec<Locator> {
        self.entries.iter().map(|(l, _)| *l).collect()
    }

    /// The locators whose method is CGA, in list order: what the CGA Signature covers
    /// ([RFC 5533 §5.15.5]).
    ///
    /// [RFC 5533 §5.15.5]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.5
    pub fn cga_locators(&self) -> Vec<Locator> {
        self.entries
            .iter()
            .filter(|(_, m)| *m == VerificationMethod::Cga)
            .map(|(l, _)| *l)
            .collect()
    }

    /// True when `loc` is in the list.
    pub fn contains(&self, loc: Locator) -> bool {
        self.entries.iter().any(|(l, _)| *l == loc)
    }

    /// Padding between the methods and the locators for `n` locators.
    const fn inner_pad(n: usize) -> usize {
        7 - n % 8
    }

    /// Offset of the first locator inside the contents.
    const fn locators_offset(n: usize) -> usize {
        5 + n + Self::inner_pad(n)
    }

    /// Length field value (= contents length; internal padding included, no trailing padding).
    pub fn contents_len(&self) -> usize {
        let n = self.entries.len();
        Self::locators_offset(n) + 16 * n
    }

    /// Offset, inside the contents, of the Verification Method octet of locator `index`
    /// (for the Pointer of an Error code 2, [RFC 5533 §5.14]).
    ///
    /// [RFC 5533 §5.14]: https://www.rfc-editor.org/rfc/rfc5533#section-5.14
    pub const fn method_offset(index: usize) -> usize {
        5 + index
    }

    /// Parses the option contents (exactly Length bytes).
    pub fn parse_contents(data: &[u8]) -> Result<Self, WireError> {
        let (gen, rest) = data
            .split_first_chunk::<4>()
            .ok_or(WireError::BadOptionLength)?;
        let (&n, _) = rest.split_first().ok_or(WireError::BadOptionLength)?;
        let n = usize::from(n);
        if n == 0 {
            return Err(WireError::ZeroLengthOption);
        }
        let loc_off = Self::locators_offset(n);
        if data.len() != loc_off + 16 * n {
            return Err(WireError::BadOptionLength);
        }
        let methods = data.get(5..5 + n).ok_or(WireError::BadOptionLength)?;
        let locs = data.get(loc_off..).ok_or(WireError::BadOptionLength)?;
        let entries = methods
            .iter()
            .zip(locs.chunks_exact(16))
            .map(|(&m, l)| {
                let mut b = [0u8; 16];
                b.copy_from_slice(l);
                (Locator::from_octets(b), VerificationMethod::from(m))
            })
            .collect();
        Ok(Self {
            generation: u32::from_be_bytes(*gen),
            entries,
        })
    }

    /// Writes the contents into `out` (at least [`contents_len`](Self::contents_len) bytes;
    /// padding bytes are zeroed). Returns the number of bytes written.
    pub fn emit_contents(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.check()?;
        let n = self.entries.len();
        let len = self.contents_len();
        let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out.fill(0);
        out[..4].copy_from_slice(&self.generation.to_be_bytes());
        // n <= 255 was checked above.
        out[4] = n as u8;
        let loc_off = Self::locators_offset(n);
        for (i, (loc, m)) in self.entries.iter().enumerate() {
            out[5 + i] = u8::from(*m);
            let at = loc_off + 16 * i;
            out[at..at + 16].copy_from_slice(&loc.octets());
        }
        Ok(len)
    }
}

/// One Locator Preferences element ([RFC 5533 §5.15.3]).
///
/// [RFC 5533 §5.15.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PreferenceElement {
    /// Flags (every element length): [`BROKEN`](Self::BROKEN), [`TRANSIENT`](Self::TRANSIENT).
    pub flags: u8,
    /// DNS SRV-style priority, lower is preferred (element length ≥ 2; else 0).
    pub priority: u8,
    /// DNS SRV-style weight (element length ≥ 3; else 0).
    pub weight: u8,
}

impl PreferenceElement {
    /// The locator is known not to work.
    pub const BROKEN: u8 = 0x01;
    /// A less stable address (e.g. a mobility care-of address).
    pub const TRANSIENT: u8 = 0x02;

    /// True when the BROKEN flag is set.
    pub fn is_broken(&self) -> bool {
        self.flags & Self::BROKEN != 0
    }

    /// True when the TRANSIENT flag is set.
    pub fn is_transient(&self) -> bool {
        self.flags & Self::TRANSIENT != 0
    }
}

/// Contents of a Locator Preferences option ([RFC 5533 §5.15.3]): Generation (4), Element Len
/// E (1), then one E-byte element per locator of that list generation.
///
/// Elements longer than 3 bytes keep only flags/priority/weight here; the extra bytes are
/// written as zero.
///
/// [RFC 5533 §5.15.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocatorPreferences {
    /// Generation of the Locator List this applies to.
    pub generation: u32,
    /// Element Len: 1 (flags), 2 (+ priority) or 3 (+ weight); larger values are allowed.
    pub element_len: u8,
    /// Element i is for locator i of the list.
    pub elements: Vec<PreferenceElement>,
}

impl LocatorPreferences {
    /// Offset of the Element Len octet inside the contents (Pointer of an Error code 4 points
    /// at the option's Length field instead, see [RFC 5533 §10.4]).
    ///
    /// [RFC 5533 §10.4]: https://www.rfc-editor.org/rfc/rfc5533#section-10.4
    pub const ELEMENT_LEN_OFFSET: usize = 4;

    /// Length field value: `5 + N * E`.
    pub fn contents_len(&self) -> usize {
        5 + self.elements.len() * usize::from(self.element_len)
    }

    /// Parses the option contents (exactly Length bytes).
    pub fn parse_contents(data: &[u8]) -> Result<Self, WireError> {
        let (gen, rest) = data
            .split_first_chunk::<4>()
            .ok_or(WireError::BadOptionLength)?;
        let (&e, elems) = rest.split_first().ok_or(WireError::BadOptionLength)?;
        if e == 0 || elems.len() % usize::from(e) != 0 {
            return Err(WireError::BadElementLength);
        }
        let elements = elems
            .chunks_exact(usize::from(e))
            .map(|c| PreferenceElement {
                flags: c[0],
                priority: c.get(1).copied().unwrap_or(0),
                weight: c.get(2).copied().unwrap_or(0),
            })
            .collect();
        Ok(Self {
            generation: u32::from_be_bytes(*gen),
            element_len: e,
            elements,
        })
    }

    /// Writes the contents into `out`. Errors: `BadElementLength` when Element Len is 0 or
    /// too short for a non-zero priority/weight; `BufferTooSmall`.
    pub fn emit_contents(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let e = usize::from(self.element_len);
        if e == 0
            || self
                .elements
                .iter()
                .any(|el| (e < 2 && el.priority != 0) || (e < 3 && el.weight != 0))
        {
            return Err(WireError::BadElementLength);
        }
        let len = self.contents_len();
        let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out.fill(0);
        out[..4].copy_from_slice(&self.generation.to_be_bytes());
        out[4] = self.element_len;
        for (el, chunk) in self.elements.iter().zip(out[5..].chunks_exact_mut(e)) {
            let fields = [el.flags, el.priority, el.weight];
            let k = e.min(3);
            chunk[..k].copy_from_slice(&fields[..k]);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Locator {
        Locator(s.parse().unwrap())
    }

    #[test]
    fn method_codes_follow_table_4() {
        assert_eq!(VerificationMethod::from(1), VerificationMethod::Hba);
        assert_eq!(VerificationMethod::from(2), VerificationMethod::Cga);
        assert_eq!(VerificationMethod::from(0), VerificationMethod::Unknown(0));
        for v in 0..=255u8 {
            assert_eq!(u8::from(VerificationMethod::from(v)), v);
        }
    }

    #[test]
    fn inner_padding_and_length() {
        // shim6.md §8.4: N = 2 gives Length 44.
        let l = LocatorList::new(
            7,
            vec![
                (loc("2001:db8:a::1"), VerificationMethod::Cga),
                (loc("2001:db8:b::1"), VerificationMethod::Cga),
            ],
        )
        .unwrap();
        assert_eq!(l.contents_len(), 44);
        for n in 1..=255usize {
            // 4-byte option header + contents is 8-aligned, and so are the locators.
            assert_eq!((4 + LocatorList::locators_offset(n)) % 8, 0);
        }
    }

    #[test]
    fn counts() {
        assert_eq!(
            LocatorList::new(1, vec![]),
            Err(WireError::ZeroLengthOption)
        );
        let many = vec![(loc("2001:db8::1"), VerificationMethod::Hba); 256];
        assert_eq!(
            LocatorList::new(1, many.clone()),
            Err(WireError::TooManyLocators)
        );
        assert!(LocatorList::new(1, many[..255].to_vec()).is_ok());
        let l = LocatorList {
            generation: 1,
            entries: many,
        };
        let mut out = vec![0; 8000];
        assert_eq!(l.emit_contents(&mut out), Err(WireError::TooManyLocators));
    }

    #[test]
    fn helpers() {
        let l = LocatorList::new(
            3,
            vec![
                (loc("2001:db8:a::1"), VerificationMethod::Hba),
                (loc("2001:db8:b::1"), VerificationMethod::Cga),
                (loc("2001:db8:c::1"), VerificationMethod::Unknown(9)),
            ],
        )
        .unwrap();
        assert_eq!(l.locators().len(), 3);
        assert_eq!(l.cga_locators(), vec![loc("2001:db8:b::1")]);
        assert!(l.contains(loc("2001:db8:c::1")));
        assert!(!l.contains(loc("2001:db8:d::1")));
    }

    #[test]
    fn bad_contents() {
        assert_eq!(
            LocatorList::parse_contents(&[0, 0, 0, 1]),
            Err(WireError::BadOptionLength)
        );
        assert_eq!(
            LocatorList::parse_contents(&[0, 0, 0, 1, 0, 0, 0, 0]),
            Err(WireError::ZeroLengthOption)
        );
        // N = 1 needs 5 + 1 + 6 + 16 = 28 bytes.
        let mut c = vec![0u8; 28];
        c[4] = 1;
        assert!(LocatorList::parse_contents(&c).is_ok());
        assert_eq!(
            LocatorList::parse_contents(&c[..27]),
            Err(WireError::BadOptionLength)
        );
        c.push(0);
        assert_eq!(
            LocatorList::parse_contents(&c),
            Err(WireError::BadOptionLength)
        );
    }

    #[test]
    fn preferences() {
        let bytes = [0, 0, 0, 7, 3, 0x01, 10, 20, 0x02, 5, 6];
        let p = LocatorPreferences::parse_contents(&bytes).unwrap();
        assert_eq!(p.generation, 7);
        assert_eq!(p.element_len, 3);
        assert_eq!(
            p.elements,
            vec![
                PreferenceElement {
                    flags: 1,
                    priority: 10,
                    weight: 20
                },
                PreferenceElement {
                    flags: 2,
                    priority: 5,
                    weight: 6
                },
            ]
        );
        assert!(p.elements[0].is_broken() && !p.elements[0].is_transient());
        assert!(p.elements[1].is_transient());
        let mut out = [0xa5u8; 11];
        assert_eq!(p.emit_contents(&mut out), Ok(11));
        assert_eq!(out, bytes);

        // E = 1 and a longer element (E = 4) whose extra byte is dropped.
        let one = LocatorPreferences::parse_contents(&[0, 0, 0, 1, 1, 1, 0]).unwrap();
        assert_eq!(one.elements.len(), 2);
        let four = LocatorPreferences::parse_contents(&[0, 0, 0, 1, 4, 1, 2, 3, 9]).unwrap();
        assert_eq!(
            four.elements,
            vec![PreferenceElement {
                flags: 1,
                priority: 2,
                weight: 3
            }]
        );
        let mut out = [0xa5u8; 9];
        four.emit_contents(&mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 4, 1, 2, 3, 0]);

        assert_eq!(
            LocatorPreferences::parse_contents(&[0, 0, 0, 1, 0]),
            Err(WireError::BadElementLength)
        );
        assert_eq!(
            LocatorPreferences::parse_contents(&[0, 0, 0, 1, 2, 1]),
            Err(WireError::BadElementLength)
        );
        assert_eq!(
            LocatorPreferences::parse_contents(&[0, 0, 0, 1]),
            Err(WireError::BadOptionLength)
        );
        let bad = LocatorPreferences {
            generation: 1,
            element_len: 1,
            elements: vec![PreferenceElement {
                flags: 0,
                priority: 3,
                weight: 0,
            }],
        };
        assert_eq!(
            bad.emit_contents(&mut [0; 16]),
            Err(WireError::BadElementLength)
        );
    }
}
