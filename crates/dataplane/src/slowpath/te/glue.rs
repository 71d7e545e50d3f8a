//! Traffic engineering inside the slow path: the provider of each new handshake, the
//! periodic measure-and-move step (from the context table's counters, through the engine's
//! `prefer_pair`), the Locator Preferences we advertise, and the operator's commands.

use std::time::Instant;

use shim6::ProviderId;
use wire::{Locator, LocatorPair};

use super::handle::{TeCommand, TeHandle};
use super::{Move, TeError, TePolicy, TePolicyError, TeView};
use crate::slowpath::pending::UlidPair;
use crate::slowpath::SlowPath;

impl SlowPath {
    /// Replaces the traffic-engineering policy (validated against the configured providers);
    /// the rebalancer acts on it at once, and peers get the new Locator Preferences.
    pub fn set_te_policy(&mut self, now: Instant, policy: TePolicy) -> Result<(), TePolicyError> {
        self.te.set_policy(policy, now)?;
        tracing::info!(policy = ?self.te.policy(), "te policy set");
        self.apply_ingress(now);
        Ok(())
    }

    /// The policy in force.
    pub fn te_policy(&self) -> &TePolicy {
        self.te.policy()
    }

    /// Drains provider `id`: no new communication uses it, every context moves off it
    /// (rate-limited, without breaking), and its locators are advertised with the worst
    /// priority so peers stop choosing them.
    pub fn drain_provider(&mut self, now: Instant, id: u16) -> Result<(), TeError> {
        self.te.drain(id, now)?;
        tracing::info!(provider = id, "provider drained");
        self.apply_ingress(now);
        Ok(())
    }

    /// Ends a drain: provider `id` is chosen again as the policy says.
    pub fn undrain_provider(&mut self, now: Instant, id: u16) -> Result<(), TeError> {
        self.te.undrain(id, now)?;
        tracing::info!(provider = id, "provider undrained");
        self.apply_ingress(now);
        Ok(())
    }

    /// Per-provider contexts, bytes and shares, and the rebalancer's counters.
    pub fn te_view(&self) -> TeView {
        self.te.view()
    }

    /// A handle other threads (the REST API) use to change the policy, drain and read the
    /// view while the slow path runs.
    pub fn te_handle(&self) -> TeHandle {
        self.te_handle.clone()
    }

    fn apply_ingress(&mut self, now: Instant) {
        let prefs: Vec<_> = self
            .te
            .ingress_preferences()
            .into_iter()
            .map(|(id, p, w)| (ProviderId(id), p, w))
            .collect();
        self.engine.set_ingress_preferences(now, &prefs);
        let drained: Vec<ProviderId> = self
            .te
            .provider_ids()
            .into_iter()
            .filter(|&id| self.te.is_drained(id))
            .map(ProviderId)
            .collect();
        self.engine.set_avoided_providers(&drained);
    }

    /// The provider the handshake for `pair` should start from (`None`: engine default).
    pub(crate) fn te_choose(&mut self, pair: UlidPair) -> Option<ProviderId> {
        self.te.choose(pair.0, pair.1).map(ProviderId)
    }

    /// Applies queued operator commands, then, when a step is due, samples the table's
    /// counters and requests the rebalancer's moves. Called from the housekeeping.
    pub(crate) fn te_poll(&mut self, now: Instant) {
        for cmd in self.te_handle.take_commands() {
            // The API waits for the view to show the change: publish it at once.
            self.te_next_view = now;
            let r = match cmd {
                TeCommand::SetPolicy(p) => self.set_te_policy(now, p).map_err(|e| e.to_string()),
                TeCommand::Drain(id) => self.drain_provider(now, id).map_err(|e| e.to_string()),
                TeCommand::Undrain(id) => self.undrain_provider(now, id).map_err(|e| e.to_string()),
            };
            if let Err(error) = r {
                // Validated by the handle already; only a race (e.g. two drains) gets here.
                tracing::warn!(%error, "te command refused");
            }
        }
        if self.te.due(now) {
            self.te_step(now);
        }
        if now >= self.te_next_view {
            // The snapshot walks every context: once a second is plenty for the API.
            self.te_next_view = now + std::time::Duration::from_secs(1);
            self.te_handle.publish(self.te.view());
        }
    }

    /// One rebalancer step: sample the table's counters, request the moves.
    fn te_step(&mut self, now: Instant) {
        let table = &self.table;
        let seen: Vec<_> = self
            .sync
            .tracked_mut()
            .filter_map(|(tag, t)| {
                let e = table.get(*tag)?;
                Some((
                    *tag,
                    e.local_ulid,
                    e.peer_ulid,
                    e.tx_provider,
                    t.last.tx_bytes,
                ))
            })
            .collect();
        self.te.sample(now, seen);
        for m in self.te.rebalance(now) {
            self.te_move(now, m);
        }
    }

    /// Asks the engine to move a context to provider `m.to` (same peer locator).
    fn te_move(&mut self, now: Instant, m: Move) {
        let target = self
            .dp
            .providers
            .iter()
            .find(|p| p.id == m.to)
            .map(|p| p.prefix);
        let (Some(prefix), Some(e)) = (target, self.table.get(m.tag)) else {
            self.te.move_refused(m.tag);
            return;
        };
        let pair = LocatorPair {
            local: Locator(prefix.with_iid_of(e.local_ulid.0)),
            peer: e.pair.peer,
        };
        match self.engine.prefer_pair(now, m.tag, pair) {
            Ok(()) => {
                tracing::debug!(tag = %m.tag, from = e.tx_provider, to = m.to, "te move requested")
            }
            Err(error) => {
                tracing::debug!(tag = %m.tag, to = m.to, %error, "te move refused");
                self.te.move_refused(m.tag);
            }
        }
    }
}
