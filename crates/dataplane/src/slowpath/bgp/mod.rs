//! BGP as a failure signal (paper §6, issue #9): the routes each provider announces, as the
//! site's BIRD exported them into one kernel table per provider, reach the slow path as
//! [`RouteChange`]s over the control channel (a housekeeping thread follows the kernel; the
//! fast path never waits). When no route of provider X covers a peer locator L any more,
//! the engine marks (X, L) unreachable ([`shim6::ContextEngine::set_peer_reachability`]):
//! contexts on that path move at once instead of after REAP's Send Timeout. The site itself
//! injects nothing into BGP.
//!
//! A provider's table gives a verdict only once its first dump is complete
//! ([`RouteChange::Synced`]) and while it holds at least one route: an empty table means
//! the BGP session (or BIRD) is down, which says nothing about the provider's data path;
//! REAP still guards it. Without a verdict every path through the provider counts as
//! reachable (marks are cleared).

mod lpm;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shim6::ProviderId;
use wire::Locator;

pub use lpm::{InvalidPrefix, Ipv6Net, PrefixSet};

use super::SlowPath;

/// One change of a provider's route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChange {
    /// A (re)dump of the provider's table starts: forget its routes.
    Reset {
        /// Provider id.
        provider: u16,
    },
    /// The provider announces `net` (its first route to it appeared).
    Add {
        /// Provider id.
        provider: u16,
        /// The prefix.
        net: Ipv6Net,
    },
    /// The provider withdrew `net` (its last route to it is gone).
    Remove {
        /// Provider id.
        provider: u16,
        /// The prefix.
        net: Ipv6Net,
    },
    /// The dump is complete: from now on a peer locator no route covers is unreachable via
    /// this provider.
    Synced {
        /// Provider id.
        provider: u16,
    },
}

/// What the slow path knows of one provider's routes (shown by `GET /v1/providers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteStats {
    /// Prefixes in the provider's table now.
    pub routes: usize,
    /// Whether the first dump is complete (marks are made only then).
    pub synced: bool,
    /// Prefixes withdrawn since start.
    pub withdrawals: u64,
    /// Time since the last withdrawal, when there was one.
    pub last_withdraw_ago: Option<Duration>,
}

#[derive(Debug, Default)]
struct ProviderRoutes {
    id: u16,
    set: PrefixSet,
    synced: bool,
    withdrawals: u64,
    last_withdraw: Option<Instant>,
}

/// Per-provider route sets.
#[derive(Debug, Default)]
pub(super) struct BgpRoutes {
    providers: Vec<ProviderRoutes>,
}

impl BgpRoutes {
    fn entry(&mut self, id: u16) -> &mut ProviderRoutes {
        let i = match self.providers.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                self.providers.push(ProviderRoutes {
                    id,
                    ..ProviderRoutes::default()
                });
                self.providers.len() - 1
            }
        };
        &mut self.providers[i]
    }

    /// Applies `c`; whether reachability may have changed.
    fn apply(&mut self, now: Instant, c: RouteChange) -> bool {
        match c {
            RouteChange::Reset { provider } => {
                let p = self.entry(provider);
                p.set.clear();
                std::mem::replace(&mut p.synced, false)
            }
            RouteChange::Add { provider, net } => {
                let p = self.entry(provider);
                p.set.insert(net) && p.synced
            }
            RouteChange::Remove { provider, net } => {
                let p = self.entry(provider);
                let gone = p.set.remove(net);
                if gone {
                    p.withdrawals += 1;
                    p.last_withdraw = Some(now);
                }
                gone && p.synced
            }
            RouteChange::Synced { provider } => {
                let p = self.entry(provider);
                p.synced = true;
                true
            }
        }
    }

    /// Every provider heard of, with whether it routes `peer` (`true` without a verdict:
    /// not synced yet, or an empty table).
    fn reachability(&self, peer: Locator) -> impl Iterator<Item = (u16, bool)> + '_ {
        self.providers.iter().map(move |p| {
            let verdict = p.synced && !p.set.is_empty();
            (p.id, !verdict || p.set.covers(peer.0))
        })
    }

    pub(super) fn stats(&self, now: Instant, id: u16) -> Option<RouteStats> {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .map(|p| RouteStats {
                routes: p.set.len(),
                synced: p.synced,
                withdrawals: p.withdrawals,
                last_withdraw_ago: p.last_withdraw.map(|t| now.saturating_duration_since(t)),
            })
    }
}

impl SlowPath {
    /// Applies route changes (from the control channel), then re-marks every peer locator of
    /// every context whose reachability may have changed.
    pub(super) fn apply_routes(&mut self, now: Instant, changes: &[RouteChange]) {
        let mut dirty = false;
        for &c in changes {
            dirty |= self.routes.apply(now, c);
        }
        self.stats.route_changes += changes.len() as u64;
        if !dirty {
            return;
        }
        let peers: HashSet<Locator> = self
            .engine
            .contexts()
            .flat_map(|c| c.peer_locators.into_iter().map(|p| p.locator))
            .collect();
        for peer in peers {
            self.mark_reachability(now, peer);
        }
    }

    /// Tells the engine whether each provider routes `peer` (before a handshake to
    /// it, when a context is established, after route changes).
    pub(super) fn mark_reachability(&mut self, now: Instant, peer: Locator) {
        for (id, reachable) in self.routes.reachability(peer) {
            if self
                .engine
                .set_peer_reachability(now, ProviderId(id), peer, reachable)
            {
                self.stats.reachability_changes += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
