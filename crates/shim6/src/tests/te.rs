//! Traffic-engineering inputs of the engine: the provider a handshake starts from
//! (`connect_via`) and the Locator Preferences we advertise (RFC 5533 §5.15.3, §10.1).

use wire::ShimOption;

use super::util::*;
use crate::{ConnectOutcome, ContextEvent, ProviderId};

#[test]
fn connect_via_sources_the_handshake_and_the_first_pair_from_that_provider() {
    let mut p = Pair::new(7);
    let (local, peer) = (p.a.hosts[0], p.b.hosts[0]);
    let locs = p.b.locators(0);
    let out =
        p.a.engine
            .connect_via(p.now, local, peer, &locs, Some(ProviderId(2)))
            .unwrap();
    let ConnectOutcome::Started(tag) = out else {
        panic!("{out:?}")
    };
    p.drive_bounded(200, |p| p.a.is_established(tag));
    let i1 = &p.a.sent_of(I1)[0].1;
    assert_eq!(i1.src, p.a.locators(0)[1].0, "I1 not from provider 2");
    let pair = p.a.engine.context(tag).unwrap().pair;
    assert_eq!(pair.local, p.a.locators(0)[1]);
    assert!(p.a.has_event(|e| matches!(e,
        ContextEvent::Established { pair: ep, .. } if ep.local == p.a.locators(0)[1])));

    // A provider that is down (or unknown) leaves the engine's default: the first one up.
    let (local, peer) = (p.a.hosts[0], p.b.hosts[1]);
    p.a.engine.set_provider_state(p.now, ProviderId(2), false);
    let locs = p.b.locators(1);
    p.a.engine
        .connect_via(p.now, local, peer, &locs, Some(ProviderId(2)))
        .unwrap();
    p.flush();
    let last = p.a.sent_of(I1).last().unwrap().1.clone();
    assert_eq!(last.src, p.a.locators(0)[0].0);
}

#[test]
fn ingress_preferences_are_advertised_to_every_peer() {
    let mut p = Pair::new(11);
    p.connect(0, 0);
    assert!(p.a.engine.ingress_preferences().is_empty());
    p.a.engine
        .set_ingress_preferences(p.now, &[(ProviderId(1), 20, 0), (ProviderId(2), 10, 5)]);
    assert_eq!(
        p.a.engine.ingress_preferences(),
        vec![(ProviderId(1), 20, 0), (ProviderId(2), 10, 5)]
    );
    p.drive_bounded(50, |p| p.a.engine.stats().update_acked == 1);
    let ur = parse(&p.a.sent_of(UPDATE_REQUEST)[0].1);
    assert!(ur.locator_list().is_none(), "preferences only: same list");
    let prefs = ur.locator_preferences().unwrap();
    assert_eq!(prefs.element_len, 3);
    assert_eq!(
        prefs
            .elements
            .iter()
            .map(|e| (e.flags, e.priority, e.weight))
            .collect::<Vec<_>>(),
        vec![(0, 20, 0), (0, 10, 5)]
    );
    // The peer recorded them on our locators.
    let theirs: Vec<(u8, u8)> =
        p.b.only_context()
            .peer_locators
            .iter()
            .map(|l| (l.priority, l.weight))
            .collect();
    assert_eq!(theirs, vec![(20, 0), (10, 5)]);
    // Setting the same again sends nothing; new handshakes carry them.
    p.a.engine
        .set_ingress_preferences(p.now, &[(ProviderId(2), 10, 5), (ProviderId(1), 20, 0)]);
    p.flush();
    assert_eq!(p.a.count_sent(UPDATE_REQUEST), 1);
    p.connect(0, 1);
    let i2 = parse(&p.a.sent_of(I2).last().unwrap().1.clone());
    assert!(i2
        .options
        .iter()
        .any(|o| matches!(o, ShimOption::LocatorPreferences(lp) if lp.element_len == 3)));
}
