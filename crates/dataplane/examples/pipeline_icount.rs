//! Runs one mode of the pipeline benchmark with the feeder and one worker taking turns on one
//! thread, for instruction counts (BENCHMARKS.md, "Instruction counts"):
//!
//! ```text
//! cargo build --release -p pshim6-dataplane --example pipeline_icount
//! valgrind --tool=callgrind --toggle-collect='*inline_poll*' \
//!     target/release/examples/pipeline_icount egress 1000 20000
//! ```
//!
//! Arguments: mode (`null`, `egress`, `ingress`, `natv6`), contexts, worker polls. Prints
//! the packets the worker handled; instructions per packet = callgrind's total / packets.
#![allow(clippy::unwrap_used)]

use dataplane::bench::{run_inline, BenchOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("egress", String::as_str);
    let contexts = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let bursts = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let opts = BenchOptions {
        contexts,
        ..BenchOptions::default()
    };
    let r = run_inline(&opts, mode, bursts).unwrap();
    println!(
        "{mode}: {} packets, {} unforwarded, {contexts} contexts",
        r.packets, r.unforwarded
    );
}
