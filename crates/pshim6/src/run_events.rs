//! The live event lines `pshim6 run` writes on stderr while it runs: one line per change of
//! the context table (established, locator pair changed by REAP, peer tag changed, removed)
//! and per change of a port's link state, plus a dump of the table when it stops.
//!
//! Each line is `pshim6-event ` followed by one JSON object with `t_ms` (wall clock, Unix
//! milliseconds, so another process on the machine can line it up with its own clock) and
//! `event`. The table is read every [`POLL`] by the main thread (never by the workers), so the
//! cost is independent of the packet rate. `pshim6 lab` reads these lines to build its
//! timeline and to compare the tags it captures on the provider links with the contexts.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataplane::io::{PortId, PortQueue};
use dataplane::slowpath::Pipeline;
use serde_json::{json, Value};
use table::Entry;

/// How often the table and link state are read.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// The prefix of every event line.
pub(crate) const PREFIX: &str = "pshim6-event ";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The JSON fields describing one context.
pub(crate) fn entry_fields(e: &Entry) -> Value {
    json!({
        "local_tag": u64::from(e.local_tag),
        "peer_tag": u64::from(e.peer_tag),
        "local_ulid": e.local_ulid.0.to_string(),
        "peer_ulid": e.peer_ulid.0.to_string(),
        "local_locator": e.pair.local.0.to_string(),
        "peer_locator": e.pair.peer.0.to_string(),
        "provider": e.tx_provider,
    })
}

fn emit(event: &str, mut fields: Value) {
    if let Some(m) = fields.as_object_mut() {
        m.insert("t_ms".into(), json!(now_ms()));
        m.insert("event".into(), json!(event));
    }
    // A closed stderr must not stop the appliance.
    let _ = writeln!(std::io::stderr().lock(), "{PREFIX}{fields}");
}

/// What changed between two reads of the table, as (event, fields) pairs.
pub(crate) fn diff(
    before: &HashMap<u64, Entry>,
    after: &HashMap<u64, Entry>,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (tag, e) in after {
        match before.get(tag) {
            None => out.push(("context-established".to_string(), entry_fields(e))),
            Some(old) if old.pair != e.pair => {
                let mut f = entry_fields(e);
                if let Some(m) = f.as_object_mut() {
                    m.insert(
                        "old_local_locator".into(),
                        json!(old.pair.local.0.to_string()),
                    );
                    m.insert(
                        "old_peer_locator".into(),
                        json!(old.pair.peer.0.to_string()),
                    );
                    m.insert("old_provider".into(), json!(old.tx_provider));
                }
                out.push(("context-pair-changed".to_string(), f));
            }
            Some(old) if old.peer_tag != e.peer_tag => {
                out.push(("context-peer-tag-changed".to_string(), entry_fields(e)));
            }
            Some(_) => {}
        }
    }
    for (tag, e) in before {
        if !after.contains_key(tag) {
            out.push(("context-removed".to_string(), entry_fields(e)));
        }
    }
    out
}

fn snapshot<Q: PortQueue + 'static>(p: &Pipeline<Q>) -> HashMap<u64, Entry> {
    p.contexts()
        .into_iter()
        .map(|e| (u64::from(e.local_tag), e))
        .collect()
}

/// Writes an event line for every context-table or link-state change it sees between two
/// [`tick`](Self::tick)s, and a `context-dump` line per context at [`finish`](Self::finish).
/// Driven by the operator loop of `pshim6 run` every [`POLL`] or so (never by a worker).
pub(crate) struct Watcher {
    ports: Vec<(PortId, String)>,
    known: HashMap<u64, Entry>,
    links: Vec<Option<bool>>,
}

impl Watcher {
    /// A watcher of `ports` (port id, interface name) that has seen nothing yet.
    pub(crate) fn new(ports: &[(PortId, String)]) -> Self {
        Self {
            ports: ports.to_vec(),
            known: HashMap::new(),
            links: vec![None; ports.len()],
        }
    }

    /// Compares the table and the links with what the last tick saw; prints the differences.
    pub(crate) fn tick<Q: PortQueue + 'static>(&mut self, p: &Pipeline<Q>) {
        let now = snapshot(p);
        for (event, fields) in diff(&self.known, &now) {
            emit(&event, fields);
        }
        self.known = now;
        for ((port, name), last) in self.ports.iter().zip(self.links.iter_mut()) {
            let up = p.link_state().get(*port);
            if up.is_some() && up != *last {
                let event = if up == Some(true) {
                    "link-up"
                } else {
                    "link-down"
                };
                emit(event, json!({ "port": port.0, "interface": name }));
                *last = up;
            }
        }
    }

    /// One last tick, then a `context-dump` line per context still in the table.
    pub(crate) fn finish<Q: PortQueue + 'static>(mut self, p: &Pipeline<Q>) {
        self.tick(p);
        for e in snapshot(p).values() {
            emit("context-dump", entry_fields(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use table::SlotId;
    use wire::{ContextTag, Locator, LocatorPair, Ulid};

    fn entry(tag: u64, local: &str, provider: u16) -> Entry {
        Entry {
            local_tag: ContextTag::new(tag).unwrap(),
            peer_tag: ContextTag::new(tag + 1).unwrap(),
            local_ulid: Ulid("fc00::1".parse().unwrap()),
            peer_ulid: Ulid("fc00::2".parse().unwrap()),
            pair: LocatorPair {
                local: Locator(local.parse().unwrap()),
                peer: Locator("2001:db8:2::2".parse().unwrap()),
            },
            tx_provider: provider,
            flags: 0,
            slot: SlotId(0),
        }
    }

    #[test]
    fn diff_names_each_change() {
        let a = entry(5, "2001:db8:a::1", 1);
        let before: HashMap<u64, Entry> = [(5, a)].into();
        let mut moved = a;
        moved.pair.local = Locator("2001:db8:b::1".parse().unwrap());
        moved.tx_provider = 2;
        let after: HashMap<u64, Entry> = [(5, moved), (9, entry(9, "2001:db8:a::1", 1))].into();
        let mut ev = diff(&before, &after);
        ev.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].0, "context-established");
        assert_eq!(ev[0].1["local_tag"], 9);
        assert_eq!(ev[1].0, "context-pair-changed");
        assert_eq!(ev[1].1["old_local_locator"], "2001:db8:a::1");
        assert_eq!(ev[1].1["local_locator"], "2001:db8:b::1");
        assert_eq!(ev[1].1["provider"], 2);
        let gone = diff(&after, &HashMap::new());
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|(e, _)| e == "context-removed"));
        assert!(diff(&after, &after).is_empty());
    }
}
