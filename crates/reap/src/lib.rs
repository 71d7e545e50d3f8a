//! Sans-IO REAP: SHIM6 failure detection and locator pair exploration
//! ([RFC 5534](https://www.rfc-editor.org/rfc/rfc5534)).
//!
//! One [`ReapMachine`] runs per ESTABLISHED SHIM6 context. It is fed the context's data-plane
//! activity (payload sent/received timestamps), received Keepalives and Probes, local locator
//! state and the clock, and answers with [`ReapTransmit`]s (Keepalive or Probe bodies for the
//! `wire` crate to emit), [`ReapEvent`]s (pair changes, explorations) and the next deadline.
//! It does no I/O, reads no clock and draws randomness only from a seeded RNG, so every
//! behaviour can be tested on a virtual clock (see `src/tests/`).
//!
//! Files: `config.rs` (timers, jitter, [`failover_bound`]), `machine.rs` (state, Forced
//! Bidirectional Detection), `explore.rs` (probes, exploration, TE), `locators.rs` (locator
//! inputs), `pairs.rs` (probe order), `reports.rs` (bounded report lists), `timer.rs`.

mod config;
mod error;
mod event;
mod explore;
mod locators;
mod machine;
mod pairs;
mod reports;
mod timer;

#[cfg(test)]
mod tests;

pub use config::{
    failover_bound, ReapConfig, KEEPALIVE_JITTER, PROBE_JITTER, SEND_TIMEOUT_JITTER,
};
pub use error::ReapError;
pub use event::{ExplorationReason, ReapEvent, ReapStats, ReapTransmit};
pub use machine::ReapMachine;
pub use pairs::{MAX_LOCATORS, MAX_PAIRS};
pub use reports::MAX_REPORTS;
pub use wire::ReapState;
