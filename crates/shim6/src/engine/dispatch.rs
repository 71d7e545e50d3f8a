//! Entry point for received control messages: generic checks, Error messages for unknown
//! types and critical options, then dispatch by type
//! ([RFC 5533 §12.3, §12.4](https://www.rfc-editor.org/rfc/rfc5533#section-12.3)).

use std::net::Ipv6Addr;
use std::time::Instant;

use wire::{ContextTag, ControlRepr, ErrorCode, Locator, MessageBody, WireError};

use super::ContextEngine;
use crate::context::ContextState;

/// Offset of the Type octet in a Shim6 control header.
const TYPE_OFFSET: usize = 2;

/// A received control message with its addresses (src = the peer's locator, dst = ours).
pub(super) struct Rx<'a> {
    pub(super) now: Instant,
    pub(super) src: Locator,
    pub(super) dst: Locator,
    pub(super) bytes: &'a [u8],
    pub(super) repr: &'a ControlRepr,
}

fn bad_address(a: Ipv6Addr) -> bool {
    a.is_multicast() || a.is_unspecified()
}

impl ContextEngine {
    /// Processes a received Shim6 control message (`shim6` = the Shim6 header onward; `src`
    /// and `dst` from its IPv6 header). Malformed or unauthorised messages are counted in
    /// [`stats`](Self::stats) and dropped; answers are queued for `poll_transmit`.
    pub fn handle_control(&mut self, now: Instant, src: Ipv6Addr, dst: Ipv6Addr, shim6: &[u8]) {
        self.stats.rx_control += 1;
        if bad_address(src) || bad_address(dst) {
            self.stats.rx_bad_address += 1;
            return;
        }
        let repr = match ControlRepr::parse(shim6) {
            Ok(r) => r,
            Err(WireError::BadChecksum) => {
                self.stats.rx_bad_checksum += 1;
                return;
            }
            Err(_) => {
                self.stats.rx_malformed += 1;
                return;
            }
        };
        let (src, dst) = (Locator(src), Locator(dst));
        match &repr.body {
            // Never answer an Error with an Error (RFC 5533 §5.14).
            MessageBody::Error { .. } => {
                self.stats.rx_error += 1;
                return;
            }
            MessageBody::Unknown { .. } => {
                self.stats.rx_unknown_type += 1;
                self.send_error(now, src, dst, ErrorCode::UnknownType, TYPE_OFFSET, shim6);
                return;
            }
            _ => {}
        }
        if let Some(off) = wire::first_unrecognised_critical_option(shim6) {
            self.stats.rx_unknown_critical_option += 1;
            let off = usize::from(off);
            self.send_error(
                now,
                src,
                dst,
                ErrorCode::UnrecognisedCriticalOption,
                off,
                shim6,
            );
            return;
        }
        let rx = Rx {
            now,
            src,
            dst,
            bytes: shim6,
            repr: &repr,
        };
        match &repr.body {
            MessageBody::I1 {
                initiator_tag,
                initiator_nonce,
            } => self.on_i1(&rx, *initiator_tag, *initiator_nonce),
            MessageBody::R1 {
                initiator_nonce,
                responder_nonce,
            } => self.on_r1(&rx, *initiator_nonce, *responder_nonce),
            MessageBody::I2 {
                initiator_tag,
                initiator_nonce,
                responder_nonce,
            } => self.on_i2(&rx, *initiator_tag, *initiator_nonce, *responder_nonce),
            MessageBody::R2 {
                responder_tag,
                initiator_nonce,
            } => self.on_r2(&rx, *responder_tag, *initiator_nonce),
            MessageBody::R1bis {
                packet_tag,
                responder_nonce,
            } => self.on_r1bis(&rx, *packet_tag, *responder_nonce),
            MessageBody::I2bis {
                initiator_tag,
                initiator_nonce,
                responder_nonce,
                packet_tag,
            } => self.on_i2bis(
                &rx,
                *initiator_tag,
                *initiator_nonce,
                *responder_nonce,
                *packet_tag,
            ),
            MessageBody::UpdateRequest {
                receiver_tag,
                request_nonce,
            } => self.on_update_request(&rx, *receiver_tag, *request_nonce),
            MessageBody::UpdateAck {
                receiver_tag,
                request_nonce,
            } => self.on_update_ack(&rx, *receiver_tag, *request_nonce),
            MessageBody::Keepalive { receiver_tag } => self.on_reap(&rx, *receiver_tag),
            MessageBody::Probe(p) => self.on_reap(&rx, p.receiver_tag),
            MessageBody::Error { .. } | MessageBody::Unknown { .. } => {}
        }
        self.stats.verify_cache_hits = self.verifier.hits;
        self.stats.verify_cache_misses = self.verifier.misses;
    }

    /// Keepalive / Probe: dispatch by CT(local), check the locators, feed REAP
    /// ([RFC 5533 §12.4](https://www.rfc-editor.org/rfc/rfc5533#section-12.4), RFC 5534 §5).
    fn on_reap(&mut self, rx: &Rx<'_>, receiver_tag: ContextTag) {
        let Some(mut ctx) = self.take_checked(rx, receiver_tag) else {
            return;
        };
        match ctx.state {
            ContextState::I1Sent => self.stats.discarded_in_state += 1,
            ContextState::I2Sent => self.nudge(rx.now, &mut ctx),
            ContextState::I2bisSent | ContextState::Established => {
                if ctx.state == ContextState::I2bisSent {
                    self.nudge(rx.now, &mut ctx);
                }
                if let Some(reap) = ctx.reap.as_mut() {
                    match &rx.repr.body {
                        MessageBody::Keepalive { .. } => reap.on_keepalive(rx.now),
                        MessageBody::Probe(p) => reap.on_probe(rx.now, rx.src, rx.dst, p),
                        _ => {}
                    }
                }
                self.drain_reap(&mut ctx);
            }
        }
        self.put(ctx);
    }

    /// Takes the context a 64–127 message is for, or answers R1bis when there is none or the
    /// locators are not the context's ([RFC 5533 §10.4, §12.4](https://www.rfc-editor.org/rfc/rfc5533#section-10.4)).
    pub(super) fn take_checked(
        &mut self,
        rx: &Rx<'_>,
        tag: ContextTag,
    ) -> Option<crate::context::Context> {
        let Some(ctx) = self.table.take(tag) else {
            self.send_r1bis(rx.now, rx.src, rx.dst, tag);
            return None;
        };
        if !ctx.in_ls_peer(rx.src) || !self.site.owns(ctx.local_ulid, rx.dst) {
            self.put(ctx);
            self.send_r1bis(rx.now, rx.src, rx.dst, tag);
            return None;
        }
        Some(ctx)
    }
}
