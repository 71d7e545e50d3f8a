//! Context recovery (R1bis / I2bis), unknown tags, and the negative caches E-FAILED /
//! NO-SUPPORT ([RFC 5533 §7.5, §7.8, §7.17–§7.20](https://www.rfc-editor.org/rfc/rfc5533#section-7.17)).

use std::net::Ipv6Addr;
use std::time::Instant;

use rand::RngCore;
use wire::{ContextTag, Locator, LocatorPair, Nonce};

use super::dispatch::Rx;
use super::establish::Initiation;
use super::ContextEngine;
use crate::context::{Context, ContextState, Handshake};
use crate::event::{ContextEvent, FailReason};
use crate::timer::{backoff, randomise};
use crate::validator::ValidatorInput;

/// ICMPv6 Parameter Problem code "unrecognized Next Header type encountered" (RFC 4443 §3.4).
const ICMP_UNRECOGNISED_NEXT_HEADER: u8 = 1;

impl ContextEngine {
    /// A payload packet (`src → dst`) carried a context tag the data plane has no usable
    /// context for (no context with that tag, or one whose locators do not match `src`/`dst`):
    /// send a rate-limited R1bis so the peer can rebuild its context
    /// ([RFC 5533 §7.17](https://www.rfc-editor.org/rfc/rfc5533#section-7.17)). If the tag is one
    /// of ours still waiting for R2, re-send the I2 / I2bis instead (§12.2).
    ///
    /// The locator check matters for a proxy peer: it may re-use a tag for another of its
    /// hosts, whose locators do not overlap the old context's, so RFC 5533 §7.15 does not
    /// detect the confusion; the stale context is then repaired by this R1bis.
    pub fn handle_unknown_tag(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        tag: ContextTag,
    ) {
        if let Some(mut ctx) = self.table.take(tag) {
            let ours = self.site.owns(ctx.local_ulid, Locator(dst)) && ctx.in_ls_peer(Locator(src));
            if ours {
                self.nudge(now, &mut ctx);
            }
            self.put(ctx);
            if ours {
                return;
            }
        }
        self.send_r1bis(now, Locator(src), Locator(dst), tag);
    }

    /// R1bis ([RFC 5533 §7.18](https://www.rfc-editor.org/rfc/rfc5533#section-7.18)): the peer lost
    /// the context whose CT(peer) is `packet_tag`; answer I2bis on the R1bis's locator pair.
    pub(super) fn on_r1bis(&mut self, rx: &Rx<'_>, packet_tag: ContextTag, responder_nonce: Nonce) {
        let Some(validator) = rx.repr.responder_validator() else {
            self.stats.rx_malformed += 1;
            return;
        };
        let pair = LocatorPair {
            local: rx.dst,
            peer: rx.src,
        };
        // Lookup by CT(peer) and the locator pair (RFC 5533 §12.4).
        let found = self
            .table
            .by_peer_tag(packet_tag)
            .into_iter()
            .find(|t| self.table.get(*t).is_some_and(|c| c.pair == pair));
        let Some(mut ctx) = found.and_then(|t| self.table.take(t)) else {
            self.stats.wrong_nonce += 1;
            return;
        };
        if ctx.state != ContextState::Established {
            self.stats.discarded_in_state += 1;
            self.put(ctx);
            return;
        }
        ctx.state = ContextState::I2bisSent;
        ctx.handshake = Some(Handshake {
            nonce: Nonce(self.rng.next_u32()),
            pair,
            responder_nonce,
            validator: validator.to_vec(),
            packet_tag,
        });
        ctx.retries = 0;
        self.send_i2bis(&mut ctx);
        let t = randomise(backoff(self.config.i2bis_timeout, 0, None), &mut self.rng);
        ctx.retransmit_at = Some(rx.now + t);
        self.put(ctx);
    }

    /// I2bis ([RFC 5533 §7.20](https://www.rfc-editor.org/rfc/rfc5533#section-7.20)): the validator
    /// was computed for the offending packet's tag and locators; the context gets a fresh tag.
    pub(super) fn on_i2bis(
        &mut self,
        rx: &Rx<'_>,
        initiator_tag: ContextTag,
        nonce: Nonce,
        responder_nonce: Nonce,
        packet_tag: ContextTag,
    ) {
        let Some((local, peer)) = self.resolve_ulids(rx) else {
            return;
        };
        let fii = rx.repr.forked_instance().unwrap_or(0);
        let input = ValidatorInput::R1bis {
            packet_tag,
            src: rx.src,
            dst: rx.dst,
        };
        if !self.check_validator(rx, responder_nonce, &input) {
            return;
        }
        let init = Initiation {
            recovery: true,
            initiator_tag,
            nonce,
            local,
            peer,
            fii,
            avoid: Some(packet_tag),
        };
        self.accept_initiation(rx, init);
    }

    /// ICMPv6 Parameter Problem. Code 1 ("unrecognized Next Header") pointing at the Next
    /// Header that names Shim6 in a quoted I1 of ours means the peer has no SHIM6: NO-SUPPORT
    /// ([RFC 5533 §7.8](https://www.rfc-editor.org/rfc/rfc5533#section-7.8)). `quoted` is the
    /// invoking packet from its IPv6 header on.
    pub fn handle_icmp_parameter_problem(
        &mut self,
        now: Instant,
        code: u8,
        pointer: u32,
        quoted: &[u8],
    ) {
        if code != ICMP_UNRECOGNISED_NEXT_HEADER {
            return;
        }
        let Ok(Some(loc)) = wire::find_shim6(quoted) else {
            return;
        };
        if u32::try_from(loc.nh_field).ok() != Some(pointer) {
            return;
        }
        let Some(shim) = quoted.get(loc.offset..) else {
            return;
        };
        // Read the I1 fields directly: the quote may be cut short, so no checksum check.
        let (Some(&type_byte), Some(tag_bytes), Some(nonce_bytes)) =
            (shim.get(2), shim.get(6..12), shim.get(12..16))
        else {
            return;
        };
        if type_byte != 1 {
            return;
        }
        let mut t = [0u8; 6];
        t.copy_from_slice(tag_bytes);
        let tag = ContextTag::read(t);
        let nonce = Nonce(u32::from_be_bytes([
            nonce_bytes[0],
            nonce_bytes[1],
            nonce_bytes[2],
            nonce_bytes[3],
        ]));
        let (Some(src), Some(dst)) = (addr_at(quoted, 8), addr_at(quoted, 24)) else {
            return;
        };
        let Some(ctx) = self.table.take(tag) else {
            return;
        };
        let ours = ctx.state == ContextState::I1Sent
            && ctx.i1_nonce == nonce
            && self.site.owns(ctx.local_ulid, Locator(src))
            && ctx.in_ls_peer(Locator(dst));
        if ours {
            self.fail(now, ctx, FailReason::NoSupport);
        } else {
            self.put(ctx);
        }
    }

    /// Ends an establishment attempt: hold-down for the ULID pair, tag released, data plane told.
    pub(super) fn fail(&mut self, now: Instant, ctx: Context, reason: FailReason) {
        let hold = match reason {
            FailReason::NoSupport => {
                self.stats.no_support += 1;
                self.config.icmp_holddown
            }
            _ => {
                self.stats.e_failed += 1;
                self.config.no_r1_holddown
            }
        };
        let key = (ctx.local_ulid, ctx.peer_ulid);
        if let Some((old, _)) = self.holddowns.remove(&key) {
            self.holddown_timers.remove(&(old, key.0, key.1));
        }
        // Bounded like the context table: the oldest hold-down goes first.
        while self.holddowns.len() >= self.config.max_contexts {
            let Some((t, l, p)) = self.holddown_timers.pop_first() else {
                break;
            };
            let _ = t;
            self.holddowns.remove(&(l, p));
        }
        let until = now + hold;
        self.holddowns.insert(key, (until, reason));
        self.holddown_timers.insert((until, key.0, key.1));
        self.events.push_back(ContextEvent::Failed {
            local_ulid: key.0,
            peer_ulid: key.1,
            reason,
        });
        self.drop_context(ctx, None);
    }
}

fn addr_at(b: &[u8], off: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}
