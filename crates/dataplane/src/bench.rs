//! The pipeline benchmark behind `pshim6 bench pipeline`: generator → worker(s) → sink over
//! in-memory rings, measuring in one run a **null forwarder** (same harness, frames forwarded
//! untouched) and then SHIM6 egress, SHIM6 ingress and NATv6 out, with `contexts` contexts in
//! the table.
//!
//! How the figure stays the worker's own cost on a 2-core box:
//! - One feeder thread is both generator and sink, on its own core (the workers get the
//!   others). Packets come from a pre-built pool recycled in place: what a worker transmits
//!   comes straight back to the feeder, which restores only the headers the worker changed
//!   (54 to 62 bytes; the payload never moves: the worker inserts and removes the 8-byte
//!   Shim6 header by moving the headers, not the payload) and queues the buffer again.
//! - Each worker times its own non-empty bursts (receive, decide, transmit: [`BusyTime`]), so
//!   time spent waiting for the feeder is not counted, and a burst during which the thread
//!   was preempted (other work on the box) is left out. `*_mpps` is packets per second of
//!   that busy time, summed over workers; the pipeline's end-to-end rate is reported apart
//!   (`wall`).
//! - The four modes take turns in short windows (up to 5 per mode), each figure being the
//!   median over its windows, so a spell of load from other processes does not land on one
//!   mode only and skew the ratios.
//!
//! A fifth mode, **punt flood**, is SHIM6 ingress with every fourth frame carrying a tag no
//! context has, while nothing drains the punt queue: the slow path is saturated and those
//! frames are punted-then-dropped by the worker. `punt_flood_ratio` compares the per-packet
//! rate to plain ingress (issue #10: established contexts keep ≥ 90 % of their rate).
//!
//! Traffic touches contexts drawn at random from the whole table, so at a million contexts
//! the lookups miss the caches as they would in production (the batched, prefetching lookups
//! are what keeps that cost down).

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use table::{flags, Footprint, NewEntry, TableConfig, TableWriter};
use wire::{ContextTag, Locator, LocatorPair, Ulid};

use crate::backend::mem::{self, MemConfig, MemQueue, Steering};
use crate::backend::BufPool;
use crate::buf::{HeapBuf, PacketBuf};
use crate::config::{ConfigError, DataplaneConfig, MacAddr, Prefix64};
use crate::fastpath::{FastPath, ProviderStatus, SetupError};
use crate::io::{PortId, PortQueue, BURST};
use crate::neighbor::{neighbor_table, NeighborReader};
use crate::punt::SlowPathLink;
use crate::worker::{BurstProcessor, BusyTime, NullForwarder, Worker, WorkerConfig};

/// Smallest frame the benchmark sends: Ethernet, IPv6, Shim6 payload header, UDP, 8 bytes.
pub const MIN_FRAME: usize = 14 + 40 + 8 + 8 + 8;

/// Benchmark parameters (`pshim6 bench pipeline` flags).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenchOptions {
    /// Worker threads.
    pub workers: usize,
    /// Contexts in the table.
    pub contexts: usize,
    /// Frame size in bytes, Ethernet header included (at least [`MIN_FRAME`]).
    pub size: usize,
    /// Measured seconds per mode (split into up to 5 windows, each after a 0.1 s warm-up).
    pub seconds: f64,
    /// Pin the feeder and the workers to distinct cores when there are enough.
    pub pin: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            contexts: 1000,
            size: 128,
            seconds: 2.0,
            pin: true,
        }
    }
}

/// End-to-end rates: frames the feeder got back per wall-clock second.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct WallRates {
    /// Null forwarder.
    pub null_mpps: f64,
    /// SHIM6 egress.
    pub egress_mpps: f64,
    /// SHIM6 ingress.
    pub ingress_mpps: f64,
    /// NATv6 out.
    pub natv6_mpps: f64,
}

/// The JSON keys of a [`BenchReport`]'s headline figures (the rates, their ratios to the null
/// forwarder, the table's size and cost per context): every `pshim6 bench pipeline --json`
/// report carries them at the top level, whichever the backend (the DPDK report flattens
/// the same fields). One list for the tests of both backends' reports.
pub const REPORT_FIGURES: [&str; 8] = [
    "null_mpps",
    "egress_mpps",
    "ingress_mpps",
    "natv6_mpps",
    "egress_ratio",
    "ingress_ratio",
    "contexts",
    "bytes_per_context",
];

/// What `pshim6 bench pipeline --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// I/O backend ("mem", "dpdk").
    pub backend: &'static str,
    /// Null forwarder, million packets per second of worker busy time (all workers).
    pub null_mpps: f64,
    /// SHIM6 egress (inside → provider, payload header inserted).
    pub egress_mpps: f64,
    /// SHIM6 ingress (provider → inside, ULIDs restored).
    pub ingress_mpps: f64,
    /// Stateless NATv6 out (a table miss, then a prefix swap).
    pub natv6_mpps: f64,
    /// `egress_mpps / null_mpps`.
    pub egress_ratio: f64,
    /// `ingress_mpps / null_mpps`.
    pub ingress_ratio: f64,
    /// `natv6_mpps / null_mpps`.
    pub natv6_ratio: f64,
    /// Nanoseconds per packet of one worker: null, egress, ingress, natv6.
    pub ns_per_packet: [f64; 4],
    /// Average packets per timed burst, same order (32 when the feeder keeps the worker
    /// busy; small bursts mean the worker waited for traffic and pays per-burst costs more).
    pub avg_burst: [f64; 4],
    /// End-to-end rates.
    pub wall: WallRates,
    /// Contexts in the table.
    pub contexts: usize,
    /// Fast-path table bytes per context (entry slot + both indexes).
    pub bytes_per_context: usize,
    /// Bytes per context including every worker's counters and the writer's free list.
    pub bytes_per_context_total: usize,
    /// Workers.
    pub workers: usize,
    /// Frame size.
    pub size: usize,
    /// Measured seconds per mode.
    pub seconds: f64,
    /// Windows each mode was measured in (taking turns); figures are medians over them.
    pub rounds: usize,
    /// Whether the threads were pinned to distinct cores.
    pub pinned: bool,
    /// Bursts left out because the worker was preempted during them (all modes).
    pub preempted_bursts: u64,
    /// Frames punted or dropped instead of forwarded, per mode (null, egress, ingress,
    /// natv6): 0 in a correct run.
    pub unforwarded: [u64; 4],
    /// Punt flood (ingress, a quarter of the frames with unknown tags, punt queue never
    /// drained): million packets per second of worker busy time, all frames.
    pub punt_flood_mpps: f64,
    /// `punt_flood_mpps / ingress_mpps`: the per-packet rate kept while the slow path is
    /// saturated.
    pub punt_flood_ratio: f64,
    /// Frames punted or dropped in the punt flood (the unknown-tag quarter).
    pub punt_flood_unforwarded: u64,
}

/// What the workers do in one measurement (and the frames the feeder builds for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Null,
    Egress,
    Ingress,
    NatOut,
    PuntFlood,
}

pub(crate) const INSIDE: PortId = PortId(0);
pub(crate) const PROV_A: PortId = PortId(1);
const PROV_B: PortId = PortId(2);
pub(crate) const PORTS: [PortId; 3] = [INSIDE, PROV_A, PROV_B];
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const ROUTER_MAC: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
/// Buffers circulating per worker (two rings of 1024 hold them all).
pub(crate) const BUFS_PER_WORKER: usize = 2048;
pub(crate) const RING: usize = 1024;
const PEER_ULID_PREFIX: u64 = 0xfc00_0099_0000_0000;
const PEER_LOC_PREFIX: u64 = 0x2001_0db8_000c_0000;
const INTERNET_PREFIX: u64 = 0x2001_0db8_f00d_0000;

/// A bijection on 47 bits (odd multiply and xor-shift, both invertible): distinct tags with
/// no structure, as the RFC wants them (RFC 5533 §7.1).
fn mix47(x: u64, k: u64) -> u64 {
    let m = ContextTag::MASK;
    let mut x = x.wrapping_mul(k | 1) & m;
    x ^= x >> 23;
    x = x.wrapping_mul(0x2545_f491_4f6c_dd1d) & m;
    x ^ (x >> 19)
}

/// The benchmark's synthetic site: hosts `0..hosts`, context `i` between host `i % hosts` and
/// remote peer `i`, all over provider A.
#[derive(Debug, Clone, Copy)]
pub struct Synthetic {
    /// Contexts.
    pub contexts: usize,
    /// Inside hosts.
    pub hosts: usize,
    ulid_prefix: u64,
    pa_prefix: u64,
}

impl Synthetic {
    /// The site for `contexts` contexts (at most 1024 hosts) on [`DataplaneConfig::example`].
    pub fn new(config: &DataplaneConfig, contexts: usize) -> Self {
        let pa_prefix = config.providers.first().map_or(0, |p| p.prefix.0);
        Self {
            contexts: contexts.max(1),
            hosts: contexts.clamp(1, 1024),
            ulid_prefix: config.ulid_prefix.0,
            pa_prefix,
        }
    }

    fn iid_host(h: usize) -> u64 {
        0x1000_0000_0000_0000 | h as u64
    }

    fn addr(prefix: u64, iid: u64) -> u128 {
        (u128::from(prefix) << 64) | u128::from(iid)
    }

    /// The same site from its two prefixes (a generator that knows the appliance's
    /// configuration but not its [`DataplaneConfig`]).
    pub fn with_prefixes(ulid_prefix: Prefix64, pa_prefix: Prefix64, contexts: usize) -> Self {
        Self {
            contexts: contexts.max(1),
            hosts: contexts.clamp(1, 1024),
            ulid_prefix: ulid_prefix.0,
            pa_prefix: pa_prefix.0,
        }
    }

    /// ULID of host `h`.
    pub fn host_ulid(&self, h: usize) -> Ipv6Addr {
        Ipv6Addr::from_bits(Self::addr(self.ulid_prefix, Self::iid_host(h)))
    }

    /// The table entry of context `i`.
    pub fn entry(&self, i: usize) -> NewEntry {
        let h = i % self.hosts;
        let n = i as u64 + 1;
        NewEntry {
            local_tag: ContextTag::from_wire(mix47(n, 0x9e37_79b9_7f4a_7c15)),
            peer_tag: ContextTag::from_wire(mix47(n, 0xc2b2_ae3d_27d4_eb4f)),
            local_ulid: Ulid(self.host_ulid(h)),
            peer_ulid: Ulid(Ipv6Addr::from_bits(Self::addr(PEER_ULID_PREFIX, n))),
            pair: LocatorPair {
                local: Locator(Ipv6Addr::from_bits(Self::addr(
                    self.pa_prefix,
                    Self::iid_host(h),
                ))),
                peer: Locator(Ipv6Addr::from_bits(Self::addr(PEER_LOC_PREFIX, n))),
            },
            tx_provider: 1,
            flags: flags::ESTABLISHED,
        }
    }

    /// A table holding every context, with counter shards for `workers`.
    pub fn table(&self, workers: usize) -> Result<TableWriter, SetupError> {
        let mut t = TableWriter::new(&TableConfig::new(self.contexts, workers))?;
        for i in 0..self.contexts {
            t.insert(self.entry(i))?;
        }
        Ok(t)
    }
}

fn write_eth(f: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
}

fn write_ipv6(f: &mut [u8], plen: usize, nh: u8, src: Ipv6Addr, dst: Ipv6Addr) {
    f[14..18].copy_from_slice(&[0x60, 0, 0, 0]);
    f[18..20].copy_from_slice(&(plen as u16).to_be_bytes());
    f[20] = nh;
    f[21] = 64;
    f[22..38].copy_from_slice(&src.octets());
    f[38..54].copy_from_slice(&dst.octets());
}

fn write_udp(f: &mut [u8], off: usize, len: usize) {
    f[off..off + 4].copy_from_slice(&[0x9c, 0x40, 0x1f, 0x90]);
    f[off + 4..off + 6].copy_from_slice(&(len as u16).to_be_bytes());
    // Non-zero: NATv6 must update it (a zero UDP checksum is left alone).
    f[off + 6..off + 8].copy_from_slice(&[0x12, 0x34]);
}

/// Writes the headers of a fresh input frame for `mode` into `f` (already the frame's
/// size): a random context (or flow) drawn from `r`; the bytes after the headers are left as
/// they are. The in-memory and the DPDK feeders both build their frames here.
pub(crate) fn write_frame(
    mode: Mode,
    site: &Synthetic,
    cfg: &DataplaneConfig,
    r: u64,
    f: &mut [u8],
) {
    let size = f.len();
    if size < MIN_FRAME {
        return;
    }
    let i = (r % site.contexts as u64) as usize;
    let e = site.entry(i);
    let inside_mac = cfg.inside.mac.0;
    let prov_mac = cfg.providers.first().map_or([0; 6], |p| p.mac.0);
    match mode {
        Mode::Null | Mode::Egress => {
            write_eth(f, inside_mac, HOST_MAC);
            write_ipv6(f, size - 54, 17, e.local_ulid.0, e.peer_ulid.0);
            write_udp(f, 54, size - 54);
        }
        Mode::Ingress | Mode::PuntFlood => {
            write_eth(f, prov_mac, ROUTER_MAC);
            write_ipv6(f, size - 54, 140, e.pair.peer.0, e.pair.local.0);
            // Punt flood: every fourth frame names a context beyond the table (mix47 is
            // a bijection, so that tag is no live context's).
            let t = if mode == Mode::PuntFlood && (r >> 40) & 3 == 0 {
                site.entry(site.contexts + i).local_tag.to_bytes()
            } else {
                e.local_tag.to_bytes()
            };
            f[54..62].copy_from_slice(&[17, 0, 0x80 | t[0], t[1], t[2], t[3], t[4], t[5]]);
            write_udp(f, 62, size - 62);
        }
        Mode::NatOut => {
            let dst = Ipv6Addr::from_bits(Synthetic::addr(INTERNET_PREFIX, r >> 16));
            write_eth(f, inside_mac, HOST_MAC);
            write_ipv6(f, size - 54, 17, e.local_ulid.0, dst);
            write_udp(f, 54, size - 54);
        }
    }
}

/// xorshift64*: the feeders' cheap random numbers (context choice, NATv6 destinations).
pub(crate) fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The generator-and-sink side of a measurement ([`measure`]), on its own thread.
pub(crate) trait Feed: Send {
    /// One round: take back what the workers sent, offer frames again.
    fn step(&mut self);
    /// Frames taken back so far.
    fn returned(&self) -> u64;
    /// Called on the feeder's thread before its first step (DPDK registers an lcore).
    fn attach_thread(&mut self) {}
    /// Called on the feeder's thread after its last step.
    fn detach_thread(&mut self) {}
}

impl Feed for Feeder {
    fn step(&mut self) {
        Feeder::step(self);
    }

    fn returned(&self) -> u64 {
        self.returned
    }
}

/// Generator and sink in one: drains what the workers sent, rewrites the headers of each
/// frame for a fresh random context, and offers it again.
struct Feeder {
    mode: Mode,
    site: Synthetic,
    cfg: DataplaneConfig,
    size: usize,
    /// `inputs[w]`: the far end of worker `w`'s receive queue.
    inputs: Vec<MemQueue>,
    /// Far ends of every port, per worker: where translated frames come back.
    outputs: Vec<(usize, MemQueue)>,
    pending: Vec<Vec<HeapBuf>>,
    scratch: Vec<HeapBuf>,
    pool: Arc<BufPool>,
    rng: u64,
    returned: u64,
}

impl Feeder {
    fn rand(&mut self) -> u64 {
        next_rand(&mut self.rng)
    }

    /// Rewrites `buf` as a fresh input frame: the headers for a random context (or flow);
    /// the bytes after them are left as they are.
    fn build(&mut self, buf: &mut HeapBuf) {
        let _ = buf.reset_from(&[]);
        let _ = buf.set_len(self.size);
        let r = self.rand();
        write_frame(self.mode, &self.site, &self.cfg, r, buf.as_mut());
    }

    /// One round: drain every output, restore, top up from the pool, offer to the workers.
    fn step(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut outputs = std::mem::take(&mut self.outputs);
        for (w, q) in &mut outputs {
            q.rx_burst(&mut scratch, BURST);
            self.returned += scratch.len() as u64;
            for mut buf in scratch.drain(..) {
                // The null forwarder leaves frames untouched: offer them as they are.
                if self.mode != Mode::Null {
                    self.build(&mut buf);
                }
                if let Some(p) = self.pending.get_mut(*w) {
                    p.push(buf);
                }
            }
        }
        self.outputs = outputs;
        self.scratch = scratch;
        for w in 0..self.inputs.len() {
            while self.pending.get(w).is_some_and(|p| p.len() < BURST) {
                let Some(mut buf) = self.pool.alloc() else {
                    break;
                };
                self.build(&mut buf);
                if let Some(p) = self.pending.get_mut(w) {
                    p.push(buf);
                }
            }
            if let (Some(q), Some(p)) = (self.inputs.get_mut(w), self.pending.get_mut(w)) {
                q.send_until_full(p);
            }
        }
    }
}

/// Phases shared by the feeder, the workers and the controller.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// One measurement window of one mode.
pub(crate) struct ModeResult {
    busy: Vec<BusyTime>,
    /// Frames the workers punted or dropped (a correct run forwards everything).
    unforwarded: u64,
    wall_pps: f64,
    pinned: bool,
}

impl ModeResult {
    fn mpps(&self) -> f64 {
        self.busy.iter().map(BusyTime::rate).sum::<f64>() / 1e6
    }

    fn avg_burst(&self) -> f64 {
        let (p, b) = self
            .busy
            .iter()
            .fold((0u64, 0u64), |(p, b), t| (p + t.packets, b + t.bursts));
        if b == 0 {
            0.0
        } else {
            p as f64 / b as f64
        }
    }

    fn ns_per_packet(&self) -> f64 {
        let (busy, pkts) = self.busy.iter().fold((0.0, 0u64), |(b, p), t| {
            (b + t.busy.as_secs_f64(), p + t.packets)
        });
        if pkts == 0 {
            0.0
        } else {
            busy * 1e9 / pkts as f64
        }
    }
}

struct Harness<'a> {
    opts: BenchOptions,
    cfg: DataplaneConfig,
    site: Synthetic,
    table: &'a TableWriter,
    neighbors: NeighborReader,
    status: ProviderStatus,
    cores: Vec<core_affinity::CoreId>,
}

/// What [`Harness::setup`] prepares for one mode: each worker's queues, the feeder, the
/// punt link and the activity epoch.
type Setup = (
    Vec<Vec<(PortId, MemQueue)>>,
    Feeder,
    Arc<SlowPathLink>,
    Instant,
);

impl Harness<'_> {
    fn setup(&self, mode: Mode) -> Result<Setup, SetupError> {
        let n = self.opts.workers;
        let pool = Arc::new(BufPool::new(BUFS_PER_WORKER * n, self.opts.size.max(256)));
        let cable = MemConfig {
            a_queues: n,
            b_queues: n,
            ring_size: RING,
            steering: Steering::SameIndex,
        };
        let mut near: Vec<Vec<(PortId, MemQueue)>> = (0..n).map(|_| Vec::new()).collect();
        let mut far: Vec<Vec<MemQueue>> = Vec::new();
        for port in PORTS {
            let (f, nr) = mem::pair(&pool, &cable)?;
            far.push(f.into_queues());
            for (w, q) in nr.into_queues().into_iter().enumerate() {
                if let Some(v) = near.get_mut(w) {
                    v.push((port, q));
                }
            }
        }
        let rx_port = if matches!(mode, Mode::Ingress | Mode::PuntFlood) {
            PROV_A
        } else {
            INSIDE
        };
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for (p, queues) in far.into_iter().enumerate() {
            for (w, q) in queues.into_iter().enumerate() {
                if p == usize::from(rx_port.0) {
                    inputs.push(q);
                } else {
                    outputs.push((w, q));
                }
            }
        }
        let feeder = Feeder {
            mode,
            site: self.site,
            cfg: self.cfg.clone(),
            size: self.opts.size,
            inputs,
            outputs,
            pending: (0..n)
                .map(|_| Vec::with_capacity(BUFS_PER_WORKER * n))
                .collect(),
            scratch: Vec::with_capacity(BURST),
            pool,
            rng: 0x9e37_79b9_7f4a_7c15,
            returned: 0,
        };
        let link = Arc::new(SlowPathLink::new(1024, 16));
        Ok((near, feeder, link, Instant::now()))
    }

    fn fast_path(&self, worker: usize) -> Result<FastPath, SetupError> {
        FastPath::new(
            &self.cfg,
            self.table.reader(),
            worker,
            self.neighbors.clone(),
            self.status.clone(),
        )
    }

    fn run(&self, mode: Mode, window: Duration) -> Result<ModeResult, SetupError> {
        let (near, feeder, link, epoch) = self.setup(mode)?;
        let wcfg = |index| WorkerConfig {
            index,
            core: None,
            burst: BURST,
            epoch,
        };
        if mode == Mode::Null {
            let workers = near
                .into_iter()
                .enumerate()
                .map(|(w, q)| {
                    Worker::new(
                        wcfg(w),
                        q,
                        NullForwarder::new(&[(INSIDE, PROV_A)]),
                        link.clone(),
                    )
                })
                .collect();
            Ok(self.measure(workers, feeder, window))
        } else {
            let mut workers = Vec::new();
            for (w, q) in near.into_iter().enumerate() {
                workers.push(Worker::new(wcfg(w), q, self.fast_path(w)?, link.clone()));
            }
            Ok(self.measure(workers, feeder, window))
        }
    }

    /// Feeder and worker 0 in turn on the calling thread, `bursts` worker polls.
    fn inline(&self, mode: Mode, bursts: u64) -> Result<InlineRun, SetupError> {
        let (mut near, mut feeder, link, epoch) = self.setup(mode)?;
        let queues = near.swap_remove(0);
        let wcfg = WorkerConfig {
            index: 0,
            core: None,
            burst: BURST,
            epoch,
        };
        if mode == Mode::Null {
            let w = Worker::new(wcfg, queues, NullForwarder::new(&[(INSIDE, PROV_A)]), link);
            Ok(drive_inline(w, &mut feeder, bursts))
        } else {
            let w = Worker::new(wcfg, queues, self.fast_path(0)?, link);
            Ok(drive_inline(w, &mut feeder, bursts))
        }
    }

    fn measure<P: BurstProcessor>(
        &self,
        workers: Vec<Worker<MemQueue, P>>,
        feeder: Feeder,
        measured: Duration,
    ) -> ModeResult {
        measure(workers, feeder, measured, &self.cores, self.opts.pin).0
    }
}

/// Runs `workers` and `feeder` on their own threads (pinned to distinct cores when `pin` and
/// there are enough): a 0.1 s warm-up, then `measured` seconds during which each worker
/// times its non-empty bursts. Gives the workers and the feeder back (a DPDK run drains and
/// reuses their queues); the feeder is `None` if its thread died.
pub(crate) fn measure<Q: PortQueue, P: BurstProcessor, F: Feed>(
    workers: Vec<Worker<Q, P>>,
    mut feeder: F,
    measured: Duration,
    cores: &[core_affinity::CoreId],
    pin: bool,
) -> (ModeResult, Vec<Worker<Q, P>>, Option<F>) {
    let phase = AtomicU8::new(WARMUP);
    let pin = pin && cores.len() > 1;
    let warmup = Duration::from_millis(100);
    std::thread::scope(|s| {
        let phase = &phase;
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(w, mut worker)| {
                let core = cores
                    .get(1 + w % cores.len().saturating_sub(1).max(1))
                    .copied();
                s.spawn(move || {
                    let pinned = pin && core.is_some_and(core_affinity::set_for_current);
                    worker.attach_thread();
                    let mut busy = BusyTime::default();
                    let mut measuring = false;
                    loop {
                        match phase.load(Ordering::Relaxed) {
                            WARMUP => {}
                            MEASURE if !measuring => {
                                measuring = true;
                                busy = BusyTime::default();
                            }
                            MEASURE => {}
                            _ => break,
                        }
                        worker.poll_timed(&mut busy);
                    }
                    worker.detach_thread();
                    let st = worker.stats();
                    let c = st.fast_path;
                    let unforwarded = c.punted.iter().chain(&c.dropped).sum::<u64>();
                    (busy, pinned, unforwarded, worker)
                })
            })
            .collect();
        let feeder_core = cores.first().copied();
        let fed = s.spawn(move || {
            if pin {
                if let Some(c) = feeder_core {
                    core_affinity::set_for_current(c);
                }
            }
            feeder.attach_thread();
            let start = Instant::now();
            let mut at_measure = (start, 0u64);
            let mut steps = 0u64;
            loop {
                feeder.step();
                steps += 1;
                if steps & 255 != 0 {
                    continue;
                }
                let now = Instant::now();
                match phase.load(Ordering::Relaxed) {
                    WARMUP if now - start >= warmup => {
                        at_measure = (now, feeder.returned());
                        phase.store(MEASURE, Ordering::Relaxed);
                    }
                    MEASURE if now - at_measure.0 >= measured => {
                        phase.store(STOP, Ordering::Relaxed);
                        let secs = (now - at_measure.0).as_secs_f64();
                        let pps = (feeder.returned() - at_measure.1) as f64 / secs;
                        feeder.detach_thread();
                        return (pps, feeder);
                    }
                    _ => {}
                }
            }
        });
        let (wall_pps, feeder) = match fed.join() {
            Ok((pps, f)) => (pps, Some(f)),
            Err(_) => (0.0, None),
        };
        // Should the feeder have died, the workers must still stop.
        phase.store(STOP, Ordering::Relaxed);
        let mut busy = Vec::new();
        let mut all_pinned = pin;
        let mut unforwarded = 0;
        let mut back = Vec::new();
        for h in handles {
            if let Ok((b, p, u, w)) = h.join() {
                busy.push(b);
                all_pinned &= p;
                unforwarded += u;
                back.push(w);
            }
        }
        let r = ModeResult {
            busy,
            unforwarded,
            wall_pps,
            pinned: all_pinned,
        };
        (r, back, feeder)
    })
}

/// The synthetic site, its full table and its neighbours (exit routers and hosts).
pub(crate) fn bench_site(
    opts: &BenchOptions,
) -> Result<
    (
        DataplaneConfig,
        Synthetic,
        TableWriter,
        NeighborReader,
        ProviderStatus,
    ),
    SetupError,
> {
    let mut cfg = DataplaneConfig::example();
    cfg.worker_cores = vec![None; opts.workers];
    let site = Synthetic::new(&cfg, opts.contexts);
    let table = site.table(opts.workers)?;
    let (mut nw, neighbors) = neighbor_table(site.hosts + 8);
    for p in &cfg.providers {
        // Cannot fail: the table was sized for these entries.
        let _ = nw.insert(p.port, p.exit.next_hop(), MacAddr(ROUTER_MAC));
    }
    for h in 0..site.hosts {
        let _ = nw.insert(cfg.inside.port, site.host_ulid(h), MacAddr(HOST_MAC));
    }
    // Dropping the writer leaves the entries in place for the readers.
    let status = ProviderStatus::new(&cfg);
    Ok((cfg, site, table, neighbors, status))
}

/// Runs the null forwarder, SHIM6 egress, SHIM6 ingress and NATv6 out one after the other,
/// `opts.seconds` each, and reports the rates.
pub fn run_pipeline_bench(opts: &BenchOptions) -> Result<BenchReport, SetupError> {
    check_options(opts)?;
    let (cfg, site, table, neighbors, status) = bench_site(opts)?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let h = Harness {
        opts: *opts,
        cfg,
        site,
        table: &table,
        neighbors,
        status,
        cores,
    };
    interleaved(opts, "mem", |m, window| h.run(m, window))
}

/// Refuses options no backend can measure.
pub(crate) fn check_options(opts: &BenchOptions) -> Result<(), SetupError> {
    let bad = |field: &str, reason| {
        SetupError::Config(ConfigError {
            field: field.into(),
            reason,
        })
    };
    if opts.size < MIN_FRAME || opts.size > 1514 {
        return Err(bad("size", "must be between 78 and 1514 bytes"));
    }
    if opts.workers == 0 || opts.workers > 64 {
        return Err(bad("workers", "must be between 1 and 64"));
    }
    if opts.contexts == 0 {
        return Err(bad("contexts", "must be at least 1"));
    }
    Ok(())
}

/// Measures the four modes and the punt flood with `run` (one window of one mode per call),
/// taking turns, and reports the medians for `backend`.
pub(crate) fn interleaved<E>(
    opts: &BenchOptions,
    backend: &'static str,
    mut run: impl FnMut(Mode, Duration) -> Result<ModeResult, E>,
) -> Result<BenchReport, E> {
    // The modes take turns in short windows, so a burst of load from other processes hits
    // them alike; each figure is the median of its windows.
    let rounds = ((opts.seconds / 0.25) as usize).clamp(1, ROUNDS);
    let window = Duration::from_secs_f64((opts.seconds / rounds as f64).max(0.01));
    let modes = [Mode::Null, Mode::Egress, Mode::Ingress, Mode::NatOut];
    let mut runs: [Vec<ModeResult>; 4] = Default::default();
    let mut flood_runs = Vec::new();
    for _ in 0..rounds {
        for (m, out) in modes.iter().zip(runs.iter_mut()) {
            out.push(run(*m, window)?);
        }
        flood_runs.push(run(Mode::PuntFlood, window)?);
    }
    let flood = Summary::of(&flood_runs);
    let [null, egress, ingress, nat] = runs.map(|r| Summary::of(&r));
    let ratio = |m: &Summary| {
        if null.mpps > 0.0 {
            m.mpps / null.mpps
        } else {
            0.0
        }
    };
    let fp = Footprint::new(opts.contexts, opts.workers);
    let all = [&null, &egress, &ingress, &nat];
    Ok(BenchReport {
        backend,
        null_mpps: null.mpps,
        egress_mpps: egress.mpps,
        ingress_mpps: ingress.mpps,
        natv6_mpps: nat.mpps,
        egress_ratio: ratio(&egress),
        ingress_ratio: ratio(&ingress),
        natv6_ratio: ratio(&nat),
        ns_per_packet: all.map(|m| m.ns_per_packet),
        avg_burst: all.map(|m| m.avg_burst),
        wall: WallRates {
            null_mpps: null.wall_mpps,
            egress_mpps: egress.wall_mpps,
            ingress_mpps: ingress.wall_mpps,
            natv6_mpps: nat.wall_mpps,
        },
        contexts: opts.contexts,
        bytes_per_context: fp.map_or(0, |f| f.fast_path_per_context()),
        bytes_per_context_total: fp.map_or(0, |f| f.total_per_context()),
        workers: opts.workers,
        size: opts.size,
        seconds: opts.seconds,
        rounds,
        pinned: all.iter().all(|m| m.pinned),
        preempted_bursts: all.iter().map(|m| m.preempted).sum(),
        unforwarded: all.map(|m| m.unforwarded),
        punt_flood_mpps: flood.mpps,
        punt_flood_ratio: if ingress.mpps > 0.0 {
            flood.mpps / ingress.mpps
        } else {
            0.0
        },
        punt_flood_unforwarded: flood.unforwarded,
    })
}

/// What [`run_inline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InlineRun {
    /// Frames the worker received.
    pub packets: u64,
    /// Frames it punted or dropped instead of forwarding (0 in a correct run).
    pub unforwarded: u64,
}

#[inline(never)]
fn drive_inline<P: BurstProcessor>(
    mut w: Worker<MemQueue, P>,
    feeder: &mut Feeder,
    bursts: u64,
) -> InlineRun {
    let mut packets = 0u64;
    for _ in 0..bursts {
        feeder.step();
        packets += inline_poll(&mut w) as u64;
    }
    let c = w.stats().fast_path;
    InlineRun {
        packets,
        unforwarded: c.punted.iter().chain(&c.dropped).sum(),
    }
}

/// One worker poll, kept out of line so `valgrind --tool=callgrind
/// --toggle-collect='*inline_poll*'` counts exactly the worker's work (as `Worker::poll_timed`
/// times it, plus the loop's few instructions).
#[inline(never)]
fn inline_poll<Q: PortQueue, P: BurstProcessor>(w: &mut Worker<Q, P>) -> usize {
    w.poll()
}

/// The benchmark's modes by name, for [`run_inline`].
pub const MODES: [&str; 4] = ["null", "egress", "ingress", "natv6"];

/// Runs one mode (`null`, `egress`, `ingress` or `natv6`: [`MODES`]) with the feeder and one
/// worker taking turns on the calling thread for `bursts` worker polls: the same frames,
/// table and code as [`run_pipeline_bench`], without threads or timing, for instruction
/// counts under callgrind/cachegrind (see BENCHMARKS.md).
pub fn run_inline(opts: &BenchOptions, mode: &str, bursts: u64) -> Result<InlineRun, SetupError> {
    let m = match mode {
        "null" => Mode::Null,
        "egress" => Mode::Egress,
        "ingress" => Mode::Ingress,
        "natv6" => Mode::NatOut,
        _ => {
            return Err(SetupError::Config(ConfigError {
                field: "mode".into(),
                reason: "expected null, egress, ingress or natv6",
            }))
        }
    };
    let opts = BenchOptions {
        workers: 1,
        ..*opts
    };
    let (cfg, site, table, neighbors, status) = bench_site(&opts)?;
    let h = Harness {
        opts,
        cfg,
        site,
        table: &table,
        neighbors,
        status,
        cores: Vec::new(),
    };
    h.inline(m, bursts)
}

/// Windows per mode at most.
const ROUNDS: usize = 5;

/// One mode's figures over its windows.
struct Summary {
    mpps: f64,
    ns_per_packet: f64,
    avg_burst: f64,
    wall_mpps: f64,
    pinned: bool,
    preempted: u64,
    unforwarded: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Summary {
    fn of(runs: &[ModeResult]) -> Self {
        Summary {
            mpps: median(runs.iter().map(ModeResult::mpps).collect()),
            ns_per_packet: median(runs.iter().map(ModeResult::ns_per_packet).collect()),
            avg_burst: median(runs.iter().map(ModeResult::avg_burst).collect()),
            wall_mpps: median(runs.iter().map(|r| r.wall_pps / 1e6).collect()),
            pinned: runs.iter().all(|r| r.pinned),
            preempted: runs.iter().flat_map(|r| &r.busy).map(|b| b.outliers).sum(),
            unforwarded: runs.iter().map(|r| r.unforwarded).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_distinct_47_bit_values() {
        let mut seen = std::collections::HashSet::new();
        for i in 1..100_000u64 {
            let t = mix47(i, 0x9e37_79b9_7f4a_7c15);
            assert!(t <= ContextTag::MASK);
            assert!(seen.insert(t), "collision at {i}");
        }
    }

    #[test]
    fn short_run_reports_every_mode() {
        let opts = BenchOptions {
            workers: 1,
            contexts: 2000,
            size: 128,
            seconds: 0.05,
            pin: false,
        };
        let r = run_pipeline_bench(&opts).unwrap();
        for (name, v) in [
            ("null", r.null_mpps),
            ("egress", r.egress_mpps),
            ("ingress", r.ingress_mpps),
            ("natv6", r.natv6_mpps),
        ] {
            assert!(v > 0.0, "{name} measured nothing: {r:?}");
        }
        assert!(r.wall.egress_mpps > 0.0 && r.wall.ingress_mpps > 0.0);
        assert_eq!(
            r.unforwarded, [0; 4],
            "every frame is translated and forwarded"
        );
        assert!((r.egress_ratio - r.egress_mpps / r.null_mpps).abs() < 1e-9);
        assert!(r.bytes_per_context > 0 && r.bytes_per_context <= r.bytes_per_context_total);
        let json = serde_json::to_value(&r).unwrap();
        for k in REPORT_FIGURES.iter().chain(&["workers", "size"]) {
            assert!(json.get(k).is_some(), "missing {k}");
        }
        assert_eq!(json["contexts"], 2000);
        assert!(run_pipeline_bench(&BenchOptions { size: 60, ..opts }).is_err());
    }

    #[test]
    fn punt_flood_punts_unknown_tags_and_reports_its_ratio() {
        let opts = BenchOptions {
            workers: 1,
            contexts: 2000,
            size: 128,
            seconds: 0.05,
            pin: false,
        };
        let r = run_pipeline_bench(&opts).unwrap();
        assert!(r.punt_flood_mpps > 0.0, "{r:?}");
        assert!(r.punt_flood_unforwarded > 0, "unknown tags were punted");
        assert!((r.punt_flood_ratio - r.punt_flood_mpps / r.ingress_mpps).abs() < 1e-9);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("punt_flood_ratio").is_some());
    }
}
