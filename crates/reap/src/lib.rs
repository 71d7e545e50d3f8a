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
//! ```
//! use std::time::{Duration, Instant};
//! use reap::{ReapConfig, ReapMachine, ReapState};
//! use wire::{ContextTag, Locator, LocatorPair, MessageBody};
//!
//! let l = |s: &str| Locator(s.parse().unwrap());
//! let (a1, a2, b1, b2) = (l("2001:db8:1::a"), l("2001:db8:2::a"), l("2001:db8:3::b"), l("2001:db8:4::b"));
//! let now = Instant::now();
//! let mut m = ReapMachine::new(
//!     ReapConfig::default(), now, ContextTag::new(0x1234).unwrap(),
//!     LocatorPair { local: a1, peer: b1 }, vec![a1, a2], vec![b1, b2], 42,
//! );
//! // We send payload and hear nothing back: after the Send Timeout (randomised, ≤ 15 s) the
//! // machine explores, probing a pair that shares no locator with the current one first.
//! m.on_payload_sent(now, now);
//! let deadline = m.poll_timeout().unwrap();
//! assert!(deadline <= now + Duration::from_secs(15));
//! m.handle_timeout(deadline);
//! assert_eq!(m.state(), ReapState::Exploring);
//! let probe = m.poll_transmit().unwrap();
//! assert_eq!(probe.pair, LocatorPair { local: a2, peer: b2 });
//! assert!(matches!(probe.body, MessageBody::Probe(_)));
//! ```
//!
//! Files: `config.rs` (timers, jitter, [`failover_bound`]), `machine.rs` (state, Forced
//! Bidirectional Detection), `explore.rs` (probes, exploration, TE), `locators.rs` (locator
//! inputs), `pairs.rs` (probe order), `reports.rs` (bounded report lists), `timer.rs`,
//! `withdraw.rs` (routing signal: pairs marked unreachable).

mod config;
mod error;
mod event;
mod explore;
mod locators;
mod machine;
mod pairs;
mod reports;
mod timer;
mod withdraw;

#[cfg(test)]
mod tests;

pub use config::{failover_bound, ReapConfig, KEEPALIVE_JITTER, PROBE_JITTER, SEND_TIMEOUT_JITTER};
pub use error::ReapError;
pub use event::{ExplorationReason, ReapEvent, ReapStats, ReapTransmit};
pub use machine::ReapMachine;
pub use pairs::{MAX_LOCATORS, MAX_PAIRS};
pub use reports::MAX_REPORTS;
pub use wire::ReapState;
