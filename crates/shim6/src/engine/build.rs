//! Building and queueing the messages we send
//! ([RFC 5533 §5.4–§5.14](https://www.rfc-editor.org/rfc/rfc5533#section-5.4)).

use std::net::Ipv6Addr;
use std::time::Instant;

use wire::{
    ContextTag, ControlRepr, ErrorCode, Locator, LocatorPair, MessageBody, Nonce, ShimOption,
};

use super::ContextEngine;
use crate::context::Context;
use crate::event::Transmit;
use crate::validator::ValidatorInput;

/// Largest "packet in error" in an Error message: 1280 − 40 (IPv6) − 8 (Error header)
/// ([RFC 5533 §5.14](https://www.rfc-editor.org/rfc/rfc5533#section-5.14)).
const MAX_PACKET_IN_ERROR: usize = 1232;
/// Hop limit written into the IPv6 header we rebuild for an Error message's "packet in error"
/// (the data plane hands us only the Shim6 header and the addresses).
const QUOTED_HOP_LIMIT: u8 = 64;

impl ContextEngine {
    /// Serialises and queues a control message.
    pub(super) fn emit(
        &mut self,
        src: Locator,
        dst: Locator,
        body: MessageBody,
        options: Vec<ShimOption>,
    ) {
        let repr = ControlRepr { body, options };
        match repr.to_bytes() {
            Ok(payload) => self.outbox.push_back(Transmit {
                src: src.0,
                dst: dst.0,
                payload,
            }),
            Err(_) => self.stats.emit_failed += 1,
        }
    }

    fn keepalive_option(&self) -> ShimOption {
        // Always sent, value = our Send Timeout (RFC 5534 §5.3; "always" is our choice).
        ShimOption::KeepaliveTimeout(self.config.reap.announced_keepalive_timeout())
    }

    /// Locator List (+ Locator Preferences when a provider is down), PDS and CGA Signature of
    /// the context's host, for I2 / I2bis / R2; records that the peer gets this list.
    fn locator_options(&mut self, ctx: &mut Context) -> Vec<ShimOption> {
        let mut options = Vec::with_capacity(5);
        let Some(list) = self.site.locator_list(ctx.local_ulid) else {
            return options;
        };
        let Some(host_pds) = self.site.hosts.get(&ctx.local_ulid).map(|h| h.pds.clone()) else {
            return options;
        };
        let sig = match self
            .site
            .signature(ctx.local_ulid, &list, self.config.cache_signatures)
        {
            Ok(s) => s,
            Err(_) => {
                self.stats.emit_failed += 1;
                return options;
            }
        };
        self.stats.signatures_made = self.site.signatures_made;
        options.push(ShimOption::LocatorList(list));
        if self.site.advertise_preferences() {
            if let Some(p) = self.site.preferences() {
                options.push(ShimOption::LocatorPreferences(p));
            }
        }
        options.push(ShimOption::CgaParameters(host_pds.as_ref().clone()));
        options.push(ShimOption::CgaSignature(sig.as_ref().clone()));
        ctx.local_sent = Some((self.site.generation, self.site.prefs_version));
        ctx.pds_sent = true;
        options
    }

    fn ulid_pair_option(ctx: &Context) -> ShimOption {
        ShimOption::UlidPair {
            sender: ctx.local_ulid,
            receiver: ctx.peer_ulid,
        }
    }

    /// The pair of the `k`-th I1 of an attempt: retransmissions walk through
    /// peer locators first, then our up locators, so one dead locator cannot stall the exchange.
    fn i1_pair(&self, ctx: &Context, k: usize) -> Option<LocatorPair> {
        let mut locals = self.site.up_locators(ctx.local_ulid);
        if locals.is_empty() {
            locals = self.site.all_locators(ctx.local_ulid);
        }
        // Traffic engineering chose the provider: its locator sources the first I1.
        if let Some(i) = ctx
            .preferred_local
            .and_then(|l| locals.iter().position(|x| *x == l))
        {
            locals.rotate_left(i);
        }
        let peers: Vec<Locator> = ctx.peer_locators.iter().map(|p| p.locator).collect();
        let nth = |k: usize| -> Option<LocatorPair> {
            let peer = *peers.get(k % peers.len().max(1))?;
            let local = *locals.get((k / peers.len().max(1)) % locals.len().max(1))?;
            Some(LocatorPair { local, peer })
        };
        if self.unreachable_marks() == 0 {
            return nth(k);
        }
        // A routing signal marked some pairs unreachable: the walk tries them last.
        let all: Vec<LocatorPair> = (0..peers.len() * locals.len()).filter_map(nth).collect();
        let (mut walk, marked): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|p| !self.pair_unreachable(ctx.local_ulid, *p));
        walk.extend(marked);
        walk.get(k % walk.len().max(1)).copied()
    }

    /// Sends (or re-sends) the I1 of the current attempt, always with the ULID Pair option
    /// ([RFC 5533 §7.7](https://www.rfc-editor.org/rfc/rfc5533#section-7.7)).
    pub(super) fn send_i1(&mut self, ctx: &mut Context) {
        let Some(pair) = self.i1_pair(ctx, ctx.i1_count as usize) else {
            return;
        };
        ctx.pair = pair;
        ctx.i1_count += 1;
        let mut options = vec![Self::ulid_pair_option(ctx)];
        if ctx.fii != 0 {
            options.push(ShimOption::ForkedInstance(ctx.fii));
        }
        let body = MessageBody::I1 {
            initiator_tag: ctx.local_tag,
            initiator_nonce: ctx.i1_nonce,
        };
        self.emit(pair.local, pair.peer, body, options);
    }

    fn handshake_options(&mut self, ctx: &mut Context, validator: Vec<u8>) -> Vec<ShimOption> {
        let mut options = vec![
            ShimOption::ResponderValidator(validator),
            Self::ulid_pair_option(ctx),
        ];
        if ctx.fii != 0 {
            options.push(ShimOption::ForkedInstance(ctx.fii));
        }
        options.extend(self.locator_options(ctx));
        options.push(self.keepalive_option());
        options
    }

    /// Sends the I2 on the pair of the R1 (the validator is bound to it)
    /// ([RFC 5533 §7.11](https://www.rfc-editor.org/rfc/rfc5533#section-7.11)).
    pub(super) fn send_i2(&mut self, ctx: &mut Context) {
        let Some(hs) = ctx.handshake.clone() else {
            return;
        };
        let options = self.handshake_options(ctx, hs.validator);
        let body = MessageBody::I2 {
            initiator_tag: ctx.local_tag,
            initiator_nonce: hs.nonce,
            responder_nonce: hs.responder_nonce,
        };
        self.stats.i2_sent += 1;
        self.emit(hs.pair.local, hs.pair.peer, body, options);
    }

    /// Sends the I2bis on the pair of the R1bis
    /// ([RFC 5533 §7.18](https://www.rfc-editor.org/rfc/rfc5533#section-7.18)).
    pub(super) fn send_i2bis(&mut self, ctx: &mut Context) {
        let Some(hs) = ctx.handshake.clone() else {
            return;
        };
        let options = self.handshake_options(ctx, hs.validator);
        let body = MessageBody::I2bis {
            initiator_tag: ctx.local_tag,
            initiator_nonce: hs.nonce,
            responder_nonce: hs.responder_nonce,
            packet_tag: hs.packet_tag,
        };
        self.stats.i2bis_sent += 1;
        self.emit(hs.pair.local, hs.pair.peer, body, options);
    }

    /// Sends an R2 from `ours` to `theirs` echoing `nonce`
    /// ([RFC 5533 §7.14](https://www.rfc-editor.org/rfc/rfc5533#section-7.14)).
    pub(super) fn send_r2(
        &mut self,
        ctx: &mut Context,
        ours: Locator,
        theirs: Locator,
        nonce: Nonce,
    ) {
        let mut options = self.locator_options(ctx);
        options.push(self.keepalive_option());
        let body = MessageBody::R2 {
            responder_tag: ctx.local_tag,
            initiator_nonce: nonce,
        };
        self.stats.r2_sent += 1;
        self.emit(ours, theirs, body, options);
    }

    /// Stateless R1 ([RFC 5533 §7.10](https://www.rfc-editor.org/rfc/rfc5533#section-7.10)).
    pub(super) fn send_r1(
        &mut self,
        now: Instant,
        ours: Locator,
        theirs: Locator,
        initiator_nonce: Nonce,
        input: &ValidatorInput,
    ) {
        if !self.r1_limit.try_take(now) {
            self.stats.r1_rate_limited += 1;
            return;
        }
        let (responder_nonce, v) = self.validators.issue(now, &mut self.rng, input);
        let body = MessageBody::R1 {
            initiator_nonce,
            responder_nonce,
        };
        self.stats.r1_sent += 1;
        self.emit(
            ours,
            theirs,
            body,
            vec![ShimOption::ResponderValidator(v.to_vec())],
        );
    }

    /// Stateless R1bis answering a packet `theirs → ours` that carried the unknown `tag`
    /// ([RFC 5533 §7.17](https://www.rfc-editor.org/rfc/rfc5533#section-7.17)).
    pub(super) fn send_r1bis(
        &mut self,
        now: Instant,
        theirs: Locator,
        ours: Locator,
        tag: ContextTag,
    ) {
        if self.site.host_of_locator(ours).is_none() {
            self.stats.rx_not_for_us += 1;
            return;
        }
        if !self.r1bis_limit.try_take(now) {
            self.stats.r1bis_rate_limited += 1;
            return;
        }
        let input = ValidatorInput::R1bis {
            packet_tag: tag,
            src: theirs,
            dst: ours,
        };
        let (responder_nonce, v) = self.validators.issue(now, &mut self.rng, &input);
        let body = MessageBody::R1bis {
            packet_tag: tag,
            responder_nonce,
        };
        self.stats.r1bis_sent += 1;
        self.emit(
            ours,
            theirs,
            body,
            vec![ShimOption::ResponderValidator(v.to_vec())],
        );
    }

    /// Error message about the control message `msg` that came `theirs → ours`; `offset` is the
    /// octet in error counted from the Shim6 header. The "packet in error" starts with the
    /// offending IPv6 header (rebuilt), so the Pointer counts from it
    /// ([RFC 5533 §5.14](https://www.rfc-editor.org/rfc/rfc5533#section-5.14), shim6.md §7.9).
    pub(super) fn send_error(
        &mut self,
        now: Instant,
        theirs: Locator,
        ours: Locator,
        code: ErrorCode,
        offset: usize,
        msg: &[u8],
    ) {
        if !self.error_limit.try_take(now) {
            self.stats.error_rate_limited += 1;
            return;
        }
        let total = msg
            .get(1)
            .map_or(msg.len(), |h| (usize::from(*h) + 1) * 8)
            .min(msg.len());
        let mut packet = ipv6_header(theirs.0, ours.0, total);
        packet.extend_from_slice(msg.get(..total).unwrap_or(msg));
        packet.truncate(MAX_PACKET_IN_ERROR);
        let pointer = u16::try_from(offset + 40).unwrap_or(u16::MAX);
        self.stats.error_sent += 1;
        self.emit(
            ours,
            theirs,
            MessageBody::Error {
                code,
                pointer,
                packet,
            },
            Vec::new(),
        );
    }

    /// Update Request with our current list / preferences
    /// ([RFC 5533 §10.1](https://www.rfc-editor.org/rfc/rfc5533#section-10.1)).
    pub(super) fn send_update(&mut self, ctx: &mut Context) {
        let (Some(pending), Some(peer_tag)) = (ctx.update.clone(), ctx.peer_tag) else {
            return;
        };
        let mut options = Vec::new();
        if pending.with_list {
            if let Some(list) = self.site.locator_list(ctx.local_ulid) {
                match self
                    .site
                    .signature(ctx.local_ulid, &list, self.config.cache_signatures)
                {
                    Ok(sig) => {
                        self.stats.signatures_made = self.site.signatures_made;
                        options.push(ShimOption::LocatorList(list));
                        if self.site.advertise_preferences() {
                            options.extend(
                                self.site.preferences().map(ShimOption::LocatorPreferences),
                            );
                        }
                        if !ctx.pds_sent {
                            if let Some(h) = self.site.hosts.get(&ctx.local_ulid) {
                                options.push(ShimOption::CgaParameters(h.pds.as_ref().clone()));
                            }
                        }
                        options.push(ShimOption::CgaSignature(sig.as_ref().clone()));
                    }
                    Err(_) => self.stats.emit_failed += 1,
                }
            }
        } else {
            options.extend(self.site.preferences().map(ShimOption::LocatorPreferences));
        }
        let pair = self.control_pair(ctx);
        let body = MessageBody::UpdateRequest {
            receiver_tag: peer_tag,
            request_nonce: pending.nonce,
        };
        self.stats.update_sent += 1;
        self.emit(pair.local, pair.peer, body, options);
    }

    /// Update Acknowledgement ([RFC 5533 §10.4](https://www.rfc-editor.org/rfc/rfc5533#section-10.4)).
    pub(super) fn send_update_ack(
        &mut self,
        ctx: &Context,
        ours: Locator,
        theirs: Locator,
        nonce: Nonce,
    ) {
        let Some(peer_tag) = ctx.peer_tag else { return };
        let body = MessageBody::UpdateAck {
            receiver_tag: peer_tag,
            request_nonce: nonce,
        };
        self.stats.update_ack_sent += 1;
        self.emit(ours, theirs, body, Vec::new());
    }

    /// The pair for our own control messages: the current pair, unless its local locator's
    /// provider is down, then the same peer locator from our first up locator.
    pub(super) fn control_pair(&self, ctx: &Context) -> LocatorPair {
        if self.site.is_up(ctx.local_ulid, ctx.pair.local) {
            return ctx.pair;
        }
        match self.site.up_locators(ctx.local_ulid).first() {
            Some(local) => LocatorPair {
                local: *local,
                peer: ctx.pair.peer,
            },
            None => ctx.pair,
        }
    }
}

/// A bare IPv6 header for `payload_len` bytes of Shim6 (Next Header 140).
fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, payload_len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(40 + payload_len);
    h.extend_from_slice(&[0x60, 0, 0, 0]);
    h.extend_from_slice(&u16::try_from(payload_len).unwrap_or(u16::MAX).to_be_bytes());
    h.push(wire::SHIM6_NEXT_HEADER);
    h.push(QUOTED_HOP_LIMIT);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}
