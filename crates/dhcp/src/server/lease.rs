//! Granting, extending and re-making bindings: the CMULA of a client is a CGA of the site key
//! under the ULID /64 with a per-client modifier ([RFC 3972 §4](https://www.rfc-editor.org/rfc/rfc3972#section-4)),
//! persisted before anyone hears of it.

use std::net::Ipv6Addr;

use rand::RngCore;

use super::DhcpServer;
use crate::prefix::interface_id;
use crate::store::{BindingStore, PutOutcome};
use crate::{Binding, BindingState, ClientKey, DhcpError};

/// Tries at making a collision-free address before giving up (each try is a collision with a
/// bound or declined address: with 64-bit interface identifiers, never more than one in
/// practice).
const MAX_ATTEMPTS: u32 = 16;

/// What a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Advertise: reserve for `offer_lifetime`, keep a bound lease bound.
    Offer,
    /// Reply: commit with the full lease lifetimes.
    Bind,
}

/// Why no address was granted.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The binding cap is reached and nothing expired can be reclaimed, or no collision-free
    /// address could be made: answer NoAddrsAvail.
    NoAddrs,
    /// The store (or the key, when generating) failed: send nothing, since nothing durable
    /// backs an answer.
    Store,
    /// Another proxy sharing the store wrote the binding first; it is installed now and the
    /// grant is decided again from it.
    Superseded,
}

/// Grants decided again after a conflicting write by another proxy, before giving up (each
/// retry starts from the binding that proxy stored, so one is enough unless the client keeps
/// talking to several proxies at once).
const MAX_CONFLICT_RETRIES: u32 = 3;

impl<S: BindingStore> DhcpServer<S> {
    /// The CGA of `start` (searched for Sec) and `collision_count`: the address and the final
    /// modifier.
    pub(super) fn derive(
        &self,
        start: [u8; 16],
        collision_count: u8,
        sec: u8,
    ) -> Result<(Ipv6Addr, [u8; 16]), DhcpError> {
        let (addr, params) = cga::generate_from_modifier(
            &self.key_der,
            self.cfg.ulid_prefix.0,
            sec,
            &[],
            start,
            collision_count,
        )?;
        Ok((addr, params.modifier))
    }

    /// The locators of a CMULA: every PA prefix with its interface identifier.
    pub(super) fn locators_of(&self, addr: Ipv6Addr) -> Vec<Ipv6Addr> {
        let iid = interface_id(addr);
        self.cfg
            .pa_prefixes
            .iter()
            .map(|p| p.with_iid(iid))
            .collect()
    }

    /// Makes an address no one holds or declined: from (`start`, `cc`), incrementing the
    /// collision count on a collision (RFC 3972 §4 step 8) and drawing a new modifier past 2.
    fn fresh_address(
        &mut self,
        mut start: [u8; 16],
        mut cc: u8,
    ) -> Result<([u8; 16], u8, Ipv6Addr), Refusal> {
        let sec = self.cfg.sec;
        for _ in 0..MAX_ATTEMPTS {
            let (addr, modifier) = self.derive(start, cc, sec).map_err(|_| Refusal::Store)?;
            if !self.by_addr.contains_key(&addr) {
                return Ok((modifier, cc, addr));
            }
            if cc < cga::MAX_COLLISION_COUNT {
                cc += 1;
                start = modifier;
            } else {
                cc = 0;
                self.rng.fill_bytes(&mut start);
            }
        }
        Err(Refusal::NoAddrs)
    }

    /// Reclaims the longest-expired dynamic binding, if any, to stay under the cap.
    fn evict_one(&mut self, now: u64) -> Result<bool, Refusal> {
        let victim = self
            .bindings
            .values()
            .filter(|b| !b.fixed && b.expired(now))
            .min_by_key(|b| b.valid_until)
            .map(|b| b.client.clone());
        let Some(key) = victim else {
            return Ok(false);
        };
        self.store.remove(&key).map_err(|_| Refusal::Store)?;
        self.forget(&key);
        self.counters.bindings_evicted += 1;
        Ok(true)
    }

    /// Drops a binding from the maps (not from the store).
    pub(super) fn forget(&mut self, key: &ClientKey) {
        if let Some(b) = self.bindings.remove(key) {
            if !b.fixed {
                self.dynamic -= 1;
            }
            for a in std::iter::once(b.address).chain(b.declined) {
                if self.by_addr.get(&a) == Some(key) {
                    self.by_addr.remove(&a);
                }
            }
        }
    }

    /// Installs a binding in the maps, replacing the client's previous one.
    pub(super) fn install(&mut self, b: Binding) {
        self.forget(&b.client);
        if !b.fixed {
            self.dynamic += 1;
        }
        for &a in std::iter::once(&b.address).chain(&b.declined) {
            self.by_addr.insert(a, b.client.clone());
        }
        self.bindings.insert(b.client.clone(), b);
    }

    /// The binding `key` gets for `commit` at `now` (Unix seconds): the existing one extended,
    /// or a new one, or a re-made one after a Decline. Persisted before it is returned. When
    /// another proxy of the site wrote the client's binding first, that binding is adopted and
    /// extended instead, so both proxies hand out the same CMULA.
    pub(super) fn grant(
        &mut self,
        now: u64,
        key: &ClientKey,
        commit: Commit,
    ) -> Result<Binding, Refusal> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            match self.grant_once(now, key, commit) {
                Err(Refusal::Superseded) => continue,
                r => return r,
            }
        }
        Err(Refusal::Store)
    }

    fn grant_once(
        &mut self,
        now: u64,
        key: &ClientKey,
        commit: Commit,
    ) -> Result<Binding, Refusal> {
        let existing = self.bindings.get(key).cloned();
        let mut b = match &existing {
            Some(b) if b.fixed => {
                // Configured: the address never changes and nothing needs to be durable.
                let mut b = b.clone();
                self.set_times(&mut b, now, commit);
                self.bindings.insert(key.clone(), b.clone());
                return Ok(b);
            }
            Some(b) if b.state != BindingState::Declined && b.prefix == self.cfg.ulid_prefix => {
                b.clone()
            }
            Some(b) => self.remake(b)?,
            None => self.create(now, key)?,
        };
        self.set_times(&mut b, now, commit);
        b.locators = self.locators_of(b.address);
        if existing.as_ref() != Some(&b) {
            self.store_binding(&b)?;
            if existing.is_none() {
                self.counters.bindings_created += 1;
            }
            self.install(b.clone());
        }
        Ok(b)
    }

    /// Writes `b` unless another proxy changed the client's binding first; then installs
    /// that binding and returns [`Refusal::Superseded`].
    pub(super) fn store_binding(&mut self, b: &Binding) -> Result<(), Refusal> {
        match self.store.put_checked(b) {
            Ok(PutOutcome::Stored) => Ok(()),
            Ok(PutOutcome::Superseded(current)) => {
                self.counters.store_conflicts += 1;
                self.install(*current);
                Err(Refusal::Superseded)
            }
            Err(_) => Err(Refusal::Store),
        }
    }

    fn set_times(&self, b: &mut Binding, now: u64, commit: Commit) {
        match commit {
            Commit::Bind => {
                b.state = BindingState::Bound;
                b.valid_until = now + u64::from(self.cfg.valid_lifetime);
                b.preferred_until = now + u64::from(self.cfg.preferred_lifetime);
            }
            Commit::Offer if b.state == BindingState::Bound && !b.expired(now) => {}
            Commit::Offer => {
                b.state = BindingState::Offered;
                let hold = u64::from(self.cfg.offer_lifetime);
                // Re-write only when half the hold is gone, so retransmitted Solicits do not
                // each cost a sync.
                if b.valid_until < now + hold / 2 {
                    b.valid_until = now + hold;
                    b.preferred_until = b.valid_until;
                }
            }
        }
    }

    /// A new dynamic binding with a random modifier.
    fn create(&mut self, now: u64, key: &ClientKey) -> Result<Binding, Refusal> {
        if self.dynamic >= self.cfg.max_bindings && !self.evict_one(now)? {
            return Err(Refusal::NoAddrs);
        }
        let mut start = [0u8; 16];
        self.rng.fill_bytes(&mut start);
        let (modifier, collision_count, address) = self.fresh_address(start, 0)?;
        Ok(Binding {
            client: key.clone(),
            modifier,
            prefix: self.cfg.ulid_prefix,
            collision_count,
            sec: self.cfg.sec,
            address,
            locators: Vec::new(),
            state: BindingState::Offered,
            valid_until: 0,
            preferred_until: 0,
            declined: Vec::new(),
            fixed: false,
        })
    }

    /// A new address for a client whose address was declined (the next collision count of the
    /// same modifier, RFC 3972 §4 step 8) or whose ULID prefix changed (same modifier).
    fn remake(&mut self, old: &Binding) -> Result<Binding, Refusal> {
        let mut b = old.clone();
        let (start, cc) = if old.state == BindingState::Declined {
            if old.collision_count < cga::MAX_COLLISION_COUNT {
                (old.modifier, old.collision_count + 1)
            } else {
                let mut m = [0u8; 16];
                self.rng.fill_bytes(&mut m);
                (m, 0)
            }
        } else {
            (old.modifier, old.collision_count)
        };
        let (modifier, collision_count, address) = self.fresh_address(start, cc)?;
        b.modifier = modifier;
        b.collision_count = collision_count;
        b.address = address;
        b.prefix = self.cfg.ulid_prefix;
        b.sec = self.cfg.sec;
        b.state = BindingState::Offered;
        b.valid_until = 0;
        Ok(b)
    }
}
