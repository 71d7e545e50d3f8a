//! Command-line interface: one clap `Cli` with a subcommand per concern. Each subcommand's
//! work lives in a `cmd_*.rs` module; `main.rs` only dispatches.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// P-SHIM6: a SHIM6 proxy appliance for multihomed IPv6 sites.
#[derive(Debug, Parser)]
#[command(name = "pshim6", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Cryptographically Generated Addresses (RFC 3972).
    #[command(subcommand)]
    Cga(CgaCommand),
    /// Hash-Based Address sets (RFC 5535).
    #[command(subcommand)]
    Hba(HbaCommand),
    /// Generate the site's RSA key pair (PKCS#8 PEM, file mode 0600).
    Keygen(KeygenArgs),
    /// Runs two simulated multihomed sites with the SHIM6 engines in simulated time, writing
    /// every packet on the wire to a pcap.
    Simulate(SimulateArgs),
    /// Benchmarks (`pshim6 bench pipeline`).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Runs the appliance: workers and slow path on the configured interfaces until SIGINT or
    /// SIGTERM, then prints the counters.
    Run(RunArgs),
    /// Replays a capture through the configured pipeline (fast path and slow path, simulated
    /// time) and writes every frame it sends to another capture; prints the counters.
    Replay(ReplayArgs),
    /// Checks a `pshim6 run` configuration (with its `PSHIM6_*` environment overrides) and
    /// exits: 0 when it would start, 1 with the key and the problem otherwise.
    CheckConfig(CheckConfigArgs),
    /// DHCPv6 CMULA server on kernel sockets (standalone) until SIGINT or SIGTERM; with
    /// `--dump`, prints the journaled bindings instead.
    Dhcp(crate::cmd_dhcp::DhcpArgs),
    /// DNS ALG on kernel sockets (standalone): AAAA + ULID record lookups, locator cache.
    /// Debug view of the cache: `dig @ADDR -c CH -t TXT cache.pshim6.`.
    DnsAlg(DnsAlgArgs),
    /// DNS publishing helpers.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Two multihomed sites of unmodified Linux hosts in network namespaces, live TCP across
    /// provider failures (needs root).
    Lab(crate::lab::LabArgs),
    /// The lab's TCP stream tool (run by `pshim6 lab` inside the hosts' namespaces).
    #[command(subcommand, hide = true)]
    LabTraffic(crate::lab::traffic::TrafficCommand),
}

/// `pshim6 cga ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CgaCommand {
    /// Generate a CGA (and its CGA Parameters) under a /64 prefix.
    Generate(CgaGenerateArgs),
    /// Verify an address against a hex-encoded CGA Parameters data structure.
    Verify(CgaVerifyArgs),
}

/// `pshim6 hba ...`
#[derive(Debug, Subcommand)]
pub(crate) enum HbaCommand {
    /// Generate an HBA set: one address per prefix.
    Generate(HbaGenerateArgs),
}

/// A 64-bit subnet prefix given as `ADDR/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix64(pub(crate) [u8; 8]);

impl Prefix64 {
    /// The prefix as text, `addr/64`.
    pub(crate) fn to_text(self) -> String {
        let mut a = [0; 16];
        a[..8].copy_from_slice(&self.0);
        format!("{}/64", Ipv6Addr::from(a))
    }
}

/// Parses `ADDR/64`; any other length, or bits set beyond the first 64, is refused.
pub(crate) fn parse_prefix64(s: &str) -> Result<Prefix64, String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected ADDR/64"))?;
    if len != "64" {
        return Err(format!(
            "`{s}`: only /64 prefixes can hold a CGA (RFC 3972 §2)"
        ));
    }
    let addr: Ipv6Addr = addr.parse().map_err(|e| format!("`{s}`: {e}"))?;
    let o = addr.octets();
    if o[8..].iter().any(|b| *b != 0) {
        return Err(format!("`{s}`: host bits set below /64"));
    }
    let mut p = [0; 8];
    p.copy_from_slice(&o[..8]);
    Ok(Prefix64(p))
}

/// Arguments of `pshim6 cga generate`.
#[derive(Debug, Args)]
pub(crate) struct CgaGenerateArgs {
    /// Subnet prefix, e.g. fc00:0:0:1::/64.
    #[arg(long, value_parser = parse_prefix64)]
    pub(crate) prefix: Prefix64,
    /// Security parameter; generation supports 0..=2 (cost ~2^(16*Sec) hashes).
    #[arg(long)]
    pub(crate) sec: u8,
    /// Site key (PKCS#8 PEM); without it a fresh key is generated and discarded.
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// Size of the fresh key when --key is not given.
    #[arg(long, default_value_t = 2048, conflicts_with = "key")]
    pub(crate) bits: usize,
    /// Print one JSON object instead of readable lines.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `pshim6 cga verify`. Both are parsed by the command itself so that every
/// malformed input exits 1 with a message.
#[derive(Debug, Args)]
pub(crate) struct CgaVerifyArgs {
    /// The address to check.
    #[arg(long)]
    pub(crate) address: String,
    /// The CGA Parameters data structure, hex.
    #[arg(long)]
    pub(crate) parameters: String,
}

/// Arguments of `pshim6 hba generate`.
#[derive(Debug, Args)]
pub(crate) struct HbaGenerateArgs {
    /// Comma-separated /64 prefixes of the set, e.g. 2001:db8:a::/64,2001:db8:b::/64.
    #[arg(long, value_parser = parse_prefix64, value_delimiter = ',', required = true)]
    pub(crate) prefixes: Vec<Prefix64>,
    /// Security parameter, 0..=2 (RFC 5535 §6).
    #[arg(long, default_value_t = 0)]
    pub(crate) sec: u8,
    /// Site key (PKCS#8 PEM) for a CGA-compatible set; without it a pure HBA set.
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// Print one JSON object instead of readable lines.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `pshim6 keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, created with mode 0600).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// RSA modulus size (1024..=4096).
    #[arg(long, default_value_t = 2048)]
    pub(crate) bits: usize,
    /// Replace an existing file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix64("fc00:0:0:1::/64").unwrap(),
            Prefix64([0xfc, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(
            Prefix64([0xfc, 0, 0, 0, 0, 0, 0, 1]).to_text(),
            "fc00:0:0:1::/64"
        );
        assert!(parse_prefix64("fc00::").is_err());
        assert!(parse_prefix64("fc00::/48").is_err());
        assert!(parse_prefix64("fc00::1/64").is_err());
        assert!(parse_prefix64("nope/64").is_err());
    }
}

/// `pshim6 simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Scenario: handshake, recovery, update, failover, local-down, simultaneous, host-peer,
    /// or `all` (each in turn).
    #[arg(long, default_value = "all")]
    pub(crate) scenario: String,
    /// Capture file to write (Ethernet/IPv6 frames, simulated timestamps). With `all`, the
    /// scenario name is inserted before the extension.
    #[arg(long)]
    pub(crate) pcap: Option<PathBuf>,
    /// Random loss on every packet, in percent.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) loss: f64,
    /// One-way delay between the sites, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub(crate) delay: u64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print one JSON object per scenario instead of a summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `pshim6 run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The configuration file (TOML; see configs/single-site-afpacket.toml).
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// Stop by itself after this many seconds (tests, dry runs).
    #[arg(long)]
    pub(crate) stop_after: Option<f64>,
    /// Log lines on stderr as `text` or `json` (filter: `PSHIM6_LOG`, else `RUST_LOG`).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) log_format: crate::logging::LogFormat,
}

/// Arguments of `pshim6 check-config`.
#[derive(Debug, Args)]
pub(crate) struct CheckConfigArgs {
    /// The configuration file.
    pub(crate) file: PathBuf,
}

/// `pshim6 dns ...`
#[derive(Debug, Subcommand)]
pub(crate) enum DnsCommand {
    /// Print the zone records a site publishes: AAAA per locator, the ULID record (RFC 3597
    /// syntax) per host, PTR per ULID.
    Zone(DnsZoneArgs),
}

/// Arguments of `pshim6 dns zone`.
#[derive(Debug, Args)]
pub(crate) struct DnsZoneArgs {
    /// TOML file with a `[dns]` section: `zone`, `hosts = [{ name, ulid, locators = [...] }]`,
    /// optional `ttl` (3600) and `ulid_type` (65280).
    #[arg(long)]
    pub(crate) config: PathBuf,
}

/// Arguments of `pshim6 dns-alg`.
#[derive(Debug, Args)]
pub(crate) struct DnsAlgArgs {
    /// Address served over UDP and TCP: ADDR or [ADDR]:PORT (port 53 by default).
    #[arg(long, value_parser = crate::cmd_dns::parse_endpoint)]
    pub(crate) listen: std::net::SocketAddr,
    /// Upstream servers, comma-separated, each ADDR or [ADDR]:PORT; tried in turn.
    #[arg(long, value_parser = crate::cmd_dns::parse_endpoint, value_delimiter = ',', required = true)]
    pub(crate) upstream: Vec<std::net::SocketAddr>,
    /// RR type of the ULID record (a private-use type).
    #[arg(long, default_value_t = 65280)]
    pub(crate) ulid_type: u16,
    /// The site's own hosts, `/etc/hosts` layout (`CMULA name...` per line), answered locally.
    #[arg(long)]
    pub(crate) hosts: Option<PathBuf>,
    /// Wait for one upstream answer this long (milliseconds) before trying the next server.
    #[arg(long, default_value_t = 1500)]
    pub(crate) upstream_timeout_ms: u64,
    /// Stop by itself after this many seconds (tests, dry runs).
    #[arg(long)]
    pub(crate) stop_after: Option<f64>,
    /// Log lines on stderr as `text` or `json` (filter: `PSHIM6_LOG`, else `RUST_LOG`).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) log_format: crate::logging::LogFormat,
}

/// `pshim6 bench ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Generator -> worker(s) -> sink over in-memory rings: a null forwarder (the baseline) and
    /// the egress, ingress and NATv6 paths, measured in the same run.
    Pipeline(BenchPipelineArgs),
}

/// `pshim6 bench pipeline`.
#[derive(Debug, Args)]
pub(crate) struct BenchPipelineArgs {
    /// I/O backend: `mem` (in-memory rings) or `dpdk` (back-to-back DPDK ring ports; needs a
    /// build with `--features dpdk`).
    #[arg(long, default_value = "mem")]
    pub(crate) backend: String,
    /// EAL arguments for `--backend dpdk`, split on white space.
    #[arg(
        long,
        allow_hyphen_values = true,
        default_value = "-l 0 --no-huge -m 512 --no-pci --no-shconf --log-level=error"
    )]
    pub(crate) eal: String,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
    /// Contexts in the table.
    #[arg(long, default_value_t = 1000)]
    pub(crate) contexts: usize,
    /// Frame size in bytes (Ethernet header included).
    #[arg(long, default_value_t = 128)]
    pub(crate) size: usize,
    /// Measured seconds per mode.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) seconds: f64,
    /// Do not pin threads to cores.
    #[arg(long)]
    pub(crate) no_pin: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `pshim6 replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The configuration file (as for `pshim6 run`; set `seed` for repeatable output).
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// Input capture (classic pcap, Ethernet link type).
    #[arg(long = "in")]
    pub(crate) input: PathBuf,
    /// Output capture: every frame the pipeline sends, on any port.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Interface the input frames arrive on (default: the inside one), or `auto`: by
    /// destination MAC (group-addressed frames go to the inside port).
    #[arg(long)]
    pub(crate) port: Option<String>,
    /// Simulated seconds to keep running after the last frame (timers, retransmissions).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) linger: f64,
}
