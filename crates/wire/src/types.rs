//! Small value types shared by every header: tags, nonces, ULIDs, locators and constants.

use core::fmt;
use std::net::Ipv6Addr;

/// IPv6 Next Header value of every Shim6 header, payload or control ([RFC 5533 §17]).
///
/// [RFC 5533 §17]: https://www.rfc-editor.org/rfc/rfc5533#section-17
pub const SHIM6_NEXT_HEADER: u8 = 140;

/// IPv6 "No Next Header": the Next Header of every control message ([RFC 5533 §5.3]).
///
/// [RFC 5533 §5.3]: https://www.rfc-editor.org/rfc/rfc5533#section-5.3
pub const NO_NEXT_HEADER: u8 = 59;

/// Largest control packet, IPv6 header and intermediate headers included ([RFC 5533 §5.1]).
///
/// [RFC 5533 §5.1]: https://www.rfc-editor.org/rfc/rfc5533#section-5.1
pub const MAX_CONTROL_PACKET: usize = 1280;

/// Length of a bare IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;

/// Largest Shim6 control header this crate emits: [`MAX_CONTROL_PACKET`] minus a bare IPv6
/// header.
pub const MAX_CONTROL_MESSAGE: usize = MAX_CONTROL_PACKET - IPV6_HEADER_LEN;

/// A 47-bit Shim6 context tag ([RFC 5533 §5.2, §7.1]).
///
/// The value is always below 2^47; [`ContextTag::new`] rejects larger values and
/// [`ContextTag::from_wire`] masks them, so a tag can never spill into the P/R bit.
///
/// [RFC 5533 §5.2, §7.1]: https://www.rfc-editor.org/rfc/rfc5533#section-5.2
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct ContextTag(u64);

impl ContextTag {
    /// Mask of the 47 tag bits.
    pub const MASK: u64 = (1 << 47) - 1;
    /// The largest tag value.
    pub const MAX: ContextTag = ContextTag(Self::MASK);

    /// Returns `None` when `value` needs more than 47 bits.
    pub const fn new(value: u64) -> Option<Self> {
        if value > Self::MASK {
            None
        } else {
            Some(Self(value))
        }
    }

    /// Keeps the low 47 bits: use on a value read from the wire that may carry the P/R bit.
    pub const fn from_wire(value: u64) -> Self {
        Self(value & Self::MASK)
    }

    /// The tag as an integer below 2^47.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Reads the 6-byte wire form (R/P bit + 47 bits, [RFC 5533 §5.4]); the top bit is ignored.
    ///
    /// [RFC 5533 §5.4]: https://www.rfc-editor.org/rfc/rfc5533#section-5.4
    pub fn read(bytes: [u8; 6]) -> Self {
        let [a, b, c, d, e, f] = bytes;
        Self::from_wire(u64::from_be_bytes([0, 0, a, b, c, d, e, f]))
    }

    /// The 6-byte wire form with the top (R/P) bit clear.
    pub fn to_bytes(self) -> [u8; 6] {
        let [_, _, a, b, c, d, e, f] = self.0.to_be_bytes();
        [a, b, c, d, e, f]
    }
}

impl fmt::Display for ContextTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#014x}", self.0)
    }
}

impl TryFrom<u64> for ContextTag {
    type Error = crate::WireError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Self::new(value).ok_or(crate::WireError::BadTag)
    }
}

impl From<ContextTag> for u64 {
    fn from(tag: ContextTag) -> u64 {
        tag.0
    }
}

/// A 32-bit nonce: Initiator, Responder, Request or Probe nonce ([RFC 5533 §5.4–§5.11]).
///
/// [RFC 5533 §5.4–§5.11]: https://www.rfc-editor.org/rfc/rfc5533#section-5.4
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Nonce(pub u32);

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// An upper-layer identifier: the address the transport sees ([RFC 5533 §1.3]).
///
/// [RFC 5533 §1.3]: https://www.rfc-editor.org/rfc/rfc5533#section-1.3
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Ulid(pub Ipv6Addr);

/// A locator: an address routed on the wire ([RFC 5533 §1.3]).
///
/// [RFC 5533 §1.3]: https://www.rfc-editor.org/rfc/rfc5533#section-1.3
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Locator(pub Ipv6Addr);

macro_rules! addr_newtype {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl From<Ipv6Addr> for $t {
            fn from(a: Ipv6Addr) -> Self {
                Self(a)
            }
        }
        impl From<$t> for Ipv6Addr {
            fn from(a: $t) -> Ipv6Addr {
                a.0
            }
        }
        impl $t {
            /// The 16 address bytes.
            pub const fn octets(&self) -> [u8; 16] {
                self.0.octets()
            }
            /// Builds the value from 16 address bytes.
            pub const fn from_octets(b: [u8; 16]) -> Self {
                Self(Ipv6Addr::from_bits(u128::from_be_bytes(b)))
            }
        }
    };
}
addr_newtype!(Ulid);
addr_newtype!(Locator);

/// A (local, peer) locator pair, e.g. the current pair `Lp(local), Lp(peer)` of a context.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LocatorPair {
    /// Our locator (source of what we send).
    pub local: Locator,
    /// The peer's locator (destination of what we send).
    pub peer: Locator,
}

impl fmt::Display for LocatorPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.local, self.peer)
    }
}

/// Rounds `n` up to a multiple of 8 (Shim6 headers and options are 8-octet aligned).
pub(crate) const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_bounds() {
        assert_eq!(ContextTag::new(1 << 47), None);
        assert_eq!(ContextTag::new((1 << 47) - 1), Some(ContextTag::MAX));
        assert_eq!(ContextTag::from_wire(u64::MAX).get(), (1 << 47) - 1);
        assert_eq!(
            ContextTag::try_from(1u64 << 47),
            Err(crate::WireError::BadTag)
        );
    }

    #[test]
    fn tag_bytes() {
        let t = ContextTag::new(0x1234_5678_9abc).unwrap();
        assert_eq!(t.to_bytes(), [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
        // The top bit (R or P) is not part of the tag.
        assert_eq!(ContextTag::read([0x92, 0x34, 0x56, 0x78, 0x9a, 0xbc]), t);
        assert_eq!(t.to_string(), "0x123456789abc");
    }

    #[test]
    fn display_pair() {
        let p = LocatorPair {
            local: Locator("2001:db8:a::1".parse().unwrap()),
            peer: Locator("2001:db8:c::2".parse().unwrap()),
        };
        assert_eq!(p.to_string(), "2001:db8:a::1->2001:db8:c::2");
        assert_eq!(Nonce(0xa1b2c3d4).to_string(), "0xa1b2c3d4");
    }

    #[test]
    fn pad() {
        assert_eq!(pad8(0), 0);
        assert_eq!(pad8(1), 8);
        assert_eq!(pad8(8), 8);
        assert_eq!(pad8(44), 48);
    }
}
