//! Context lifetime: idle GC, explicit removal, host removal, the context cap (issue #3 item 5).

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ConnectOutcome, ContextEvent, FailReason, RemoveReason};

#[test]
fn idle_contexts_are_collected_and_active_ones_kept() {
    let mut p = Pair::new(90);
    let (ta0, tb0) = p.connect(0, 0);
    let (ta1, tb1) = p.connect(1, 1);
    let start = p.now;
    // Context 1 sees payload every minute (both directions, as data-plane counters report).
    for _ in 0..12 {
        p.drive_for(secs(60));
        let now = p.now;
        p.a.engine.payload_activity(now, ta1, Some(now), Some(now));
        p.b.engine.payload_activity(now, tb1, Some(now), Some(now));
    }
    let idle_a = p.a.events.iter().find(|(_, e)| {
        *e == ContextEvent::Removed {
            local_tag: ta0,
            reason: RemoveReason::Idle,
        }
    });
    let idle_b = p.b.events.iter().find(|(_, e)| {
        *e == ContextEvent::Removed {
            local_tag: tb0,
            reason: RemoveReason::Idle,
        }
    });
    let (at_a, at_b) = (idle_a.unwrap().0, idle_b.unwrap().0);
    assert!(
        at_a - start >= secs(599) && at_a - start <= secs(601),
        "{:?}",
        at_a - start
    );
    assert!(at_b - start >= secs(599) && at_b - start <= secs(601));
    assert!(p.a.engine.context(ta0).is_none() && p.b.engine.context(tb0).is_none());
    assert!(p.a.engine.context(ta1).is_some() && p.b.engine.context(tb1).is_some());
    assert_eq!(p.a.engine.stats().idle_removed, 1);
}

#[test]
fn explicit_and_host_removal() {
    let mut p = Pair::new(91);
    let (ta0, _) = p.connect(0, 0);
    let (ta1, _) = p.connect(1, 1);
    assert!(p.a.engine.remove(p.now, ta0));
    assert!(!p.a.engine.remove(p.now, ta0));
    let h1 = p.a.hosts[1];
    p.a.engine.remove_local_host(h1);
    p.flush();
    assert!(p.a.has_event(|e| *e
        == ContextEvent::Removed {
            local_tag: ta0,
            reason: RemoveReason::Explicit
        }));
    assert!(p.a.has_event(|e| *e
        == ContextEvent::Removed {
            local_tag: ta1,
            reason: RemoveReason::LocalHostRemoved
        }));
    assert_eq!(p.a.engine.context_count(), 0);
    assert!(p.a.engine.local_locators(h1).is_empty());
    assert!(p
        .a
        .engine
        .connect(p.now, h1, p.b.hosts[1], &p.b.locators(1))
        .is_err());
}

#[test]
fn context_cap_refuses_connect_and_drops_i2() {
    let mut a = SideSpec::proxy(SITE_A_PEM, 0xa, 92);
    a.config.max_contexts = 2;
    let mut b = SideSpec::proxy(SITE_B_PEM, 0xb, 93);
    b.config.max_contexts = 1;
    let mut p = Pair::with(a, b);
    p.connect(0, 0);
    // B is full: A's second I2 is dropped (and counted); A stays in I2-SENT.
    let a1 = p.a.hosts[1];
    let t = p.start_connect(1, 1);
    p.drive_for(secs(1));
    assert_eq!(p.b.engine.stats().i2_dropped_cap, 1);
    assert_eq!(p.b.engine.context_count(), 1);
    assert_eq!(
        p.a.engine.context(t).unwrap().state,
        crate::ContextState::I2Sent
    );
    // A is full too: a third connect is refused.
    let out =
        p.a.engine
            .connect(p.now, a1, p.b.hosts[0], &p.b.locators(0))
            .unwrap();
    assert_eq!(out, ConnectOutcome::Refused);
    assert_eq!(p.a.engine.stats().refused_cap, 1);
    p.flush();
    assert!(p.a.has_event(|e| matches!(
        e,
        ContextEvent::Failed {
            reason: FailReason::Refused,
            ..
        }
    )));
}

#[test]
fn add_local_host_checks_prefix_key_and_cga() {
    let p = Pair::new(94);
    let mut engine_side = Side::build(SideSpec::proxy(SITE_A_PEM, 0xa, 95), t0());
    let e = &mut engine_side.engine;
    // B's host: another key and another /64.
    assert!(matches!(
        e.add_local_host(p.b.hosts[0], p.b.params[0].clone()),
        Err(crate::Shim6Error::WrongUlidPrefix(_))
    ));
    // Our /64 but B's key.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let key_b = cga::SiteKey::from_pkcs8_pem(SITE_B_PEM).unwrap();
    let (addr, params) = cga::generate(
        key_b.public_key_der(),
        p64("fc00:0:0:a::"),
        0,
        &[],
        &mut rng,
    )
    .unwrap();
    assert!(matches!(
        e.add_local_host(wire::Ulid(addr), params),
        Err(crate::Shim6Error::WrongKey(_))
    ));
    // Our key and /64, but not the CGA of these parameters.
    let other = wire::Ulid("fc00:0:0:a::1234".parse().unwrap());
    assert!(matches!(
        e.add_local_host(other, engine_side.params[0].clone()),
        Err(crate::Shim6Error::Cga(_))
    ));
    assert!(e.local_locators(other).is_empty());
}

#[test]
fn engine_rejects_bad_config_and_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<crate::ContextEngine>();
    let mut spec = SideSpec::proxy(SITE_A_PEM, 0xa, 96);
    spec.config.max_contexts = 0;
    let identity = crate::SiteIdentity {
        key: cga::SiteKey::from_pkcs8_pem(SITE_A_PEM).unwrap(),
        ulid_prefix: spec.ulid_prefix,
        providers: spec.providers.clone(),
    };
    let e = crate::ContextEngine::new(
        spec.config,
        identity,
        Box::new(crate::RandomTags::new()),
        1,
        t0(),
    );
    assert!(matches!(
        e,
        Err(crate::Shim6Error::InvalidConfig("max_contexts"))
    ));
}
