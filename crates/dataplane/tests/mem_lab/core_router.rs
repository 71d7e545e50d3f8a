//! The in-memory "core" router thread between the sites' provider links: routes every frame
//! with [`CoreRoutes`] and counts the SHIM6 payload each link hands it, with switches to cut
//! links while it runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::backend::mem::MemQueue;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::io::PortQueue;

use crate::twosite_common::core_routes::{CoreRoutes, Route};
use crate::twosite_common::is_shim6_payload;

/// How the core thread polls: frames per receive burst, and its sleep when a round found
/// nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    pub(crate) burst: usize,
    pub(crate) idle: Duration,
}

impl Pacing {
    /// A few hosts streaming (the fail-over and takeover labs).
    pub(crate) const LAB: Pacing = Pacing {
        burst: 32,
        idle: Duration::from_micros(300),
    };
    /// Many communications at once (the TE simulation).
    pub(crate) const BUSY: Pacing = Pacing {
        burst: 64,
        idle: Duration::from_micros(200),
    };
}

/// The core router thread; it stops when dropped.
pub(crate) struct CoreRouter {
    stop: Arc<AtomicBool>,
    /// Links that neither send nor receive (bit `i` = link `i`): a cut cable inside the
    /// core, a dead proxy, or routes pointing elsewhere.
    pub(crate) dead: Arc<AtomicU64>,
    /// Links whose frames from the proxy are dropped (ND to the core still answered): the
    /// provider stops forwarding one way, as after a BGP withdraw.
    pub(crate) cut_in: Arc<AtomicU64>,
    payload_frames: Arc<Vec<AtomicU64>>,
    payload_bytes: Arc<Vec<AtomicU64>>,
    thread: Option<JoinHandle<()>>,
}

impl CoreRouter {
    /// Starts routing between `links` (the core's ends, in the order of `routes`), with the
    /// links in the `dead` mask down from the start.
    pub(crate) fn start(
        mut links: Vec<MemQueue>,
        routes: CoreRoutes,
        dead: u64,
        pacing: Pacing,
    ) -> Self {
        let counters = || Arc::new((0..links.len()).map(|_| AtomicU64::new(0)).collect());
        let (payload_frames, payload_bytes): (Arc<Vec<AtomicU64>>, Arc<Vec<AtomicU64>>) =
            (counters(), counters());
        let stop = Arc::new(AtomicBool::new(false));
        let dead = Arc::new(AtomicU64::new(dead));
        let cut_in = Arc::new(AtomicU64::new(0));
        let (s, d, ci) = (stop.clone(), dead.clone(), cut_in.clone());
        let (frames, bytes) = (payload_frames.clone(), payload_bytes.clone());
        let thread = std::thread::spawn(move || {
            let mut rx: Vec<HeapBuf> = Vec::new();
            let mut tx: Vec<Vec<HeapBuf>> = (0..links.len()).map(|_| Vec::new()).collect();
            while !s.load(Ordering::Relaxed) {
                let mut idle = true;
                for i in 0..links.len() {
                    if links[i].rx_burst(&mut rx, pacing.burst) > 0 {
                        idle = false;
                    }
                    for mut buf in rx.drain(..) {
                        let f = buf.as_ref();
                        let verdict = routes.route(
                            i,
                            f,
                            d.load(Ordering::Relaxed),
                            ci.load(Ordering::Relaxed),
                        );
                        match verdict {
                            Route::Reply(na) => {
                                buf.reset_from(&na).unwrap();
                                tx[i].push(buf);
                            }
                            Route::Forward(j) => {
                                if is_shim6_payload(f) {
                                    frames[i].fetch_add(1, Ordering::Relaxed);
                                    bytes[i].fetch_add(f.len() as u64, Ordering::Relaxed);
                                }
                                routes.rewrite(buf.as_mut(), j);
                                tx[j].push(buf);
                            }
                            Route::Drop => links[i].free(buf),
                        }
                    }
                }
                for (l, out) in links.iter_mut().zip(tx.iter_mut()) {
                    if !out.is_empty() {
                        l.tx_burst(out);
                    }
                }
                if idle {
                    std::thread::sleep(pacing.idle);
                }
            }
        });
        Self {
            stop,
            dead,
            cut_in,
            payload_frames,
            payload_bytes,
            thread: Some(thread),
        }
    }

    /// SHIM6 payload frames forwarded so far from each link.
    pub(crate) fn frames(&self) -> Vec<u64> {
        self.payload_frames
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// SHIM6 payload bytes forwarded so far from each link.
    pub(crate) fn bytes(&self) -> Vec<u64> {
        self.payload_bytes
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for CoreRouter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
