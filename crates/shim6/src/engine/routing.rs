//! Routing signal (paper §6, issue #9 "BGP as a failure signal"): the site's routing daemon
//! learns the routes each provider announces; when provider X no longer routes a peer
//! locator L, every pair (our locator on X, L) is marked unreachable. Contexts on such a pair
//! move at once to the best unmarked pair through REAP's confirmed "prefer this pair" probe
//! ([`reap::ReapMachine::set_path_unreachable`]) instead of waiting for the Send Timeout
//! ([RFC 5534 §6.4](https://www.rfc-editor.org/rfc/rfc5534#section-6.4)); REAP explorations
//! and new handshakes try marked pairs only after every other one.

use std::time::Instant;

use wire::{Locator, LocatorPair};

use super::ContextEngine;
use crate::context::Context;
use crate::site::{locator_for, ProviderId};

/// Most (provider, peer locator) marks held; further marks are refused and counted
/// (`EngineStats::unreachable_refused`) so memory stays bounded whatever routing does.
pub const MAX_UNREACHABLE: usize = 65_536;

impl ContextEngine {
    /// Peer locator `peer` is unreachable (`reachable == false`: provider `provider` no longer
    /// routes it) or reachable again via `provider`. Idempotent; returns whether the mark
    /// changed. Every context holding `peer` among its peer locators updates its REAP marks
    /// at once; a context whose current pair became unreachable starts moving now (a
    /// confirmed move counts in `EngineStats::bgp_moves`).
    pub fn set_peer_reachability(
        &mut self,
        now: Instant,
        provider: ProviderId,
        peer: Locator,
        reachable: bool,
    ) -> bool {
        let key = (provider, peer);
        let changed = if reachable {
            self.unreachable.remove(&key)
        } else if self.unreachable.len() >= MAX_UNREACHABLE {
            self.stats.unreachable_refused += 1;
            false
        } else {
            self.unreachable.insert(key)
        };
        if !changed {
            return false;
        }
        let Some(prefix) = self
            .site
            .providers
            .iter()
            .find(|p| p.id == provider)
            .map(|p| p.prefix)
        else {
            return true;
        };
        for tag in self.table.tags() {
            let Some(mut ctx) = self.table.take(tag) else {
                continue;
            };
            if ctx.peer_locators.iter().any(|p| p.locator == peer) {
                let pair = LocatorPair {
                    local: locator_for(prefix, ctx.local_ulid),
                    peer,
                };
                if let Some(reap) = ctx.reap.as_mut() {
                    reap.set_path_unreachable(now, pair, !reachable);
                }
                self.drain_reap(&mut ctx);
            }
            self.put(ctx);
        }
        true
    }

    /// Whether `peer` is marked unreachable via `provider`.
    pub fn peer_unreachable(&self, provider: ProviderId, peer: Locator) -> bool {
        self.unreachable.contains(&(provider, peer))
    }

    /// Number of (provider, peer locator) marks held.
    pub fn unreachable_marks(&self) -> usize {
        self.unreachable.len()
    }

    /// Whether the pair `local → peer` of host `ulid` is marked unreachable.
    pub(super) fn pair_unreachable(&self, ulid: wire::Ulid, pair: LocatorPair) -> bool {
        !self.unreachable.is_empty()
            && self.site.providers.iter().any(|p| {
                locator_for(p.prefix, ulid) == pair.local
                    && self.unreachable.contains(&(p.id, pair.peer))
            })
    }

    /// Hands a context's REAP machine the marks of its pairs (after it is created or its
    /// locator sets changed). Marks of pairs outside its sets are left out.
    pub(super) fn apply_unreachable(&mut self, now: Instant, ctx: &mut Context) {
        if self.unreachable.is_empty() {
            return;
        }
        let Some(reap) = ctx.reap.as_mut() else {
            return;
        };
        for p in &self.site.providers {
            let local = locator_for(p.prefix, ctx.local_ulid);
            for peer in &ctx.peer_locators {
                if self.unreachable.contains(&(p.id, peer.locator)) {
                    let pair = LocatorPair {
                        local,
                        peer: peer.locator,
                    };
                    reap.set_path_unreachable(now, pair, true);
                }
            }
        }
    }
}
