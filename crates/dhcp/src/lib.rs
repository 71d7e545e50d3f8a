//! DHCPv6 server for pshim6's inside links ([RFC 8415](https://www.rfc-editor.org/rfc/rfc8415)):
//! every host gets one CMULA, a CGA ([RFC 3972](https://www.rfc-editor.org/rfc/rfc3972)) of the
//! site key under the site's ULID /64, which is its SHIM6 ULID; the binding also records the
//! host's locators (one per provider prefix, same interface identifier).
//!
//! - [`DhcpServer`]: sans-IO core, `handle(now, client_addr, bytes) -> Option<reply>`.
//! - [`BindingStore`]: durable bindings; [`JournalStore`] (append-only, CRC-framed, synced
//!   before every answer, compacted) and [`MemoryStore`] for tests.
//! - [`ra`]: Router Advertisements with the M flag (hosts need one to start DHCPv6).
//! - [`standalone`]: the server on kernel sockets (`pshim6 dhcp --interface IF`).

mod binding;
mod config;
mod counters;
mod crc32;
mod duid;
mod error;
mod precheck;
mod prefix;
pub mod ra;
mod ratelimit;
mod server;
pub mod standalone;
mod store;
#[cfg(test)]
mod test_key;

pub use binding::{Binding, BindingState, ClientKey, MAX_DECLINED};
pub use config::{
    DhcpConfig, HexBytes, RaConfig, RateLimitConfig, StaticBinding, MAX_DUID_LEN, MIN_DUID_LEN,
};
pub use counters::Counters;
pub use duid::{duid_llt, duid_uuid, ServerIdentity, DUID_TIME_EPOCH};
pub use error::DhcpError;
pub use prefix::{interface_id, Prefix64};
pub use server::DhcpServer;
pub use store::{
    BindingStore, JournalStore, LoadReport, MemoryStore, PutOutcome, StoredState, JOURNAL_MAGIC,
    MAX_RECORD_LEN,
};
