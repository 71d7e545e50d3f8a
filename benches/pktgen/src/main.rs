//! `pshim6-pktgen`: a traffic generator for the pshim6 appliance on DPDK.
//!
//! - `run`: drives a proxy through two DPDK ports (the proxy's inside link and a provider
//!   link, e.g. two `net_memif` ports to a `pshim6 run` in another process) with the
//!   appliance's traffic mix (`mix.rs`), receives what it forwards, answers its Neighbor
//!   Solicitations, and reports offered and received Mpps, loss and latency percentiles as
//!   JSON; with `--search`, the no-drop rate by bisection. Needs the feature `dpdk`.
//! - `profile`: writes the same mix as pcap files and a pktgen-dpdk Lua script (no DPDK
//!   needed), to drive a real appliance with pktgen-dpdk or TRex.
//!
//! The proxy must run with `[dpdk] synthetic_contexts = N` (the contexts of
//! `dataplane::bench::Synthetic`) and the addressing given here (defaults: those of
//! `configs/dpdk-memif.toml`).

// Without DPDK only `profile` is built: the receive side (stamps, ND, counters) is unused.
#![cfg_attr(not(feature = "dpdk"), allow(dead_code))]

#[cfg(feature = "dpdk")]
mod gen;
mod mix;
mod nd;
mod profiles;
mod stats;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Parser, Subcommand};
use dataplane::bench::Synthetic;
use dataplane::config::Prefix64;

use mix::{Addressing, Builder, Mix, Sizes};

#[derive(Debug, Parser)]
#[command(
    name = "pshim6-pktgen",
    version,
    about = "Traffic generator for the pshim6 appliance (DPDK)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send the mix through a proxy on two DPDK ports and measure (feature `dpdk`).
    Run(RunArgs),
    /// Write the mix as pcap files and a pktgen-dpdk Lua script.
    Profile(ProfileArgs),
}

/// The traffic: who is who, how many contexts, which classes and sizes.
#[derive(Debug, Args)]
struct TrafficArgs {
    /// The proxy's ULID prefix (a /64).
    #[arg(long, default_value = "fc00:1:1:1::")]
    ulid_prefix: Ipv6Addr,
    /// The PA prefix of the provider the outside port faces (a /64).
    #[arg(long, default_value = "2001:db8:1a::")]
    pa_prefix: Ipv6Addr,
    /// The proxy's MAC on the inside link.
    #[arg(long, default_value = "02:00:00:00:00:01")]
    dut_inside_mac: String,
    /// The proxy's MAC on the provider link.
    #[arg(long, default_value = "02:00:00:00:01:01")]
    dut_outside_mac: String,
    /// The generator's MAC on the inside link (all hosts).
    #[arg(long, default_value = "02:11:22:33:44:55")]
    host_mac: String,
    /// The generator's MAC on the provider link (the exit router).
    #[arg(long, default_value = "02:aa:aa:aa:aa:aa")]
    router_mac: String,
    /// Contexts (as preloaded in the proxy with `[dpdk] synthetic_contexts`).
    #[arg(long, default_value_t = 1000)]
    contexts: usize,
    /// Class weights: egress, ingress, natv6, control.
    #[arg(long, default_value = "egress=4,ingress=4,natv6=1,control=0")]
    mix: String,
    /// Frame size on the provider side (78..=1514), or `imix`.
    #[arg(long, default_value = "78")]
    size: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    traffic: TrafficArgs,
    /// EAL arguments, space-separated (e.g. "-l 0 --no-huge -m 512 --no-pci
    /// --file-prefix gen --vdev=net_memif0,role=client,socket=/tmp/in.sock ...").
    #[arg(long, allow_hyphen_values = true)]
    eal: String,
    /// The port facing the proxy's inside link.
    #[arg(long)]
    inside: String,
    /// The port facing the proxy's provider link.
    #[arg(long)]
    outside: String,
    /// Fixed rate in Mpps (0: as fast as the ports take); ignored with --search.
    #[arg(long, default_value_t = 0.0)]
    rate_mpps: f64,
    /// Search the no-drop rate by bisection.
    #[arg(long)]
    search: bool,
    /// Bisection steps after the flat-out trial.
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// Seconds per trial.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Loss fraction a no-drop trial may have (0: none; e.g. 0.0001 on a shared machine).
    #[arg(long, default_value_t = 0.0)]
    tolerance: f64,
    /// Seconds to wait for the links (the proxy's memif server) to come up.
    #[arg(long, default_value_t = 20.0)]
    link_timeout: f64,
    /// Keep the ports open this long after printing the report, so the peer can be stopped
    /// first (DPDK 22.11's memif server may crash when its client goes away).
    #[arg(long, default_value_t = 0.0)]
    hold_secs: f64,
    /// Mbufs in the generator's pool.
    #[arg(long, default_value_t = 8192)]
    mbufs: u32,
}

#[derive(Debug, Args)]
struct ProfileArgs {
    #[command(flatten)]
    traffic: TrafficArgs,
    /// Directory to write inside.pcap, outside.pcap and pshim6.lua into.
    #[arg(long)]
    out: PathBuf,
    /// Frames in both pcaps together.
    #[arg(long, default_value_t = 4096)]
    count: u64,
    /// pktgen-dpdk rate, percent of line rate.
    #[arg(long, default_value_t = 100)]
    rate_percent: u32,
    /// pktgen-dpdk run time, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
}

fn mac(s: &str) -> Result<[u8; 6]> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("MAC `{s}`: expected aa:bb:cc:dd:ee:ff");
    }
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| anyhow!("MAC `{s}`: bad octet `{p}`"))?;
    }
    Ok(m)
}

impl TrafficArgs {
    fn build(&self) -> Result<(Builder, Mix, Sizes)> {
        if self.contexts == 0 {
            bail!("--contexts: at least 1");
        }
        let (u, p) = (Prefix64::of(self.ulid_prefix), Prefix64::of(self.pa_prefix));
        let addr = Addressing {
            dut_inside_mac: mac(&self.dut_inside_mac)?,
            dut_outside_mac: mac(&self.dut_outside_mac)?,
            host_mac: mac(&self.host_mac)?,
            router_mac: mac(&self.router_mac)?,
            site: Synthetic::with_prefixes(u, p, self.contexts),
        };
        let mix = Mix::parse(&self.mix).map_err(|e| anyhow!("--mix: {e}"))?;
        let sizes = Sizes::parse(&self.size).map_err(|e| anyhow!("--size: {e}"))?;
        Ok((Builder { addr }, mix, sizes))
    }
}

fn profile(a: &ProfileArgs) -> Result<()> {
    let (builder, mix, sizes) = a.traffic.build()?;
    let opts = profiles::ProfileOptions {
        contexts: a.traffic.contexts,
        count: a.count,
        rate_percent: a.rate_percent,
        seconds: a.seconds,
    };
    let (i, o) = profiles::write(&a.out, &builder, &mix, &sizes, &opts)?;
    println!(
        "{}: inside.pcap {i} frames, outside.pcap {o} frames, pshim6.lua",
        a.out.display()
    );
    Ok(())
}

#[cfg(feature = "dpdk")]
fn run(a: &RunArgs) -> Result<()> {
    use std::time::Duration;

    use anyhow::Context;
    use dataplane::backend::dpdk::{init_eal, PortSet, PortSetConfig};

    let (builder, mix, sizes) = a.traffic.build()?;
    if !(a.seconds > 0.0 && a.seconds <= 600.0) {
        bail!("--seconds: in (0, 600]");
    }
    let mut eal = vec!["pshim6-pktgen".to_owned()];
    eal.extend(a.eal.split_whitespace().map(str::to_owned));
    init_eal(&eal).context("EAL init (check --eal)")?;
    let (ports, mut queues) = PortSet::open(&PortSetConfig {
        names: vec![a.inside.clone(), a.outside.clone()],
        queues: 1,
        mbufs_per_socket: a.mbufs,
        data_room: 2048,
        rx_desc: 1024,
        tx_desc: 1024,
        promiscuous: true,
    })
    .context("starting the ports")?;
    let outside = queues.pop().and_then(|mut q| q.pop());
    let inside = queues.pop().and_then(|mut q| q.pop());
    let (Some(inside), Some(outside)) = (inside, outside) else {
        bail!("no queues");
    };
    let mut g = gen::Generator::new(ports, [inside, outside], builder);
    g.wait_links(Duration::from_secs_f64(a.link_timeout))?;
    let opts = gen::TrialOptions {
        mix: mix.clone(),
        sizes,
        tolerance: a.tolerance,
        seconds: a.seconds,
        drain_ms: 100,
    };
    let n = a.traffic.contexts;
    let warm = g.warm_up(n, &opts, Duration::from_secs(20))?;
    let (trials, best) = if a.search {
        g.search(n, &opts, a.steps)
    } else {
        let t = g.trial(a.rate_mpps * 1e6, n, &opts);
        let best = t.passed.then(|| t.clone());
        (vec![t], best)
    };
    let report = serde_json::json!({
        "tool": "pshim6-pktgen",
        "mode": if a.search { "search" } else { "fixed" },
        "mix": a.traffic.mix,
        "size": a.traffic.size,
        "contexts": n,
        "tolerance": a.tolerance,
        "warmup": warm,
        "trials": trials,
        "no_drop_mpps": best.as_ref().map_or(0.0, |t| t.offered_mpps),
        "no_drop": best,
    });
    println!("{report}");
    std::io::Write::flush(&mut std::io::stdout()).context("stdout")?;
    if a.hold_secs > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(a.hold_secs.min(600.0)));
    }
    Ok(())
}

#[cfg(not(feature = "dpdk"))]
fn run(_: &RunArgs) -> Result<()> {
    bail!("`run` needs DPDK: build with `cargo build --release -p pshim6-pktgen --features dpdk`")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Run(a) => run(a),
        Command::Profile(a) => profile(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
