//! What a [`ReapMachine`](crate::ReapMachine) hands back: packets to send, events, counters.

use std::time::Duration;

use wire::{Locator, LocatorPair, MessageBody, ReapState};

/// A REAP message to send ([RFC 5534 §5.1–§5.2]): a Keepalive on the current pair or a Probe on
/// the pair being tested. Neither is translated nor carries a payload extension header
/// (`spec/reap.md` §3, §5).
///
/// [RFC 5534 §5.1–§5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.1
#[must_use = "a REAP message that is not sent breaks failure detection"]
#[derive(Clone, Debug, PartialEq)]
pub struct ReapTransmit {
    /// IPv6 source (`local`) and destination (`peer`) of the packet.
    pub pair: LocatorPair,
    /// [`MessageBody::Keepalive`] or [`MessageBody::Probe`], addressed to the peer's context tag.
    pub body: MessageBody,
}

/// Why an exploration started ([RFC 5534 §6.4], `spec/reap.md` §6–§7).
///
/// [RFC 5534 §6.4]: https://www.rfc-editor.org/rfc/rfc5534#section-6.4
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExplorationReason {
    /// The Send Timer expired in Operational: we sent, and heard nothing for a Send Timeout.
    SendTimeout,
    /// The Send Timer expired in InboundOk: the peer never confirmed our probes
    /// ([RFC 5534 §6.4](https://www.rfc-editor.org/rfc/rfc5534#section-6.4)).
    InboundOkTimeout,
    /// The local locator of the current pair went down ([RFC 5534 §3.2, §4.1]).
    ///
    /// [RFC 5534 §3.2, §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
    LocalLocatorDown(Locator),
    /// A locator of the current pair left the context's locator sets
    /// ([RFC 5533 §10.4](https://www.rfc-editor.org/rfc/rfc5533#section-10.4)).
    CurrentPairRemoved,
    /// A routing signal marked the current pair unreachable (the provider of its local locator
    /// withdrew the route to its peer locator) and the probe of another pair went unanswered.
    PathUnreachable,
}

/// Something the owner of a machine may want to act on or log ([RFC 5534 §9] RECOMMENDS
/// reporting failures and failovers).
///
/// [RFC 5534 §9]: https://www.rfc-editor.org/rfc/rfc5534#section-9
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReapEvent {
    /// The REAP state changed.
    StateChanged {
        /// State before.
        old: ReapState,
        /// State now.
        new: ReapState,
    },
    /// We started exploring ([RFC 5534 §4.2](https://www.rfc-editor.org/rfc/rfc5534#section-4.2)).
    ExplorationStarted {
        /// What triggered it.
        reason: ExplorationReason,
    },
    /// An exploration we started ended with both directions working.
    ExplorationSucceeded {
        /// The current (outbound) pair afterwards.
        pair: LocatorPair,
        /// Time since the exploration started.
        elapsed: Duration,
    },
    /// The current outbound pair changed: payload and keepalives now use `new`
    /// ([RFC 5534 §6.8](https://www.rfc-editor.org/rfc/rfc5534#section-6.8)). The ULP SHOULD be
    /// told (§4.2).
    PairChanged {
        /// Pair before.
        old: LocatorPair,
        /// Pair now.
        new: LocatorPair,
    },
    /// A pair asked for with [`prefer_pair`](crate::ReapMachine::prefer_pair) was not confirmed
    /// (no answer to the probes, or it became unusable); the current pair is kept.
    PreferredPairFailed {
        /// The pair that was tried.
        pair: LocatorPair,
    },
    /// The probe gap reached Max Probe Timeout: a hint to garbage-collect the context
    /// ([RFC 5534 §4.3](https://www.rfc-editor.org/rfc/rfc5534#section-4.3)).
    ProbeBackoffMaxed,
}

/// Counters of one machine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReapStats {
    /// Probes queued for sending.
    pub probes_sent: u64,
    /// Probes accepted by [`on_probe`](crate::ReapMachine::on_probe).
    pub probes_received: u64,
    /// Probes ignored: undefined state, no sent report, or locators outside the sets.
    pub probes_ignored: u64,
    /// Keepalives queued for sending.
    pub keepalives_sent: u64,
    /// Keepalives received.
    pub keepalives_received: u64,
    /// Explorations started by this side.
    pub explorations: u64,
    /// Changes of the current pair.
    pub pair_changes: u64,
    /// Changes of the current pair away from a pair marked unreachable by a routing signal
    /// ([`set_path_unreachable`](crate::ReapMachine::set_path_unreachable)).
    pub unreachable_moves: u64,
    /// Transmits or events dropped because the owner did not poll them (queues are bounded).
    pub dropped: u64,
}
