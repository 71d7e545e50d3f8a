//! `pshim6 dns-alg` (the DNS ALG standalone on kernel sockets) and `pshim6 dns zone` (the
//! records a site publishes).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use dns_alg::runner::Runner;
use dns_alg::zone::{zone_records, ZoneConfig};
use dns_alg::{AlgConfig, AlgEvent, HostTable};
use serde::Deserialize;

use crate::cli::{DnsAlgArgs, DnsZoneArgs};

pub(crate) use run_config::parse_endpoint;

/// Runs the ALG until SIGINT/SIGTERM (or `--stop-after`), printing each event on stdout, then
/// its counters.
pub(crate) fn dns_alg(args: &DnsAlgArgs) -> Result<ExitCode> {
    let mut cfg = AlgConfig::new(args.upstream.clone());
    cfg.ulid_type = args.ulid_type;
    cfg.upstream_timeout = Duration::from_millis(args.upstream_timeout_ms);
    if let Some(path) = &args.hosts {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        cfg.hosts = HostTable::parse(&text).with_context(|| format!("in {}", path.display()))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let deadline = args
        .stop_after
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let seed = rand::random::<u64>();
    let runner = Runner::start(args.listen, cfg, seed)
        .with_context(|| format!("starting the DNS ALG on {}", args.listen))?;
    eprintln!(
        "pshim6 dns-alg: serving {} (UDP+TCP), upstream {}; cache view: dig @{} -p {} -c CH -t TXT {}; SIGINT or SIGTERM stops",
        runner.local_addr(),
        args.upstream
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        runner.local_addr().ip(),
        runner.local_addr().port(),
        dns_alg::CACHE_VIEW_NAME,
    );
    let mut out = io::stdout().lock();
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        if let Ok(ev) = runner.events().recv_timeout(Duration::from_millis(200)) {
            print_event(&mut out, &ev).context("writing an event")?;
        }
    }
    let (stats, cache) = runner
        .snapshot()
        .ok_or_else(|| anyhow!("the ALG core stopped unexpectedly"))?;
    runner.shutdown();
    writeln!(out, "{stats:#?}")?;
    writeln!(out, "cache entries: {}", cache.len())?;
    Ok(ExitCode::SUCCESS)
}

fn print_event(out: &mut impl Write, ev: &AlgEvent) -> io::Result<()> {
    match ev {
        AlgEvent::PeerLocators {
            ulid,
            locators,
            ttl,
        } => writeln!(
            out,
            "peer {ulid} locators {} ttl {}",
            locators
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            ttl.as_secs()
        ),
        AlgEvent::ResolveFailed { ulid } => writeln!(out, "unresolved {ulid}"),
    }?;
    out.flush()
}

/// The zone file of `pshim6 dns zone`: only its `[dns]` section is read.
#[derive(Debug, Deserialize)]
struct ZoneFile {
    dns: ZoneConfig,
}

/// Reads the `[dns]` section of `path`.
fn load_zone(path: &Path) -> Result<ZoneConfig> {
    let file: ZoneFile = config::Config::builder()
        .add_source(config::File::new(
            &path.to_string_lossy(),
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(config::Config::try_deserialize)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(file.dns)
}

/// Prints the records the site publishes: AAAA per locator, the ULID record in RFC 3597
/// syntax, and the PTRs of the ULIDs.
pub(crate) fn dns_zone(args: &DnsZoneArgs) -> Result<ExitCode> {
    let cfg = load_zone(&args.config)?;
    let records = zone_records(&cfg).with_context(|| format!("in {}", args.config.display()))?;
    let mut out = io::stdout().lock();
    match out.write_all(records.render(&cfg.zone).as_bytes()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the records")?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(parse_endpoint("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_endpoint("[::1]").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_endpoint("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_endpoint("192.0.2.1:53").unwrap(),
            "192.0.2.1:53".parse().unwrap()
        );
        assert!(parse_endpoint("example.com").is_err());
    }

    #[test]
    fn zone_config_from_toml() {
        let dir = std::env::temp_dir().join(format!("pshim6-dns-zone-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("site.toml");
        fs::write(
            &path,
            "[dns]\nzone = \"site.example.\"\nhosts = [\n  { name = \"www\", ulid = \"fc00::1:2\", locators = [\"2001:db8:a::2\", \"2001:db8:b::2\"] },\n]\n",
        )
        .unwrap();
        let cfg = load_zone(&path).unwrap();
        let text = zone_records(&cfg).unwrap().render(&cfg.zone);
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            text.contains("www.site.example. 3600 IN AAAA 2001:db8:b::2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "www.site.example. 3600 IN TYPE65280 \\# 16 fc000000000000000000000000010002\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ip6.arpa. 3600 IN PTR www.site.example.\n"),
            "{text}"
        );
    }
}
