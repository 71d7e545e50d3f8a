//! The fixed 1024-bit test key (tests/data/site-key.pem), parsed once per test binary.

use std::sync::OnceLock;

use cga::SiteKey;

/// The PEM text, shared with the integration tests.
pub(crate) const PEM: &str = include_str!("../tests/data/site-key.pem");

pub(crate) fn site_key() -> &'static SiteKey {
    static KEY: OnceLock<SiteKey> = OnceLock::new();
    KEY.get_or_init(|| SiteKey::from_pkcs8_pem(PEM).expect("test key parses"))
}

pub(crate) fn public_der() -> &'static [u8] {
    site_key().public_key_der()
}
