//! What `pshim6 run` does while the pipeline runs: serve the operator API (on a housekeeping
//! core, never a worker's) and apply a SIGHUP reload of the configuration.
//!
//! A reload re-reads the file and the `PSHIM6_*` environment and applies live what can
//! change live: the `[[peers]]` locators (into the slow path's peer cache), the `[te]`
//! policy (validated, then handed to traffic engineering) and `dns.upstream` (the DNS ALG's
//! servers, when it runs). It names what it applied live. Every other
//! setting (interfaces, prefixes, workers, tables, timers, the API itself) needs a restart;
//! the reload names each such change on stderr and keeps the running values.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use dataplane::io::{PortId, PortQueue};
use dataplane::slowpath::Pipeline;

use crate::announce::{Announcer, Health};
use crate::api_bridge::Bridge;
use run_config::{self, ApiSettings, Reload, RunConfig};

/// What a reload needs: the file, what the running configuration fixed, the SIGHUP flag.
pub(crate) struct ReloadSource {
    pub(crate) path: PathBuf,
    pub(crate) current: Reload,
    pub(crate) hup: Arc<AtomicBool>,
    /// The DNS ALG's upstream servers in force (`None`: no DNS ALG runs).
    pub(crate) dns_upstreams: Option<Vec<std::net::SocketAddr>>,
}

/// The parts of the configuration the operator side needs once the pipeline owns the rest.
pub(crate) struct Operator {
    api: Option<ApiSettings>,
    ports: Vec<(PortId, String)>,
    providers: Vec<(u16, PortId, String)>,
    backend: &'static str,
    worker_cores: Vec<Option<usize>>,
    te: Option<dataplane::slowpath::te::TePolicy>,
    reload: Option<ReloadSource>,
    bgp_signal: Option<run_config::BgpSignalSettings>,
    /// Route announcement (`[announce]`), started before the pipeline.
    pub(crate) announcer: Option<Arc<Announcer>>,
}

impl Operator {
    pub(crate) fn of(cfg: &RunConfig, reload: Option<ReloadSource>) -> Self {
        Self {
            api: cfg.api.clone(),
            ports: cfg.interfaces.clone(),
            providers: cfg.provider_names.clone(),
            backend: cfg.backend_name,
            worker_cores: cfg.pipeline.dataplane.worker_cores.clone(),
            te: Some(cfg.te.clone()),
            reload,
            bgp_signal: cfg.bgp_signal.clone(),
            announcer: None,
        }
    }

    /// The API thread's core: the configured one, else the lowest core no worker is pinned
    /// to (`None` when every core has a worker: then the scheduler decides).
    fn api_core(&self, settings: &ApiSettings) -> Option<usize> {
        settings.core.or_else(|| {
            core_affinity::get_core_ids()?
                .into_iter()
                .map(|c| c.id)
                .find(|id| !self.worker_cores.contains(&Some(*id)))
        })
    }

    /// Serves the API (if configured) and reloads on SIGHUP until `stop` or `deadline`.
    pub(crate) fn run<Q: PortQueue + 'static>(
        &mut self,
        p: &Pipeline<Q>,
        stop: &AtomicBool,
        deadline: Option<Instant>,
        mut tick: impl FnMut(&Pipeline<Q>),
    ) -> Result<()> {
        if let Some(policy) = self.te.take() {
            p.te_handle()
                .set_policy(policy)
                .context("te: the policy is refused")?;
        }
        let server = match &self.api {
            Some(a) => {
                let bridge = Bridge {
                    control: p.control(),
                    workers: p.worker_monitors(),
                    links: p.link_state().clone(),
                    queues: p.queues(),
                    ports: self.ports.clone(),
                    providers: self.providers.clone(),
                    te: p.te_handle().clone(),
                    dns_seen: std::sync::Mutex::new((0, 0)),
                    announcer: self.announcer.clone(),
                };
                let cfg = api::ServerConfig {
                    listen: a.listen,
                    token: a.token.clone(),
                    core: self.api_core(a),
                    build: api::BuildInfo {
                        version: env!("CARGO_PKG_VERSION").into(),
                        backend: self.backend.into(),
                    },
                };
                let s = api::ApiServer::start(cfg, Arc::new(bridge))
                    .context("starting the operator API")?;
                eprintln!("pshim6: API on http://{}", s.local_addr());
                Some(s)
            }
            None => None,
        };
        // BGP as a failure signal: follows the providers' kernel tables (`[bgp_signal]`).
        let bgp = match &self.bgp_signal {
            Some(b) => Some(
                crate::bgp_signal::BgpSignal::start(b, p.control())
                    .context("starting the BGP signal")?,
            ),
            None => None,
        };
        let monitors = p.worker_monitors();
        while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            if let Some(r) = &mut self.reload {
                if r.hup.swap(false, Ordering::Relaxed) {
                    reload(r, p);
                }
            }
            tick(p);
            if let Some(a) = &self.announcer {
                announce_tick(a, &monitors, p);
            }
            std::thread::sleep(crate::run_events::POLL);
        }
        if let Some(b) = bgp {
            b.stop();
        }
        if let Some(a) = &self.announcer {
            // Clean stop: withdraw before the data plane goes.
            a.stop();
        }
        if let Some(s) = server {
            s.stop().context("stopping the operator API")?;
        }
        Ok(())
    }
}

/// Tells the announcer the workers' heartbeats and the drained providers.
fn announce_tick<Q: PortQueue + 'static>(
    a: &Announcer,
    monitors: &[dataplane::worker::WorkerMonitor],
    p: &Pipeline<Q>,
) {
    let heartbeats: Vec<u64> = monitors.iter().map(|m| m.heartbeat()).collect();
    let drained: Vec<u16> = p
        .te_handle()
        .view()
        .map(|v| {
            v.providers
                .iter()
                .filter(|p| p.drained)
                .map(|p| p.id)
                .collect()
        })
        .unwrap_or_default();
    a.tick(&Health {
        heartbeats: &heartbeats,
        drained: &drained,
    });
}

/// One SIGHUP: re-read, apply the live part, report the rest.
fn reload<Q: PortQueue + 'static>(r: &mut ReloadSource, p: &Pipeline<Q>) {
    let (cfg, fixed) = match run_config::load_layered(&r.path, run_config::env_overrides()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("pshim6: SIGHUP: {e:#}; keeping the running configuration");
            return;
        }
    };
    let mut applied: Vec<&str> = Vec::new();
    let n = cfg.static_peers.len();
    match p.control().set_peers(cfg.static_peers) {
        Ok(()) => {
            applied.push("peers");
            eprintln!(
                "pshim6: SIGHUP: reloaded {n} peer(s) from {}",
                r.path.display()
            );
        }
        Err(e) => eprintln!("pshim6: SIGHUP: peers not applied: {e}"),
    }
    match p.te_handle().set_policy(cfg.te) {
        Ok(()) => {
            applied.push("te");
            eprintln!("pshim6: SIGHUP: traffic-engineering policy reloaded");
        }
        Err(e) => eprintln!("pshim6: SIGHUP: te: {e}; keeping the running policy"),
    }
    let upstreams = cfg.dns.as_ref().map(|d| d.alg.upstream.clone());
    if upstreams != r.dns_upstreams {
        match (upstreams, r.dns_upstreams.is_some()) {
            (Some(list), true) => match p.control().set_dns_upstreams(list.clone()) {
                Ok(Some(Ok(()))) => {
                    applied.push("dns.upstream");
                    eprintln!("pshim6: SIGHUP: dns.upstream reloaded: {list:?}");
                    r.dns_upstreams = Some(list);
                }
                Ok(Some(Err(e))) => {
                    eprintln!("pshim6: SIGHUP: dns.upstream: {e}; keeping the running servers")
                }
                Ok(None) | Err(_) => {
                    eprintln!(
                        "pshim6: SIGHUP: dns.upstream not applied: the DNS ALG does not answer"
                    )
                }
            },
            // The DNS ALG starts and stops with the appliance.
            _ => eprintln!(
                "pshim6: SIGHUP: changed, applies at the next restart: [dns] (added or removed)"
            ),
        }
    }
    eprintln!("pshim6: SIGHUP: applied live: {}", applied.join(", "));
    let changed = r.current.needs_restart(&fixed, 5);
    for c in &changed {
        eprintln!("pshim6: SIGHUP: changed, applies at the next restart: {c}");
    }
}
