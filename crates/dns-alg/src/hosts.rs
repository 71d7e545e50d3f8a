//! The site's own hosts: name → CMULA (their ULID). The ALG answers these itself, so inside
//! hosts reach each other by ULID and never see a provider-dependent locator.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use hickory_proto::rr::Name;
use wire::Ulid;

use crate::DnsAlgError;

/// Name → ULIDs of the site's hosts, and the reverse map for PTR queries.
#[derive(Debug, Clone, Default)]
pub struct HostTable {
    by_name: HashMap<Name, Vec<Ulid>>,
    by_ulid: HashMap<Ulid, Name>,
}

impl HostTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `ulid` to `name` (absolute; a missing final dot is implied). The ULID must be a
    /// unique local address (fc00::/7, [RFC 4193 §3.1](https://www.rfc-editor.org/rfc/rfc4193#section-3.1)):
    /// a CMULA is an identifier, never routed.
    pub fn insert(&mut self, name: &str, ulid: Ulid) -> Result<(), DnsAlgError> {
        if ulid.0.octets()[0] & 0xfe != 0xfc {
            return Err(DnsAlgError::BadConfig {
                field: "hosts",
                reason: "a host ULID must be a CMULA/ULA (fc00::/7)",
            });
        }
        let name = parse_fqdn(name)?;
        let list = self.by_name.entry(name.clone()).or_default();
        if !list.contains(&ulid) {
            list.push(ulid);
        }
        self.by_ulid.entry(ulid).or_insert(name);
        Ok(())
    }

    /// Parses a hosts file in the `/etc/hosts` layout: `ADDRESS NAME [NAME ...]` per line,
    /// `#` starts a comment. Every address must be a CMULA.
    pub fn parse(text: &str) -> Result<Self, DnsAlgError> {
        let mut t = Self::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: String| DnsAlgError::Parse {
                line: i + 1,
                reason,
            };
            let mut words = line.split_whitespace();
            let addr = words.next().unwrap_or("");
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| err(format!("`{addr}` is not an IPv6 address")))?;
            let mut any = false;
            for name in words {
                t.insert(name, Ulid(addr))
                    .map_err(|e| err(format!("{e}")))?;
                any = true;
            }
            if !any {
                return Err(err("an address without a name".into()));
            }
        }
        Ok(t)
    }

    /// The ULIDs of `name` (compared case-insensitively, as DNS names are).
    pub fn lookup(&self, name: &Name) -> Option<&[Ulid]> {
        self.by_name.get(name).map(Vec::as_slice)
    }

    /// The name whose ULID has the reverse name `name` (`…ip6.arpa.`).
    pub fn lookup_reverse(&self, name: &Name) -> Option<&Name> {
        let ulid = ulid_of_reverse_name(name)?;
        self.by_ulid.get(&ulid)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Parses an absolute domain name; a missing final dot is implied.
pub(crate) fn parse_fqdn(s: &str) -> Result<Name, DnsAlgError> {
    let mut name = Name::from_ascii(s).map_err(|_| DnsAlgError::BadName(s.to_owned()))?;
    if name.is_root() {
        return Err(DnsAlgError::BadName(s.to_owned()));
    }
    name.set_fqdn(true);
    Ok(name)
}

/// The `ip6.arpa.` name of an address: 32 nibble labels, least significant first
/// ([RFC 3596 §2.5](https://www.rfc-editor.org/rfc/rfc3596#section-2.5)).
pub fn reverse_name(addr: Ipv6Addr) -> Name {
    Name::from(addr)
}

/// The address a full 32-nibble `ip6.arpa.` name stands for; `None` for anything else.
pub(crate) fn ulid_of_reverse_name(name: &Name) -> Option<Ulid> {
    let labels: Vec<&[u8]> = name.iter().collect();
    if labels.len() != 34 {
        return None;
    }
    let (nibbles, tail) = labels.split_at(32);
    if !tail[0].eq_ignore_ascii_case(b"ip6") || !tail[1].eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, label) in nibbles.iter().enumerate() {
        let [c] = label else { return None };
        let v = char::from(*c).to_digit(16)?;
        // Label 0 is the last nibble of the address.
        let pos = 31 - i;
        let byte = bytes.get_mut(pos / 2)?;
        // `v` < 16 by `to_digit(16)`.
        let v = u8::try_from(v).ok()?;
        *byte |= if pos % 2 == 0 { v << 4 } else { v };
    }
    Some(Ulid(Ipv6Addr::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_round_trip() {
        // spec/addressing-dns.md §4.2 worked example.
        let a: Ipv6Addr = "fc00::1:34bd:84c2:3689:9c47".parse().unwrap();
        let n = reverse_name(a);
        assert_eq!(
            n.to_ascii(),
            "7.4.c.9.9.8.6.3.2.c.4.8.d.b.4.3.1.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.ip6.arpa."
        );
        assert_eq!(ulid_of_reverse_name(&n), Some(Ulid(a)));
        let upper = Name::from_ascii(n.to_ascii().to_uppercase()).unwrap();
        assert_eq!(ulid_of_reverse_name(&upper), Some(Ulid(a)));
        assert_eq!(
            ulid_of_reverse_name(&Name::from_ascii("1.0.ip6.arpa.").unwrap()),
            None
        );
        let bad = Name::from_ascii(n.to_ascii().replacen('7', "x", 1)).unwrap();
        assert_eq!(ulid_of_reverse_name(&bad), None);
    }

    #[test]
    fn hosts_file() {
        let t = HostTable::parse(
            "# site hosts\nfc00::1:2  www.site.test mail.site.test\n\nfc00::1:3 db # comment\n",
        )
        .unwrap();
        let www = Name::from_ascii("WWW.Site.Test.").unwrap();
        assert_eq!(
            t.lookup(&www),
            Some(&[Ulid("fc00::1:2".parse().unwrap())][..])
        );
        assert!(t.lookup(&Name::from_ascii("db.").unwrap()).is_some());
        let rev = reverse_name("fc00::1:3".parse().unwrap());
        assert_eq!(
            t.lookup_reverse(&rev).map(Name::to_ascii).as_deref(),
            Some("db.")
        );
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn hosts_file_errors_name_the_line() {
        let e = HostTable::parse("fc00::1 a\n2001:db8::1 b\n").unwrap_err();
        assert!(matches!(e, DnsAlgError::Parse { line: 2, .. }), "{e}");
        let e = HostTable::parse("fc00::1\n").unwrap_err();
        assert!(matches!(e, DnsAlgError::Parse { line: 1, .. }));
        let e = HostTable::parse("nope x\n").unwrap_err();
        assert!(matches!(e, DnsAlgError::Parse { line: 1, .. }));
    }
}
