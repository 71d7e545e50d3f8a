//! The traffic-engineering simulation of issue #8 through the in-memory pipeline on real
//! threads: 1,024 communications with a heavy-tailed size mix through two complete pipelines
//! back to back (as `twosite_mem`), busy-polling workers and wall-clock time. The issue's
//! 10,000-communication version with the ±2 % bound is `te_sim_replay` (the same pipelines
//! on simulated time, deterministic); this one checks TE with real threads and timers, with
//! loose bounds.
//!
//! ```text
//!  32 hosts ==inside== [site 1 proxy] ==1A== +------+ ==2A== [site 2 proxy] ==inside== 32 hosts
//!                                    ==1B== | core | ==2B==
//!                                           +------+
//! ```
//!
//! Every communication is one ULID pair (site 1 host i → site 2 host j), so one SHIM6
//! context: its first datagram waits for the automatic handshake, then it sends its
//! Pareto-distributed number of datagrams, one every 10 ms. Site 1 runs a weighted 70/30
//! policy; when half the communications have started, the policy changes live to 50/50. The
//! core (independent of the code under test) counts the bytes of SHIM6 payload frames on
//! site 1's two provider links:
//! - from one rebalance period after the start until the change: 70/30 within ±10 %;
//! - from one rebalance period after the change until the last one starts: 50/50 within ±5 %;
//! - every datagram of every communication arrives, byte for byte (no context breaks).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mem_lab;
mod twosite_common;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use cga::CgaParameters;
use dataplane::backend::mem::MemQueue;
use dataplane::buf::PacketBuf;
use dataplane::config::{MacAddr, Prefix64};
use dataplane::io::PortQueue;
use dataplane::slowpath::SiteSetup;
use mem_lab::core_router::{CoreRouter, Pacing};
use mem_lab::MemWires;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use twosite_common::core_routes::CoreRoutes;
use twosite_common::te::{
    assert_no_context_broke, assert_share, print_reports, share_a, shuffled_pairs, weighted,
};
use twosite_common::*;
use wire::Ulid;

/// Hosts per site; every (site 1, site 2) host pair is one communication.
const HOSTS: usize = 32;
const COMMUNICATIONS: usize = HOSTS * HOSTS;
/// Communications started per second at most (so each phase lasts 10 s or more).
const START_RATE: f64 = 50.0;
/// Communications waiting for their context at most.
const WINDOW: usize = 200;
/// A communication whose datagram 0 has not arrived after this long counts as broken.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
/// The whole drive stops after this long (the test then fails on what is missing).
const GIVE_UP: Duration = Duration::from_secs(300);
/// The policy's rebalance period.
const PERIOD: Duration = Duration::from_secs(2);
/// Datagram spacing within a communication.
const SPACING: Duration = Duration::from_millis(10);

/// Payload bytes the core received so far from site 1's links A and B.
fn site1(core: &CoreRouter) -> [u64; 2] {
    let b = core.bytes();
    [b[0], b[1]]
}

/// The hosts of one site on its inside link (one MAC, every ULID of the site's /64): answers
/// ND for them, sends datagrams, checks what arrives.
struct Hosts {
    q: MemQueue,
    mac: MacAddr,
    prefix: Prefix64,
    proxy_mac: MacAddr,
    received: HashMap<(Ipv6Addr, Ipv6Addr), BTreeSet<u32>>,
    errors: Vec<String>,
}

impl Hosts {
    fn send(&mut self, src: Ulid, dst: Ulid, seq: u32) -> bool {
        let mut f = eth(self.proxy_mac, self.mac);
        f.extend_from_slice(&datagram(src, dst, seq));
        let Some(mut b) = self.q.alloc() else {
            return false;
        };
        b.reset_from(&f).unwrap();
        self.q.tx_burst(&mut vec![b]) == 1
    }

    fn poll(&mut self) {
        let mut rx = Vec::new();
        while self.q.rx_burst(&mut rx, 64) > 0 {
            let mut replies = Vec::new();
            for b in rx.drain(..) {
                let f = b.as_ref().to_vec();
                self.q.free(b);
                if let Some((src, target, mac)) = as_ns(&f) {
                    if self.prefix.contains(target) {
                        let na = na_frame(mac, self.mac, target, src, target, false);
                        let mut nb = self.q.alloc().expect("pool buffer");
                        nb.reset_from(&na).unwrap();
                        replies.push(nb);
                    }
                    continue;
                }
                if f.get(20) != Some(&17) {
                    continue;
                }
                let Some((src, dst, seq)) = datagram_id(&f[14..]) else {
                    self.errors.push(format!("short frame {f:02x?}"));
                    continue;
                };
                for e in datagram_faults(&f[14..], Ulid(src), Ulid(dst), seq) {
                    if self.errors.len() < 10 {
                        self.errors.push(format!("{src}->{dst} seq {seq}: {e}"));
                    }
                }
                if !self.received.entry((src, dst)).or_default().insert(seq) {
                    self.errors
                        .push(format!("{src}->{dst} seq {seq}: duplicate"));
                }
            }
            if !replies.is_empty() {
                self.q.tx_burst(&mut replies);
            }
        }
    }
}

/// Site `me`'s setup for `hosts`, knowing `peer`'s hosts `peers`.
fn setup(
    me: &Site,
    hosts: Vec<(Ulid, CgaParameters)>,
    peers: &[(Ulid, CgaParameters)],
    peer: &Site,
) -> SiteSetup {
    let mut engine = me.engine();
    // Payload flows one way only: the peer's keepalives must arrive well within the Send
    // Timeout even on a loaded machine, or REAP explores (this test is about TE, not REAP).
    engine.reap.send_timeout = Duration::from_secs(10);
    engine.reap.default_keepalive_timeout = Duration::from_secs(10);
    engine.i1_timeout = Duration::from_secs(2);
    // TE moves: REAP probes the preferred pair 4 times before giving up on it.
    engine.reap.initial_probe_timeout = Duration::from_millis(500);
    me.setup_for(hosts, peers, peer, engine)
}

/// One communication: `size` datagrams from site 1 host `src` to site 2 host `dst`.
struct Comm {
    src: Ulid,
    dst: Ulid,
    start: Instant,
    size: u32,
    sent: u32,
    /// When datagram 0 was seen at site 2 (the context is up): the rest follow from then,
    /// as a TCP sender waits for its handshake.
    open: Option<Instant>,
}

/// Pareto(x_m = 2, α = 1.3) datagrams, at most 200 (with 1,024 communications, a larger
/// one alone would carry a good part of a phase): mean ≈ 6.
fn pareto(rng: &mut StdRng) -> u32 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    (2.0 * u.powf(-1.0 / 1.3)).min(200.0) as u32
}

#[test]
fn a_thousand_communications_follow_a_live_70_30_then_50_50_policy() {
    let (s1, s2) = (site(1), site(2));
    let (h1, h2) = (s1.hosts(HOSTS), s2.hosts(HOSTS));
    let wires = MemWires::new(16384, 2048);
    let mut core_ends = Vec::new();
    let mut sites = Vec::new();
    for (me, peer, mine, theirs) in [(&s1, &s2, &h1, &h2), (&s2, &s1, &h2, &h1)] {
        let mut pc = me.pipeline();
        pc.table_capacity = 16384;
        pc.dataplane.punt_queue = 4096;
        pc.dataplane.inject_queue = 4096;
        pc.slow_path.pending_total = 16384;
        pc.slow_path.pending_timeout = OPEN_TIMEOUT;
        // Busy-polling workers share the machine with the slow paths: on a loaded machine a
        // slow path may not run for a second or more. Neighbour resolution of the provider
        // routers must survive that, or every handshake stalls until it is retried.
        pc.slow_path.nd.retrans = Duration::from_secs(2);
        pc.slow_path.nd.max_solicit = 10;
        let w = wires.start_site(pc, setup(me, mine.clone(), theirs, peer));
        core_ends.extend(w.core_ends);
        let hosts = Hosts {
            q: w.host_end,
            mac: me.host_mac,
            prefix: me.ulid_prefix,
            proxy_mac: me.inside_mac,
            received: HashMap::new(),
            errors: Vec::new(),
        };
        sites.push((w.pipeline, hosts));
    }
    let core = CoreRouter::start(
        core_ends,
        CoreRoutes::of_sites(&[&s1, &s2]),
        0,
        Pacing::BUSY,
    );
    let (p2, mut hosts2) = sites.pop().unwrap();
    let (p1, mut hosts1) = sites.pop().unwrap();
    p1.te_handle().set_policy(weighted(70, 30, PERIOD)).unwrap();

    // Communications: every (i, j) pair once, in a shuffled order, starting evenly over the
    // two phases.
    let mut rng = StdRng::seed_from_u64(2026);
    let order = shuffled_pairs(HOSTS, &mut rng);
    assert_eq!(order.len(), COMMUNICATIONS);
    let t0 = Instant::now();
    let mut comms: Vec<Comm> = order
        .iter()
        .map(|&(i, j)| Comm {
            src: h1[i].0,
            dst: h2[j].0,
            start: t0,
            size: pareto(&mut rng),
            sent: 0,
            open: None,
        })
        .collect();
    let total: u64 = comms.iter().map(|c| u64::from(c.size)).sum();
    let biggest = comms.iter().map(|c| c.size).max().unwrap();
    eprintln!("{COMMUNICATIONS} communications, {total} datagrams, biggest {biggest}");

    // Drive. Communications start at most START_RATE a second and at most WINDOW at a time
    // waiting for their context (a site's connection rate, and what keeps a slow machine
    // from drowning its slow path in handshakes). Each sends datagram 0 at its start (it
    // waits for the handshake in the proxy) and datagram k at k × SPACING after datagram 0
    // arrived. The policy changes to 50/50 when the second half starts.
    let mut marks: Vec<(Instant, [u64; 2])> = Vec::new();
    let mut next = 0; // comms[..next] have started
    let mut active: Vec<usize> = Vec::new();
    let mut changed: Option<Instant> = None;
    let mut send_fail = 0u64;
    let mut never_opened = 0usize;
    let mut progress = t0;
    while next < comms.len() || !active.is_empty() {
        let now = Instant::now();
        if now > t0 + GIVE_UP {
            break;
        }
        let waiting = active.iter().filter(|&&k| comms[k].open.is_none()).count();
        let allowed = ((now - t0).as_secs_f64() * START_RATE) as usize + 1;
        let mut room = WINDOW.saturating_sub(waiting);
        while next < comms.len() && next < allowed && room > 0 {
            if next == COMMUNICATIONS / 2 && changed.is_none() {
                marks.push((now, site1(&core)));
                p1.te_handle().set_policy(weighted(50, 50, PERIOD)).unwrap();
                changed = Some(now);
            }
            comms[next].start = now;
            active.push(next);
            next += 1;
            room -= 1;
        }
        if now >= progress {
            progress = now + Duration::from_secs(2);
            let opened = comms[..next].iter().filter(|c| c.open.is_some()).count();
            let sent: u64 = comms[..next].iter().map(|c| u64::from(c.sent)).sum();
            let got: u64 = hosts2.received.values().map(|s| s.len() as u64).sum();
            let v = p1.te_handle().view();
            eprintln!(
                "{:>5.1} s: {next} started, {opened} open, {sent} sent, {got} received, core {:?}, te moves {:?}",
                (now - t0).as_secs_f64(),
                site1(&core),
                v.map(|v| (v.moves_requested, v.moves_done, v.moves_expired, v.moves_refused))
            );
        }
        for &k in &active {
            let c = &mut comms[k];
            if c.sent == 1 && c.open.is_none() {
                if hosts2.received.contains_key(&(c.src.0, c.dst.0)) {
                    c.open = Some(now);
                } else if now - c.start > OPEN_TIMEOUT {
                    c.size = 0; // counted below as lost
                    never_opened += 1;
                    continue;
                } else {
                    continue;
                }
            }
            let base = c.open.unwrap_or(c.start);
            // Until the context is up, datagram 0 only.
            let limit = if c.open.is_some() { c.size } else { 1 };
            while c.sent < limit && base + SPACING * c.sent <= now {
                if hosts1.send(c.src, c.dst, c.sent) {
                    c.sent += 1;
                } else {
                    send_fail += 1;
                    break;
                }
            }
        }
        active.retain(|&k| comms[k].sent < comms[k].size);
        hosts1.poll();
        hosts2.poll();
        if marks.is_empty() && now >= t0 + PERIOD {
            marks.push((now, site1(&core)));
        }
        if changed.is_some_and(|c| now >= c + PERIOD) && marks.len() == 2 {
            marks.push((now, site1(&core)));
        }
        // Phase 2 is measured until the last communication starts: after that only the
        // tail of the longest ones is left, too few contexts to split anything.
        if next == comms.len() && marks.len() == 3 {
            marks.push((now, site1(&core)));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("sent in {:?} ({send_fail} ring-full retries)", t0.elapsed());

    // Let the last datagrams arrive.
    let want: u64 = total;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        hosts2.poll();
        hosts1.poll();
        let got: u64 = hosts2.received.values().map(|s| s.len() as u64).sum();
        if got >= want || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let view = p1.te_handle().view().expect("te view");
    let r1 = p1.stop();
    let r2 = p2.stop();

    print_reports(&r1, &r2, &view);
    eprintln!("workers 1: {:?}\nworkers 2: {:?}", r1.workers, r2.workers);

    assert_eq!(marks.len(), 4, "phase marks {marks:?}");
    let (s70, b70) = share_a(marks[0].1, marks[1].1);
    let (s50, b50) = share_a(marks[2].1, marks[3].1);
    assert_eq!(
        never_opened, 0,
        "communications whose context never came up"
    );
    let (all1, _) = share_a([0, 0], marks[1].1);
    eprintln!(
        "provider A share: {:.2} % of {b70} B in phase 1 (whole phase {:.2} %), {:.2} % of {b50} B in phase 2",
        s70 * 100.0,
        all1 * 100.0,
        s50 * 100.0
    );

    // No context broke: every datagram of every communication arrived, exactly as sent.
    assert!(
        hosts2.errors.is_empty(),
        "bad frames at site 2: {:?}",
        &hosts2.errors[..hosts2.errors.len().min(10)]
    );
    let mut missing = Vec::new();
    for c in &comms {
        let got = hosts2
            .received
            .get(&(c.src.0, c.dst.0))
            .map_or(0, BTreeSet::len);
        if got != c.size as usize {
            missing.push(format!("{}->{}: {got}/{}", c.src.0, c.dst.0, c.size));
        }
    }
    assert_no_context_broke(&missing, COMMUNICATIONS, &r1, &r2);

    // Byte shares measured by the core. The ±2 % precision over 10,000 communications is
    // pinned by `te_sim_replay` (docs/traffic-engineering.md says why this run gave 62-66 %
    // in phase 1 before the choice kept skipped turns and the byte feedback); without TE,
    // provider A would carry everything.
    assert_share("phase 1", s70, 0.70, 0.10);
    assert_share("phase 2", s50, 0.50, 0.05);
    // The rebalancer moved live contexts, through REAP, without breaking any.
    assert!(view.moves_done > 0, "no context was moved: {view:?}");
}
