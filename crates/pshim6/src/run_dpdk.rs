//! `pshim6 run` on the DPDK backend (`backend = "dpdk"`, feature `dpdk`): starts the EAL with
//! the `[dpdk]` arguments, brings up the configured ports (one mempool per NUMA socket, one rx
//! and one tx queue per worker, RSS across them), runs the pipeline, logs link changes, and
//! adds each port's device counters and xstats to the exit report.
//!
//! Link state reaches the engines through the pipeline's link watch (each worker reads its
//! queue's `rte_eth_link_get_nowait`, the slow path turns a change into the engines' "local
//! link down/up"); the loop here only reports changes to the operator.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use dataplane::slowpath::{LocalServices, PipelineReport};

use crate::operate::Operator;
use run_config::RunConfig;

/// Runs the pipeline on DPDK ports until `stop` (or `deadline`); prints the ports' counters.
#[cfg(feature = "dpdk")]
pub(crate) fn serve(
    cfg: RunConfig,
    services: Option<Box<dyn LocalServices>>,
    op: &mut Operator,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<PipelineReport> {
    use std::io::Write;

    use anyhow::{anyhow, bail, Context};
    use dataplane::backend::dpdk::{init_eal, PortSet, PortSetConfig};
    use dataplane::bench::Synthetic;
    use dataplane::slowpath::Pipeline;

    let mut eal = vec!["pshim6".to_owned()];
    eal.extend(cfg.dpdk.eal_args.iter().cloned());
    init_eal(&eal).with_context(|| format!("EAL arguments {:?}", cfg.dpdk.eal_args))?;
    let queues = u16::try_from(cfg.workers).map_err(|_| anyhow!("workers: too many"))?;
    let data_room = u16::try_from(cfg.max_frame.max(2048))
        .map_err(|_| anyhow!("mtu: a frame must fit one 64 KiB mbuf"))?;
    let names: Vec<String> = cfg.interfaces.iter().map(|(_, n)| n.clone()).collect();
    let psc = PortSetConfig {
        names: names.clone(),
        queues,
        mbufs_per_socket: cfg.dpdk.mbufs_per_socket,
        data_room,
        rx_desc: cfg.dpdk.rx_desc,
        tx_desc: cfg.dpdk.tx_desc,
        promiscuous: cfg.dpdk.promiscuous,
    };
    let (ports, port_queues) = PortSet::open(&psc).context("starting the DPDK ports")?;
    let mut per_worker: Vec<Vec<_>> = (0..cfg.workers).map(|_| Vec::new()).collect();
    for ((port, _), qs) in cfg.interfaces.iter().zip(port_queues) {
        for (w, q) in qs.into_iter().enumerate() {
            if let Some(v) = per_worker.get_mut(w) {
                v.push((*port, q));
            }
        }
    }
    let n = cfg.dpdk.synthetic_contexts;
    if n > cfg.pipeline.table_capacity {
        bail!("dpdk.synthetic_contexts: {n} exceeds table_capacity");
    }
    let syn = Synthetic::new(&cfg.pipeline.dataplane, n);
    let preload = (0..n).map(|i| syn.entry(i));
    if n > 0 {
        eprintln!("pshim6: {n} synthetic context(s) preloaded (benchmark)");
    }
    let p = Pipeline::start_preloaded(cfg.pipeline, cfg.site, services, per_worker, preload)?;
    let mut links: Vec<Option<bool>> = ports.ports().iter().map(|p| p.link_up()).collect();
    for (n, l) in names.iter().zip(&links) {
        eprintln!("pshim6: port {n}: link {}", link_text(*l));
    }
    // The operator loop (API, SIGHUP, TE policy) ticks this every few tens of milliseconds.
    let report = crate::cmd_run::operate(p, op, &cfg.interfaces, stop, deadline, || {
        for ((port, last), n) in ports.ports().iter().zip(links.iter_mut()).zip(&names) {
            let now = port.link_up();
            if now != *last {
                eprintln!("pshim6: port {n}: link {}", link_text(now));
                *last = now;
            }
        }
    })?;
    let mut out = std::io::stdout().lock();
    for (n, port) in names.iter().zip(ports.ports()) {
        let _ = writeln!(out, "port {n}:");
        if let Ok(s) = port.device_stats() {
            let _ = writeln!(
                out,
                "  rx_packets {}\n  rx_bytes {}\n  rx_dropped {}\n  tx_packets {}\n  tx_bytes {}\n  tx_dropped {}",
                s.rx_packets, s.rx_bytes, s.rx_dropped, s.tx_packets, s.tx_bytes, s.tx_dropped
            );
        }
        for (k, v) in port.xstats().unwrap_or_default() {
            if v != 0 {
                let _ = writeln!(out, "  xstats.{k} {v}");
            }
        }
    }
    for (socket, pool) in ports.pools() {
        let s = socket.map_or_else(|| "any".to_owned(), |s| s.to_string());
        let _ = writeln!(out, "mempool socket {s}: available {}", pool.available());
    }
    drop(out);
    drop(ports);
    Ok(report)
}

/// Gives every port listed in `cfg.dpdk.mac_from_device` (no `mac` configured) its device's
/// MAC (`rte_eth_macaddr_get`, readable once the EAL has probed the devices, before they
/// start), starting the EAL with the `[dpdk]` arguments if need be. A no-op when every MAC is
/// configured.
#[cfg(feature = "dpdk")]
pub(crate) fn resolve_macs(cfg: &mut RunConfig) -> Result<()> {
    use anyhow::{anyhow, Context};
    use dataplane::backend::dpdk::{init_eal, port_mac};
    use dataplane::config::MacAddr;

    if cfg.dpdk.mac_from_device.is_empty() {
        return Ok(());
    }
    let mut eal = vec!["pshim6".to_owned()];
    eal.extend(cfg.dpdk.eal_args.iter().cloned());
    init_eal(&eal).with_context(|| format!("EAL arguments {:?}", cfg.dpdk.eal_args))?;
    let dp = &mut cfg.pipeline.dataplane;
    for port in std::mem::take(&mut cfg.dpdk.mac_from_device) {
        let (_, name) = cfg
            .interfaces
            .iter()
            .find(|(p, _)| *p == port)
            .ok_or_else(|| anyhow!("port {} has no interface", port.0))?;
        let mac = MacAddr(port_mac(name).with_context(|| format!("the MAC of port {name}"))?);
        let slot = if dp.inside.port == port {
            Some(&mut dp.inside.mac)
        } else {
            dp.providers
                .iter_mut()
                .find(|p| p.port == port)
                .map(|p| &mut p.mac)
        };
        if let Some(m) = slot {
            *m = mac;
        }
        eprintln!("pshim6: port {name}: MAC {mac} (from the device)");
    }
    dp.validate()
        .map_err(|e| anyhow!("a device MAC is unusable: {e}"))?;
    Ok(())
}

/// Without the `dpdk` feature there is no device to ask: [`serve`] refuses anyway.
#[cfg(not(feature = "dpdk"))]
pub(crate) fn resolve_macs(_: &mut RunConfig) -> Result<()> {
    Ok(())
}

#[cfg(feature = "dpdk")]
fn link_text(l: Option<bool>) -> &'static str {
    match l {
        Some(true) => "up",
        Some(false) => "down",
        None => "unknown",
    }
}

/// Without the `dpdk` feature: refuses, naming the build flag.
#[cfg(not(feature = "dpdk"))]
pub(crate) fn serve(
    cfg: RunConfig,
    _: Option<Box<dyn LocalServices>>,
    _: &mut Operator,
    _: &AtomicBool,
    _: Option<Instant>,
) -> Result<PipelineReport> {
    anyhow::bail!(
        "backend: `dpdk` (EAL arguments {:?}): this pshim6 was built without DPDK; rebuild with \
         `cargo build --release -p pshim6 --features dpdk` (needs libdpdk-dev, clang, \
         libclang-dev, pkg-config)",
        cfg.dpdk.eal_args
    )
}
