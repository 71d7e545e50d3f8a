//! Our side changes: hosts added/removed, providers added/removed/up/down. Every live context
//! of an affected host updates REAP at once and announces the change to the peer with an
//! Update Request ([RFC 5533 §10.1](https://www.rfc-editor.org/rfc/rfc5533#section-10.1)).

use std::time::Instant;

use wire::Ulid;

use super::ContextEngine;
use crate::event::RemoveReason;
use crate::site::{locator_for, LocalProvider, ProviderId};
use crate::Shim6Error;

impl ContextEngine {
    /// Adds a local host the engine acts for. `ulid` must be under the site ULID /64 and a CGA
    /// of `params`, whose public key must be the site key
    /// ([RFC 3972 §5](https://www.rfc-editor.org/rfc/rfc3972#section-5)).
    pub fn add_local_host(
        &mut self,
        ulid: Ulid,
        params: cga::CgaParameters,
    ) -> Result<(), Shim6Error> {
        self.site.add_host(ulid, &params)
    }

    /// Stops acting for a host: its contexts are removed.
    pub fn remove_local_host(&mut self, ulid: Ulid) {
        if self.site.hosts.remove(&ulid).is_none() {
            return;
        }
        for tag in self.table.tags() {
            if self.table.get(tag).is_some_and(|c| c.local_ulid == ulid) {
                if let Some(ctx) = self.table.take(tag) {
                    self.drop_context(ctx, Some(RemoveReason::LocalHostRemoved));
                }
            }
        }
    }

    /// The local link to `provider` went up or down. REAP of every context acts at once (a
    /// down link moves pairs off it without waiting for the Send Timeout); an Update Request
    /// with Locator Preferences (BROKEN on down providers) tells the peers.
    pub fn set_provider_state(&mut self, now: Instant, provider: ProviderId, up: bool) {
        let Some(p) = self.site.providers.iter_mut().find(|p| p.id == provider) else {
            return;
        };
        if p.up == up {
            return;
        }
        p.up = up;
        let prefix = p.prefix;
        self.site.prefs_version += 1;
        for tag in self.table.tags() {
            let Some(mut ctx) = self.table.take(tag) else {
                continue;
            };
            let loc = locator_for(prefix, ctx.local_ulid);
            if let Some(reap) = ctx.reap.as_mut() {
                if up {
                    reap.local_locator_up(now, loc);
                } else {
                    reap.local_locator_down(now, loc);
                }
            }
            self.drain_reap(&mut ctx);
            self.maybe_update(now, &mut ctx);
            self.put(ctx);
        }
    }

    /// Sets the Locator Preferences we advertise (traffic engineering: ingress preference,
    /// [RFC 5533 §5.15.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3)): a DNS
    /// SRV-style `(priority, weight)` per provider, lower priority preferred; providers not
    /// listed get `(0, 0)`; an empty list goes back to flags-only preferences. When this
    /// changes what we advertise, every established context sends the peer an Update Request
    /// with the new preferences ([RFC 5533 §10.1](https://www.rfc-editor.org/rfc/rfc5533#section-10.1)).
    pub fn set_ingress_preferences(&mut self, now: Instant, prefs: &[(ProviderId, u8, u8)]) {
        let new: std::collections::HashMap<_, _> =
            prefs.iter().map(|&(id, p, w)| (id, (p, w))).collect();
        if new == self.site.ingress {
            return;
        }
        self.site.ingress = new;
        self.site.prefs_version += 1;
        for tag in self.table.tags() {
            let Some(mut ctx) = self.table.take(tag) else {
                continue;
            };
            self.maybe_update(now, &mut ctx);
            self.put(ctx);
        }
    }

    /// Sets the providers REAP avoids (drained by the operator): their locators stay in the
    /// sets, but every context's exploration probes and chooses them only after every other
    /// pair ([RFC 5534 §4.3](https://www.rfc-editor.org/rfc/rfc5534#section-4.3) leaves the
    /// order to the implementation), so a stalled path does not move a context back onto a
    /// drained provider unless nothing else works.
    pub fn set_avoided_providers(&mut self, providers: &[ProviderId]) {
        let mut new = providers.to_vec();
        new.sort_unstable();
        new.dedup();
        if new == self.site.avoided {
            return;
        }
        self.site.avoided = new;
        for tag in self.table.tags() {
            let Some(mut ctx) = self.table.take(tag) else {
                continue;
            };
            let avoid = self.site.avoided_locators(ctx.local_ulid);
            if let Some(reap) = ctx.reap.as_mut() {
                reap.set_avoided_locators(avoid);
            }
            self.put(ctx);
        }
    }

    /// The ingress preferences set by [`set_ingress_preferences`](Self::set_ingress_preferences).
    pub fn ingress_preferences(&self) -> Vec<(ProviderId, u8, u8)> {
        let mut v: Vec<_> = self
            .site
            .ingress
            .iter()
            .map(|(&id, &(p, w))| (id, p, w))
            .collect();
        v.sort_unstable();
        v
    }

    /// Adds a provider (or replaces the one with the same id): every host gets a new locator;
    /// a new Locator List goes to every peer.
    pub fn add_provider(&mut self, now: Instant, provider: LocalProvider) {
        match self.site.providers.iter_mut().find(|p| p.id == provider.id) {
            Some(p) => *p = provider,
            None => self.site.providers.push(provider),
        }
        self.locators_changed(now);
    }

    /// Removes a provider: its locators leave every list; a new Locator List goes to every peer.
    pub fn remove_provider(&mut self, now: Instant, id: ProviderId) {
        let before = self.site.providers.len();
        self.site.providers.retain(|p| p.id != id);
        if self.site.providers.len() != before {
            self.locators_changed(now);
        }
    }

    fn locators_changed(&mut self, now: Instant) {
        // A new list: new generation (random start + 1, shim6.md §8.4).
        self.site.generation = self.site.generation.wrapping_add(1);
        self.site.prefs_version += 1;
        for tag in self.table.tags() {
            let Some(mut ctx) = self.table.take(tag) else {
                continue;
            };
            self.refresh_reap(now, &mut ctx);
            self.maybe_update(now, &mut ctx);
            self.put(ctx);
        }
    }
}
