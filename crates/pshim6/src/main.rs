//! pshim6: the P-SHIM6 appliance binary. This file only dispatches subcommands (see `cli.rs`);
//! each family of commands has its own `cmd_*.rs` module.

mod announce;
mod api_bridge;
mod bgp_signal;
mod cli;
mod cmd_bench;
mod cmd_check;
mod cmd_crypto;
mod cmd_dhcp;
mod cmd_dns;
mod cmd_replay;
mod cmd_run;
mod cmd_simulate;
mod lab;
mod logging;
mod operate;
mod run_dpdk;
mod run_events;
mod services;

use std::process::ExitCode;

use clap::Parser;

use cli::{CgaCommand, Cli, Command, DnsCommand, HbaCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cga(CgaCommand::Generate(args)) => cmd_crypto::cga_generate(&args),
        Command::Cga(CgaCommand::Verify(args)) => cmd_crypto::cga_verify(&args),
        Command::Hba(HbaCommand::Generate(args)) => cmd_crypto::hba_generate(&args),
        Command::Keygen(args) => cmd_crypto::keygen(&args),
        Command::Simulate(args) => cmd_simulate::simulate(&args),
        Command::Bench(cli::BenchCommand::Pipeline(args)) => cmd_bench::pipeline(&args),
        Command::Run(args) => cmd_run::run(&args),
        Command::Replay(args) => cmd_replay::replay(&args),
        Command::CheckConfig(args) => cmd_check::check_config(&args),
        Command::Dhcp(args) => cmd_dhcp::dhcp(&args),
        Command::DnsAlg(args) => cmd_dns::dns_alg(&args),
        Command::Dns(DnsCommand::Zone(args)) => cmd_dns::dns_zone(&args),
        Command::Lab(args) => lab::main(&args),
        Command::LabTraffic(cmd) => lab::traffic::main(&cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
