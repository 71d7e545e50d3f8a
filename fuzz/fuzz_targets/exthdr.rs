//! Any bytes as an IPv6 packet through the extension-header walk, insert and remove. A packet
//! that takes a payload header gives the original bytes back when it is removed again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{
    find_shim6, insert_payload_header, payload_insert_point, remove_payload_header, ContextTag,
};

fuzz_target!(|data: &[u8]| {
    let _ = find_shim6(data);
    let _ = payload_insert_point(data);

    let tag = ContextTag::from_wire(0x1234_5678_9abc);
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(data);
    if insert_payload_header(&mut buf, tag).is_ok() {
        assert_eq!(remove_payload_header(&mut buf), Ok(tag));
        assert_eq!(&buf[8..], data);
    } else {
        assert_eq!(&buf[8..], data, "insert changed the buffer on error");
    }

    let mut raw = data.to_vec();
    if remove_payload_header(&mut raw).is_err() {
        assert_eq!(&raw[..], data, "remove changed the buffer on error");
    }
});
