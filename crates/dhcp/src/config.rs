//! The `[dhcp]` section of the configuration file (TOML). Issue 8 folds it into the main
//! appliance configuration; until then `pshim6 dhcp --config FILE` reads it alone.
//!
//! ```toml
//! [dhcp]
//! site_key = "site-key.pem"          # PKCS#8 PEM; relative paths are relative to this file
//! ulid_prefix = "fc00:1:2:3::/64"     # the CMULA /64 the CGAs are made under
//! pa_prefixes = ["2001:db8:a:1::/64", "2001:db8:b:1::/64"]
//! dns_servers = ["fc00:1:2:3::1"]     # option 23: the proxy's inside address
//! journal = "dhcp.journal"
//! sec = 0
//! [[dhcp.static]]
//! duid = "00:03:00:01:02:00:00:00:00:01"
//! iaid = 1
//! modifier = "000102030405060708090a0b0c0d0e0f"
//! [dhcp.ra]
//! enabled = true
//! ```

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{DhcpError, Prefix64};

/// Longest DUID: 2-byte type plus at most 128 bytes
/// ([RFC 8415 §11.1](https://www.rfc-editor.org/rfc/rfc8415#section-11.1)).
pub const MAX_DUID_LEN: usize = 130;
/// Shortest DUID: the type plus one byte.
pub const MIN_DUID_LEN: usize = 3;

/// Bytes written in hex, with or without `:` separators (`00:01:ab` or `0001ab`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HexBytes(pub Vec<u8>);

impl TryFrom<String> for HexBytes {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let compact: String = s.chars().filter(|c| *c != ':').collect();
        hex::decode(&compact)
            .map(HexBytes)
            .map_err(|e| format!("`{s}`: {e}"))
    }
}

/// The DHCPv6 server's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpConfig {
    /// The site's RSA key (PKCS#8 PEM): every CMULA is a CGA of this key.
    pub site_key: PathBuf,
    /// The site ULID /64 the CMULAs live in.
    pub ulid_prefix: Prefix64,
    /// Provider (PA) prefixes: each host gets one locator per prefix, with its CMULA's IID.
    #[serde(default)]
    pub pa_prefixes: Vec<Prefix64>,
    /// Recursive DNS servers for option 23 ([RFC 3646 §3](https://www.rfc-editor.org/rfc/rfc3646#section-3)):
    /// the proxy's inside address, where the DNS ALG listens.
    #[serde(default)]
    pub dns_servers: Vec<Ipv6Addr>,
    /// Preferred lifetime of a lease, seconds.
    #[serde(default = "defaults::preferred_lifetime")]
    pub preferred_lifetime: u32,
    /// Valid lifetime of a lease, seconds.
    #[serde(default = "defaults::valid_lifetime")]
    pub valid_lifetime: u32,
    /// T1 (renew) time; default 0.5 × preferred lifetime
    /// ([RFC 8415 §21.4](https://www.rfc-editor.org/rfc/rfc8415#section-21.4)).
    #[serde(default)]
    pub t1: Option<u32>,
    /// T2 (rebind) time; default 0.8 × preferred lifetime.
    #[serde(default)]
    pub t2: Option<u32>,
    /// CGA security parameter for new bindings (0..=2).
    #[serde(default)]
    pub sec: u8,
    /// The lease journal file.
    pub journal: PathBuf,
    /// Answer a Solicit carrying Rapid Commit with a committed Reply
    /// ([RFC 8415 §18.3.1](https://www.rfc-editor.org/rfc/rfc8415#section-18.3.1)).
    #[serde(default = "defaults::yes")]
    pub rapid_commit: bool,
    /// Preference option value in Advertise (RFC 8415 §18.3.9: defaults to 0; 255 makes a client
    /// take this server at once).
    #[serde(default)]
    pub preference: u8,
    /// Most dynamic bindings kept; past it new clients get NoAddrsAvail.
    #[serde(default = "defaults::max_bindings")]
    pub max_bindings: usize,
    /// How long an advertised (not yet requested) binding is held before it may be reclaimed.
    #[serde(default = "defaults::offer_lifetime")]
    pub offer_lifetime: u32,
    /// Per-client (per DUID) message rate limit.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Fixed bindings: a client (DUID + IAID) always gets the CGA of this modifier.
    #[serde(default, rename = "static")]
    pub static_bindings: Vec<StaticBinding>,
    /// Router Advertisements sent by the standalone server.
    #[serde(default)]
    pub ra: RaConfig,
}

/// A token bucket per client DUID.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained messages per second per client.
    #[serde(default = "defaults::rate_per_second")]
    pub per_second: f64,
    /// Burst size (bucket depth).
    #[serde(default = "defaults::rate_burst")]
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: defaults::rate_per_second(),
            burst: defaults::rate_burst(),
        }
    }
}

/// A configured binding: the address is the CGA of `modifier` (after the Sec search) and
/// `collision_count` under the ULID prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticBinding {
    /// Client DUID (hex, `:` separators allowed).
    pub duid: HexBytes,
    /// IAID of the client's IA_NA.
    pub iaid: u32,
    /// 16-byte modifier (hex): where the Sec search starts.
    pub modifier: HexBytes,
    /// CGA collision count (0..=2).
    #[serde(default)]
    pub collision_count: u8,
}

/// Router Advertisement settings ([RFC 4861 §4.2](https://www.rfc-editor.org/rfc/rfc4861#section-4.2),
/// §6.2.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaConfig {
    /// Send RAs at all (off when a site router sends them).
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// MaxRtrAdvInterval, seconds (4..=1800); periodic RAs go out between 0.75× and 1× of it.
    #[serde(default = "defaults::ra_interval")]
    pub interval: u32,
    /// Router Lifetime, seconds (0: not a default router; else interval..=9000).
    #[serde(default = "defaults::router_lifetime")]
    pub router_lifetime: u16,
    /// M flag: addresses come from DHCPv6.
    #[serde(default = "defaults::yes")]
    pub managed: bool,
    /// O flag: other configuration comes from DHCPv6.
    #[serde(default = "defaults::yes")]
    pub other: bool,
    /// Include a Prefix Information option for the ULID /64 with L = 1, A = 0 (on-link, no SLAAC).
    #[serde(default = "defaults::yes")]
    pub prefix_info: bool,
    /// Valid lifetime of the Prefix Information option, seconds.
    #[serde(default = "defaults::prefix_valid")]
    pub prefix_valid_lifetime: u32,
    /// Preferred lifetime of the Prefix Information option, seconds.
    #[serde(default = "defaults::prefix_preferred")]
    pub prefix_preferred_lifetime: u32,
    /// Include an RDNSS option ([RFC 8106](https://www.rfc-editor.org/rfc/rfc8106)) with the DNS servers.
    #[serde(default)]
    pub rdnss: bool,
    /// Cur Hop Limit advertised to hosts (0: unspecified).
    #[serde(default = "defaults::hop_limit")]
    pub hop_limit: u8,
}

impl Default for RaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: defaults::ra_interval(),
            router_lifetime: defaults::router_lifetime(),
            managed: true,
            other: true,
            prefix_info: true,
            prefix_valid_lifetime: defaults::prefix_valid(),
            prefix_preferred_lifetime: defaults::prefix_preferred(),
            rdnss: false,
            hop_limit: defaults::hop_limit(),
        }
    }
}

mod defaults {
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn preferred_lifetime() -> u32 {
        3600
    }
    pub(super) fn valid_lifetime() -> u32 {
        7200
    }
    pub(super) fn max_bindings() -> usize {
        65_536
    }
    pub(super) fn offer_lifetime() -> u32 {
        120
    }
    pub(super) fn rate_per_second() -> f64 {
        10.0
    }
    pub(super) fn rate_burst() -> u32 {
        30
    }
    pub(super) fn ra_interval() -> u32 {
        200
    }
    pub(super) fn router_lifetime() -> u16 {
        1800
    }
    pub(super) fn prefix_valid() -> u32 {
        86_400
    }
    pub(super) fn prefix_preferred() -> u32 {
        14_400
    }
    pub(super) fn hop_limit() -> u8 {
        64
    }
}

/// The whole file: only `[dhcp]` is read, other sections are someone else's.
#[derive(Deserialize)]
struct ConfigFile {
    dhcp: DhcpConfig,
}

impl DhcpConfig {
    /// Parses the `[dhcp]` section of a TOML document and validates it. Relative paths stay
    /// relative (see [`Self::load`]).
    pub fn from_toml_str(text: &str) -> Result<Self, DhcpError> {
        let file: ConfigFile = toml::from_str(text)?;
        file.dhcp.validate()?;
        Ok(file.dhcp)
    }

    /// Reads and validates a configuration file; relative `site_key` and `journal` paths are
    /// taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, DhcpError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DhcpError::io(format!("reading {}", path.display()), e))?;
        let mut cfg = Self::from_toml_str(&text)?;
        if let Some(dir) = path.parent() {
            cfg.site_key = dir.join(&cfg.site_key);
            cfg.journal = dir.join(&cfg.journal);
        }
        Ok(cfg)
    }

    /// T1 as sent: configured, or 0.5 × preferred lifetime.
    pub fn t1(&self) -> u32 {
        self.t1.unwrap_or(self.preferred_lifetime / 2)
    }

    /// T2 as sent: configured, or 0.8 × preferred lifetime.
    pub fn t2(&self) -> u32 {
        self.t2
            .unwrap_or((u64::from(self.preferred_lifetime) * 4 / 5) as u32)
    }

    /// Checks every rule the wire or the RFCs put on the values.
    pub fn validate(&self) -> Result<(), DhcpError> {
        let bad = |m: String| Err(DhcpError::Config(m));
        if self.sec > 2 {
            return bad(format!(
                "sec = {}: generation supports Sec 0..=2 (cost ~2^(16*Sec) hashes)",
                self.sec
            ));
        }
        if self.preferred_lifetime > self.valid_lifetime {
            return bad(
                "preferred_lifetime must not exceed valid_lifetime (RFC 8415 §21.6)".into(),
            );
        }
        if self.t1() > self.t2() {
            return bad("t1 must not exceed t2 (RFC 8415 §21.4)".into());
        }
        if self.max_bindings == 0 {
            return bad("max_bindings must be at least 1".into());
        }
        let rate = self.rate_limit.per_second;
        if rate.is_nan() || rate <= 0.0 || self.rate_limit.burst == 0 {
            return bad("rate_limit: per_second and burst must be positive".into());
        }
        for (i, s) in self.static_bindings.iter().enumerate() {
            if !(MIN_DUID_LEN..=MAX_DUID_LEN).contains(&s.duid.0.len()) {
                return bad(format!(
                    "static[{i}].duid: a DUID is 3..=130 bytes (RFC 8415 §11.1)"
                ));
            }
            if s.modifier.0.len() != 16 {
                return bad(format!("static[{i}].modifier: exactly 16 bytes"));
            }
            if s.collision_count > cga::MAX_COLLISION_COUNT {
                return bad(format!("static[{i}].collision_count: 0..=2 (RFC 3972 §3)"));
            }
        }
        if self.pa_prefixes.len() > 16 {
            return bad("at most 16 pa_prefixes".into());
        }
        if self.dns_servers.len() > 16 {
            return bad("at most 16 dns_servers".into());
        }
        let ra = &self.ra;
        if !(4..=1800).contains(&ra.interval) {
            return bad("ra.interval: 4..=1800 seconds (RFC 4861 §6.2.1)".into());
        }
        if ra.router_lifetime != 0
            && (u32::from(ra.router_lifetime) < ra.interval || ra.router_lifetime > 9000)
        {
            return bad(
                "ra.router_lifetime: 0 or interval..=9000 seconds (RFC 4861 §6.2.1)".into(),
            );
        }
        if ra.prefix_preferred_lifetime > ra.prefix_valid_lifetime {
            return bad("ra: prefix preferred lifetime exceeds its valid lifetime".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[run]
ignored = "another section"

[dhcp]
site_key = "key.pem"
ulid_prefix = "fc00:1:2:3::/64"
pa_prefixes = ["2001:db8:a:1::/64", "2001:db8:b:1::/64"]
dns_servers = ["fc00:1:2:3::1"]
journal = "dhcp.journal"
sec = 1
preference = 255

[[dhcp.static]]
duid = "00:03:00:01:02:00:00:00:00:01"
iaid = 7
modifier = "000102030405060708090a0b0c0d0e0f"

[dhcp.ra]
interval = 30
router_lifetime = 90
"#;

    #[test]
    fn sample_parses_with_defaults() {
        let c = DhcpConfig::from_toml_str(SAMPLE).unwrap();
        assert_eq!(c.ulid_prefix.to_string(), "fc00:1:2:3::/64");
        assert_eq!(c.pa_prefixes.len(), 2);
        assert_eq!(c.sec, 1);
        assert_eq!(c.static_bindings[0].duid.0, [0, 3, 0, 1, 2, 0, 0, 0, 0, 1]);
        assert_eq!(c.static_bindings[0].iaid, 7);
        assert_eq!((c.t1(), c.t2()), (1800, 2880));
        assert!(c.rapid_commit);
        assert_eq!(c.ra.interval, 30);
        assert!(c.ra.managed);
    }

    #[test]
    fn load_resolves_relative_paths() {
        let dir = std::env::temp_dir().join(format!("dhcp-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, SAMPLE).unwrap();
        let c = DhcpConfig::load(&file).unwrap();
        assert_eq!(c.site_key, dir.join("key.pem"));
        assert_eq!(c.journal, dir.join("dhcp.journal"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_name_the_field() {
        let with = |extra: &str| {
            DhcpConfig::from_toml_str(&format!(
                "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/64'\njournal='j'\n{extra}"
            ))
        };
        assert!(with("").is_ok());
        for (extra, needle) in [
            ("sec = 3", "sec"),
            (
                "preferred_lifetime = 9\nvalid_lifetime = 8",
                "preferred_lifetime",
            ),
            ("t1 = 10\nt2 = 5", "t1"),
            ("max_bindings = 0", "max_bindings"),
            ("[dhcp.ra]\ninterval = 2", "ra.interval"),
            ("[dhcp.ra]\nrouter_lifetime = 10", "router_lifetime"),
            (
                "[[dhcp.static]]\nduid='00'\niaid=1\nmodifier='00000000000000000000000000000000'",
                "duid",
            ),
        ] {
            let e = with(extra).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra}: {e}");
        }
        assert!(with("bogus = 1").is_err(), "unknown keys are refused");
        assert!(DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/48'\njournal='j'"
        )
        .is_err());
    }
}
