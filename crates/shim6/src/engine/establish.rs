//! Context establishment: I1 / R1 / I2 / R2 as initiator and responder, simultaneous open,
//! peer verification and context confusion
//! ([RFC 5533 §7](https://www.rfc-editor.org/rfc/rfc5533#section-7)).

use std::time::Instant;

use rand::RngCore;
use wire::{
    ContextTag, ErrorCode, Locator, LocatorList, LocatorPair, LocatorPreferences, Nonce, Ulid,
};

use super::dispatch::Rx;
use super::ContextEngine;
use crate::context::{Context, ContextState, Handshake, PeerLocator, NUDGE_INTERVAL};
use crate::event::{ConnectOutcome, ContextEvent, FailReason, RemoveReason};
use crate::optwalk::{find_option, OPT_LOCATOR_LIST};
use crate::site::ProviderId;
use crate::timer::{backoff, randomise};
use crate::validator::{ValidatorError, ValidatorInput};
use crate::verify::{PeerPds, VerifyFailure};
use crate::Shim6Error;

/// What a verified message tells us about the peer.
pub(super) struct PeerMaterial {
    pub(super) pds: Option<PeerPds>,
    pub(super) list: Option<LocatorList>,
}

/// A new Ls(peer).
pub(super) struct PeerSet {
    pub(super) locators: Vec<PeerLocator>,
    pub(super) list_len: usize,
    pub(super) generation: Option<u32>,
}

/// An I2 or I2bis that passed its validator check.
pub(super) struct Initiation {
    pub(super) recovery: bool,
    pub(super) initiator_tag: ContextTag,
    pub(super) nonce: Nonce,
    pub(super) local: Ulid,
    pub(super) peer: Ulid,
    pub(super) fii: u32,
    /// Tag not to re-use for CT(local) (the I2bis Packet Context Tag, RFC 5533 §7.20).
    pub(super) avoid: Option<ContextTag>,
}

/// Builds Ls(peer) from a verified Locator List: every entry verified, preferences applied when
/// they match the list, ULID(peer) added when it is routable.
pub(super) fn peer_set_from_list(
    peer: Ulid,
    routable: bool,
    list: &LocatorList,
    prefs: Option<&LocatorPreferences>,
) -> PeerSet {
    let mut locators: Vec<PeerLocator> = list
        .entries
        .iter()
        .map(|(l, m)| PeerLocator::new(*l, Some(*m), true))
        .collect();
    if let Some(p) = prefs {
        if p.generation == list.generation && p.elements.len() == locators.len() {
            apply_preferences(&mut locators, p);
        }
    }
    let list_len = locators.len();
    if routable && !locators.iter().any(|p| p.locator.0 == peer.0) {
        locators.push(PeerLocator::new(Locator(peer.0), None, true));
    }
    PeerSet {
        locators,
        list_len,
        generation: Some(list.generation),
    }
}

pub(super) fn apply_preferences(locators: &mut [PeerLocator], prefs: &LocatorPreferences) {
    let len = prefs.element_len;
    for (p, e) in locators.iter_mut().zip(&prefs.elements) {
        p.flags = e.flags;
        p.priority = if len >= 2 { e.priority } else { 0 };
        p.weight = if len >= 3 { e.weight } else { 0 };
    }
}

impl ContextEngine {
    /// Starts protecting the ULID pair `local ↔ peer`: allocates CT(local) and sends an I1
    /// (always with the ULID Pair option) to the first of `peer_locators`
    /// ([RFC 5533 §7.7](https://www.rfc-editor.org/rfc/rfc5533#section-7.7)). For a SHIM6 host
    /// peer, `peer` is one of its locators and may be in `peer_locators` too.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Ulid,
        peer: Ulid,
        peer_locators: &[Locator],
    ) -> Result<ConnectOutcome, Shim6Error> {
        self.connect_via(now, local, peer, peer_locators, None)
    }

    /// [`connect`](Self::connect), with the I1 sourced from our locator on provider `via`
    /// when it is up (traffic engineering picks the provider of a new communication; the
    /// first pair of a context is the one its handshake used). Later I1 retransmissions still
    /// walk every locator, so a dead `via` cannot stall the exchange.
    pub fn connect_via(
        &mut self,
        now: Instant,
        local: Ulid,
        peer: Ulid,
        peer_locators: &[Locator],
        via: Option<ProviderId>,
    ) -> Result<ConnectOutcome, Shim6Error> {
        if !self.site.is_host(local) {
            return Err(Shim6Error::UnknownLocalUlid(local));
        }
        if let Some(tag) = self.table.find(local, peer, 0) {
            return Ok(ConnectOutcome::Existing(tag));
        }
        if let Some(&(until, reason)) = self.holddowns.get(&(local, peer)) {
            if until > now {
                return Ok(ConnectOutcome::HeldDown { until, reason });
            }
            self.holddowns.remove(&(local, peer));
            self.holddown_timers.remove(&(until, local, peer));
        }
        if peer_locators.is_empty() {
            return Err(Shim6Error::NoPeerLocators);
        }
        if self.site.up_locators(local).is_empty() {
            return Err(Shim6Error::NoLocalLocator);
        }
        if self.table.len() >= self.config.max_contexts {
            self.stats.refused_cap += 1;
            self.events.push_back(ContextEvent::Failed {
                local_ulid: local,
                peer_ulid: peer,
                reason: FailReason::Refused,
            });
            return Ok(ConnectOutcome::Refused);
        }
        let Some(tag) = self.allocate_tag(None) else {
            self.stats.tag_exhausted += 1;
            return Err(Shim6Error::TagSpaceExhausted);
        };
        let first = LocatorPair {
            local: Locator(local.0),
            peer: peer_locators[0],
        };
        let nonce = Nonce(self.rng.next_u32());
        let mut ctx = Context::new(tag, (local, peer, 0), first, nonce, now);
        for l in peer_locators {
            if !ctx.in_ls_peer(*l) {
                // Contact addresses (e.g. from DNS): destinations of I1 only, not verified.
                ctx.peer_locators.push(PeerLocator::new(*l, None, false));
            }
        }
        ctx.peer_ulid_routable = peer_locators.iter().any(|l| l.0 == peer.0);
        ctx.preferred_local = via.and_then(|id| self.site.provider_locator(id, local));
        self.start_i1(now, &mut ctx);
        self.put(ctx);
        Ok(ConnectOutcome::Started(tag))
    }

    /// Sends the first I1 of an attempt and arms the I1 timer.
    pub(super) fn start_i1(&mut self, now: Instant, ctx: &mut Context) {
        ctx.state = ContextState::I1Sent;
        ctx.handshake = None;
        ctx.i1_count = 0;
        ctx.retries = 0;
        self.send_i1(ctx);
        self.stats.i1_sent += 1;
        let t = randomise(backoff(self.config.i1_timeout, 0, None), &mut self.rng);
        ctx.retransmit_at = Some(now + t);
    }

    /// ULIDs of an I1/I2/I2bis: from the ULID Pair option, else from the IPv6 header, where our
    /// "ULID" is the host whose locator the destination is (prefix swap; a proxy's ULIDs are
    /// never locators). The local ULID must be one of our hosts and `dst` one of its locators.
    pub(super) fn resolve_ulids(&mut self, rx: &Rx<'_>) -> Option<(Ulid, Ulid)> {
        let resolved = match rx.repr.ulid_pair() {
            Some((sender, receiver)) => (self.site.is_host(receiver)
                && self.site.owns(receiver, rx.dst))
            .then_some((receiver, sender)),
            None => self
                .site
                .host_of_locator(rx.dst)
                .map(|local| (local, Ulid(rx.src.0))),
        };
        if resolved.is_none() {
            self.stats.rx_not_for_us += 1;
        }
        resolved
    }

    /// I1 ([RFC 5533 §7.9](https://www.rfc-editor.org/rfc/rfc5533#section-7.9)).
    pub(super) fn on_i1(&mut self, rx: &Rx<'_>, initiator_tag: ContextTag, nonce: Nonce) {
        let Some((local, peer)) = self.resolve_ulids(rx) else {
            return;
        };
        let fii = rx.repr.forked_instance().unwrap_or(0);
        let input = ValidatorInput::R1 {
            initiator_tag,
            src: rx.src,
            dst: rx.dst,
            sender: peer,
            receiver: local,
            fii,
        };
        let Some(tag) = self.table.find(local, peer, fii) else {
            // IDLE (or a hold-down, processed as IDLE): stateless R1.
            self.send_r1(rx.now, rx.dst, rx.src, nonce, &input);
            return;
        };
        let Some(mut ctx) = self.table.take(tag) else {
            return;
        };
        match ctx.state {
            ContextState::Established => {
                let locators_match = rx.repr.ulid_pair().is_none() || ctx.in_ls_peer(rx.src);
                if locators_match && ctx.peer_tag == Some(initiator_tag) {
                    // Our R2 was lost: answer from the existing context.
                    self.send_r2(&mut ctx, rx.dst, rx.src, nonce);
                } else {
                    // Peer restarted (or stale locators): R1, keep the old context until an
                    // I2 arrives (RFC 5533 §7.6).
                    self.send_r1(rx.now, rx.dst, rx.src, nonce, &input);
                }
            }
            // Concurrent establishment (RFC 5533 §7.4): R2, CT(peer) unchanged.
            _ => self.send_r2(&mut ctx, rx.dst, rx.src, nonce),
        }
        self.put(ctx);
    }

    /// R1 ([RFC 5533 §7.11](https://www.rfc-editor.org/rfc/rfc5533#section-7.11)).
    pub(super) fn on_r1(&mut self, rx: &Rx<'_>, nonce: Nonce, responder_nonce: Nonce) {
        let Some(validator) = rx.repr.responder_validator() else {
            self.stats.rx_malformed += 1;
            return;
        };
        let mut found = None;
        let mut other_state = false;
        for tag in self.table.by_nonce(nonce) {
            let Some(c) = self.table.get(tag) else {
                continue;
            };
            if c.i1_nonce != nonce || !self.site.owns(c.local_ulid, rx.dst) || !c.in_ls_peer(rx.src)
            {
                continue;
            }
            if c.state == ContextState::I1Sent {
                found = Some(tag);
                break;
            }
            other_state = true;
        }
        let Some(mut ctx) = found.and_then(|t| self.table.take(t)) else {
            if other_state {
                // A reply to a retransmitted I1: MUST be discarded.
                self.stats.discarded_in_state += 1;
            } else {
                self.stats.wrong_nonce += 1;
            }
            return;
        };
        ctx.handshake = Some(Handshake {
            nonce,
            pair: LocatorPair {
                local: rx.dst,
                peer: rx.src,
            },
            responder_nonce,
            validator: validator.to_vec(),
            packet_tag: ContextTag::default(),
        });
        ctx.pair = LocatorPair {
            local: rx.dst,
            peer: rx.src,
        };
        ctx.state = ContextState::I2Sent;
        ctx.retries = 0;
        self.send_i2(&mut ctx);
        let t = randomise(backoff(self.config.i2_timeout, 0, None), &mut self.rng);
        ctx.retransmit_at = Some(rx.now + t);
        self.put(ctx);
    }

    /// I2 ([RFC 5533 §7.13](https://www.rfc-editor.org/rfc/rfc5533#section-7.13)).
    pub(super) fn on_i2(
        &mut self,
        rx: &Rx<'_>,
        initiator_tag: ContextTag,
        nonce: Nonce,
        responder_nonce: Nonce,
    ) {
        let Some((local, peer)) = self.resolve_ulids(rx) else {
            return;
        };
        let fii = rx.repr.forked_instance().unwrap_or(0);
        let input = ValidatorInput::R1 {
            initiator_tag,
            src: rx.src,
            dst: rx.dst,
            sender: peer,
            receiver: local,
            fii,
        };
        if !self.check_validator(rx, responder_nonce, &input) {
            return;
        }
        let init = Initiation {
            recovery: false,
            initiator_tag,
            nonce,
            local,
            peer,
            fii,
            avoid: None,
        };
        self.accept_initiation(rx, init);
    }

    /// Checks the echoed Responder Validator; counts stale and bad ones.
    pub(super) fn check_validator(
        &mut self,
        rx: &Rx<'_>,
        responder_nonce: Nonce,
        input: &ValidatorInput,
    ) -> bool {
        let Some(v) = rx.repr.responder_validator() else {
            self.stats.bad_validator += 1;
            return false;
        };
        match self
            .validators
            .check(rx.now, &mut self.rng, responder_nonce, v, input)
        {
            Ok(()) => true,
            Err(ValidatorError::Stale) => {
                self.stats.stale_validator += 1;
                false
            }
            Err(ValidatorError::Mismatch) => {
                self.stats.bad_validator += 1;
                false
            }
        }
    }

    /// PDS ↔ ULID(peer) binding and Locator List verification of a received I2 / I2bis / R2 /
    /// Update Request ([RFC 5533 §7.2](https://www.rfc-editor.org/rfc/rfc5533#section-7.2)).
    /// A PDS mismatch is dropped silently; an unverifiable list gets Error code 2.
    pub(super) fn verify_peer(
        &mut self,
        rx: &Rx<'_>,
        peer: Ulid,
        cached: Option<&PeerPds>,
    ) -> Option<PeerMaterial> {
        let pds = match rx.repr.cga_parameters() {
            Some(bytes) => match self.verifier.check_pds(peer, bytes) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.stats.pds_mismatch += 1;
                    return None;
                }
            },
            None => cached.cloned(),
        };
        let list = rx.repr.locator_list().cloned();
        if let Some(l) = &list {
            let result = match &pds {
                Some(p) => self.verifier.check_list(p, l, rx.repr.cga_signature()),
                None => Err(VerifyFailure::NoPds),
            };
            if let Err(failure) = result {
                let index = match failure {
                    VerifyFailure::BadSignature { index } => {
                        self.stats.bad_signature += 1;
                        index
                    }
                    VerifyFailure::Method { index } | VerifyFailure::NotHbaMember { index } => {
                        self.stats.forged_locator_list += 1;
                        index
                    }
                    VerifyFailure::NoPds | VerifyFailure::PdsMismatch => {
                        self.stats.forged_locator_list += 1;
                        0
                    }
                };
                if let Some(off) = find_option(rx.bytes, OPT_LOCATOR_LIST) {
                    // Pointer → the Verification Method octet of the offending locator:
                    // option header (4) + generation (4) + Num Locators (1) + index.
                    let offset = off + 9 + index;
                    self.send_error(
                        rx.now,
                        rx.src,
                        rx.dst,
                        ErrorCode::LocatorVerificationFailed,
                        offset,
                        rx.bytes,
                    );
                }
                return None;
            }
        }
        Some(PeerMaterial { pds, list })
    }

    /// The Ls(peer) an I2 / I2bis / R2 establishes: its verified list, else the existing one,
    /// else ULID(peer) alone when it is routable (a single-address SHIM6 host).
    fn new_peer_set(
        &self,
        rx: &Rx<'_>,
        peer: Ulid,
        routable: bool,
        m: &PeerMaterial,
        existing: Option<&Context>,
    ) -> PeerSet {
        if let Some(list) = &m.list {
            return peer_set_from_list(peer, routable, list, rx.repr.locator_preferences());
        }
        if let Some(c) = existing.filter(|c| c.was_established) {
            return PeerSet {
                locators: c.peer_locators.clone(),
                list_len: c.peer_list_len,
                generation: c.peer_generation,
            };
        }
        let locators = if routable {
            vec![PeerLocator::new(Locator(peer.0), None, true)]
        } else {
            Vec::new()
        };
        PeerSet {
            locators,
            list_len: 0,
            generation: None,
        }
    }

    /// Common part of a valid I2 / I2bis: verify, then create or update the context and answer
    /// R2 ([RFC 5533 §7.13, §7.20](https://www.rfc-editor.org/rfc/rfc5533#section-7.13)).
    pub(super) fn accept_initiation(&mut self, rx: &Rx<'_>, init: Initiation) {
        let existing = self.table.find(init.local, init.peer, init.fii);
        let cached = existing
            .and_then(|t| self.table.get(t))
            .and_then(|c| c.peer_pds.clone());
        let Some(material) = self.verify_peer(rx, init.peer, cached.as_ref()) else {
            return;
        };
        let existing_ctx = existing.and_then(|t| self.table.get(t));
        let routable =
            rx.src.0 == init.peer.0 || existing_ctx.is_some_and(|c| c.peer_ulid_routable);
        let set = self.new_peer_set(rx, init.peer, routable, &material, existing_ctx);
        // The source locator must be bound to ULID(peer) (RFC 5533 §7.13; we also require it
        // in IDLE): it becomes the destination of everything we send.
        if !set
            .locators
            .iter()
            .any(|p| p.locator == rx.src && p.verified)
        {
            self.stats.forged_locator_list += 1;
            return;
        }
        let pair = LocatorPair {
            local: rx.dst,
            peer: rx.src,
        };
        let mut ctx = match existing.and_then(|t| self.table.take(t)) {
            Some(c) => c,
            None => {
                if self.table.len() >= self.config.max_contexts {
                    self.stats.i2_dropped_cap += 1;
                    return;
                }
                let Some(tag) = self.allocate_tag(init.avoid) else {
                    self.stats.tag_exhausted += 1;
                    return;
                };
                let nonce = Nonce(self.rng.next_u32());
                // Created as I1-SENT-like shell, established right below.
                Context::new(tag, (init.local, init.peer, init.fii), pair, nonce, rx.now)
            }
        };
        let old_peer_tag = ctx.peer_tag;
        ctx.peer_tag = Some(init.initiator_tag);
        ctx.peer_ulid_routable = routable;
        self.install_peer(&mut ctx, material, set, rx.repr.keepalive_timeout());
        self.send_r2(&mut ctx, rx.dst, rx.src, init.nonce);
        if ctx.state == ContextState::I1Sent {
            ctx.pair = pair;
            if init.recovery {
                self.stats.recovered += 1;
            }
            let recovered = init.recovery || ctx.was_established;
            self.establish(rx.now, &mut ctx, recovered);
        } else {
            if ctx.state.usable() && old_peer_tag != ctx.peer_tag {
                self.events.push_back(ContextEvent::PeerTagChanged {
                    local_tag: ctx.local_tag,
                    peer_tag: init.initiator_tag,
                });
            }
            self.refresh_reap(rx.now, &mut ctx);
        }
        let tag = ctx.local_tag;
        self.put(ctx);
        self.check_confusion(tag);
    }

    /// Records verified peer information in a context.
    pub(super) fn install_peer(
        &mut self,
        ctx: &mut Context,
        m: PeerMaterial,
        set: PeerSet,
        keepalive: Option<u16>,
    ) {
        if let Some(p) = m.pds {
            ctx.peer_pds = Some(p);
        }
        ctx.peer_locators = set.locators;
        ctx.peer_list_len = set.list_len;
        ctx.peer_generation = set.generation;
        if keepalive.is_some() {
            ctx.peer_keepalive = keepalive;
        }
    }

    /// R2 ([RFC 5533 §7.16](https://www.rfc-editor.org/rfc/rfc5533#section-7.16)).
    pub(super) fn on_r2(&mut self, rx: &Rx<'_>, responder_tag: ContextTag, nonce: Nonce) {
        let mut found = None;
        let mut established = false;
        for tag in self.table.by_nonce(nonce) {
            let Some(c) = self.table.get(tag) else {
                continue;
            };
            if !self.site.owns(c.local_ulid, rx.dst) || !c.in_ls_peer(rx.src) {
                continue;
            }
            let hs_nonce = c.handshake.as_ref().map(|h| h.nonce);
            let matches = match c.state {
                ContextState::I1Sent | ContextState::I2Sent => {
                    c.i1_nonce == nonce || hs_nonce == Some(nonce)
                }
                ContextState::I2bisSent => hs_nonce == Some(nonce),
                ContextState::Established => {
                    established |= c.i1_nonce == nonce;
                    false
                }
            };
            if matches {
                found = Some(tag);
                break;
            }
        }
        let Some(tag) = found else {
            if established {
                // A reply to a retransmitted I2: ignored (RFC 5533 §7.16).
                self.stats.discarded_in_state += 1;
            } else {
                self.stats.wrong_nonce += 1;
            }
            return;
        };
        let cached = self.table.get(tag).and_then(|c| c.peer_pds.clone());
        let peer = match self.table.get(tag) {
            Some(c) => c.peer_ulid,
            None => return,
        };
        let Some(material) = self.verify_peer(rx, peer, cached.as_ref()) else {
            return;
        };
        let Some(mut ctx) = self.table.take(tag) else {
            return;
        };
        let routable = ctx.peer_ulid_routable || rx.src.0 == peer.0;
        let set = self.new_peer_set(rx, peer, routable, &material, Some(&ctx));
        if !set
            .locators
            .iter()
            .any(|p| p.locator == rx.src && p.verified)
        {
            self.stats.forged_locator_list += 1;
            self.put(ctx);
            return;
        }
        let old_peer_tag = ctx.peer_tag;
        ctx.peer_tag = Some(responder_tag);
        ctx.peer_ulid_routable = routable;
        self.install_peer(&mut ctx, material, set, rx.repr.keepalive_timeout());
        if ctx.state == ContextState::I2bisSent {
            // Recovery complete: the peer rebuilt its side with a fresh tag.
            ctx.state = ContextState::Established;
            ctx.handshake = None;
            ctx.retransmit_at = None;
            ctx.retries = 0;
            self.stats.recoveries_completed += 1;
            if old_peer_tag != ctx.peer_tag {
                self.events.push_back(ContextEvent::PeerTagChanged {
                    local_tag: ctx.local_tag,
                    peer_tag: responder_tag,
                });
            }
            self.refresh_reap(rx.now, &mut ctx);
            self.maybe_update(rx.now, &mut ctx);
        } else {
            ctx.pair = LocatorPair {
                local: rx.dst,
                peer: rx.src,
            };
            let recovered = ctx.was_established;
            self.establish(rx.now, &mut ctx, recovered);
        }
        self.put(ctx);
        self.check_confusion(tag);
    }

    /// Moves a context to ESTABLISHED: starts REAP and tells the data plane.
    pub(super) fn establish(&mut self, now: Instant, ctx: &mut Context, recovered: bool) {
        ctx.state = ContextState::Established;
        ctx.handshake = None;
        ctx.retransmit_at = None;
        ctx.retries = 0;
        ctx.was_established = true;
        ctx.last_activity = now;
        if let Some((until, _)) = self.holddowns.remove(&(ctx.local_ulid, ctx.peer_ulid)) {
            self.holddown_timers
                .remove(&(until, ctx.local_ulid, ctx.peer_ulid));
        }
        self.stats.established += 1;
        let Some(peer_tag) = ctx.peer_tag else { return };
        self.start_reap(now, ctx, peer_tag);
        self.events.push_back(ContextEvent::Established {
            local_tag: ctx.local_tag,
            peer_tag,
            local_ulid: ctx.local_ulid,
            peer_ulid: ctx.peer_ulid,
            pair: ctx.pair,
            recovered,
        });
        self.drain_reap(ctx);
        self.maybe_update(now, ctx);
    }

    /// Context confusion ([RFC 5533 §7.15](https://www.rfc-editor.org/rfc/rfc5533#section-7.15)):
    /// another ESTABLISHED / I2BIS-SENT context with the same CT(peer) and an overlapping
    /// Ls(peer) belongs to a context the peer has lost; it must not be used any more.
    pub(super) fn check_confusion(&mut self, tag: ContextTag) {
        let Some(ctx) = self.table.get(tag) else {
            return;
        };
        let Some(peer_tag) = ctx.peer_tag else { return };
        let locators = ctx.peer_locators.clone();
        for other in self.table.by_peer_tag(peer_tag) {
            if other == tag {
                continue;
            }
            let confused = self
                .table
                .get(other)
                .is_some_and(|o| o.state.usable() && o.overlaps(&locators));
            if confused {
                if let Some(o) = self.table.take(other) {
                    self.stats.confusion_removed += 1;
                    self.drop_context(o, Some(RemoveReason::Confusion));
                }
            }
        }
    }

    /// Traffic reached a context waiting for R2: re-send I2 / I2bis (at most once per second)
    /// ([RFC 5533 §12.2](https://www.rfc-editor.org/rfc/rfc5533#section-12.2), §10.4).
    pub(super) fn nudge(&mut self, now: Instant, ctx: &mut Context) {
        if ctx
            .last_nudge
            .is_some_and(|t| now.saturating_duration_since(t) < NUDGE_INTERVAL)
        {
            return;
        }
        ctx.last_nudge = Some(now);
        match ctx.state {
            ContextState::I2Sent => self.send_i2(ctx),
            ContextState::I2bisSent => self.send_i2bis(ctx),
            _ => {}
        }
    }
}
