//! CGA signatures for SHIM6 ([RFC 3972 §6](https://www.rfc-editor.org/rfc/rfc3972#section-6),
//! [RFC 5533 §5.15.5](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.5)): RSASSA-PKCS1-v1_5
//! with SHA-1 over `type tag ‖ Locator List Generation ‖ every locator with method CGA`.

use std::fmt;
use std::net::Ipv6Addr;

use rand_core::{CryptoRng, OsRng, RngCore};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};

use crate::{CgaError, CgaParameters};

/// The SHIM6 CGA Message Type tag (IANA "CGA Extension Type Tags",
/// [RFC 5533 §5.15.5, §17](https://www.rfc-editor.org/rfc/rfc5533#section-17)).
pub const SHIM6_TYPE_TAG: [u8; 16] = [
    0x4a, 0x30, 0x56, 0x62, 0x48, 0x58, 0x57, 0x4b, 0x36, 0x55, 0x41, 0x6f, 0x50, 0x6a, 0x6d, 0x48,
];

/// Smallest RSA modulus accepted for SHIM6 CGAs
/// ([RFC 5533 §16](https://www.rfc-editor.org/rfc/rfc5533#section-16)).
pub const MIN_RSA_BITS: usize = 1024;
/// Largest RSA modulus accepted: the `rsa` crate's public-key limit, which bounds verification cost.
pub const MAX_RSA_BITS: usize = RsaPublicKey::MAX_SIZE;

/// The bytes a SHIM6 CGA signature covers (RFC 5533 §5.15.5): the type tag, the Locator List
/// Generation (big-endian), then each locator with Verification Method CGA, in list order.
pub fn shim6_signed_data(generation: u32, cga_locators: &[Ipv6Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + 16 * cga_locators.len());
    out.extend_from_slice(&SHIM6_TYPE_TAG);
    out.extend_from_slice(&generation.to_be_bytes());
    cga_locators
        .iter()
        .for_each(|l| out.extend_from_slice(&l.octets()));
    out
}

/// SHA-1 of [`shim6_signed_data`], computed without building it.
fn shim6_digest(generation: u32, cga_locators: &[Ipv6Addr]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(SHIM6_TYPE_TAG);
    h.update(generation.to_be_bytes());
    cga_locators.iter().for_each(|l| h.update(l.octets()));
    h.finalize().into()
}

/// PKCS#1 v1.5 with the SHA-1 DigestInfo prefix, as OpenSSL's `EVP_sha1` signing (RFC 3972 §6).
fn scheme() -> Pkcs1v15Sign {
    Pkcs1v15Sign::new::<Sha1>()
}

fn check_bits(bits: usize) -> Result<(), CgaError> {
    if bits < MIN_RSA_BITS {
        Err(CgaError::KeyTooSmall { bits })
    } else if bits > MAX_RSA_BITS {
        Err(CgaError::KeyTooLarge { bits })
    } else {
        Ok(())
    }
}

/// The site's RSA key pair: signs the locator lists of every host's CGA
/// ([RFC 3972 §6](https://www.rfc-editor.org/rfc/rfc3972#section-6)). Use it only for signing,
/// never for encryption (RFC 3972 §7.4).
#[derive(Clone)]
pub struct SiteKey {
    private: RsaPrivateKey,
    /// DER SubjectPublicKeyInfo, computed once: it goes into every PDS.
    public_der: Vec<u8>,
}

impl SiteKey {
    fn from_private(private: RsaPrivateKey) -> Result<Self, CgaError> {
        check_bits(private.n().bits())?;
        let public_der = private
            .to_public_key()
            .to_public_key_der()
            .map_err(CgaError::InvalidPublicKey)?
            .into_vec();
        Ok(Self {
            private,
            public_der,
        })
    }

    /// Generates a key pair of `bits` bits (1024..=4096; 2048 recommended).
    pub fn generate(bits: usize, rng: &mut (impl RngCore + CryptoRng)) -> Result<Self, CgaError> {
        check_bits(bits)?;
        Self::from_private(RsaPrivateKey::new(rng, bits).map_err(CgaError::Rsa)?)
    }

    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`). Keys under 1024 bits are
    /// refused (RFC 5533 §16).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, CgaError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(CgaError::InvalidPrivateKey)?;
        private.validate().map_err(CgaError::Rsa)?;
        Self::from_private(private)
    }

    /// Encodes the private key as PKCS#8 PEM (LF line endings).
    pub fn to_pkcs8_pem(&self) -> Result<String, CgaError> {
        let pem = self
            .private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(CgaError::InvalidPrivateKey)?;
        Ok(pem.as_str().to_owned())
    }

    /// The public key as DER SubjectPublicKeyInfo: the Public Key field of every PDS (RFC 3972 §3).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// The verifying half, ready for [`CgaPublicKey::verify_shim6`].
    pub fn public_key(&self) -> CgaPublicKey {
        CgaPublicKey {
            key: self.private.to_public_key(),
        }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.private.n().bits()
    }

    /// Signs a SHIM6 locator list ([RFC 5533 §5.15.5](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.5)):
    /// `cga_locators` are the locators with Verification Method CGA, in list order. The result
    /// is as long as the modulus. RSA blinding (OS randomness) hides the key from timing; the
    /// signature itself is deterministic.
    pub fn sign_shim6(
        &self,
        generation: u32,
        cga_locators: &[Ipv6Addr],
    ) -> Result<Vec<u8>, CgaError> {
        let digest = shim6_digest(generation, cga_locators);
        self.private
            .sign_with_rng(&mut OsRng, scheme(), &digest)
            .map_err(CgaError::Rsa)
    }
}

impl fmt::Debug for SiteKey {
    /// Never prints private material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

/// A peer's RSA public key, decoded once from the PDS so that each handshake's signature check
/// does not re-parse the DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgaPublicKey {
    key: RsaPublicKey,
}

impl CgaPublicKey {
    /// Decodes a DER RSA SubjectPublicKeyInfo (rsaEncryption, RFC 3972 §3). HBA pseudo keys and
    /// keys outside 1024..=4096 bits are refused.
    pub fn from_der(der: &[u8]) -> Result<Self, CgaError> {
        let key = RsaPublicKey::from_public_key_der(der).map_err(CgaError::InvalidPublicKey)?;
        check_bits(key.n().bits())?;
        Ok(Self { key })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// Verifies a SHIM6 CGA Signature option's contents
    /// ([RFC 5533 §5.15.5](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.5)). The caller
    /// must also have verified the peer's ULID against the PDS holding this key (RFC 3972 §6).
    pub fn verify_shim6(
        &self,
        generation: u32,
        cga_locators: &[Ipv6Addr],
        signature: &[u8],
    ) -> Result<(), CgaError> {
        let digest = shim6_digest(generation, cga_locators);
        self.key
            .verify(scheme(), &digest, signature)
            .map_err(|_| CgaError::BadSignature)
    }
}

/// Verifies a SHIM6 CGA signature with the public key of `params`
/// ([RFC 3972 §6](https://www.rfc-editor.org/rfc/rfc3972#section-6)). Only the signature: the
/// CGA check of the ULID ([`crate::verify`]) is separate. Decodes the key each call; keep a
/// [`CgaPublicKey`] per context to avoid that.
pub fn verify_shim6_signature(
    params: &CgaParameters,
    generation: u32,
    cga_locators: &[Ipv6Addr],
    signature: &[u8],
) -> Result<(), CgaError> {
    CgaPublicKey::from_der(&params.public_key)?.verify_shim6(generation, cga_locators, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::*;
    use rand::SeedableRng;

    fn locators() -> Vec<Ipv6Addr> {
        SIG_LOCATORS.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn test_key() -> SiteKey {
        SiteKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap()
    }

    #[test]
    fn test_key_loads() {
        let key = test_key();
        assert_eq!(key.bits(), 1024);
        assert_eq!(key.public_key_der(), TEST_KEY_DER);
        assert_eq!(key.public_key().bits(), 1024);
        assert_eq!(
            CgaPublicKey::from_der(&TEST_KEY_DER).unwrap(),
            key.public_key()
        );
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(
            SiteKey::from_pkcs8_pem(&pem).unwrap().public_key_der(),
            TEST_KEY_DER
        );
        assert!(!format!("{key:?}").contains("primes"));
    }

    #[test]
    fn signature_kat() {
        let locs = locators();
        assert_eq!(shim6_signed_data(SIG_GENERATION, &locs), SIG_SIGNED_DATA);
        assert_eq!(
            shim6_digest(SIG_GENERATION, &locs),
            <[u8; 20]>::from(Sha1::digest(SIG_SIGNED_DATA))
        );
        let sig = test_key().sign_shim6(SIG_GENERATION, &locs).unwrap();
        assert_eq!(sig, SIG_KAT);
        let params = CgaParameters {
            modifier: [0; 16],
            subnet_prefix: TEST_PREFIX,
            collision_count: 0,
            public_key: TEST_KEY_DER.to_vec(),
            extensions: vec![],
        };
        verify_shim6_signature(&params, SIG_GENERATION, &locs, &SIG_KAT).unwrap();
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let pk = CgaPublicKey::from_der(&TEST_KEY_DER).unwrap();
        let locs = locators();
        pk.verify_shim6(SIG_GENERATION, &locs, &SIG_KAT).unwrap();
        for i in 0..SIG_KAT.len() * 8 {
            let mut sig = SIG_KAT;
            sig[i / 8] ^= 1 << (i % 8);
            assert!(
                matches!(
                    pk.verify_shim6(SIG_GENERATION, &locs, &sig),
                    Err(CgaError::BadSignature)
                ),
                "bit {i}"
            );
        }
        for bit in 0..32 {
            let generation = SIG_GENERATION ^ (1 << bit);
            assert!(
                pk.verify_shim6(generation, &locs, &SIG_KAT).is_err(),
                "generation bit {bit}"
            );
        }
        for l in 0..locs.len() {
            for bit in 0..128 {
                let mut bad = locs.clone();
                bad[l] = Ipv6Addr::from(u128::from(bad[l]) ^ (1 << bit));
                assert!(
                    pk.verify_shim6(SIG_GENERATION, &bad, &SIG_KAT).is_err(),
                    "locator {l} bit {bit}"
                );
            }
        }
        // Order, omission and truncation matter too.
        let swapped = [locs[1], locs[0]];
        assert!(pk.verify_shim6(SIG_GENERATION, &swapped, &SIG_KAT).is_err());
        assert!(pk
            .verify_shim6(SIG_GENERATION, &locs[..1], &SIG_KAT)
            .is_err());
        assert!(pk
            .verify_shim6(SIG_GENERATION, &locs, &SIG_KAT[..127])
            .is_err());
        assert!(pk.verify_shim6(SIG_GENERATION, &locs, &[]).is_err());
    }

    #[test]
    fn round_trip_various_lists() {
        let key = test_key();
        let pk = key.public_key();
        for n in 0..4u32 {
            let locs: Vec<Ipv6Addr> = (0..n)
                .map(|i| Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1))
                .collect();
            let sig = key.sign_shim6(n, &locs).unwrap();
            assert_eq!(sig.len(), 128);
            pk.verify_shim6(n, &locs, &sig).unwrap();
        }
    }

    #[test]
    fn small_keys_rejected() {
        // The RFC 3972 Appendix A key has 512 bits: valid for SEND, not for SHIM6.
        let small = &RFC3972_PDS[25..];
        assert!(matches!(
            CgaPublicKey::from_der(small),
            Err(CgaError::KeyTooSmall { bits: 512 })
        ));
        let params = CgaParameters::parse(&RFC3972_PDS).unwrap();
        assert!(matches!(
            verify_shim6_signature(&params, 0, &[], &[0; 64]),
            Err(CgaError::KeyTooSmall { bits: 512 })
        ));
        let mut rng = rand::rngs::StdRng::from_seed([3; 32]);
        assert!(matches!(
            SiteKey::generate(512, &mut rng),
            Err(CgaError::KeyTooSmall { bits: 512 })
        ));
        assert!(matches!(
            SiteKey::generate(1023, &mut rng),
            Err(CgaError::KeyTooSmall { bits: 1023 })
        ));
        assert!(matches!(
            SiteKey::generate(8192, &mut rng),
            Err(CgaError::KeyTooLarge { bits: 8192 })
        ));
        // A 512-bit PKCS#8 key is refused on load as well.
        let small_private = RsaPrivateKey::new(&mut rng, 512).unwrap();
        let pem = small_private.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(matches!(
            SiteKey::from_pkcs8_pem(&pem),
            Err(CgaError::KeyTooSmall { bits: 512 })
        ));
    }

    #[test]
    fn garbage_keys_rejected() {
        assert!(matches!(
            SiteKey::from_pkcs8_pem("not a key"),
            Err(CgaError::InvalidPrivateKey(_))
        ));
        assert!(matches!(
            CgaPublicKey::from_der(&[0x30, 0x00]),
            Err(CgaError::InvalidPublicKey(_))
        ));
        assert!(matches!(
            CgaPublicKey::from_der(&TEST_KEY_DER[..161]),
            Err(CgaError::InvalidPublicKey(_))
        ));
        // HBA pseudo keys are not RSA keys and cannot sign.
        assert!(matches!(
            CgaPublicKey::from_der(&HBA_PDS[25..93]),
            Err(CgaError::InvalidPublicKey(_))
        ));
    }

    #[test]
    fn generated_key_signs() {
        let mut rng = rand::rngs::StdRng::from_seed([5; 32]);
        let key = SiteKey::generate(1024, &mut rng).unwrap();
        assert_eq!(key.bits(), 1024);
        let locs = locators();
        let sig = key.sign_shim6(1, &locs).unwrap();
        CgaPublicKey::from_der(key.public_key_der())
            .unwrap()
            .verify_shim6(1, &locs, &sig)
            .unwrap();
        assert!(test_key()
            .public_key()
            .verify_shim6(1, &locs, &sig)
            .is_err());
    }
}
