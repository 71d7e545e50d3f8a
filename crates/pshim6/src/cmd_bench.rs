//! `pshim6 bench pipeline`: the data plane's per-packet cost against a null forwarder measured
//! in the same run (the machines are shared; ratios travel, nanoseconds do not).

use std::process::ExitCode;

use anyhow::{bail, Result};
use dataplane::bench::{run_pipeline_bench, BenchOptions};

use crate::cli::BenchPipelineArgs;

/// Runs the pipeline benchmark and prints its report.
pub(crate) fn pipeline(args: &BenchPipelineArgs) -> Result<ExitCode> {
    if args.backend == "dpdk" {
        bail!(
            "--backend dpdk: not written yet; the DPDK path is measured by \
             benches/pktgen/acceptance.sh (pshim6-pktgen over memif, against testpmd io)"
        );
    }
    if args.backend != "mem" {
        bail!(
            "--backend {}: this build has the `mem` backend only (DPDK needs `--features dpdk`)",
            args.backend
        );
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds {} must be in (0, 3600]", args.seconds);
    }
    if args.workers == 0 || args.contexts == 0 {
        bail!("--workers and --contexts must be at least 1");
    }
    let opts = BenchOptions {
        workers: args.workers,
        contexts: args.contexts,
        size: args.size,
        seconds: args.seconds,
        pin: !args.no_pin,
    };
    let report = run_pipeline_bench(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "null {:.2} Mpps | egress {:.2} Mpps ({:.2}x) | ingress {:.2} Mpps ({:.2}x) | NATv6 {:.2} Mpps ({:.2}x)",
            report.null_mpps,
            report.egress_mpps,
            report.egress_ratio,
            report.ingress_mpps,
            report.ingress_ratio,
            report.natv6_mpps,
            report.natv6_ratio
        );
        println!(
            "{} contexts, {} bytes/context in the fast-path table, {} workers, {}-byte frames",
            report.contexts, report.bytes_per_context, report.workers, report.size
        );
    }
    Ok(ExitCode::SUCCESS)
}
