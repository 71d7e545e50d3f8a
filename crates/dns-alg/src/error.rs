//! The crate's single error type.

use std::io;

/// What can go wrong when configuring or running the ALG. The sans-IO core never fails on
/// input: malformed packets are answered (FORMERR) or dropped and counted in
/// [`AlgStats`](crate::AlgStats).
#[derive(Debug, thiserror::Error)]
pub enum DnsAlgError {
    /// The configuration names no upstream server: nothing could be resolved.
    #[error("no upstream DNS server configured")]
    NoUpstream,
    /// The ULID record type is a type with a meaning of its own (A, AAAA, OPT, ...); use a
    /// private-use type (65280..=65534, RFC 6895 §3.1).
    #[error("ULID record type {0} collides with a standard or meta type")]
    BadUlidType(u16),
    /// A configuration value is out of range (named, with the reason).
    #[error("bad configuration `{field}`: {reason}")]
    BadConfig {
        /// The offending key.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A hosts-file or zone-config line could not be understood.
    #[error("line {line}: {reason}")]
    Parse {
        /// 1-based line (or host entry) number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A domain name is not a valid DNS name.
    #[error("bad domain name `{0}`")]
    BadName(String),
    /// A socket of the standalone runner failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}
