//! Benchmark traffic over in-memory cables: a [`Generator`] that offers pre-built frames and a
//! [`Sink`] that counts what comes out and recycles the buffers.
//!
//! On a 2-core box the generator and sink share a core with each other (or with the harness)
//! while the worker under test has its own. They must therefore cost far less per packet than
//! the worker: no allocation, no per-packet formatting, at most one copy of a template
//! ([`Refill::Rewrite`]) or none at all ([`Refill::Keep`]).

use std::sync::Arc;

use super::{MemPort, MemQueue};
use crate::backend::{BackendError, BufPool};
use crate::buf::{HeapBuf, PacketBuf};
use crate::io::{PortQueue, BURST};

/// What the generator does to a recycled buffer before offering it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refill {
    /// Copy the next template into it (the worker may have rewritten or grown the frame).
    #[default]
    Rewrite,
    /// Offer it as it came back: every pool buffer was filled with a template once, at
    /// [`Generator::new`]. Only for workers that leave frames untouched (the null forwarder);
    /// empty buffers (freshly reset by someone's `alloc`) are still rewritten.
    Keep,
}

/// Offers frames built from templates, in bursts, to the queues of one cable end, never
/// dropping: a full ring keeps the burst for the next call (back-pressure).
#[derive(Debug)]
pub struct Generator {
    queues: Vec<MemQueue>,
    pool: Arc<BufPool>,
    templates: Vec<Vec<u8>>,
    next_template: usize,
    next_queue: usize,
    refill: Refill,
    pending: Vec<HeapBuf>,
    sent: u64,
}

impl Generator {
    /// A generator transmitting on every queue of `port` (round robin, one burst per call),
    /// cycling through `templates` (whole frames). With [`Refill::Keep`] this fills every free
    /// buffer of the pool with a template now.
    ///
    /// Fails when there is no template or one is larger than the pool's buffers.
    pub fn new(
        port: MemPort,
        templates: Vec<Vec<u8>>,
        refill: Refill,
    ) -> Result<Self, BackendError> {
        let queues = port.into_queues();
        let Some(first) = queues.first() else {
            return Err(BackendError::Config("generator needs a queue"));
        };
        let pool = Arc::clone(first.pool());
        if templates.is_empty() {
            return Err(BackendError::Config(
                "generator needs at least one template",
            ));
        }
        if templates.iter().any(|t| t.len() > pool.max_frame()) {
            return Err(BackendError::Config(
                "template larger than the pool's buffers",
            ));
        }
        let mut generator = Self {
            queues,
            pool,
            templates,
            next_template: 0,
            next_queue: 0,
            refill,
            pending: Vec::with_capacity(BURST),
            sent: 0,
        };
        if refill == Refill::Keep {
            generator.prebuild();
        }
        Ok(generator)
    }

    /// Writes a template into every buffer that is free right now, so [`Refill::Keep`] can
    /// offer them untouched later (start-up only: this allocates a temporary list).
    fn prebuild(&mut self) {
        let mut all = Vec::with_capacity(self.pool.allocated());
        self.pool.take_bulk(&mut all, self.pool.allocated());
        for buf in &mut all {
            write_template(&self.templates, &mut self.next_template, buf);
        }
        self.pool.free_bulk(&mut all);
    }

    /// Offers up to one burst to the next queue; returns how many frames the ring took.
    pub fn push_burst(&mut self) -> usize {
        let start = self.pending.len();
        if start < BURST {
            self.pool.take_bulk(&mut self.pending, BURST - start);
            for buf in self.pending.iter_mut().skip(start) {
                if self.refill == Refill::Rewrite || buf.is_empty() {
                    write_template(&self.templates, &mut self.next_template, buf);
                }
            }
        }
        let n = self.queues.len();
        let Some(q) = self.queues.get_mut(self.next_queue) else {
            return 0;
        };
        self.next_queue = (self.next_queue + 1) % n.max(1);
        let sent = q.send_until_full(&mut self.pending);
        self.sent += sent as u64;
        sent
    }

    /// Frames offered so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Buffers the generator holds: built but not yet taken by a ring.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The generator's queues (stats, link).
    pub fn queues(&self) -> &[MemQueue] {
        &self.queues
    }
}

/// Copies template `*next` into `buf` and moves `*next` on, round robin.
#[inline]
fn write_template(templates: &[Vec<u8>], next: &mut usize, buf: &mut HeapBuf) {
    if let Some(t) = templates.get(*next) {
        // Cannot fail: `Generator::new` checked every template against the pool's buffers.
        let _ = buf.reset_from(t);
    }
    *next = (*next + 1) % templates.len().max(1);
}

/// Receives on every queue of one cable end, counts, optionally inspects, and returns the
/// buffers to their pool.
#[derive(Debug)]
pub struct Sink {
    queues: Vec<MemQueue>,
    burst: Vec<HeapBuf>,
    packets: u64,
    bytes: u64,
}

impl Sink {
    /// A sink draining every queue of `port`.
    pub fn new(port: MemPort) -> Self {
        Self {
            queues: port.into_queues(),
            burst: Vec::with_capacity(BURST),
            packets: 0,
            bytes: 0,
        }
    }

    /// Drains up to one burst from each queue; returns how many frames it took.
    pub fn drain(&mut self) -> usize {
        self.drain_with(|_| {})
    }

    /// Like [`Sink::drain`], showing each frame to `inspect` before recycling it.
    pub fn drain_with<F: FnMut(&[u8])>(&mut self, mut inspect: F) -> usize {
        let mut total = 0;
        for q in &mut self.queues {
            let n = q.rx_burst(&mut self.burst, BURST);
            for buf in &self.burst {
                let frame = buf.as_ref();
                self.bytes += frame.len() as u64;
                inspect(frame);
            }
            q.pool().free_bulk(&mut self.burst);
            total += n;
        }
        self.packets += total as u64;
        total
    }

    /// Frames received so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The sink's queues (stats, link).
    pub fn queues(&self) -> &[MemQueue] {
        &self.queues
    }
}
