//! `pshim6 replay --config FILE --in IN.pcap --out OUT.pcap [--port NAME|auto] [--linger S]`:
//! feeds the frames of a capture (classic pcap, Ethernet) to the configured pipeline (one
//! worker with the real fast path, and the real slow path) as received on one port, writes
//! every frame the pipeline sends on any port to OUT.pcap, and prints the counters.
//!
//! Simulated time: the clock starts at the first input frame's timestamp and moves with the
//! capture's timestamps (a frame is fed once the slow path's timers due before it have run);
//! after the last frame it runs `--linger` seconds more (retransmissions, probes). Output
//! frames carry the simulated time at which they were sent. With a fixed `seed` in the
//! configuration the output is the same on every run (golden tests).
//!
//! `--port auto` picks each frame's port by its destination MAC (the port owning that MAC);
//! group-addressed frames (multicast ND) go to the inside port.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dataplane::backend::BufPool;
use dataplane::config::MacAddr;
use dataplane::io::PortId;
use dataplane::replay::Replay;
use wire::pcap::{PcapReader, PcapWriter};

use crate::cli::ReplayArgs;
use crate::cmd_run::print_report;

/// How input frames are assigned to ports.
enum PortChoice {
    /// Every frame arrives on this port.
    Fixed(PortId),
    /// By destination MAC: (MAC, port) of every port, inside first.
    ByMac(Vec<(MacAddr, PortId)>),
}

impl PortChoice {
    fn port_of(&self, frame: &[u8]) -> PortId {
        match self {
            PortChoice::Fixed(p) => *p,
            PortChoice::ByMac(macs) => {
                let inside = macs.first().map_or(PortId(0), |(_, p)| *p);
                frame
                    .get(..6)
                    .and_then(|dst| macs.iter().find(|(m, _)| m.0 == dst))
                    .map_or(inside, |(_, p)| *p)
            }
        }
    }
}

/// Replays `--in` through the pipeline of `--config` into `--out` and prints the counters.
pub(crate) fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    let cfg = run_config::load(&args.config)?;
    let dp = &cfg.pipeline.dataplane;
    let choice = match args.port.as_deref() {
        None => PortChoice::Fixed(dp.inside.port),
        Some("auto") => PortChoice::ByMac(
            std::iter::once((dp.inside.mac, dp.inside.port))
                .chain(dp.providers.iter().map(|p| (p.mac, p.port)))
                .collect(),
        ),
        Some(name) => match cfg.interfaces.iter().find(|(_, n)| n == name) {
            Some((p, _)) => PortChoice::Fixed(*p),
            None => bail!(
                "--port {name}: not an interface of the configuration (expected one of {}, or auto)",
                cfg.interfaces
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let names: Vec<(PortId, String)> = cfg.interfaces.clone();
    let linger = Duration::try_from_secs_f64(args.linger)
        .with_context(|| format!("--linger {}: expected seconds >= 0", args.linger))?;
    let input = File::open(&args.input).with_context(|| format!("{}", args.input.display()))?;
    let mut reader = PcapReader::new(BufReader::new(input))
        .with_context(|| format!("reading {}", args.input.display()))?;
    let output = File::create(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let mut writer = PcapWriter::new(BufWriter::new(output))?;

    let pool = Arc::new(BufPool::new(cfg.buffers.min(4096), cfg.max_frame));
    let mut replay = Replay::new(cfg.pipeline, cfg.site, &pool)?;
    let context = || format!("reading {}", args.input.display());
    let mut next = reader.next_record().with_context(context)?;
    // Simulated time 0 is the first frame's timestamp.
    let start = next.as_ref().map_or(0, |r| r.nanos);
    let mut sent = vec![0u64; names.len()];
    let mut write_err: Option<wire::pcap::PcapError> = None;
    let mut emit = |at: Duration, port: PortId, frame: &[u8]| {
        if let Some(n) = sent.get_mut(usize::from(port.0)) {
            *n += 1;
        }
        let nanos = start.saturating_add(at.as_nanos() as u64);
        if let Err(e) = writer.write_frame(nanos, frame) {
            write_err.get_or_insert(e);
        }
    };
    let (mut fed, mut refused) = (0u64, 0u64);
    while let Some(rec) = next {
        // A timestamp going backwards is fed at the current time.
        let at = Duration::from_nanos(rec.nanos.saturating_sub(start));
        replay.advance(at, &mut emit);
        if replay.feed(choice.port_of(&rec.frame), &rec.frame, &mut emit) {
            fed += 1;
        } else {
            refused += 1;
        }
        next = reader.next_record().with_context(context)?;
    }
    let end = replay.now() + linger;
    replay.advance(end, &mut emit);
    if let Some(e) = write_err {
        return Err(e).with_context(|| format!("writing {}", args.out.display()));
    }
    writer
        .into_inner()
        .and_then(|mut w| w.flush().map_err(Into::into))
        .with_context(|| format!("writing {}", args.out.display()))?;

    let mut out = io::stdout().lock();
    let summary = (|| -> io::Result<()> {
        writeln!(
            out,
            "replay: {fed} frame(s) fed, {refused} refused, {:.3} s simulated",
            replay.now().as_secs_f64()
        )?;
        for ((_, name), n) in names.iter().zip(&sent) {
            writeln!(out, "sent on {name}: {n}")?;
        }
        print_report(&mut out, &replay.report())
    })();
    match summary {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the counters")?,
    }
    Ok(ExitCode::SUCCESS)
}
