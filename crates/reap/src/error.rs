//! The one error type of this crate.

use wire::{Locator, LocatorPair};

/// What can go wrong when configuring or steering a [`ReapMachine`](crate::ReapMachine).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ReapError {
    /// A timeout of the configuration is zero; the machine would spin.
    #[error("REAP configuration: {field} must not be zero")]
    ZeroTimeout {
        /// The offending [`ReapConfig`](crate::ReapConfig) field.
        field: &'static str,
    },
    /// A timeout is too long: above the 16-bit seconds of the Keepalive Timeout option
    /// ([RFC 5534 §5.3](https://www.rfc-editor.org/rfc/rfc5534#section-5.3)), or a probe
    /// timeout above a day.
    #[error("REAP configuration: {field} is too long")]
    TimeoutTooLong {
        /// The offending [`ReapConfig`](crate::ReapConfig) field.
        field: &'static str,
    },
    /// Max Probe Timeout is below Initial Probe Timeout, so the probe gap could not back off
    /// ([RFC 5534 §4.3](https://www.rfc-editor.org/rfc/rfc5534#section-4.3)).
    #[error("REAP configuration: max_probe_timeout is below initial_probe_timeout")]
    MaxProbeBelowInitial,
    /// The pair names a locator that is not in the context's local or (verified) peer locator
    /// set; only verified peer locators may be probed
    /// ([RFC 5534 §8](https://www.rfc-editor.org/rfc/rfc5534#section-8)).
    #[error("locator {0} is not in the context's locator sets")]
    UnknownLocator(Locator),
    /// The pair's local locator is known to be down locally
    /// ([RFC 5534 §3.2](https://www.rfc-editor.org/rfc/rfc5534#section-3.2)).
    #[error("local locator {0} is down")]
    LocatorDown(Locator),
    /// A routing signal marked the pair unreachable
    /// ([`set_path_unreachable`](crate::ReapMachine::set_path_unreachable)).
    #[error("pair {} -> {} is marked unreachable by routing", .0.local, .0.peer)]
    PathUnreachable(LocatorPair),
}
