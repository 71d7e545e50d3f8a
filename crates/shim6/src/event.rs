//! What the engine hands back: packets to send, context changes for the data plane, and the
//! outcome of `connect`.

use std::net::Ipv6Addr;
use std::time::Instant;

use wire::{ContextTag, LocatorPair, Ulid};

/// A Shim6 control message to send. The data plane adds the IPv6 header (Next Header 140)
/// with `src` and `dst`.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// IPv6 source: one of our locators.
    pub src: Ipv6Addr,
    /// IPv6 destination: a peer locator.
    pub dst: Ipv6Addr,
    /// The Shim6 control message (checksum filled in).
    pub payload: Vec<u8>,
}

/// What `connect` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// A context for the ULID pair already exists (any state).
    Existing(ContextTag),
    /// A new context was created and its I1 queued.
    Started(ContextTag),
    /// The ULID pair is in E-FAILED or NO-SUPPORT hold-down until `until`
    /// ([RFC 5533 §7.8](https://www.rfc-editor.org/rfc/rfc5533#section-7.8)).
    HeldDown {
        /// When the hold-down ends.
        until: Instant,
        /// Which hold-down.
        reason: FailReason,
    },
    /// The engine is at `max_contexts`.
    Refused,
}

/// Why an establishment attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// No answer to I1_RETRIES_MAX retransmissions (E-FAILED, NO_R1_HOLDDOWN_TIME).
    EFailed,
    /// ICMPv6 Parameter Problem "unrecognized Next Header" quoting our I1
    /// (NO-SUPPORT, ICMP_HOLDDOWN_TIME).
    NoSupport,
    /// The engine refused to create the context (`max_contexts` or no free tag).
    Refused,
}

/// Why a context left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoveReason {
    /// `remove` was called.
    Explicit,
    /// No payload activity for `idle_timeout` ([RFC 5533 §9](https://www.rfc-editor.org/rfc/rfc5533#section-9)).
    Idle,
    /// The peer re-used our CT(peer) for another ULID pair: it lost this context
    /// ([RFC 5533 §7.15](https://www.rfc-editor.org/rfc/rfc5533#section-7.15)).
    Confusion,
    /// The local host was removed.
    LocalHostRemoved,
    /// Recovery (I2bis) got no answer: the context fell back to I1 and must not be used until
    /// a new `Established` ([RFC 5533 §7.19](https://www.rfc-editor.org/rfc/rfc5533#section-7.19)).
    RecoveryFailed,
    /// Re-establishment after a failed recovery ended in E-FAILED or NO-SUPPORT.
    Failed,
}

/// A change the data plane applies to its context table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextEvent {
    /// The context is ESTABLISHED: translate `local_ulid ↔ peer_ulid` on `pair`, send with
    /// `peer_tag`, accept payload carrying `local_tag`. Also re-sent (upsert) when a context is
    /// re-established; `recovered` is true when it was rebuilt by I2bis or after a lost context.
    Established {
        /// CT(local).
        local_tag: ContextTag,
        /// CT(peer).
        peer_tag: ContextTag,
        /// Our host's ULID.
        local_ulid: Ulid,
        /// The peer's ULID.
        peer_ulid: Ulid,
        /// The locator pair to use.
        pair: LocatorPair,
        /// Rebuilt after a context loss (I2bis, or re-establishment of a known pair).
        recovered: bool,
    },
    /// REAP or TE moved the context to another locator pair.
    PairChanged {
        /// CT(local).
        local_tag: ContextTag,
        /// The new pair.
        pair: LocatorPair,
    },
    /// The peer rebuilt its side with a new tag: send with `peer_tag` from now on.
    PeerTagChanged {
        /// CT(local).
        local_tag: ContextTag,
        /// The new CT(peer).
        peer_tag: ContextTag,
    },
    /// The context is gone (or no longer usable, see [`RemoveReason::RecoveryFailed`]).
    Removed {
        /// CT(local).
        local_tag: ContextTag,
        /// Why.
        reason: RemoveReason,
    },
    /// An establishment attempt for the ULID pair failed.
    Failed {
        /// Our host's ULID.
        local_ulid: Ulid,
        /// The peer's ULID.
        peer_ulid: Ulid,
        /// Why.
        reason: FailReason,
    },
}
