//! Two complete pipelines (worker + slow path, two providers each) wired back to back over
//! in-memory provider links through a tiny "core" router that forwards by destination prefix
//! and can cut a link (issue #4, acceptance).
//!
//! ```text
//!  host1 ==inside== [site 1 proxy] ==1A== +------+ ==2A== [site 2 proxy] ==inside== host2
//!                                  ==1B== | core | ==2B==
//!                                         +------+
//! ```
//!
//! The legacy hosts send ULID-addressed UDP; every datagram must reach the other host byte
//! for byte as sent (ULIDs restored), except the hop limit (one per proxy and one in the core)
//! and the MACs. The first datagram waits for the automatic handshake. Then the provider link
//! carrying site 1's traffic is cut inside the core (the proxies' links stay up): REAP must
//! find the other provider (Send Timeout 2 s in the test configuration). Finally the core is
//! healed and the cable of the new active link is unplugged at site 1: the link-down signal
//! moves the contexts back at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mem_lab;
mod twosite_common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dataplane::backend::mem::{MemLink, MemQueue};
use dataplane::slowpath::{Pipeline, PipelineReport};
use mem_lab::core_router::{CoreRouter, Pacing};
use mem_lab::legacy_host::{Host, TwoHosts};
use mem_lab::MemWires;
use twosite_common::core_routes::CoreRoutes;
use twosite_common::*;

/// The lab of the diagram above; `cables` are the proxies' provider links (1A, 1B, 2A, 2B).
struct Lab {
    h1: Host,
    h2: Host,
    core: CoreRouter,
    cables: [MemLink; 4],
    p1: Option<Pipeline<MemQueue>>,
    p2: Option<Pipeline<MemQueue>>,
}

impl TwoHosts for Lab {
    fn hosts(&mut self) -> [&mut Host; 2] {
        [&mut self.h1, &mut self.h2]
    }
}

impl Lab {
    fn new() -> Self {
        let (s1, s2) = (site(1), site(2));
        let wires = MemWires::new(8192, 512);
        let w1 = wires.start_site(s1.pipeline(), s1.setup(&s2));
        let w2 = wires.start_site(s2.pipeline(), s2.setup(&s1));
        let core_ends = w1.core_ends.into_iter().chain(w2.core_ends).collect();
        let cables = w1.cables.into_iter().chain(w2.cables).collect::<Vec<_>>();
        Self {
            h1: Host::new(vec![w1.host_end], &s1, &s2),
            h2: Host::new(vec![w2.host_end], &s2, &s1),
            core: CoreRouter::start(core_ends, CoreRoutes::of_sites(&[&s1, &s2]), 0, Pacing::LAB),
            cables: cables.try_into().map_err(|_| ()).unwrap(),
            p1: Some(w1.pipeline),
            p2: Some(w2.pipeline),
        }
    }

    /// Which of site 1's provider links (0 = A, 1 = B) carried more payload over `window`.
    fn active_site1_link(&mut self, window: Duration) -> usize {
        let before = self.core.frames();
        self.run((true, true), window, |_| false);
        let after = self.core.frames();
        if after[0] - before[0] >= after[1] - before[1] {
            0
        } else {
            1
        }
    }

    fn stop(&mut self) -> (PipelineReport, PipelineReport) {
        (
            self.p1.take().unwrap().stop(),
            self.p2.take().unwrap().stop(),
        )
    }
}

#[test]
fn two_sites_handshake_stream_and_fail_over() {
    let mut lab = Lab::new();

    // 1. Host 1 streams to host 2: the first datagram waits for the automatic handshake.
    let ok = lab.run((true, false), Duration::from_secs(20), |l| {
        l.h2.received.len() >= 30
    });
    assert!(ok, "no stream: host 2 got {:?}", lab.h2.received);
    lab.assert_clean();
    assert!(
        lab.h2.received.contains(&0),
        "the first datagram (held during the handshake) was lost"
    );
    // The reverse direction uses the context site 2 built as responder.
    let ok = lab.run((true, true), Duration::from_secs(10), |l| {
        l.h1.received.len() >= 30
    });
    assert!(ok, "no reverse stream: host 1 got {:?}", lab.h1.received);
    assert!(
        lab.h1.received.contains(&0),
        "host 2's first datagram was lost"
    );
    lab.assert_clean();

    // 2. Cut the provider link carrying site 1's traffic inside the core: REAP must notice
    //    (no link-down signal) and move both directions to the other provider.
    let active = lab.active_site1_link(Duration::from_millis(300));
    let other = 1 - active;
    let before = lab.core.frames();
    lab.core.dead.store(1 << active, Ordering::Relaxed);
    let cut_at = Instant::now();
    let (s1, s2) = (lab.h1.next_seq, lab.h2.next_seq);
    let ok = lab.run((true, true), Duration::from_secs(30), |l| {
        l.h2.got_after(s1) >= 50 && l.h1.got_after(s2) >= 50
    });
    assert!(ok, "stream did not resume after cutting link {active}: host 2 got {} and host 1 got {} since the cut", lab.h2.got_after(s1), lab.h1.got_after(s2));
    let after = lab.core.frames();
    assert!(
        after[other] - before[other] >= 50,
        "site 1's payload did not move to the other provider: {before:?} -> {after:?}"
    );
    eprintln!(
        "fail-over by REAP after {:?} (core counters {before:?} -> {after:?})",
        cut_at.elapsed()
    );
    lab.assert_clean();

    // 3. Heal the core, then unplug site 1's cable of the new active link: the workers see
    //    the link go down and the slow path moves the contexts at once.
    lab.core.dead.store(0, Ordering::Relaxed);
    let before = lab.core.frames();
    lab.cables[other].set_up(false);
    let unplugged_at = Instant::now();
    let (s1, s2) = (lab.h1.next_seq, lab.h2.next_seq);
    let ok = lab.run((true, true), Duration::from_secs(20), |l| {
        l.h2.got_after(s1) >= 50 && l.h1.got_after(s2) >= 50
    });
    assert!(ok, "stream did not resume after unplugging link {other}");
    let after = lab.core.frames();
    assert!(
        after[active] - before[active] >= 50,
        "payload did not move back: {before:?} -> {after:?}"
    );
    eprintln!("fail-over on link down after {:?}", unplugged_at.elapsed());
    lab.assert_clean();

    let (r1, r2) = lab.stop();
    let (sp1, sp2) = (r1.slow_path.unwrap(), r2.slow_path.unwrap());
    assert!(
        sp1.connects >= 1 && sp1.pending.released >= 1,
        "site 1 slow path: {sp1:?}"
    );
    assert!(
        sp1.link_changes >= 1,
        "site 1 never saw its link go down: {sp1:?}"
    );
    assert!(
        sp1.table_updates >= 1 && sp2.table_updates >= 1,
        "no pair change reached the tables"
    );
    assert_eq!(r1.contexts, 1);
    assert_eq!(r2.contexts, 1);
    let fwd1: u64 = r1.workers.iter().map(|w| w.forwarded()).sum();
    assert!(fwd1 > 0);
}

/// The operator's view through the slow path's control channel (issue #8): list, filter and
/// page contexts, read the providers, move a live context to the other provider through the
/// engine's `prefer_pair` (payload follows, REAP confirms), delete it (the next datagram
/// builds a new one), all while host traffic flows.
#[test]
fn control_channel_lists_moves_and_deletes_live_contexts() {
    use dataplane::slowpath::control::ContextFilter;
    use shim6::ContextState;
    use wire::LocatorPair;

    let mut lab = Lab::new();
    let ok = lab.run((true, true), Duration::from_secs(20), |l| {
        l.h2.received.len() >= 20 && l.h1.received.len() >= 20
    });
    assert!(ok, "no stream before the control checks");
    let control = lab.p1.as_ref().unwrap().control();
    assert!(control.ping().unwrap() < Duration::from_secs(1));

    let all = ContextFilter {
        limit: 10,
        ..ContextFilter::default()
    };
    let page = control.contexts(all).unwrap();
    assert_eq!(page.total, 1, "{page:?}");
    let ctx = page.items[0].clone();
    assert_eq!(ctx.info.state, ContextState::Established);
    assert_eq!(ctx.info.local_ulid.0, lab.h1.ulid.0);
    let traffic = ctx
        .activity
        .expect("an established context is in the table");
    assert!(traffic.tx_pkts > 0 && traffic.rx_pkts > 0, "{traffic:?}");
    // Filters: by peer (match / no match), by state, by provider; paging past the end.
    let by_peer = ContextFilter {
        peer: Some(ctx.info.peer_ulid),
        ..all
    };
    assert_eq!(control.contexts(by_peer).unwrap().total, 1);
    let wrong_peer = ContextFilter {
        peer: Some(ctx.info.local_ulid),
        ..all
    };
    assert_eq!(control.contexts(wrong_peer).unwrap().total, 0);
    let i1 = ContextFilter {
        state: Some(ContextState::I1Sent),
        ..all
    };
    assert_eq!(control.contexts(i1).unwrap().total, 0);
    let active = ctx.provider.expect("the local locator is a provider's");
    let on_active = ContextFilter {
        provider: Some(active),
        ..all
    };
    assert_eq!(control.contexts(on_active).unwrap().total, 1);
    let past = ContextFilter { offset: 1, ..all };
    let p = control.contexts(past).unwrap();
    assert_eq!((p.total, p.items.len()), (1, 0));

    // Providers: the active one carries the context and its bytes.
    let provs = control.providers().unwrap();
    assert_eq!(provs.len(), 2);
    let (on, off): (Vec<_>, Vec<_>) = provs.iter().copied().partition(|p| p.id == active);
    assert_eq!((on[0].contexts, off[0].contexts), (1, 0));
    assert!(on[0].bytes > 0 && off[0].bytes == 0, "{provs:?}");
    assert!(on[0].up && on[0].link == Some(true));

    // Move to the other provider's locator of the host.
    let other = off[0];
    let local = *ctx
        .info
        .local_locators
        .iter()
        .find(|l| other.prefix.contains(l.0))
        .expect("the host has a locator on each provider");
    let to = LocatorPair {
        local,
        peer: ctx.info.pair.peer,
    };
    control
        .move_to(ctx.info.local_tag, to)
        .unwrap()
        .expect("the engine accepts a usable pair");
    let ok = lab.run((true, true), Duration::from_secs(10), |_| {
        control
            .context(ctx.info.local_tag)
            .unwrap()
            .is_some_and(|c| c.provider == Some(other.id))
    });
    assert!(ok, "the context never moved to provider {}", other.id);
    let link = usize::from(other.port.0) - 1;
    let before = lab.core.frames();
    let (s1, s2) = (lab.h1.next_seq, lab.h2.next_seq);
    let ok = lab.run((true, true), Duration::from_secs(10), |l| {
        l.h2.got_after(s1) >= 30 && l.h1.got_after(s2) >= 30
    });
    assert!(ok, "the stream broke after the move");
    let after = lab.core.frames();
    assert!(
        after[link] - before[link] >= 30,
        "site 1's payload did not follow the move to link {link}: {before:?} -> {after:?}"
    );
    lab.assert_clean();

    // A pair the engine cannot use is refused with the reason.
    let bogus = LocatorPair {
        local: wire::Locator(a("2001:db8:dead::1")),
        peer: ctx.info.pair.peer,
    };
    assert!(control.move_to(ctx.info.local_tag, bogus).unwrap().is_err());

    // Delete: gone at once, and unknown afterwards; traffic builds a new context.
    assert!(control.delete(ctx.info.local_tag).unwrap());
    assert!(control.context(ctx.info.local_tag).unwrap().is_none());
    assert!(!control.delete(ctx.info.local_tag).unwrap());
    let ok = lab.run((true, false), Duration::from_secs(20), |_| {
        control.contexts(all).unwrap().items.iter().any(|c| {
            c.info.local_tag != ctx.info.local_tag && c.info.state == ContextState::Established
        })
    });
    assert!(ok, "no new context after the delete");
    let s = control.stats().unwrap();
    assert!(s.engine.i1_sent >= 2 && s.stats.table_removes >= 1, "{s:?}");
    lab.stop();
}

/// BGP as a failure signal (issue #9): site 1's active provider withdraws site 2's prefixes
/// and stops forwarding site 1's traffic there (one way: site 2 keeps sending to site 1 on
/// it, so no REAP on site 2's side notices). The route changes reach site 1's slow path
/// over its control channel; the context moves at once, well before REAP's Send Timeout
/// (2 s here) would even start an exploration.
#[test]
fn bgp_withdraw_moves_contexts_before_reap() {
    use dataplane::slowpath::bgp::{Ipv6Net, RouteChange};
    let mut lab = Lab::new();
    let ok = lab.run((true, true), Duration::from_secs(20), |l| {
        l.h2.received.len() >= 30 && l.h1.received.len() >= 30
    });
    assert!(ok, "no stream");
    let control = lab.p1.as_ref().unwrap().control();
    let s2 = site(2);
    let nets: Vec<Ipv6Net> = s2
        .pa
        .iter()
        .map(|p| Ipv6Net::new(p.network(), 64).unwrap())
        .collect();
    // Both providers of site 1 announce both of site 2's prefixes, and another one (a
    // table emptied by the withdraw would give no verdict).
    let unrelated: Ipv6Net = "2001:db8:ffff::/48".parse().unwrap();
    let mut dump = Vec::new();
    for provider in [1u16, 2] {
        dump.push(RouteChange::Reset { provider });
        dump.extend(nets.iter().map(|&net| RouteChange::Add { provider, net }));
        dump.push(RouteChange::Add {
            provider,
            net: unrelated,
        });
        dump.push(RouteChange::Synced { provider });
    }
    control.routes(dump).unwrap();
    let provs = control.providers().unwrap();
    assert!(provs.iter().all(|p| p
        .routes
        .is_some_and(|r| r.routes == 3 && r.synced && r.withdrawals == 0)));
    let active = lab.active_site1_link(Duration::from_millis(300));
    let other = 1 - active;
    let provider = active as u16 + 1;
    let before = lab.core.frames();
    let (s1, s2seq) = (lab.h1.next_seq, lab.h2.next_seq);
    lab.core.cut_in.store(1 << active, Ordering::Relaxed);
    let cut_at = Instant::now();
    let withdraw: Vec<RouteChange> = nets
        .iter()
        .map(|&net| RouteChange::Remove { provider, net })
        .collect();
    control.routes(withdraw).unwrap();
    let ok = lab.run((true, true), Duration::from_secs(10), |l| {
        l.h2.got_after(s1) >= 50 && l.h1.got_after(s2seq) >= 50
    });
    let took = cut_at.elapsed();
    assert!(ok, "stream did not resume after the withdraw");
    let after = lab.core.frames();
    assert!(
        after[other] - before[other] >= 50,
        "site 1's payload did not move: {before:?} -> {after:?}"
    );
    // 50 datagrams at one per 4 ms take 200 ms of the time measured.
    assert!(took < Duration::from_secs(1), "moved after {took:?}");
    let stats = control.stats().unwrap();
    assert!(stats.engine.bgp_moves >= 1, "{:?}", stats.engine);
    assert!(stats.stats.reachability_changes >= 2);
    let p = control.providers().unwrap();
    let r = p.iter().find(|x| x.id == provider).unwrap().routes.unwrap();
    assert_eq!((r.routes, r.withdrawals), (1, 2));
    assert!(r
        .last_withdraw_ago
        .is_some_and(|d| d <= took + Duration::from_secs(1)));
    let (r1, _) = lab.stop();
    eprintln!("bgp signal: moved and stream resumed after {took:?}");
    assert_eq!(r1.contexts, 1);
    lab.assert_clean();
}
