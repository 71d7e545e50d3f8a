//! Structural check of a client message before `dhcproto` decodes it.
//!
//! `dhcproto` trusts some option lengths (a Status Code shorter than 2 bytes underflows a
//! subtraction, Vendor Class/Options shorter than 4 likewise), recurses without a depth limit
//! and stops silently at the first bad option. So every option is walked here first: lengths
//! must fit their container ([RFC 8415 §21.1](https://www.rfc-editor.org/rfc/rfc8415#section-21.1)),
//! fixed-size options must have their size, containers are checked recursively up to a small
//! depth, and nothing may trail the last option. A message that fails is discarded and counted.

/// Why a message was refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Shorter than msg-type + transaction-id.
    Short,
    /// Relay messages: this server only serves directly attached clients.
    Relay,
    /// An option header or body runs past its container.
    Truncated,
    /// An option's length is wrong for its code.
    BadLength(u16),
    /// Options nested deeper than any legitimate message.
    TooDeep,
}

/// Deepest nesting a client sends: IA_NA > IAADDR > Status Code.
const MAX_DEPTH: u8 = 3;

/// Checks a whole client/server message (RFC 8415 §8 layout).
pub(crate) fn check_message(bytes: &[u8]) -> Result<(), Malformed> {
    let msg_type = *bytes.first().ok_or(Malformed::Short)?;
    if matches!(msg_type, 12 | 13) {
        return Err(Malformed::Relay);
    }
    let opts = bytes.get(4..).ok_or(Malformed::Short)?;
    check_options(opts, 0)
}

fn check_options(mut buf: &[u8], depth: u8) -> Result<(), Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed::TooDeep);
    }
    while !buf.is_empty() {
        let head = buf.get(..4).ok_or(Malformed::Truncated)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let body = buf.get(4..4 + len).ok_or(Malformed::Truncated)?;
        check_option(code, body, depth)?;
        buf = &buf[4 + len..];
    }
    Ok(())
}

fn check_option(code: u16, body: &[u8], depth: u8) -> Result<(), Malformed> {
    let len = body.len();
    let bad = Err(Malformed::BadLength(code));
    let nested = |fixed: usize| match body.get(fixed..) {
        Some(rest) => check_options(rest, depth + 1),
        None => Err(Malformed::BadLength(code)),
    };
    match code {
        // IA_NA, IA_PD: IAID, T1, T2, options.
        3 | 25 => nested(12),
        // IA_TA: IAID, options. Vendor-specific Information: enterprise number, options.
        4 | 17 => nested(4),
        // IAADDR: address, two lifetimes, options.
        5 => nested(24),
        // IAPREFIX: two lifetimes, prefix length, prefix, options.
        26 => nested(25),
        // Relay Message: never inside a client's message.
        9 => Err(Malformed::Relay),
        // ORO, Client Architecture Type: lists of 16-bit codes.
        6 | 61 if !len.is_multiple_of(2) => bad,
        // Preference, Reconfigure Message: one byte.
        7 | 19 if len != 1 => bad,
        // Elapsed Time: two bytes.
        8 if len != 2 => bad,
        // Authentication: protocol, algorithm, RDM, replay detection.
        11 if len < 11 => bad,
        // Server Unicast: one address.
        12 if len != 16 => bad,
        // Status Code: the code, then text.
        13 if len < 2 => bad,
        // Rapid Commit, Reconfigure Accept: empty.
        14 | 20 if len != 0 => bad,
        // Vendor Class: enterprise number, then data.
        16 if len < 4 => bad,
        // DNS servers: whole addresses.
        23 if !len.is_multiple_of(16) => bad,
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(opts: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 0xaa, 0xbb, 0xcc];
        m.extend_from_slice(opts);
        m
    }

    #[test]
    fn accepts_a_plain_solicit() {
        // Client ID (DUID-LL), Elapsed Time, IA_NA with an empty body past its 12 bytes.
        let m = msg(&[
            0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 1, //
            0, 8, 0, 2, 0, 0, //
            0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(check_message(&m), Ok(()));
    }

    #[test]
    fn refusals() {
        assert_eq!(check_message(&[1, 2, 3]), Err(Malformed::Short));
        assert_eq!(check_message(&[12, 0, 0, 0]), Err(Malformed::Relay));
        assert_eq!(check_message(&msg(&[0, 1, 0])), Err(Malformed::Truncated));
        assert_eq!(
            check_message(&msg(&[0, 1, 0, 5, 1])),
            Err(Malformed::Truncated)
        );
        // Status Code of length 1: dhcproto would underflow `len - 2`.
        assert_eq!(
            check_message(&msg(&[0, 13, 0, 1, 0])),
            Err(Malformed::BadLength(13))
        );
        // The same inside an IA_NA.
        let ia = [
            0, 3, 0, 17, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0, 1, 0,
        ];
        assert_eq!(check_message(&msg(&ia)), Err(Malformed::BadLength(13)));
        assert_eq!(
            check_message(&msg(&[0, 16, 0, 2, 0, 0])),
            Err(Malformed::BadLength(16))
        );
        assert_eq!(
            check_message(&msg(&[0, 7, 0, 0])),
            Err(Malformed::BadLength(7))
        );
        assert_eq!(
            check_message(&msg(&[0, 3, 0, 4, 0, 0, 0, 1])),
            Err(Malformed::BadLength(3))
        );
        // IA_NA in IA_NA in IA_NA in IA_NA in IA_NA: too deep.
        let mut deep: Vec<u8> = Vec::new();
        for _ in 0..5 {
            let mut o = vec![0, 3];
            o.extend_from_slice(&((12 + deep.len()) as u16).to_be_bytes());
            o.extend_from_slice(&[0; 12]);
            o.extend_from_slice(&deep);
            deep = o;
        }
        assert_eq!(check_message(&msg(&deep)), Err(Malformed::TooDeep));
        // Unknown options of any length pass.
        assert_eq!(check_message(&msg(&[0xff, 0xff, 0, 3, 1, 2, 3])), Ok(()));
    }
}
