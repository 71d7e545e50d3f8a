//! Driving the SHIM6 engine: its transmits become frames on the provider owning their source
//! locator, its events become table writes, and the packets that waited for a context are
//! sent through the slow path's own fast path.

use std::net::Ipv6Addr;
use std::time::Instant;

use shim6::{ConnectOutcome, ContextEvent, Transmit};
use wire::{Locator, SHIM6_NEXT_HEADER};

use super::context_log::{self, PairCause};
use super::events::Applied;
use super::frame::{self, DEFAULT_HOP_LIMIT};
use super::nd::Held;
use super::pending::UlidPair;
use super::SlowPath;
use crate::buf::HeapBuf;
use crate::config::Exit;
use crate::fastpath::packet::proto;
use crate::fastpath::{DropReason, PuntReason, Verdict};
use crate::io::{PortId, BURST};

impl SlowPath {
    /// Sends every queued transmit and applies every event until the engine is quiet;
    /// whether there was anything.
    pub(super) fn drain_engine(&mut self, now: Instant) -> bool {
        let mut any = false;
        loop {
            let mut progressed = false;
            while let Some(t) = self.engine.poll_transmit() {
                progressed = true;
                self.send_control(now, t);
            }
            while let Some(ev) = self.engine.poll_event() {
                progressed = true;
                self.apply_event(now, &ev);
            }
            if !progressed {
                return any;
            }
            any = true;
        }
    }

    /// A Shim6 control message: IPv6 header with Next Header 140 around it, out of the provider
    /// whose PA prefix holds the source locator (ingress filtering,
    /// [RFC 5533 §1.2](https://www.rfc-editor.org/rfc/rfc5533#section-1.2)).
    fn send_control(&mut self, now: Instant, t: Transmit) {
        let Some(idx) = self
            .dp
            .providers
            .iter()
            .position(|p| p.prefix.contains(t.src))
        else {
            self.stats.tx_no_route += 1;
            return;
        };
        let Some(ip) = frame::ipv6(
            t.src,
            t.dst,
            SHIM6_NEXT_HEADER,
            DEFAULT_HOP_LIMIT,
            &t.payload,
        ) else {
            self.stats.tx_no_route += 1;
            return;
        };
        self.stats.tx_control += 1;
        self.send_via_provider(now, idx, ip);
    }

    /// Sends an IPv6 packet out of provider `idx`: through its tunnel if it has one, to its
    /// exit router.
    pub(super) fn send_via_provider(&mut self, now: Instant, idx: usize, ip: Vec<u8>) {
        let Some(p) = self.dp.providers.get(idx) else {
            return;
        };
        let (port, exit) = (p.port, p.exit);
        let ip = match exit {
            Exit::Direct { .. } => Some(ip),
            Exit::Tunnel { local, remote, .. } => {
                frame::ipv6(local, remote, proto::IPV6, DEFAULT_HOP_LIMIT, &ip)
            }
        };
        if let Some(ip) = ip {
            self.send_ip(now, port, exit.next_hop(), ip);
        }
    }

    /// Sends `ip` on `port` to the neighbour `next_hop`, resolving its MAC first if needed.
    pub(super) fn send_ip(&mut self, now: Instant, port: PortId, next_hop: Ipv6Addr, ip: Vec<u8>) {
        match self.neighbors.lookup(port, next_hop) {
            Some(mac) => {
                let src = self.port_mac(port);
                self.out.push((port, frame::ethernet(mac, src, &ip)));
            }
            None => self
                .nd
                .resolve(now, port, next_hop, Some(Held::Ip(ip)), &mut self.out),
        }
    }

    fn apply_event(&mut self, now: Instant, ev: &ContextEvent) {
        let (provider, from, cause) = self.describe_event(ev);
        context_log::log_event(ev, provider, from, cause);
        if let Some(s) = self.services.as_mut() {
            s.on_context_event(now, ev);
        }
        match self.sync.apply(&mut self.table, ev) {
            Applied::Established(pair) => {
                self.stats.table_established += 1;
                if let ContextEvent::Established { local_tag, .. } = *ev {
                    // Also the contexts a peer started: mark their paths routing withdrew.
                    let peers = self.engine.context(local_tag).map(|c| c.peer_locators);
                    for p in peers.unwrap_or_default() {
                        self.mark_reachability(now, p.locator);
                    }
                }
                let frames = self.pending.release(pair);
                if !frames.is_empty() {
                    self.reprocess(now, self.dp.inside.port, frames);
                }
            }
            Applied::Updated => self.stats.table_updates += 1,
            Applied::Removed => self.stats.table_removes += 1,
            Applied::Failed(pair) => {
                self.pending.fail(pair);
            }
            Applied::Refused(tag, _) | Applied::NoProvider(tag) => {
                // The data plane cannot use it: the engine must not keep it either.
                self.stats.table_refused += 1;
                self.engine.remove(now, tag);
                if let ContextEvent::Established {
                    local_ulid,
                    peer_ulid,
                    ..
                } = *ev
                {
                    self.pending.fail((local_ulid, peer_ulid));
                }
            }
            Applied::Ignored => {}
        }
    }

    /// The provider an event puts the context on, the one it leaves (pair changes), and
    /// whether traffic engineering asked for the change.
    fn describe_event(&self, ev: &ContextEvent) -> (Option<u16>, Option<u16>, PairCause) {
        match *ev {
            ContextEvent::Established { pair, .. } => {
                (self.sync.provider_of(pair.local), None, PairCause::Failover)
            }
            ContextEvent::PairChanged { local_tag, pair } => {
                let to = self.sync.provider_of(pair.local);
                let from = self.table.get(local_tag).map(|e| e.tx_provider);
                let cause = match to {
                    Some(p) if self.te.is_moving_to(local_tag, p) => PairCause::Policy,
                    _ => PairCause::Failover,
                };
                (to, from, cause)
            }
            _ => (None, None, PairCause::Failover),
        }
    }

    /// Starts the handshake for `pair` towards `locators`; whether packets may wait for it.
    pub(super) fn connect(&mut self, now: Instant, pair: UlidPair, locators: &[Locator]) -> bool {
        let via = self.te_choose(pair);
        // The walk of the first I1s tries the paths routing withdrew last.
        for &l in locators {
            self.mark_reachability(now, l);
        }
        match self.engine.connect_via(now, pair.0, pair.1, locators, via) {
            Ok(ConnectOutcome::Started(_)) => {
                self.stats.connects += 1;
                true
            }
            Ok(ConnectOutcome::Existing(_)) => {
                self.stats.context_races += 1;
                true
            }
            Ok(ConnectOutcome::HeldDown { .. } | ConnectOutcome::Refused) => {
                self.stats.held_down += 1;
                false
            }
            Err(_) => {
                self.stats.connect_errors += 1;
                false
            }
        }
    }

    /// Runs frames received on `rx_port` through the slow path's fast path and sends what it
    /// forwards; what it punts again (no MAC yet, too big, hop limit) is handled here.
    pub(super) fn reprocess(&mut self, now: Instant, rx_port: PortId, frames: Vec<Vec<u8>>) {
        let tick = self.tick(now);
        self.fast.set_now(tick);
        for chunk in frames.chunks(BURST) {
            let mut bufs: Vec<HeapBuf> = chunk.iter().map(|f| HeapBuf::from_slice(f)).collect();
            let mut verdicts = [Verdict::Drop(DropReason::Malformed); BURST];
            self.fast.process_burst(rx_port, &mut bufs, &mut verdicts);
            for ((buf, v), orig) in bufs.iter().zip(verdicts).zip(chunk) {
                match v {
                    Verdict::Forward(port) => self.out.push((port, buf.as_ref().to_vec())),
                    Verdict::Punt(PuntReason::NoNextHop) => {
                        self.hold_for_next_hop(now, rx_port, orig.clone())
                    }
                    Verdict::Punt(r @ (PuntReason::TooBig { .. } | PuntReason::HopLimit)) => {
                        self.on_punt(now, r, rx_port, orig);
                    }
                    _ => self.stats.reprocess_dropped += 1,
                }
            }
        }
    }
}
