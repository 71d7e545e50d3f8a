//! Takeover of live communications (issue #9, part 4), in memory: site 1 runs a primary and
//! a backup proxy (same site key, same host bindings, as the shared key file and the shared
//! binding store give them; no shared contexts), site 2 one proxy, all complete pipelines
//! wired through a core router that forwards by destination prefix.
//!
//! ```text
//!            ┌==inside== [S1 primary] ==1A/1B==┐
//!  host1 ────┤                                 ├ core ==2A/2B== [S2 proxy] ==inside== host2
//!            └==inside== [S1 backup ] ==1A/1B==┘
//! ```
//!
//! Mid-stream the primary "dies" (its pipeline stops and the core drops everything to and
//! from it, as after a SIGKILL), then the routes move to the backup (the core forwards site
//! 1's PA prefixes to the backup's links, host 1's next hop becomes the backup). The backup
//! has no context, and the stream must continue through it by either of the two ways
//! RFC 5533 gives:
//!
//! (a) site 2's payload (or REAP keepalives) reaches the backup with a tag it does not know:
//!     R1bis (RFC 5533 §7.17) → site 2's I2bis (§7.19) → the backup rebuilds the context from
//!     the ULID's CGA parameters it shares with the primary (§7.20);
//! (b) host 1's packets reach the backup with no context for the ULID pair: it opens one from
//!     its locator cache (I1 …), and site 2 replaces the peer tag of its existing context for
//!     the same ULID pair (an I2 for an ESTABLISHED context, §7.13/§7.15) rather than keep
//!     two.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod twosite_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::backend::mem::MemQueue;
use dataplane::backend::mem::{pair, MemConfig};
use dataplane::backend::BufPool;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::config::{MacAddr, Prefix64};
use dataplane::io::PortQueue;
use dataplane::slowpath::Pipeline;
use shim6::ContextState;
use twosite_common::*;
use wire::Ulid;

/// Core links: S1 primary A/B, S1 backup A/B, S2 A/B.
const PRIMARY_LINKS: u8 = 0b00_0011;
const BACKUP_LINKS: u8 = 0b00_1100;

struct CoreLink {
    q: MemQueue,
    prefix: Prefix64,
    proxy_mac: MacAddr,
}

/// Forwards by destination prefix to the first link holding it that is not in the `dead`
/// mask (the "routing table": which proxy of site 1 the routes point to); frames from a dead
/// link are dropped too.
struct Core {
    stop: Arc<AtomicBool>,
    dead: Arc<AtomicU8>,
    thread: Option<JoinHandle<()>>,
}

impl Core {
    fn start(mut links: Vec<CoreLink>, dead: u8) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let dead = Arc::new(AtomicU8::new(dead));
        let (s, d) = (stop.clone(), dead.clone());
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
                        let mask = d.load(Ordering::Relaxed);
                        if mask & (1 << i) != 0 {
                            links[i].q.free(buf);
                            continue;
                        }
                        let f = buf.as_ref();
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
                        let dst = f.get(38..54).map(|d| {
                            Prefix64::of(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(d).unwrap()))
                        });
                        let j = dst.and_then(|d| {
                            (0..links.len()).find(|&j| links[j].prefix == d && mask & (1 << j) == 0)
                        });
                        match j {
                            Some(j) if f[21] > 1 => {
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
            dead,
            thread: Some(thread),
        }
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

/// A legacy host: numbered ULID datagrams to its peer through its current next hop (one of
/// its inside links), ND answers for its ULID on every link, byte-exact checks of what it
/// receives.
struct Host {
    links: Vec<MemQueue>,
    next_hop: usize,
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
        let q = &mut self.links[self.next_hop];
        let mut b = q.alloc().expect("pool buffer");
        b.reset_from(&f).unwrap();
        q.tx_burst(&mut vec![b]);
    }

    fn poll(&mut self) {
        for q in &mut self.links {
            let mut rx = Vec::new();
            q.rx_burst(&mut rx, 32);
            let mut replies = Vec::new();
            for b in rx {
                let f = b.as_ref().to_vec();
                q.free(b);
                if let Some((src, target, mac)) = as_ns(&f) {
                    if target == self.ulid.0 {
                        let na = na_frame(mac, self.mac, self.ulid.0, src, self.ulid.0, false);
                        let mut nb = q.alloc().expect("pool buffer");
                        nb.reset_from(&na).unwrap();
                        replies.push(nb);
                    }
                    continue;
                }
                if f.get(20) != Some(&17) {
                    continue;
                }
                let Some(seq) = datagram_seq(&f[14..]) else {
                    self.errors.push(format!("short frame {f:02x?}"));
                    continue;
                };
                // Byte-exact (ULIDs restored) except the hop limit: 64 less two proxies and
                // the core.
                let want = datagram(self.peer, self.ulid, seq);
                let mut got = f[14..].to_vec();
                if got.get(7) != Some(&61) {
                    self.errors
                        .push(format!("seq {seq}: hop limit {:?}", got.get(7)));
                }
                got[7] = want[7];
                if got != want {
                    self.errors.push(format!("seq {seq}: packet differs"));
                }
                if !self.received.insert(seq) {
                    self.errors.push(format!("seq {seq}: duplicate"));
                }
            }
            if !replies.is_empty() {
                q.tx_burst(&mut replies);
            }
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
    primary: Option<Pipeline<MemQueue>>,
    backup: Option<Pipeline<MemQueue>>,
    s2: Option<Pipeline<MemQueue>>,
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
        let mut host_links = Vec::new();
        let mut pipelines = Vec::new();
        // S1 primary, S1 backup (same key, same host binding, its own tag seed), S2.
        for (me, peer, seed) in [(&s1, &s2, 1), (&s1, &s2, 101), (&s2, &s1, 2)] {
            let (host_end, inside) = pair(&pool, &cfg).unwrap();
            host_links.push(host_end.into_queues().pop().unwrap());
            let mut queues = vec![(INSIDE, inside.into_queues().pop().unwrap())];
            for (i, port) in [PROV_A, PROV_B].into_iter().enumerate() {
                let (core_end, proxy_end) = pair(&pool, &cfg).unwrap();
                core_links.push(CoreLink {
                    q: core_end.into_queues().pop().unwrap(),
                    prefix: me.pa[i],
                    proxy_mac: me.prov_mac[i],
                });
                queues.push((port, proxy_end.into_queues().pop().unwrap()));
            }
            let mut setup = me.setup(peer);
            setup.seed = seed;
            pipelines.push(Pipeline::start(me.pipeline(), setup, vec![queues]).unwrap());
        }
        let h2_link = host_links.pop().unwrap();
        let host = |links: Vec<MemQueue>, me: &Site, peer: &Site| Host {
            links,
            next_hop: 0,
            mac: me.host_mac,
            ulid: me.host().0,
            peer: peer.host().0,
            proxy_mac: me.inside_mac,
            next_seq: 0,
            received: BTreeSet::new(),
            errors: Vec::new(),
        };
        let s2p = pipelines.pop();
        let backup = pipelines.pop();
        let primary = pipelines.pop();
        Self {
            h1: host(host_links, &s1, &s2),
            h2: host(vec![h2_link], &s2, &s1),
            // The routes point to the primary.
            core: Core::start(core_links, BACKUP_LINKS),
            primary,
            backup,
            s2: s2p,
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

    /// A stream both ways through the primary.
    fn stream_through_primary(&mut self) {
        let ok = self.run((true, true), Duration::from_secs(20), |l| {
            l.h2.received.len() >= 30 && l.h1.received.len() >= 30
        });
        assert!(
            ok,
            "no stream through the primary: h1 got {}, h2 got {}",
            self.h1.received.len(),
            self.h2.received.len()
        );
        self.assert_clean();
    }

    /// The primary dies (nothing reaches it or leaves it any more; its pipeline stops), the
    /// hosts go on sending for `outage`, then the routes move to the backup.
    fn kill_primary_then_converge(&mut self, outage: Duration) {
        self.core
            .dead
            .store(PRIMARY_LINKS | BACKUP_LINKS, Ordering::Relaxed);
        let report = self.primary.take().unwrap().stop();
        assert_eq!(report.contexts, 1, "the primary held the communication");
        self.run((true, true), outage, |_| false);
        self.core.dead.store(PRIMARY_LINKS, Ordering::Relaxed);
        self.h1.next_hop = 1;
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

    fn backup_engine(&self) -> shim6::EngineStats {
        self.backup
            .as_ref()
            .unwrap()
            .control()
            .stats()
            .unwrap()
            .engine
    }

    fn s2_engine(&self) -> shim6::EngineStats {
        self.s2.as_ref().unwrap().control().stats().unwrap().engine
    }

    /// Both directions flow through the backup on one context at each end, for the same
    /// ULID pair.
    fn assert_both_ways_through_backup(&mut self) {
        let (s1, s2) = (self.h1.next_seq, self.h2.next_seq);
        let ok = self.run((true, true), Duration::from_secs(20), |l| {
            l.h2.got_after(s1) >= 50 && l.h1.got_after(s2) >= 50
        });
        assert!(
            ok,
            "no stream both ways through the backup: h2 got {}, h1 got {}",
            self.h2.got_after(s1),
            self.h1.got_after(s2)
        );
        self.assert_clean();
        let (u1, u2) = (self.h1.ulid, self.h2.ulid);
        for (who, p, local, peer) in [
            ("backup", self.backup.as_ref().unwrap(), u1, u2),
            ("site 2", self.s2.as_ref().unwrap(), u2, u1),
        ] {
            let page = p
                .control()
                .contexts(dataplane::slowpath::control::ContextFilter {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(page.total, 1, "{who}: {page:?}");
            let c = &page.items[0].info;
            assert_eq!(c.state, ContextState::Established, "{who}");
            assert_eq!((c.local_ulid, c.peer_ulid), (local, peer), "{who}");
        }
    }

    fn stop(&mut self) {
        for p in [self.backup.take(), self.s2.take()].into_iter().flatten() {
            p.stop();
        }
    }
}

/// (a) The peer's payload reaches the backup first: R1bis → I2bis → context rebuilt.
#[test]
fn takeover_by_r1bis_when_the_peer_sends_first() {
    let mut lab = Lab::new();
    lab.stream_through_primary();
    assert_eq!(lab.backup_engine().i1_sent, 0, "the backup was idle");
    lab.kill_primary_then_converge(Duration::from_millis(200));
    let t0 = Instant::now();
    // Only host 2 sends: its proxy's context still carries the dead primary's tag.
    let s2 = lab.h2.next_seq;
    let ok = lab.run((false, true), Duration::from_secs(20), |l| {
        l.h1.got_after(s2) >= 30
    });
    assert!(
        ok,
        "host 2's stream did not reach host 1 through the backup"
    );
    eprintln!("recovered by R1bis/I2bis in {:?}", t0.elapsed());
    let b = lab.backup_engine();
    let s = lab.s2_engine();
    assert!(b.r1bis_sent >= 1, "backup: {b:?}");
    assert_eq!(b.recovered, 1, "backup: {b:?}");
    assert_eq!(
        b.i1_sent, 0,
        "the backup did not open a context itself: {b:?}"
    );
    assert!(
        s.i2bis_sent >= 1 && s.recoveries_completed == 1,
        "site 2: {s:?}"
    );
    lab.assert_both_ways_through_backup();
    lab.stop();
}

/// (b) Host 1's packets reach the backup first: it opens a context from its locator cache;
/// site 2 takes the new peer tag on its existing context for the same ULID pair.
#[test]
fn takeover_by_a_new_handshake_when_the_inside_host_sends_first() {
    let mut lab = Lab::new();
    lab.stream_through_primary();
    lab.kill_primary_then_converge(Duration::from_millis(200));
    let t0 = Instant::now();
    let s1 = lab.h1.next_seq;
    let ok = lab.run((true, false), Duration::from_secs(20), |l| {
        l.h2.got_after(s1) >= 30
    });
    assert!(
        ok,
        "host 1's stream did not reach host 2 through the backup"
    );
    eprintln!("new context through the backup in {:?}", t0.elapsed());
    let b = lab.backup_engine();
    let s = lab.s2_engine();
    assert!(b.i1_sent >= 1, "backup: {b:?}");
    assert_eq!(b.r1bis_sent, 0, "no recovery was needed: {b:?}");
    assert_eq!(s.recoveries_completed, 0, "site 2: {s:?}");
    lab.assert_both_ways_through_backup();
    lab.stop();
}

/// Both hosts keep sending across the takeover (a live bidirectional stream): whichever way
/// wins the race, the stream continues and each end keeps one context for the ULID pair.
#[test]
fn takeover_with_both_hosts_sending() {
    let mut lab = Lab::new();
    lab.stream_through_primary();
    lab.kill_primary_then_converge(Duration::from_millis(200));
    lab.assert_both_ways_through_backup();
    let b = lab.backup_engine();
    assert!(b.i1_sent + b.r1bis_sent >= 1, "backup: {b:?}");
    lab.stop();
}

/// (a) by REAP: host 1 streamed to host 2 only, so site 2 only receives and sends REAP
/// Keepalives (RFC 5534 §5.2) under the dead primary's tag. With no payload at all after the
/// takeover, a Keepalive reaching the backup is enough for R1bis → I2bis; host 2's first
/// datagrams then find a working context.
#[test]
fn takeover_by_r1bis_from_a_reap_keepalive() {
    let mut lab = Lab::new();
    let ok = lab.run((true, false), Duration::from_secs(20), |l| {
        l.h2.received.len() >= 30
    });
    assert!(ok, "no stream through the primary");
    lab.kill_primary_then_converge(Duration::from_millis(200));
    let t0 = Instant::now();
    let ok = lab.run((false, false), Duration::from_secs(15), |l| {
        l.backup_engine().recovered == 1
    });
    assert!(
        ok,
        "no recovery from keepalives: backup {:?}",
        lab.backup_engine()
    );
    eprintln!("recovered from a Keepalive in {:?}", t0.elapsed());
    assert!(lab.backup_engine().r1bis_sent >= 1);
    assert_eq!(lab.backup_engine().i1_sent, 0);
    assert_eq!(lab.h1.received.len(), 0, "host 2 sent nothing");
    let s2 = lab.h2.next_seq;
    let ok = lab.run((false, true), Duration::from_secs(5), |l| {
        l.h1.got_after(s2) >= 30
    });
    assert!(ok, "host 2's datagrams did not use the rebuilt context");
    assert_eq!(lab.backup_engine().i1_sent, 0);
    lab.assert_both_ways_through_backup();
    lab.stop();
}
