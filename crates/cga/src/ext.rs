//! CGA extension fields: the generic TLV format
//! ([RFC 4581 §2](https://www.rfc-editor.org/rfc/rfc4581#section-2)) and the Multi-Prefix
//! extension ([RFC 5535 §5](https://www.rfc-editor.org/rfc/rfc5535#section-5)).

use crate::CgaError;

/// Extension Type of the Multi-Prefix extension (IANA, [RFC 5535 §10](https://www.rfc-editor.org/rfc/rfc5535#section-10)).
pub const MULTI_PREFIX_TYPE: u16 = 0x0012;

/// Length of the TLV header (type + data length).
const TLV_HEADER_LEN: usize = 4;

/// Most prefixes a Multi-Prefix extension can hold: its 16-bit length counts 4 + 8·n bytes.
pub const MAX_PREFIXES: usize = (u16::MAX as usize - 4) / 8;

/// The P flag: bit 7 of the first data byte (RFC 5535 §5).
const P_FLAG: u8 = 0x80;

/// One extension TLV: Extension Type, then `data.len()` bytes of data (RFC 4581 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Extension Type.
    pub ext_type: u16,
    /// Extension data (the Extension Data Length counts these bytes).
    pub data: &'a [u8],
}

/// Iterator over the extension TLVs of a PDS. Yields `Err(MalformedExtension)` once, then
/// stops, when a TLV header or its data runs past the end.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    rest: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Iterates the TLVs in `bytes` (the Extension Fields of a PDS).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, CgaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = match self.rest {
            [t0, t1, l0, l1, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                tail.get(..len).map(|data| {
                    let ext = Extension {
                        ext_type: u16::from_be_bytes([*t0, *t1]),
                        data,
                    };
                    (ext, &tail[len..])
                })
            }
            _ => None,
        };
        match parsed {
            Some((ext, rest)) => {
                self.rest = rest;
                Some(Ok(ext))
            }
            None => {
                self.rest = &[];
                Some(Err(CgaError::MalformedExtension))
            }
        }
    }
}

/// Checks that `bytes` is a sequence of complete TLVs (what generation accepts as extensions).
pub fn check_extensions(bytes: &[u8]) -> Result<(), CgaError> {
    Extensions::new(bytes).try_for_each(|e| e.map(|_| ()))
}

/// The Multi-Prefix extension ([RFC 5535 §5](https://www.rfc-editor.org/rfc/rfc5535#section-5)):
/// the prefix set of an HBA set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultiPrefix {
    /// P flag: the Public Key field holds a real key (CGA-compatible set) rather than a random
    /// pseudo key (pure HBA set).
    pub public_key_flag: bool,
    /// Prefix[1..n], in order.
    pub prefixes: Vec<[u8; 8]>,
}

impl MultiPrefix {
    /// Parses the extension data (after the TLV header): P/Reserved word, then 8·n prefix bytes.
    /// The Reserved bits are ignored on receipt (RFC 5535 §5). Returns `None` unless the length
    /// is 4 + 8·n.
    pub fn parse_data(data: &[u8]) -> Option<Self> {
        let (flags, prefixes) = data.split_first_chunk::<4>()?;
        if prefixes.len() % 8 != 0 {
            return None;
        }
        let prefixes = prefixes
            .chunks_exact(8)
            .map(|c| {
                let mut p = [0; 8];
                p.copy_from_slice(c);
                p
            })
            .collect();
        Some(Self {
            public_key_flag: flags[0] & P_FLAG != 0,
            prefixes,
        })
    }

    /// The first well-formed Multi-Prefix extension among the TLVs of `extensions`.
    pub fn find(extensions: &[u8]) -> Option<Self> {
        Extensions::new(extensions)
            .map_while(Result::ok)
            .filter(|e| e.ext_type == MULTI_PREFIX_TYPE)
            .find_map(|e| Self::parse_data(e.data))
    }

    /// Whether `prefix` is one of the set's prefixes.
    pub fn contains(&self, prefix: &[u8; 8]) -> bool {
        self.prefixes.contains(prefix)
    }

    /// Encodes the whole TLV: type 0x0012, length 4 + 8·n, P flag, reserved zero, prefixes
    /// (RFC 5535 §6 step 1).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CgaError> {
        let n = self.prefixes.len();
        if n == 0 || n > MAX_PREFIXES {
            return Err(CgaError::BadPrefixCount(n));
        }
        let data_len = u16::try_from(4 + 8 * n).map_err(|_| CgaError::BadPrefixCount(n))?;
        let mut out = Vec::with_capacity(TLV_HEADER_LEN + usize::from(data_len));
        out.extend_from_slice(&MULTI_PREFIX_TYPE.to_be_bytes());
        out.extend_from_slice(&data_len.to_be_bytes());
        out.extend_from_slice(&[if self.public_key_flag { P_FLAG } else { 0 }, 0, 0, 0]);
        for p in &self.prefixes {
            out.extend_from_slice(p);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::{HBA_EXTENSION, HBA_PREFIXES};

    #[test]
    fn multi_prefix_kat() {
        let mp = MultiPrefix {
            public_key_flag: false,
            prefixes: HBA_PREFIXES.to_vec(),
        };
        assert_eq!(mp.to_bytes().unwrap(), HBA_EXTENSION);
        assert_eq!(MultiPrefix::find(&HBA_EXTENSION), Some(mp.clone()));
        let with_key = MultiPrefix {
            public_key_flag: true,
            ..mp
        };
        let bytes = with_key.to_bytes().unwrap();
        assert_eq!(bytes[4], 0x80);
        assert_eq!(bytes[..4], HBA_EXTENSION[..4]);
        assert_eq!(bytes[5..], HBA_EXTENSION[5..]);
        assert_eq!(MultiPrefix::find(&bytes), Some(with_key));
    }

    #[test]
    fn reserved_bits_ignored_and_other_tlvs_skipped() {
        let mut ext = vec![0xff, 0xfd, 0x00, 0x02, 0xaa, 0xbb];
        let mut mp = HBA_EXTENSION.to_vec();
        mp[5] = 0x7f; // reserved bits set by a sloppy sender
        ext.extend_from_slice(&mp);
        let found = MultiPrefix::find(&ext).unwrap();
        assert!(!found.public_key_flag);
        assert_eq!(found.prefixes, HBA_PREFIXES);
        let tlvs: Vec<_> = Extensions::new(&ext).collect::<Result<_, _>>().unwrap();
        assert_eq!(tlvs.len(), 2);
        assert_eq!(
            tlvs[0],
            Extension {
                ext_type: 0xfffd,
                data: &[0xaa, 0xbb]
            }
        );
        assert_eq!(tlvs[1].ext_type, MULTI_PREFIX_TYPE);
    }

    #[test]
    fn malformed_tlvs() {
        assert!(check_extensions(&[]).is_ok());
        assert!(check_extensions(&[0, 1, 0]).is_err());
        assert!(check_extensions(&[0, 1, 0, 3, 1, 2]).is_err());
        let mut it = Extensions::new(&[0, 1, 0, 0, 9]);
        assert_eq!(
            it.next().unwrap().unwrap(),
            Extension {
                ext_type: 1,
                data: &[]
            }
        );
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // A Multi-Prefix whose length is not 4 + 8n is not one.
        assert_eq!(MultiPrefix::find(&[0, 0x12, 0, 5, 0, 0, 0, 0, 1]), None);
        assert_eq!(MultiPrefix::parse_data(&[0, 0, 0]), None);
    }

    #[test]
    fn prefix_count_limits() {
        let empty = MultiPrefix {
            public_key_flag: true,
            prefixes: vec![],
        };
        assert!(matches!(empty.to_bytes(), Err(CgaError::BadPrefixCount(0))));
        let max = MultiPrefix {
            public_key_flag: true,
            prefixes: vec![[1; 8]; MAX_PREFIXES],
        };
        let bytes = max.to_bytes().unwrap();
        assert_eq!(bytes[2..4], [0xff, 0xfc]);
        assert_eq!(
            MultiPrefix::find(&bytes).unwrap().prefixes.len(),
            MAX_PREFIXES
        );
        let over = MultiPrefix {
            public_key_flag: true,
            prefixes: vec![[1; 8]; MAX_PREFIXES + 1],
        };
        assert!(matches!(over.to_bytes(), Err(CgaError::BadPrefixCount(_))));
    }
}
