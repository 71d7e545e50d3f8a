//! Peers that are plain SHIM6 hosts: their ULID is one of their locators
//! (issue #3 item 1; spec shim6.md §19).

use wire::{Locator, ShimOption, Ulid};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ConnectOutcome, ContextState};

fn proxy_and_host(seed: u64) -> Pair {
    Pair::with(
        SideSpec::proxy(SITE_A_PEM, 0xa, seed),
        SideSpec::host(SITE_B_PEM, 0xb, seed + 1),
    )
}

fn established(side: &Side, local: Ulid, peer: Ulid) -> bool {
    side.engine
        .find(local, peer)
        .and_then(|t| side.engine.context(t))
        .is_some_and(|c| c.state == ContextState::Established)
}

#[test]
fn host_peer_starts_the_exchange() {
    let mut p = proxy_and_host(80);
    let (host, ours) = (p.b.hosts[0], p.a.hosts[0]);
    assert_eq!(
        Locator(host.0),
        p.b.locators(0)[0],
        "a host's ULID is its first locator"
    );
    // The host sends its I1 to one of our locators, naming our CMULA in the ULID Pair option.
    let la = p.a.locators(0);
    let out = p.b.engine.connect(p.now, host, ours, &la).unwrap();
    assert!(matches!(out, ConnectOutcome::Started(_)));
    p.drive_bounded(50, |p| {
        established(&p.a, ours, host) && established(&p.b, host, ours)
    });
    let ctx = p.a.only_context();
    assert_eq!(ctx.peer_ulid, host);
    // The host's ULID is routable: it is in Ls(peer), verified, and is the current peer locator.
    assert!(ctx
        .peer_locators
        .iter()
        .any(|l| l.locator.0 == host.0 && l.verified));
    assert_eq!(ctx.pair.peer.0, host.0);
    assert_eq!(ctx.pair.local, la[0]);
    // Our side of the host's view: our CMULA is not a locator.
    let hctx = p.b.only_context();
    assert!(hctx.peer_locators.iter().all(|l| l.locator.0 != ours.0));
}

#[test]
fn we_initiate_towards_a_host() {
    let mut p = proxy_and_host(82);
    let (ours, host) = (p.a.hosts[0], p.b.hosts[0]);
    let out =
        p.a.engine
            .connect(p.now, ours, host, &[Locator(host.0)])
            .unwrap();
    let ConnectOutcome::Started(tag) = out else {
        panic!("{out:?}")
    };
    p.drive_bounded(50, |p| {
        established(&p.a, ours, host) && established(&p.b, host, ours)
    });
    let ctx = p.a.engine.context(tag).unwrap();
    assert_eq!(ctx.pair.peer.0, host.0);
    // The host advertised both of its locators, signed: both verified.
    assert_eq!(ctx.peer_locators.iter().filter(|l| l.verified).count(), 2);
}

#[test]
fn host_without_ulid_pair_option_is_answered_by_prefix_swap() {
    // A host that omits the ULID Pair option (its addresses are its ULIDs) sends I1/I2 to our
    // locator: our ULID is the host whose locator it is.
    let mut p = proxy_and_host(84);
    let (ours, host) = (p.a.hosts[1], p.b.hosts[0]);
    p.filter = Some(Box::new(|_, _| true));
    let strip = |t: &crate::Transmit| {
        forge(t, |r| {
            r.options
                .retain(|o| !matches!(o, ShimOption::UlidPair { .. }))
        })
    };
    // Run the host's side by hand, stripping the option from everything it sends.
    let la = p.a.locators(1);
    p.b.engine.connect(p.now, host, ours, &la).unwrap();
    for _ in 0..20 {
        p.flush();
        let from_b: Vec<_> = p.b.sent.drain(..).map(|(_, t)| t).collect();
        for t in &from_b {
            let s = strip(t);
            assert!(parse(&s).ulid_pair().is_none());
            p.a.engine.handle_control(p.now, s.src, s.dst, &s.payload);
        }
        while let Some(t) = p.a.engine.poll_transmit() {
            p.b.engine.handle_control(p.now, t.src, t.dst, &t.payload);
        }
        if established(&p.a, ours, host) {
            break;
        }
    }
    assert!(established(&p.a, ours, host));
    let ctx = p.a.only_context();
    assert_eq!((ctx.local_ulid, ctx.peer_ulid), (ours, host));
}
