//! `pshim6 dhcp`: the DHCPv6 CMULA server on kernel sockets, or (`--dump`) the bindings its
//! journal holds, with the CGA Parameters that prove each address. The dump is read-only and
//! safe while a server runs; its JSON field names are an interface (tests parse them).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use dhcp::{DhcpConfig, JournalStore};
use serde::Serialize;

/// Arguments of `pshim6 dhcp`.
#[derive(Debug, Args)]
pub(crate) struct DhcpArgs {
    /// The inside interface to serve: UDP 547 bound to it and joined to ff02::1:2, RAs on it.
    #[arg(long, required_unless_present = "dump")]
    pub(crate) interface: Option<String>,
    /// Configuration file (TOML with a `[dhcp]` section; see crates/dhcp/src/config.rs).
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// Print the journaled bindings as JSON and exit.
    #[arg(long, conflicts_with = "interface")]
    pub(crate) dump: bool,
    /// Stop by itself after this many seconds (tests).
    #[arg(long)]
    pub(crate) stop_after: Option<f64>,
}

/// One binding in `--dump` output.
#[derive(Serialize)]
struct BindingJson {
    duid: String,
    iaid: u32,
    state: &'static str,
    address: String,
    /// The CGA Parameters data structure (hex), for `pshim6 cga verify`.
    parameters: String,
    modifier: String,
    collision_count: u8,
    sec: u8,
    locators: Vec<String>,
    declined: Vec<String>,
    valid_until: u64,
}

/// `--dump` output.
#[derive(Serialize)]
struct DumpJson {
    server_duid: Option<String>,
    bindings: Vec<BindingJson>,
    warnings: Vec<String>,
}

/// `pshim6 dhcp`.
pub(crate) fn dhcp(args: &DhcpArgs) -> Result<ExitCode> {
    let cfg = DhcpConfig::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    if args.dump {
        return dump(&cfg);
    }
    let Some(interface) = args.interface.as_deref() else {
        bail!("--interface is required to serve");
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    if let Some(secs) = args.stop_after {
        let stop = Arc::clone(&stop);
        let after = Duration::try_from_secs_f64(secs).context("--stop-after")?;
        std::thread::spawn(move || {
            std::thread::sleep(after);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let log = |line: &str| eprintln!("pshim6 dhcp: {line}");
    let counters = dhcp::standalone::run(interface, cfg, &stop, &log)
        .with_context(|| format!("DHCPv6 server on {interface}"))?;
    eprintln!("pshim6 dhcp: stopped; {counters:?}");
    Ok(ExitCode::SUCCESS)
}

fn dump(cfg: &DhcpConfig) -> Result<ExitCode> {
    let pem = std::fs::read_to_string(&cfg.site_key)
        .with_context(|| format!("reading site key {}", cfg.site_key.display()))?;
    let key = cga::SiteKey::from_pkcs8_pem(&pem).context("loading the site key")?;
    let (state, report) = JournalStore::read(&cfg.journal)
        .with_context(|| format!("reading journal {}", cfg.journal.display()))?;
    let out = DumpJson {
        server_duid: state.server_duid.as_deref().map(hex::encode),
        bindings: state
            .bindings
            .iter()
            .map(|b| BindingJson {
                duid: hex::encode(&b.client.duid),
                iaid: b.client.iaid,
                state: b.state.as_str(),
                address: b.address.to_string(),
                parameters: hex::encode(b.cga_parameters(key.public_key_der()).to_bytes()),
                modifier: hex::encode(b.modifier),
                collision_count: b.collision_count,
                sec: b.sec,
                locators: b.locators.iter().map(ToString::to_string).collect(),
                declined: b.declined.iter().map(ToString::to_string).collect(),
                valid_until: b.valid_until,
            })
            .collect(),
        warnings: report.warnings,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
