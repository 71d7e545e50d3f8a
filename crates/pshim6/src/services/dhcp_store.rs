//! The binding store behind `pshim6 run`'s DHCPv6 server: the lease journal (one proxy) or
//! etcd (every proxy of the site shares the bindings; see crate `etcd-store`).

use anyhow::{Context, Result};
use dhcp::{Binding, BindingStore, ClientKey, DhcpError, JournalStore, PutOutcome, StoredState};
use etcd_store::{Change, EtcdStore};

use super::Timeline;
use run_config::StoreSettings;

/// Either store, chosen by `[dhcp.store]`.
#[derive(Debug)]
pub(crate) enum SiteStore {
    /// The embedded journal.
    Journal(JournalStore),
    /// The site's bindings on etcd.
    Etcd(Box<EtcdStore>),
}

impl SiteStore {
    /// Opens the configured store. For etcd this waits for the first synchronisation, so the
    /// server built on it knows every binding of the site before it answers anything.
    pub(crate) fn open(settings: &StoreSettings, timeline: &Timeline) -> Result<Self> {
        match settings {
            StoreSettings::Journal(path) => {
                let (store, report) = JournalStore::open(path)
                    .with_context(|| format!("dhcp.journal: opening {}", path.display()))?;
                for w in &report.warnings {
                    timeline(&format!("dhcp journal {}: {w}", path.display()));
                }
                Ok(Self::Journal(store))
            }
            StoreSettings::Etcd(cfg) => {
                let store = EtcdStore::open(cfg.clone()).with_context(|| {
                    format!(
                        "dhcp.store: etcd {} prefix {}",
                        cfg.endpoints.join(","),
                        cfg.prefix
                    )
                })?;
                timeline(&format!(
                    "DHCPv6 bindings on etcd {} under {}: synchronised",
                    cfg.endpoints.join(","),
                    cfg.prefix
                ));
                Ok(Self::Etcd(Box::new(store)))
            }
        }
    }

    /// Changes other proxies made (nothing for the journal). Never blocks.
    pub(crate) fn poll_changes(&mut self) -> Vec<Change> {
        match self {
            Self::Journal(_) => Vec::new(),
            Self::Etcd(s) => s.poll_changes(),
        }
    }

    /// Whether other proxies may change the bindings (the service then polls for changes).
    pub(crate) fn shared(&self) -> bool {
        matches!(self, Self::Etcd(_))
    }

    /// The store's own counters (`dhcp.store.*`).
    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        match self {
            Self::Journal(j) => vec![(
                "dhcp.store.compaction_failures".into(),
                j.compaction_failures(),
            )],
            Self::Etcd(s) => {
                let mut v = super::debug_counters("dhcp.store", s.counters());
                v.push(("dhcp.store.connected".into(), u64::from(s.connected())));
                v
            }
        }
    }
}

impl BindingStore for SiteStore {
    fn load(&mut self) -> Result<StoredState, DhcpError> {
        match self {
            Self::Journal(s) => s.load(),
            Self::Etcd(s) => s.load(),
        }
    }

    fn set_server_duid(&mut self, duid: &[u8]) -> Result<(), DhcpError> {
        match self {
            Self::Journal(s) => s.set_server_duid(duid),
            Self::Etcd(s) => s.set_server_duid(duid),
        }
    }

    fn put(&mut self, binding: &Binding) -> Result<(), DhcpError> {
        match self {
            Self::Journal(s) => s.put(binding),
            Self::Etcd(s) => s.put(binding),
        }
    }

    fn remove(&mut self, client: &ClientKey) -> Result<(), DhcpError> {
        match self {
            Self::Journal(s) => s.remove(client),
            Self::Etcd(s) => s.remove(client),
        }
    }

    fn put_checked(&mut self, binding: &Binding) -> Result<PutOutcome, DhcpError> {
        match self {
            Self::Journal(s) => s.put_checked(binding),
            Self::Etcd(s) => s.put_checked(binding),
        }
    }

    fn claim_server_duid(&mut self, duid: &[u8]) -> Result<Vec<u8>, DhcpError> {
        match self {
            Self::Journal(s) => s.claim_server_duid(duid),
            Self::Etcd(s) => s.claim_server_duid(duid),
        }
    }
}
