//! Probing: the exploration stream, Probe reception and the TE "prefer this pair" probe
//! ([RFC 5534 §4.2–§4.3, §5.2, §6.4–§6.9]).
//!
//! [RFC 5534 §4.2–§4.3, §5.2, §6.4–§6.9]: https://www.rfc-editor.org/rfc/rfc5534#section-6.4

use std::time::Instant;

use rand::Rng;
use wire::{Locator, LocatorPair, MessageBody, Nonce, ProbeReport, ProbeRepr, ReapState};

use crate::event::{ExplorationReason, ReapEvent, ReapTransmit};
use crate::machine::{after, PlanMode, ProbePlan};
use crate::timer::ReapTimer;
use crate::{ReapError, ReapMachine};

impl ReapMachine {
    /// A Probe for this context arrived from `src` to `dst` ([RFC 5534 §6.7–§6.9]).
    ///
    /// The owner has matched the receiver tag to this context. Probes with an undefined state,
    /// no sent report, a source outside the peer's verified locators or a destination outside
    /// ours are ignored (the owner should already have answered R1bis, [RFC 5533 §12.4]).
    ///
    /// - Sta = Exploring: go InboundOk and answer with a probe (Sta = InboundOk) reporting the
    ///   peer's probe, sent back on the pair it arrived on when we may use it (RFC 5534 App. A
    ///   example 4 "picks B2 ... as it appeared in the Probe"); restart the Send Timer. From
    ///   Operational this also starts our own InboundOk probe stream (§6.5). The answer is
    ///   outside that stream's schedule, which it never postpones; only the first probe of a
    ///   new exploration of the peer's restarts the stream's backoff (§4.3 "retry").
    /// - Sta = InboundOk: answer with a probe (Sta = Operational), restart the Send Timer, go
    ///   Operational. If one of its received-reports names a probe we sent on a pair we may
    ///   still use, that pair works outbound: it becomes the current pair (§6.8).
    /// - Sta = Operational: stop the Send Timer, start the Keepalive Timer, go Operational;
    ///   as LinShim6 and App. A example 5 do (`spec/reap.md` §9 \[I\]), a received-report naming
    ///   one of our probes also picks the current pair.
    ///
    /// Departure: while our current pair is unusable locally (its local locator is down or left
    /// the sets) and the probe confirms none of ours, we do not go Operational: an InboundOk
    /// probe is answered as an Exploring one, an Operational one is ignored.
    ///
    /// Among several confirmed pairs a TE-preferred one wins, then the current pair, then the
    /// newest report. Reports are not acted on while we are Operational on a pair already
    /// confirmed since our last exploration: a late echo of an older probe must not make the
    /// pair flap.
    ///
    /// [RFC 5534 §6.7–§6.9]: https://www.rfc-editor.org/rfc/rfc5534#section-6.7
    /// [RFC 5533 §12.4]: https://www.rfc-editor.org/rfc/rfc5533#section-12.4
    pub fn on_probe(&mut self, now: Instant, src: Locator, dst: Locator, probe: &ProbeRepr) {
        let first = match probe.sent.first() {
            Some(&f)
                if self.locators.has_peer(src)
                    && self.locators.has_local(dst)
                    && matches!(
                        probe.state,
                        ReapState::Operational | ReapState::Exploring | ReapState::InboundOk
                    ) =>
            {
                f
            }
            _ => {
                self.stats.probes_ignored = self.stats.probes_ignored.saturating_add(1);
                return;
            }
        };
        self.stats.probes_received = self.stats.probes_received.saturating_add(1);
        // Our orientation of the pair it came on: we may answer from `dst` to `src`.
        let back = LocatorPair {
            local: dst,
            peer: src,
        };
        match probe.state {
            ReapState::Exploring => {
                // While exploring, the peer re-reports every probe of its exploration we have
                // not reported back (§5.2): if we recorded none of them, this is the first
                // probe of a new exploration to reach us.
                let restarted = !probe.sent.iter().any(|r| self.received.contains(r));
                self.peer_exploring(now, back, first, restarted);
            }
            sta => {
                let confirmed = self.confirmed_by(&probe.received);
                self.sent.remove_all(&probe.received);
                match (sta, confirmed) {
                    // Our current pair is dead locally and the peer confirmed none of our
                    // probes: we cannot claim to be Operational (Sta 0: "no problem
                    // communicating", §5.2), so keep exploring; InboundOk is answered like
                    // Exploring, which reports the peer's probe so it can confirm its pair
                    // and answer with a report of ours.
                    (ReapState::InboundOk, None) if !self.locators.usable(self.current) => {
                        self.peer_exploring(now, back, first, false);
                    }
                    (_, None) if !self.locators.usable(self.current) => {}
                    (ReapState::InboundOk, _) => {
                        self.peer_inbound_ok(now, back, first, confirmed);
                    }
                    _ => self.peer_operational(now, confirmed),
                }
            }
        }
    }

    /// Asks REAP to move our outbound traffic to `pair` (traffic engineering): the pair is
    /// probed at once and becomes current once the peer reports our probe
    /// ([`ReapEvent::PairChanged`]); if it is not confirmed within
    /// [`initial_probes`](crate::ReapConfig::initial_probes) probes,
    /// [`ReapEvent::PreferredPairFailed`] is reported and the current pair is kept.
    ///
    /// From Operational this sends Probes with Sta = InboundOk and no received-reports: the
    /// peer answers InboundOk with an Operational probe reporting ours (§6.8) and, since we
    /// report none of its probes, keeps its own pair. This departs from the letter of
    /// [RFC 5534 §5.2] (an InboundOk probe MUST report a received probe) because the RFC has no
    /// other way to get a probe confirmed without declaring a failure; it is an extension the
    /// RFC's state machine handles unchanged on the peer. While exploring, the pair is simply
    /// probed next and preferred when confirmed.
    ///
    /// Errors when the pair's locators are not in the sets or the local one is down.
    ///
    /// [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2
    pub fn prefer_pair(&mut self, now: Instant, pair: LocatorPair) -> Result<(), ReapError> {
        if !self.locators.has_local(pair.local) {
            return Err(ReapError::UnknownLocator(pair.local));
        }
        if !self.locators.has_peer(pair.peer) {
            return Err(ReapError::UnknownLocator(pair.peer));
        }
        if self.locators.is_down(pair.local) {
            return Err(ReapError::LocatorDown(pair.local));
        }
        if self.locators.is_unreachable(pair) && pair != self.current {
            return Err(ReapError::PathUnreachable(pair));
        }
        let tries = self.config.initial_probes.max(1);
        let prefer_mode = matches!(self.plan.mode, PlanMode::Prefer { .. });
        if pair == self.current {
            self.preferred = None;
            if self.state == ReapState::InboundOk && prefer_mode {
                self.set_state(ReapState::Operational);
            }
            return Ok(());
        }
        self.preferred = Some(pair);
        match self.state {
            ReapState::Exploring | ReapState::InboundOk if !prefer_mode => {
                let plan = &mut self.plan;
                plan.order.retain(|p| *p != pair);
                let at = plan.next.min(plan.order.len());
                plan.order.insert(at, pair);
                plan.next = at;
                self.send_stream_probe(now);
            }
            _ => {
                if self.state != ReapState::InboundOk {
                    self.received.clear();
                    self.sent.clear();
                    self.set_state(ReapState::InboundOk);
                }
                self.plan = ProbePlan {
                    mode: PlanMode::Prefer {
                        pair,
                        left: tries.saturating_sub(1),
                    },
                    ..ProbePlan::explore(Vec::new())
                };
                self.send_probe(pair);
                self.schedule_next_probe(now);
            }
        }
        Ok(())
    }

    /// Enters Exploring and sends the first probe ([RFC 5534 §6.4]), `first` probed first.
    /// Both report lists restart: received-reports cover probes received since the last
    /// transition to Exploring (§5.2).
    ///
    /// [RFC 5534 §6.4]: https://www.rfc-editor.org/rfc/rfc5534#section-6.4
    pub(crate) fn start_exploration(
        &mut self,
        now: Instant,
        reason: ExplorationReason,
        first: &[LocatorPair],
    ) {
        self.stop_send();
        self.stop_keepalive();
        self.received.clear();
        self.sent.clear();
        self.preferred = None;
        self.stats.explorations = self.stats.explorations.saturating_add(1);
        if self.exploration.is_none() {
            self.exploration = Some((now, reason));
        }
        self.set_state(ReapState::Exploring);
        self.push_event(ReapEvent::ExplorationStarted { reason });
        self.plan = ProbePlan::explore(self.locators.order(self.current, first));
        self.send_stream_probe(now);
    }

    /// Exploring and we heard the peer (payload or Keepalive): go InboundOk, probe, start the
    /// Send Timer ([RFC 5534 §6.1, §6.6]).
    ///
    /// With no probe of the peer's seen yet this InboundOk probe reports none; RFC 5534 §5.2
    /// asks for at least one, which cannot be met. The peer then keeps its pair (§6.8) and
    /// answers Operational, reporting our probe.
    ///
    /// [RFC 5534 §6.1, §6.6]: https://www.rfc-editor.org/rfc/rfc5534#section-6.1
    pub(crate) fn exploring_heard_peer(&mut self, now: Instant) {
        self.set_state(ReapState::InboundOk);
        self.send_stream_probe(now);
        self.arm_send_timer(now, now);
    }

    /// The probe retransmission timer fired ([RFC 5534 §6.5]).
    ///
    /// [RFC 5534 §6.5]: https://www.rfc-editor.org/rfc/rfc5534#section-6.5
    pub(crate) fn probe_timer(&mut self, now: Instant) {
        match (self.state, self.plan.mode) {
            (ReapState::Exploring, _) => self.send_stream_probe(now),
            (ReapState::InboundOk, PlanMode::Explore) => {
                self.send_stream_probe(now);
                // §6.5: in InboundOk a retransmission starts the Send Timer if not running.
                self.start_send_timer(now, now);
            }
            (ReapState::InboundOk, PlanMode::Prefer { pair, left }) => {
                if left == 0 || !self.locators.usable(pair) {
                    self.prefer_failed(pair);
                    self.unreachable_fallback(now);
                } else {
                    self.plan.mode = PlanMode::Prefer {
                        pair,
                        left: left - 1,
                    };
                    self.send_probe(pair);
                    self.schedule_next_probe(now);
                }
            }
            _ => {}
        }
    }

    /// Gives up a TE probe: back to Operational on the current pair.
    pub(crate) fn prefer_failed(&mut self, pair: LocatorPair) {
        self.preferred = None;
        self.push_event(ReapEvent::PreferredPairFailed { pair });
        if self.state == ReapState::InboundOk && matches!(self.plan.mode, PlanMode::Prefer { .. }) {
            self.set_state(ReapState::Operational);
        }
    }

    /// Sends the stream's next probe (if any pair is usable) and schedules the one after.
    pub(crate) fn send_stream_probe(&mut self, now: Instant) {
        if let Some(pair) = self.plan.next_pair() {
            self.send_probe(pair);
        }
        self.schedule_next_probe(now);
    }

    /// Arms the probe timer after one more probe of the stream: Initial Probe Timeout for the
    /// first Number of Initial Probes, then exponential backoff to Max Probe Timeout, jittered
    /// ([RFC 5534 §4.3], [`ReapConfig::nominal_probe_gap`](crate::ReapConfig::nominal_probe_gap)).
    /// With no usable pair the schedule still runs, so probing resumes at the backed-off rate.
    ///
    /// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
    pub(crate) fn schedule_next_probe(&mut self, now: Instant) {
        self.plan.count = self.plan.count.saturating_add(1);
        let n = self.plan.count;
        let gap = self.config.draw_probe_gap(n, &mut self.rng);
        self.timers.set(ReapTimer::Probe, after(now, gap, now));
        if !self.plan.maxed_reported
            && self.config.nominal_probe_gap(n) >= self.config.max_probe_timeout
        {
            self.plan.maxed_reported = true;
            self.push_event(ReapEvent::ProbeBackoffMaxed);
        }
    }

    /// Queues a Probe on `pair` whose Sta is our state now (set before sending, [RFC 5534
    /// §6.1]). Sent-reports: this probe first, then our earlier probes the peer has not
    /// reported; received-reports: the peer's probes we recorded (§5.2). Nonces are fresh
    /// random values, distinct from the outstanding ones.
    ///
    /// [RFC 5534 §6.1]: https://www.rfc-editor.org/rfc/rfc5534#section-6.1
    pub(crate) fn send_probe(&mut self, pair: LocatorPair) {
        let mut nonce = Nonce(self.rng.gen());
        while self.sent.has_nonce(nonce) {
            nonce = Nonce(self.rng.gen());
        }
        self.sent.push(ProbeReport {
            src: pair.local,
            dst: pair.peer,
            nonce,
            data: 0,
        });
        let repr = ProbeRepr {
            receiver_tag: self.peer_tag,
            state: self.state,
            sent: self.sent.to_vec(),
            received: self.received.to_vec(),
        };
        self.stats.probes_sent = self.stats.probes_sent.saturating_add(1);
        self.push_transmit(ReapTransmit {
            pair,
            body: MessageBody::Probe(repr),
        });
    }

    /// The pair a received-report list proves to work outbound: reports naming a probe we
    /// sent (nonce, source and destination) on a pair we may still use. Among several, the
    /// TE-preferred pair wins, then the current pair (no needless flap when a later report
    /// also names an older probe), then the newest report (LinShim6, `spec/reap.md` §9 \[I\]);
    /// a pair on an avoided (drained) local locator only when no other one is confirmed.
    fn confirmed_by(&self, received: &[ProbeReport]) -> Option<LocatorPair> {
        if self.state == ReapState::Operational && self.current_confirmed {
            return None;
        }
        let mut newest = None;
        let mut current = None;
        let mut avoided = None;
        for r in received.iter().filter(|r| self.sent.contains(r)) {
            let p = LocatorPair {
                local: r.src,
                peer: r.dst,
            };
            if !self.locators.usable(p) {
                continue;
            }
            if Some(p) == self.preferred {
                return Some(p);
            }
            // A pair on a drained provider only when no other one is confirmed.
            if self.locators.is_avoided(p) {
                avoided = avoided.or(Some(p));
                continue;
            }
            if p == self.current {
                current = Some(p);
            }
            newest = newest.or(Some(p));
        }
        current.or(newest).or(avoided)
    }

    /// Sends the immediate answer to a peer's probe: back on the pair it came on when usable,
    /// else on the stream's next pair.
    ///
    /// The answer is an extra probe, outside the retransmission schedule: only a `fresh` (new
    /// or restarted) stream, or one with no timer running, is scheduled from it. A running
    /// schedule is left alone: RFC 5534 §6.7 does not touch it, and §6.5 has a node in
    /// Exploring or InboundOk keep retransmitting until one of its probes is reported back.
    /// Rescheduling on every answer would let a peer whose probes keep arriving (while its
    /// reports of ours get lost) postpone our own retransmissions for ever, each time with a
    /// longer backoff.
    fn answer_in_stream(&mut self, now: Instant, back: LocatorPair, fresh: bool) {
        if self.locators.usable(back) {
            self.send_probe(back);
            let plan = &mut self.plan;
            if !plan.order.is_empty() && plan.order.get(plan.next % plan.order.len()) == Some(&back)
            {
                plan.next = (plan.next % plan.order.len()).wrapping_add(1);
            }
        } else if let Some(pair) = self.plan.next_pair() {
            self.send_probe(pair);
        }
        if fresh || !self.timers.is_running(ReapTimer::Probe) {
            self.schedule_next_probe(now);
        }
    }

    /// Sta = Exploring received ([RFC 5534 §6.7]).
    ///
    /// `restarted` says the probe is the first of a new exploration of the peer's to reach us:
    /// the peer has again heard nothing from us for a Send Timeout, so our outbound is still
    /// broken. A running stream then restarts its backoff at the initial rate, exactly as a
    /// fresh one does when the probe finds us Operational: had the peer's confirmation of our
    /// probe (which would have made us Operational) not been lost, we would be probing at that
    /// rate anyway. [RFC 5534 §4.3] asks to "retry the process as necessary"; the peer's own
    /// Send Timeout bounds how often this happens.
    ///
    /// [RFC 5534 §6.7]: https://www.rfc-editor.org/rfc/rfc5534#section-6.7
    /// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
    fn peer_exploring(
        &mut self,
        now: Instant,
        back: LocatorPair,
        first: ProbeReport,
        restarted: bool,
    ) {
        let fresh_stream = match self.state {
            ReapState::Exploring => false,
            // TE probing turns into helping the peer's exploration.
            ReapState::InboundOk => matches!(self.plan.mode, PlanMode::Prefer { .. }),
            _ => {
                // The peer started exploring: old reports describe an earlier exchange.
                self.received.clear();
                self.sent.clear();
                true
            }
        };
        self.received.push(first);
        self.set_state(ReapState::InboundOk);
        if fresh_stream {
            self.plan = ProbePlan::explore(self.locators.order(self.current, &[back]));
        } else if restarted {
            self.plan.count = 0;
            self.plan.maxed_reported = false;
        }
        // START (Exploring) or RESTART (Operational, InboundOk) the Send Timer; this also stops
        // the Keepalive Timer.
        self.arm_send_timer(now, now);
        self.answer_in_stream(now, back, fresh_stream || restarted);
    }

    /// Sta = InboundOk received ([RFC 5534 §6.8]).
    ///
    /// [RFC 5534 §6.8]: https://www.rfc-editor.org/rfc/rfc5534#section-6.8
    fn peer_inbound_ok(
        &mut self,
        now: Instant,
        back: LocatorPair,
        first: ProbeReport,
        confirmed: Option<LocatorPair>,
    ) {
        self.received.push(first);
        if let Some(p) = confirmed {
            self.set_current(p);
        }
        self.end_exploration(now);
        self.arm_send_timer(now, now);
        // A confirmed pair is known to work; otherwise the way the peer's probe came is the
        // best bet (App. A example 4); failing that, any pair we may use.
        let reply = if confirmed.is_some() {
            Some(self.current)
        } else if self.locators.usable(back) {
            Some(back)
        } else {
            self.locators
                .order(self.current, &[self.current])
                .first()
                .copied()
        };
        if let Some(pair) = reply {
            self.send_probe(pair);
        }
    }

    /// Sta = Operational received ([RFC 5534 §6.9]).
    ///
    /// [RFC 5534 §6.9]: https://www.rfc-editor.org/rfc/rfc5534#section-6.9
    fn peer_operational(&mut self, now: Instant, confirmed: Option<LocatorPair>) {
        if let Some(p) = confirmed {
            self.set_current(p);
        }
        // The peer is happy both ways: nothing left to report (LinShim6, spec/reap.md §2 [I]).
        self.received.clear();
        self.end_exploration(now);
        self.stop_send();
        self.last_heard = self.last_heard.max(Some(now));
        self.start_keepalive(now, now);
    }

    /// Goes Operational, reporting the end of our exploration and of an unconfirmed TE probe.
    fn end_exploration(&mut self, now: Instant) {
        if let (PlanMode::Prefer { pair, .. }, ReapState::InboundOk) = (self.plan.mode, self.state)
        {
            if self.current != pair {
                self.prefer_failed(pair);
            }
        }
        self.set_state(ReapState::Operational);
        if let Some((start, _)) = self.exploration.take() {
            self.push_event(ReapEvent::ExplorationSucceeded {
                pair: self.current,
                elapsed: now.saturating_duration_since(start),
            });
        }
    }
}
