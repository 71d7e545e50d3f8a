//! Questions in flight to the upstream servers: random IDs, per-attempt deadlines, rotation
//! over the servers on timeout or error, TCP after a truncated UDP answer
//! ([RFC 7766 §5](https://www.rfc-editor.org/rfc/rfc7766#section-5)), and the checks that an
//! answer really belongs to a question (ID, server asked, same question).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::op::{Message, Query, ResponseCode};
use rand::rngs::StdRng;
use rand::Rng;

use crate::config::AlgConfig;
use crate::msg::{answers_question, upstream_query};
use crate::transmit::{AlgStats, Destination, Transmit, Transport};

/// Identifies a unit of work of the ALG (a client query or a reverse resolution).
pub(crate) type JobId = u64;

/// Header flags of an upstream question, taken from the client's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryFlags {
    pub(crate) rd: bool,
    pub(crate) cd: bool,
    pub(crate) dnssec_ok: bool,
}

#[derive(Debug)]
struct Pending {
    job: JobId,
    question: Query,
    /// The encoded query (the same ID and bytes on every attempt).
    wire: Vec<u8>,
    /// Every server this query went to: a late answer from any of them is welcome.
    sent_to: Vec<SocketAddr>,
    /// Index (in the configuration) of the server of the latest attempt.
    server: usize,
    attempts: usize,
    transport: Transport,
    deadline: Instant,
}

/// What became of an upstream question.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// An answer (NOERROR or NXDOMAIN).
    Answer(Box<Message>),
    /// Every attempt failed.
    Failed,
}

/// The table of questions in flight, by upstream message ID.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    pending: HashMap<u16, Pending>,
}

impl Upstream {
    /// Sends `question` to the first server. `None` when it cannot be sent at all.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        &mut self,
        now: Instant,
        cfg: &AlgConfig,
        rng: &mut StdRng,
        job: JobId,
        question: Query,
        flags: QueryFlags,
        out: &mut VecDeque<Transmit>,
        stats: &mut AlgStats,
    ) -> Option<u16> {
        // The validated `max_pending` keeps this far below 65536; give up rather than loop.
        let id = (0..64)
            .map(|_| rng.gen::<u16>())
            .find(|id| !self.pending.contains_key(id))?;
        let Ok(wire) = upstream_query(
            id,
            &question,
            flags.rd,
            flags.cd,
            flags.dnssec_ok,
            cfg.edns_payload,
        ) else {
            stats.encode_errors += 1;
            return None;
        };
        let server = *cfg.upstream.first()?;
        self.pending.insert(
            id,
            Pending {
                job,
                question,
                wire,
                sent_to: Vec::new(),
                server: 0,
                attempts: 0,
                transport: Transport::Udp,
                deadline: now,
            },
        );
        self.send(id, now, cfg, server, Transport::Udp, out, stats);
        Some(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        id: u16,
        now: Instant,
        cfg: &AlgConfig,
        server: SocketAddr,
        transport: Transport,
        out: &mut VecDeque<Transmit>,
        stats: &mut AlgStats,
    ) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.attempts = p.attempts.saturating_add(1);
        p.transport = transport;
        p.deadline = now.checked_add(cfg.upstream_timeout).unwrap_or(now);
        if !p.sent_to.contains(&server) {
            p.sent_to.push(server);
        }
        stats.upstream_sent += 1;
        out.push_back(Transmit {
            destination: Destination::Upstream(server),
            transport,
            payload: p.wire.clone(),
        });
    }

    /// After a failed attempt: the next server, or `Failed` when the attempts are used up.
    fn retry_or_fail(
        &mut self,
        id: u16,
        now: Instant,
        cfg: &AlgConfig,
        out: &mut VecDeque<Transmit>,
        stats: &mut AlgStats,
    ) -> Option<(JobId, u16, Outcome)> {
        let p = self.pending.get_mut(&id)?;
        if p.attempts >= cfg.upstream_attempts || cfg.upstream.is_empty() {
            let p = self.pending.remove(&id)?;
            return Some((p.job, id, Outcome::Failed));
        }
        p.server = p.server.wrapping_add(1) % cfg.upstream.len();
        let server = *cfg.upstream.get(p.server)?;
        stats.upstream_retries += 1;
        self.send(id, now, cfg, server, Transport::Udp, out, stats);
        None
    }

    /// A packet from `server`: its question's outcome, if that is now settled.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        cfg: &AlgConfig,
        server: SocketAddr,
        bytes: &[u8],
        out: &mut VecDeque<Transmit>,
        stats: &mut AlgStats,
    ) -> Option<(JobId, u16, Outcome)> {
        let id = match bytes.get(..2) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => {
                stats.upstream_unmatched += 1;
                return None;
            }
        };
        let Some(p) = self.pending.get(&id) else {
            stats.upstream_unmatched += 1;
            return None;
        };
        if !p.sent_to.contains(&server) {
            stats.upstream_unmatched += 1;
            return None;
        }
        let msg = match Message::from_vec(bytes) {
            Ok(m) => m,
            Err(_) => {
                // The server we asked sent garbage: no point waiting for it.
                stats.upstream_malformed += 1;
                return self.retry_or_fail(id, now, cfg, out, stats);
            }
        };
        if !answers_question(&msg, &p.question) {
            // Possibly forged: keep waiting for the real answer.
            stats.upstream_unmatched += 1;
            return None;
        }
        if msg.metadata.truncation && p.transport == Transport::Udp {
            stats.upstream_tcp_fallbacks += 1;
            self.send(id, now, cfg, server, Transport::Tcp, out, stats);
            return None;
        }
        match msg.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {
                let p = self.pending.remove(&id)?;
                Some((p.job, id, Outcome::Answer(Box::new(msg))))
            }
            _ => {
                stats.upstream_errors += 1;
                self.retry_or_fail(id, now, cfg, out, stats)
            }
        }
    }

    /// Attempts whose deadline passed: retried, or settled as failed.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        cfg: &AlgConfig,
        out: &mut VecDeque<Transmit>,
        stats: &mut AlgStats,
    ) -> Vec<(JobId, u16, Outcome)> {
        let mut expired: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        // Deterministic order whatever the hash map does.
        expired.sort_unstable();
        let mut done = Vec::new();
        for id in expired {
            stats.upstream_timeouts += 1;
            if let Some(settled) = self.retry_or_fail(id, now, cfg, out, stats) {
                done.push(settled);
            }
        }
        done
    }

    /// Forgets a question whose answer is no longer needed.
    pub(crate) fn cancel(&mut self, id: u16) {
        self.pending.remove(&id);
    }

    /// The earliest attempt deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}
