//! The records a site must publish so that peers' ALGs find its hosts (`pshim6 dns zone`):
//! per host, one AAAA per locator and the ULID record, plus a PTR for each ULID. The ULID
//! record is a private-use type, written in the generic syntax of
//! [RFC 3597 §5](https://www.rfc-editor.org/rfc/rfc3597#section-5)
//! (`TYPE65280 \# 16 <hex>`), which Knot, BIND and NSD all load.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use serde::Deserialize;

use crate::config::{check_ulid_type, DEFAULT_ULID_TYPE};
use crate::hosts::{parse_fqdn, reverse_name};
use crate::DnsAlgError;

fn default_ttl() -> u32 {
    3600
}
fn default_ulid_type() -> u16 {
    DEFAULT_ULID_TYPE
}

/// The `[dns]` section of the zone configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The forward zone the hosts live in, e.g. `site.example.`.
    pub zone: String,
    /// TTL of every record (default 3600).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// RR type of the ULID record (default 65280).
    #[serde(default = "default_ulid_type")]
    pub ulid_type: u16,
    /// The hosts.
    pub hosts: Vec<ZoneHost>,
}

/// One host of the site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneHost {
    /// Name relative to the zone (`www`, `@` for the apex), or absolute (ending in `.`).
    pub name: String,
    /// The host's ULID (its CMULA, fc00::/7).
    pub ulid: Ipv6Addr,
    /// One routable locator per provider.
    pub locators: Vec<Ipv6Addr>,
}

/// Zone-file lines, split by the zone they belong in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecords {
    /// The forward zone's lines: AAAA and ULID records.
    pub forward: Vec<String>,
    /// PTR lines for the `ip6.arpa.` zone of the ULID block.
    pub reverse: Vec<String>,
}

impl ZoneRecords {
    /// Both parts as zone-file text, each under a comment saying where it goes.
    pub fn render(&self, zone: &str) -> String {
        let mut s =
            format!("; forward zone {zone}: AAAA per locator, ULID record (RFC 3597 syntax)\n");
        for l in &self.forward {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("\n; reverse (ip6.arpa.) zone of the ULID block: PTR per ULID\n");
        for l in &self.reverse {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

fn is_ula(a: &Ipv6Addr) -> bool {
    a.octets()[0] & 0xfe == 0xfc
}

/// RFC 3597 §5 generic RDATA: `\# <length> <hex>`.
pub fn generic_rdata(bytes: &[u8]) -> String {
    let mut s = format!("\\# {}", bytes.len());
    if !bytes.is_empty() {
        s.push(' ');
        for b in bytes {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}

/// Builds the records of `cfg`.
pub fn zone_records(cfg: &ZoneConfig) -> Result<ZoneRecords, DnsAlgError> {
    check_ulid_type(cfg.ulid_type)?;
    let zone = parse_fqdn(&cfg.zone)?;
    let mut out = ZoneRecords {
        forward: Vec::new(),
        reverse: Vec::new(),
    };
    for (i, h) in cfg.hosts.iter().enumerate() {
        let err = |reason: String| DnsAlgError::Parse {
            line: i + 1,
            reason,
        };
        let name = if h.name == "@" {
            zone.clone()
        } else if h.name.ends_with('.') {
            parse_fqdn(&h.name)?
        } else {
            parse_fqdn(&format!("{}.{}", h.name, zone.to_ascii()))?
        };
        if !zone.zone_of(&name) {
            return Err(err(format!("{name} is outside zone {zone}")));
        }
        if !is_ula(&h.ulid) {
            return Err(err(format!("ulid {} is not a CMULA (fc00::/7)", h.ulid)));
        }
        if h.locators.is_empty() {
            return Err(err(format!("{name} has no locator")));
        }
        if let Some(l) = h.locators.iter().find(|l| is_ula(l)) {
            return Err(err(format!("locator {l} is not routable (fc00::/7)")));
        }
        let fqdn = name.to_ascii();
        for l in &h.locators {
            out.forward.push(format!("{fqdn} {} IN AAAA {l}", cfg.ttl));
        }
        out.forward.push(format!(
            "{fqdn} {} IN TYPE{} {}",
            cfg.ttl,
            cfg.ulid_type,
            generic_rdata(&h.ulid.octets())
        ));
        out.reverse.push(format!(
            "{} {} IN PTR {fqdn}",
            reverse_name(h.ulid).to_ascii(),
            cfg.ttl
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ZoneConfig {
        ZoneConfig {
            zone: "example".into(),
            ttl: 3600,
            ulid_type: 65280,
            hosts: vec![ZoneHost {
                name: "peer".into(),
                ulid: "fc00::1:34bd:84c2:3689:9c47".parse().unwrap(),
                locators: vec![
                    "2001:db8:a::1".parse().unwrap(),
                    "2001:db8:b::1".parse().unwrap(),
                ],
            }],
        }
    }

    #[test]
    fn spec_example_line() {
        // spec/addressing-dns.md §4.1: the RFC 3597 form of the ULID record.
        let r = zone_records(&cfg()).unwrap();
        assert_eq!(
            r.forward,
            vec![
                "peer.example. 3600 IN AAAA 2001:db8:a::1",
                "peer.example. 3600 IN AAAA 2001:db8:b::1",
                "peer.example. 3600 IN TYPE65280 \\# 16 fc0000000000000134bd84c236899c47",
            ]
        );
        assert_eq!(
            r.reverse,
            vec!["7.4.c.9.9.8.6.3.2.c.4.8.d.b.4.3.1.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.ip6.arpa. 3600 IN PTR peer.example."]
        );
        let text = r.render("example.");
        assert!(text.contains("; reverse"));
        assert_eq!(generic_rdata(&[]), "\\# 0");
    }

    #[test]
    fn refusals() {
        let mut c = cfg();
        c.hosts[0].ulid = "2001:db8::1".parse().unwrap();
        assert!(zone_records(&c).is_err());
        let mut c = cfg();
        c.hosts[0].locators = vec!["fd00::1".parse().unwrap()];
        assert!(zone_records(&c).is_err());
        let mut c = cfg();
        c.hosts[0].name = "peer.other.".into();
        assert!(zone_records(&c).is_err());
        let mut c = cfg();
        c.ulid_type = 28;
        assert!(zone_records(&c).is_err());
        let mut c = cfg();
        c.hosts[0].name = "@".into();
        assert!(zone_records(&c).unwrap().forward[0].starts_with("example. "));
    }
}
