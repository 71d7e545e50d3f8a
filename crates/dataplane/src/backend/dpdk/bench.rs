//! `pshim6 bench pipeline --backend dpdk`: the in-memory benchmark's generator → worker →
//! sink measurement ([`crate::bench`]) over DPDK ports, with the null forwarder on the same
//! ports as the same-run baseline, and the same JSON.
//!
//! Each of the appliance's three ports (inside, provider A, provider B) is a pair of
//! ring-backed ethdevs wired back to back ([`ring_port_pair`]): the worker polls one end with
//! `rte_eth_rx_burst`/`rte_eth_tx_burst` and its mbufs, exactly as on a NIC (one queue pair
//! per worker); the feeder thread owns the other end, offers frames on the port the mode
//! receives on and takes back what the worker transmitted on the others, rewriting only the
//! headers of each returned mbuf before offering it again. The figures are the workers' own
//! busy-time rates, as in-memory; what differs is the I/O path: mbufs, the ethdev burst
//! calls, the mempool.
//!
//! Workers and the feeder register as DPDK lcores ([`crate::io::PortQueue::attach_thread`])
//! so the mempool's per-lcore caches serve them; [`DpdkBenchReport::lcore_cached_mbufs`]
//! shows the caches in use.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::eal::{eal_ready, lcore_id, register_thread, ring_port_pair, unregister_thread};
use super::mbuf::{Mbuf, Mempool};
use super::port::{DpdkPort, DpdkPortConfig, DpdkQueue};
use super::DpdkError;
use crate::bench::{
    bench_site, check_options, interleaved, measure, next_rand, write_frame, BenchOptions,
    BenchReport, Feed, Mode, ModeResult, Synthetic, BUFS_PER_WORKER, INSIDE, PORTS, PROV_A, RING,
};
use crate::config::DataplaneConfig;
use crate::fastpath::{FastPath, ProviderStatus, SetupError};
use crate::io::{PortId, PortQueue, BURST};
use crate::neighbor::NeighborReader;
use crate::punt::SlowPathLink;
use crate::worker::{NullForwarder, Worker, WorkerConfig};

/// Why the DPDK benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum DpdkBenchError {
    /// Setting up DPDK (EAL not started, ports, pool).
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    /// Options or the synthetic site.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A worker or feeder thread died; its queues are gone.
    #[error("a benchmark thread died")]
    ThreadDied,
}

/// What `pshim6 bench pipeline --backend dpdk --json` prints: the in-memory report's fields
/// (`backend` is `"dpdk"`) plus what only DPDK has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpdkBenchReport {
    /// The same figures as the in-memory benchmark.
    #[serde(flatten)]
    pub report: BenchReport,
    /// Mbufs left in the mempool caches of lcores other than the main one after the run:
    /// non-zero shows the registered worker and feeder threads went through their
    /// per-lcore caches (an unregistered thread bypasses them).
    pub lcore_cached_mbufs: u32,
    /// Mbufs in the benchmark's pool.
    pub pool_mbufs: u32,
}

/// Distinguishes the port names of several benchmarks in one process (tests).
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The started ring ports: `near[p][w]` is worker `w`'s queue on port `p` (`PORTS[p]`),
/// `far[p][w]` the feeder's end of it. Fields drop in order: queues, ports, then the pool.
struct Cable {
    near: Vec<Vec<DpdkQueue>>,
    far: Vec<Vec<DpdkQueue>>,
    _ports: Vec<DpdkPort>,
    pool: Arc<Mempool>,
}

impl Cable {
    fn open(workers: usize) -> Result<Self, DpdkError> {
        let n = u16::try_from(workers).map_err(|_| DpdkError::Config("too many workers"))?;
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let mbufs = u32::try_from(BUFS_PER_WORKER * workers + 1024)
            .map_err(|_| DpdkError::Config("too many workers"))?;
        let pool = Arc::new(Mempool::new(&format!("p6bench{k}"), mbufs, 2048, None)?);
        let (mut near, mut far, mut ports) = (Vec::new(), Vec::new(), Vec::new());
        let ring = u32::try_from(RING).map_err(|_| DpdkError::Config("ring size"))?;
        for p in 0..PORTS.len() {
            let (a, b) = ring_port_pair(&format!("p6b{k}w{p}"), &format!("p6b{k}f{p}"), n, ring)?;
            for (name, side) in [(a, &mut near), (b, &mut far)] {
                let cfg = DpdkPortConfig {
                    queues: n,
                    promiscuous: false,
                    ..DpdkPortConfig::new(name)
                };
                let (port, qs) = DpdkPort::start(&cfg, &pool)?;
                ports.push(port);
                side.push(qs);
            }
        }
        Ok(Self {
            near,
            far,
            _ports: ports,
            pool,
        })
    }

    /// Worker `w`'s queues, one per port, taken out of the cable.
    fn take_workers(&mut self) -> Vec<Vec<(PortId, DpdkQueue)>> {
        let mut per: Vec<Vec<(PortId, DpdkQueue)>> = Vec::new();
        for (p, qs) in self.near.iter_mut().enumerate() {
            for (w, q) in std::mem::take(qs).into_iter().enumerate() {
                if per.len() <= w {
                    per.push(Vec::new());
                }
                if let (Some(v), Some(&port)) = (per.get_mut(w), PORTS.get(p)) {
                    v.push((port, q));
                }
            }
        }
        per
    }

    /// Puts worker queues back (in worker order), emptying their receive rings.
    fn put_workers(&mut self, workers: Vec<Vec<(PortId, DpdkQueue)>>) {
        let mut scratch = Vec::with_capacity(BURST);
        for qs in workers {
            for (port, mut q) in qs {
                drain(&mut q, &mut scratch);
                if let Some(v) = self.near.get_mut(usize::from(port.0)) {
                    v.push(q);
                }
            }
        }
    }
}

/// Receives and frees everything waiting on `q`.
fn drain(q: &mut DpdkQueue, scratch: &mut Vec<Mbuf>) {
    while q.rx_burst(scratch, BURST) > 0 {
        scratch.clear();
    }
}

/// The DPDK generator and sink: the far ends of every port, as [`crate::bench`]'s in-memory
/// feeder does it.
struct DpdkFeeder {
    mode: Mode,
    site: Synthetic,
    cfg: DataplaneConfig,
    size: usize,
    /// Index into `far` of the port the workers receive on.
    rx_port: usize,
    far: Vec<Vec<DpdkQueue>>,
    pending: Vec<Vec<Mbuf>>,
    scratch: Vec<Mbuf>,
    pool: Arc<Mempool>,
    rng: u64,
    returned: u64,
    registered: bool,
}

impl DpdkFeeder {
    fn build(&mut self, m: &mut Mbuf) {
        if m.reset_len(self.size).is_ok() {
            let r = next_rand(&mut self.rng);
            write_frame(self.mode, &self.site, &self.cfg, r, m.as_mut());
        }
    }

    /// Hands the queues back, emptied, and frees what was pending.
    fn into_far(mut self) -> Vec<Vec<DpdkQueue>> {
        self.pending.clear();
        for q in self.far.iter_mut().flatten() {
            drain(q, &mut self.scratch);
        }
        std::mem::take(&mut self.far)
    }
}

impl Feed for DpdkFeeder {
    fn step(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut far = std::mem::take(&mut self.far);
        for (p, qs) in far.iter_mut().enumerate() {
            if p == self.rx_port {
                continue;
            }
            for (w, q) in qs.iter_mut().enumerate() {
                q.rx_burst(&mut scratch, BURST);
                self.returned += scratch.len() as u64;
                for mut m in scratch.drain(..) {
                    // The null forwarder leaves frames untouched: offer them as they are.
                    if self.mode != Mode::Null {
                        self.build(&mut m);
                    }
                    if let Some(v) = self.pending.get_mut(w) {
                        v.push(m);
                    }
                }
            }
        }
        let inputs = far.get_mut(self.rx_port).map(Vec::as_mut_slice);
        for (w, q) in inputs.unwrap_or_default().iter_mut().enumerate() {
            let mut pend = self.pending.get_mut(w).map(std::mem::take);
            if let Some(v) = pend.as_mut() {
                while v.len() < BURST {
                    let Some(mut m) = self.pool.alloc() else {
                        break;
                    };
                    self.build(&mut m);
                    v.push(m);
                }
                while !v.is_empty() && q.tx_keep(v) > 0 {}
            }
            if let (Some(slot), Some(v)) = (self.pending.get_mut(w), pend) {
                *slot = v;
            }
        }
        self.far = far;
        self.scratch = scratch;
    }

    fn returned(&self) -> u64 {
        self.returned
    }

    fn attach_thread(&mut self) {
        self.registered = lcore_id().is_none() && register_thread().is_ok();
    }

    fn detach_thread(&mut self) {
        if std::mem::take(&mut self.registered) {
            unregister_thread();
        }
    }
}

/// Everything one mode's run needs besides the cable.
struct Bench<'a> {
    opts: BenchOptions,
    cfg: DataplaneConfig,
    site: Synthetic,
    table: &'a table::TableWriter,
    neighbors: NeighborReader,
    status: ProviderStatus,
    cores: Vec<core_affinity::CoreId>,
}

impl Bench<'_> {
    fn run(
        &self,
        cable: &mut Cable,
        mode: Mode,
        window: Duration,
    ) -> Result<ModeResult, DpdkBenchError> {
        let rx = if matches!(mode, Mode::Ingress | Mode::PuntFlood) {
            PROV_A
        } else {
            INSIDE
        };
        let n = self.opts.workers;
        let feeder = DpdkFeeder {
            mode,
            site: self.site,
            cfg: self.cfg.clone(),
            size: self.opts.size,
            rx_port: usize::from(rx.0),
            far: std::mem::take(&mut cable.far),
            pending: (0..n)
                .map(|_| Vec::with_capacity(BUFS_PER_WORKER))
                .collect(),
            scratch: Vec::with_capacity(BURST),
            pool: Arc::clone(&cable.pool),
            rng: 0x9e37_79b9_7f4a_7c15,
            returned: 0,
            registered: false,
        };
        let link = Arc::new(SlowPathLink::new(1024, 16));
        let epoch = Instant::now();
        let wcfg = |index| WorkerConfig {
            index,
            core: None,
            burst: BURST,
            epoch,
        };
        let queues = cable.take_workers();
        let pin = self.opts.pin;
        let (result, back, feeder) = if mode == Mode::Null {
            let ws = queues
                .into_iter()
                .enumerate()
                .map(|(w, q)| {
                    let fwd = NullForwarder::new(&[(INSIDE, PROV_A)]);
                    Worker::new(wcfg(w), q, fwd, Arc::clone(&link))
                })
                .collect();
            let (r, back, f) = measure(ws, feeder, window, &self.cores, pin);
            (r, back.into_iter().map(Worker::into_queues).collect(), f)
        } else {
            let mut ws = Vec::with_capacity(n);
            for (w, q) in queues.into_iter().enumerate() {
                let fp = FastPath::new(
                    &self.cfg,
                    self.table.reader(),
                    w,
                    self.neighbors.clone(),
                    self.status.clone(),
                )?;
                ws.push(Worker::new(wcfg(w), q, fp, Arc::clone(&link)));
            }
            let (r, back, f) = measure(ws, feeder, window, &self.cores, pin);
            (r, back.into_iter().map(Worker::into_queues).collect(), f)
        };
        let back: Vec<Vec<(PortId, DpdkQueue)>> = back;
        let ok = back.len() == n;
        cable.put_workers(back);
        match feeder {
            Some(f) if ok => {
                cable.far = f.into_far();
                Ok(result)
            }
            _ => Err(DpdkBenchError::ThreadDied),
        }
    }
}

/// Every online CPU. Not `core_affinity::get_core_ids()`: that reads the calling thread's
/// affinity, which a caller that started the EAL itself (not through [`super::init_eal`],
/// which restores it) may have left narrowed to the main lcore's core.
fn online_cores() -> Vec<core_affinity::CoreId> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (0..usize::try_from(n).unwrap_or(1).max(1))
        .map(|id| core_affinity::CoreId { id })
        .collect()
}

/// Runs the pipeline benchmark on DPDK ring ports (the EAL must be up: [`super::init_eal`]).
/// Same modes, windows and report as [`crate::bench::run_pipeline_bench`], `backend` set to
/// `"dpdk"`.
pub fn run_dpdk_pipeline_bench(opts: &BenchOptions) -> Result<DpdkBenchReport, DpdkBenchError> {
    check_options(opts)?;
    if !eal_ready() {
        return Err(DpdkError::NoEal.into());
    }
    let (cfg, site, table, neighbors, status) = bench_site(opts)?;
    let b = Bench {
        opts: *opts,
        cfg,
        site,
        table: &table,
        neighbors,
        status,
        cores: online_cores(),
    };
    let mut cable = Cable::open(opts.workers)?;
    let report = interleaved(opts, "dpdk", |m, window| b.run(&mut cable, m, window))?;
    let main = lcore_id();
    let total = cable.pool.cached();
    let lcore_cached_mbufs = total.saturating_sub(main.map_or(0, |l| cable.pool.cached_on(l)));
    let pool_mbufs = u32::try_from(BUFS_PER_WORKER * opts.workers + 1024).unwrap_or(u32::MAX);
    Ok(DpdkBenchReport {
        report,
        lcore_cached_mbufs,
        pool_mbufs,
    })
}
