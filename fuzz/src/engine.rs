//! Two SHIM6 proxies (sites A and B, RSA-1024 test keys) with one ESTABLISHED context between
//! A's host 0 and B's host 0, built the same way every time (fixed seeds).

use std::net::Ipv6Addr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use shim6::{
    ConnectOutcome, ContextEngine, ContextState, EngineConfig, LocalProvider, ProviderId,
    RandomTags, SiteIdentity, Transmit,
};
use wire::{ContextTag, ControlRepr, Locator, Ulid};

#[path = "../../crates/shim6/src/tests/keys.rs"]
#[allow(dead_code, unreachable_pub)]
mod keys;

/// One side: its engine, its host ULID and that host's locators.
pub struct Side {
    pub engine: ContextEngine,
    pub ulid: Ulid,
    pub locators: Vec<Locator>,
}

struct Host {
    ulid: Ulid,
    params: cga::CgaParameters,
}

fn p64(s: &str) -> [u8; 8] {
    shim6::prefix64(s.parse::<Ipv6Addr>().unwrap())
}

fn providers(n: u16) -> Vec<LocalProvider> {
    (1..=2)
        .map(|k| LocalProvider {
            id: ProviderId(k),
            prefix: p64(&format!("2001:db8:{:x}::", n * 16 + k)),
            up: true,
        })
        .collect()
}

/// CGA generation is slow-ish: one host per site, made once per process.
fn host(pem: &str, n: u16) -> Host {
    let key = cga::SiteKey::from_pkcs8_pem(pem).unwrap();
    let mut rng = StdRng::seed_from_u64(u64::from(n));
    let (addr, params) = cga::generate(
        key.public_key_der(),
        p64(&format!("fc00:0:0:{n:x}::")),
        0,
        &[],
        &mut rng,
    )
    .unwrap();
    Host {
        ulid: Ulid(addr),
        params,
    }
}

fn hosts() -> &'static (Host, Host) {
    static H: OnceLock<(Host, Host)> = OnceLock::new();
    H.get_or_init(|| (host(keys::SITE_A_PEM, 0xa), host(keys::SITE_B_PEM, 0xb)))
}

fn side(pem: &str, n: u16, h: &Host, config: EngineConfig, now: Instant) -> Side {
    let identity = SiteIdentity {
        key: cga::SiteKey::from_pkcs8_pem(pem).unwrap(),
        ulid_prefix: p64(&format!("fc00:0:0:{n:x}::")),
        providers: providers(n),
    };
    let mut engine = ContextEngine::new(
        config,
        identity,
        Box::new(RandomTags::new()),
        u64::from(n),
        now,
    )
    .unwrap();
    engine.add_local_host(h.ulid, h.params.clone()).unwrap();
    let locators = providers(n)
        .iter()
        .map(|p| shim6::locator_for(p.prefix, h.ulid))
        .collect();
    Side {
        engine,
        ulid: h.ulid,
        locators,
    }
}

/// The two sides, established, plus every control message exchanged to get there.
pub struct Established {
    pub a: Side,
    pub b: Side,
    pub tag_a: ContextTag,
    pub tag_b: ContextTag,
    pub now: Instant,
    pub transcript: Vec<Transmit>,
}

/// Moves every queued transmit between the two engines until both are quiet; returns them.
pub fn exchange(a: &mut Side, b: &mut Side, now: Instant) -> Vec<Transmit> {
    let mut all = Vec::new();
    for _ in 0..32 {
        let mut moved = false;
        while let Some(t) = a.engine.poll_transmit() {
            b.engine.handle_control(now, t.src, t.dst, &t.payload);
            all.push(t);
            moved = true;
        }
        while let Some(t) = b.engine.poll_transmit() {
            a.engine.handle_control(now, t.src, t.dst, &t.payload);
            all.push(t);
            moved = true;
        }
        while a.engine.poll_event().is_some() {}
        while b.engine.poll_event().is_some() {}
        if !moved {
            break;
        }
    }
    all
}

/// A's host connects to B's host; both sides are ESTABLISHED on return.
pub fn established(config: EngineConfig) -> Established {
    let now = Instant::now();
    let (ha, hb) = hosts();
    let mut a = side(keys::SITE_A_PEM, 0xa, ha, config.clone(), now);
    let mut b = side(keys::SITE_B_PEM, 0xb, hb, config, now);
    let out = a.engine.connect(now, a.ulid, b.ulid, &b.locators).unwrap();
    let ConnectOutcome::Started(tag_a) = out else {
        panic!("connect: {out:?}");
    };
    let transcript = exchange(&mut a, &mut b, now);
    let tag_b = b.engine.find(b.ulid, a.ulid).unwrap();
    assert_eq!(
        a.engine.context(tag_a).unwrap().state,
        ContextState::Established
    );
    assert_eq!(
        b.engine.context(tag_b).unwrap().state,
        ContextState::Established
    );
    Established {
        a,
        b,
        tag_a,
        tag_b,
        now,
        transcript,
    }
}

/// What an engine sends must always parse (it is emitted by our own `wire` code).
pub fn drain_checked(engine: &mut ContextEngine) -> Vec<Transmit> {
    let mut out = Vec::new();
    while let Some(t) = engine.poll_transmit() {
        assert!(ControlRepr::parse(&t.payload).is_ok(), "engine sent {t:?}");
        out.push(t);
    }
    while engine.poll_event().is_some() {}
    out
}

/// Advances `now` by `d` and fires the timers of both sides.
pub fn tick(e: &mut Established, d: Duration) {
    e.now += d;
    e.a.engine.handle_timeout(e.now);
    e.b.engine.handle_timeout(e.now);
}
