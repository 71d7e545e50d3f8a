//! A whole appliance data plane on one set of port queues: the context and neighbour tables,
//! the punt/inject link, one pinned worker per queue set and the slow-path thread. Used by
//! `pshim6 run` and by the two-site tests (in-memory and AF_PACKET), so both run exactly what
//! the appliance runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use shim6::EngineStats;
use table::{Entry, NewEntry, TableConfig, TableReader, TableWriter};

use super::activity::{LinkState, LinkWatch};
use super::control::{self, ControlClient};
use super::te::TeHandle;
use super::{
    LocalServices, SiteSetup, SlowPath, SlowPathConfig, SlowPathError, SlowPathIo, SlowPathStats,
};
use crate::config::DataplaneConfig;
use crate::fastpath::{FastPath, ProviderStatus, SetupError};
use crate::io::{PortId, PortQueue};
use crate::neighbor::neighbor_table;
use crate::punt::SlowPathLink;
use crate::worker::{Worker, WorkerConfig, WorkerHandle, WorkerMonitor, WorkerStats};

/// Sizing of a pipeline besides the data-plane configuration.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Ports, providers, queue sizes, worker cores.
    pub dataplane: DataplaneConfig,
    /// Slow-path tuning.
    pub slow_path: SlowPathConfig,
    /// Contexts the table holds.
    pub table_capacity: usize,
    /// Neighbours the neighbour table holds.
    pub neighbor_capacity: usize,
}

/// What a pipeline did, read when it stops.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// Each worker's counters.
    pub workers: Vec<WorkerStats>,
    /// The slow path's counters (`None` if its thread panicked).
    pub slow_path: Option<SlowPathStats>,
    /// The engine's counters.
    pub engine: Option<EngineStats>,
    /// Contexts in the table at the end.
    pub contexts: usize,
    /// The local services' counters (empty without services).
    pub services: Vec<(String, u64)>,
}

impl PipelineReport {
    /// The report of `workers` and `slow` (`None`: its thread is gone).
    pub fn of(workers: Vec<WorkerStats>, slow: Option<&SlowPath>) -> Self {
        Self {
            workers,
            slow_path: slow.map(SlowPath::stats),
            engine: slow.map(|s| s.engine().stats().clone()),
            contexts: slow.map_or(0, SlowPath::table_len),
            services: slow.map(SlowPath::services_counters).unwrap_or_default(),
        }
    }
}

/// A running pipeline.
#[derive(Debug)]
pub struct Pipeline<Q: PortQueue + 'static> {
    workers: Vec<WorkerHandle<LinkWatch<Q>, FastPath>>,
    slow: Option<JoinHandle<SlowPath>>,
    stop: Arc<AtomicBool>,
    links: LinkState,
    table: TableReader,
    link: Arc<SlowPathLink>,
    control: ControlClient,
    te: TeHandle,
}

/// Requests the control channel holds at most.
pub const CONTROL_QUEUE: usize = 64;
/// How long a [`ControlClient`] of a pipeline waits for the slow path.
pub const CONTROL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl<Q: PortQueue + 'static> Pipeline<Q> {
    /// Starts one worker per entry of `queues` (its queue for each port) and the slow path.
    /// Worker `i` is pinned to `dataplane.worker_cores[i]` when that names a core.
    pub fn start(
        cfg: PipelineConfig,
        site: SiteSetup,
        queues: Vec<Vec<(PortId, Q)>>,
    ) -> Result<Self, SlowPathError> {
        Self::start_preloaded(cfg, site, None, queues, [])
    }

    /// [`start`](Self::start), with `services` (DNS ALG, DHCPv6) on the proxy's addresses.
    pub fn start_with_services(
        cfg: PipelineConfig,
        site: SiteSetup,
        services: Option<Box<dyn LocalServices>>,
        queues: Vec<Vec<(PortId, Q)>>,
    ) -> Result<Self, SlowPathError> {
        Self::start_preloaded(cfg, site, services, queues, [])
    }

    /// Like [`start_with_services`](Self::start_with_services), with `preload` contexts written
    /// into the table before the workers start. For benchmarks only (`synthetic_contexts` in
    /// `pshim6 run`'s `[dpdk]` table, fed by `pshim6-pktgen`): a generator cannot run real
    /// handshakes, so the fast path gets established contexts the engine knows nothing of (no
    /// REAP, no expiry).
    pub fn start_preloaded(
        cfg: PipelineConfig,
        site: SiteSetup,
        services: Option<Box<dyn LocalServices>>,
        queues: Vec<Vec<(PortId, Q)>>,
        preload: impl IntoIterator<Item = NewEntry>,
    ) -> Result<Self, SlowPathError> {
        let dp = cfg.dataplane;
        dp.validate()?;
        if queues.is_empty() {
            return Err(SlowPathError::Pipeline("no worker queues"));
        }
        let n = queues.len();
        // One counter shard per worker plus one for the slow path's own fast path.
        let table = TableWriter::new(&TableConfig::new(cfg.table_capacity, n + 1))
            .map_err(SetupError::from)?;
        let (neighbors, reader) = neighbor_table(cfg.neighbor_capacity);
        let link = Arc::new(SlowPathLink::new(dp.punt_queue, dp.inject_queue));
        let status = ProviderStatus::new(&dp);
        let max_port = dp
            .providers
            .iter()
            .map(|p| p.port.0)
            .chain([dp.inside.port.0])
            .max()
            .unwrap_or(0);
        let links = LinkState::new(usize::from(max_port) + 1);
        let epoch = Instant::now();
        let io = SlowPathIo {
            table,
            neighbors,
            link: Arc::clone(&link),
            status: status.clone(),
            links: links.clone(),
            shard: n,
            epoch,
        };
        let mut slow = SlowPath::new(cfg.slow_path, dp.clone(), site, io, epoch)?;
        let (control, requests) = control::channel(CONTROL_QUEUE, CONTROL_TIMEOUT);
        slow.set_control(requests);
        if let Some(s) = services {
            slow.set_services(s, epoch);
        }
        for e in preload {
            slow.table.insert(e).map_err(SetupError::from)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        // Dropping `this` on an error below stops the workers already started.
        let mut this = Self {
            workers: Vec::with_capacity(n),
            slow: None,
            stop,
            links,
            table: slow.table.reader(),
            link: Arc::clone(&link),
            control,
            te: slow.te_handle(),
        };
        for (i, qs) in queues.into_iter().enumerate() {
            let fp = FastPath::new(&dp, slow.table.reader(), i, reader.clone(), status.clone())?;
            let wrapped = qs
                .into_iter()
                .map(|(port, q)| (port, LinkWatch::new(q, port, this.links.clone())))
                .collect();
            let wcfg = WorkerConfig {
                index: i,
                core: dp.worker_cores.get(i).copied().flatten(),
                burst: dp.burst,
                epoch,
            };
            let worker = Worker::new(wcfg, wrapped, fp, Arc::clone(&link)).spawn()?;
            this.workers.push(worker);
        }
        let flag = Arc::clone(&this.stop);
        let slow = std::thread::Builder::new()
            .name("pshim6-slowpath".into())
            .spawn(move || {
                slow.run(&flag);
                slow
            })
            .map_err(SetupError::from)?;
        this.slow = Some(slow);
        Ok(this)
    }

    /// The workers' latest counters.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers.iter().map(WorkerHandle::stats).collect()
    }

    /// Traffic engineering of the running slow path: policy, drain, view.
    pub fn te_handle(&self) -> &TeHandle {
        &self.te
    }

    /// Port link state as the workers last read it.
    pub fn link_state(&self) -> &LinkState {
        &self.links
    }

    /// Every context in the table now (operator view, O(capacity): for a timeline or a dump,
    /// not per packet).
    pub fn contexts(&self) -> Vec<Entry> {
        self.table.iter().collect()
    }

    /// Counter readers of the workers, for other threads.
    pub fn worker_monitors(&self) -> Vec<WorkerMonitor> {
        self.workers.iter().map(WorkerHandle::monitor).collect()
    }

    /// The punt and inject queues (their depths, for the operator API).
    pub fn queues(&self) -> Arc<SlowPathLink> {
        Arc::clone(&self.link)
    }

    /// A client of the slow path's control channel.
    pub fn control(&self) -> ControlClient {
        self.control.clone()
    }

    /// Stops the slow path, then the workers, and reports their counters.
    pub fn stop(mut self) -> PipelineReport {
        self.stop.store(true, Ordering::Relaxed);
        let slow = self.slow.take().and_then(|h| h.join().ok());
        let workers = self.workers.drain(..).map(|w| {
            let stopper = w.stopper();
            stopper.stop();
            match w.stop() {
                Some(worker) => worker.stats(),
                None => WorkerStats::default(),
            }
        });
        PipelineReport::of(workers.collect(), slow.as_ref())
    }
}

impl<Q: PortQueue + 'static> Drop for Pipeline<Q> {
    fn drop(&mut self) {
        // A pipeline dropped without `stop` (e.g. a failing test) still ends its threads.
        self.stop.store(true, Ordering::Relaxed);
        for w in &self.workers {
            w.stopper().stop();
        }
    }
}
