//! Sans-IO SHIM6 context engine for a SHIM6 proxy
//! ([RFC 5533](https://www.rfc-editor.org/rfc/rfc5533)).
//!
//! One [`ContextEngine`] acts for every host of a site (each host's ULID is a CGA made with the
//! one site key) and any number of peers — other proxies or plain SHIM6 hosts. It establishes
//! contexts (I1/R1/I2/R2 with a stateless responder), recovers lost ones (R1bis/I2bis),
//! exchanges and verifies locator lists (Update Request/Ack, CGA signatures, HBA), runs one
//! REAP machine ([RFC 5534](https://www.rfc-editor.org/rfc/rfc5534), crate `reap`) per context,
//! and garbage-collects idle contexts. It never touches sockets, threads or clocks: the caller
//! feeds packets and `now`, and polls for [`Transmit`]s, [`ContextEvent`]s and the next timeout.
//!
//! Deliberate departures from RFC 5533's host model (a proxy's ULIDs are non-routable CMULAs):
//! every I1/I2/I2bis carries the ULID Pair option, our ULIDs never appear in our Locator Lists,
//! and a message without ULID Pair option addressed to one of our locators is taken to name
//! the host whose locator it is (prefix swap).

mod cache;
mod config;
mod context;
mod engine;
mod error;
mod event;
mod optwalk;
mod ratelimit;
mod site;
mod stats;
mod tags;
mod timer;
mod validator;
mod verify;

#[cfg(test)]
mod tests;

pub use config::{EngineConfig, VALIDATOR_MIN_LIFETIME};
pub use context::{ContextInfo, ContextState, PeerLocator};
pub use engine::{ContextEngine, MAX_UNREACHABLE};
pub use error::Shim6Error;
pub use event::{ConnectOutcome, ContextEvent, FailReason, RemoveReason, Transmit};
pub use site::{
    interface_id, join64, locator_for, prefix64, LocalProvider, ProviderId, SiteIdentity,
};
pub use stats::EngineStats;
pub use tags::{RandomTags, TagAllocator};
