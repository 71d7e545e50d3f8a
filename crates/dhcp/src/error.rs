//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong outside message handling (a malformed or unwanted message is
/// not an error: the server discards it and counts it).
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// A file or socket operation failed; `what` names the operation and its object.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. "syncing journal /var/lib/pshim6/dhcp.journal".
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid; the text says which field and why.
    #[error("invalid DHCPv6 configuration: {0}")]
    Config(String),
    /// The configuration file is not valid TOML for the `[dhcp]` section.
    #[error("parsing DHCPv6 configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// CGA generation failed (bad key encoding, unsupported Sec, ...).
    #[error("CGA generation: {0}")]
    Cga(#[from] cga::CgaError),
    /// The file at this path is not a pshim6 lease journal (wrong magic); it is left untouched.
    #[error("{0}: not a pshim6 DHCPv6 journal (bad header)")]
    NotAJournal(PathBuf),
    /// A record could not be encoded (a DUID or list longer than the format allows).
    #[error("record too large for the journal: {0}")]
    RecordTooLarge(&'static str),
    /// The store refused a write (the in-memory test store's injected failure).
    #[error("binding store unavailable")]
    StoreUnavailable,
    /// A shared store (etcd) failed or did not acknowledge the write in time; nothing is
    /// acknowledged to the client, which retries.
    #[error("binding store: {0}")]
    StoreFailed(String),
    /// No CMULA could be generated without colliding with a bound or declined address.
    #[error("no collision-free CMULA after {0} attempts")]
    AddressSpaceExhausted(u32),
}

impl DhcpError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
