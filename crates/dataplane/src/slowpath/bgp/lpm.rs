//! IPv6 prefixes and a longest-prefix-match set of them: the routes one provider announces
//! (as BIRD exported them into that provider's kernel table).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// A prefix string that does not parse or a length above 128.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv6 prefix {0:?} (want ADDR/LEN, LEN <= 128)")]
pub struct InvalidPrefix(pub String);

/// An IPv6 prefix: network bits (host bits cleared) and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Net {
    bits: u128,
    len: u8,
}

/// The network mask of a `len`-bit prefix (`len` <= 128).
fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

impl Ipv6Net {
    /// `addr/len` with the host bits cleared (the kernel keeps them cleared in routes too).
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, InvalidPrefix> {
        if len > 128 {
            return Err(InvalidPrefix(format!("{addr}/{len}")));
        }
        Ok(Self {
            bits: u128::from(addr) & mask(len),
            len,
        })
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bits)
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` is inside the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask(self.len) == self.bits
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl FromStr for Ipv6Net {
    type Err = InvalidPrefix;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPrefix(s.to_owned());
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        Self::new(addr, len).map_err(|_| bad())
    }
}

/// A set of IPv6 prefixes with longest-prefix match: one hash set per prefix length and the
/// lengths in use, so a lookup costs one hash probe per length present (BGP tables use a
/// few dozen), whatever the number of routes.
#[derive(Debug, Clone)]
pub struct PrefixSet {
    by_len: Vec<HashSet<u128>>,
    lengths: BTreeSet<u8>,
    count: usize,
}

impl Default for PrefixSet {
    fn default() -> Self {
        Self {
            by_len: vec![HashSet::new(); 129],
            lengths: BTreeSet::new(),
            count: 0,
        }
    }
}

impl PrefixSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `net`; whether it was new.
    pub fn insert(&mut self, net: Ipv6Net) -> bool {
        let Some(set) = self.by_len.get_mut(usize::from(net.len)) else {
            return false;
        };
        if !set.insert(net.bits) {
            return false;
        }
        self.lengths.insert(net.len);
        self.count += 1;
        true
    }

    /// Removes `net`; whether it was there.
    pub fn remove(&mut self, net: Ipv6Net) -> bool {
        let Some(set) = self.by_len.get_mut(usize::from(net.len)) else {
            return false;
        };
        if !set.remove(&net.bits) {
            return false;
        }
        if set.is_empty() {
            self.lengths.remove(&net.len);
        }
        self.count -= 1;
        true
    }

    /// Whether `net` itself is in the set.
    pub fn contains(&self, net: Ipv6Net) -> bool {
        self.by_len
            .get(usize::from(net.len))
            .is_some_and(|s| s.contains(&net.bits))
    }

    /// The longest prefix of the set containing `addr`.
    pub fn longest_match(&self, addr: Ipv6Addr) -> Option<Ipv6Net> {
        let a = u128::from(addr);
        self.lengths.iter().rev().find_map(|&len| {
            let bits = a & mask(len);
            self.by_len
                .get(usize::from(len))
                .filter(|s| s.contains(&bits))
                .map(|_| Ipv6Net { bits, len })
        })
    }

    /// Whether some prefix of the set contains `addr` (the provider routes it).
    pub fn covers(&self, addr: Ipv6Addr) -> bool {
        self.longest_match(addr).is_some()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every prefix.
    pub fn clear(&mut self) {
        for len in std::mem::take(&mut self.lengths) {
            if let Some(s) = self.by_len.get_mut(usize::from(len)) {
                s.clear();
            }
        }
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }
    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_masks_and_rejects() {
        assert_eq!(net("2001:db8:1:2::5/48").to_string(), "2001:db8:1::/48");
        assert_eq!(net("::/0").prefix_len(), 0);
        assert_eq!(net("2001:db8::1/128").addr(), a("2001:db8::1"));
        for bad in [
            "2001:db8::/129",
            "2001:db8::",
            "x/3",
            "2001:db8::/-1",
            "10.0.0.0/8",
        ] {
            assert!(bad.parse::<Ipv6Net>().is_err(), "{bad}");
        }
        assert!(net("2001:db8::/32").contains(a("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(a("2001:db9::1")));
    }

    /// The longest covering prefix wins; removing it falls back to the shorter one; removing
    /// the last one leaves the address uncovered.
    #[test]
    fn longest_match_and_withdraw() {
        let mut s = PrefixSet::new();
        assert!(s.insert(net("2001:db8::/32")));
        assert!(s.insert(net("2001:db8:b1::/48")));
        assert!(s.insert(net("2001:db8:b1:1::/64")));
        assert!(!s.insert(net("2001:db8:b1::/48")), "duplicate");
        assert_eq!(s.len(), 3);
        let l = a("2001:db8:b1:1::77");
        assert_eq!(s.longest_match(l), Some(net("2001:db8:b1:1::/64")));
        assert_eq!(
            s.longest_match(a("2001:db8:b1:2::1")),
            Some(net("2001:db8:b1::/48"))
        );
        assert!(s.remove(net("2001:db8:b1:1::/64")));
        assert!(!s.remove(net("2001:db8:b1:1::/64")));
        assert_eq!(s.longest_match(l), Some(net("2001:db8:b1::/48")));
        assert!(s.remove(net("2001:db8:b1::/48")));
        assert_eq!(s.longest_match(l), Some(net("2001:db8::/32")));
        assert!(s.remove(net("2001:db8::/32")));
        assert!(!s.covers(l));
        assert!(s.is_empty());
        assert!(!s.covers(a("2001:db9::1")));
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut s = PrefixSet::new();
        s.insert(net("2001:db8::1/128"));
        assert!(s.covers(a("2001:db8::1")));
        assert!(!s.covers(a("2001:db8::2")));
        s.insert(net("::/0"));
        assert_eq!(s.longest_match(a("2001:db8::2")), Some(net("::/0")));
        assert_eq!(
            s.longest_match(a("2001:db8::1")),
            Some(net("2001:db8::1/128"))
        );
        s.clear();
        assert!(s.is_empty() && !s.covers(a("2001:db8::1")));
        assert!(!s.contains(net("::/0")));
    }

    /// Against a brute-force scan over random prefixes and addresses.
    #[test]
    fn matches_a_linear_scan() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut s = PrefixSet::new();
        let mut all: Vec<Ipv6Net> = Vec::new();
        // A narrow address space so prefixes overlap.
        let addr = |rng: &mut rand::rngs::StdRng| {
            Ipv6Addr::from((0x2001_0db8_u128 << 96) | (u128::from(rng.gen::<u16>()) << 80))
        };
        for _ in 0..400 {
            let n = Ipv6Net::new(addr(&mut rng), rng.gen_range(28..=64)).unwrap();
            if rng.gen_bool(0.3) && !all.is_empty() {
                let i = rng.gen_range(0..all.len());
                let gone = all.swap_remove(i);
                assert!(s.remove(gone));
            } else if s.insert(n) {
                all.push(n);
            }
            let probe = addr(&mut rng);
            let want = all
                .iter()
                .filter(|p| p.contains(probe))
                .max_by_key(|p| p.prefix_len())
                .copied();
            assert_eq!(s.longest_match(probe), want);
            assert_eq!(s.len(), all.len());
        }
    }
}
