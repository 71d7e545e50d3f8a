//! Offsets of options inside a raw control message, for the Pointer field of the Error
//! messages we send ([RFC 5533 §5.14](https://www.rfc-editor.org/rfc/rfc5533#section-5.14)):
//! the parsed `ControlRepr` does not keep where each option was.

/// Option type codes ([RFC 5533 §5.15](https://www.rfc-editor.org/rfc/rfc5533#section-5.15)).
pub(crate) const OPT_LOCATOR_LIST: u16 = 2;
pub(crate) const OPT_LOCATOR_PREFERENCES: u16 = 3;

/// Where the options of a message type start (the fixed part of each message, §5.4–§5.11).
fn options_start(msg_type: u8) -> Option<usize> {
    match msg_type {
        1 | 2 | 4 | 5 | 64 | 65 | 66 => Some(16),
        3 => Some(24),
        6 => Some(32),
        _ => None,
    }
}

/// Offset (from the first byte of the Shim6 header) of the first option of type `kind`.
pub(crate) fn find_option(msg: &[u8], kind: u16) -> Option<usize> {
    let msg_type = msg.get(2)? & 0x7f;
    let total = (usize::from(*msg.get(1)?) + 1) * 8;
    let end = total.min(msg.len());
    let mut off = options_start(msg_type)?;
    while off.checked_add(4)? <= end {
        let word = u16::from_be_bytes([*msg.get(off)?, *msg.get(off + 1)?]);
        let len = usize::from(u16::from_be_bytes([*msg.get(off + 2)?, *msg.get(off + 3)?]));
        if word >> 1 == kind {
            return Some(off);
        }
        // Total option size: 4-byte header + contents, padded to 8.
        let size = (4 + len + 7) & !7;
        off = off.checked_add(size)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_second_option_of_an_update_request() {
        // UR header (16 bytes) + Locator List with 2 locators (48 bytes) + Locator Preferences
        // (gen 7, elen 1, 2 elements: 4 + 7 → 16 bytes).
        let mut m = vec![0x3b, 9, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
        m.extend_from_slice(&[0x00, 0x04, 0x00, 0x2c, 0, 0, 0, 7, 2, 2, 2, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&[0; 32]);
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x07, 0, 0, 0, 7, 1, 1, 0, 0, 0, 0, 0, 0]);
        m[1] = u8::try_from(m.len() / 8 - 1).unwrap();
        assert_eq!(find_option(&m, OPT_LOCATOR_LIST), Some(16));
        assert_eq!(find_option(&m, OPT_LOCATOR_PREFERENCES), Some(64));
        assert_eq!(find_option(&m, 4), None);
        // Truncated input never panics.
        for cut in 0..m.len() {
            let _ = find_option(&m[..cut], OPT_LOCATOR_PREFERENCES);
        }
    }
}
