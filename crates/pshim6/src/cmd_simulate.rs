//! `pshim6 simulate`: two multihomed sites running the SHIM6 engines over a simulated network.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sim::{Scenario, SimOptions, SimReport};

use crate::cli::SimulateArgs;

/// Runs the chosen scenario(s); exit 1 when any scenario fails its checks.
pub(crate) fn simulate(args: &SimulateArgs) -> Result<ExitCode> {
    let scenarios: Vec<Scenario> = if args.scenario == "all" {
        Scenario::ALL.to_vec()
    } else {
        vec![args.scenario.parse().map_err(anyhow::Error::msg)?]
    };
    if !(0.0..=90.0).contains(&args.loss) {
        bail!("--loss {} is not a percentage in 0..=90", args.loss);
    }
    let mut all_ok = true;
    for sc in &scenarios {
        let pcap = args.pcap.as_ref().map(|p| {
            if scenarios.len() > 1 {
                per_scenario_path(p, sc.name())
            } else {
                p.clone()
            }
        });
        let opts = SimOptions {
            scenario: *sc,
            pcap,
            loss_percent: args.loss,
            delay: Duration::from_millis(args.delay),
            seed: args.seed,
        };
        let report = sim::run(&opts).with_context(|| format!("scenario {sc}"))?;
        all_ok &= report.ok;
        let mut out = io::stdout().lock();
        let written = if args.json {
            serde_json::to_writer(&mut out, &report)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            write_summary(&mut out, &report)
        };
        match written {
            // A reader that went away (`| head`) is not an error of ours: stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            other => other.context("writing the report")?,
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `out.pcap` + `failover` -> `out-failover.pcap`.
fn per_scenario_path(p: &Path, name: &str) -> PathBuf {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("sim");
    let ext = p.extension().and_then(|s| s.to_str()).unwrap_or("pcap");
    p.with_file_name(format!("{stem}-{name}.{ext}"))
}

fn write_summary(out: &mut impl Write, r: &SimReport) -> io::Result<()> {
    let verdict = if r.ok { "ok" } else { "FAILED" };
    writeln!(
        out,
        "{:<13} {verdict:<6} established={} contexts a={} b={} sent={} delivered={} lost={} cut={}",
        r.scenario, r.established, r.contexts.a, r.contexts.b, r.sent, r.delivered, r.lost, r.cut
    )?;
    if let Some(f) = r.failover_ms {
        let bound = r
            .failover_bound_ms
            .map(|b| format!(" (bound {b:.0} ms)"))
            .unwrap_or_default();
        let rev = r
            .reverse_failover_ms
            .map(|b| format!(", B->A {b:.0} ms"))
            .unwrap_or_default();
        writeln!(
            out,
            "              resumed A->B {f:.0} ms after the event{bound}{rev}"
        )?;
    }
    let kinds: Vec<String> = r.packets.iter().map(|(k, v)| format!("{k}={v}")).collect();
    writeln!(out, "              packets: {}", kinds.join(" "))?;
    for c in &r.failed_checks {
        writeln!(out, "              failed: {c}")?;
    }
    if let Some(p) = &r.pcap {
        writeln!(out, "              capture: {p}")?;
    }
    Ok(())
}
