//! What `pshim6 run` does while the pipeline runs: serve the operator API (on a housekeeping
//! core, never a worker's) and apply a SIGHUP reload of the configuration.
//!
//! A reload re-reads the file and the `PSHIM6_*` environment and applies live what can
//! change live: the `[[peers]]` locators (into the slow path's peer cache) and the `[te]`
//! policy (validated, then handed to traffic engineering). Every other
//! setting (interfaces, prefixes, workers, tables, timers, the API itself) needs a restart;
//! the reload names each such change on stderr and keeps the running values.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use dataplane::io::{PortId, PortQueue};
use dataplane::slowpath::Pipeline;

use crate::api_bridge::Bridge;
use run_config::{self, ApiSettings, Reload, RunConfig};

/// What a reload needs: the file, what the running configuration fixed, the SIGHUP flag.
pub(crate) struct ReloadSource {
    pub(crate) path: PathBuf,
    pub(crate) current: Reload,
    pub(crate) hup: Arc<AtomicBool>,
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
        while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            if let Some(r) = &mut self.reload {
                if r.hup.swap(false, Ordering::Relaxed) {
                    reload(r, p);
                }
            }
            tick(p);
            std::thread::sleep(crate::run_events::POLL);
        }
        if let Some(s) = server {
            s.stop().context("stopping the operator API")?;
        }
        Ok(())
    }
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
    let n = cfg.static_peers.len();
    match p.control().set_peers(cfg.static_peers) {
        Ok(()) => eprintln!(
            "pshim6: SIGHUP: reloaded {n} peer(s) from {}",
            r.path.display()
        ),
        Err(e) => eprintln!("pshim6: SIGHUP: peers not applied: {e}"),
    }
    {
        match p.te_handle().set_policy(cfg.te) {
            Ok(()) => eprintln!("pshim6: SIGHUP: traffic-engineering policy reloaded"),
            Err(e) => eprintln!("pshim6: SIGHUP: te: {e}; keeping the running policy"),
        }
    }
    let changed = r.current.needs_restart(&fixed, 5);
    for c in &changed {
        eprintln!("pshim6: SIGHUP: changed, applies at the next restart: {c}");
    }
}
