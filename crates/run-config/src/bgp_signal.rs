//! The `[bgp_signal]` table: BGP as a failure signal (issue #9, `docs/routing.md` "BGP
//! signal"). The proxy's BIRD exports the routes it learns from provider X into kernel
//! table T_X; pshim6 follows those tables and moves contexts off paths a provider no longer
//! routes. Without the table nothing is followed.
//!
//! ```toml
//! [bgp_signal]
//! providers = [{ id = 1, table = 101 }, { id = 2, table = 102 }]
//! ```

use crate::error::{bail, Result};
use serde::Deserialize;

/// Kernel tables that hold every route of the box, not one provider's: `default` (253),
/// `main` (254), `local` (255), and 0 (unspecified).
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBgpSignal {
    providers: Vec<RawBgpProvider>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBgpProvider {
    id: u16,
    table: u32,
}

/// The checked `[bgp_signal]` table: the kernel table of each provider followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSignalSettings {
    /// (provider id, kernel table), in configuration order.
    pub tables: Vec<(u16, u32)>,
}

/// Checks `[bgp_signal]` against the configured provider ids: at least one provider, each
/// provider exists and appears once, each table is a per-provider one and used once.
pub(super) fn convert(raw: &RawBgpSignal, provider_ids: &[u16]) -> Result<BgpSignalSettings> {
    if raw.providers.is_empty() {
        bail!("bgp_signal.providers: empty; list {{ id, table }} per provider followed");
    }
    let mut tables: Vec<(u16, u32)> = Vec::new();
    for (n, p) in raw.providers.iter().enumerate() {
        let key = format!("bgp_signal.providers[{n}]");
        if !provider_ids.contains(&p.id) {
            bail!("{key}.id: no provider has id {}", p.id);
        }
        if RESERVED_TABLES.contains(&p.table) {
            bail!(
                "{key}.table: {} is a system table (0, default, main, local); give the table \
                 BIRD exports this provider's routes to",
                p.table
            );
        }
        if let Some((id, _)) = tables.iter().find(|(_, t)| *t == p.table) {
            bail!(
                "{key}.table: table {} is already provider {id}'s; each provider needs its own",
                p.table
            );
        }
        if tables.iter().any(|(id, _)| *id == p.id) {
            bail!("{key}.id: provider {} is listed twice", p.id);
        }
        tables.push((p.id, p.table));
    }
    Ok(BgpSignalSettings { tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_parse(text: &str) -> Result<RawBgpSignal, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()
    }

    fn parse(text: &str) -> RawBgpSignal {
        try_parse(text).unwrap()
    }

    #[test]
    fn valid_tables() {
        let raw = parse("providers = [{ id = 1, table = 101 }, { id = 2, table = 102 }]");
        let s = convert(&raw, &[1, 2]).unwrap();
        assert_eq!(s.tables, [(1, 101), (2, 102)]);
        let one = parse("providers = [{ id = 2, table = 7 }]");
        assert_eq!(convert(&one, &[1, 2]).unwrap().tables, [(2, 7)]);
    }

    #[test]
    fn refused_with_the_field_named() {
        let cases = [
            ("providers = []", "bgp_signal.providers: empty"),
            (
                "providers = [{ id = 3, table = 101 }]",
                "bgp_signal.providers[0].id: no provider has id 3",
            ),
            (
                "providers = [{ id = 1, table = 101 }, { id = 2, table = 101 }]",
                "bgp_signal.providers[1].table: table 101 is already provider 1's",
            ),
            (
                "providers = [{ id = 1, table = 101 }, { id = 1, table = 102 }]",
                "bgp_signal.providers[1].id: provider 1 is listed twice",
            ),
            (
                "providers = [{ id = 1, table = 254 }]",
                "bgp_signal.providers[0].table: 254 is a system table",
            ),
        ];
        for (text, want) in cases {
            let err = convert(&parse(text), &[1, 2]).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
        assert!(try_parse("providers = [{ id = 1 }]").is_err());
        assert!(try_parse("providers = [{ id = 1, table = 5, x = 1 }]").is_err());
    }
}
