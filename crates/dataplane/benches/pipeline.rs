//! `cargo bench -p pshim6-dataplane --bench pipeline -- [--workers N] [--contexts N]
//! [--size BYTES] [--seconds S] [--no-pin]`: the pipeline benchmark of `pshim6 bench pipeline`
//! without the CLI, printing its JSON report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dataplane::bench::{run_pipeline_bench, BenchOptions};

fn main() {
    let mut opts = BenchOptions::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a number after the flag")
        };
        match a.as_str() {
            "--workers" => opts.workers = num() as usize,
            "--contexts" => opts.contexts = num() as usize,
            "--size" => opts.size = num() as usize,
            "--seconds" => opts.seconds = num(),
            "--no-pin" => opts.pin = false,
            // `cargo bench` adds `--bench`; ignore anything else.
            _ => {}
        }
    }
    let report = run_pipeline_bench(&opts).expect("benchmark setup");
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
