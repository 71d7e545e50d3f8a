//! The `[announce]` table: which routes the proxy installs for the local BIRD to announce, on
//! which device, with which protocol number and metric (see `docs/routing.md`). Without the
//! table (or with `enabled = false`) nothing is announced.

use std::net::Ipv6Addr;

use crate::error::{bail, err, Result};
use serde::Deserialize;

/// Default TAP device carrying the routes.
pub(crate) const DEFAULT_DEVICE: &str = "pshim6-ann";
/// Default rtnetlink protocol number (BIRD's `krt_source`): 250, unassigned in
/// `/etc/iproute2/rt_protos` (values above `RTPROT_STATIC` are free for routing daemons).
pub(crate) const DEFAULT_PROTOCOL: u8 = 250;
/// Default metrics: the primary's routes must win everywhere (lower is preferred).
pub(crate) const DEFAULT_METRIC_PRIMARY: u32 = 100;
/// See [`DEFAULT_METRIC_PRIMARY`].
pub(crate) const DEFAULT_METRIC_BACKUP: u32 = 200;
/// Default inside announcement: the whole CMULA space (RFC 4193 `fc00::/7`), so the site
/// router sends the proxy every packet towards a peer's ULID.
pub(crate) const DEFAULT_INSIDE: &str = "fc00::/7";
/// Workers silent this long mean the data plane is lost.
pub(crate) const DEFAULT_HEARTBEAT_TIMEOUT_MS: u64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    enabled: Option<bool>,
    role: Option<String>,
    device: Option<String>,
    protocol: Option<u8>,
    metric_primary: Option<u32>,
    metric_backup: Option<u32>,
    inside: Option<Vec<String>>,
    pa_prefixes: Option<bool>,
    heartbeat_timeout_ms: Option<u64>,
}

/// The proxy's role in its site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Announces with the preferred metric.
    Primary,
    /// Announces with the less preferred metric: used when the primary's routes are gone.
    Backup,
}

impl Role {
    /// The role's name as in the file and the API (`primary`, `backup`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Backup => "backup",
        }
    }
}

/// The checked `[announce]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceSettings {
    /// Primary or backup: sets the metric.
    pub role: Role,
    /// The non-persistent TAP device the routes are installed on.
    pub device: String,
    /// The rtnetlink protocol number of the routes (what BIRD's `krt_source` filters on).
    pub protocol: u8,
    /// The metric of this proxy's routes (by role).
    pub metric: u32,
    /// Prefixes towards the inside (the site router).
    pub inside: Vec<(Ipv6Addr, u8)>,
    /// Announce each provider's PA prefix towards the exit routers.
    pub pa_prefixes: bool,
    /// Withdraw everything when a worker has not heartbeaten for this long (data plane lost).
    pub heartbeat_timeout_ms: u64,
}

/// `ADDR/LEN` with no host bits.
fn net(key: &str, s: &str) -> Result<(Ipv6Addr, u8)> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| err!("{key}: `{s}`: expected ADDR/LEN, e.g. {DEFAULT_INSIDE}"))?;
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|e| err!("{key}: `{s}`: {e} (expected ADDR/LEN)"))?;
    let len: u8 = l
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| err!("{key}: `{s}`: prefix length must be 0..=128"))?;
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    if addr.to_bits() & !mask != 0 {
        bail!(
            "{key}: `{s}`: host bits set (did you mean {}/{len}?)",
            Ipv6Addr::from_bits(addr.to_bits() & mask)
        );
    }
    Ok((addr, len))
}

/// Checks `[announce]`; `None` when disabled.
pub(super) fn convert(raw: &RawAnnounce) -> Result<Option<AnnounceSettings>> {
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let role = match raw.role.as_deref() {
        Some("primary") => Role::Primary,
        Some("backup") => Role::Backup,
        Some(other) => bail!("announce.role: `{other}`: expected \"primary\" or \"backup\""),
        None => bail!("announce.role: missing; \"primary\" or \"backup\""),
    };
    let device = raw.device.clone().unwrap_or_else(|| DEFAULT_DEVICE.into());
    if device.is_empty() || device.len() > 15 || device.contains(['/', ' ', '\0']) {
        bail!("announce.device: `{device}`: an interface name is 1 to 15 bytes, no '/' or space");
    }
    let protocol = raw.protocol.unwrap_or(DEFAULT_PROTOCOL);
    if protocol <= 4 || protocol == 255 {
        bail!(
            "announce.protocol: {protocol} is reserved (0-4: unspec, redirect, kernel, boot, \
             static; 255: reserved); use e.g. {DEFAULT_PROTOCOL}"
        );
    }
    let primary = raw.metric_primary.unwrap_or(DEFAULT_METRIC_PRIMARY);
    let backup = raw.metric_backup.unwrap_or(DEFAULT_METRIC_BACKUP);
    if primary >= backup {
        bail!(
            "announce.metric_primary ({primary}) must be lower than announce.metric_backup \
             ({backup}): the primary's routes are preferred"
        );
    }
    let inside = match &raw.inside {
        Some(v) => v
            .iter()
            .enumerate()
            .map(|(i, s)| net(&format!("announce.inside[{i}]"), s))
            .collect::<Result<Vec<_>>>()?,
        None => vec![net("announce.inside", DEFAULT_INSIDE)?],
    };
    let pa_prefixes = raw.pa_prefixes.unwrap_or(true);
    if inside.is_empty() && !pa_prefixes {
        bail!("announce: nothing to announce (inside = [] and pa_prefixes = false)");
    }
    let heartbeat_timeout_ms = raw
        .heartbeat_timeout_ms
        .unwrap_or(DEFAULT_HEARTBEAT_TIMEOUT_MS);
    if !(100..=60_000).contains(&heartbeat_timeout_ms) {
        bail!("announce.heartbeat_timeout_ms: {heartbeat_timeout_ms}: expected 100..=60000");
    }
    Ok(Some(AnnounceSettings {
        role,
        device,
        protocol,
        metric: match role {
            Role::Primary => primary,
            Role::Backup => backup,
        },
        inside,
        pa_prefixes,
        heartbeat_timeout_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<AnnounceSettings>> {
        let raw: RawAnnounce = toml::from_str(text).map_err(|e| err!("{e}"))?;
        convert(&raw)
    }

    #[test]
    fn defaults_follow_the_role() {
        let p = parse("role = \"primary\"").unwrap().unwrap();
        assert_eq!(p.role, Role::Primary);
        assert_eq!(
            (p.device.as_str(), p.protocol, p.metric),
            ("pshim6-ann", 250, 100)
        );
        assert_eq!(p.inside, vec![("fc00::".parse().unwrap(), 7)]);
        assert!(p.pa_prefixes);
        let b = parse("role = \"backup\"\nmetric_backup = 300\ninside = [\"fc00::/7\", \"::/0\"]")
            .unwrap()
            .unwrap();
        assert_eq!((b.metric, b.inside.len()), (300, 2));
        assert_eq!(parse("enabled = false").unwrap(), None);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (text, want) in [
            ("", "announce.role: missing"),
            ("role = \"master\"", "announce.role: `master`"),
            (
                "role = \"primary\"\ndevice = \"a-very-long-device-name\"",
                "announce.device",
            ),
            (
                "role = \"primary\"\nprotocol = 2",
                "announce.protocol: 2 is reserved",
            ),
            ("role = \"primary\"\nmetric_primary = 200", "must be lower"),
            (
                "role = \"primary\"\ninside = [\"fc00::1/7\"]",
                "announce.inside[0]: `fc00::1/7`: host bits set (did you mean fc00::/7?)",
            ),
            (
                "role = \"primary\"\ninside = [\"fc00::/129\"]",
                "prefix length",
            ),
            (
                "role = \"primary\"\ninside = []\npa_prefixes = false",
                "nothing to announce",
            ),
            (
                "role = \"primary\"\nheartbeat_timeout_ms = 5",
                "heartbeat_timeout_ms",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "`{text}`: `{e}` lacks `{want}`");
        }
        assert!(
            parse("role = \"primary\"\nmetrics = 1").is_err(),
            "unknown key"
        );
    }
}
