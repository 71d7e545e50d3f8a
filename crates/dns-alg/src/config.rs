//! Configuration of the ALG core: upstream servers, the ULID record type, timers and bounds.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::hosts::HostTable;
use crate::DnsAlgError;

/// Default RR type of the ULID record: the first private-use type
/// ([RFC 6895 §3.1](https://www.rfc-editor.org/rfc/rfc6895#section-3.1): 65280–65534). A
/// project convention, not a standard: RDATA is the peer's 16-byte ULID, like AAAA.
pub const DEFAULT_ULID_TYPE: u16 = 65280;

/// EDNS UDP payload size the ALG advertises upstream and to its clients: the 2020 DNS flag
/// day value, which avoids IP fragmentation on any path with an IPv6 minimum MTU.
pub const DEFAULT_EDNS_PAYLOAD: u16 = 1232;

/// Per-client query rate limit: a token bucket per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained queries per second per client; 0 turns the limit off.
    pub per_second: u32,
    /// Bucket size: queries a client may send in a burst.
    pub burst: u32,
    /// Clients tracked at once (the least recently seen one is forgotten beyond this).
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 200,
            burst: 400,
            max_clients: 4096,
        }
    }
}

/// Everything the [`DnsAlg`](crate::DnsAlg) core needs; the standalone runner fills it from
/// the command line.
#[derive(Debug, Clone)]
pub struct AlgConfig {
    /// Upstream servers, tried in order and rotated on timeout or failure.
    pub upstream: Vec<SocketAddr>,
    /// RR type of the ULID record (default [`DEFAULT_ULID_TYPE`]).
    pub ulid_type: u16,
    /// How long to wait for one upstream answer before the next attempt.
    pub upstream_timeout: Duration,
    /// Sends per upstream question in all, rotating over the servers (at least 1); when all
    /// fail the client gets SERVFAIL.
    pub upstream_attempts: usize,
    /// EDNS payload size advertised upstream and in our OPT records.
    pub edns_payload: u16,
    /// Locator cache size (entries); the least recently used entry goes first.
    pub cache_capacity: usize,
    /// Upper bound of a locator cache entry's lifetime, whatever the records' TTLs say.
    pub cache_max_ttl: Duration,
    /// The site's own hosts: name → CMULA, answered locally.
    pub hosts: HostTable,
    /// TTL of the answers about the site's own hosts.
    pub host_ttl: u32,
    /// Per-client rate limit.
    pub rate_limit: RateLimitConfig,
    /// Client queries in progress at once; beyond it new queries are dropped (counted).
    pub max_pending: usize,
    /// Answer the debug view of the locator cache: a CHAOS-class TXT query for
    /// [`CACHE_VIEW_NAME`](crate::CACHE_VIEW_NAME).
    pub cache_view: bool,
}

impl AlgConfig {
    /// A configuration with the defaults and the given upstream servers.
    pub fn new(upstream: Vec<SocketAddr>) -> Self {
        Self {
            upstream,
            ulid_type: DEFAULT_ULID_TYPE,
            upstream_timeout: Duration::from_millis(1500),
            upstream_attempts: 4,
            edns_payload: DEFAULT_EDNS_PAYLOAD,
            cache_capacity: 16_384,
            cache_max_ttl: Duration::from_secs(3600),
            hosts: HostTable::default(),
            host_ttl: 300,
            rate_limit: RateLimitConfig::default(),
            max_pending: 4096,
            cache_view: true,
        }
    }

    /// Checks the values the core relies on.
    pub fn validate(&self) -> Result<(), DnsAlgError> {
        if self.upstream.is_empty() {
            return Err(DnsAlgError::NoUpstream);
        }
        check_ulid_type(self.ulid_type)?;
        if self.upstream_attempts == 0 {
            return Err(DnsAlgError::BadConfig {
                field: "upstream_attempts",
                reason: "at least one attempt is needed",
            });
        }
        if self.upstream_timeout.is_zero() {
            return Err(DnsAlgError::BadConfig {
                field: "upstream_timeout",
                reason: "must be positive",
            });
        }
        if self.edns_payload < 512 {
            return Err(DnsAlgError::BadConfig {
                field: "edns_payload",
                reason: "below the 512-byte minimum (RFC 6891 §6.2.3)",
            });
        }
        // Upstream IDs are 16 bits and each client query may hold two at once.
        if self.max_pending == 0 || self.max_pending > 16_384 {
            return Err(DnsAlgError::BadConfig {
                field: "max_pending",
                reason: "must be within 1..=16384",
            });
        }
        Ok(())
    }
}

/// Refuses ULID record types that already mean something (A, AAAA, OPT, ANY, ...): hickory
/// decodes those into typed RDATA, and servers treat them specially. Anything hickory models
/// as an unknown type (RFC 3597 opaque RDATA) is accepted, private-use types included.
pub fn check_ulid_type(t: u16) -> Result<(), DnsAlgError> {
    match RecordType::from(t) {
        RecordType::Unknown(_) if t != 0 => Ok(()),
        _ => Err(DnsAlgError::BadUlidType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_type_must_be_opaque() {
        assert!(check_ulid_type(65280).is_ok());
        assert!(check_ulid_type(65534).is_ok());
        assert!(check_ulid_type(28).is_err()); // AAAA
        assert!(check_ulid_type(41).is_err()); // OPT
        assert!(check_ulid_type(255).is_err()); // ANY
        assert!(check_ulid_type(0).is_err());
    }

    #[test]
    fn validation() {
        assert!(matches!(
            AlgConfig::new(vec![]).validate(),
            Err(DnsAlgError::NoUpstream)
        ));
        let mut c = AlgConfig::new(vec!["[::1]:53".parse().unwrap()]);
        assert!(c.validate().is_ok());
        c.upstream_attempts = 0;
        assert!(c.validate().is_err());
        c.upstream_attempts = 1;
        c.edns_payload = 100;
        assert!(c.validate().is_err());
    }
}
