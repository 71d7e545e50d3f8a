//! Host bindings shared by the proxies of a site on etcd (issue 9, "shared state").
//!
//! [`EtcdStore`] is a [`dhcp::BindingStore`]: every write is an etcd transaction acknowledged
//! (committed by the cluster) before the DHCPv6 server answers, conditional on the binding's
//! `mod_revision` so that two proxies binding the same client at once end with the same CMULA.
//! A watch keeps the proxy's copy current: [`EtcdStore::poll_changes`] hands the bindings other
//! proxies wrote to the server ([`dhcp::DhcpServer::apply_stored`]). On start and after every
//! reconnection the store resynchronises (a range read at revision R, then a watch from R+1).
//!
//! The etcd client is async; it runs on its own thread with a tokio current-thread runtime
//! ([`worker`]) and talks to the caller (the slow path) through channels. The fast path never
//! sees it.
//!
//! Keys, under the configured prefix `P` (e.g. `/pshim6/site1`):
//! - `P/server-duid`: the site's DHCPv6 Server Identifier (raw DUID bytes);
//! - `P/bindings/<duid-hex>/<iaid>`: one binding, value = [`dhcp::Binding::encode`] (the lease
//!   journal's record: CGA modifier, prefix, collision count, Sec, CMULA, locators, lease
//!   times, declined addresses). With the site key, the value re-creates the CGA Parameter
//!   Data Structure ([RFC 3972 §3](https://www.rfc-editor.org/rfc/rfc3972#section-3)).

mod config;
mod store;
pub mod testing;
mod worker;

pub use config::{EtcdConfig, DEFAULT_TIMEOUT};
pub use store::{Change, EtcdCounters, EtcdStore};
