//! `pshim6 run --config FILE`: the appliance. Opens the configured interfaces (AF_PACKET, one
//! queue per worker joined in a `PACKET_FANOUT` group per interface), starts the workers and
//! the slow path, runs until SIGINT or SIGTERM, stops cleanly and prints the counters (per
//! worker, per verdict and drop reason; slow path; services; engine). The DNS ALG (`[dns]`)
//! and the DHCPv6 server (`[dhcp]`) run on the slow path ([`crate::services`]); a timeline
//! of hosts bound, peers learnt and contexts goes to stderr.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dataplane::backend::mem::{pair, MemConfig, MemPort};
use dataplane::backend::BufPool;
use dataplane::fastpath::{DropReason, Path, PuntReason};
use dataplane::io::{PortId, PortQueue};
use dataplane::slowpath::{LocalServices, Pipeline, PipelineReport};

use crate::cli::RunArgs;
use crate::operate::{Operator, ReloadSource};
use crate::services::{self, dhcp::DhcpService, dns::DnsService, Services, Timeline};
use run_config::{self, Backend, RunConfig};

/// Runs the appliance until a signal (or `--stop-after`), then prints its counters.
/// SIGHUP reloads what can change live ([`crate::operate`]).
pub(crate) fn run(args: &RunArgs) -> Result<ExitCode> {
    crate::logging::init(args.log_format)?;
    let (cfg, current) = run_config::load_layered(&args.config, run_config::env_overrides())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .context("installing the SIGHUP handler")?;
    let reload = ReloadSource {
        path: args.config.clone(),
        current,
        hup,
        dns_upstreams: cfg.dns.as_ref().map(|d| d.alg.upstream.clone()),
    };
    let deadline = args
        .stop_after
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let names: Vec<(PortId, String)> = cfg.interfaces.clone();
    eprintln!(
        "pshim6: running on {} with {} worker(s); SIGINT or SIGTERM stops",
        names
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.workers
    );
    let report = serve(cfg, &stop, deadline, Some(reload))?;
    let mut out = io::stdout().lock();
    match print_report(&mut out, &report) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the counters")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the pipeline on the configured backend, waits for `stop` (or `deadline`), stops it.
/// The timeline goes to stderr.
pub(crate) fn serve(
    cfg: RunConfig,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    reload: Option<ReloadSource>,
) -> Result<PipelineReport> {
    serve_with(
        cfg,
        stop,
        deadline,
        services::stderr_timeline(Instant::now()),
        reload,
    )
}

/// The DNS ALG and the DHCPv6 server of `cfg` (`[dns]`, `[dhcp]`), if any, and the timeline.
fn local_services(cfg: &RunConfig, timeline: &Timeline) -> Result<Box<dyn LocalServices>> {
    let inside = &cfg.pipeline.dataplane.inside;
    let dns = match &cfg.dns {
        Some(d) => {
            let s = DnsService::new(
                d.alg.clone(),
                inside.global,
                d.upstream_port,
                cfg.site.seed ^ 0x646e_735f_616c_6721,
                Arc::clone(timeline),
            )
            .context("starting the DNS ALG")?;
            timeline(&format!(
                "DNS ALG on [{}]:53, upstream {} from port {}",
                inside.global,
                d.alg
                    .upstream
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                d.upstream_port
            ));
            Some(s)
        }
        None => None,
    };
    let dhcp = match (&cfg.dhcp, &cfg.dhcp_store) {
        (Some(c), Some(store)) => {
            timeline(&match store {
                run_config::StoreSettings::Journal(j) => {
                    format!("DHCPv6 on the inside link, journal {}", j.display())
                }
                run_config::StoreSettings::Etcd(e) => format!(
                    "DHCPv6 on the inside link, bindings on etcd {} under {}",
                    e.endpoints.join(","),
                    e.prefix
                ),
            });
            Some(DhcpService::with_store(
                c.clone(),
                store,
                cfg.site.key.public_key_der(),
                inside.mac.0,
                cfg.site.seed ^ 0x6468_6370_7636,
                Arc::clone(timeline),
            )?)
        }
        _ => None,
    };
    // Even with neither service the slow path gets one: the timeline of contexts is its.
    Ok(Box::new(Services::new(
        inside.global,
        dns,
        dhcp,
        Arc::clone(timeline),
    )))
}

/// [`serve`] with the timeline going to `timeline`.
pub(crate) fn serve_with(
    cfg: RunConfig,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    timeline: Timeline,
    reload: Option<ReloadSource>,
) -> Result<PipelineReport> {
    let mut cfg = cfg;
    // Before anything copies a MAC (the DHCPv6 DUID, the operator view).
    crate::run_dpdk::resolve_macs(&mut cfg)?;
    let services = Some(local_services(&cfg, &timeline)?);
    let pool = Arc::new(BufPool::new(cfg.buffers, cfg.max_frame));
    let mut op = Operator::of(&cfg, reload);
    if let Some(a) = &cfg.announce {
        let providers: Vec<(u16, std::net::Ipv6Addr)> = cfg
            .pipeline
            .dataplane
            .providers
            .iter()
            .map(|p| (p.id, p.prefix.network()))
            .collect();
        op.announcer = Some(Arc::new(crate::announce::Announcer::start(
            a.clone(),
            &providers,
        )?));
    }
    match cfg.backend {
        Backend::AfPacket => serve_afpacket(cfg, services, &pool, &mut op, stop, deadline),
        Backend::Dpdk => crate::run_dpdk::serve(cfg, services, &mut op, stop, deadline),
        Backend::Mem => {
            // Cables whose far ends nobody reads: a dry run of the configuration.
            let mut far: Vec<MemPort> = Vec::new();
            let mut per_worker: Vec<Vec<_>> = (0..cfg.workers).map(|_| Vec::new()).collect();
            for (port, _) in &cfg.interfaces {
                let (near, other) = pair(&pool, &MemConfig::new(cfg.workers))?;
                far.push(other);
                for (w, q) in near.into_queues().into_iter().enumerate() {
                    if let Some(v) = per_worker.get_mut(w) {
                        v.push((*port, q));
                    }
                }
            }
            let p = Pipeline::start_with_services(cfg.pipeline, cfg.site, services, per_worker)?;
            operate(p, &mut op, &cfg.interfaces, stop, deadline, || {})
        }
    }
}

/// Runs the operator loop (API, SIGHUP, event lines, plus `tick` of the backend) until `stop`
/// or `deadline`, then stops the pipeline and reports.
pub(crate) fn operate<Q: PortQueue + 'static>(
    p: Pipeline<Q>,
    op: &mut Operator,
    interfaces: &[(PortId, String)],
    stop: &AtomicBool,
    deadline: Option<Instant>,
    mut tick: impl FnMut(),
) -> Result<PipelineReport> {
    let mut events = crate::run_events::Watcher::new(interfaces);
    let r = op.run(&p, stop, deadline, |p| {
        events.tick(p);
        tick();
    });
    events.finish(&p);
    let report = p.stop();
    r.map(|()| report)
}

#[cfg(target_os = "linux")]
fn serve_afpacket(
    cfg: RunConfig,
    services: Option<Box<dyn LocalServices>>,
    pool: &Arc<BufPool>,
    op: &mut Operator,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<PipelineReport> {
    use dataplane::backend::afpacket::{self, AfPacketConfig};
    let d = AfPacketConfig::default();
    let s = cfg.afpacket;
    // A slot holds the frame after a ~66-byte header; jumbo MTUs need bigger slots.
    let needed = (cfg.max_frame + 128).next_multiple_of(16);
    let af = AfPacketConfig {
        queues: cfg.workers,
        frame_size: s
            .frame_size
            .unwrap_or(d.frame_size.max(needed.next_power_of_two())),
        rx_frames: s.rx_frames.unwrap_or(d.rx_frames),
        tx_frames: s.tx_frames.unwrap_or(d.tx_frames),
        socket_buffer: s.socket_buffer.unwrap_or(d.socket_buffer),
        promiscuous: s.promiscuous.unwrap_or(d.promiscuous),
        qdisc_bypass: s.qdisc_bypass.unwrap_or(d.qdisc_bypass),
        fanout_group: None,
    };
    let mut per_worker: Vec<Vec<_>> = (0..cfg.workers).map(|_| Vec::new()).collect();
    for (port, ifname) in &cfg.interfaces {
        let queues = afpacket::open(ifname, &af, pool)
            .with_context(|| format!("opening {ifname} (AF_PACKET)"))?;
        for (w, q) in queues.into_iter().enumerate() {
            if let Some(v) = per_worker.get_mut(w) {
                v.push((*port, q));
            }
        }
    }
    let p = Pipeline::start_with_services(cfg.pipeline, cfg.site, services, per_worker)?;
    operate(p, op, &cfg.interfaces, stop, deadline, || {})
}

#[cfg(not(target_os = "linux"))]
fn serve_afpacket(
    _: RunConfig,
    _: Option<Box<dyn LocalServices>>,
    _: &Arc<BufPool>,
    _: &mut Operator,
    _: &AtomicBool,
    _: Option<Instant>,
) -> Result<PipelineReport> {
    anyhow::bail!("backend: `afpacket` needs Linux; use `mem`")
}

/// The counters, one `name value` per line, grouped by worker, slow path and engine.
pub(crate) fn print_report(out: &mut impl Write, r: &PipelineReport) -> io::Result<()> {
    writeln!(
        out,
        "pshim6: stopped; {} context(s) in the table",
        r.contexts
    )?;
    for (i, w) in r.workers.iter().enumerate() {
        writeln!(
            out,
            "worker {i}: packets {} bursts {} pinned {}",
            w.fast_path.packets, w.bursts, w.pinned
        )?;
        for (n, v) in Path::NAMES.iter().zip(w.fast_path.forwarded) {
            writeln!(out, "  forwarded.{n} {v}")?;
        }
        for (n, v) in PuntReason::NAMES.iter().zip(w.fast_path.punted) {
            writeln!(out, "  punted.{n} {v}")?;
        }
        for (n, v) in PuntReason::NAMES.iter().zip(w.punt_dropped) {
            writeln!(out, "  punt_dropped.{n} {v}")?;
        }
        for (n, v) in DropReason::NAMES.iter().zip(w.fast_path.dropped) {
            writeln!(out, "  dropped.{n} {v}")?;
        }
        writeln!(out, "  no_tx_queue {}", w.no_tx_queue)?;
        writeln!(out, "  injected {}", w.injected)?;
        writeln!(out, "  inject_dropped {}", w.inject_dropped)?;
    }
    if let Some(s) = &r.slow_path {
        writeln!(out, "slow path:")?;
        for (n, v) in s.named() {
            writeln!(out, "  {n} {v}")?;
        }
    }
    if !r.services.is_empty() {
        writeln!(out, "services:")?;
        for (n, v) in &r.services {
            writeln!(out, "  {n} {v}")?;
        }
    }
    if let Some(e) = &r.engine {
        writeln!(out, "engine:")?;
        for (n, v) in crate::api_bridge::engine_counters(e) {
            writeln!(out, "  {n} {v}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use run_config::fixtures::{with_services, write_config, write_dir};

    #[test]
    fn mem_backend_runs_and_stops_cleanly() {
        let dir = write_config("run", "backend = \"mem\"\nworkers = 1\n", "");
        let cfg = run_config::load(&dir.join("pshim6.toml")).unwrap();
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        // Long enough for the worker to report its links up and the slow path to solicit the
        // exit routers even on a loaded machine (300 ms was not, with ~40 runnable threads).
        let report = serve(
            cfg,
            &stop,
            Some(Instant::now() + Duration::from_secs(3)),
            None,
        )
        .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(3));
        assert_eq!(report.workers.len(), 1);
        assert!(report.slow_path.is_some() && report.engine.is_some());
        // The slow path started resolving both providers' exit routers (into the void).
        assert!(report.slow_path.unwrap().nd.ns_out >= 2);
        let mut text = Vec::new();
        print_report(&mut text, &report).unwrap();
        let text = String::from_utf8(text).unwrap();
        for want in [
            "worker 0:",
            "  punted.no_context 0",
            "  dropped.malformed 0",
            "slow path:",
            "  nd.ns_out ",
            "engine:",
            "  rx_control 0",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn services_start_with_their_sections_and_report_their_counters() {
        let text = with_services(
            "[dns]\nupstream = [\"[2001:db8:53::53]:53\"]\nupstream_port = 50001",
            "[dhcp]\njournal = \"leases.journal\"",
        )
        .replace("ulid_prefix", "backend = \"mem\"\nworkers = 1\nulid_prefix");
        let dir = write_dir("run-services", &text, 0o600);
        let cfg = run_config::load(&dir.join("pshim6.toml")).unwrap();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let timeline: Timeline = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
        let stop = AtomicBool::new(false);
        let report = serve_with(
            cfg,
            &stop,
            Some(Instant::now() + Duration::from_millis(200)),
            timeline,
            None,
        )
        .unwrap();
        let lines = lines.lock().unwrap().clone();
        assert!(
            lines[0].starts_with("DNS ALG on [fc00:1:1:1::1]:53")
                && lines[0].ends_with("from port 50001"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("DHCPv6 on the inside link"),
            "{lines:?}"
        );
        assert!(
            dir.join("leases.journal").exists(),
            "the journal is opened at start"
        );
        for name in [
            "dns.queries",
            "dns.tcp_dropped",
            "dhcp.received",
            "dhcp.reply",
        ] {
            assert!(
                report.services.iter().any(|(n, _)| n == name),
                "no `{name}` in {:?}",
                report.services
            );
        }
        let mut text = Vec::new();
        print_report(&mut text, &report).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("services:\n  dns.queries 0\n"), "{text}");
        assert!(text.contains("  udp.in 0\n"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
