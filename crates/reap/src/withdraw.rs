//! Routing signal: a pair whose local locator's provider withdrew its route to the peer
//! locator (a BGP withdraw seen by the site's routing daemon, paper §6). REAP would only notice
//! after a Send Timeout plus probes ([RFC 5534 §6.4]); the signal moves the context at once,
//! through the same confirmed "prefer this pair" probe that traffic engineering uses, so the
//! new pair still has to answer before payload goes there ([RFC 5534 §6.9]).
//!
//! [RFC 5534 §6.4]: https://www.rfc-editor.org/rfc/rfc5534#section-6.4
//! [RFC 5534 §6.9]: https://www.rfc-editor.org/rfc/rfc5534#section-6.9

use std::time::Instant;

use wire::{LocatorPair, ReapState};

use crate::event::ExplorationReason;
use crate::machine::PlanMode;
use crate::ReapMachine;

impl ReapMachine {
    /// Marks `pair` unreachable (`true`) or reachable again (`false`) per routing.
    ///
    /// A marked pair is probed and chosen only after every other pair (exploration order,
    /// [RFC 5534 §4.3](https://www.rfc-editor.org/rfc/rfc5534#section-4.3) leaves the order
    /// open), and traffic engineering cannot prefer it. If it is the current pair while we are
    /// Operational, the best other pair not marked (pairs confirmed before first) is probed at
    /// once as with [`prefer_pair`](Self::prefer_pair) and becomes current when the peer
    /// reports our probe; if that probe goes unanswered, an exploration starts
    /// ([`ExplorationReason::PathUnreachable`]). With no other pair, nothing changes: REAP's own
    /// timers still guard the current one.
    pub fn set_path_unreachable(&mut self, now: Instant, pair: LocatorPair, unreachable: bool) {
        if !self.locators.set_unreachable(pair, unreachable) {
            return;
        }
        if self.exploring_stream() {
            let first = self.known_good();
            self.plan.order = self.locators.order(self.current, &first);
            self.plan.next = 0;
            return;
        }
        if !unreachable {
            return;
        }
        if let (ReapState::InboundOk, PlanMode::Prefer { pair: tried, .. }) =
            (self.state, self.plan.mode)
        {
            if tried != pair {
                // A TE probe already leads elsewhere; its outcome decides.
                return;
            }
            self.prefer_failed(tried);
        }
        if self.locators.is_unreachable(self.current) && self.state == ReapState::Operational {
            self.leave_unreachable(now);
        }
    }

    /// Whether a routing signal marked `pair` unreachable.
    pub fn is_path_unreachable(&self, pair: LocatorPair) -> bool {
        self.locators.is_unreachable(pair)
    }

    /// Probes the best pair not marked unreachable, to make it current.
    fn leave_unreachable(&mut self, now: Instant) {
        let first = self.known_good();
        let current = self.current;
        let next = self
            .locators
            .order(current, &first)
            .into_iter()
            .find(|&p| p != current && !self.locators.is_unreachable(p));
        if let Some(p) = next {
            // Cannot fail: `p` comes from the sets, its local locator is up and it is unmarked.
            let _ = self.prefer_pair(now, p);
        }
    }

    /// A probe of another pair failed: if the current pair is still marked unreachable, look
    /// for any working pair (unmarked ones first) with a full exploration.
    pub(crate) fn unreachable_fallback(&mut self, now: Instant) {
        if self.state == ReapState::Operational && self.locators.is_unreachable(self.current) {
            let first = self.known_good();
            self.start_exploration(now, ExplorationReason::PathUnreachable, &first);
        }
    }
}
