//! The server's own DUID ([RFC 8415 §11](https://www.rfc-editor.org/rfc/rfc8415#section-11)),
//! made once and kept in the binding store so clients see the same server after a restart.

use rand::RngCore;

/// Seconds from the Unix epoch to 2000-01-01 00:00 UTC, the DUID-LLT time origin
/// ([RFC 8415 §11.2](https://www.rfc-editor.org/rfc/rfc8415#section-11.2)).
pub const DUID_TIME_EPOCH: u64 = 946_684_800;

/// How to make the server DUID when the store has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerIdentity {
    /// DUID-LLT from this Ethernet address (RFC 8415 §11.2): needs stable storage, which the
    /// store is.
    LinkLayerTime([u8; 6]),
    /// DUID-UUID with a random (version 4) UUID ([RFC 6355](https://www.rfc-editor.org/rfc/rfc6355)).
    Uuid,
}

/// DUID-LLT: type 1, hardware type 1 (Ethernet), time since 2000 mod 2^32, the address.
pub fn duid_llt(mac: [u8; 6], unix_secs: u64) -> Vec<u8> {
    let t = (unix_secs.saturating_sub(DUID_TIME_EPOCH) & 0xffff_ffff) as u32;
    let mut d = vec![0, 1, 0, 1];
    d.extend_from_slice(&t.to_be_bytes());
    d.extend_from_slice(&mac);
    d
}

/// DUID-UUID: type 4 and a version-4 UUID from `rng`.
pub fn duid_uuid(rng: &mut impl RngCore) -> Vec<u8> {
    let mut u = [0u8; 16];
    rng.fill_bytes(&mut u);
    u[6] = (u[6] & 0x0f) | 0x40; // version 4
    u[8] = (u[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut d = vec![0, 4];
    d.extend_from_slice(&u);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn llt_layout() {
        // 2000-01-01 + 0x01020304 s.
        let d = duid_llt([2, 0, 0, 0, 0, 1], DUID_TIME_EPOCH + 0x0102_0304);
        assert_eq!(d, [0, 1, 0, 1, 1, 2, 3, 4, 2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn uuid_layout() {
        let d = duid_uuid(&mut StdRng::seed_from_u64(1));
        assert_eq!(d.len(), 18);
        assert_eq!(&d[..2], &[0, 4]);
        assert_eq!(d[8] >> 4, 4);
        assert_eq!(d[10] >> 6, 0b10);
    }
}
