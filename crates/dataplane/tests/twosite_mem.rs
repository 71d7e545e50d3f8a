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

mod twosite_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::backend::mem::{pair, MemConfig, MemLink, MemQueue};
use dataplane::backend::BufPool;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::config::{MacAddr, Prefix64};
use dataplane::io::PortQueue;
use dataplane::slowpath::{Pipeline, PipelineReport};
use twosite_common::*;
use wire::Ulid;

/// One provider link as the core sees it.
struct CoreLink {
    q: MemQueue,
    prefix: Prefix64,
    proxy_mac: MacAddr,
}

/// The core router thread: forwards by destination prefix, answers ND for its link-local
/// address, counts the SHIM6 payload frames it receives on each link.
struct Core {
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicU8>,
    /// Links whose frames from the proxy are dropped (ND to the core still answered): the
    /// provider stops forwarding one way, as after a BGP withdraw.
    cut_in: Arc<AtomicU8>,
    payload_in: Arc<[AtomicU64; 4]>,
    thread: Option<JoinHandle<()>>,
}

impl Core {
    fn start(mut links: Vec<CoreLink>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicU8::new(0));
        let cut_in = Arc::new(AtomicU8::new(0));
        let payload_in: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
        let (s, c, p) = (stop.clone(), cut.clone(), payload_in.clone());
        let ci = cut_in.clone();
        let thread = std::thread::spawn(move || {
            let mut rx: Vec<HeapBuf> = Vec::new();
            let mut tx: Vec<Vec<HeapBuf>> = (0..links.len()).map(|_| Vec::new()).collect();
            while !s.load(Ordering::Relaxed) {
                let mut idle = true;
                for i in 0..links.len() {
                    if links[i].q.rx_burst(&mut rx, 32) > 0 {
                        idle = false;
                    }
                    for mut buf in rx.drain(..) {
                        let f = buf.as_ref();
                        let cutmask = c.load(Ordering::Relaxed);
                        if cutmask & (1 << i) != 0 {
                            links[i].q.free(buf);
                            continue;
                        }
                        if let Some((src, target, mac)) = as_ns(f) {
                            if target == ROUTER_LL {
                                let na =
                                    na_frame(mac, core_mac(i), ROUTER_LL, src, ROUTER_LL, true);
                                buf.reset_from(&na).unwrap();
                                tx[i].push(buf);
                            } else {
                                links[i].q.free(buf);
                            }
                            continue;
                        }
                        if ci.load(Ordering::Relaxed) & (1 << i) != 0 {
                            links[i].q.free(buf);
                            continue;
                        }
                        let dst_prefix = f.get(38..54).map(|d| {
                            Prefix64::of(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(d).unwrap()))
                        });
                        let j = dst_prefix.and_then(|d| links.iter().position(|l| l.prefix == d));
                        match j {
                            Some(j) if cutmask & (1 << j) == 0 && f[21] > 1 => {
                                if is_shim6_payload(f) {
                                    p[i].fetch_add(1, Ordering::Relaxed);
                                }
                                let m = buf.as_mut();
                                m[0..6].copy_from_slice(&links[j].proxy_mac.0);
                                m[6..12].copy_from_slice(&core_mac(j).0);
                                m[21] -= 1;
                                tx[j].push(buf);
                            }
                            _ => links[i].q.free(buf),
                        }
                    }
                }
                for (l, out) in links.iter_mut().zip(tx.iter_mut()) {
                    if !out.is_empty() {
                        l.q.tx_burst(out);
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
        });
        Self {
            stop,
            cut,
            cut_in,
            payload_in,
            thread: Some(thread),
        }
    }

    fn counts(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.payload_in[i].load(Ordering::Relaxed))
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A legacy host on a proxy's inside link: sends numbered datagrams to its peer, answers ND
/// for its ULID, checks every datagram it receives against what the peer sent.
struct Host {
    q: MemQueue,
    mac: MacAddr,
    ulid: Ulid,
    peer: Ulid,
    proxy_mac: MacAddr,
    next_seq: u32,
    received: BTreeSet<u32>,
    errors: Vec<String>,
}

impl Host {
    fn send(&mut self) {
        let mut f = eth(self.proxy_mac, self.mac);
        f.extend_from_slice(&datagram(self.ulid, self.peer, self.next_seq));
        self.next_seq += 1;
        let mut b = self.q.alloc().expect("pool buffer");
        b.reset_from(&f).unwrap();
        self.q.tx_burst(&mut vec![b]);
    }

    fn poll(&mut self) {
        let mut rx = Vec::new();
        self.q.rx_burst(&mut rx, 32);
        let mut replies = Vec::new();
        for b in rx {
            let f = b.as_ref().to_vec();
            self.q.free(b);
            if let Some((src, target, mac)) = as_ns(&f) {
                if target == self.ulid.0 {
                    let na = na_frame(mac, self.mac, self.ulid.0, src, self.ulid.0, false);
                    let mut nb = self.q.alloc().expect("pool buffer");
                    nb.reset_from(&na).unwrap();
                    replies.push(nb);
                }
                continue;
            }
            if f.get(20) != Some(&17) {
                continue; // other ND traffic
            }
            let Some(seq) = datagram_seq(&f[14..]) else {
                self.errors.push(format!("short frame {f:02x?}"));
                continue;
            };
            // Byte-exact except the hop limit (64, less one per proxy and one in the core).
            let want = datagram(self.peer, self.ulid, seq);
            let mut got = f[14..].to_vec();
            if got.get(7) != Some(&61) {
                self.errors
                    .push(format!("seq {seq}: hop limit {:?}, want 61", got.get(7)));
            }
            got[7] = want[7];
            if got != want {
                self.errors.push(format!(
                    "seq {seq}: packet differs\n got {got:02x?}\nwant {want:02x?}"
                ));
            }
            if f[0..6] != self.mac.0 || f[6..12] != self.proxy_mac.0 {
                self.errors
                    .push(format!("seq {seq}: MACs {:02x?}", &f[0..12]));
            }
            if !self.received.insert(seq) {
                self.errors.push(format!("seq {seq}: duplicate"));
            }
        }
        if !replies.is_empty() {
            self.q.tx_burst(&mut replies);
        }
    }

    fn got_after(&self, seq: u32) -> usize {
        self.received.range(seq..).count()
    }
}

struct Lab {
    h1: Host,
    h2: Host,
    core: Core,
    cables: [MemLink; 4],
    p1: Option<Pipeline<MemQueue>>,
    p2: Option<Pipeline<MemQueue>>,
}

impl Lab {
    fn new() -> Self {
        let (s1, s2) = (site(1), site(2));
        let pool = Arc::new(BufPool::new(8192, 2048));
        let cfg = MemConfig {
            ring_size: 512,
            ..MemConfig::new(1)
        };
        let mut core_links = Vec::new();
        let mut cables = Vec::new();
        let mut hosts = Vec::new();
        let mut pipelines = Vec::new();
        for (me, peer) in [(&s1, &s2), (&s2, &s1)] {
            let (host_end, inside) = pair(&pool, &cfg).unwrap();
            let mut queues = vec![(INSIDE, inside.into_queues().pop().unwrap())];
            for (i, port) in [PROV_A, PROV_B].into_iter().enumerate() {
                let (core_end, proxy_end) = pair(&pool, &cfg).unwrap();
                cables.push(proxy_end.link().clone());
                core_links.push(CoreLink {
                    q: core_end.into_queues().pop().unwrap(),
                    prefix: me.pa[i],
                    proxy_mac: me.prov_mac[i],
                });
                queues.push((port, proxy_end.into_queues().pop().unwrap()));
            }
            pipelines.push(Pipeline::start(me.pipeline(), me.setup(peer), vec![queues]).unwrap());
            hosts.push(Host {
                q: host_end.into_queues().pop().unwrap(),
                mac: me.host_mac,
                ulid: me.host().0,
                peer: peer.host().0,
                proxy_mac: me.inside_mac,
                next_seq: 0,
                received: BTreeSet::new(),
                errors: Vec::new(),
            });
        }
        let h2 = hosts.pop().unwrap();
        let h1 = hosts.pop().unwrap();
        let p2 = pipelines.pop();
        let p1 = pipelines.pop();
        Self {
            h1,
            h2,
            core: Core::start(core_links),
            cables: cables.try_into().map_err(|_| ()).unwrap(),
            p1,
            p2,
        }
    }

    /// Sends from the hosts that are `sending` every ~4 ms until `done` or `timeout`.
    fn run(
        &mut self,
        sending: (bool, bool),
        timeout: Duration,
        done: impl Fn(&Lab) -> bool,
    ) -> bool {
        let end = Instant::now() + timeout;
        let mut last = Instant::now() - Duration::from_secs(1);
        while Instant::now() < end {
            if last.elapsed() >= Duration::from_millis(4) {
                last = Instant::now();
                if sending.0 {
                    self.h1.send();
                }
                if sending.1 {
                    self.h2.send();
                }
            }
            self.h1.poll();
            self.h2.poll();
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Which of site 1's provider links (0 = A, 1 = B) carried more payload over `window`.
    fn active_site1_link(&mut self, window: Duration) -> usize {
        let before = self.core.counts();
        self.run((true, true), window, |_| false);
        let after = self.core.counts();
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

    fn assert_clean(&self) {
        for h in [&self.h1, &self.h2] {
            assert!(
                h.errors.is_empty(),
                "host {} saw bad frames:\n{}",
                h.ulid,
                h.errors.join("\n")
            );
        }
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
    let before = lab.core.counts();
    lab.core.cut.store(1 << active, Ordering::Relaxed);
    let cut_at = Instant::now();
    let (s1, s2) = (lab.h1.next_seq, lab.h2.next_seq);
    let ok = lab.run((true, true), Duration::from_secs(30), |l| {
        l.h2.got_after(s1) >= 50 && l.h1.got_after(s2) >= 50
    });
    assert!(ok, "stream did not resume after cutting link {active}: host 2 got {} and host 1 got {} since the cut", lab.h2.got_after(s1), lab.h1.got_after(s2));
    let after = lab.core.counts();
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
    lab.core.cut.store(0, Ordering::Relaxed);
    let before = lab.core.counts();
    lab.cables[other].set_up(false);
    let unplugged_at = Instant::now();
    let (s1, s2) = (lab.h1.next_seq, lab.h2.next_seq);
    let ok = lab.run((true, true), Duration::from_secs(20), |l| {
        l.h2.got_after(s1) >= 50 && l.h1.got_after(s2) >= 50
    });
    assert!(ok, "stream did not resume after unplugging link {other}");
    let after = lab.core.counts();
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
    let before = lab.core.counts();
    let (s1, s2) = (lab.h1.next_seq, lab.h2.next_seq);
    let ok = lab.run((true, true), Duration::from_secs(10), |l| {
        l.h2.got_after(s1) >= 30 && l.h1.got_after(s2) >= 30
    });
    assert!(ok, "the stream broke after the move");
    let after = lab.core.counts();
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
    let before = lab.core.counts();
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
    let after = lab.core.counts();
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
