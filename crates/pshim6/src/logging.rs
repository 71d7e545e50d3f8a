//! Logs of `pshim6 run`: `tracing` events to stderr, filtered by `PSHIM6_LOG` (else
//! `RUST_LOG`, else `info`) in `tracing-subscriber` env-filter syntax, e.g.
//! `PSHIM6_LOG=info,pshim6::context=warn`; as text or one JSON object per line.
//!
//! Only the slow path and the housekeeping log (context established / moved / failed over /
//! recovered / removed, policy changes, drains). Workers never log per packet, and release
//! builds compile out everything below `info` (`tracing` feature `release_max_level_info`).

use anyhow::{anyhow, Result};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event (fields flattened: `event`, `tag`, `provider`, ...).
    Json,
}

/// The filter from the environment (`PSHIM6_LOG`, else `RUST_LOG`, else `info`).
fn filter() -> Result<EnvFilter> {
    let spec = std::env::var("PSHIM6_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    EnvFilter::try_new(&spec).map_err(|e| anyhow!("PSHIM6_LOG / RUST_LOG `{spec}`: {e}"))
}

/// Installs the global subscriber (once per process; later calls are refused quietly, so
/// tests may call it more than once).
pub(crate) fn init(format: LogFormat) -> Result<()> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter()?)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
