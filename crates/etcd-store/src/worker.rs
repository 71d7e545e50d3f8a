//! The etcd side: one thread, a tokio current-thread runtime, one client session at a time.
//!
//! A session connects, reads every key of the site at one revision (the snapshot), then
//! watches from the next revision and runs the caller's transactions as they come. Any error
//! ends the session: the caller hears [`Update::Lost`], commands fail at once until the next
//! session's snapshot, and the snapshot lets the caller catch up on what it missed (including
//! deletions, which a snapshot shows by absence).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::EtcdConfig;

/// First wait before reconnecting; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// HTTP/2 keep-alive: a dead member is noticed within about twice this.
const KEEP_ALIVE: Duration = Duration::from_millis(500);

/// The condition of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The key does not exist (`create_revision == 0`).
    Absent,
    /// The key was last modified at this revision.
    ModRevision(i64),
}

/// What a command does when its condition holds.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put(Vec<u8>),
    Delete,
}

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxnOutcome {
    /// Committed at this revision.
    Done(i64),
    /// The condition failed: the key's value and `mod_revision` now (`None`: absent), read in
    /// the same transaction at `revision`.
    Failed {
        current: Option<(Vec<u8>, i64)>,
        revision: i64,
    },
}

/// One conditional write, answered on `reply` (a failure as text).
pub(crate) struct Command {
    pub(crate) key: Vec<u8>,
    pub(crate) op: Op,
    pub(crate) expect: Expect,
    /// Past it the caller gave up: the write is not sent.
    pub(crate) deadline: Instant,
    pub(crate) reply: mpsc::SyncSender<Result<TxnOutcome, String>>,
}

/// What the etcd thread tells the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Update {
    /// Every key under the prefix at `revision`: `(key, value, mod_revision)`.
    Snapshot {
        revision: i64,
        kvs: Vec<(Vec<u8>, Vec<u8>, i64)>,
    },
    /// A key written (by anyone, this proxy included) at `mod_revision`.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        mod_revision: i64,
    },
    /// A key deleted at `revision`.
    Delete { key: Vec<u8>, revision: i64 },
    /// The session ended; a snapshot follows once etcd is reachable again.
    Lost(String),
}

/// Starts the etcd thread; it stops when the command sender is dropped.
pub(crate) fn spawn(
    cfg: EtcdConfig,
    updates: mpsc::Sender<Update>,
) -> std::io::Result<UnboundedSender<Command>> {
    let (tx, rx) = unbounded_channel();
    std::thread::Builder::new()
        .name("etcd-store".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(cfg, rx, updates)),
                Err(e) => {
                    let _ = updates.send(Update::Lost(format!("tokio runtime: {e}")));
                }
            }
        })?;
    Ok(tx)
}

/// Sessions until the store goes away, with a growing pause between failed ones.
async fn run(cfg: EtcdConfig, mut rx: UnboundedReceiver<Command>, updates: mpsc::Sender<Update>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let why = match session(&cfg, &mut rx, &updates, &mut backoff).await {
            Ok(()) => return,
            Err(why) => why,
        };
        if updates.send(Update::Lost(why.clone())).is_err() {
            return;
        }
        // Meanwhile writes fail at once: the DHCPv6 server stays silent and the client
        // retransmits, rather than each write waiting for its whole timeout.
        let wake = tokio::time::sleep(backoff);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => break,
                cmd = rx.recv() => match cmd {
                    Some(c) => {
                        let _ = c.reply.send(Err(format!("etcd unreachable: {why}")));
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One session. `Ok` when the store was dropped, `Err(why)` when the session failed.
async fn session(
    cfg: &EtcdConfig,
    rx: &mut UnboundedReceiver<Command>,
    updates: &mpsc::Sender<Update>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(cfg.timeout)
        .with_timeout(cfg.timeout)
        .with_keep_alive(KEEP_ALIVE, cfg.timeout);
    let mut client = Client::connect(&cfg.endpoints, Some(opts))
        .await
        .map_err(|e| format!("connecting to {}: {e}", cfg.endpoints.join(",")))?;
    let root = cfg.root();
    let snap = client
        .get(root.clone(), Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| format!("reading {root}: {e}"))?;
    let revision = snap.header().map_or(0, |h| h.revision());
    let kvs = snap
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()))
        .collect();
    let mut stream = client
        .watch(
            root.clone(),
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await
        .map_err(|e| format!("watching {root}: {e}"))?;
    if updates.send(Update::Snapshot { revision, kvs }).is_err() {
        return Ok(());
    }
    *backoff = MIN_BACKOFF;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(c) => execute(&mut client, c).await,
                None => return Ok(()),
            },
            msg = stream.message() => {
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => return Err("watch stream ended".into()),
                    Err(e) => return Err(format!("watch: {e}")),
                };
                if resp.canceled() {
                    return Err(format!(
                        "watch canceled (compacted to {}): {}",
                        resp.compact_revision(),
                        resp.cancel_reason()
                    ));
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let u = match ev.event_type() {
                        EventType::Put => Update::Put {
                            key: kv.key().to_vec(),
                            value: kv.value().to_vec(),
                            mod_revision: kv.mod_revision(),
                        },
                        EventType::Delete => Update::Delete {
                            key: kv.key().to_vec(),
                            revision: kv.mod_revision(),
                        },
                    };
                    if updates.send(u).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Runs one conditional write as a transaction: `if (condition) op else get(key)`.
async fn execute(client: &mut Client, c: Command) {
    let left = c.deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        let _ = c.reply.send(Err("expired before it was sent".into()));
        return;
    }
    let cmp = match c.expect {
        Expect::Absent => Compare::create_revision(c.key.clone(), CompareOp::Equal, 0),
        Expect::ModRevision(r) => Compare::mod_revision(c.key.clone(), CompareOp::Equal, r),
    };
    let op = match c.op {
        Op::Put(v) => TxnOp::put(c.key.clone(), v, None),
        Op::Delete => TxnOp::delete(c.key.clone(), None),
    };
    let txn = Txn::new()
        .when([cmp])
        .and_then([op])
        .or_else([TxnOp::get(c.key, None)]);
    let result = match tokio::time::timeout(left, client.txn(txn)).await {
        Err(_) => Err(format!("no acknowledgement within {} ms", left.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(resp)) => {
            let revision = resp.header().map_or(0, |h| h.revision());
            if resp.succeeded() {
                Ok(TxnOutcome::Done(revision))
            } else {
                let current = resp.op_responses().into_iter().find_map(|r| match r {
                    TxnOpResponse::Get(g) => g
                        .kvs()
                        .first()
                        .map(|kv| (kv.value().to_vec(), kv.mod_revision())),
                    _ => None,
                });
                Ok(TxnOutcome::Failed { current, revision })
            }
        }
    };
    // The caller may have given up (timeout): then nobody listens, which is fine.
    let _ = c.reply.send(result);
}
