//! Per-context state ([RFC 5533 §6.1, §6.2](https://www.rfc-editor.org/rfc/rfc5533#section-6.1))
//! and the read-only snapshot handed to callers.

use std::time::{Duration, Instant};

use wire::{ContextTag, Locator, LocatorPair, Nonce, Ulid, VerificationMethod};

use crate::verify::PeerPds;

/// State of a context that exists ([RFC 5533 §6.2](https://www.rfc-editor.org/rfc/rfc5533#section-6.2)).
///
/// IDLE is "no context"; E-FAILED and NO-SUPPORT are kept as hold-downs on the ULID pair, not
/// as contexts (see [`ConnectOutcome::HeldDown`](crate::ConnectOutcome::HeldDown)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextState {
    /// I1 sent, waiting for R1 or R2.
    I1Sent,
    /// I2 sent, waiting for R2.
    I2Sent,
    /// The peer lost the context: I2bis sent, waiting for R2 (still usable for payload).
    I2bisSent,
    /// Both ends have the context.
    Established,
}

impl ContextState {
    /// Whether payload may be translated ([RFC 5533 §11](https://www.rfc-editor.org/rfc/rfc5533#section-11)).
    pub fn usable(self) -> bool {
        matches!(self, Self::Established | Self::I2bisSent)
    }
}

/// One peer locator as the context knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLocator {
    /// The locator.
    pub locator: Locator,
    /// Verification method from the peer's Locator List; `None` for a locator we did not get
    /// from a list (the peer's routable ULID, or a contact address given to `connect`).
    pub method: Option<VerificationMethod>,
    /// Verified: bound to ULID(peer) by CGA signature or HBA membership, or it is ULID(peer)
    /// itself. Only verified locators are ever used as destinations after establishment.
    pub verified: bool,
    /// Locator Preferences flags (BROKEN 0x01, TRANSIENT 0x02).
    pub flags: u8,
    /// Locator Preferences priority.
    pub priority: u8,
    /// Locator Preferences weight.
    pub weight: u8,
}

impl PeerLocator {
    pub(crate) fn new(
        locator: Locator,
        method: Option<VerificationMethod>,
        verified: bool,
    ) -> Self {
        Self {
            locator,
            method,
            verified,
            flags: 0,
            priority: 0,
            weight: 0,
        }
    }

    /// Usable as a REAP destination: verified and not flagged BROKEN.
    pub fn usable(&self) -> bool {
        self.verified && self.flags & 0x01 == 0
    }
}

/// The usable locators of `locators` in the order the peer prefers them, which is the order
/// REAP explores them in (within each of its groups,
/// [RFC 5534 §4.3](https://www.rfc-editor.org/rfc/rfc5534#section-4.3): "the Shim6 protocol
/// also carries preference information"). Locator Preferences carry DNS SRV semantics
/// ([RFC 5533 §5.15.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3)): a lower
/// priority is preferred; among equal priorities, SRV picks in proportion to weight, and a
/// sequential exploration takes the heaviest first. Ties keep the Locator List order (a peer
/// that sends no preferences, or flags only, is explored in its list order).
pub(crate) fn preferred_order(locators: &[PeerLocator]) -> Vec<Locator> {
    let mut usable: Vec<&PeerLocator> = locators.iter().filter(|p| p.usable()).collect();
    // Stable: equal (priority, weight) keep their list order.
    usable.sort_by_key(|p| (p.priority, core::cmp::Reverse(p.weight)));
    usable.into_iter().map(|p| p.locator).collect()
}

/// A snapshot of one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInfo {
    /// CT(local).
    pub local_tag: ContextTag,
    /// CT(peer), once known.
    pub peer_tag: Option<ContextTag>,
    /// Our host's ULID.
    pub local_ulid: Ulid,
    /// The peer's ULID.
    pub peer_ulid: Ulid,
    /// Forked Instance Identifier (0 = the default context).
    pub fii: u32,
    /// State.
    pub state: ContextState,
    /// The pair payload uses (REAP's current outbound pair once established; the handshake
    /// pair before).
    pub pair: LocatorPair,
    /// Our locators for this host (providers that are up).
    pub local_locators: Vec<Locator>,
    /// Ls(peer) with verification flags and preferences.
    pub peer_locators: Vec<PeerLocator>,
    /// Generation of the peer's Locator List we hold.
    pub peer_generation: Option<u32>,
    /// REAP state, once established.
    pub reap_state: Option<wire::ReapState>,
    /// An Update Request of ours is waiting for its Acknowledgement.
    pub update_pending: bool,
}

/// Establishment / recovery exchange in progress.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    /// Initiator Nonce of our I1/I2 (re-used, shim6.md §10) or of our I2bis (fresh).
    pub(crate) nonce: Nonce,
    /// Pair (our locator, their locator) of the I2 / I2bis: the one the validator is bound to.
    pub(crate) pair: LocatorPair,
    /// Responder Nonce and validator from the R1 / R1bis.
    pub(crate) responder_nonce: Nonce,
    pub(crate) validator: Vec<u8>,
    /// Packet Context Tag from the R1bis (I2bis only).
    pub(crate) packet_tag: ContextTag,
}

/// An Update Request waiting for its Acknowledgement
/// ([RFC 5533 §10.1–§10.3](https://www.rfc-editor.org/rfc/rfc5533#section-10.1)).
#[derive(Debug, Clone)]
pub(crate) struct PendingUpdate {
    pub(crate) nonce: Nonce,
    pub(crate) generation: u32,
    pub(crate) prefs_version: u64,
    pub(crate) with_list: bool,
    pub(crate) retries: u32,
    pub(crate) deadline: Instant,
}

pub(crate) struct Context {
    pub(crate) local_tag: ContextTag,
    pub(crate) peer_tag: Option<ContextTag>,
    pub(crate) local_ulid: Ulid,
    pub(crate) peer_ulid: Ulid,
    pub(crate) fii: u32,
    pub(crate) state: ContextState,
    /// Ever reached ESTABLISHED (so a new Established is a re-establishment).
    pub(crate) was_established: bool,

    /// Ls(peer). Before establishment: the contact locators given to `connect` (unverified).
    pub(crate) peer_locators: Vec<PeerLocator>,
    /// How many leading entries of `peer_locators` came from the peer's Locator List.
    pub(crate) peer_list_len: usize,
    pub(crate) peer_generation: Option<u32>,
    /// Peer Locator List generations replaced by a later list (the last
    /// [`SUPERSEDED_GENERATIONS`]): an Update Request bringing one back is a replay or a stale
    /// retransmission overtaken by a newer request, and is dropped.
    pub(crate) superseded_generations: Vec<u32>,
    pub(crate) peer_pds: Option<PeerPds>,
    pub(crate) peer_keepalive: Option<u16>,
    /// ULID(peer) is routable (a SHIM6 host's ULID is one of its locators): it is then always a
    /// member of Ls(peer) ([RFC 5533 §2.2](https://www.rfc-editor.org/rfc/rfc5533#section-2.2)).
    pub(crate) peer_ulid_routable: bool,

    /// Initiator Nonce of our current I1 (also the I2's).
    pub(crate) i1_nonce: Nonce,
    /// I1s sent in the current attempt (first one included).
    pub(crate) i1_count: u32,
    pub(crate) handshake: Option<Handshake>,
    pub(crate) retries: u32,
    pub(crate) retransmit_at: Option<Instant>,

    /// The pair payload uses.
    pub(crate) pair: LocatorPair,
    /// Our locator traffic engineering wants the handshake (and so the first pair) to use.
    pub(crate) preferred_local: Option<Locator>,
    pub(crate) reap: Option<reap::ReapMachine>,

    /// Local list (generation, prefs version) the peer has: sent in I2/I2bis/R2 or acknowledged.
    pub(crate) local_sent: Option<(u32, u64)>,
    pub(crate) pds_sent: bool,
    pub(crate) update: Option<PendingUpdate>,

    pub(crate) last_activity: Instant,
    pub(crate) last_rx: Option<Instant>,
    pub(crate) last_tx: Option<Instant>,
    /// Last time an unknown-state payload made us resend I2/I2bis (bounded to one per second).
    pub(crate) last_nudge: Option<Instant>,
    /// Key of this context in the engine's timer set.
    pub(crate) deadline: Option<Instant>,
}

/// How many superseded peer Locator List generations a context remembers.
pub(crate) const SUPERSEDED_GENERATIONS: usize = 8;

/// Minimum spacing of I2/I2bis re-sends triggered by traffic (not by the timer).
pub(crate) const NUDGE_INTERVAL: Duration = Duration::from_secs(1);

impl Context {
    /// A new context in I1-SENT for `(local, peer, fii)`.
    pub(crate) fn new(
        local_tag: ContextTag,
        (local_ulid, peer_ulid, fii): (Ulid, Ulid, u32),
        pair: LocatorPair,
        i1_nonce: Nonce,
        now: Instant,
    ) -> Self {
        Self {
            local_tag,
            peer_tag: None,
            local_ulid,
            peer_ulid,
            fii,
            state: ContextState::I1Sent,
            was_established: false,
            peer_locators: Vec::new(),
            peer_list_len: 0,
            peer_generation: None,
            superseded_generations: Vec::new(),
            peer_pds: None,
            peer_keepalive: None,
            peer_ulid_routable: false,
            i1_nonce,
            i1_count: 0,
            handshake: None,
            retries: 0,
            retransmit_at: None,
            pair,
            preferred_local: None,
            reap: None,
            local_sent: None,
            pds_sent: false,
            update: None,
            last_activity: now,
            last_rx: None,
            last_tx: None,
            last_nudge: None,
            deadline: None,
        }
    }

    pub(crate) fn in_ls_peer(&self, loc: Locator) -> bool {
        self.peer_locators.iter().any(|p| p.locator == loc)
    }

    /// Peer locators REAP may use as destinations, in the peer's order of preference
    /// ([`preferred_order`]).
    pub(crate) fn usable_peer_locators(&self) -> Vec<Locator> {
        preferred_order(&self.peer_locators)
    }

    pub(crate) fn overlaps(&self, other: &[PeerLocator]) -> bool {
        self.peer_locators
            .iter()
            .any(|p| other.iter().any(|o| o.locator == p.locator))
    }

    pub(crate) fn next_deadline(&self, idle: Duration) -> Option<Instant> {
        let mut d = self.retransmit_at;
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |x: Instant| x.min(t)));
            }
        };
        take(self.update.as_ref().map(|u| u.deadline));
        take(self.reap.as_ref().and_then(reap::ReapMachine::poll_timeout));
        if self.state.usable() {
            take(self.last_activity.checked_add(idle));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(i: u16, flags: u8, priority: u8, weight: u8) -> PeerLocator {
        PeerLocator {
            flags,
            priority,
            weight,
            ..PeerLocator::new(
                Locator(std::net::Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1)),
                None,
                true,
            )
        }
    }

    #[test]
    fn peer_preferences_order_exploration_and_broken_ones_are_left_out() {
        let list = [
            loc(1, 0, 10, 0),
            loc(2, 0, 0, 5),
            loc(3, 0x01, 0, 0), // BROKEN
            loc(4, 0, 0, 50),
            loc(5, 0x02, 0, 5), // TRANSIENT: still usable
        ];
        let order: Vec<u16> = preferred_order(&list)
            .iter()
            .map(|l| l.0.segments()[2])
            .collect();
        // Priority 0 before 10; within priority 0 the heaviest first, equal weights in list
        // order; the BROKEN locator is not explored.
        assert_eq!(order, [4, 2, 5, 1]);
    }

    #[test]
    fn without_preferences_the_list_order_is_kept_and_unverified_ones_are_left_out() {
        let mut list: Vec<PeerLocator> = (1..=4).map(|i| loc(i, 0, 0, 0)).collect();
        list[2].verified = false;
        let order: Vec<u16> = preferred_order(&list)
            .iter()
            .map(|l| l.0.segments()[2])
            .collect();
        assert_eq!(order, [1, 2, 4]);
    }
}
