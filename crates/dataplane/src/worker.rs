//! A worker: one thread (pinned with `core_affinity` when the configuration names a core) that
//! owns one queue per port and busy-polls them: receive a burst, decide it
//! ([`BurstProcessor`]: the fast path, or the null forwarder of the benchmark), transmit per
//! port, punt to the slow path, then send what the slow path injected. Run to completion, no
//! allocation, no lock, no syscall beyond the backend's, no log.
//!
//! Counters are plain integers inside the worker, published every few loop iterations (and on
//! exit) into relaxed atomics that [`WorkerHandle::stats`] reads from any thread. A heartbeat
//! counter moves on every iteration, so a supervisor can tell a stuck worker from an idle one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::buf::PacketBuf;
use crate::fastpath::{
    DropReason, FastPath, FastPathCounters, Path, PuntReason, SetupError, Verdict,
};
use crate::io::{PortId, PortQueue, BURST};
use crate::punt::SlowPathLink;

/// Resolution of the activity ticks stamped on contexts (table `last_rx` / `last_tx`).
pub const TICKS_PER_SECOND: u32 = 16;

/// Loop iterations between two publications of the counters (a power of two): often enough
/// for an operator (microseconds), rare enough to cost nothing per packet.
const PUBLISH_EVERY: u64 = 64;

/// Something that decides a whole burst in place.
pub trait BurstProcessor: Send {
    /// Decides `pkts` (received on `rx_port`), translating forwards in place;
    /// `verdicts.len() >= pkts.len()`.
    fn process<B: PacketBuf>(&mut self, rx_port: PortId, pkts: &mut [B], verdicts: &mut [Verdict]);
    /// Sets the activity clock (ticks of 1/[`TICKS_PER_SECOND`] s since the shared epoch).
    fn set_now(&mut self, _tick: u32) {}
    /// Counters so far.
    fn counters(&self) -> FastPathCounters;
}

impl BurstProcessor for FastPath {
    #[inline]
    fn process<B: PacketBuf>(&mut self, rx_port: PortId, pkts: &mut [B], verdicts: &mut [Verdict]) {
        self.process_burst(rx_port, pkts, verdicts);
    }

    fn set_now(&mut self, tick: u32) {
        FastPath::set_now(self, tick);
    }

    fn counters(&self) -> FastPathCounters {
        *FastPath::counters(self)
    }
}

/// Forwards every frame untouched from each port to its configured peer port: the benchmark's
/// baseline, same harness as the fast path minus the per-packet work.
#[derive(Debug, Clone)]
pub struct NullForwarder {
    to: Vec<Option<PortId>>,
    counters: FastPathCounters,
}

impl NullForwarder {
    /// Frames received on `a` go out on `b` and the other way round, for each `(a, b)`.
    pub fn new(pairs: &[(PortId, PortId)]) -> Self {
        let max = pairs.iter().map(|(a, b)| a.0.max(b.0)).max().unwrap_or(0);
        let mut to = vec![None; usize::from(max) + 1];
        for &(a, b) in pairs {
            to[usize::from(a.0)] = Some(b);
            to[usize::from(b.0)] = Some(a);
        }
        Self {
            to,
            counters: FastPathCounters::default(),
        }
    }
}

impl BurstProcessor for NullForwarder {
    #[inline]
    fn process<B: PacketBuf>(&mut self, rx_port: PortId, pkts: &mut [B], verdicts: &mut [Verdict]) {
        let v = match self.to.get(usize::from(rx_port.0)).copied().flatten() {
            Some(p) => Verdict::Forward(p),
            None => Verdict::Drop(DropReason::UnknownPort),
        };
        for slot in verdicts.iter_mut().take(pkts.len()) {
            *slot = v;
        }
        self.counters.packets += pkts.len() as u64;
        self.counters.count(&v);
    }

    fn counters(&self) -> FastPathCounters {
        self.counters
    }
}

/// A worker's counters as read from another thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerStats {
    /// Fast-path counters (packets, forwards per path, punts and drops per reason).
    pub fast_path: FastPathCounters,
    /// Punts that did not reach the slow path (queue or free list full), per reason kind.
    pub punt_dropped: [u64; PuntReason::COUNT],
    /// Forwards to a port this worker has no queue for.
    pub no_tx_queue: u64,
    /// Injected frames sent.
    pub injected: u64,
    /// Injected frames dropped (no queue for the port, no free buffer, too long).
    pub inject_dropped: u64,
    /// Non-empty receive bursts.
    pub bursts: u64,
    /// Loop iterations.
    pub heartbeat: u64,
    /// Whether the thread is pinned to its configured core.
    pub pinned: bool,
}

impl WorkerStats {
    /// Frames forwarded over all paths.
    pub fn forwarded(&self) -> u64 {
        self.fast_path.forwarded.iter().sum()
    }

    /// Punts of one lane that did not reach the slow path (its ring or buffers full).
    pub fn punt_dropped_lane(&self, lane: crate::punt::PuntLane) -> u64 {
        self.punt_dropped
            .iter()
            .enumerate()
            .filter(|(i, _)| crate::punt::PuntLane::of_reason_index(*i) == lane)
            .map(|(_, n)| n)
            .sum()
    }
}

const N_FWD: usize = Path::COUNT;
const N_PUNT: usize = PuntReason::COUNT;
const N_DROP: usize = crate::fastpath::DropReason::COUNT;
/// packets, forwarded, punted, dropped, punt_dropped, no_tx_queue, injected, inject_dropped,
/// bursts.
const N_WORDS: usize = 1 + N_FWD + N_PUNT + N_DROP + N_PUNT + 4;

/// What a worker shares with the rest of the process.
#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    heartbeat: AtomicU64,
    pinned: AtomicBool,
    words: [AtomicU64; N_WORDS],
}

impl Shared {
    fn new() -> Self {
        Self {
            stop: AtomicBool::new(false),
            heartbeat: AtomicU64::new(0),
            pinned: AtomicBool::new(false),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn publish(&self, c: &FastPathCounters, l: &Local) {
        let vals = [c.packets]
            .into_iter()
            .chain(c.forwarded)
            .chain(c.punted)
            .chain(c.dropped)
            .chain(l.punt_dropped)
            .chain([l.no_tx_queue, l.injected, l.inject_dropped, l.bursts]);
        for (w, v) in self.words.iter().zip(vals) {
            w.store(v, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> WorkerStats {
        // Acquire first: the counters read below are at least as new as this beat.
        let heartbeat = self.heartbeat.load(Ordering::Acquire);
        let mut v = [0u64; N_WORDS];
        for (x, w) in v.iter_mut().zip(&self.words) {
            *x = w.load(Ordering::Relaxed);
        }
        let mut s = WorkerStats {
            fast_path: FastPathCounters {
                packets: v[0],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut i = 1;
        for (dst, n) in [
            (&mut s.fast_path.forwarded[..], N_FWD),
            (&mut s.fast_path.punted[..], N_PUNT),
            (&mut s.fast_path.dropped[..], N_DROP),
            (&mut s.punt_dropped[..], N_PUNT),
        ] {
            dst.copy_from_slice(&v[i..i + n]);
            i += n;
        }
        s.no_tx_queue = v[i];
        s.injected = v[i + 1];
        s.inject_dropped = v[i + 2];
        s.bursts = v[i + 3];
        s.heartbeat = heartbeat;
        s.pinned = self.pinned.load(Ordering::Relaxed);
        s
    }
}

/// Counters the worker loop keeps besides the fast path's.
#[derive(Debug, Clone, Copy, Default)]
struct Local {
    punt_dropped: [u64; N_PUNT],
    no_tx_queue: u64,
    injected: u64,
    inject_dropped: u64,
    bursts: u64,
}

/// Time a worker spent on non-empty bursts, and the packets in them ([`Worker::poll_timed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusyTime {
    /// Sum of burst durations.
    pub busy: Duration,
    /// Packets in those bursts.
    pub packets: u64,
    /// Bursts timed.
    pub bursts: u64,
    /// Bursts that took longer than [`BusyTime::OUTLIER`], left out of `busy` and `packets`.
    pub outliers: u64,
    /// Packets in the outlier bursts.
    pub outlier_packets: u64,
}

impl BusyTime {
    /// A burst of at most 32 packets takes a few microseconds; one that takes longer than
    /// this was preempted (other processes on a 2-core box) and says nothing about the
    /// worker's cost.
    pub const OUTLIER: Duration = Duration::from_micros(200);

    #[inline]
    fn add(&mut self, dt: Duration, n: usize) {
        if dt > Self::OUTLIER {
            self.outliers += 1;
            self.outlier_packets += n as u64;
        } else {
            self.busy += dt;
            self.packets += n as u64;
            self.bursts += 1;
        }
    }

    /// Packets per second of busy time (0 when nothing was measured).
    pub fn rate(&self) -> f64 {
        let s = self.busy.as_secs_f64();
        if s > 0.0 {
            self.packets as f64 / s
        } else {
            0.0
        }
    }
}

/// Static settings of one worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Worker number (names the thread).
    pub index: usize,
    /// Core to pin to, or `None` (tests run unpinned).
    pub core: Option<usize>,
    /// Frames per receive burst, 1..=[`BURST`].
    pub burst: usize,
    /// Start of the activity clock, shared by all workers and the slow path.
    pub epoch: Instant,
}

/// Activity ticks in `e` (1/[`TICKS_PER_SECOND`] s each).
fn ticks(e: Duration) -> u32 {
    let t = e.as_secs().saturating_mul(u64::from(TICKS_PER_SECOND))
        + u64::from(e.subsec_nanos() / (1_000_000_000 / TICKS_PER_SECOND));
    // Wraps after 8.5 years at 16 ticks/s; 0 stays "never" only at the very start.
    t as u32
}

/// One worker: its queues (indexed by port id), its burst processor and its link to the slow
/// path.
pub struct Worker<Q: PortQueue, P: BurstProcessor> {
    cfg: WorkerConfig,
    ports: Vec<Option<Q>>,
    proc: P,
    link: Arc<SlowPathLink>,
    shared: Arc<Shared>,
    rx: Vec<Q::Buf>,
    tx: Vec<Vec<Q::Buf>>,
    verdicts: [Verdict; BURST],
    local: Local,
    iterations: u64,
    /// Set by [`Worker::set_clock`]: the activity clock is driven by the caller (replay in
    /// simulated time), not read from the system clock.
    manual_clock: bool,
}

impl<Q: PortQueue, P: BurstProcessor> std::fmt::Debug for Worker<Q, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.cfg.index)
            .finish_non_exhaustive()
    }
}

impl<Q: PortQueue, P: BurstProcessor> Worker<Q, P> {
    /// A worker owning `queues` (one per port it serves) and deciding with `proc`.
    pub fn new(
        cfg: WorkerConfig,
        queues: Vec<(PortId, Q)>,
        proc: P,
        link: Arc<SlowPathLink>,
    ) -> Self {
        let max = queues
            .iter()
            .map(|(p, _)| usize::from(p.0))
            .max()
            .unwrap_or(0);
        let mut ports: Vec<Option<Q>> = (0..=max).map(|_| None).collect();
        for (p, q) in queues {
            ports[usize::from(p.0)] = Some(q);
        }
        let burst = cfg.burst.clamp(1, BURST);
        Self {
            cfg: WorkerConfig { burst, ..cfg },
            tx: (0..=max).map(|_| Vec::with_capacity(BURST)).collect(),
            ports,
            proc,
            link,
            shared: Arc::new(Shared::new()),
            rx: Vec::with_capacity(BURST),
            verdicts: [Verdict::Drop(DropReason::Malformed); BURST],
            local: Local::default(),
            iterations: 0,
            manual_clock: false,
        }
    }

    /// The queue of `port`, if this worker has one (tests inspect them after a run).
    pub fn queue_mut(&mut self, port: PortId) -> Option<&mut Q> {
        self.ports
            .get_mut(usize::from(port.0))
            .and_then(Option::as_mut)
    }

    /// The burst processor.
    pub fn processor(&self) -> &P {
        &self.proc
    }

    /// Counters, published now.
    pub fn stats(&self) -> WorkerStats {
        self.publish();
        self.shared.snapshot()
    }

    fn publish(&self) {
        self.shared.publish(&self.proc.counters(), &self.local);
    }

    /// Drives the activity clock from the caller from now on (`pshim6 replay` runs in
    /// simulated time): `since_epoch` is the time since [`WorkerConfig::epoch`].
    pub fn set_clock(&mut self, since_epoch: Duration) {
        self.manual_clock = true;
        self.proc.set_now(ticks(since_epoch));
    }

    fn tick(&self) -> u32 {
        ticks(self.cfg.epoch.elapsed())
    }

    /// One pass over every port: receive a burst, decide, transmit, punt; then send up to
    /// one burst of injected frames. Returns the number of frames received.
    pub fn poll(&mut self) -> usize {
        if self.iterations & 15 == 0 && !self.manual_clock {
            let t = self.tick();
            self.proc.set_now(t);
        }
        let mut total = 0;
        for i in 0..self.ports.len() {
            total += self.poll_port(i);
        }
        self.inject();
        self.iterations += 1;
        if self.iterations & (PUBLISH_EVERY - 1) == 0 {
            self.publish();
        }
        // Release: whoever sees this beat also sees the counters published before it.
        self.shared
            .heartbeat
            .store(self.iterations, Ordering::Release);
        total
    }

    /// [`Worker::poll`] that also times each non-empty burst (receive, decide, transmit) into
    /// `busy`: the benchmark's measure of the worker's own per-packet cost, blind to time
    /// spent waiting for traffic. A burst longer than [`BusyTime::OUTLIER`] (the thread was
    /// preempted mid-burst) is counted apart.
    pub fn poll_timed(&mut self, busy: &mut BusyTime) -> usize {
        if self.iterations & 15 == 0 && !self.manual_clock {
            let t = self.tick();
            self.proc.set_now(t);
        }
        let mut total = 0;
        for i in 0..self.ports.len() {
            let t0 = Instant::now();
            let n = self.poll_port(i);
            if n > 0 {
                busy.add(t0.elapsed(), n);
                total += n;
            }
        }
        self.inject();
        self.iterations += 1;
        if self.iterations & (PUBLISH_EVERY - 1) == 0 {
            self.publish();
        }
        self.shared
            .heartbeat
            .store(self.iterations, Ordering::Release);
        total
    }

    #[inline]
    fn poll_port(&mut self, i: usize) -> usize {
        let Some(q) = self.ports.get_mut(i).and_then(Option::as_mut) else {
            return 0;
        };
        let n = q.rx_burst(&mut self.rx, self.cfg.burst);
        if n == 0 {
            return 0;
        }
        self.local.bursts += 1;
        // i came from a Vec indexed by u16 port ids.
        let rx_port = PortId(i as u16);
        let n = self.rx.len().min(BURST);
        self.proc
            .process(rx_port, &mut self.rx[..n], &mut self.verdicts[..n]);
        for (buf, v) in self.rx.drain(..).zip(self.verdicts.iter()) {
            match *v {
                Verdict::Forward(p) => match self.tx.get_mut(usize::from(p.0)) {
                    Some(out)
                        if self
                            .ports
                            .get(usize::from(p.0))
                            .is_some_and(Option::is_some) =>
                    {
                        out.push(buf)
                    }
                    _ => {
                        self.local.no_tx_queue += 1;
                        if let Some(q) = self.ports.get_mut(i).and_then(Option::as_mut) {
                            q.free(buf);
                        }
                    }
                },
                Verdict::Punt(r) => {
                    if self.link.punt(r, rx_port, buf.as_ref()).is_err() {
                        self.local.punt_dropped[r.index()] += 1;
                    }
                    if let Some(q) = self.ports.get_mut(i).and_then(Option::as_mut) {
                        q.free(buf);
                    }
                }
                Verdict::Drop(_) => {
                    if let Some(q) = self.ports.get_mut(i).and_then(Option::as_mut) {
                        q.free(buf);
                    }
                }
            }
        }
        self.flush();
        n
    }

    /// Transmits every non-empty per-port tx vector.
    #[inline]
    fn flush(&mut self) {
        for (out, q) in self.tx.iter_mut().zip(self.ports.iter_mut()) {
            if !out.is_empty() {
                if let Some(q) = q {
                    q.tx_burst(out);
                }
            }
        }
    }

    /// Copies up to one burst of injected frames into port buffers and sends them.
    fn inject(&mut self) {
        let mut any = false;
        for _ in 0..self.cfg.burst {
            let Some(inj) = self.link.pop_inject() else {
                break;
            };
            let p = usize::from(inj.port.0);
            let sent = match (
                self.ports.get_mut(p).and_then(Option::as_mut),
                self.tx.get_mut(p),
            ) {
                (Some(q), Some(out)) => match q.alloc() {
                    Some(mut buf) => {
                        if buf.reset_from(inj.frame.as_slice()).is_ok() {
                            out.push(buf);
                            true
                        } else {
                            q.free(buf);
                            false
                        }
                    }
                    None => false,
                },
                _ => false,
            };
            if sent {
                self.local.injected += 1;
                any = true;
            } else {
                self.local.inject_dropped += 1;
            }
            self.link.recycle_inject(inj.frame);
        }
        if any {
            self.flush();
        }
    }

    /// Polls until [`WorkerHandle::stop`] (or [`Worker::stopper`]) is called.
    pub fn run(&mut self) {
        while !self.shared.stop.load(Ordering::Relaxed) {
            if self.poll() == 0 {
                std::hint::spin_loop();
            }
        }
        self.publish();
    }

    /// Tells every queue the calling thread is the one that will poll it
    /// ([`PortQueue::attach_thread`]).
    pub fn attach_thread(&mut self) {
        for q in self.ports.iter_mut().flatten() {
            q.attach_thread();
        }
    }

    /// Undoes [`Worker::attach_thread`] before the thread ends.
    pub fn detach_thread(&mut self) {
        for q in self.ports.iter_mut().flatten() {
            q.detach_thread();
        }
    }

    /// Takes the worker apart, giving back its queues (a benchmark reuses them for its next
    /// run).
    pub fn into_queues(self) -> Vec<(PortId, Q)> {
        self.ports
            .into_iter()
            .enumerate()
            .filter_map(|(i, q)| Some((PortId(u16::try_from(i).ok()?), q?)))
            .collect()
    }

    /// A flag that stops [`Worker::run`] when set.
    pub fn stopper(&self) -> WorkerStopper {
        WorkerStopper {
            shared: self.shared.clone(),
        }
    }

    /// Starts the worker on its own thread, pinned to `cfg.core` if any.
    pub fn spawn(self) -> Result<WorkerHandle<Q, P>, SetupError>
    where
        Q: 'static,
        P: 'static,
    {
        let shared = self.shared.clone();
        let name = format!("pshim6-worker-{}", self.cfg.index);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut w = self;
            if let Some(id) = w.cfg.core {
                let pinned = core_affinity::set_for_current(core_affinity::CoreId { id });
                w.shared.pinned.store(pinned, Ordering::Relaxed);
            }
            w.attach_thread();
            w.run();
            w.detach_thread();
            w
        })?;
        Ok(WorkerHandle { shared, thread })
    }
}

/// Reads a running worker's published counters and heartbeat from another thread (the
/// operator API at scrape time); plain relaxed atomics, nothing the worker waits for.
#[derive(Debug, Clone)]
pub struct WorkerMonitor {
    shared: Arc<Shared>,
}

impl WorkerMonitor {
    /// The latest published counters.
    pub fn stats(&self) -> WorkerStats {
        self.shared.snapshot()
    }

    /// Loop iterations so far (moves even when idle).
    pub fn heartbeat(&self) -> u64 {
        self.shared.heartbeat.load(Ordering::Acquire)
    }
}

/// Stops a worker's [`Worker::run`] loop from another thread.
#[derive(Debug, Clone)]
pub struct WorkerStopper {
    shared: Arc<Shared>,
}

impl WorkerStopper {
    /// Asks the loop to end after its current iteration.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// A running worker thread.
#[derive(Debug)]
pub struct WorkerHandle<Q: PortQueue, P: BurstProcessor> {
    shared: Arc<Shared>,
    thread: JoinHandle<Worker<Q, P>>,
}

impl<Q: PortQueue, P: BurstProcessor> WorkerHandle<Q, P> {
    /// The latest published counters.
    pub fn stats(&self) -> WorkerStats {
        self.shared.snapshot()
    }

    /// Loop iterations so far (moves even when idle).
    pub fn heartbeat(&self) -> u64 {
        self.shared.heartbeat.load(Ordering::Acquire)
    }

    /// A stop flag for this worker.
    pub fn stopper(&self) -> WorkerStopper {
        WorkerStopper {
            shared: self.shared.clone(),
        }
    }

    /// A counter reader for other threads.
    pub fn monitor(&self) -> WorkerMonitor {
        WorkerMonitor {
            shared: self.shared.clone(),
        }
    }

    /// Stops the loop and gives the worker back (its queues, its final counters); `None` if
    /// the thread panicked.
    pub fn stop(self) -> Option<Worker<Q, P>> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok()
    }
}
