//! The stateless responder: Responder Nonces and Responder Validators
//! ([RFC 5533 §5.15.1, §7.10.1, §7.17.1](https://www.rfc-editor.org/rfc/rfc5533#section-7.10.1)).
//!
//! Construction (ours; the RFC leaves it to the responder): time is cut into epochs of
//! `validator_lifetime`; epoch `e` has its own random 32-byte secret and the Responder Nonce
//! `base + e` (a counter, as RFC 5533 §7.10.1 suggests, from a random start). The validator is
//! `HMAC-SHA1(secret(e), nonce ‖ kind ‖ identifying data)`: for an R1 the Initiator Context
//! Tag, the I1's locators, both ULIDs and the FII; for an R1bis the offending packet's tag and
//! locators. The current and the previous epoch are accepted, so a validator lives between one
//! and two periods (≥ VALIDATOR_MIN_LIFETIME with the default period of 30 s). The Initiator
//! Nonce is deliberately left out (RFC 5533 §7.11: the I2 may carry a new one).

use std::time::{Duration, Instant};

use rand::RngCore;
use sha1::{Digest, Sha1};
use wire::{ContextTag, Locator, Nonce, Ulid};

/// Length of our validators (one SHA-1 output).
pub(crate) const VALIDATOR_LEN: usize = 20;

/// What a validator binds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValidatorInput {
    /// R1 answering an I1 (checked again on the I2).
    R1 {
        initiator_tag: ContextTag,
        /// IPv6 source of the I1 / I2 (the initiator's locator).
        src: Locator,
        /// IPv6 destination of the I1 / I2 (our locator).
        dst: Locator,
        sender: Ulid,
        receiver: Ulid,
        fii: u32,
    },
    /// R1bis answering a packet with an unknown tag (checked again on the I2bis).
    R1bis {
        packet_tag: ContextTag,
        src: Locator,
        dst: Locator,
    },
}

/// Why a validator was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValidatorError {
    /// The Responder Nonce belongs to an epoch whose secret is gone.
    Stale,
    /// Wrong length, unknown nonce or the MAC does not match.
    Mismatch,
}

#[derive(Debug)]
pub(crate) struct Validators {
    lifetime: Duration,
    start: Instant,
    epoch: u64,
    base: u32,
    current: [u8; 32],
    previous: [u8; 32],
}

impl Validators {
    pub(crate) fn new(lifetime: Duration, now: Instant, rng: &mut dyn RngCore) -> Self {
        let mut current = [0; 32];
        let mut previous = [0; 32];
        rng.fill_bytes(&mut current);
        rng.fill_bytes(&mut previous);
        Self {
            lifetime,
            start: now,
            epoch: 0,
            base: rng.next_u32(),
            current,
            previous,
        }
    }

    fn epoch_at(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.start).as_nanos();
        let period = self.lifetime.as_nanos().max(1);
        u64::try_from(nanos / period).unwrap_or(u64::MAX)
    }

    /// Rotates the secrets up to the epoch of `now` (lazily: no timer needed).
    fn refresh(&mut self, now: Instant, rng: &mut dyn RngCore) {
        let epoch = self.epoch_at(now);
        if epoch <= self.epoch {
            return;
        }
        if epoch == self.epoch + 1 {
            self.previous = self.current;
        } else {
            // Two or more periods passed: the old secrets are both dead.
            rng.fill_bytes(&mut self.previous);
        }
        rng.fill_bytes(&mut self.current);
        self.epoch = epoch;
    }

    fn nonce_of(&self, epoch: u64) -> Nonce {
        // Truncation intended: the nonce counter wraps modulo 2^32.
        Nonce(self.base.wrapping_add(epoch as u32))
    }

    /// A Responder Nonce and validator for a new R1 or R1bis.
    pub(crate) fn issue(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        input: &ValidatorInput,
    ) -> (Nonce, [u8; VALIDATOR_LEN]) {
        self.refresh(now, rng);
        let nonce = self.nonce_of(self.epoch);
        (nonce, mac(&self.current, nonce, input))
    }

    /// Checks a validator echoed in an I2 or I2bis.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        nonce: Nonce,
        validator: &[u8],
        input: &ValidatorInput,
    ) -> Result<(), ValidatorError> {
        self.refresh(now, rng);
        let age = u64::from(nonce.0.wrapping_sub(self.base)); // epoch the nonce claims
        let secret = if age == self.epoch {
            &self.current
        } else if self.epoch > 0 && age == self.epoch - 1 {
            &self.previous
        } else if age < self.epoch {
            return Err(ValidatorError::Stale);
        } else {
            return Err(ValidatorError::Mismatch);
        };
        let expected = mac(secret, nonce, input);
        if validator.len() == VALIDATOR_LEN && constant_time_eq(&expected, validator) {
            Ok(())
        } else {
            Err(ValidatorError::Mismatch)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn mac(secret: &[u8; 32], nonce: Nonce, input: &ValidatorInput) -> [u8; VALIDATOR_LEN] {
    let mut msg = Vec::with_capacity(96);
    msg.extend_from_slice(&nonce.0.to_be_bytes());
    match input {
        ValidatorInput::R1 {
            initiator_tag,
            src,
            dst,
            sender,
            receiver,
            fii,
        } => {
            msg.push(1);
            msg.extend_from_slice(&initiator_tag.to_bytes());
            msg.extend_from_slice(&src.octets());
            msg.extend_from_slice(&dst.octets());
            msg.extend_from_slice(&sender.octets());
            msg.extend_from_slice(&receiver.octets());
            msg.extend_from_slice(&fii.to_be_bytes());
        }
        ValidatorInput::R1bis {
            packet_tag,
            src,
            dst,
        } => {
            msg.push(2);
            msg.extend_from_slice(&packet_tag.to_bytes());
            msg.extend_from_slice(&src.octets());
            msg.extend_from_slice(&dst.octets());
        }
    }
    hmac_sha1(secret, &msg)
}

/// HMAC-SHA1 (RFC 2104) with a key shorter than the 64-byte block.
fn hmac_sha1(key: &[u8; 32], msg: &[u8]) -> [u8; VALIDATOR_LEN] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha1::new().chain_update(ipad).chain_update(msg).finalize();
    let outer = Sha1::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    outer.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn input(tag: u64) -> ValidatorInput {
        ValidatorInput::R1 {
            initiator_tag: ContextTag::new(tag).unwrap(),
            src: Locator("2001:db8:a::1".parse().unwrap()),
            dst: Locator("2001:db8:c::2".parse().unwrap()),
            sender: Ulid("fc00::1".parse().unwrap()),
            receiver: Ulid("fc00::2".parse().unwrap()),
            fii: 0,
        }
    }

    #[test]
    fn hmac_sha1_known_answer() {
        // RFC 2202 test case 2 uses a 4-byte key; we pad ours with zeros to 32 bytes, which is
        // the same HMAC key (keys shorter than a block are zero-padded by definition).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let out = hmac_sha1(&key, b"what do ya want for nothing?");
        let expected = [
            0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
            0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn accepted_for_current_and_previous_epoch_only() {
        let mut rng = StdRng::seed_from_u64(4);
        let t0 = Instant::now();
        let life = Duration::from_secs(30);
        let mut v = Validators::new(life, t0, &mut rng);
        let (nonce, mac) = v.issue(t0 + Duration::from_secs(29), &mut rng, &input(7));
        assert_eq!(
            v.check(
                t0 + Duration::from_secs(29),
                &mut rng,
                nonce,
                &mac,
                &input(7)
            ),
            Ok(())
        );
        // Next epoch: previous secret still accepted (VALIDATOR_MIN_LIFETIME).
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(v.check(t1, &mut rng, nonce, &mac, &input(7)), Ok(()));
        // Two epochs later the secret is gone.
        let t2 = t0 + Duration::from_secs(61);
        assert_eq!(
            v.check(t2, &mut rng, nonce, &mac, &input(7)),
            Err(ValidatorError::Stale)
        );
    }

    #[test]
    fn validator_is_bound_to_its_input_and_nonce() {
        let mut rng = StdRng::seed_from_u64(5);
        let t0 = Instant::now();
        let mut v = Validators::new(Duration::from_secs(30), t0, &mut rng);
        let (nonce, mac) = v.issue(t0, &mut rng, &input(7));
        assert_eq!(
            v.check(t0, &mut rng, nonce, &mac, &input(8)),
            Err(ValidatorError::Mismatch)
        );
        let future = Nonce(nonce.0.wrapping_add(1));
        assert_eq!(
            v.check(t0, &mut rng, future, &mac, &input(7)),
            Err(ValidatorError::Mismatch)
        );
        let mut bad = mac;
        bad[19] ^= 1;
        assert_eq!(
            v.check(t0, &mut rng, nonce, &bad, &input(7)),
            Err(ValidatorError::Mismatch)
        );
        assert_eq!(
            v.check(t0, &mut rng, nonce, &mac[..19], &input(7)),
            Err(ValidatorError::Mismatch)
        );
        let r1bis = ValidatorInput::R1bis {
            packet_tag: ContextTag::new(7).unwrap(),
            src: Locator("2001:db8:a::1".parse().unwrap()),
            dst: Locator("2001:db8:c::2".parse().unwrap()),
        };
        assert_eq!(
            v.check(t0, &mut rng, nonce, &mac, &r1bis),
            Err(ValidatorError::Mismatch)
        );
    }

    #[test]
    fn secrets_rotate_between_epochs() {
        let mut rng = StdRng::seed_from_u64(6);
        let t0 = Instant::now();
        let mut v = Validators::new(Duration::from_secs(30), t0, &mut rng);
        let (n0, m0) = v.issue(t0, &mut rng, &input(1));
        let (n1, m1) = v.issue(t0 + Duration::from_secs(31), &mut rng, &input(1));
        assert_eq!(n1.0, n0.0.wrapping_add(1));
        assert_ne!(m0, m1);
    }
}
