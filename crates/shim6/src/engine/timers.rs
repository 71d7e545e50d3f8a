//! Time: retransmissions, idle garbage collection, hold-down expiry, and REAP integration
//! (every context's REAP machine is driven from here and its output wrapped into Transmits).

use std::time::Instant;

use rand::RngCore;
use wire::{ContextTag, ControlRepr, LocatorPair, Nonce};

use super::ContextEngine;
use crate::context::{Context, ContextState};
use crate::event::{ContextEvent, FailReason, RemoveReason};
use crate::timer::{backoff, randomise};
use crate::Shim6Error;

impl ContextEngine {
    /// Fires every timer due at `now`: I1/I2/I2bis/Update retransmissions, E-FAILED, idle GC,
    /// REAP timers, hold-down expiry. Extra calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, l, p)) = self.holddown_timers.first() {
            if t > now {
                break;
            }
            self.holddown_timers.pop_first();
            if self
                .holddowns
                .get(&(l, p))
                .is_some_and(|(until, _)| *until == t)
            {
                self.holddowns.remove(&(l, p));
            }
        }
        for tag in self.table.due(now) {
            let Some(ctx) = self.table.take(tag) else {
                continue;
            };
            self.context_timeout(now, ctx);
        }
    }

    fn context_timeout(&mut self, now: Instant, mut ctx: Context) {
        if ctx.state.usable() && ctx.last_activity + self.config.idle_timeout <= now {
            self.stats.idle_removed += 1;
            self.drop_context(ctx, Some(RemoveReason::Idle));
            return;
        }
        if ctx.retransmit_at.is_some_and(|t| t <= now) {
            match self.retransmit(now, ctx) {
                Some(c) => ctx = c,
                None => return,
            }
        }
        if ctx.update.as_ref().is_some_and(|u| u.deadline <= now) {
            self.retransmit_update(now, &mut ctx);
        }
        if let Some(reap) = ctx.reap.as_mut() {
            if reap.poll_timeout().is_some_and(|t| t <= now) {
                reap.handle_timeout(now);
            }
        }
        self.drain_reap(&mut ctx);
        self.put(ctx);
    }

    /// I1 / I2 / I2bis retransmission with backoff, fallbacks and E-FAILED
    /// ([RFC 5533 §7.8, §7.12, §7.19](https://www.rfc-editor.org/rfc/rfc5533#section-7.8)).
    /// Returns the context unless it failed.
    fn retransmit(&mut self, now: Instant, mut ctx: Context) -> Option<Context> {
        ctx.retransmit_at = None;
        match ctx.state {
            ContextState::I1Sent => {
                if ctx.i1_count > self.config.i1_retries_max {
                    self.fail(now, ctx, FailReason::EFailed);
                    return None;
                }
                self.resend_i1(now, &mut ctx);
            }
            ContextState::I2Sent => {
                if ctx.retries >= self.config.i2_retries_max {
                    // Fall back to I1 (the validator may have expired), within the same
                    // attempt: the I1 budget is not reset, so the attempt stays bounded.
                    ctx.state = ContextState::I1Sent;
                    ctx.handshake = None;
                    if ctx.i1_count > self.config.i1_retries_max {
                        self.fail(now, ctx, FailReason::EFailed);
                        return None;
                    }
                    self.resend_i1(now, &mut ctx);
                } else {
                    ctx.retries += 1;
                    self.send_i2(&mut ctx);
                    let t = backoff(self.config.i2_timeout, ctx.retries, None);
                    ctx.retransmit_at = Some(now + randomise(t, &mut self.rng));
                }
            }
            ContextState::I2bisSent => {
                if ctx.retries >= self.config.i2bis_retries_max {
                    // Recovery failed: the context is unusable until a new exchange succeeds.
                    self.events.push_back(ContextEvent::Removed {
                        local_tag: ctx.local_tag,
                        reason: RemoveReason::RecoveryFailed,
                    });
                    ctx.reap = None;
                    ctx.update = None;
                    ctx.i1_nonce = Nonce(self.rng.next_u32());
                    self.start_i1(now, &mut ctx);
                } else {
                    ctx.retries += 1;
                    self.send_i2bis(&mut ctx);
                    let t = backoff(self.config.i2bis_timeout, ctx.retries, None);
                    ctx.retransmit_at = Some(now + randomise(t, &mut self.rng));
                }
            }
            ContextState::Established => {}
        }
        Some(ctx)
    }

    fn resend_i1(&mut self, now: Instant, ctx: &mut Context) {
        // Timeout after the n-th I1 is I1_TIMEOUT · 2^(n-1), randomised.
        let n = ctx.i1_count;
        self.send_i1(ctx);
        self.stats.i1_retransmitted += 1;
        let t = backoff(self.config.i1_timeout, n, None);
        ctx.retransmit_at = Some(now + randomise(t, &mut self.rng));
    }

    /// Creates the REAP machine of a context that just became ESTABLISHED.
    pub(super) fn start_reap(&mut self, now: Instant, ctx: &mut Context, peer_tag: ContextTag) {
        let local = self.site.up_locators(ctx.local_ulid);
        let peer = ctx.usable_peer_locators();
        let seed = self.rng.next_u64();
        let mut m =
            reap::ReapMachine::new(self.config.reap, now, peer_tag, ctx.pair, local, peer, seed);
        if let Some(k) = ctx.peer_keepalive {
            m.set_keepalive_timeout(k);
        }
        if !self.site.is_up(ctx.local_ulid, ctx.pair.local) {
            m.local_locator_down(now, ctx.pair.local);
        }
        m.set_avoided_locators(self.site.avoided_locators(ctx.local_ulid));
        ctx.reap = Some(m);
        self.apply_unreachable(now, ctx);
    }

    /// Tells REAP about a new CT(peer), locator sets or Keepalive Timeout.
    pub(super) fn refresh_reap(&mut self, now: Instant, ctx: &mut Context) {
        let local = self.site.up_locators(ctx.local_ulid);
        let peer = ctx.usable_peer_locators();
        if let Some(reap) = ctx.reap.as_mut() {
            if let Some(t) = ctx.peer_tag {
                reap.set_peer_tag(t);
            }
            if let Some(k) = ctx.peer_keepalive {
                reap.set_keepalive_timeout(k);
            }
            reap.set_locators(now, local, peer);
            reap.set_avoided_locators(self.site.avoided_locators(ctx.local_ulid));
        }
        self.apply_unreachable(now, ctx);
        self.drain_reap(ctx);
    }

    /// Wraps REAP's Keepalives/Probes into Transmits and its pair changes into events.
    pub(super) fn drain_reap(&mut self, ctx: &mut Context) {
        let Some(mut reap) = ctx.reap.take() else {
            return;
        };
        while let Some(t) = reap.poll_transmit() {
            self.stats.reap_sent += 1;
            let repr = ControlRepr {
                body: t.body,
                options: Vec::new(),
            };
            match repr.to_bytes() {
                Ok(payload) => self.outbox.push_back(crate::Transmit {
                    src: t.pair.local.0,
                    dst: t.pair.peer.0,
                    payload,
                }),
                Err(_) => self.stats.emit_failed += 1,
            }
        }
        while let Some(e) = reap.poll_event() {
            if let reap::ReapEvent::PairChanged { old, new } = e {
                if reap.is_path_unreachable(old) {
                    self.stats.bgp_moves += 1;
                }
                ctx.pair = new;
                self.events.push_back(ContextEvent::PairChanged {
                    local_tag: ctx.local_tag,
                    pair: new,
                });
            }
        }
        ctx.reap = Some(reap);
    }

    /// Payload counters of a context moved (the data plane reports the last receive / send
    /// times): keeps the context alive and feeds REAP
    /// ([RFC 5533 §9](https://www.rfc-editor.org/rfc/rfc5533#section-9), RFC 5534 §6).
    pub fn payload_activity(
        &mut self,
        now: Instant,
        tag: ContextTag,
        last_rx: Option<Instant>,
        last_tx: Option<Instant>,
    ) {
        let Some(mut ctx) = self.table.take(tag) else {
            return;
        };
        if let Some(at) = last_rx.filter(|at| Some(*at) > ctx.last_rx) {
            ctx.last_rx = Some(at);
            ctx.last_activity = ctx.last_activity.max(at);
            if let Some(reap) = ctx.reap.as_mut() {
                reap.on_payload_received(now, at.min(now));
            }
            if ctx.state == ContextState::I2bisSent {
                // Payload still arrives for a context being recovered: re-send I2bis (§12.2).
                self.nudge(now, &mut ctx);
            }
        }
        if let Some(at) = last_tx.filter(|at| Some(*at) > ctx.last_tx) {
            ctx.last_tx = Some(at);
            ctx.last_activity = ctx.last_activity.max(at);
            if let Some(reap) = ctx.reap.as_mut() {
                reap.on_payload_sent(now, at.min(now));
            }
        }
        self.drain_reap(&mut ctx);
        self.put(ctx);
    }

    /// Traffic engineering: move a live context to `pair` once REAP confirms it works
    /// ([RFC 5533 §1.7](https://www.rfc-editor.org/rfc/rfc5533#section-1.7)). `pair.local` must be
    /// an up locator of the host and `pair.peer` a verified, non-BROKEN peer locator.
    pub fn prefer_pair(
        &mut self,
        now: Instant,
        tag: ContextTag,
        pair: LocatorPair,
    ) -> Result<(), Shim6Error> {
        let Some(mut ctx) = self.table.take(tag) else {
            return Err(Shim6Error::UnknownContext(tag));
        };
        let result = if ctx.reap.is_none() || !ctx.state.usable() {
            Err(Shim6Error::NotEstablished(tag))
        } else if !self.site.is_up(ctx.local_ulid, pair.local) {
            Err(Shim6Error::UnusableLocator(pair.local))
        } else if !ctx
            .peer_locators
            .iter()
            .any(|p| p.locator == pair.peer && p.usable())
        {
            Err(Shim6Error::UnusableLocator(pair.peer))
        } else {
            match ctx.reap.as_mut() {
                Some(r) => r.prefer_pair(now, pair).map_err(Shim6Error::from),
                None => Err(Shim6Error::NotEstablished(tag)),
            }
        };
        self.drain_reap(&mut ctx);
        self.put(ctx);
        result
    }
}
