//! Where the store lives and how its keys are spelt.

use std::time::Duration;

use dhcp::ClientKey;

/// Default bound on one write (and on the initial synchronisation's steps).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// The store's settings (`[dhcp.store]` with `backend = "etcd"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs of the etcd members, e.g. `http://192.0.2.1:2379`.
    pub endpoints: Vec<String>,
    /// Key prefix of the site, without a trailing `/`, e.g. `/pshim6/site1`.
    pub prefix: String,
    /// Longest wait for a write's acknowledgement: past it the write counts as failed and the
    /// client gets no Reply (it retransmits, RFC 8415 §15).
    pub timeout: Duration,
    /// Longest wait for the first synchronisation when the store opens.
    pub startup_timeout: Duration,
}

impl EtcdConfig {
    /// Settings with the default timeouts.
    pub fn new(endpoints: Vec<String>, prefix: &str) -> Self {
        Self {
            endpoints,
            prefix: prefix.trim_end_matches('/').to_string(),
            timeout: DEFAULT_TIMEOUT,
            startup_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the settings; the text names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err(
                "endpoints: at least one etcd client URL (e.g. \"http://[::1]:2379\")".into(),
            );
        }
        for e in &self.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 10 {
                return Err(format!(
                    "endpoints: `{e}` is not a URL (expected http://HOST:PORT)"
                ));
            }
        }
        if !self.prefix.starts_with('/') || self.prefix.len() < 2 {
            return Err(format!(
                "prefix: `{}` must start with `/` and name the site, e.g. \"/pshim6/site1\"",
                self.prefix
            ));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(30) {
            return Err("timeout_ms: 1..=30000 (a DHCPv6 client retransmits after ~1 s)".into());
        }
        Ok(())
    }

    /// The prefix of every key of the site (`P/`).
    pub(crate) fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// `P/bindings/`.
    pub(crate) fn bindings_prefix(&self) -> String {
        format!("{}/bindings/", self.prefix)
    }

    /// `P/server-duid`.
    pub(crate) fn server_duid_key(&self) -> Vec<u8> {
        format!("{}/server-duid", self.prefix).into_bytes()
    }

    /// `P/bindings/<duid-hex>/<iaid>`.
    pub(crate) fn binding_key(&self, k: &ClientKey) -> Vec<u8> {
        format!(
            "{}{}/{}",
            self.bindings_prefix(),
            hex::encode(&k.duid),
            k.iaid
        )
        .into_bytes()
    }

    /// The client of a binding key, `None` for any other key.
    pub(crate) fn parse_binding_key(&self, key: &[u8]) -> Option<ClientKey> {
        let rest = key.strip_prefix(self.bindings_prefix().as_bytes())?;
        let rest = std::str::from_utf8(rest).ok()?;
        let (duid, iaid) = rest.split_once('/')?;
        Some(ClientKey {
            duid: hex::decode(duid).ok()?,
            iaid: iaid.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pinned_and_parse_back() {
        let c = EtcdConfig::new(vec!["http://127.0.0.1:2379".into()], "/pshim6/s1/");
        let k = ClientKey {
            duid: vec![0, 3, 0, 1, 0xab],
            iaid: 7,
        };
        assert_eq!(
            c.binding_key(&k),
            b"/pshim6/s1/bindings/00030001ab/7".to_vec()
        );
        assert_eq!(c.parse_binding_key(&c.binding_key(&k)), Some(k));
        assert_eq!(c.server_duid_key(), b"/pshim6/s1/server-duid".to_vec());
        assert_eq!(c.parse_binding_key(&c.server_duid_key()), None);
        assert_eq!(c.parse_binding_key(b"/pshim6/s1/bindings/zz/7"), None);
        assert_eq!(c.parse_binding_key(b"/pshim6/s1/bindings/0003/x"), None);
        assert_eq!(c.parse_binding_key(b"/pshim6/s2/bindings/0003/1"), None);
    }

    #[test]
    fn validation_names_the_field() {
        let ok = EtcdConfig::new(vec!["http://127.0.0.1:2379".into()], "/pshim6/s1");
        assert_eq!(ok.validate(), Ok(()));
        let e = EtcdConfig {
            endpoints: vec![],
            ..ok.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.starts_with("endpoints"), "{e}");
        let e = EtcdConfig {
            endpoints: vec!["127.0.0.1:2379".into()],
            ..ok.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
        let e = EtcdConfig {
            prefix: "pshim6".into(),
            ..ok.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.starts_with("prefix"), "{e}");
        let e = EtcdConfig {
            timeout: Duration::ZERO,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(e.starts_with("timeout_ms"), "{e}");
    }
}
