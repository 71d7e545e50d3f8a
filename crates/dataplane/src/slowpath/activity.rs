//! What the slow path learns by polling rather than by punts:
//!
//! - **payload activity**: the workers count every translated packet per context (table
//!   counters, no contention); the slow path sums them now and then and reports to the engine
//!   only the contexts whose counters moved. That feeds REAP (payload sent / received,
//!   [RFC 5534 §6](https://www.rfc-editor.org/rfc/rfc5534#section-6)) and keeps busy contexts
//!   out of the engine's idle garbage collection
//!   ([RFC 5533 §9](https://www.rfc-editor.org/rfc/rfc5533#section-9)).
//! - **link state** of the provider ports: [`LinkWatch`] wraps a worker's queue and copies
//!   [`PortQueue::link_up`] into a shared [`LinkState`] now and then (never per packet) when
//!   that is a memory read (in-memory links, DPDK); when it is a system call (AF_PACKET's
//!   interface-flags ioctl and drop-count getsockopt) the queue hands a
//!   [`LinkProbe`](crate::io::LinkProbe) to the [`LinkState`] instead, and the slow path's
//!   housekeeping runs it ([`LinkState::poll_probes`]): workers make no system call beyond
//!   receive and transmit. The slow path turns changes into `set_provider_state`, so REAP
//!   moves contexts off a dead link at once instead of waiting for the Send Timeout.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shim6::ContextEngine;
use table::TableWriter;

use super::events::TableSync;
use crate::io::{LinkProbe, PortId, PortQueue, QueueStats};
use crate::worker::TICKS_PER_SECOND;

const UNKNOWN: u8 = 0;
const DOWN: u8 = 1;
const UP: u8 = 2;

/// Per-port queue counters summed over the workers' queues: each [`LinkWatch`] adds what its
/// queue counted since its last publication (every [`LINK_POLL`] at most), so the operator
/// API reads them at scrape time without asking a worker.
#[derive(Debug, Default)]
struct PortCells {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    tx_dropped: AtomicU64,
}

/// The link state and queue counters of every port, as last published by the workers
/// (index = port id).
#[derive(Clone)]
pub struct LinkState {
    flags: Arc<[AtomicU8]>,
    cells: Arc<[PortCells]>,
    /// Probes of the ports whose state costs a system call to read, run by the slow path
    /// (never by a worker: the lock is only taken at setup and by the slow path).
    probes: Arc<Mutex<Vec<(PortId, LinkProbe)>>>,
}

impl std::fmt::Debug for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkState")
            .field("ports", &self.flags.len())
            .finish_non_exhaustive()
    }
}

impl LinkState {
    /// Room for ports `0..ports`, all unknown.
    pub fn new(ports: usize) -> Self {
        Self {
            flags: (0..ports).map(|_| AtomicU8::new(UNKNOWN)).collect(),
            cells: (0..ports).map(|_| PortCells::default()).collect(),
            probes: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Hands the state of `port` to `probe`, run by [`LinkState::poll_probes`].
    pub fn add_probe(&self, port: PortId, probe: LinkProbe) {
        if let Ok(mut p) = self.probes.lock() {
            p.push((port, probe));
        }
    }

    /// Number of probes registered (ports whose state the slow path reads).
    pub fn probes(&self) -> usize {
        self.probes.lock().map_or(0, |p| p.len())
    }

    /// Runs every probe once: records each port's link state and adds the kernel's receive
    /// drops to its counters. The slow path's housekeeping calls it (every 50 ms by default).
    pub fn poll_probes(&self) {
        let Ok(mut probes) = self.probes.lock() else {
            return;
        };
        for (port, probe) in probes.iter_mut() {
            let r = probe();
            self.set(*port, r.up);
            if let Some(c) = self.cells.get(usize::from(port.0)) {
                c.rx_dropped.fetch_add(r.rx_dropped, Ordering::Relaxed);
            }
        }
    }

    /// Number of ports this state has room for.
    pub fn ports(&self) -> usize {
        self.flags.len()
    }

    /// `port`'s queue counters summed over the workers, as of their last publication
    /// (at most [`LINK_POLL`] old while traffic flows).
    pub fn counters(&self, port: PortId) -> Option<QueueStats> {
        let c = self.cells.get(usize::from(port.0))?;
        Some(QueueStats {
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
            rx_dropped: c.rx_dropped.load(Ordering::Relaxed),
            tx_dropped: c.tx_dropped.load(Ordering::Relaxed),
        })
    }

    /// Adds what a queue of `port` counted since `before`.
    fn add_counters(&self, port: PortId, now: &QueueStats, before: &QueueStats) {
        let Some(c) = self.cells.get(usize::from(port.0)) else {
            return;
        };
        let add = |cell: &AtomicU64, a: u64, b: u64| {
            cell.fetch_add(a.wrapping_sub(b), Ordering::Relaxed);
        };
        add(&c.rx_packets, now.rx_packets, before.rx_packets);
        add(&c.rx_bytes, now.rx_bytes, before.rx_bytes);
        add(&c.tx_packets, now.tx_packets, before.tx_packets);
        add(&c.tx_bytes, now.tx_bytes, before.tx_bytes);
        add(&c.rx_dropped, now.rx_dropped, before.rx_dropped);
        add(&c.tx_dropped, now.tx_dropped, before.tx_dropped);
    }

    /// Whether `port`'s link is up; `None` when no queue could tell (yet).
    pub fn get(&self, port: PortId) -> Option<bool> {
        match self.flags.get(usize::from(port.0))?.load(Ordering::Relaxed) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    /// Records `port`'s state (ports out of range are ignored).
    pub fn set(&self, port: PortId, up: Option<bool>) {
        if let Some(f) = self.flags.get(usize::from(port.0)) {
            let v = match up {
                Some(true) => UP,
                Some(false) => DOWN,
                None => UNKNOWN,
            };
            f.store(v, Ordering::Relaxed);
        }
    }
}

/// `rx_burst` calls between two looks at the clock (a power of two).
const CHECK_EVERY: u32 = 256;
/// Least time between two reads of the link state.
const LINK_POLL: Duration = Duration::from_millis(50);

/// A port queue that also publishes its link state into a [`LinkState`]: at most every
/// [`LINK_POLL`], checked every few hundred receive calls, so the per-packet cost is one
/// counter increment.
#[derive(Debug)]
pub struct LinkWatch<Q> {
    inner: Q,
    port: PortId,
    state: LinkState,
    calls: u32,
    last: Option<Instant>,
    published: QueueStats,
    /// The slow path reads this port's link state (the queue gave a probe).
    probed: bool,
}

impl<Q: PortQueue> LinkWatch<Q> {
    /// Wraps `inner`, the queue of `port`.
    pub fn new(inner: Q, port: PortId, state: LinkState) -> Self {
        // Setup runs on the thread building the pipeline, not the worker: one direct read.
        state.set(port, inner.link_up());
        let probe = inner.link_probe();
        let probed = probe.is_some();
        if let Some(p) = probe {
            state.add_probe(port, p);
        }
        let published = inner.local_stats();
        state.add_counters(port, &published, &QueueStats::default());
        Self {
            inner,
            port,
            state,
            calls: 0,
            last: None,
            published,
            probed,
        }
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The wrapped queue, mutably.
    pub fn inner_mut(&mut self) -> &mut Q {
        &mut self.inner
    }

    /// Unwraps the queue.
    pub fn into_inner(self) -> Q {
        self.inner
    }

    #[inline]
    fn maybe_publish(&mut self) {
        self.calls = self.calls.wrapping_add(1);
        if self.calls & (CHECK_EVERY - 1) != 0 {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < LINK_POLL)
        {
            return;
        }
        self.last = Some(now);
        if !self.probed {
            self.state.set(self.port, self.inner.link_up());
        }
        let stats = self.inner.local_stats();
        self.state.add_counters(self.port, &stats, &self.published);
        self.published = stats;
    }
}

impl<Q: PortQueue> PortQueue for LinkWatch<Q> {
    type Buf = Q::Buf;

    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<Self::Buf>, max: usize) -> usize {
        self.maybe_publish();
        self.inner.rx_burst(out, max)
    }

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Self::Buf>) -> usize {
        self.inner.tx_burst(pkts)
    }

    #[inline]
    fn alloc(&mut self) -> Option<Self::Buf> {
        self.inner.alloc()
    }

    #[inline]
    fn free(&mut self, buf: Self::Buf) {
        self.inner.free(buf);
    }

    fn stats(&self) -> QueueStats {
        self.inner.stats()
    }

    fn link_up(&self) -> Option<bool> {
        self.inner.link_up()
    }

    fn attach_thread(&mut self) {
        self.inner.attach_thread();
    }

    fn detach_thread(&mut self) {
        self.inner.detach_thread();
    }

    fn link_probe(&self) -> Option<LinkProbe> {
        self.inner.link_probe()
    }

    fn local_stats(&self) -> QueueStats {
        self.inner.local_stats()
    }
}

/// The instant of an activity tick (ticks count 1/[`TICKS_PER_SECOND`] s from `epoch`; 0 is
/// "never").
pub(crate) fn tick_instant(epoch: Instant, tick: u32) -> Option<Instant> {
    if tick == 0 {
        return None;
    }
    let nanos = u64::from(tick) * (1_000_000_000 / u64::from(TICKS_PER_SECOND));
    epoch.checked_add(Duration::from_nanos(nanos))
}

/// Reports to the engine every context whose counters moved since the last report; returns
/// how many were reported.
pub(crate) fn report_activity(
    sync: &mut TableSync,
    table: &TableWriter,
    engine: &mut ContextEngine,
    now: Instant,
    epoch: Instant,
) -> usize {
    let mut reported = 0;
    for (tag, t) in sync.tracked_mut() {
        let Some(a) = table.activity(t.slot) else {
            continue;
        };
        let rx_moved = a.rx_pkts != t.last.rx_pkts;
        let tx_moved = a.tx_pkts != t.last.tx_pkts;
        if !(rx_moved || tx_moved) {
            continue;
        }
        t.last = a;
        let last_rx = if rx_moved {
            tick_instant(epoch, a.last_rx).map(|i| i.min(now))
        } else {
            None
        };
        let last_tx = if tx_moved {
            tick_instant(epoch, a.last_tx).map(|i| i.min(now))
        } else {
            None
        };
        engine.payload_activity(now, *tag, last_rx, last_tx);
        reported += 1;
    }
    reported
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::mem::{pair, MemConfig};
    use crate::backend::BufPool;

    #[test]
    fn link_watch_publishes_the_queue_state() {
        let pool = Arc::new(BufPool::with_count(8));
        let (a, _b) = pair(&pool, &MemConfig::new(1)).unwrap();
        let cable = a.link().clone();
        let q = a.into_queues().pop().unwrap();
        let state = LinkState::new(4);
        assert_eq!(state.get(PortId(2)), None);
        let mut w = LinkWatch::new(q, PortId(2), state.clone());
        assert_eq!(state.get(PortId(2)), Some(true));
        cable.set_up(false);
        let mut out = Vec::new();
        for _ in 0..CHECK_EVERY {
            w.rx_burst(&mut out, 32);
        }
        assert_eq!(state.get(PortId(2)), Some(false));
        // Out-of-range ports are ignored.
        state.set(PortId(9), Some(true));
        assert_eq!(state.get(PortId(9)), None);
        assert!(state.counters(PortId(9)).is_none());
        assert_eq!(state.counters(PortId(2)), Some(w.stats()));
    }

    /// A queue whose link state costs a "system call": it hands out a probe, and counts the
    /// direct `link_up` reads (which only setup may make).
    struct Probed {
        inner: crate::backend::mem::MemQueue,
        direct_reads: Arc<AtomicU64>,
        up: Arc<std::sync::atomic::AtomicBool>,
    }

    impl PortQueue for Probed {
        type Buf = crate::buf::HeapBuf;
        fn rx_burst(&mut self, out: &mut Vec<Self::Buf>, max: usize) -> usize {
            self.inner.rx_burst(out, max)
        }
        fn tx_burst(&mut self, pkts: &mut Vec<Self::Buf>) -> usize {
            self.inner.tx_burst(pkts)
        }
        fn alloc(&mut self) -> Option<Self::Buf> {
            self.inner.alloc()
        }
        fn free(&mut self, buf: Self::Buf) {
            self.inner.free(buf);
        }
        fn stats(&self) -> QueueStats {
            self.inner.stats()
        }
        fn link_up(&self) -> Option<bool> {
            self.direct_reads.fetch_add(1, Ordering::Relaxed);
            Some(self.up.load(Ordering::Relaxed))
        }
        fn link_probe(&self) -> Option<LinkProbe> {
            let up = Arc::clone(&self.up);
            Some(Box::new(move || crate::io::LinkReport {
                up: Some(up.load(Ordering::Relaxed)),
                rx_dropped: 3,
            }))
        }
    }

    /// A queue with a probe is never asked for its link state by the worker's `LinkWatch`:
    /// only setup reads it once, and the slow path's `poll_probes` does the rest.
    #[test]
    fn probed_link_state_is_read_off_the_worker() {
        let pool = Arc::new(BufPool::with_count(8));
        let (a, _b) = pair(&pool, &MemConfig::new(1)).unwrap();
        let direct_reads = Arc::new(AtomicU64::new(0));
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let q = Probed {
            inner: a.into_queues().pop().unwrap(),
            direct_reads: Arc::clone(&direct_reads),
            up: Arc::clone(&up),
        };
        let state = LinkState::new(2);
        let mut w = LinkWatch::new(q, PortId(1), state.clone());
        assert_eq!(state.get(PortId(1)), Some(true));
        assert_eq!(state.probes(), 1);
        assert_eq!(direct_reads.load(Ordering::Relaxed), 1, "setup reads once");
        up.store(false, Ordering::Relaxed);
        // Two publication rounds on the worker, more than LINK_POLL apart.
        let mut out = Vec::new();
        for round in 0..2 {
            if round == 1 {
                std::thread::sleep(LINK_POLL + Duration::from_millis(10));
            }
            for _ in 0..CHECK_EVERY {
                w.rx_burst(&mut out, 32);
            }
        }
        assert_eq!(
            direct_reads.load(Ordering::Relaxed),
            1,
            "the worker read the link"
        );
        assert_eq!(state.get(PortId(1)), Some(true), "not polled yet");
        state.poll_probes();
        assert_eq!(state.get(PortId(1)), Some(false));
        assert_eq!(state.counters(PortId(1)).map(|c| c.rx_dropped), Some(3));
        state.poll_probes();
        assert_eq!(state.counters(PortId(1)).map(|c| c.rx_dropped), Some(6));
    }

    #[test]
    fn link_watch_adds_its_queue_counters_to_the_port() {
        let pool = Arc::new(BufPool::with_count(64));
        let (a, b) = pair(&pool, &MemConfig::new(1)).unwrap();
        let mut far = b.into_queues().pop().unwrap();
        let q = a.into_queues().pop().unwrap();
        let state = LinkState::new(2);
        let mut w = LinkWatch::new(q, PortId(1), state.clone());
        let mut frames: Vec<_> = (0..5).filter_map(|_| far.alloc()).collect();
        for f in &mut frames {
            f.set_len(100).unwrap();
        }
        assert_eq!(far.tx_burst(&mut frames), 5);
        let mut out = Vec::new();
        let mut got = 0;
        for _ in 0..CHECK_EVERY {
            got += w.rx_burst(&mut out, 32);
        }
        assert_eq!(got, 5);
        std::thread::sleep(LINK_POLL);
        for _ in 0..CHECK_EVERY {
            w.rx_burst(&mut out, 32);
        }
        let c = state.counters(PortId(1)).unwrap();
        assert_eq!((c.rx_packets, c.rx_bytes), (5, 500));
    }

    #[test]
    fn ticks_map_to_instants() {
        let e = Instant::now();
        assert_eq!(tick_instant(e, 0), None);
        assert_eq!(tick_instant(e, 32), Some(e + Duration::from_secs(2)));
        assert_eq!(tick_instant(e, 1), Some(e + Duration::from_micros(62_500)));
    }
}
