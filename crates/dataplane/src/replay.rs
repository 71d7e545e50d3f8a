//! Offline replay of a capture through a whole pipeline (`pshim6 replay`): one worker with
//! its real [`FastPath`] and the real [`SlowPath`], driven from one thread in **simulated
//! time**, so the same capture and configuration (with a fixed seed) always give the same
//! output bytes. Golden tests run without root; operators debug a trace offline.
//!
//! Time: the clock starts at the pipeline's epoch and moves only when the driver says so:
//! [`Replay::advance`] runs the slow path's timers (engine timeouts exactly when due,
//! housekeeping at its period) up to the given time, then [`Replay::feed`] hands a frame to
//! the worker at that time. After each step the pipeline is run until it is quiet (the
//! worker's punts handled by the slow path, the slow path's frames injected by the worker)
//! and every frame transmitted on any port is handed to the caller with the current time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use table::{TableConfig, TableWriter};

use crate::backend::pcap_replay::ReplayQueue;
use crate::backend::BufPool;
use crate::fastpath::{FastPath, ProviderStatus, SetupError};
use crate::io::PortId;
use crate::neighbor::neighbor_table;
use crate::punt::SlowPathLink;
use crate::slowpath::te::TeHandle;
use crate::slowpath::{
    LinkState, PipelineConfig, PipelineReport, SiteSetup, SlowPath, SlowPathError, SlowPathIo,
};
use crate::worker::{Worker, WorkerConfig};

/// Rounds of worker poll / slow-path poll per step at most: each round moves frames one hop
/// (worker → punt → slow path → inject → worker); a step needs two or three.
const SETTLE_ROUNDS: usize = 64;

/// A pipeline replayed in simulated time (see the module docs).
pub struct Replay {
    worker: Worker<ReplayQueue, FastPath>,
    slow: SlowPath,
    link: Arc<SlowPathLink>,
    epoch: Instant,
    now: Duration,
    housekeeping: Duration,
    ports: Vec<PortId>,
    started: bool,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("now", &self.now)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// Builds the pipeline of `cfg` for `site` with one worker owning a [`ReplayQueue`] per
    /// configured port (inside and every provider), buffers from `pool`.
    pub fn new(
        cfg: PipelineConfig,
        site: SiteSetup,
        pool: &Arc<BufPool>,
    ) -> Result<Self, SlowPathError> {
        let dp = cfg.dataplane;
        dp.validate()?;
        // Shard 0: the worker; shard 1: the slow path's own fast path.
        let table =
            TableWriter::new(&TableConfig::new(cfg.table_capacity, 2)).map_err(SetupError::from)?;
        let table_reader = table.reader();
        let (neighbors, reader) = neighbor_table(cfg.neighbor_capacity);
        let link = Arc::new(SlowPathLink::new(dp.punt_queue, dp.inject_queue));
        let status = ProviderStatus::new(&dp);
        let ports: Vec<PortId> = std::iter::once(dp.inside.port)
            .chain(dp.providers.iter().map(|p| p.port))
            .collect();
        let max_port = ports.iter().map(|p| p.0).max().unwrap_or(0);
        let epoch = Instant::now();
        let io = SlowPathIo {
            table,
            neighbors,
            link: Arc::clone(&link),
            status: status.clone(),
            links: LinkState::new(usize::from(max_port) + 1),
            shard: 1,
            epoch,
        };
        let housekeeping = cfg.slow_path.housekeeping;
        let slow = SlowPath::new(cfg.slow_path, dp.clone(), site, io, epoch)?;
        let fp = FastPath::new(&dp, table_reader, 0, reader, status)?;
        let queues = ports.iter().map(|&p| (p, ReplayQueue::new(pool))).collect();
        let wcfg = WorkerConfig {
            index: 0,
            core: None,
            burst: dp.burst,
            epoch,
        };
        let mut worker = Worker::new(wcfg, queues, fp, Arc::clone(&link));
        worker.set_clock(Duration::ZERO);
        Ok(Self {
            worker,
            slow,
            link,
            epoch,
            now: Duration::ZERO,
            housekeeping,
            ports,
            started: false,
        })
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The ports, inside first.
    pub fn ports(&self) -> &[PortId] {
        &self.ports
    }

    /// Runs the slow path's timers up to `to` (no-op if `to` is not later than now): engine
    /// timeouts when due, housekeeping at its period. Frames sent on the way go to `out` with
    /// the time they were sent.
    pub fn advance(&mut self, to: Duration, out: &mut impl FnMut(Duration, PortId, &[u8])) {
        self.start(out);
        let step = self.housekeeping.max(Duration::from_millis(1));
        while self.now < to {
            let mut next = (self.now + step).min(to);
            if let Some(t) = self.slow.engine().poll_timeout() {
                let due = t.saturating_duration_since(self.epoch);
                if due > self.now && due < next {
                    next = due;
                }
            }
            self.now = next;
            self.settle(out);
        }
    }

    /// Hands `frame` to the worker as received on `port` at the current time and runs the
    /// pipeline until it is quiet. `false` if the frame could not be queued (unknown port,
    /// longer than the buffers, no free buffer); the worker never saw it.
    pub fn feed(
        &mut self,
        port: PortId,
        frame: &[u8],
        out: &mut impl FnMut(Duration, PortId, &[u8]),
    ) -> bool {
        self.start(out);
        let Some(q) = self.worker.queue_mut(port) else {
            return false;
        };
        if !q.push_rx(frame) {
            return false;
        }
        self.settle(out);
        true
    }

    /// Hands every frame of `frames` to the worker as received at the current time, then runs
    /// the pipeline until it is quiet once for the whole batch (a burst on the wire rather
    /// than one frame at a time); returns how many frames could not be queued.
    pub fn feed_batch<'a>(
        &mut self,
        frames: impl IntoIterator<Item = (PortId, &'a [u8])>,
        out: &mut impl FnMut(Duration, PortId, &[u8]),
    ) -> usize {
        self.start(out);
        let mut refused = 0;
        for (port, frame) in frames {
            if !self
                .worker
                .queue_mut(port)
                .is_some_and(|q| q.push_rx(frame))
            {
                refused += 1;
            }
        }
        self.settle(out);
        refused
    }

    /// The traffic-engineering handle of the replayed slow path (policy, drain, view); its
    /// commands apply at the next housekeeping, i.e. at the next [`advance`](Self::advance).
    pub fn te_handle(&self) -> TeHandle {
        self.slow.te_handle()
    }

    /// Counters of the worker, the slow path and the engine so far.
    pub fn report(&self) -> PipelineReport {
        PipelineReport::of(vec![self.worker.stats()], Some(&self.slow))
    }

    /// The slow path's start-up work at time 0 (e.g. solicitations of the exit routers), once,
    /// before anything is fed.
    fn start(&mut self, out: &mut impl FnMut(Duration, PortId, &[u8])) {
        if !self.started {
            self.started = true;
            self.settle(out);
        }
    }

    /// Worker and slow path in turn, at the current time, until neither has anything to do.
    fn settle(&mut self, out: &mut impl FnMut(Duration, PortId, &[u8])) {
        self.worker.set_clock(self.now);
        let at = self.epoch + self.now;
        for _ in 0..SETTLE_ROUNDS {
            let received = self.worker.poll();
            let slow_work = self.slow.poll(at);
            // Sends what the slow path injected (and anything still queued on a port).
            let more = self.worker.poll();
            self.collect(out);
            if received == 0
                && more == 0
                && !slow_work
                && self.link.punt_len() == 0
                && self.link.inject_len() == 0
            {
                break;
            }
        }
    }

    fn collect(&mut self, out: &mut impl FnMut(Duration, PortId, &[u8])) {
        let now = self.now;
        for &p in &self.ports {
            if let Some(q) = self.worker.queue_mut(p) {
                q.drain_sent(|f| out(now, p, f));
            }
        }
    }
}
