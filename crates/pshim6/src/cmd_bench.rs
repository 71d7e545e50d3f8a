//! `pshim6 bench pipeline`: the data plane's per-packet cost against a null forwarder measured
//! in the same run (the machines are shared; ratios travel, nanoseconds do not).

use std::process::ExitCode;

use anyhow::{bail, Result};
use dataplane::bench::{run_pipeline_bench, BenchOptions, BenchReport};

use crate::cli::BenchPipelineArgs;

/// Runs the pipeline benchmark and prints its report.
pub(crate) fn pipeline(args: &BenchPipelineArgs) -> Result<ExitCode> {
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
    let (report, json) = match args.backend.as_str() {
        "mem" => {
            let r = run_pipeline_bench(&opts)?;
            let j = serde_json::to_string(&r)?;
            (r, j)
        }
        "dpdk" => dpdk(&opts, &args.eal)?,
        other => bail!("--backend {other}: expected `mem` or `dpdk`"),
    };
    if args.json {
        println!("{json}");
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
            "{} contexts, {} bytes/context in the fast-path table, {} workers, {}-byte frames, \
             {} backend",
            report.contexts, report.bytes_per_context, report.workers, report.size, report.backend
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The DPDK run: starts the EAL with `eal` (white-space separated), measures over ring ports.
/// Returns the report and its JSON (with the DPDK-only fields).
#[cfg(feature = "dpdk")]
fn dpdk(opts: &BenchOptions, eal: &str) -> Result<(BenchReport, String)> {
    use anyhow::Context;
    use dataplane::backend::dpdk::bench::run_dpdk_pipeline_bench;
    use dataplane::backend::dpdk::init_eal;

    let mut args = vec!["pshim6"];
    args.extend(eal.split_whitespace());
    init_eal(&args).with_context(|| format!("--eal {eal:?}"))?;
    let r = run_dpdk_pipeline_bench(opts)?;
    let json = serde_json::to_string(&r)?;
    Ok((r.report, json))
}

/// Without the `dpdk` feature: refuses, naming the build flag.
#[cfg(not(feature = "dpdk"))]
fn dpdk(_: &BenchOptions, eal: &str) -> Result<(BenchReport, String)> {
    bail!(
        "--backend dpdk (EAL arguments {eal:?}): this pshim6 was built without DPDK; rebuild \
         with `cargo build --release -p pshim6 --features dpdk`"
    )
}
