//! The one error type of the crate.

/// Why a buffer could not be parsed, or a `Repr` could not be emitted.
///
/// Every variant is something a caller can act on (count and drop, answer with a Shim6 Error
/// message, shrink the message). Wire errors are `Copy` and carry no strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the fixed part of the header needs.
    #[error("buffer truncated")]
    Truncated,
    /// A length field points past the end of the buffer (or is otherwise inconsistent with it).
    #[error("length field inconsistent with the buffer")]
    BadLength,
    /// The Shim6 control checksum does not verify ([RFC 5533 §5.3]).
    ///
    /// [RFC 5533 §5.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3
    #[error("bad Shim6 checksum")]
    BadChecksum,
    /// P = 1: this is a payload extension header, not a control message.
    #[error("P bit set: not a control message")]
    NotControl,
    /// P = 0: this is a control message, not a payload extension header.
    #[error("P bit clear: not a payload extension header")]
    NotPayload,
    /// S = 1: a HIP packet sharing the Shim6 header layout ([RFC 5533 §5.3]).
    ///
    /// [RFC 5533 §5.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3
    #[error("S bit set: HIP packet, not Shim6")]
    HipPacket,
    /// Hdr Ext Len is below the minimum for this message type.
    #[error("message too short for its type")]
    TooShortForType,
    /// An option (with its padding) runs past the end of the message.
    #[error("option overruns the message")]
    OptionOverrun,
    /// An option whose contents must not be empty is empty (validator, Locator List with no
    /// locators, CGA parameters, CGA signature).
    #[error("zero-length option content")]
    ZeroLengthOption,
    /// A fixed-size option (ULID Pair, Forked Instance Identifier, Keepalive Timeout) or the
    /// Locator List has a Length that does not match its contents.
    #[error("bad option length")]
    BadOptionLength,
    /// More than 255 locators in one Locator List.
    #[error("more than 255 locators")]
    TooManyLocators,
    /// Locator Preferences: Element Len 0, Length not a whole number of elements, or a
    /// field set that the element length cannot carry.
    #[error("bad Locator Preferences element length")]
    BadElementLength,
    /// The control message would exceed 1280 bytes with a bare IPv6 header ([RFC 5533 §5.1]).
    ///
    /// [RFC 5533 §5.1]: https://www.rfc-editor.org/rfc/rfc5533#section-5.1
    #[error("control message larger than 1280 bytes with the IPv6 header")]
    MessageTooLarge,
    /// A context tag value does not fit in 47 bits.
    #[error("context tag does not fit in 47 bits")]
    BadTag,
    /// The IPv6 packet carries no Shim6 header.
    #[error("no Shim6 header in the packet")]
    NoShim6Header,
    /// The IPv6 extension-header chain cannot be walked (ESP, an unknown extension header, a
    /// non-first fragment in the way).
    #[error("unsupported IPv6 extension header chain")]
    UnsupportedExtHeaderChain,
    /// The buffer handed to an emitter is shorter than `buffer_len()`.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A typed option appears in a message type that does not define it ([RFC 5533 §5.15]);
    /// on emit only (on parse such options are kept as [`ShimOption::Unknown`]).
    ///
    /// [RFC 5533 §5.15]: https://www.rfc-editor.org/rfc/rfc5533#section-5.15
    /// [`ShimOption::Unknown`]: crate::ShimOption::Unknown
    #[error("option not allowed in this message type")]
    OptionNotAllowed,
    /// A `Repr` field is out of range for its wire field (7-bit error code, 15-bit option type,
    /// an `Unknown` code point that names a known one, ...).
    #[error("field value out of range")]
    InvalidField,
    /// Probe: Psent is 0 or a report list has more than 15 entries ([RFC 5534 §5.2]).
    ///
    /// [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2
    #[error("bad probe report count")]
    BadReportCount,
    /// Not an IPv6 packet (version field is not 6).
    #[error("not an IPv6 packet")]
    NotIpv6,
    /// The IPv6 packet already carries a Shim6 header where a payload header would go.
    #[error("packet already carries a Shim6 header")]
    Shim6Present,
    /// The IPv6 Payload Length would exceed 65535 (jumbograms are not supported).
    #[error("IPv6 payload too long")]
    PayloadTooLong,
}
