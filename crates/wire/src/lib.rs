//! SHIM6 ([RFC 5533]) and REAP ([RFC 5534]) wire formats in the style of smoltcp's `wire`
//! module: zero-copy views (`Foo<T: AsRef<[u8]>>` with `new_unchecked` / `check_len` /
//! `new_checked`) for the fast path, and `Repr` types with `parse` / `buffer_len` / `emit` for
//! the slow path.
//!
//! Contract (as in smoltcp): after `check_len` succeeds no view accessor panics; `parse`
//! never panics on any input; `emit` never panics and, when it succeeds, `parse` of its
//! output gives back the same repr. No function here panics on input bytes.
//!
//! | module | what |
//! |---|---|
//! | [`payload`] | 8-byte payload extension header (P = 1, receiver tag) |
//! | [`control`] | common control header, checksum, message types |
//! | [`message`] | every control message as [`ControlRepr`] |
//! | [`options`], [`locator_list`] | option TLVs |
//! | [`reap`] | Probe body |
//! | [`exthdr`] | IPv6 extension-header chain: find / insert / remove the Shim6 header |
//! | [`pcap`] | classic pcap capture files |
//!
//! [RFC 5533]: https://www.rfc-editor.org/rfc/rfc5533
//! [RFC 5534]: https://www.rfc-editor.org/rfc/rfc5534

pub mod checksum;
pub mod control;
pub mod error;
pub mod exthdr;
pub mod locator_list;
pub mod message;
pub mod options;
pub mod payload;
pub mod pcap;
pub mod reap;
pub mod types;

#[cfg(test)]
mod arb;

pub use control::{ControlHeader, MessageType, CONTROL_HEADER_MIN_LEN};
pub use error::WireError;
pub use exthdr::{
    find_shim6, insert_payload_header, payload_insert_point, remove_payload_header, ShimLocation,
};
pub use locator_list::{LocatorList, LocatorPreferences, PreferenceElement, VerificationMethod};
pub use message::{first_unrecognised_critical_option, ControlRepr, ErrorCode, MessageBody};
pub use options::{ShimOption, ShimOptionIter, ShimOptionView};
pub use payload::{PayloadHeader, PayloadRepr, PAYLOAD_HEADER_LEN};
pub use reap::{ProbeReport, ProbeRepr, ReapState};
pub use types::{
    ContextTag, Locator, LocatorPair, Nonce, Ulid, MAX_CONTROL_MESSAGE, MAX_CONTROL_PACKET,
    NO_NEXT_HEADER, SHIM6_NEXT_HEADER,
};
