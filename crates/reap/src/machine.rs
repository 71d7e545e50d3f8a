//! [`ReapMachine`]: the REAP state of one SHIM6 context, its timers and the Forced
//! Bidirectional Detection inputs ([RFC 5534 §4.1, §6.1–§6.6]).
//!
//! Probing and exploration live in `explore.rs`, the locator inputs in `locators.rs`.
//!
//! [RFC 5534 §4.1, §6.1–§6.6]: https://www.rfc-editor.org/rfc/rfc5534#section-6

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};
use wire::{ContextTag, Locator, LocatorPair, MessageBody, ReapState};

use crate::event::{ExplorationReason, ReapEvent, ReapStats, ReapTransmit};
use crate::pairs::Locators;
use crate::reports::ReportLog;
use crate::timer::{ReapTimer, TimerTable};
use crate::ReapConfig;

/// Most transmits or events held for the owner; older ones are dropped (and counted in
/// [`ReapStats::dropped`]) so a machine nobody polls cannot grow without bound.
const MAX_QUEUE: usize = 64;

/// Most pairs remembered as confirmed working outbound (candidates to probe first after a
/// local failure).
const MAX_CONFIRMED: usize = 8;

/// How `handle_timeout` loops at most per call; each round fires every expired timer and
/// timers never re-arm at or before `now`, so two rounds suffice. The bound only guards
/// against a logic error turning into a hang.
const MAX_TIMER_ROUNDS: usize = 8;

/// What the probe stream is for while Exploring or InboundOk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PlanMode {
    /// Exploration ([RFC 5534 §6.5]): probes go round the ordered candidate pairs.
    ///
    /// [RFC 5534 §6.5]: https://www.rfc-editor.org/rfc/rfc5534#section-6.5
    Explore,
    /// Traffic engineering: confirm one pair, giving up after `left` more probes.
    Prefer {
        /// The pair being tried.
        pair: LocatorPair,
        /// Probes still allowed before giving up.
        left: u32,
    },
}

/// The probe stream: which pairs, which one next, how far the backoff has gone.
#[derive(Clone, Debug)]
pub(crate) struct ProbePlan {
    /// Candidate pairs in probing order ([`Locators::order`]).
    pub(crate) order: Vec<LocatorPair>,
    /// Index into `order` of the next pair to probe (wraps around).
    pub(crate) next: usize,
    /// Probes sent in this stream so far; drives the backoff.
    pub(crate) count: u32,
    /// What the stream is for.
    pub(crate) mode: PlanMode,
    /// Whether [`ReapEvent::ProbeBackoffMaxed`] was already reported for this stream.
    pub(crate) maxed_reported: bool,
}

impl ProbePlan {
    /// A fresh exploration stream over `order`.
    pub(crate) fn explore(order: Vec<LocatorPair>) -> Self {
        Self {
            order,
            next: 0,
            count: 0,
            mode: PlanMode::Explore,
            maxed_reported: false,
        }
    }

    /// The next pair to probe, going round the order (`spec/reap.md` §8: start over once all
    /// were probed); `None` when no pair is usable.
    pub(crate) fn next_pair(&mut self) -> Option<LocatorPair> {
        let len = self.order.len();
        if len == 0 {
            return None;
        }
        let p = self.order.get(self.next % len).copied();
        self.next = (self.next % len).wrapping_add(1);
        p
    }
}

/// REAP failure detection and locator pair exploration for one established SHIM6 context
/// ([RFC 5534]).
///
/// Sans-IO in the style of quinn-proto: no sockets, no clock reads, no global RNG. Methods
/// come in four kinds:
/// - getters: [`current_pair`](Self::current_pair), [`state`](Self::state),
///   [`stats`](Self::stats);
/// - inputs (`on_*`, [`handle_timeout`](Self::handle_timeout)): each takes `now`, which must
///   never go backwards between calls;
/// - mutators: [`set_peer_tag`](Self::set_peer_tag),
///   [`set_keepalive_timeout`](Self::set_keepalive_timeout), the locator inputs and
///   [`prefer_pair`](Self::prefer_pair);
/// - outputs: after any input, drain [`poll_transmit`](Self::poll_transmit) and
///   [`poll_event`](Self::poll_event), then call `handle_timeout` once the clock reaches
///   [`poll_timeout`](Self::poll_timeout) (extra calls are harmless).
///
/// The machine tracks our outbound pair only ([`current_pair`](Self::current_pair)); the peer
/// may send to us on another pair (`spec/reap.md` §9), so inbound traffic must be accepted on
/// any pair of the context.
///
/// [RFC 5534]: https://www.rfc-editor.org/rfc/rfc5534
#[derive(Debug)]
pub struct ReapMachine {
    pub(crate) config: ReapConfig,
    pub(crate) rng: StdRng,
    pub(crate) peer_tag: ContextTag,
    pub(crate) state: ReapState,
    pub(crate) current: LocatorPair,
    pub(crate) locators: Locators,
    pub(crate) timers: TimerTable,
    /// Keepalive Timeout (Tka) for this peer ([RFC 5534 §7]).
    ///
    /// [RFC 5534 §7]: https://www.rfc-editor.org/rfc/rfc5534#section-7
    pub(crate) tka: Duration,
    /// Newest time we heard the peer (payload, keepalive, Operational probe).
    pub(crate) last_heard: Option<Instant>,
    /// Newest time we sent payload.
    pub(crate) last_sent: Option<Instant>,
    /// The send time that started the running Send Timer.
    pub(crate) send_started: Option<Instant>,
    pub(crate) plan: ProbePlan,
    /// Our recent probes not yet reported back by the peer, newest first.
    pub(crate) sent: ReportLog,
    /// Probes received since the last transition to Exploring, newest first.
    pub(crate) received: ReportLog,
    /// Pairs confirmed to work outbound, newest first.
    pub(crate) confirmed: Vec<LocatorPair>,
    /// Whether the peer confirmed the current pair (or the handshake used it) since we last
    /// left Operational.
    pub(crate) current_confirmed: bool,
    /// A TE-preferred pair not yet confirmed.
    pub(crate) preferred: Option<LocatorPair>,
    /// Start time and reason of the exploration we are running, if any.
    pub(crate) exploration: Option<(Instant, ExplorationReason)>,
    pub(crate) outbox: VecDeque<ReapTransmit>,
    pub(crate) events: VecDeque<ReapEvent>,
    pub(crate) stats: ReapStats,
}

impl ReapMachine {
    /// A machine for a context that just became ESTABLISHED, in state Operational with no timer
    /// running ([RFC 5534 §6]).
    ///
    /// `current` is the pair in use, `local` our locators and `peer` the peer's **verified**
    /// locators (only those may be probed, [RFC 5534 §8]), each in preference order. `seed`
    /// seeds the nonce and jitter RNG so runs are repeatable; give each context its own. An
    /// invalid `config` is clamped into range (see [`ReapConfig::validate`]).
    ///
    /// [RFC 5534 §6]: https://www.rfc-editor.org/rfc/rfc5534#section-6
    /// [RFC 5534 §8]: https://www.rfc-editor.org/rfc/rfc5534#section-8
    pub fn new(
        config: ReapConfig,
        now: Instant,
        peer_tag: ContextTag,
        current: LocatorPair,
        local: Vec<Locator>,
        peer: Vec<Locator>,
        seed: u64,
    ) -> Self {
        let _ = now; // Nothing is timed until traffic is seen (RFC 5534 App. A example 1).
        let config = config.sanitised();
        Self {
            config,
            rng: StdRng::seed_from_u64(seed),
            peer_tag,
            state: ReapState::Operational,
            current,
            locators: Locators::new(local, peer),
            timers: TimerTable::default(),
            tka: config.default_keepalive_timeout,
            last_heard: None,
            last_sent: None,
            send_started: None,
            plan: ProbePlan::explore(Vec::new()),
            sent: ReportLog::default(),
            received: ReportLog::default(),
            confirmed: vec![current],
            current_confirmed: true,
            preferred: None,
            exploration: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: ReapStats::default(),
        }
    }

    /// Our current outbound pair `(Lp(local), Lp(peer))`: where payload and keepalives go.
    /// It changes only once REAP confirmed a new pair ([RFC 5534 §6.9]).
    ///
    /// [RFC 5534 §6.9]: https://www.rfc-editor.org/rfc/rfc5534#section-6.9
    pub fn current_pair(&self) -> LocatorPair {
        self.current
    }

    /// The REAP state: Operational, Exploring or InboundOk ([RFC 5534 §6]).
    ///
    /// [RFC 5534 §6]: https://www.rfc-editor.org/rfc/rfc5534#section-6
    pub fn state(&self) -> ReapState {
        self.state
    }

    /// Counters since creation.
    pub fn stats(&self) -> ReapStats {
        self.stats
    }

    /// The configuration in force (clamped, see [`ReapConfig::validate`]).
    pub fn config(&self) -> &ReapConfig {
        &self.config
    }

    /// Sets the peer's context tag, which every Keepalive and Probe carries; it changes after
    /// context recovery ([RFC 5533 §7.15](https://www.rfc-editor.org/rfc/rfc5533#section-7.15)).
    pub fn set_peer_tag(&mut self, tag: ContextTag) {
        self.peer_tag = tag;
    }

    /// Applies the peer's Keepalive Timeout option ([RFC 5534 §5.3]): our Tka becomes `secs`.
    /// Zero is ignored: it would turn Forced Bidirectional Detection off. Timers already armed
    /// keep their deadlines; the new value applies from the next arming.
    ///
    /// [RFC 5534 §5.3]: https://www.rfc-editor.org/rfc/rfc5534#section-5.3
    pub fn set_keepalive_timeout(&mut self, secs: u16) {
        if secs > 0 {
            self.tka = Duration::from_secs(u64::from(secs));
        }
    }

    /// The data plane received payload for this context (ULP packets or Shim6 control messages
    /// other than Keepalive/Probe, [RFC 5534 §4.1 item 2, §6.1]); `at` is the newest receive
    /// time (clamped to `now`).
    ///
    /// Operational: stop the Send Timer, run the Keepalive Timer (Keepalive Timeout after the
    /// newest receipt, so keepalives stop a Tka after receipts stop). Exploring: go InboundOk,
    /// send a probe, start the Send Timer. InboundOk: stop the Send Timer.
    ///
    /// When both counters moved since the last poll, report the older `at` first. A receipt
    /// older than our newest send only stops a Send Timer started before it; it needs no
    /// keepalive, since that send already answered it.
    ///
    /// [RFC 5534 §4.1 item 2, §6.1]: https://www.rfc-editor.org/rfc/rfc5534#section-6.1
    pub fn on_payload_received(&mut self, now: Instant, at: Instant) {
        let at = at.min(now);
        let answered_by_us = self.last_sent.is_some_and(|s| at <= s);
        self.last_heard = self.last_heard.max(Some(at));
        match self.state {
            ReapState::Exploring => self.exploring_heard_peer(now),
            ReapState::InboundOk => self.stop_send_if_answered(at),
            _ => {
                self.stop_send_if_answered(at);
                if answered_by_us {
                    // Our later send is outstanding again: time it from that send.
                    if let Some(s) = self.last_sent.filter(|&s| s > at) {
                        self.start_send_timer(now, s);
                    }
                } else {
                    self.start_keepalive(now, at);
                }
            }
        }
    }

    /// The data plane sent payload for this context ([RFC 5534 §6.2]); `at` is the newest send
    /// time (clamped to `now`).
    ///
    /// Operational: stop the Keepalive Timer, start the Send Timer if not running. Exploring:
    /// nothing. InboundOk: start the Send Timer if not running. A send not newer than the
    /// newest thing heard from the peer is already answered and changes no timer.
    ///
    /// [RFC 5534 §6.2]: https://www.rfc-editor.org/rfc/rfc5534#section-6.2
    pub fn on_payload_sent(&mut self, now: Instant, at: Instant) {
        let at = at.min(now);
        self.last_sent = self.last_sent.max(Some(at));
        if self.last_heard.is_some_and(|h| at <= h) {
            return;
        }
        match self.state {
            ReapState::Exploring => {}
            ReapState::InboundOk => self.start_send_timer(now, at),
            _ => {
                self.stop_keepalive();
                self.start_send_timer(now, at);
            }
        }
    }

    /// A Keepalive for this context arrived ([RFC 5534 §6.6]).
    ///
    /// Operational and InboundOk: stop the Send Timer. Exploring: go InboundOk, send a probe,
    /// start the Send Timer.
    ///
    /// [RFC 5534 §6.6]: https://www.rfc-editor.org/rfc/rfc5534#section-6.6
    pub fn on_keepalive(&mut self, now: Instant) {
        self.stats.keepalives_received = self.stats.keepalives_received.saturating_add(1);
        self.last_heard = self.last_heard.max(Some(now));
        match self.state {
            ReapState::Exploring => self.exploring_heard_peer(now),
            _ => self.stop_send(),
        }
    }

    /// Fires every timer that expired by `now`. Calling it early or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_TIMER_ROUNDS {
            let mut fired = false;
            for timer in ReapTimer::ALL {
                if self.timers.is_expired(timer, now) {
                    self.timers.stop(timer);
                    fired = true;
                    self.on_timer(now, timer);
                }
            }
            if !fired {
                break;
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next needs calling; never before the
    /// `now` of the last input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// The next REAP message to send, oldest first.
    pub fn poll_transmit(&mut self) -> Option<ReapTransmit> {
        self.outbox.pop_front()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<ReapEvent> {
        self.events.pop_front()
    }

    fn on_timer(&mut self, now: Instant, timer: ReapTimer) {
        match timer {
            ReapTimer::Send => match self.state {
                // RFC 5534 §6.4: SEND Probe Exploring, GOTO Exploring.
                ReapState::Operational => {
                    self.start_exploration(now, ExplorationReason::SendTimeout, &[]);
                }
                ReapState::InboundOk => {
                    self.start_exploration(now, ExplorationReason::InboundOkTimeout, &[]);
                }
                _ => {}
            },
            ReapTimer::Keepalive => {
                // RFC 5534 §6.3: one last Keepalive, only in Operational.
                self.timers.stop(ReapTimer::KeepaliveInterval);
                if self.state == ReapState::Operational {
                    self.send_keepalive();
                }
            }
            ReapTimer::KeepaliveInterval => self.keepalive_interval(now),
            ReapTimer::Probe => self.probe_timer(now),
        }
    }

    /// Keepalive Interval expiry while the Keepalive Timer runs ([RFC 5534 §4.1 item 5]):
    /// send one, and re-arm while at least half an interval remains before the Keepalive
    /// Timeout, whose expiry sends the last one (so that one is not doubled).
    ///
    /// [RFC 5534 §4.1 item 5]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
    fn keepalive_interval(&mut self, now: Instant) {
        if self.state != ReapState::Operational {
            return;
        }
        let Some(deadline) = self.timers.get(ReapTimer::Keepalive) else {
            return;
        };
        self.send_keepalive();
        let interval = self.config.draw_keepalive_interval(self.tka, &mut self.rng);
        if let Some(next) = now.checked_add(interval) {
            if next
                .checked_add(interval / 2)
                .is_some_and(|t| t <= deadline)
            {
                self.timers.set(ReapTimer::KeepaliveInterval, next);
            }
        }
    }

    /// Starts (or extends) the Keepalive Timer for a receipt at `at`: Keepalive Timeout after
    /// the newest receipt, and the interval timer if it is idle ([RFC 5534 §6.1]).
    ///
    /// [RFC 5534 §6.1]: https://www.rfc-editor.org/rfc/rfc5534#section-6.1
    pub(crate) fn start_keepalive(&mut self, now: Instant, at: Instant) {
        let deadline = after(at, self.tka, now);
        let new_deadline = self
            .timers
            .get(ReapTimer::Keepalive)
            .map_or(deadline, |d| d.max(deadline));
        self.timers.set(ReapTimer::Keepalive, new_deadline);
        if !self.timers.is_running(ReapTimer::KeepaliveInterval) {
            let interval = self.config.draw_keepalive_interval(self.tka, &mut self.rng);
            let first = after(at, interval, now);
            if first < new_deadline {
                self.timers.set(ReapTimer::KeepaliveInterval, first);
            }
        }
    }

    /// Stops the Keepalive Timer and its interval timer.
    pub(crate) fn stop_keepalive(&mut self) {
        self.timers.stop(ReapTimer::Keepalive);
        self.timers.stop(ReapTimer::KeepaliveInterval);
    }

    /// Starts the Send Timer for a send at `at` unless it runs; the two FBD timers are
    /// mutually exclusive ([RFC 5534 §4.1 item 3]).
    ///
    /// [RFC 5534 §4.1 item 3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.1
    pub(crate) fn start_send_timer(&mut self, now: Instant, at: Instant) {
        if self.timers.is_running(ReapTimer::Send) {
            return;
        }
        self.arm_send_timer(now, at);
    }

    /// (Re)starts the Send Timer from `at`.
    pub(crate) fn arm_send_timer(&mut self, now: Instant, at: Instant) {
        let timeout = self.config.draw_send_timeout(&mut self.rng);
        self.timers.set(ReapTimer::Send, after(at, timeout, now));
        self.send_started = Some(at);
        self.stop_keepalive();
    }

    /// Stops the Send Timer.
    pub(crate) fn stop_send(&mut self) {
        self.timers.stop(ReapTimer::Send);
        self.send_started = None;
    }

    /// Stops the Send Timer if it was started by a send not newer than `at`.
    fn stop_send_if_answered(&mut self, at: Instant) {
        if !matches!(self.send_started, Some(s) if s > at) {
            self.stop_send();
        }
    }

    /// Queues a Keepalive on the current pair ([RFC 5534 §5.1, §6.1]).
    ///
    /// [RFC 5534 §5.1, §6.1]: https://www.rfc-editor.org/rfc/rfc5534#section-5.1
    pub(crate) fn send_keepalive(&mut self) {
        self.stats.keepalives_sent = self.stats.keepalives_sent.saturating_add(1);
        let t = ReapTransmit {
            pair: self.current,
            body: MessageBody::Keepalive {
                receiver_tag: self.peer_tag,
            },
        };
        self.push_transmit(t);
    }

    /// Queues `t`, dropping the oldest transmit when the queue is full.
    pub(crate) fn push_transmit(&mut self, t: ReapTransmit) {
        if self.outbox.len() >= MAX_QUEUE {
            self.outbox.pop_front();
            self.stats.dropped = self.stats.dropped.saturating_add(1);
        }
        self.outbox.push_back(t);
    }

    /// Queues `e`, dropping the oldest event when the queue is full.
    pub(crate) fn push_event(&mut self, e: ReapEvent) {
        if self.events.len() >= MAX_QUEUE {
            self.events.pop_front();
            self.stats.dropped = self.stats.dropped.saturating_add(1);
        }
        self.events.push_back(e);
    }

    /// Moves to `new`, reporting the change. Leaving Operational stops the Keepalive Timer
    /// (it only runs there); entering it stops probing ([RFC 5534 §6]).
    ///
    /// [RFC 5534 §6]: https://www.rfc-editor.org/rfc/rfc5534#section-6
    pub(crate) fn set_state(&mut self, new: ReapState) {
        let old = self.state;
        if old == new {
            return;
        }
        self.state = new;
        if new == ReapState::Operational {
            self.timers.stop(ReapTimer::Probe);
            self.plan = ProbePlan::explore(Vec::new());
        } else {
            self.stop_keepalive();
            self.current_confirmed = false;
        }
        self.push_event(ReapEvent::StateChanged { old, new });
    }

    /// Makes `new`, just confirmed by the peer, the current pair, reporting a change
    /// ([RFC 5534 §6.8]).
    ///
    /// [RFC 5534 §6.8]: https://www.rfc-editor.org/rfc/rfc5534#section-6.8
    pub(crate) fn set_current(&mut self, new: LocatorPair) {
        self.current_confirmed = true;
        self.confirmed.retain(|p| *p != new);
        self.confirmed.insert(0, new);
        self.confirmed.truncate(MAX_CONFIRMED);
        if self.preferred == Some(new) {
            self.preferred = None;
        }
        let old = self.current;
        if old != new {
            self.current = new;
            self.stats.pair_changes = self.stats.pair_changes.saturating_add(1);
            if self.locators.is_unreachable(old) {
                self.stats.unreachable_moves = self.stats.unreachable_moves.saturating_add(1);
            }
            self.push_event(ReapEvent::PairChanged { old, new });
        }
    }

    /// Sizes of every growable structure, for memory-bound tests.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.locators.footprint()
            + self.plan.order.len()
            + self.sent.len()
            + self.received.len()
            + self.confirmed.len()
            + self.outbox.len()
            + self.events.len()
    }
}

/// `at + d`, but not before `now` (a deadline already past fires at the next
/// `handle_timeout`, and `poll_timeout` never goes back before `now`) and saturating far in
/// the future instead of overflowing.
pub(crate) fn after(at: Instant, d: Duration, now: Instant) -> Instant {
    at.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
        .max(now)
}
