//! BGP as a failure signal (issue #9, paper §6; `docs/routing.md` "BGP signal"): a
//! housekeeping thread follows the kernel tables the proxy's BIRD fills with the routes it
//! learns from each provider (`[bgp_signal]`), and hands every prefix announced or withdrawn
//! to the slow path over its control channel. The slow path marks the paths a provider no
//! longer routes and the engine moves the contexts on them at once. The fast path never
//! waits: the thread only talks to the kernel and to the slow path's bounded queue.
//!
//! Start-up: the route monitor subscribes first, then the tables are dumped, so a change
//! between the two is not lost (applying it twice is harmless). If the monitor's socket
//! overflows (`ENOBUFS`: events were lost) the tables are dumped again.

mod tracker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dataplane::slowpath::bgp::{Ipv6Net, RouteChange};
use dataplane::slowpath::control::{ControlClient, ControlError};
use rtnl::{Route, RouteEvent, RouteMonitor, Rtnl};

use run_config::BgpSignalSettings;
use tracker::{KernelRoute, RouteTracker};

/// How long one wait for kernel events lasts (the stop flag is checked in between).
const POLL: Duration = Duration::from_millis(100);

fn kernel_route(r: &Route) -> Option<KernelRoute> {
    Some(KernelRoute {
        table: r.table,
        net: Ipv6Net::new(r.dst, r.prefix_len).ok()?,
        metric: r.metric,
    })
}

/// The kernel side: a route monitor, a request socket for dumps, and the tracker.
pub(crate) struct Follower {
    rtnl: Rtnl,
    monitor: RouteMonitor,
    tracker: RouteTracker,
}

impl Follower {
    /// Subscribes to route changes of the calling thread's namespace; `tables` are (provider
    /// id, kernel table) pairs.
    pub(crate) fn open(tables: Vec<(u16, u32)>) -> Result<Self> {
        let monitor = RouteMonitor::open(POLL).context("subscribing to route changes")?;
        let rtnl = Rtnl::open().context("opening rtnetlink")?;
        Ok(Self {
            rtnl,
            monitor,
            tracker: RouteTracker::new(tables),
        })
    }

    /// Every followed table as it is now (each provider reset, filled and marked synced).
    pub(crate) fn dump(&mut self) -> Result<Vec<RouteChange>> {
        let routes: Vec<KernelRoute> = self
            .rtnl
            .dump_routes()
            .context("dumping the routes")?
            .iter()
            .filter_map(kernel_route)
            .collect();
        Ok(self.tracker.dump(&routes))
    }

    /// The prefix changes of the next batch of kernel events (empty after [`POLL`] without
    /// any); a full dump if events were lost.
    pub(crate) fn next(&mut self) -> Result<Vec<RouteChange>> {
        let events = match self.monitor.recv() {
            Ok(e) => e,
            Err(e) if e.errno() == Some(libc::ENOBUFS) => {
                eprintln!("pshim6: bgp signal: route events were lost; reading the tables again");
                return self.dump();
            }
            Err(e) => return Err(e).context("reading route changes"),
        };
        Ok(events
            .iter()
            .filter_map(|e| match e {
                RouteEvent::Added(r) => kernel_route(r).and_then(|k| self.tracker.added(k)),
                RouteEvent::Removed(r) => kernel_route(r).and_then(|k| self.tracker.removed(k)),
            })
            .collect())
    }
}

/// One line for the operator per batch (never per packet; a batch is one kernel datagram).
fn describe(changes: &[RouteChange]) -> Option<String> {
    let mut added = 0;
    let mut gone = Vec::new();
    for c in changes {
        match c {
            RouteChange::Add { .. } => added += 1,
            RouteChange::Remove { provider, net } => {
                gone.push(format!("{net} (provider {provider})"))
            }
            _ => {}
        }
    }
    if gone.is_empty() && added == 0 {
        return None;
    }
    let mut s = format!(
        "bgp signal: {added} prefix(es) announced, {} withdrawn",
        gone.len()
    );
    if !gone.is_empty() {
        let shown: Vec<&str> = gone.iter().take(4).map(String::as_str).collect();
        s.push_str(&format!(": {}", shown.join(", ")));
        if gone.len() > 4 {
            s.push_str(&format!(" and {} more", gone.len() - 4));
        }
    }
    Some(s)
}

/// The running follower thread.
pub(crate) struct BgpSignal {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BgpSignal {
    /// Opens the kernel sockets (errors are reported here, before anything runs) and starts
    /// the thread feeding `control`.
    pub(crate) fn start(settings: &BgpSignalSettings, control: ControlClient) -> Result<Self> {
        let mut follower = Follower::open(settings.tables.clone())?;
        let first = follower.dump()?;
        let tables: Vec<String> = settings
            .tables
            .iter()
            .map(|(id, t)| format!("table {t} (provider {id})"))
            .collect();
        eprintln!("pshim6: bgp signal: following {}", tables.join(", "));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bgp-signal".into())
            .spawn(move || follow(follower, first, &control, &flag, Instant::now()))
            .context("starting the bgp-signal thread")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BgpSignal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The thread: hands `pending` to the slow path (again after a busy queue or a timeout:
/// the changes are idempotent and stay in order), reads the next kernel events, repeats.
fn follow(
    mut f: Follower,
    first: Vec<RouteChange>,
    control: &ControlClient,
    stop: &AtomicBool,
    start: Instant,
) {
    let mut pending = first;
    // When the oldest pending change was read from the kernel (the delivery delay is shown).
    let mut read_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if !pending.is_empty() {
            match control.routes(pending.clone()) {
                Ok(()) => {
                    if let Some(line) = describe(&pending) {
                        // A timeline line, as the services print theirs.
                        eprintln!(
                            "pshim6: [{:>9.3}s] {line} (read from the kernel {} ms before)",
                            start.elapsed().as_secs_f64(),
                            read_at.elapsed().as_millis()
                        );
                    }
                    pending.clear();
                }
                Err(ControlError::Stopped) => return,
                Err(ControlError::Busy | ControlError::Timeout(_) | ControlError::Mismatch) => {}
            }
        }
        match f.next() {
            Ok(more) => {
                if pending.is_empty() {
                    read_at = Instant::now();
                }
                pending.extend(more);
            }
            Err(e) => {
                eprintln!("pshim6: bgp signal: {e:#}; retrying");
                std::thread::sleep(POLL);
            }
        }
    }
}

#[cfg(test)]
mod tests;
