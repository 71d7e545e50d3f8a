//! The context table and its indexes: by CT(local) (payload and UR/UA/Keepalive/Probe), by
//! (ULID pair, FII) (I1/I2/I2bis and outbound lookup), by Initiator Nonce (R1/R2), by CT(peer)
//! (R1bis, context confusion), plus the timer set
//! ([RFC 5533 §12.4](https://www.rfc-editor.org/rfc/rfc5533#section-12.4)).
//!
//! A context is taken out of the table while the engine works on it and put back afterwards;
//! `put` re-indexes it and files its next deadline, so indexes can never go stale.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use wire::{ContextTag, Nonce, Ulid};

use crate::context::Context;

#[derive(Default)]
pub(crate) struct Table {
    contexts: HashMap<ContextTag, Context>,
    by_ulids: HashMap<(Ulid, Ulid, u32), ContextTag>,
    by_nonce: HashMap<Nonce, Vec<ContextTag>>,
    by_peer_tag: HashMap<ContextTag, Vec<ContextTag>>,
    timers: BTreeSet<(Instant, ContextTag)>,
}

/// Nonces an R1/R2 for this context may echo. ESTABLISHED contexts stay indexed by their last
/// Initiator Nonce so a late R2 is recognised (and ignored, RFC 5533 §7.16) rather than
/// counted as a wrong nonce.
fn nonces(ctx: &Context) -> [Option<Nonce>; 2] {
    let hs = ctx
        .handshake
        .as_ref()
        .map(|h| h.nonce)
        .filter(|n| *n != ctx.i1_nonce);
    [Some(ctx.i1_nonce), hs]
}

fn push<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<ContextTag>>, k: K, tag: ContextTag) {
    map.entry(k).or_default().push(tag);
}

fn pull<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<ContextTag>>, k: &K, tag: ContextTag) {
    if let Some(v) = map.get_mut(k) {
        v.retain(|t| *t != tag);
        if v.is_empty() {
            map.remove(k);
        }
    }
}

impl Table {
    pub(crate) fn len(&self) -> usize {
        self.contexts.len()
    }

    /// Entries across every map (for "no state kept" checks).
    pub(crate) fn entries(&self) -> usize {
        self.contexts.len()
            + self.by_ulids.len()
            + self.by_nonce.len()
            + self.by_peer_tag.len()
            + self.timers.len()
    }

    pub(crate) fn get(&self, tag: ContextTag) -> Option<&Context> {
        self.contexts.get(&tag)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Context> + '_ {
        self.contexts.values()
    }

    pub(crate) fn tags(&self) -> Vec<ContextTag> {
        self.contexts.keys().copied().collect()
    }

    pub(crate) fn find(&self, local: Ulid, peer: Ulid, fii: u32) -> Option<ContextTag> {
        self.by_ulids.get(&(local, peer, fii)).copied()
    }

    pub(crate) fn by_nonce(&self, nonce: Nonce) -> Vec<ContextTag> {
        self.by_nonce.get(&nonce).cloned().unwrap_or_default()
    }

    pub(crate) fn by_peer_tag(&self, tag: ContextTag) -> Vec<ContextTag> {
        self.by_peer_tag.get(&tag).cloned().unwrap_or_default()
    }

    /// The earliest deadline of any context.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Contexts whose deadline is at or before `now`.
    pub(crate) fn due(&self, now: Instant) -> Vec<ContextTag> {
        self.timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, tag)| *tag)
            .collect()
    }

    /// Removes a context from the table and every index.
    pub(crate) fn take(&mut self, tag: ContextTag) -> Option<Context> {
        let ctx = self.contexts.remove(&tag)?;
        self.by_ulids
            .remove(&(ctx.local_ulid, ctx.peer_ulid, ctx.fii));
        for n in nonces(&ctx).into_iter().flatten() {
            pull(&mut self.by_nonce, &n, tag);
        }
        if let Some(p) = ctx.peer_tag {
            pull(&mut self.by_peer_tag, &p, tag);
        }
        if let Some(d) = ctx.deadline {
            self.timers.remove(&(d, tag));
        }
        Some(ctx)
    }

    /// Files a context (back) into the table with fresh indexes and deadline.
    pub(crate) fn put(&mut self, mut ctx: Context, idle: Duration) {
        let tag = ctx.local_tag;
        self.by_ulids
            .insert((ctx.local_ulid, ctx.peer_ulid, ctx.fii), tag);
        for n in nonces(&ctx).into_iter().flatten() {
            push(&mut self.by_nonce, n, tag);
        }
        if let Some(p) = ctx.peer_tag {
            push(&mut self.by_peer_tag, p, tag);
        }
        ctx.deadline = ctx.next_deadline(idle);
        if let Some(d) = ctx.deadline {
            self.timers.insert((d, tag));
        }
        self.contexts.insert(tag, ctx);
    }
}
