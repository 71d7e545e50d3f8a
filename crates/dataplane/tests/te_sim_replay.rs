//! The traffic-engineering simulation of issue #8 as the issue states it: 10,000
//! communications with a heavy-tailed size mix through two complete pipelines back to back
//! (real worker and fast path, punt/inject rings, slow path, SHIM6 engine with real CGA
//! handshakes, REAP), on **simulated time** ([`dataplane::replay::Replay`]): every frame goes
//! through the workers and rings, but the clock moves only when the test says so, so the run
//! is deterministic, independent of the machine's load, and 60 s of traffic take seconds.
//!
//! ```text
//!  100 hosts ==inside== [site 1 proxy] ==1A== +------+ ==2A== [site 2 proxy] ==inside== 100 hosts
//!                                     ==1B== | core | ==2B==
//!                                            +------+
//! ```
//!
//! Every communication is one ULID pair (site 1 host i → site 2 host j), so one SHIM6
//! context. They start one every 4 ms (10,000 over 40 s). Each sends datagram 0 at its start
//! (it waits in the proxy for the automatic handshake), then, once datagram 0 arrived (as a
//! TCP sender waits for its handshake), datagram k at k × 20 ms; sizes are Pareto(x_m = 4,
//! α = 1.3) datagrams, at most 500 (10 s). Every link delays frames by one 5 ms step. Site 1
//! runs a weighted 70/30 policy, changed live to 50/50 at 20 s. The core (independent of the
//! code under test) counts the bytes of SHIM6 payload frames on site 1's two provider links:
//! - from one rebalance period after the start to the change: 70/30 within ±2 %;
//! - one rebalance period after the change the split has moved: 50/50 within ±5 % over the
//!   next period alone (a 2 s window carried by a few heavy communications), and from one
//!   period after the change to the last start: 50/50 within ±2 %;
//! - every datagram of every communication arrives, once, byte for byte; every context is
//!   established and none is removed (no context breaks).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod twosite_common;

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use dataplane::backend::BufPool;
use dataplane::io::PortId;
use dataplane::replay::Replay;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use twosite_common::core_routes::{CoreRoutes, Route};
use twosite_common::te::{
    assert_no_context_broke, assert_share, print_reports, share_a, shuffled_pairs, weighted,
};
use twosite_common::*;
use wire::Ulid;

/// Hosts per site; every (site 1, site 2) host pair is one communication.
const HOSTS: usize = 100;
const COMMUNICATIONS: usize = HOSTS * HOSTS;
/// One communication starts every ARRIVAL.
const ARRIVAL: Duration = Duration::from_millis(4);
/// The policy changes from 70/30 to 50/50 then.
const CHANGE_AT: Duration = Duration::from_secs(20);
/// The policy's rebalance period.
const PERIOD: Duration = Duration::from_secs(2);
/// Simulation step, and every link's delay.
const STEP: Duration = Duration::from_millis(5);
/// Datagram spacing within a communication.
const SPACING: Duration = Duration::from_millis(20);
/// Largest communication, in datagrams.
const MAX_SIZE: f64 = 500.0;
/// The run ends then at the latest (the test then fails on what is missing).
const GIVE_UP: Duration = Duration::from_secs(90);
/// Frames handed to a pipeline in one batch at most.
const BATCH: usize = 1024;

/// Pareto(x_m = 4, α = 1.3) datagrams, at most [`MAX_SIZE`]: mean ≈ 13, a few hundred
/// communications carry half the bytes.
fn pareto(rng: &mut StdRng) -> u32 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    (4.0 * u.powf(-1.0 / 1.3)).min(MAX_SIZE) as u32
}

/// One communication: `size` datagrams from site 1 host `src` to site 2 host `dst`.
struct Comm {
    src: Ulid,
    dst: Ulid,
    start: Duration,
    size: u32,
    sent: u32,
    /// When datagram 0 arrived at site 2 (the context is up).
    open: Option<Duration>,
    received: Vec<bool>,
}

/// A frame on the wire: to site `.0`'s port `.1`.
type Frame = (usize, PortId, Vec<u8>);

#[test]
fn ten_thousand_communications_follow_a_live_70_30_then_50_50_policy() {
    let (s1, s2) = (site(1), site(2));
    let (h1, h2) = (s1.hosts(HOSTS), s2.hosts(HOSTS));
    let pool = Arc::new(BufPool::new(8192, 2048));
    let mut sites: Vec<Replay> = [(&s1, &s2, &h1, &h2), (&s2, &s1, &h2, &h1)]
        .into_iter()
        .map(|(me, peer, mine, theirs)| {
            let mut pc = me.pipeline();
            pc.table_capacity = 16384;
            pc.dataplane.punt_queue = 4096;
            pc.dataplane.inject_queue = 4096;
            pc.slow_path.pending_total = 16384;
            Replay::new(
                pc,
                me.setup_for(mine.clone(), theirs, peer, me.engine()),
                &pool,
            )
            .unwrap()
        })
        .collect();
    // The core (0, 1: site 1 A, B; 2, 3: site 2 A, B) and the bytes of SHIM6 payload frames
    // site 1 sends it on each link.
    let core = CoreRoutes::of_sites(&[&s1, &s2]);
    let mut core_bytes = [0u64; 2];
    let te = sites[0].te_handle();
    te.set_policy(weighted(70, 30, PERIOD)).unwrap();

    // Communications: every (i, j) pair once, in a shuffled order.
    let mut rng = StdRng::seed_from_u64(2026);
    let order = shuffled_pairs(HOSTS, &mut rng);
    let mut comms: Vec<Comm> = order
        .iter()
        .enumerate()
        .map(|(k, &(i, j))| {
            let size = pareto(&mut rng);
            Comm {
                src: h1[i].0,
                dst: h2[j].0,
                start: ARRIVAL * k as u32,
                size,
                sent: 0,
                open: None,
                received: vec![false; size as usize],
            }
        })
        .collect();
    let by_pair: HashMap<(Ipv6Addr, Ipv6Addr), usize> = comms
        .iter()
        .enumerate()
        .map(|(k, c)| ((c.src.0, c.dst.0), k))
        .collect();
    let total: u64 = comms.iter().map(|c| u64::from(c.size)).sum();
    let biggest = comms.iter().map(|c| c.size).max().unwrap();
    let last_start = comms.last().unwrap().start;
    eprintln!("{COMMUNICATIONS} communications, {total} datagrams, biggest {biggest}");

    let mut errors: Vec<String> = Vec::new();
    let mut in_flight: Vec<Frame> = Vec::new();
    let mut marks: Vec<(&str, Duration, [u64; 2])> = Vec::new();
    let mut next = 0; // comms[..next] have started
    let mut active: Vec<usize> = Vec::new();
    let mut received = 0u64;
    let mut now = Duration::ZERO;
    let wall = std::time::Instant::now();
    let mut last_core = [0u64; 2];
    while now < GIVE_UP && (next < comms.len() || !active.is_empty() || received < total) {
        now += STEP;
        let mut out: Vec<Frame> = Vec::new();
        for (s, r) in sites.iter_mut().enumerate() {
            r.advance(now, &mut |_, p, f| out.push((s, p, f.to_vec())));
        }
        for (name, at) in [
            ("start", PERIOD),
            ("change", CHANGE_AT),
            ("period", CHANGE_AT + PERIOD),
            ("window", CHANGE_AT + 2 * PERIOD),
            ("end", last_start),
        ] {
            if now >= at && !marks.iter().any(|m| m.0 == name) {
                marks.push((name, now, core_bytes));
                if name == "change" {
                    te.set_policy(weighted(50, 50, PERIOD)).unwrap();
                }
            }
        }
        // Deliver what was sent during the previous step.
        let mut inbound: [Vec<(PortId, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        for (s, port, f) in in_flight.drain(..) {
            if port == INSIDE {
                let (me, prefix) = if s == 0 {
                    (&s1, s1.ulid_prefix)
                } else {
                    (&s2, s2.ulid_prefix)
                };
                if let Some((src, target, mac)) = as_ns(&f) {
                    if prefix.contains(target) {
                        let na = na_frame(mac, me.host_mac, target, src, target, false);
                        inbound[s].push((INSIDE, na));
                    }
                    continue;
                }
                if f.get(20) != Some(&17) {
                    continue;
                }
                if s == 0 {
                    errors.push("a datagram came back to site 1".into());
                    continue;
                }
                let Some((src, dst, seq)) = datagram_id(&f[14..]) else {
                    errors.push(format!("short frame {f:02x?}"));
                    continue;
                };
                let Some(&k) = by_pair.get(&(src, dst)) else {
                    errors.push(format!("{src}->{dst}: unknown communication"));
                    continue;
                };
                for e in datagram_faults(&f[14..], Ulid(src), Ulid(dst), seq) {
                    errors.push(format!("{src}->{dst} seq {seq}: {e}"));
                }
                let c = &mut comms[k];
                match c.received.get_mut(seq as usize) {
                    Some(seen @ false) => {
                        *seen = true;
                        received += 1;
                        if seq == 0 {
                            c.open = Some(now);
                        }
                    }
                    _ => errors.push(format!("{src}->{dst} seq {seq}: duplicate or unknown")),
                }
                continue;
            }
            let link = 2 * s + usize::from(port.0) - 1;
            match core.route(link, &f, 0, 0) {
                Route::Reply(na) => inbound[s].push((port, na)),
                Route::Forward(to) => {
                    if link < 2 && is_shim6_payload(&f) {
                        core_bytes[link] += f.len() as u64;
                    }
                    let mut frame = f;
                    core.rewrite(&mut frame, to);
                    let port = if to % 2 == 0 { PROV_A } else { PROV_B };
                    inbound[to / 2].push((port, frame));
                }
                Route::Drop => {}
            }
        }
        // The hosts of site 1 start communications and send what is due.
        while next < comms.len() && comms[next].start <= now {
            active.push(next);
            next += 1;
        }
        for &k in &active {
            let c = &mut comms[k];
            // Until the context is up, datagram 0 only.
            let (base, limit) = match c.open {
                Some(open) => (open, c.size),
                None => (c.start, 1),
            };
            while c.sent < limit && base + SPACING * c.sent <= now {
                let mut f = eth(s1.inside_mac, s1.host_mac);
                f.extend_from_slice(&datagram(c.src, c.dst, c.sent));
                inbound[0].push((INSIDE, f));
                c.sent += 1;
            }
        }
        active.retain(|&k| comms[k].sent < comms[k].size);
        for (s, frames) in inbound.iter().enumerate() {
            for chunk in frames.chunks(BATCH) {
                let refused = sites[s].feed_batch(
                    chunk.iter().map(|(p, f)| (*p, f.as_slice())),
                    &mut |_, p, f| out.push((s, p, f.to_vec())),
                );
                if refused > 0 {
                    errors.push(format!("site {s}: {refused} frames not queued"));
                }
            }
        }
        in_flight = out;
        if now.as_millis().is_multiple_of(2000) {
            if let Some(v) = te.view() {
                let d = [core_bytes[0] - last_core[0], core_bytes[1] - last_core[1]];
                last_core = core_bytes;
                eprintln!(
                    "{:>5.1} s: core interval A {:.3}, te rate share A {:.3}, te byte share A {:.3}, contexts {:?}",
                    now.as_secs_f64(),
                    d[0] as f64 / (d[0] + d[1]).max(1) as f64,
                    v.providers[0].rate_share,
                    v.providers[0].byte_share,
                    v.providers.iter().map(|p| p.contexts).collect::<Vec<_>>()
                );
            }
        }
        if now.as_millis().is_multiple_of(10_000) {
            let v = te.view();
            eprintln!(
                "{:>5.1} s (wall {:>5.1} s): {next} started, {received}/{total} received, core {:?}, te moves {:?}",
                now.as_secs_f64(),
                wall.elapsed().as_secs_f64(),
                core_bytes,
                v.map(|v| (v.moves_requested, v.moves_done, v.moves_expired, v.moves_refused))
            );
        }
    }
    let view = te.view().expect("te view");
    let (r1, r2) = (sites[0].report(), sites[1].report());
    eprintln!("ended at {now:?} after {:?} wall", wall.elapsed());
    print_reports(&r1, &r2, &view);
    let m = |name: &str| marks.iter().find(|x| x.0 == name).map(|x| x.2);
    let (Some(start), Some(change), Some(period), Some(window), Some(end)) =
        (m("start"), m("change"), m("period"), m("window"), m("end"))
    else {
        panic!("phase marks {marks:?}");
    };
    let (s70, b70) = share_a(start, change);
    let (s_settled, b_settled) = share_a(period, window);
    let (s50, b50) = share_a(period, end);
    eprintln!(
        "provider A share: {:.2} % of {b70} B in 70/30, {:.2} % of {b_settled} B in the period after that, {:.2} % of {b50} B in 50/50",
        s70 * 100.0,
        s_settled * 100.0,
        s50 * 100.0
    );

    // No context broke: every datagram of every communication arrived once, as sent.
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    let missing: Vec<String> = comms
        .iter()
        .filter(|c| c.received.iter().any(|r| !r))
        .map(|c| {
            let got = c.received.iter().filter(|r| **r).count();
            format!("{}->{}: {got}/{}", c.src.0, c.dst.0, c.size)
        })
        .collect();
    assert_no_context_broke(&missing, COMMUNICATIONS, &r1, &r2);

    // Byte shares measured by the core.
    assert_share("70/30 phase", s70, 0.70, 0.02);
    assert_share(
        "the period after the one after the change",
        s_settled,
        0.50,
        0.05,
    );
    assert_share("50/50 phase", s50, 0.50, 0.02);
    // The rebalancer moved live contexts, through REAP, without breaking any.
    assert!(view.moves_done > 0, "no context was moved: {view:?}");
}
