//! Cryptographically Generated Addresses ([RFC 3972](https://www.rfc-editor.org/rfc/rfc3972),
//! with the [RFC 4581](https://www.rfc-editor.org/rfc/rfc4581) extension format and the
//! [RFC 4982](https://www.rfc-editor.org/rfc/rfc4982) Sec registry), Hash-Based Addresses
//! ([RFC 5535](https://www.rfc-editor.org/rfc/rfc5535)) and the CGA signatures SHIM6 uses
//! ([RFC 5533 §5.15.5](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.5)).
//!
//! Pure functions, no I/O. Randomness comes from the caller (`&mut impl RngCore`), except RSA
//! blinding when signing, which uses the OS generator.
//!
//! - [`generate`] / [`generate_from_modifier`]: a CGA and its [`CgaParameters`] (Sec 0..=2).
//! - [`verify`] / [`verify_bytes`]: RFC 3972 §5 for Sec 0..=7.
//! - [`SiteKey::sign_shim6`], [`CgaPublicKey::verify_shim6`], [`verify_shim6_signature`].
//! - [`hba::generate_set`], [`hba::verify_member`].

mod address;
mod error;
mod ext;
mod hash;
pub mod hba;
mod params;
mod sig;
#[cfg(test)]
mod vectors;

pub use address::{
    generate, generate_from_modifier, search_modifier, verify, verify_bytes, verify_view,
    MAX_COLLISION_COUNT,
};
pub use error::CgaError;
pub use ext::{
    check_extensions, Extension, Extensions, MultiPrefix, MAX_PREFIXES, MULTI_PREFIX_TYPE,
};
pub use params::{der_sequence_len, CgaParameters, CgaParamsView, FIXED_LEN};
pub use sig::{
    shim6_signed_data, verify_shim6_signature, CgaPublicKey, SiteKey, MAX_RSA_BITS, MIN_RSA_BITS,
    SHIM6_TYPE_TAG,
};
