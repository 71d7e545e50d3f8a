//! Any bytes through the control-message parser; whatever parses must re-emit and parse back
//! to the same repr. (Under cfg(fuzzing) the wire crate accepts any checksum.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{first_unrecognised_critical_option, ControlHeader, ControlRepr};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = ControlHeader::new_checked(data) {
        let _ = (
            h.msg_type(),
            h.type_specific(),
            h.s_bit(),
            h.receiver_tag(),
            h.verify_checksum(),
        );
    }
    let _ = first_unrecognised_critical_option(data);
    if let Ok(repr) = ControlRepr::parse(data) {
        let _ = (
            repr.locator_list(),
            repr.ulid_pair(),
            repr.responder_validator(),
        );
        if let Ok(bytes) = repr.to_bytes() {
            assert_eq!(ControlRepr::parse(&bytes).as_ref(), Ok(&repr));
        }
    }
});
