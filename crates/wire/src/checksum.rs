//! Internet checksum (RFC 1071) as used by Shim6 control messages, with no pseudo-header
//! ([RFC 5533 §5.3]).
//!
//! [RFC 5533 §5.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last byte is padded with
/// zero), folded to 16 bits.
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    (sum & 0xffff) as u16
}

/// The 16-bit one's complement of the one's-complement sum of `data`: the value to store in a
/// checksum field that was zero while summing.
pub fn checksum(data: &[u8]) -> u16 {
    !ones_complement_sum(data)
}

/// True when `data`, checksum field included, sums to 0xffff (i.e. [`checksum`] of it is 0).
pub fn verify(data: &[u8]) -> bool {
    ones_complement_sum(data) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_complement_sum(&d), 0xddf2);
        assert_eq!(checksum(&d), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(ones_complement_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn spec_i1_verifies() {
        // shim6.md §18 I1.
        let mut i1 = [
            0x3b, 0x01, 0x01, 0x00, 0x5b, 0x0e, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xa1, 0xb2,
            0xc3, 0xd4,
        ];
        assert!(verify(&i1));
        i1[4] = 0;
        i1[5] = 0;
        assert_eq!(checksum(&i1), 0x5b0e);
        i1[15] ^= 1;
        assert!(!verify(&i1));
    }
}
