//! The `pshim6 run` configuration file (TOML, read with the `config` crate) and its
//! translation into the runtime structures of the data plane and the slow path.
//!
//! Unknown keys are refused (`deny_unknown_fields`), and every error names the key it is
//! about, e.g. ``providers[1].prefix: `2001:db8::/48`: expected ADDR/64``. See
//! `configs/single-site-afpacket.toml` for a complete, commented example.
//!
//! Environment variables override the file ([`layers`]): `PSHIM6_` + the key in upper case,
//! `__` between nested keys, e.g. `PSHIM6_API__LISTEN=[::1]:9000`,
//! `PSHIM6_SLOW_PATH__PENDING_TOTAL=8192`, `PSHIM6_WORKER_CORES=2,3`.

mod announce_section;
mod api_section;
mod bgp_signal;
pub mod dhcp_store;
mod error;
mod layers;

pub use announce_section::{AnnounceSettings, Role};
pub use api_section::{ApiSettings, DEFAULT_LISTEN};
pub use bgp_signal::BgpSignalSettings;
pub use dhcp_store::StoreSettings;
pub use error::{ConfigError, Result};
pub use layers::{env_overrides, Reload};

use std::fs;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cga::{CgaParameters, SiteKey};
use dataplane::config::{DataplaneConfig, Exit, InsideConfig, MacAddr, Prefix64, ProviderConfig};
use dataplane::io::{PortId, BURST};
use dataplane::slowpath::te::TePolicy;
use dataplane::slowpath::{
    NdConfig, PeerLocatorCache, PipelineConfig, RaConfig, SiteSetup, SlowPathConfig, StaticResolver,
};
use error::{bail, err, Context};
use serde::Deserialize;
use shim6::EngineConfig;
use wire::{Locator, Ulid};

/// Which I/O backend owns the interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// AF_PACKET sockets with mmap'd rings (Linux; the default).
    AfPacket,
    /// In-memory cables going nowhere (tests, dry runs of a configuration).
    Mem,
    /// DPDK ethdevs (feature `dpdk`), set up from the `[dpdk]` table.
    Dpdk,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    backend: Option<String>,
    ulid_prefix: String,
    site_key: PathBuf,
    workers: Option<usize>,
    worker_cores: Option<Vec<usize>>,
    table_capacity: Option<usize>,
    punt_queue: Option<usize>,
    inject_queue: Option<usize>,
    buffers: Option<usize>,
    seed: Option<u64>,
    inside: RawInside,
    providers: Vec<RawProvider>,
    #[serde(default)]
    hosts: Vec<RawHost>,
    #[serde(default)]
    peers: Vec<RawPeer>,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    slow_path: RawSlowPath,
    #[serde(default)]
    afpacket: RawAfPacket,
    #[serde(default)]
    dpdk: dpdk::RawDpdk,
    api: Option<api_section::RawApi>,
    /// Route announcement through the local BIRD (`[announce]`, issue #9).
    announce: Option<announce_section::RawAnnounce>,
    dns: Option<RawDns>,
    dhcp: Option<RawDhcp>,
    /// Traffic engineering (`[te]`): the slow path's policy, validated here; applied live
    /// on SIGHUP and by `PUT /v1/te/policy`.
    #[serde(default)]
    te: TePolicy,
    /// BGP as a failure signal (`[bgp_signal]`): the kernel table of each provider.
    bgp_signal: Option<bgp_signal::RawBgpSignal>,
}

/// `[dns]`: the DNS ALG on `inside.global` port 53 (the options of `pshim6 dns-alg`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    upstream: Vec<String>,
    ulid_rr_type: Option<u16>,
    upstream_timeout_ms: Option<u64>,
    upstream_attempts: Option<usize>,
    upstream_port: Option<u16>,
    cache_size: Option<usize>,
    cache_max_ttl_secs: Option<u64>,
    rate_limit_per_sec: Option<u32>,
    rate_limit_burst: Option<u32>,
    max_pending: Option<usize>,
    hosts: Option<PathBuf>,
    host_ttl: Option<u32>,
    cache_view: Option<bool>,
}

/// `[dhcp]`: the DHCPv6 server on the inside link (the options of `pshim6 dhcp`; key, prefixes
/// and DNS server come from the rest of the file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDhcp {
    /// The lease journal (backend "journal", the default).
    journal: Option<PathBuf>,
    /// `[dhcp.store]`: journal or etcd.
    store: Option<dhcp_store::RawStore>,
    preferred_lifetime: Option<u32>,
    valid_lifetime: Option<u32>,
    t1: Option<u32>,
    t2: Option<u32>,
    sec: Option<u8>,
    rapid_commit: Option<bool>,
    preference: Option<u8>,
    max_bindings: Option<usize>,
    offer_lifetime: Option<u32>,
    rate_limit_per_sec: Option<f64>,
    rate_limit_burst: Option<u32>,
    #[serde(default, rename = "static")]
    static_bindings: Vec<RawStatic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatic {
    duid: String,
    iaid: u32,
    modifier: String,
    collision_count: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInside {
    interface: String,
    mac: Option<String>,
    mtu: Option<u16>,
    link_local: String,
    global: String,
    router_advertisements: Option<RawRa>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRa {
    interval_secs: Option<u64>,
    managed: Option<bool>,
    other: Option<bool>,
    autonomous: Option<bool>,
    router_lifetime: Option<u16>,
    mtu: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: u16,
    interface: String,
    mac: Option<String>,
    mtu: Option<u16>,
    prefix: String,
    address: Option<String>,
    up: Option<bool>,
    exit: RawExit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExit {
    next_hop: String,
    tunnel_local: Option<String>,
    tunnel_remote: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    ulid: String,
    parameters: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    ulid: String,
    locators: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    i1_timeout_ms: Option<u64>,
    i1_retries_max: Option<u32>,
    idle_timeout_secs: Option<u64>,
    max_contexts: Option<usize>,
    reap_send_timeout_ms: Option<u64>,
    reap_keepalive_timeout_ms: Option<u64>,
    reap_initial_probe_timeout_ms: Option<u64>,
    reap_max_probe_timeout_ms: Option<u64>,
    reap_randomise: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlowPath {
    pending_per_pair: Option<usize>,
    pending_total: Option<usize>,
    pending_timeout_ms: Option<u64>,
    icmp_errors_per_sec: Option<u32>,
    housekeeping_ms: Option<u64>,
    nd_reachable_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAfPacket {
    frame_size: Option<usize>,
    rx_frames: Option<usize>,
    tx_frames: Option<usize>,
    socket_buffer: Option<usize>,
    promiscuous: Option<bool>,
    qdisc_bypass: Option<bool>,
}

/// AF_PACKET sizing from the `[afpacket]` table (queue count is the worker count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfPacketSizing {
    /// Bytes per ring frame.
    pub frame_size: Option<usize>,
    /// Frames in each receive ring.
    pub rx_frames: Option<usize>,
    /// Frames in each transmit ring.
    pub tx_frames: Option<usize>,
    /// Socket buffer size (SO_RCVBUF / SO_SNDBUF).
    pub socket_buffer: Option<usize>,
    /// Promiscuous mode on every interface.
    pub promiscuous: Option<bool>,
    /// PACKET_QDISC_BYPASS on transmit.
    pub qdisc_bypass: Option<bool>,
}

/// A loaded configuration, ready to start.
pub struct RunConfig {
    /// The I/O backend.
    pub backend: Backend,
    /// Interface name of every port.
    pub interfaces: Vec<(PortId, String)>,
    /// Data plane, slow path and table sizes.
    pub pipeline: PipelineConfig,
    /// Site key, engine settings, hosts and peers.
    pub site: SiteSetup,
    /// Worker threads.
    pub workers: usize,
    /// Packet buffers in the pool.
    pub buffers: usize,
    /// Largest frame a port may carry (MTU + link and tunnel headers).
    pub max_frame: usize,
    /// `[afpacket]`.
    pub afpacket: AfPacketSizing,
    /// `[dpdk]`.
    pub dpdk: dpdk::DpdkSettings,
    /// The operator API, when `[api]` is configured.
    pub api: Option<ApiSettings>,
    /// Backend name for `pshim6_build_info`.
    pub backend_name: &'static str,
    /// Interface of each provider id (the API's provider names).
    pub provider_names: Vec<(u16, PortId, String)>,
    /// `[[peers]]`, which a reload applies live.
    pub static_peers: Vec<(Ulid, Vec<Locator>)>,
    /// `[dns]`, if present.
    pub dns: Option<DnsSettings>,
    /// `[dhcp]`, if present (paths resolved).
    pub dhcp: Option<dhcp::DhcpConfig>,
    /// `[dhcp.store]`: where the bindings live (the journal unless etcd is configured).
    pub dhcp_store: Option<StoreSettings>,
    /// The traffic-engineering policy to start with (`[te]`).
    pub te: TePolicy,
    /// `[bgp_signal]`, if present.
    pub bgp_signal: Option<bgp_signal::BgpSignalSettings>,
    /// Route announcement (`[announce]`), if enabled.
    pub announce: Option<AnnounceSettings>,
}

/// The DNS ALG's settings.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// The ALG's own settings.
    pub alg: dns_alg::AlgConfig,
    /// Source port of upstream queries (random in the dynamic range unless configured).
    pub upstream_port: u16,
}

/// Reads and checks the configuration file at `path`, with the process's `PSHIM6_*`
/// environment overrides layered on top.
pub fn load(path: &Path) -> Result<RunConfig> {
    load_layered(path, env_overrides()).map(|(c, _)| c)
}

/// Reads `path` with `env` (variable → value) layered over it; also returns what a live
/// reload compares ([`Reload`]).
pub fn load_layered(
    path: &Path,
    env: std::collections::HashMap<String, String>,
) -> Result<(RunConfig, Reload)> {
    let (raw, settings): (RawConfig, _) = layers::read(path, env)?;
    // What only a restart applies: everything but the settings a reload changes live.
    let live = Reload::new(settings, &["peers", "te", "dns.upstream"]);
    let base = path.parent().unwrap_or(Path::new("."));
    let cfg = convert(raw, base).with_context(|| format!("in {}", path.display()))?;
    Ok((cfg, live))
}

/// A DNS server as `ADDR`, `ADDR:PORT` or `[ADDR]:PORT` (port 53 when not given).
pub fn parse_endpoint(s: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{s}`: expected ADDR, ADDR:PORT or [ADDR]:PORT"))
}

/// `ADDR/64` → prefix.
fn prefix(key: &str, s: &str) -> Result<Prefix64> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| err!("{key}: `{s}`: expected ADDR/64"))?;
    let a: Ipv6Addr = addr.parse().map_err(|e| err!("{key}: `{s}`: {e}"))?;
    if len != "64" || a.to_bits() as u64 != 0 {
        bail!("{key}: `{s}`: expected a /64 prefix with no host bits");
    }
    Ok(Prefix64::of(a))
}

fn addr(key: &str, s: &str) -> Result<Ipv6Addr> {
    s.parse().map_err(|e| err!("{key}: `{s}`: {e}"))
}

fn mac(key: &str, s: &str) -> Result<MacAddr> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut m = [0u8; 6];
    if parts.len() != 6 {
        bail!("{key}: `{s}`: expected six hex octets aa:bb:cc:dd:ee:ff");
    }
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| err!("{key}: `{s}`: bad octet `{p}`"))?;
    }
    Ok(MacAddr(m))
}

/// The configured MAC, else the interface's own (`/sys/class/net/IF/address`).
fn mac_or_interface(key: &str, configured: Option<&str>, interface: &str) -> Result<MacAddr> {
    if let Some(s) = configured {
        return mac(key, s);
    }
    let path = format!("/sys/class/net/{interface}/address");
    let text = fs::read_to_string(&path).map_err(|e| {
        err!("{key}: not set, and the MAC of `{interface}` cannot be read from {path}: {e}")
    })?;
    mac(key, text.trim())
}

/// Loads the site key, refusing a file that group or others can read.
pub fn load_site_key(path: &Path) -> Result<SiteKey> {
    let meta = fs::metadata(path).with_context(|| format!("site_key: {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "site_key: {} has mode {mode:04o}; the private key must be mode 0600 (chmod 600)",
            path.display()
        );
    }
    let pem = fs::read_to_string(path)
        .with_context(|| format!("site_key: reading {}", path.display()))?;
    SiteKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("site_key: {} is not a PKCS#8 PEM RSA key", path.display()))
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn engine_config(e: &RawEngine) -> EngineConfig {
    let mut c = EngineConfig::default();
    if let Some(v) = e.i1_timeout_ms {
        c.i1_timeout = ms(v);
    }
    if let Some(v) = e.i1_retries_max {
        c.i1_retries_max = v;
    }
    if let Some(v) = e.idle_timeout_secs {
        c.idle_timeout = Duration::from_secs(v);
    }
    if let Some(v) = e.max_contexts {
        c.max_contexts = v;
    }
    if let Some(v) = e.reap_send_timeout_ms {
        c.reap.send_timeout = ms(v);
    }
    if let Some(v) = e.reap_keepalive_timeout_ms {
        c.reap.default_keepalive_timeout = ms(v);
    }
    if let Some(v) = e.reap_initial_probe_timeout_ms {
        c.reap.initial_probe_timeout = ms(v);
    }
    if let Some(v) = e.reap_max_probe_timeout_ms {
        c.reap.max_probe_timeout = ms(v);
    }
    if let Some(v) = e.reap_randomise {
        c.reap.randomise = v;
    }
    c
}

/// A path from the file, relative to its directory.
fn relative(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn dns_settings(d: &RawDns, base: &Path) -> Result<DnsSettings> {
    let mut upstream = Vec::new();
    for (n, u) in d.upstream.iter().enumerate() {
        let sa = parse_endpoint(u).map_err(|e| err!("dns.upstream[{n}]: {e}"))?;
        if !sa.is_ipv6() {
            bail!("dns.upstream[{n}]: `{u}`: the appliance speaks IPv6 only");
        }
        upstream.push(sa);
    }
    let mut alg = dns_alg::AlgConfig::new(upstream);
    if let Some(t) = d.ulid_rr_type {
        alg.ulid_type = t;
    }
    if let Some(v) = d.upstream_timeout_ms {
        alg.upstream_timeout = ms(v);
    }
    if let Some(v) = d.upstream_attempts {
        alg.upstream_attempts = v;
    }
    if let Some(v) = d.cache_size {
        alg.cache_capacity = v;
    }
    if let Some(v) = d.cache_max_ttl_secs {
        alg.cache_max_ttl = Duration::from_secs(v);
    }
    if let Some(v) = d.rate_limit_per_sec {
        alg.rate_limit.per_second = v;
    }
    if let Some(v) = d.rate_limit_burst {
        alg.rate_limit.burst = v;
    }
    if let Some(v) = d.max_pending {
        alg.max_pending = v;
    }
    if let Some(v) = d.host_ttl {
        alg.host_ttl = v;
    }
    if let Some(v) = d.cache_view {
        alg.cache_view = v;
    }
    if let Some(h) = &d.hosts {
        let path = relative(base, h);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("dns.hosts: reading {}", path.display()))?;
        alg.hosts = dns_alg::HostTable::parse(&text)
            .with_context(|| format!("dns.hosts: in {}", path.display()))?;
    }
    alg.validate().map_err(|e| err!("dns: {e}"))?;
    let upstream_port = match d.upstream_port {
        Some(0) => bail!("dns.upstream_port: must not be 0"),
        Some(p) => p,
        // RFC 6056 §2.1: the dynamic range; unpredictable, against forged answers.
        None => rand::random::<u16>() % 16_384 + 49_152,
    };
    if upstream_port == 53 {
        bail!("dns.upstream_port: 53 is where the ALG answers the hosts");
    }
    Ok(DnsSettings { alg, upstream_port })
}

fn hex_bytes(key: &str, s: &str) -> Result<dhcp::HexBytes> {
    dhcp::HexBytes::try_from(s.to_string()).map_err(|e| err!("{key}: {e}"))
}

fn dhcp_config(
    d: &RawDhcp,
    base: &Path,
    key_path: &Path,
    dp: &DataplaneConfig,
) -> Result<(dhcp::DhcpConfig, StoreSettings)> {
    let store = dhcp_store::convert(
        d.store.as_ref(),
        d.journal.as_ref().map(|j| relative(base, j)),
    )?;
    let p64 = |p: Prefix64| dhcp::Prefix64(p.0.to_be_bytes());
    let defaults = dhcp::DhcpConfig::from_toml_str(
        "[dhcp]\nsite_key = \"k\"\nulid_prefix = \"fc00::/64\"\njournal = \"j\"\n",
    )
    .map_err(|e| err!("dhcp defaults: {e}"))?;
    let mut static_bindings = Vec::new();
    for (n, b) in d.static_bindings.iter().enumerate() {
        static_bindings.push(dhcp::StaticBinding {
            duid: hex_bytes(&format!("dhcp.static[{n}].duid"), &b.duid)?,
            iaid: b.iaid,
            modifier: hex_bytes(&format!("dhcp.static[{n}].modifier"), &b.modifier)?,
            collision_count: b.collision_count.unwrap_or(0),
        });
    }
    let cfg = dhcp::DhcpConfig {
        site_key: key_path.to_path_buf(),
        ulid_prefix: p64(dp.ulid_prefix),
        pa_prefixes: dp.providers.iter().map(|p| p64(p.prefix)).collect(),
        // Option 23: the ALG's address.
        dns_servers: vec![dp.inside.global],
        preferred_lifetime: d.preferred_lifetime.unwrap_or(defaults.preferred_lifetime),
        valid_lifetime: d.valid_lifetime.unwrap_or(defaults.valid_lifetime),
        t1: d.t1,
        t2: d.t2,
        sec: d.sec.unwrap_or(0),
        journal: dhcp_store::journal_path(&store).to_path_buf(),
        rapid_commit: d.rapid_commit.unwrap_or(defaults.rapid_commit),
        preference: d.preference.unwrap_or(defaults.preference),
        max_bindings: d.max_bindings.unwrap_or(defaults.max_bindings),
        offer_lifetime: d.offer_lifetime.unwrap_or(defaults.offer_lifetime),
        rate_limit: dhcp::RateLimitConfig {
            per_second: d
                .rate_limit_per_sec
                .unwrap_or(defaults.rate_limit.per_second),
            burst: d.rate_limit_burst.unwrap_or(defaults.rate_limit.burst),
        },
        static_bindings,
        // The slow path sends the RAs (`[inside.router_advertisements]`).
        ra: defaults.ra,
    };
    cfg.validate().map_err(|e| err!("dhcp: {e}"))?;
    Ok((cfg, store))
}

fn convert(raw: RawConfig, base: &Path) -> Result<RunConfig> {
    let backend = match raw.backend.as_deref() {
        None | Some("afpacket") => Backend::AfPacket,
        Some("mem") => Backend::Mem,
        Some("dpdk") => Backend::Dpdk,
        Some(other) => bail!("backend: `{other}`: expected `afpacket`, `mem` or `dpdk`"),
    };
    let ulid_prefix = prefix("ulid_prefix", &raw.ulid_prefix)?;
    // DPDK ports without a configured MAC get their device's, read once the EAL is up
    // (`run_dpdk::resolve_macs`); until then they hold a placeholder.
    let mut mac_from_device = Vec::new();
    let mut port_mac = |key: &str, configured: Option<&str>, interface: &str, port: PortId| {
        if backend == Backend::Dpdk && configured.is_none() {
            mac_from_device.push(port);
            return Ok(dpdk::MAC_PLACEHOLDER);
        }
        mac_or_interface(key, configured, interface)
    };
    let i = &raw.inside;
    let inside = InsideConfig {
        port: PortId(0),
        mac: port_mac("inside.mac", i.mac.as_deref(), &i.interface, PortId(0))?,
        mtu: i.mtu.unwrap_or(1500),
        link_local: addr("inside.link_local", &i.link_local)?,
        global: addr("inside.global", &i.global)?,
    };
    let mut interfaces = vec![(PortId(0), i.interface.clone())];
    let mut providers = Vec::new();
    for (n, p) in raw.providers.iter().enumerate() {
        let key = |f: &str| format!("providers[{n}].{f}");
        let port = PortId(u16::try_from(n + 1).map_err(|_| err!("providers: too many"))?);
        let next_hop = addr(&key("exit.next_hop"), &p.exit.next_hop)?;
        let exit = match (&p.exit.tunnel_local, &p.exit.tunnel_remote) {
            (None, None) => Exit::Direct { next_hop },
            (Some(l), Some(r)) => Exit::Tunnel {
                local: addr(&key("exit.tunnel_local"), l)?,
                remote: addr(&key("exit.tunnel_remote"), r)?,
                next_hop,
            },
            _ => bail!(
                "{}: a tunnel needs both tunnel_local and tunnel_remote",
                key("exit")
            ),
        };
        providers.push(ProviderConfig {
            id: p.id,
            port,
            mac: port_mac(&key("mac"), p.mac.as_deref(), &p.interface, port)?,
            mtu: p.mtu.unwrap_or(1500),
            prefix: prefix(&key("prefix"), &p.prefix)?,
            exit,
            address: p
                .address
                .as_deref()
                .map(|a| addr(&key("address"), a))
                .transpose()?,
            up: p.up.unwrap_or(true),
        });
        interfaces.push((port, p.interface.clone()));
    }
    let worker_cores: Vec<Option<usize>> = match (&raw.worker_cores, raw.workers) {
        (Some(cores), None) => cores.iter().map(|c| Some(*c)).collect(),
        (None, n) => vec![None; n.unwrap_or(1)],
        (Some(_), Some(_)) => {
            bail!("workers: give either `workers` (unpinned) or `worker_cores`, not both")
        }
    };
    let dataplane = DataplaneConfig {
        ulid_prefix,
        inside,
        providers,
        punt_queue: raw.punt_queue.unwrap_or(4096),
        inject_queue: raw.inject_queue.unwrap_or(1024),
        burst: BURST,
        worker_cores,
    };
    dataplane.validate().map_err(|e| err!("{e}"))?;
    let s = &raw.slow_path;
    let defaults = SlowPathConfig::default();
    let slow_path = SlowPathConfig {
        pending_per_pair: s.pending_per_pair.unwrap_or(defaults.pending_per_pair),
        pending_total: s.pending_total.unwrap_or(defaults.pending_total),
        pending_timeout: s.pending_timeout_ms.map_or(defaults.pending_timeout, ms),
        icmp_errors_per_sec: s
            .icmp_errors_per_sec
            .unwrap_or(defaults.icmp_errors_per_sec),
        housekeeping: s.housekeeping_ms.map_or(defaults.housekeeping, ms),
        nd: NdConfig {
            reachable: s
                .nd_reachable_secs
                .map_or(NdConfig::default().reachable, Duration::from_secs),
            ..NdConfig::default()
        },
        ra: i.router_advertisements.as_ref().map(|r| {
            let d = RaConfig::default();
            RaConfig {
                interval: r.interval_secs.map_or(d.interval, Duration::from_secs),
                managed: r.managed.unwrap_or(d.managed),
                other: r.other.unwrap_or(d.other),
                autonomous: r.autonomous.unwrap_or(d.autonomous),
                router_lifetime: r.router_lifetime.unwrap_or(d.router_lifetime),
                mtu: r.mtu,
            }
        }),
        ..defaults
    };
    if slow_path.icmp_errors_per_sec == 0 {
        bail!("slow_path.icmp_errors_per_sec: must be at least 1");
    }
    let ids: Vec<u16> = dataplane.providers.iter().map(|p| p.id).collect();
    raw.te.validate(&ids).map_err(|e| err!("te.{e}"))?;
    let bgp_signal = raw
        .bgp_signal
        .as_ref()
        .map(|b| bgp_signal::convert(b, &ids))
        .transpose()?;
    let engine = engine_config(&raw.engine);
    engine.validate().map_err(|e| err!("engine: {e}"))?;
    let key_path = if raw.site_key.is_absolute() {
        raw.site_key.clone()
    } else {
        base.join(&raw.site_key)
    };
    if !key_path.exists() {
        bail!(
            "site_key: {} is missing (make one with `pshim6 keygen --out {}`)",
            key_path.display(),
            key_path.display()
        );
    }
    let key = load_site_key(&key_path)?;
    let mut hosts = Vec::new();
    for (n, h) in raw.hosts.iter().enumerate() {
        let ulid = Ulid(addr(&format!("hosts[{n}].ulid"), &h.ulid)?);
        let bytes = hex::decode(h.parameters.trim())
            .map_err(|e| err!("hosts[{n}].parameters: not hex: {e}"))?;
        let params =
            CgaParameters::parse(&bytes).map_err(|e| err!("hosts[{n}].parameters: {e}"))?;
        cga::verify(ulid.0, &params)
            .map_err(|e| err!("hosts[{n}]: {} is not a CGA of these parameters: {e}", ulid))?;
        hosts.push((ulid, params));
    }
    let mut peers = PeerLocatorCache::new();
    let mut static_peers = Vec::new();
    for (n, p) in raw.peers.iter().enumerate() {
        let ulid = Ulid(addr(&format!("peers[{n}].ulid"), &p.ulid)?);
        let mut locs = Vec::new();
        for (k, l) in p.locators.iter().enumerate() {
            locs.push(Locator(addr(&format!("peers[{n}].locators[{k}]"), l)?));
        }
        if locs.is_empty() {
            bail!("peers[{n}].locators: at least one locator");
        }
        static_peers.push((ulid, locs.clone()));
        peers.insert(ulid, locs);
    }
    let workers = dataplane.worker_cores.len();
    let max_mtu = dataplane
        .providers
        .iter()
        .map(|p| p.mtu)
        .chain([dataplane.inside.mtu])
        .max()
        .unwrap_or(1500);
    let pipeline = PipelineConfig {
        dataplane,
        slow_path,
        table_capacity: raw.table_capacity.unwrap_or(1 << 16),
        neighbor_capacity: 4096,
    };
    if pipeline.table_capacity == 0 {
        bail!("table_capacity: must be at least 1");
    }
    let dns = raw
        .dns
        .as_ref()
        .map(|d| dns_settings(d, base))
        .transpose()?;
    if dns.is_some()
        && pipeline
            .dataplane
            .providers
            .iter()
            .all(|p| p.address.is_none())
    {
        bail!(
            "dns: upstream queries leave from a provider's own address: set providers[].address \
             (an address under that provider's prefix) on at least one provider"
        );
    }
    let (dhcp, dhcp_store) = raw
        .dhcp
        .as_ref()
        .map(|d| dhcp_config(d, base, &key_path, &pipeline.dataplane))
        .transpose()?
        .unzip();
    let a = &raw.afpacket;
    let buffers = raw.buffers.unwrap_or(16_384);
    let mut dpdk = raw.dpdk.settings(buffers)?;
    dpdk.mac_from_device = mac_from_device;
    let api = raw
        .api
        .as_ref()
        .map(|r| api_section::convert(r, base, &pipeline.dataplane.worker_cores))
        .transpose()?;
    let provider_names = pipeline
        .dataplane
        .providers
        .iter()
        .zip(&raw.providers)
        .map(|(p, r)| (p.id, p.port, r.interface.clone()))
        .collect();
    let announce = match &raw.announce {
        Some(a) => announce_section::convert(a)?,
        None => None,
    };
    Ok(RunConfig {
        announce,
        api,
        backend_name: match backend {
            Backend::AfPacket => "afpacket",
            Backend::Mem => "mem",
            Backend::Dpdk => "dpdk",
        },
        provider_names,
        static_peers,
        dns,
        dhcp,
        dhcp_store,
        backend,
        interfaces,
        pipeline,
        site: SiteSetup {
            key,
            engine,
            hosts,
            seed: raw.seed.unwrap_or_else(rand::random),
            peers,
            resolver: Box::new(StaticResolver::default()),
        },
        workers,
        buffers,
        // Room for a VLAN tag and the tunnel header a provider exit may add.
        max_frame: usize::from(max_mtu) + 14 + 4 + 40,
        afpacket: AfPacketSizing {
            frame_size: a.frame_size,
            rx_frames: a.rx_frames,
            tx_frames: a.tx_frames,
            socket_buffer: a.socket_buffer,
            promiscuous: a.promiscuous,
            qdisc_bypass: a.qdisc_bypass,
        },
        dpdk,
        te: raw.te,
        bgp_signal,
    })
}

pub mod dpdk;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(test)]
mod tests;
