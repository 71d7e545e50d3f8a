//! Any bytes through the payload-header view and repr; a parsed header re-emits identically
//! (Hdr Ext Len 0, P = 1, masked tag).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{PayloadHeader, PayloadRepr, PAYLOAD_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = PayloadHeader::new_checked(data) {
        let _ = (h.next_header(), h.p_bit(), h.context_tag(), h.hdr_ext_len());
    }
    if let Ok(repr) = PayloadRepr::parse_bytes(data) {
        let mut out = [0u8; PAYLOAD_HEADER_LEN];
        assert!(repr
            .emit(&mut PayloadHeader::new_unchecked(&mut out[..]))
            .is_ok());
        assert_eq!(&out[..], &data[..PAYLOAD_HEADER_LEN]);
        assert_eq!(PayloadRepr::parse_bytes(&out), Ok(repr));
    }
});
