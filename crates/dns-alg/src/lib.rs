//! The pshim6 DNS ALG: legacy hosts use the proxy as their DNS server, and the ALG turns
//! DNS answers about SHIM6 peers into ULIDs plus cached locators.
//!
//! - An AAAA query for an external name goes upstream as two queries in parallel: AAAA and
//!   the **ULID record** (a private-use RR type, [`DEFAULT_ULID_TYPE`] = 65280 unless
//!   configured; RDATA exactly the 16-byte ULID, anything else is ignored and counted). With
//!   a ULID record, the AAAA set is cached as that ULID's locators (TTL-bounded, bounded
//!   size, LRU), the host gets a single AAAA carrying the ULID (TTL = the smaller of the two
//!   records' TTLs), and [`AlgEvent::PeerLocators`] tells the slow path, which may start the
//!   handshake at once. Without one the peer is not SHIM6-capable: the host gets the real
//!   AAAA records and the NATv6 fallback carries the traffic. Other questions are relayed.
//! - Names of the site's own hosts ([`HostTable`]) are answered locally with their CMULAs.
//! - [`DnsAlg::resolve_ulid`] is the data plane's reverse path: PTR of the ULID's
//!   `ip6.arpa.` name, then AAAA + ULID record of the target.
//! - Hygiene: OPT only in answers to queries with OPT, BADVERS above EDNS version 0, the
//!   question's case echoed, answers over the client's UDP size shed Additional RRsets and
//!   then truncate (TC=1) **keeping the OPT record**, upstream timeouts and retries rotating
//!   over several servers (SERVFAIL when all fail), FORMERR with the ID echoed for malformed
//!   queries, a per-client rate limit, and no panic on any input.
//! - Debug view of the locator cache: a CHAOS-class TXT query for [`CACHE_VIEW_NAME`]
//!   (`dig @ALG -c CH -t TXT cache.pshim6.`), one TXT record per entry: ULID, `ttl=N`,
//!   locators.
//!
//! [`DnsAlg`] is sans-IO (the project style guide §2, quinn-proto's shape): no sockets,
//! clock or threads. [`runner`] runs it on kernel sockets (`pshim6 dns-alg`); `pshim6 run`
//! runs it on the slow path (UDP through `LocalServices`). [`zone`] prints the records a site
//! publishes.

mod alg;
mod cache;
mod config;
mod error;
mod hosts;
mod local;
mod msg;
mod ratelimit;
pub mod runner;
mod transmit;
mod upstream;
pub mod zone;

pub use alg::{DnsAlg, ResolveStatus};
pub use cache::{CacheEntry, LocatorCache};
pub use config::{
    check_ulid_type, AlgConfig, RateLimitConfig, DEFAULT_EDNS_PAYLOAD, DEFAULT_ULID_TYPE,
};
pub use error::DnsAlgError;
pub use hosts::{reverse_name, HostTable};
pub use local::CACHE_VIEW_NAME;
pub use transmit::{AlgEvent, AlgStats, Destination, Transmit, Transport};

/// hickory-proto, re-exported so callers and tests build messages with the same version.
pub use hickory_proto;
