//! Locator updates: Update Request / Update Acknowledgement in both directions
//! ([RFC 5533 §10](https://www.rfc-editor.org/rfc/rfc5533#section-10)).

use std::time::Instant;

use rand::RngCore;
use wire::{ContextTag, ErrorCode, Nonce};

use super::dispatch::Rx;
use super::establish::{apply_preferences, peer_set_from_list};
use super::ContextEngine;
use crate::context::{Context, ContextState, PendingUpdate, SUPERSEDED_GENERATIONS};
use crate::optwalk::{find_option, OPT_LOCATOR_PREFERENCES};
use crate::timer::{backoff, randomise};

impl ContextEngine {
    /// Sends an Update Request if the peer does not have our current locator list /
    /// preferences. At most one is outstanding: newer information abandons the pending one
    /// and goes out with a new nonce ([RFC 5533 §10.3](https://www.rfc-editor.org/rfc/rfc5533#section-10.3)).
    pub(super) fn maybe_update(&mut self, now: Instant, ctx: &mut Context) {
        if ctx.state != ContextState::Established || ctx.peer_tag.is_none() {
            return;
        }
        let current = (self.site.generation, self.site.prefs_version);
        if ctx.local_sent == Some(current) {
            ctx.update = None;
            return;
        }
        if ctx
            .update
            .as_ref()
            .is_some_and(|u| (u.generation, u.prefs_version) == current)
        {
            return;
        }
        let with_list = ctx.local_sent.map(|(g, _)| g) != Some(current.0)
            || ctx.update.as_ref().is_some_and(|u| u.with_list);
        let t = randomise(backoff(self.config.update_timeout, 0, None), &mut self.rng);
        ctx.update = Some(PendingUpdate {
            nonce: Nonce(self.rng.next_u32()),
            generation: current.0,
            prefs_version: current.1,
            with_list,
            retries: 0,
            deadline: now + t,
        });
        self.send_update(ctx);
    }

    /// Update Request retransmission: same nonce, doubling up to MAX_UPDATE_TIMEOUT, forever
    /// ([RFC 5533 §10.2](https://www.rfc-editor.org/rfc/rfc5533#section-10.2)).
    pub(super) fn retransmit_update(&mut self, now: Instant, ctx: &mut Context) {
        let Some(u) = ctx.update.as_mut() else { return };
        u.retries = u.retries.saturating_add(1);
        let nominal = backoff(
            self.config.update_timeout,
            u.retries,
            Some(self.config.max_update_timeout),
        );
        u.deadline = now + randomise(nominal, &mut self.rng);
        self.send_update(ctx);
    }

    /// Update Request ([RFC 5533 §10.4](https://www.rfc-editor.org/rfc/rfc5533#section-10.4)).
    pub(super) fn on_update_request(
        &mut self,
        rx: &Rx<'_>,
        receiver_tag: ContextTag,
        nonce: Nonce,
    ) {
        let Some(mut ctx) = self.take_checked(rx, receiver_tag) else {
            return;
        };
        match ctx.state {
            ContextState::I1Sent => {
                self.stats.discarded_in_state += 1;
                self.put(ctx);
                return;
            }
            ContextState::I2Sent => self.nudge(rx.now, &mut ctx),
            ContextState::I2bisSent => self.nudge(rx.now, &mut ctx),
            ContextState::Established => {}
        }
        self.process_update(rx, &mut ctx, nonce);
        self.put(ctx);
    }

    fn process_update(&mut self, rx: &Rx<'_>, ctx: &mut Context, nonce: Nonce) {
        // A list generation the peer already replaced: a replayed (still validly signed) old
        // request, or a retransmission of an abandoned one arriving late. Applying it would
        // roll Ls(peer) back, so it is dropped before the costly signature check.
        if let Some(list) = rx.repr.locator_list() {
            if ctx.superseded_generations.contains(&list.generation) {
                self.stats.replayed_generation += 1;
                return;
            }
        }
        let cached = ctx.peer_pds.clone();
        let Some(material) = self.verify_peer(rx, ctx.peer_ulid, cached.as_ref()) else {
            return;
        };
        let prefs = rx.repr.locator_preferences();
        // Stage the new Ls(peer): nothing is applied unless the whole request is valid.
        let (mut locators, list_len, generation) = match &material.list {
            Some(list) => {
                let set = peer_set_from_list(ctx.peer_ulid, ctx.peer_ulid_routable, list, None);
                (set.locators, set.list_len, set.generation)
            }
            None => (
                ctx.peer_locators.clone(),
                ctx.peer_list_len,
                ctx.peer_generation,
            ),
        };
        if let Some(p) = prefs {
            let pref_off = find_option(rx.bytes, OPT_LOCATOR_PREFERENCES).unwrap_or(0);
            if Some(p.generation) != generation {
                self.stats.bad_preferences += 1;
                self.send_error(
                    rx.now,
                    rx.src,
                    rx.dst,
                    ErrorCode::GenerationOutOfSync,
                    pref_off + 4,
                    rx.bytes,
                );
                return;
            }
            if p.elements.len() != list_len {
                self.stats.bad_preferences += 1;
                self.send_error(
                    rx.now,
                    rx.src,
                    rx.dst,
                    ErrorCode::PreferenceCountMismatch,
                    pref_off + 2,
                    rx.bytes,
                );
                return;
            }
            apply_preferences(&mut locators[..list_len], p);
        }
        if let Some(p) = material.pds {
            ctx.peer_pds = Some(p);
        }
        ctx.peer_locators = locators;
        ctx.peer_list_len = list_len;
        if let Some(old) = ctx.peer_generation.filter(|g| Some(*g) != generation) {
            if ctx.superseded_generations.len() >= SUPERSEDED_GENERATIONS {
                ctx.superseded_generations.remove(0);
            }
            ctx.superseded_generations.push(old);
        }
        ctx.peer_generation = generation;
        if let Some(k) = rx.repr.keepalive_timeout() {
            ctx.peer_keepalive = Some(k);
        }
        self.stats.update_received += 1;
        self.send_update_ack(ctx, rx.dst, rx.src, nonce);
        // A new Lp(peer) is only used once REAP confirmed it (RFC 5533 §10.4).
        self.refresh_reap(rx.now, ctx);
    }

    /// Update Acknowledgement ([RFC 5533 §10.5](https://www.rfc-editor.org/rfc/rfc5533#section-10.5)).
    pub(super) fn on_update_ack(&mut self, rx: &Rx<'_>, receiver_tag: ContextTag, nonce: Nonce) {
        let Some(mut ctx) = self.take_checked(rx, receiver_tag) else {
            return;
        };
        match ctx.state {
            ContextState::I1Sent => {
                self.stats.discarded_in_state += 1;
                self.put(ctx);
                return;
            }
            // RFC 5533 §10.5 says "send R2" here, §12.2/App. B say I2; the I2 is what gets
            // the peer's R2 to us, so send that (as LinShim6 does).
            ContextState::I2Sent | ContextState::I2bisSent => self.nudge(rx.now, &mut ctx),
            ContextState::Established => {}
        }
        match ctx.update.take() {
            Some(u) if u.nonce == nonce => {
                ctx.local_sent = Some((u.generation, u.prefs_version));
                if u.with_list {
                    ctx.pds_sent = true;
                }
                self.stats.update_acked += 1;
                // Something newer may have happened while this one was in flight.
                self.maybe_update(rx.now, &mut ctx);
            }
            other => {
                // Acks for an abandoned request are silently ignored.
                ctx.update = other;
            }
        }
        self.put(ctx);
    }
}
