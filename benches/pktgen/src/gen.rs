//! The generator on two DPDK ports (feature `dpdk`): one thread sends the mix at a given rate
//! on the inside and outside ports, receives what the proxy forwards, answers its Neighbor
//! Solicitations, and measures; [`Generator::search`] finds the no-drop rate by bisection
//! (RFC 2544 §26.1 style: the highest rate at which every forwarded frame comes back).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dataplane::backend::dpdk::{DpdkQueue, Mbuf, PortSet};
use dataplane::buf::PacketBuf;
use dataplane::io::{PortQueue, BURST};

use crate::mix::{read_stamp, Builder, Class, Mix, Sizes, MAX_SIZE};
use crate::nd::{self, NA_LEN};
use crate::stats::{Counts, Histogram, TrialReport};

/// Port indexes.
const INSIDE: usize = 0;
const OUTSIDE: usize = 1;
/// Rate of the warm-up trials.
const WARM_UP_PPS: f64 = 20_000.0;

/// How to run trials.
#[derive(Debug, Clone)]
pub(crate) struct TrialOptions {
    pub(crate) mix: Mix,
    pub(crate) sizes: Sizes,
    /// Loss fraction a trial may have and still pass.
    pub(crate) tolerance: f64,
    /// Seconds per trial.
    pub(crate) seconds: f64,
    /// Milliseconds to keep receiving after the last frame was sent.
    pub(crate) drain_ms: u64,
}

/// The generator: two queues (inside, outside) and the scratch it builds frames in.
pub(crate) struct Generator {
    queues: [DpdkQueue; 2],
    builder: Builder,
    epoch: Instant,
    scratch: Vec<u8>,
    na: [u8; NA_LEN],
    rx: Vec<Mbuf>,
    tx: [Vec<Mbuf>; 2],
    tx_class: [Vec<Class>; 2],
    lat: Histogram,
    rng: u64,
    k: u64,
    /// Stamp time at which the current trial started: frames stamped earlier are stragglers
    /// of an earlier trial (counted `late`, never `received`).
    trial_start_ns: u64,
    macs: [[u8; 6]; 2],
    // Last: ports stop after the queues are gone.
    _ports: PortSet,
}

impl Generator {
    /// `queues`: the inside and outside queue; `ports` keeps them started.
    pub(crate) fn new(ports: PortSet, queues: [DpdkQueue; 2], builder: Builder) -> Self {
        let macs = [builder.addr.host_mac, builder.addr.router_mac];
        Self {
            queues,
            builder,
            epoch: Instant::now(),
            scratch: vec![0; MAX_SIZE],
            na: [0; NA_LEN],
            rx: Vec::with_capacity(BURST),
            tx: [Vec::with_capacity(BURST), Vec::with_capacity(BURST)],
            tx_class: [Vec::with_capacity(BURST), Vec::with_capacity(BURST)],
            lat: Histogram::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
            k: 0,
            trial_start_ns: 0,
            macs,
            _ports: ports,
        }
    }

    /// Waits until both ports' links are up (memif: the peer process connected).
    pub(crate) fn wait_links(&self, timeout: Duration) -> Result<()> {
        let end = Instant::now() + timeout;
        while !self.queues.iter().all(|q| q.link_up() == Some(true)) {
            if Instant::now() > end {
                bail!("the ports' links did not come up in {timeout:?} (is the peer running?)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    #[inline]
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Receives on both ports: stamps counted, solicitations answered.
    fn service_rx(&mut self, c: &mut Counts) {
        for port in [INSIDE, OUTSIDE] {
            let n = self.queues[port].rx_burst(&mut self.rx, BURST);
            if n == 0 {
                continue;
            }
            let now = self.now_ns() & 0xffff_ffff_ffff;
            let mut answers = 0;
            for m in self.rx.drain(..) {
                let f = m.as_ref();
                if let Some((class, ts)) = read_stamp(f) {
                    let right = if class.sent_inside() { OUTSIDE } else { INSIDE };
                    if ts < self.trial_start_ns & 0xffff_ffff_ffff {
                        c.late += 1;
                    } else if port == right {
                        c.received[class.index()] += 1;
                        self.lat.record(now.wrapping_sub(ts) & 0xffff_ffff_ffff);
                    } else {
                        c.misdelivered += 1;
                    }
                } else if nd::answer(f, self.macs[port], &mut self.na) {
                    let mut m = m;
                    if m.reset_from(&self.na).is_ok() {
                        self.tx[port].push(m);
                        answers += 1;
                    }
                    continue;
                } else {
                    c.other += 1;
                }
            }
            if answers > 0 {
                c.ns_answered += answers;
                let sent = self.queues[port].tx_burst(&mut self.tx[port]);
                c.tx_refused += (answers as usize).saturating_sub(sent) as u64;
            }
        }
    }

    /// Sends up to `n` frames of the mix.
    fn send(&mut self, n: usize, contexts: usize, opts: &TrialOptions, c: &mut Counts) {
        let ns = self.now_ns();
        for _ in 0..n {
            let class = opts.mix.nth(self.k);
            let size = opts.sizes.nth(self.k / 64);
            self.k += 1;
            let ctx = (self.rand() % contexts as u64) as usize;
            let port = if class.sent_inside() { INSIDE } else { OUTSIDE };
            let Some(mut m) = self.queues[port].alloc() else {
                c.tx_refused += 1;
                continue;
            };
            let len = self.builder.build(&mut self.scratch, class, ctx, size, ns);
            if m.reset_from(&self.scratch[..len]).is_err() {
                continue;
            }
            self.tx[port].push(m);
            self.tx_class[port].push(class);
        }
        for port in [INSIDE, OUTSIDE] {
            if self.tx[port].is_empty() {
                continue;
            }
            let want = self.tx[port].len();
            let sent = self.queues[port].tx_burst(&mut self.tx[port]);
            // DPDK sends a prefix of the burst.
            for class in &self.tx_class[port][..sent.min(want)] {
                c.sent[class.index()] += 1;
            }
            c.tx_refused += (want - sent.min(want)) as u64;
            self.tx_class[port].clear();
        }
    }

    /// One trial: the mix at `rate_pps` (0: as fast as the ports take) for `opts.seconds`,
    /// then `opts.drain_ms` of receiving only.
    pub(crate) fn trial(
        &mut self,
        rate_pps: f64,
        contexts: usize,
        opts: &TrialOptions,
    ) -> TrialReport {
        let mut c = Counts::default();
        self.lat.reset();
        self.trial_start_ns = self.now_ns();
        let start = Instant::now();
        let dur = Duration::from_secs_f64(opts.seconds);
        let mut sent_total = 0u64;
        loop {
            let el = start.elapsed();
            if el >= dur {
                break;
            }
            let n = if rate_pps <= 0.0 {
                BURST
            } else {
                let due = (el.as_secs_f64() * rate_pps) as u64;
                (due.saturating_sub(sent_total) as usize).min(BURST)
            };
            if n > 0 {
                let before: u64 = c.sent.iter().sum::<u64>() + c.tx_refused;
                self.send(n, contexts, opts, &mut c);
                sent_total += c.sent.iter().sum::<u64>() + c.tx_refused - before;
            }
            self.service_rx(&mut c);
        }
        let seconds = start.elapsed().as_secs_f64();
        // Frames still in the rings come back late: receive until `drain_ms` pass without
        // any (at most 20 times that in all), so a slow or loaded box does not count them lost.
        let quiet = Duration::from_millis(opts.drain_ms);
        let give_up = Instant::now() + quiet * 20;
        let mut last = Instant::now();
        let mut seen = c.received.iter().sum::<u64>();
        while last.elapsed() < quiet && Instant::now() < give_up {
            self.service_rx(&mut c);
            let now_seen = c.received.iter().sum::<u64>();
            if now_seen != seen {
                seen = now_seen;
                last = Instant::now();
            }
        }
        TrialReport::new(rate_pps, seconds, &c, &self.lat, opts.tolerance)
    }

    /// Short low-rate trials until one loses nothing (the proxy has resolved its neighbours, every
    /// class finds its path), at most `timeout`.
    pub(crate) fn warm_up(
        &mut self,
        contexts: usize,
        opts: &TrialOptions,
        timeout: Duration,
    ) -> Result<TrialReport> {
        let end = Instant::now() + timeout;
        let o = TrialOptions {
            seconds: 0.5,
            tolerance: 0.0,
            ..opts.clone()
        };
        loop {
            // Only the loss matters here: the rate need not be reached.
            let t = self.trial(WARM_UP_PPS, contexts, &o);
            if t.sent > 0 && t.received == t.sent {
                return Ok(t);
            }
            if Instant::now() > end {
                let json = serde_json::to_string(&t).context("report")?;
                bail!(
                    "warm-up: no loss-free trial at {WARM_UP_PPS} pps in {timeout:?}; last: {json}"
                );
            }
        }
    }

    /// Bisection for the no-drop rate between 0 and the rate the ports take flat out.
    /// Returns every trial and the best passing one.
    pub(crate) fn search(
        &mut self,
        contexts: usize,
        opts: &TrialOptions,
        steps: usize,
    ) -> (Vec<TrialReport>, Option<TrialReport>) {
        let mut trials = Vec::new();
        let top = self.trial(0.0, contexts, opts);
        let mut hi = top.offered_mpps * 1e6;
        let mut best = top.passed.then(|| top.clone());
        trials.push(top);
        if best.is_some() {
            return (trials, best);
        }
        let mut lo = 0.0;
        for _ in 0..steps {
            let mid = (lo + hi) / 2.0;
            let t = self.trial(mid, contexts, opts);
            if t.passed {
                lo = mid;
                // The best is the highest rate offered without loss (a loaded generator may
                // offer less than asked).
                if best
                    .as_ref()
                    .is_none_or(|b| t.offered_mpps > b.offered_mpps)
                {
                    best = Some(t.clone());
                }
            } else {
                hi = mid;
            }
            trials.push(t);
        }
        (trials, best)
    }
}
