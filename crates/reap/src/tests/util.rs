//! A virtual-clock harness in the manner of quinn-proto's `tests/util.rs`: two machines, A and
//! B, joined by a fake network with a one-way latency, per-direction drop sets per locator pair
//! and random loss. Each side can run an application that sends payload on its current pair
//! at a fixed interval.

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use wire::{ContextTag, Locator, LocatorPair, MessageBody, ProbeRepr, ReapState};

use crate::{ReapConfig, ReapEvent, ReapMachine, ReapTransmit};

pub(crate) fn loc(s: &str) -> Locator {
    Locator(s.parse::<Ipv6Addr>().unwrap())
}
pub(crate) fn a1() -> Locator {
    loc("2001:db8:1::a")
}
pub(crate) fn a2() -> Locator {
    loc("2001:db8:2::a")
}
pub(crate) fn b1() -> Locator {
    loc("2001:db8:3::b")
}
pub(crate) fn b2() -> Locator {
    loc("2001:db8:4::b")
}
pub(crate) fn pair(local: Locator, peer: Locator) -> LocatorPair {
    LocatorPair { local, peer }
}
pub(crate) fn tag_a() -> ContextTag {
    ContextTag::new(0x20a0_a0a0_a0a0).unwrap()
}
pub(crate) fn tag_b() -> ContextTag {
    ContextTag::new(0x0b0b_0b0b_0b0b).unwrap()
}
pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A config without randomisation: every timer exact.
pub(crate) fn exact() -> ReapConfig {
    ReapConfig {
        randomise: false,
        ..ReapConfig::default()
    }
}

/// A's machine on its own: locators a1, a2; peer b1, b2; current (a1, b1).
pub(crate) fn machine_a(config: ReapConfig, now: Instant, seed: u64) -> ReapMachine {
    ReapMachine::new(
        config,
        now,
        tag_b(),
        pair(a1(), b1()),
        vec![a1(), a2()],
        vec![b1(), b2()],
        seed,
    )
}

/// Which side of the [`Pair`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Side {
    A,
    B,
}

/// What travels on the fake network.
#[derive(Clone, Debug)]
pub(crate) enum Packet {
    Payload,
    Reap(MessageBody),
}

/// One endpoint: the machine plus logs of everything it did.
pub(crate) struct Node {
    pub(crate) m: ReapMachine,
    /// Our own context tag: every control message we receive must carry it.
    pub(crate) own_tag: ContextTag,
    pub(crate) locals: Vec<Locator>,
    /// Payload interval while the application is active.
    pub(crate) app: Option<Duration>,
    next_app: Option<Instant>,
    /// Every REAP message the machine emitted, with its time.
    pub(crate) tx: Vec<(Instant, ReapTransmit)>,
    /// Every event the machine emitted.
    pub(crate) events: Vec<(Instant, ReapEvent)>,
    /// Payload packets received (time, pair as seen by the sender: src, dst).
    pub(crate) payload_rx: Vec<(Instant, LocatorPair)>,
    /// Probes received (time, Sta).
    pub(crate) probe_rx: Vec<(Instant, ReapState)>,
}

impl Node {
    /// Probes emitted: (time, pair, repr).
    pub(crate) fn probes(&self) -> Vec<(Instant, LocatorPair, ProbeRepr)> {
        self.tx
            .iter()
            .filter_map(|(t, x)| match &x.body {
                MessageBody::Probe(p) => Some((*t, x.pair, p.clone())),
                _ => None,
            })
            .collect()
    }
    /// Send times of the probes sent on the probe timer, i.e. not in immediate answer to a
    /// probe received at the same instant.
    pub(crate) fn retransmissions(&self) -> Vec<Instant> {
        self.probes()
            .into_iter()
            .map(|(t, _, _)| t)
            .filter(|t| !self.probe_rx.iter().any(|(r, _)| r == t))
            .collect()
    }
    /// Keepalive send times.
    pub(crate) fn keepalives(&self) -> Vec<Instant> {
        self.tx
            .iter()
            .filter(|(_, x)| matches!(x.body, MessageBody::Keepalive { .. }))
            .map(|(t, _)| *t)
            .collect()
    }
    /// Times of the `PairChanged` events, with the new pair.
    pub(crate) fn pair_changes(&self) -> Vec<(Instant, LocatorPair)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                ReapEvent::PairChanged { new, .. } => Some((*t, *new)),
                _ => None,
            })
            .collect()
    }
}

struct InFlight {
    at: Instant,
    src: Locator,
    dst: Locator,
    packet: Packet,
}

/// Two machines on a virtual clock.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) a: Node,
    pub(crate) b: Node,
    /// One-way latency of every path.
    pub(crate) latency: Duration,
    /// Probability of losing any packet.
    pub(crate) loss: f64,
    /// Directed (src, dst) locator pairs whose packets are dropped.
    drops: HashSet<(Locator, Locator)>,
    /// Targeted loss windows: probes with this Sta sent by this side are lost until then.
    lost_probes: Vec<(Side, ReapState, Instant)>,
    rng: StdRng,
    in_flight: Vec<InFlight>,
}

impl Pair {
    /// A (a1, a2) and B (b1, b2) on pairs (a1, b1) / (b1, a1); 20 ms one-way latency.
    pub(crate) fn new(config: ReapConfig, seed: u64) -> Self {
        let start = Instant::now();
        let a = machine_a(config, start, seed);
        let b = ReapMachine::new(
            config,
            start,
            tag_a(),
            pair(b1(), a1()),
            vec![b1(), b2()],
            vec![a1(), a2()],
            seed.wrapping_add(1),
        );
        let node = |m, own_tag, locals| Node {
            m,
            own_tag,
            locals,
            app: None,
            next_app: None,
            tx: Vec::new(),
            events: Vec::new(),
            payload_rx: Vec::new(),
            probe_rx: Vec::new(),
        };
        Self {
            now: start,
            a: node(a, tag_a(), vec![a1(), a2()]),
            b: node(b, tag_b(), vec![b1(), b2()]),
            latency: Duration::from_millis(20),
            loss: 0.0,
            drops: HashSet::new(),
            lost_probes: Vec::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            in_flight: Vec::new(),
        }
    }

    pub(crate) fn node(&mut self, side: Side) -> &mut Node {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Starts (or with `None` stops) a side's application traffic.
    pub(crate) fn app(&mut self, side: Side, every: Option<Duration>) {
        let now = self.now;
        let n = self.node(side);
        n.app = every;
        n.next_app = every.map(|_| now);
    }

    /// Drops everything sent from `src` to `dst` from now on.
    pub(crate) fn cut(&mut self, src: Locator, dst: Locator) {
        self.drops.insert((src, dst));
    }

    /// Drops both directions between `x` and `y`.
    pub(crate) fn cut_both(&mut self, x: Locator, y: Locator) {
        self.cut(x, y);
        self.cut(y, x);
    }

    /// Drops everything to and from `l`.
    pub(crate) fn cut_locator(&mut self, l: Locator) {
        for o in [a1(), a2(), b1(), b2()] {
            self.cut_both(l, o);
        }
    }

    /// Lifts the cuts to and from `l`.
    pub(crate) fn heal_locator(&mut self, l: Locator) {
        self.drops.retain(|(x, y)| *x != l && *y != l);
    }

    /// Lifts every cut.
    pub(crate) fn heal(&mut self) {
        self.drops.clear();
    }

    /// Loses every probe with Sta = `state` that `from` sends until `until`: the unlucky run
    /// of random losses that a lossy scenario produces now and then, made deterministic.
    pub(crate) fn lose_probes(&mut self, from: Side, state: ReapState, until: Instant) {
        self.lost_probes.push((from, state, until));
    }

    fn send(&mut self, src: Locator, dst: Locator, packet: Packet) {
        if self.drops.contains(&(src, dst)) {
            return;
        }
        if let Packet::Reap(MessageBody::Probe(p)) = &packet {
            let from = if self.a.locals.contains(&src) {
                Side::A
            } else {
                Side::B
            };
            let now = self.now;
            if self
                .lost_probes
                .iter()
                .any(|&(side, state, until)| side == from && state == p.state && now < until)
            {
                return;
            }
        }
        if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
            return;
        }
        self.in_flight.push(InFlight {
            at: self.now + self.latency,
            src,
            dst,
            packet,
        });
    }

    /// Moves every queued transmit onto the network and every event into the logs.
    pub(crate) fn flush(&mut self) {
        let now = self.now;
        for side in [Side::A, Side::B] {
            let mut out = Vec::new();
            let n = self.node(side);
            while let Some(t) = n.m.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = n.m.poll_event() {
                n.events.push((now, e));
            }
            for t in out {
                self.node(side).tx.push((now, t.clone()));
                self.send(t.pair.local, t.pair.peer, Packet::Reap(t.body));
            }
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [
            self.a.m.poll_timeout(),
            self.b.m.poll_timeout(),
            self.a.next_app,
            self.b.next_app,
            self.in_flight.iter().map(|f| f.at).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn deliver(&mut self, f: InFlight) {
        let now = self.now;
        let side = if self.a.locals.contains(&f.dst) {
            Side::A
        } else {
            Side::B
        };
        let n = self.node(side);
        match f.packet {
            Packet::Payload => {
                n.payload_rx.push((now, pair(f.src, f.dst)));
                n.m.on_payload_received(now, now);
            }
            Packet::Reap(MessageBody::Keepalive { receiver_tag }) => {
                assert_eq!(receiver_tag, n.own_tag, "keepalive with a wrong tag");
                n.m.on_keepalive(now);
            }
            Packet::Reap(MessageBody::Probe(p)) => {
                assert_eq!(p.receiver_tag, n.own_tag, "probe with a wrong tag");
                n.probe_rx.push((now, p.state));
                n.m.on_probe(now, f.src, f.dst, &p);
            }
            Packet::Reap(other) => panic!("unexpected message {other:?}"),
        }
    }

    /// Processes everything due at `self.now`.
    fn process(&mut self) {
        let now = self.now;
        let mut due: Vec<InFlight> = Vec::new();
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].at <= now {
                due.push(self.in_flight.remove(i));
            } else {
                i += 1;
            }
        }
        for f in due {
            self.deliver(f);
            self.flush();
        }
        for side in [Side::A, Side::B] {
            let n = self.node(side);
            if let (Some(every), Some(at)) = (n.app, n.next_app) {
                if at <= now {
                    n.next_app = Some(at + every);
                    n.m.on_payload_sent(now, now);
                    let p = n.m.current_pair();
                    self.send(p.local, p.peer, Packet::Payload);
                }
            }
        }
        for side in [Side::A, Side::B] {
            let n = self.node(side);
            if n.m.poll_timeout().is_some_and(|t| t <= now) {
                n.m.handle_timeout(now);
            }
            // The machine never asks to be woken in the past after handling its timers.
            assert!(n.m.poll_timeout().is_none_or(|t| t > now));
        }
        self.flush();
    }

    /// Runs the simulation until `until`.
    pub(crate) fn run_until(&mut self, until: Instant) {
        self.flush();
        for _ in 0..200_000 {
            match self.next_wakeup() {
                Some(w) if w <= until => {
                    self.now = self.now.max(w);
                    self.process();
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("simulation did not settle");
    }

    /// Runs for `d` more.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }
}

impl Pair {
    /// Debug dump of both logs (for failing tests).
    #[allow(dead_code)]
    pub(crate) fn dump(&self, from: Instant) {
        for (name, n) in [("A", &self.a), ("B", &self.b)] {
            let mut lines: Vec<(Instant, String)> = Vec::new();
            for (t, x) in &n.tx {
                let d = match &x.body {
                    MessageBody::Probe(p) => format!(
                        "probe {:?} sent={:?} recv={:?}",
                        p.state,
                        p.sent
                            .iter()
                            .map(|r| (
                                r.src.0.segments()[2],
                                r.dst.0.segments()[2],
                                r.nonce.0 % 1000
                            ))
                            .collect::<Vec<_>>(),
                        p.received
                            .iter()
                            .map(|r| (
                                r.src.0.segments()[2],
                                r.dst.0.segments()[2],
                                r.nonce.0 % 1000
                            ))
                            .collect::<Vec<_>>()
                    ),
                    other => format!("{other:?}"),
                };
                lines.push((
                    *t,
                    format!(
                        "tx {}->{} {d}",
                        x.pair.local.0.segments()[2],
                        x.pair.peer.0.segments()[2]
                    ),
                ));
            }
            for (t, e) in &n.events {
                lines.push((*t, format!("ev {e:?}")));
            }
            lines.sort_by_key(|l| l.0);
            for (t, l) in lines.into_iter().filter(|l| l.0 >= from) {
                eprintln!("{name} {:>10.3} {l}", (t - from).as_secs_f64());
            }
        }
    }
}
