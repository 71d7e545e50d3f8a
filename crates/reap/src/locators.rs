//! Locator-set inputs: Update exchanges, provider links going down or up
//! ([RFC 5534 §3.1–§3.2, §4.1]; [RFC 5533 §10.4]).
//!
//! [RFC 5534 §3.1–§3.2, §4.1]: https://www.rfc-editor.org/rfc/rfc5534#section-3.1
//! [RFC 5533 §10.4]: https://www.rfc-editor.org/rfc/rfc5533#section-10.4

use std::time::Instant;

use wire::{Locator, LocatorPair, ReapState};

use crate::event::ExplorationReason;
use crate::machine::{PlanMode, ProbePlan};
use crate::ReapMachine;

impl ReapMachine {
    /// The context's locator sets changed (an Update from the peer, our own list after an
    /// Update Ack, a provider added or removed). `peer` must hold verified locators only.
    ///
    /// If the current pair lost a locator we start exploring at once (as LinShim6 does,
    /// `spec/reap.md` §10 \[I\]); the old pair stays current until REAP confirms another one
    /// ([RFC 5533 §10.4], [RFC 5534 §6.9]). A running exploration re-orders its pairs.
    ///
    /// [RFC 5533 §10.4]: https://www.rfc-editor.org/rfc/rfc5533#section-10.4
    /// [RFC 5534 §6.9]: https://www.rfc-editor.org/rfc/rfc5534#section-6.9
    pub fn set_locators(&mut self, now: Instant, local: Vec<Locator>, peer: Vec<Locator>) {
        self.locators.replace(local, peer);
        let locators = &self.locators;
        self.confirmed.retain(|p| locators.contains(*p));
        let broken = !self.locators.contains(self.current);
        self.locators_changed(now, ExplorationReason::CurrentPairRemoved, broken);
    }

    /// Sets the local locators to avoid: those of providers the operator drained. They stay
    /// usable, but every other pair is probed and chosen first, so an exploration (a stalled
    /// path, a peer's probe) does not bring the context back onto a drained provider unless
    /// nothing else works. Applies from the next exploration order on.
    pub fn set_avoided_locators(&mut self, avoid: Vec<Locator>) {
        self.locators.set_avoided(avoid);
    }

    /// A local locator stopped being locally operational (link down, router unreachable,
    /// address invalid; [RFC 5534 §3.2]). Pairs using it are never probed or chosen until
    /// [`local_locator_up`](Self::local_locator_up). If the current pair uses it, exploration
    /// starts at once instead of after a Send Timeout (`spec/reap.md` §6 \[I\]), probing first
    /// the pairs that were confirmed working before.
    ///
    /// [RFC 5534 §3.2]: https://www.rfc-editor.org/rfc/rfc5534#section-3.2
    pub fn local_locator_down(&mut self, now: Instant, loc: Locator) {
        self.locators.set_down(loc);
        let broken = self.current.local == loc;
        self.locators_changed(now, ExplorationReason::LocalLocatorDown(loc), broken);
    }

    /// A local locator is locally operational again. While exploring, pairs using it are
    /// probed next and the probe backoff restarts ([RFC 5534 §4.3] "retry the process as
    /// necessary"): a path may have come back after minutes at Max Probe Timeout.
    ///
    /// [RFC 5534 §4.3]: https://www.rfc-editor.org/rfc/rfc5534#section-4.3
    pub fn local_locator_up(&mut self, now: Instant, loc: Locator) {
        if !self.locators.set_up(loc) {
            return;
        }
        if self.exploring_stream() {
            let first: Vec<LocatorPair> = self
                .locators
                .order(self.current, &[])
                .into_iter()
                .filter(|p| p.local == loc)
                .collect();
            self.plan = ProbePlan::explore(self.locators.order(self.current, &first));
            self.send_stream_probe(now);
        }
    }

    /// Whether an exploration probe stream runs (Exploring, or InboundOk helping the peer).
    pub(crate) fn exploring_stream(&self) -> bool {
        match self.state {
            ReapState::Exploring => true,
            ReapState::InboundOk => self.plan.mode == PlanMode::Explore,
            _ => false,
        }
    }

    /// Pairs confirmed to work outbound before, still usable, other than the current pair.
    pub(crate) fn known_good(&self) -> Vec<LocatorPair> {
        self.confirmed
            .iter()
            .copied()
            .filter(|&p| p != self.current && self.locators.usable(p))
            .collect()
    }

    /// Common reaction to a locator change; `broken` says the current pair is unusable now.
    fn locators_changed(&mut self, now: Instant, reason: ExplorationReason, broken: bool) {
        if self.preferred.is_some_and(|p| !self.locators.usable(p)) {
            self.preferred = None;
        }
        if let (ReapState::InboundOk, PlanMode::Prefer { pair, .. }) = (self.state, self.plan.mode)
        {
            if !self.locators.usable(pair) {
                self.prefer_failed(pair);
            }
        }
        let first = self.known_good();
        if self.exploring_stream() {
            let was_empty = self.plan.order.is_empty();
            self.plan.order = self.locators.order(self.current, &first);
            self.plan.next = 0;
            if was_empty && !self.plan.order.is_empty() {
                // Nothing could be probed so far: start over at the initial rate.
                self.plan.count = 0;
                self.send_stream_probe(now);
            }
        } else if broken {
            // Operational, or InboundOk only for a TE probe.
            self.start_exploration(now, reason, &first);
        }
    }
}
