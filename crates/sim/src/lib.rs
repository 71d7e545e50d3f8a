//! Two multihomed sites running pshim6's SHIM6 engines over a simulated provider network, in
//! simulated time, with loss, delay and link cuts; everything on the wire can be captured to a
//! pcap. This is what `pshim6 simulate` runs.
//!
//! Each site is an engine (the proxy's slow path) plus a translation table applied to every
//! datagram of a legacy host (the proxy's fast path, reduced to its rules). Site A has providers
//! `2001:db8:a:1::/64` and `2001:db8:a:2::/64` and ULIDs under `fc00:0:0:a::/64`; site B has
//! `2001:db8:b:1::/64`, `2001:db8:b:2::/64` and `fc00:0:0:b::/64` (or, in `host-peer`, is a
//! plain SHIM6 host whose ULID is its first locator).

pub mod network;
pub mod report;
pub mod scenario;
pub mod site;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use report::SimReport;
pub use scenario::Scenario;

use network::Network;
use shim6::EngineConfig;
use site::{Site, SiteSpec};

/// Errors that stop a simulation (a scenario that merely fails its checks is not an error).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Writing the capture failed.
    #[error("pcap: {0}")]
    Pcap(String),
    /// The engine refused its configuration or input.
    #[error("engine: {0}")]
    Engine(String),
    /// A key or CGA could not be made.
    #[error("cga: {0}")]
    Cga(String),
    /// A packet could not be built or translated.
    #[error("wire: {0}")]
    Wire(String),
    /// The options are out of range.
    #[error("bad option: {0}")]
    BadOption(String),
    /// The event loop did not advance (an engine kept asking to be woken in the past).
    #[error("simulation stalled at {0:?}")]
    Stalled(Duration),
}

/// How to run one simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Which scenario.
    pub scenario: Scenario,
    /// Where to write the capture, if anywhere.
    pub pcap: Option<PathBuf>,
    /// Random loss on every packet on the wire, in percent (0..=90).
    pub loss_percent: f64,
    /// One-way delay between the sites.
    pub delay: Duration,
    /// Seed of every random choice (engines, loss, CGA modifiers).
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            scenario: Scenario::Handshake,
            pcap: None,
            loss_percent: 0.0,
            delay: Duration::from_millis(20),
            seed: 1,
        }
    }
}

/// Gap between two datagrams of a host.
pub const SEND_INTERVAL: Duration = Duration::from_millis(50);
/// When the initiating host sends its first datagram.
const FIRST_SEND: Duration = Duration::from_secs(1);
/// How often the fast path's activity counters are reported to the engines.
const ACTIVITY_TICK: Duration = Duration::from_millis(100);
/// How long the scenario runs after its event (or after the start, if it has none).
const SETTLE: Duration = Duration::from_secs(25);
/// How long the sites may take to get traffic flowing both ways before the run gives up: room
/// for the whole I1 schedule, an E-FAILED hold-down (60 s) and a second attempt.
const WARMUP_MAX: Duration = Duration::from_secs(300);
/// Upper bound on loop iterations: far above any scenario's needs, it turns a stall into an error.
const MAX_STEPS: u64 = 20_000_000;

const KEY_A: &str = include_str!("../keys/site-a.pem");
const KEY_B: &str = include_str!("../keys/site-b.pem");
const ULID_A: [u8; 8] = [0xfc, 0, 0, 0, 0, 0, 0, 0x0a];
const ULID_B: [u8; 8] = [0xfc, 0, 0, 0, 0, 0, 0, 0x0b];
/// `2001:db8:a:N::/64`: site A's provider prefixes.
pub const fn prefix_a(n: u8) -> [u8; 8] {
    [0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, n]
}
/// `2001:db8:b:N::/64`: site B's provider prefixes.
pub const fn prefix_b(n: u8) -> [u8; 8] {
    [0x20, 0x01, 0x0d, 0xb8, 0, 0x0b, 0, n]
}

/// The failover bound the REAP timers imply for this network: Send Timeout, then the probe
/// exploration, plus a round trip and one send interval for the first datagram on the new pair.
///
/// Without loss the working pair is found within the initial probes ([`reap::failover_bound`]).
/// With loss, probes or their answers can be lost: the bound then allows the probe schedule up
/// to [`LOSSY_PROBES`] probes (0, 0.5, 1, 1.5, 2, 3, 5, 9, 17 s nominal), each gap randomised up
/// to +20%, which at 20% loss leaves a chance below one in a thousand of no confirmed pair.
pub fn failover_bound(config: &EngineConfig, delay: Duration, loss_percent: f64) -> Duration {
    let tail = 2 * delay + SEND_INTERVAL;
    if loss_percent > 0.0 {
        let r = &config.reap;
        let probing: Duration = (1..LOSSY_PROBES).map(|n| r.nominal_probe_gap(n)).sum();
        r.send_timeout + probing.mul_f64(1.2) + tail
    } else {
        reap::failover_bound(&config.reap) + tail
    }
}

/// How many probes [`failover_bound`] allows for when packets are lost.
pub const LOSSY_PROBES: u32 = 9;

/// The bound for a local link-down: the proxy acts at once, so one probe round trip, then the
/// next datagram's one-way trip.
pub fn local_down_bound(delay: Duration) -> Duration {
    2 * delay + SEND_INTERVAL + delay
}

/// Runs one simulation to its end and reports what happened.
pub fn run(opts: &SimOptions) -> Result<SimReport, SimError> {
    if !(0.0..=90.0).contains(&opts.loss_percent) {
        return Err(SimError::BadOption(format!(
            "loss {}% not in 0..=90",
            opts.loss_percent
        )));
    }
    let start = Instant::now();
    let mut now = start;
    let sc = opts.scenario;
    let mut net = Network::new(start, opts.delay, opts.loss_percent / 100.0, opts.seed);
    if let Some(path) = &opts.pcap {
        net.capture(path)?;
    }
    let config = EngineConfig::default();
    let spec_a = SiteSpec {
        name: "a",
        key_pem: KEY_A,
        ulid_prefix: ULID_A,
        providers: vec![prefix_a(1), prefix_a(2)],
        config: config.clone(),
    };
    let spec_b = SiteSpec {
        name: "b",
        key_pem: KEY_B,
        ulid_prefix: if sc == Scenario::HostPeer {
            prefix_b(1)
        } else {
            ULID_B
        },
        providers: vec![prefix_b(1), prefix_b(2)],
        config: config.clone(),
    };
    net.add_ulid_prefix(ULID_A);
    if sc != Scenario::HostPeer {
        net.add_ulid_prefix(ULID_B);
    }
    let mut a = Site::new(spec_a, opts.seed.wrapping_mul(2), now)?;
    let mut b = Site::new(spec_b, opts.seed.wrapping_mul(2) + 1, now)?;
    a.learn_peer(b.host, b.locators());
    b.learn_peer(a.host, a.locators());

    // The scenario's clock starts once traffic flows both ways: with loss, establishment can
    // take several of the RFC's I1 retransmissions (4 s, 8 s, 16 s, ... randomised).
    let mut end = start + WARMUP_MAX;
    let mut event_at: Option<Instant> = None;
    let mut ready = false;
    let mut event_done = false;
    let mut cut_at = None;
    let mut next_a = sc.a_initiates().then_some(start + FIRST_SEND);
    let mut next_b = sc.b_initiates().then_some(start + FIRST_SEND);
    let (mut seq_a, mut seq_b) = (0u64, 0u64);
    let mut next_tick = start + ACTIVITY_TICK;
    let mut steps = 0u64;

    while now < end {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(SimError::Stalled(now.duration_since(start)));
        }
        // A host that does not initiate starts answering once it heard from its peer.
        if next_a.is_none() && a.stats.delivered > 0 {
            next_a = Some(now);
        }
        if next_b.is_none() && b.stats.delivered > 0 {
            next_b = Some(now);
        }
        let candidates = [
            net.next_arrival(),
            a.poll_timeout(),
            b.poll_timeout(),
            next_a,
            next_b,
            Some(next_tick),
            event_at.filter(|_| !event_done),
            Some(end),
        ];
        let next = candidates.into_iter().flatten().min().unwrap_or(end);
        now = now.max(next);

        while let Some(p) = net.take_due(now) {
            if a.owns(p.dst()) {
                a.receive(now, p)?;
            } else if b.owns(p.dst()) {
                b.receive(now, p)?;
            }
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        if next_a.is_some_and(|t| t <= now) {
            seq_a += 1;
            a.host_send(now, &mut net, b.host, seq_a)?;
            next_a = Some(now + SEND_INTERVAL);
        }
        if next_b.is_some_and(|t| t <= now) {
            seq_b += 1;
            b.host_send(now, &mut net, a.host, seq_b)?;
            next_b = Some(now + SEND_INTERVAL);
        }
        if !event_done && event_at.is_some_and(|t| t <= now) {
            event_done = true;
            cut_at = Some(now);
            disrupt(sc, now, &mut a, &mut b, &mut net)?;
        }
        if !ready && a.stats.delivered > 0 && b.stats.delivered > 0 {
            ready = true;
            event_at = sc.event_at().map(|d| now + d);
            let failover_time = if sc == Scenario::Failover {
                failover_bound(&config, opts.delay, opts.loss_percent)
            } else {
                Duration::ZERO
            };
            end = event_at.unwrap_or(now) + SETTLE + failover_time;
        }
        if next_tick <= now {
            a.report_activity(now);
            b.report_activity(now);
            next_tick = now + ACTIVITY_TICK;
        }
        a.flush(now, &mut net)?;
        b.flush(now, &mut net)?;
    }
    net.finish()?;
    let timeline = report::Timeline {
        start,
        end,
        event_at: cut_at,
    };
    Ok(report::build(opts, &config, timeline, &a, &b, &net))
}

/// Applies the scenario's disruptive event.
fn disrupt(
    sc: Scenario,
    now: Instant,
    a: &mut Site,
    b: &mut Site,
    net: &mut Network,
) -> Result<(), SimError> {
    let active = a.current_pair(b.host).map(|p| shim6::prefix64(p.local.0));
    match sc {
        Scenario::Recovery => {
            // A crash loses the proxy's state; its durable key and bindings survive.
            b.restart(now)?;
        }
        Scenario::Update => {
            a.add_provider(now, prefix_a(3));
            a.remove_provider(now, prefix_a(1));
            net.set_cut(prefix_a(1), true);
        }
        Scenario::Failover => {
            if let Some(p) = active {
                net.set_cut(p, true);
            }
        }
        Scenario::LocalDown => {
            if let Some(p) = active {
                net.set_cut(p, true);
                a.set_provider_up(now, p, false);
            }
        }
        Scenario::Handshake | Scenario::Simultaneous | Scenario::HostPeer => {}
    }
    Ok(())
}
