//! The [`BindingStore`] on etcd, seen from the DHCPv6 server's thread (the slow path): blocking
//! calls bounded by the configured timeout, and a non-blocking [`EtcdStore::poll_changes`].

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::Instant;

use dhcp::{Binding, BindingStore, ClientKey, DhcpError, PutOutcome, StoredState};
use tokio::sync::mpsc::UnboundedSender;

use crate::worker::{self, Command, Expect, Op, TxnOutcome, Update};
use crate::EtcdConfig;

/// A change another proxy made, to apply to the local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The client's binding is now this one.
    Bound(Binding),
    /// The client's binding was deleted.
    Removed(ClientKey),
}

/// What the store did; they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EtcdCounters {
    /// Writes acknowledged by etcd.
    pub writes: u64,
    /// Writes that failed or were not acknowledged within the timeout (no Reply was sent).
    pub write_failures: u64,
    /// Of those, the ones that timed out.
    pub timeouts: u64,
    /// Conditional writes refused because another proxy changed the key first.
    pub conflicts: u64,
    /// Full resynchronisations (the first one included).
    pub resyncs: u64,
    /// Sessions lost (etcd down, unreachable, or the watch compacted away).
    pub disconnects: u64,
    /// Changes by other proxies handed to the server.
    pub remote_changes: u64,
    /// Values under the prefix that are not bindings this version understands (skipped).
    pub undecodable: u64,
}

/// The revision of a key this proxy last saw, and whether the key existed then.
#[derive(Debug, Clone, Copy)]
struct Seen {
    revision: i64,
    present: bool,
}

/// The etcd-backed binding store. Opening it waits for the first synchronisation, so a server
/// built on it knows every binding of the site before it answers anything.
#[derive(Debug)]
pub struct EtcdStore {
    cfg: EtcdConfig,
    commands: UnboundedSender<Command>,
    updates: mpsc::Receiver<Update>,
    seen: HashMap<ClientKey, Seen>,
    /// The bindings of the first synchronisation ([`BindingStore::load`]).
    initial: Vec<Binding>,
    server_duid: Option<Vec<u8>>,
    pending: Vec<Change>,
    connected: bool,
    last_error: Option<String>,
    counters: EtcdCounters,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("expect", &self.expect)
            .finish()
    }
}

impl EtcdStore {
    /// Starts the etcd thread and waits (up to `cfg.startup_timeout`) for the first
    /// synchronisation. Fails with the last connection error if etcd cannot be read.
    pub fn open(cfg: EtcdConfig) -> Result<Self, DhcpError> {
        cfg.validate()
            .map_err(|e| DhcpError::Config(format!("dhcp.store: {e}")))?;
        let (utx, urx) = mpsc::channel();
        let commands = worker::spawn(cfg.clone(), utx).map_err(|e| DhcpError::Io {
            what: "starting the etcd thread".into(),
            source: e,
        })?;
        let mut s = Self {
            cfg,
            commands,
            updates: urx,
            seen: HashMap::new(),
            initial: Vec::new(),
            server_duid: None,
            pending: Vec::new(),
            connected: false,
            last_error: None,
            counters: EtcdCounters::default(),
        };
        let deadline = Instant::now() + s.cfg.startup_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match s.updates.recv_timeout(left) {
                Ok(Update::Snapshot { revision, kvs }) => {
                    s.apply_snapshot(revision, kvs);
                    break;
                }
                Ok(Update::Lost(why)) => s.last_error = Some(why),
                Ok(_) => {}
                Err(_) => {
                    return Err(DhcpError::StoreFailed(format!(
                        "no synchronisation with etcd ({}) within {} ms: {}",
                        s.cfg.endpoints.join(","),
                        s.cfg.startup_timeout.as_millis(),
                        s.last_error.as_deref().unwrap_or("no answer")
                    )))
                }
            }
        }
        s.counters.remote_changes = 0;
        s.initial = std::mem::take(&mut s.pending)
            .into_iter()
            .filter_map(|c| match c {
                Change::Bound(b) => Some(b),
                Change::Removed(_) => None,
            })
            .collect();
        Ok(s)
    }

    /// The settings.
    pub fn config(&self) -> &EtcdConfig {
        &self.cfg
    }

    /// Whether the current session is up (false between a loss and the next snapshot).
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Why the last session ended, if one did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The counters so far.
    pub fn counters(&self) -> &EtcdCounters {
        &self.counters
    }

    /// Drains what the etcd thread reported (never blocks) and returns the changes other
    /// proxies made since the last call, in order; this proxy's own writes are not repeated.
    /// Allocates only when there is something to return.
    pub fn poll_changes(&mut self) -> Vec<Change> {
        while let Ok(u) = self.updates.try_recv() {
            match u {
                Update::Snapshot { revision, kvs } => self.apply_snapshot(revision, kvs),
                Update::Put {
                    key,
                    value,
                    mod_revision,
                } => self.apply_put(&key, &value, mod_revision),
                Update::Delete { key, revision } => {
                    if let Some(client) = self.cfg.parse_binding_key(&key) {
                        self.apply_delete(client, revision);
                    }
                }
                Update::Lost(why) => {
                    self.connected = false;
                    self.counters.disconnects += 1;
                    self.last_error = Some(why);
                }
            }
        }
        std::mem::take(&mut self.pending)
    }

    /// A key's value at `mod_revision`, unless this proxy already saw that or a later one.
    fn apply_put(&mut self, key: &[u8], value: &[u8], mod_revision: i64) {
        if key == self.cfg.server_duid_key().as_slice() {
            if self.server_duid.is_none() && !value.is_empty() {
                self.server_duid = Some(value.to_vec());
            }
            return;
        }
        let Some(client) = self.cfg.parse_binding_key(key) else {
            self.counters.undecodable += 1;
            return;
        };
        if self
            .seen
            .get(&client)
            .is_some_and(|s| s.revision >= mod_revision)
        {
            return;
        }
        self.seen.insert(
            client.clone(),
            Seen {
                revision: mod_revision,
                present: true,
            },
        );
        match Binding::decode(value) {
            Some(b) if b.client == client => {
                self.counters.remote_changes += 1;
                self.pending.push(Change::Bound(b));
            }
            _ => self.counters.undecodable += 1,
        }
    }

    fn apply_delete(&mut self, client: ClientKey, revision: i64) {
        match self.seen.get(&client) {
            Some(s) if s.revision >= revision => return,
            Some(s) if !s.present => {}
            _ => {
                self.counters.remote_changes += 1;
                self.pending.push(Change::Removed(client.clone()));
            }
        }
        self.seen.insert(
            client,
            Seen {
                revision,
                present: false,
            },
        );
    }

    /// Everything at `revision`: newer values are applied, and bindings this proxy holds that
    /// the snapshot lacks were deleted while it was away.
    fn apply_snapshot(&mut self, revision: i64, kvs: Vec<(Vec<u8>, Vec<u8>, i64)>) {
        self.connected = true;
        self.counters.resyncs += 1;
        let mut present = HashSet::new();
        for (key, value, mod_revision) in kvs {
            if let Some(c) = self.cfg.parse_binding_key(&key) {
                present.insert(c);
            }
            self.apply_put(&key, &value, mod_revision);
        }
        let gone: Vec<ClientKey> = self
            .seen
            .iter()
            .filter(|(k, s)| s.present && !present.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.apply_delete(k, revision);
        }
    }

    /// The condition a write of `client` carries: the revision this proxy last saw.
    fn expect(&self, client: &ClientKey) -> Expect {
        match self.seen.get(client) {
            Some(s) if s.present => Expect::ModRevision(s.revision),
            _ => Expect::Absent,
        }
    }

    /// Sends one conditional write and waits for its outcome, at most the configured timeout.
    fn call(&mut self, key: Vec<u8>, op: Op, expect: Expect) -> Result<TxnOutcome, DhcpError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let timeout = self.cfg.timeout;
        let cmd = Command {
            key,
            op,
            expect,
            deadline: Instant::now() + timeout,
            reply: tx,
        };
        let result = match self.commands.send(cmd) {
            Err(_) => Err("the etcd thread stopped".to_string()),
            Ok(()) => match rx.recv_timeout(timeout) {
                Ok(r) => r,
                Err(_) => {
                    self.counters.timeouts += 1;
                    Err(format!(
                        "etcd did not acknowledge within {} ms",
                        timeout.as_millis()
                    ))
                }
            },
        };
        result.map_err(|why| {
            self.counters.write_failures += 1;
            DhcpError::StoreFailed(why)
        })
    }

    fn store_value(&mut self, client: &ClientKey, value: &[u8]) -> Option<Binding> {
        match Binding::decode(value) {
            Some(b) if &b.client == client => Some(b),
            _ => {
                self.counters.undecodable += 1;
                None
            }
        }
    }
}

impl BindingStore for EtcdStore {
    fn load(&mut self) -> Result<StoredState, DhcpError> {
        Ok(StoredState {
            server_duid: self.server_duid.clone(),
            bindings: self.initial.clone(),
        })
    }

    fn set_server_duid(&mut self, duid: &[u8]) -> Result<(), DhcpError> {
        let stored = self.claim_server_duid(duid)?;
        if stored == duid {
            Ok(())
        } else {
            Err(DhcpError::StoreFailed(format!(
                "the site already has server DUID {}",
                hex::encode(stored)
            )))
        }
    }

    fn claim_server_duid(&mut self, duid: &[u8]) -> Result<Vec<u8>, DhcpError> {
        let key = self.cfg.server_duid_key();
        match self.call(key, Op::Put(duid.to_vec()), Expect::Absent)? {
            TxnOutcome::Done(_) => {
                self.counters.writes += 1;
                self.server_duid = Some(duid.to_vec());
                Ok(duid.to_vec())
            }
            TxnOutcome::Failed {
                current: Some((v, _)),
                ..
            } if !v.is_empty() => {
                self.server_duid = Some(v.clone());
                Ok(v)
            }
            TxnOutcome::Failed { .. } => Err(DhcpError::StoreFailed(
                "the server DUID key exists but is empty".into(),
            )),
        }
    }

    fn put(&mut self, binding: &Binding) -> Result<(), DhcpError> {
        match self.put_checked(binding)? {
            PutOutcome::Stored => Ok(()),
            PutOutcome::Superseded(b) => {
                self.pending.push(Change::Bound(*b));
                Err(DhcpError::StoreFailed("changed by another proxy".into()))
            }
        }
    }

    fn put_checked(&mut self, binding: &Binding) -> Result<PutOutcome, DhcpError> {
        let client = &binding.client;
        let key = self.cfg.binding_key(client);
        let mut value = Vec::new();
        binding.encode(&mut value)?;
        // Twice at most: a key deleted (or holding garbage) under us is written again at once.
        for _ in 0..2 {
            let expect = self.expect(client);
            match self.call(key.clone(), Op::Put(value.clone()), expect)? {
                TxnOutcome::Done(revision) => {
                    self.counters.writes += 1;
                    self.seen.insert(
                        client.clone(),
                        Seen {
                            revision,
                            present: true,
                        },
                    );
                    return Ok(PutOutcome::Stored);
                }
                TxnOutcome::Failed {
                    current: Some((v, mod_revision)),
                    ..
                } => {
                    self.counters.conflicts += 1;
                    self.seen.insert(
                        client.clone(),
                        Seen {
                            revision: mod_revision,
                            present: true,
                        },
                    );
                    if let Some(b) = self.store_value(client, &v) {
                        return Ok(PutOutcome::Superseded(Box::new(b)));
                    }
                }
                TxnOutcome::Failed {
                    current: None,
                    revision,
                } => {
                    self.counters.conflicts += 1;
                    self.seen.insert(
                        client.clone(),
                        Seen {
                            revision,
                            present: false,
                        },
                    );
                }
            }
        }
        self.counters.write_failures += 1;
        Err(DhcpError::StoreFailed(
            "the binding kept changing under this write".into(),
        ))
    }

    fn remove(&mut self, client: &ClientKey) -> Result<(), DhcpError> {
        let key = self.cfg.binding_key(client);
        let expect = match self.expect(client) {
            // Never seen: nothing of ours to delete.
            Expect::Absent => return Ok(()),
            e => e,
        };
        match self.call(key, Op::Delete, expect)? {
            TxnOutcome::Done(revision) => {
                self.counters.writes += 1;
                self.seen.insert(
                    client.clone(),
                    Seen {
                        revision,
                        present: false,
                    },
                );
                Ok(())
            }
            TxnOutcome::Failed {
                current: None,
                revision,
            } => {
                self.seen.insert(
                    client.clone(),
                    Seen {
                        revision,
                        present: false,
                    },
                );
                Ok(())
            }
            TxnOutcome::Failed {
                current: Some((v, mod_revision)),
                ..
            } => {
                // Renewed through another proxy meanwhile: keep it, and let the server learn
                // the new value at its next poll (the watch event carries a revision already
                // seen, so it would not).
                self.counters.conflicts += 1;
                self.seen.insert(
                    client.clone(),
                    Seen {
                        revision: mod_revision,
                        present: true,
                    },
                );
                if let Some(b) = self.store_value(client, &v) {
                    self.pending.push(Change::Bound(b));
                }
                Err(DhcpError::StoreFailed("changed by another proxy".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcp::{BindingState, Prefix64};

    /// A store wired to channels the test drives in place of the etcd thread.
    fn detached() -> (EtcdStore, mpsc::Sender<Update>) {
        let (utx, urx) = mpsc::channel();
        let (ctx, _crx) = tokio::sync::mpsc::unbounded_channel();
        let s = EtcdStore {
            cfg: EtcdConfig::new(vec!["http://127.0.0.1:2379".into()], "/p"),
            commands: ctx,
            updates: urx,
            seen: HashMap::new(),
            initial: Vec::new(),
            server_duid: None,
            pending: Vec::new(),
            connected: false,
            last_error: None,
            counters: EtcdCounters::default(),
        };
        (s, utx)
    }

    fn binding(i: u8, valid_until: u64) -> Binding {
        Binding {
            client: ClientKey {
                duid: vec![0, 4, i],
                iaid: 1,
            },
            modifier: [i; 16],
            prefix: Prefix64([0xfc, 0, 0, 1, 0, 2, 0, 3]),
            collision_count: 0,
            sec: 0,
            address: std::net::Ipv6Addr::new(0xfc00, 1, 2, 3, 0, 0, 0, u16::from(i)),
            locators: vec![],
            state: BindingState::Bound,
            valid_until,
            preferred_until: valid_until,
            declined: vec![],
            fixed: false,
        }
    }

    fn kv(s: &EtcdStore, b: &Binding, rev: i64) -> (Vec<u8>, Vec<u8>, i64) {
        let mut v = Vec::new();
        b.encode(&mut v).unwrap();
        (s.cfg.binding_key(&b.client), v, rev)
    }

    #[test]
    fn a_resync_applies_what_changed_while_away_and_nothing_older() {
        let (mut s, tx) = detached();
        let (b1, b2) = (binding(1, 100), binding(2, 100));
        tx.send(Update::Snapshot {
            revision: 5,
            kvs: vec![kv(&s, &b1, 4), kv(&s, &b2, 5)],
        })
        .unwrap();
        assert_eq!(
            s.poll_changes(),
            vec![Change::Bound(b1.clone()), Change::Bound(b2.clone())]
        );
        assert!(s.connected());
        // An event older than what was seen (a late echo) changes nothing.
        let (key, value, _) = kv(&s, &binding(2, 50), 0);
        tx.send(Update::Put {
            key,
            value,
            mod_revision: 5,
        })
        .unwrap();
        assert_eq!(s.poll_changes(), vec![]);
        // Disconnected; meanwhile another proxy renewed b2 (rev 9) and released b1 (rev 8),
        // and a new client b3 was bound (rev 10): the next snapshot tells all three.
        tx.send(Update::Lost("gone".into())).unwrap();
        assert_eq!(s.poll_changes(), vec![]);
        assert!(!s.connected());
        assert_eq!(s.last_error(), Some("gone"));
        let (b2r, b3) = (binding(2, 200), binding(3, 100));
        tx.send(Update::Snapshot {
            revision: 10,
            kvs: vec![kv(&s, &b2r, 9), kv(&s, &b3, 10)],
        })
        .unwrap();
        let mut got = s.poll_changes();
        got.sort_by_key(|c| format!("{c:?}"));
        let mut want = vec![
            Change::Bound(b2r),
            Change::Bound(b3),
            Change::Removed(b1.client.clone()),
        ];
        want.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(got, want);
        assert!(s.connected());
        assert_eq!(s.counters().resyncs, 2);
        assert_eq!(s.counters().disconnects, 1);
        // A delete event at or below the snapshot's revision is old news.
        tx.send(Update::Delete {
            key: s.cfg.binding_key(&b1.client),
            revision: 8,
        })
        .unwrap();
        assert_eq!(s.poll_changes(), vec![]);
    }

    #[test]
    fn foreign_or_garbled_values_are_counted_not_applied() {
        let (mut s, tx) = detached();
        tx.send(Update::Snapshot {
            revision: 3,
            kvs: vec![
                (b"/p/bindings/0004ff/1".to_vec(), vec![1, 2, 3], 2),
                (b"/p/other".to_vec(), vec![], 3),
                (b"/p/server-duid".to_vec(), vec![0, 4, 9, 9], 1),
            ],
        })
        .unwrap();
        assert_eq!(s.poll_changes(), vec![]);
        assert_eq!(s.counters().undecodable, 2);
        assert_eq!(s.load().unwrap().server_duid, Some(vec![0, 4, 9, 9]));
    }
}
