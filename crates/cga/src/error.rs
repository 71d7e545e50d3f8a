//! The crate's single error type.

/// Why a CGA/HBA operation failed.
///
/// Verification variants follow the step of
/// [RFC 3972 §5](https://www.rfc-editor.org/rfc/rfc3972#section-5) (and
/// [RFC 5535 §7.2](https://www.rfc-editor.org/rfc/rfc5535#section-7.2)) that rejected the input;
/// verification stops at the first failing step, so only that one is reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgaError {
    /// The CGA Parameters are shorter than their fixed part plus the DER key they announce.
    #[error("CGA parameters truncated")]
    Truncated,
    /// The Public Key field is not a DER SEQUENCE with a definite length (RFC 3972 §3).
    #[error("public key field is not a DER SEQUENCE")]
    MalformedKey,
    /// Extension fields are not a sequence of RFC 4581 TLVs (only checked when generating).
    #[error("extension fields are not well-formed RFC 4581 TLVs")]
    MalformedExtension,
    /// Collision Count outside 0..=2 (RFC 3972 §3, §5 step 1).
    #[error("collision count {0} is not 0, 1 or 2")]
    BadCollisionCount(u8),
    /// The Subnet Prefix field differs from the address prefix (RFC 3972 §5 step 2).
    #[error("subnet prefix does not match the address")]
    PrefixMismatch,
    /// Hash1 differs from the interface identifier (RFC 3972 §5 step 4).
    #[error("Hash1 does not match the interface identifier")]
    Hash1Mismatch,
    /// Hash2 does not start with 16·Sec zero bits (RFC 3972 §5 step 7).
    #[error("Hash2 does not have the 16*{sec} leading zero bits that Sec {sec} requires")]
    Hash2Mismatch {
        /// The Sec value read from the address.
        sec: u8,
    },
    /// A Sec value this operation does not support: generation and HBA handle 0..=2
    /// ([RFC 5535 §6](https://www.rfc-editor.org/rfc/rfc5535#section-6), RFC 4982 registry),
    /// CGA verification 0..=7.
    #[error("unsupported Sec value {0}")]
    UnsupportedSec(u8),
    /// The parameters carry no (well-formed) Multi-Prefix extension (RFC 5535 §7.2 step 1).
    #[error("no Multi-Prefix extension in the CGA parameters")]
    NoMultiPrefix,
    /// The locator's prefix is not in the Multi-Prefix set (RFC 5535 §7.2 step 1).
    #[error("prefix is not part of the HBA set")]
    NotInPrefixSet,
    /// An HBA set needs between 1 and 8191 prefixes (the extension length is 16 bits).
    #[error("an HBA set needs 1 to 8191 prefixes, got {0}")]
    BadPrefixCount(usize),
    /// The same prefix appears twice in an HBA set request.
    #[error("duplicate prefix in the HBA set")]
    DuplicatePrefix,
    /// RSA keys for SHIM6 CGAs must have at least 1024 bits
    /// ([RFC 5533 §16](https://www.rfc-editor.org/rfc/rfc5533#section-16)).
    #[error("RSA key of {bits} bits is too small (minimum 1024)")]
    KeyTooSmall {
        /// Modulus size of the offered key.
        bits: usize,
    },
    /// RSA keys above 4096 bits are refused: they only add verification cost.
    #[error("RSA key of {bits} bits is too large (maximum 4096)")]
    KeyTooLarge {
        /// Modulus size of the offered key.
        bits: usize,
    },
    /// The public key is not a DER RSA SubjectPublicKeyInfo the verifier can use.
    #[error("invalid RSA public key: {0}")]
    InvalidPublicKey(#[source] rsa::pkcs8::spki::Error),
    /// The private key PEM could not be decoded or encoded.
    #[error("invalid PKCS#8 private key: {0}")]
    InvalidPrivateKey(#[source] rsa::pkcs8::Error),
    /// The RSA operation (key generation, signing) failed.
    #[error("RSA operation failed: {0}")]
    Rsa(#[source] rsa::Error),
    /// The CGA signature does not verify (RFC 3972 §6).
    #[error("CGA signature does not verify")]
    BadSignature,
}
