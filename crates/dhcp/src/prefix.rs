//! A /64 prefix: the only length that can carry a CGA interface identifier
//! ([RFC 3972 §2](https://www.rfc-editor.org/rfc/rfc3972#section-2)).

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::Deserialize;

/// A 64-bit subnet prefix, written `ADDR/64` with no bits set beyond the first 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Prefix64(pub [u8; 8]);

impl Prefix64 {
    /// The address `prefix ‖ iid`.
    pub fn with_iid(self, iid: [u8; 8]) -> Ipv6Addr {
        let mut a = [0; 16];
        a[..8].copy_from_slice(&self.0);
        a[8..].copy_from_slice(&iid);
        Ipv6Addr::from(a)
    }

    /// Whether `addr` lies inside this /64.
    pub fn contains(self, addr: Ipv6Addr) -> bool {
        addr.octets()[..8] == self.0
    }

    /// The prefix as an address with a zero interface identifier.
    pub fn network(self) -> Ipv6Addr {
        self.with_iid([0; 8])
    }
}

/// The low 64 bits of an address: its interface identifier.
pub fn interface_id(addr: Ipv6Addr) -> [u8; 8] {
    let mut iid = [0; 8];
    iid.copy_from_slice(&addr.octets()[8..]);
    iid
}

impl fmt::Display for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/64", self.network())
    }
}

impl FromStr for Prefix64 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected ADDR/64"))?;
        if len != "64" {
            return Err(format!("`{s}`: a CGA needs a /64 prefix (RFC 3972 §2)"));
        }
        let addr: Ipv6Addr = addr.parse().map_err(|e| format!("`{s}`: {e}"))?;
        if interface_id(addr) != [0; 8] {
            return Err(format!("`{s}`: host bits set below /64"));
        }
        let mut p = [0; 8];
        p.copy_from_slice(&addr.octets()[..8]);
        Ok(Self(p))
    }
}

impl TryFrom<String> for Prefix64 {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let p: Prefix64 = "fc00:1:2:3::/64".parse().unwrap();
        assert_eq!(p.0, [0xfc, 0, 0, 1, 0, 2, 0, 3]);
        assert_eq!(p.to_string(), "fc00:1:2:3::/64");
        let a = p.with_iid([0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(a, "fc00:1:2:3::9".parse::<Ipv6Addr>().unwrap());
        assert!(p.contains(a));
        assert!(!p.contains("fc00:1:2:4::9".parse().unwrap()));
        assert_eq!(interface_id(a), [0, 0, 0, 0, 0, 0, 0, 9]);
        assert!("fc00::/48".parse::<Prefix64>().is_err());
        assert!("fc00::1/64".parse::<Prefix64>().is_err());
        assert!("fc00::".parse::<Prefix64>().is_err());
    }
}
