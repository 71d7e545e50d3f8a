//! `[dhcp.store]`: where the DHCPv6 bindings live. `backend = "journal"` (the default: the
//! embedded lease journal, one proxy per site) or `backend = "etcd"` (the bindings shared by
//! every proxy of the site, crate `etcd-store`).
//!
//! ```toml
//! [dhcp.store]
//! backend = "etcd"
//! endpoints = ["http://[2001:db8::10]:2379", "http://[2001:db8::11]:2379"]
//! prefix = "/pshim6/site1"        # every proxy of the site uses the same prefix
//! timeout_ms = 2000               # a write not acknowledged by then: no Reply, the client retries
//! startup_timeout_ms = 10000      # the first synchronisation, before the server answers anything
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{bail, err, Result};
use etcd_store::EtcdConfig;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    backend: Option<String>,
    endpoints: Option<Vec<String>>,
    prefix: Option<String>,
    timeout_ms: Option<u64>,
    startup_timeout_ms: Option<u64>,
}

/// The checked `[dhcp.store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// The lease journal at this path.
    Journal(PathBuf),
    /// The site's bindings on etcd.
    Etcd(EtcdConfig),
}

/// Checks `[dhcp.store]` together with `dhcp.journal` (needed by the journal backend only).
pub(super) fn convert(raw: Option<&RawStore>, journal: Option<PathBuf>) -> Result<StoreSettings> {
    let backend = raw.and_then(|r| r.backend.as_deref()).unwrap_or("journal");
    match (backend, raw) {
        ("journal", r) => {
            if let Some(r) = r {
                if r.endpoints.is_some() || r.prefix.is_some() || r.timeout_ms.is_some() {
                    bail!(
                        "dhcp.store: endpoints, prefix and timeout_ms are for backend = \"etcd\""
                    );
                }
            }
            let j = journal.ok_or_else(|| {
                err!("dhcp.journal: missing (the lease journal file of backend = \"journal\")")
            })?;
            Ok(StoreSettings::Journal(j))
        }
        ("etcd", Some(r)) => {
            let endpoints = r
                .endpoints
                .clone()
                .ok_or_else(|| err!("dhcp.store.endpoints: missing (etcd client URLs)"))?;
            let prefix = r.prefix.as_deref().ok_or_else(|| {
                err!("dhcp.store.prefix: missing (the site's key prefix, e.g. \"/pshim6/site1\")")
            })?;
            let mut c = EtcdConfig::new(endpoints, prefix);
            if let Some(ms) = r.timeout_ms {
                c.timeout = Duration::from_millis(ms);
            }
            if let Some(ms) = r.startup_timeout_ms {
                if ms == 0 {
                    bail!("dhcp.store.startup_timeout_ms: must be positive");
                }
                c.startup_timeout = Duration::from_millis(ms);
            }
            c.validate().map_err(|e| err!("dhcp.store.{e}"))?;
            Ok(StoreSettings::Etcd(c))
        }
        (other, _) => bail!("dhcp.store.backend: `{other}` (expected \"journal\" or \"etcd\")"),
    }
}

/// The journal path a [`dhcp::DhcpConfig`] carries: the real one, or none for etcd.
pub(super) fn journal_path(s: &StoreSettings) -> &Path {
    match s {
        StoreSettings::Journal(p) => p,
        StoreSettings::Etcd(_) => Path::new(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawStore {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn journal_is_the_default_and_needs_a_path() {
        assert_eq!(
            convert(None, Some("j".into())).unwrap(),
            StoreSettings::Journal("j".into())
        );
        let e = convert(None, None).unwrap_err().to_string();
        assert!(e.starts_with("dhcp.journal: missing"), "{e}");
        let e = convert(Some(&raw("prefix = \"/p\"")), Some("j".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("backend = \"etcd\""), "{e}");
    }

    #[test]
    fn etcd_settings_are_checked_field_by_field() {
        let ok = raw("backend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nprefix = \"/pshim6/s1/\"\ntimeout_ms = 500");
        match convert(Some(&ok), None).unwrap() {
            StoreSettings::Etcd(c) => {
                assert_eq!(c.endpoints, vec!["http://127.0.0.1:2379".to_string()]);
                assert_eq!(c.prefix, "/pshim6/s1");
                assert_eq!(c.timeout, Duration::from_millis(500));
            }
            other => panic!("{other:?}"),
        }
        for (text, want) in [
            (
                "backend = \"etcd\"\nprefix = \"/p\"",
                "dhcp.store.endpoints: missing",
            ),
            (
                "backend = \"etcd\"\nendpoints = [\"http://a:1\"]",
                "dhcp.store.prefix: missing",
            ),
            (
                "backend = \"etcd\"\nendpoints = []\nprefix = \"/p\"",
                "dhcp.store.endpoints: at least one",
            ),
            (
                "backend = \"etcd\"\nendpoints = [\"a:1\"]\nprefix = \"/p\"",
                "not a URL",
            ),
            (
                "backend = \"etcd\"\nendpoints = [\"http://a:1\"]\nprefix = \"p\"",
                "dhcp.store.prefix",
            ),
            (
                "backend = \"etcd\"\nendpoints = [\"http://a:1\"]\nprefix = \"/p\"\ntimeout_ms = 0",
                "dhcp.store.timeout_ms",
            ),
            ("backend = \"redis\"", "dhcp.store.backend: `redis`"),
        ] {
            let e = convert(Some(&raw(text)), Some("j".into()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(toml::from_str::<RawStore>("backend = \"etcd\"\nendpoint = []").is_err());
    }
}
