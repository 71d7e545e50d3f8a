//! Many seeds, loss, and tag re-use: the tables stay consistent.

use rand::{Rng, SeedableRng};

use super::keys::{SITE_A_PEM, SITE_B_PEM};
use super::util::*;
use crate::{ContextEvent, ContextState};

/// Both sides agree on every established context: tags mirrored, ULIDs mirrored.
fn consistent(p: &Pair) -> bool {
    p.a.engine
        .contexts()
        .filter(|c| c.state == ContextState::Established)
        .all(|c| {
            c.peer_tag
                .and_then(|t| p.b.engine.context(t))
                .is_some_and(|b| {
                    b.peer_tag == Some(c.local_tag)
                        && (b.local_ulid, b.peer_ulid) == (c.peer_ulid, c.local_ulid)
                })
        })
}

#[test]
fn handshakes_complete_under_20_percent_loss() {
    let mut established = 0;
    for seed in 0..20 {
        let mut p = Pair::new(1000 + seed);
        p.loss = 0.2;
        let (a, b) = (p.a.hosts[0], p.b.hosts[0]);
        let ta = p.start_connect(0, 0);
        p.drive_bounded(2000, |p| {
            p.a.engine
                .context(ta)
                .is_none_or(|c| c.state == ContextState::Established)
        });
        if p.a.engine.context(ta).is_some() {
            established += 1;
            // B may still be waiting for a retransmission to establish; let it finish.
            p.drive_bounded(2000, |p| p.b.engine.find(b, a).is_some());
            assert!(consistent(&p), "seed {seed}");
        } else {
            assert!(
                p.a.has_event(|e| matches!(e, ContextEvent::Failed { .. })),
                "seed {seed}"
            );
        }
    }
    assert!(
        established >= 18,
        "only {established}/20 established under 20% loss"
    );
}

#[test]
fn narrow_tags_with_churn_and_recovery_stay_consistent() {
    // RFC 5533 App. C.4 test mode: 127 tags per side, 36 ULID pairs, B keeps losing contexts
    // and recovering them from A's payload (R1bis/I2bis), A keeps dropping and re-creating.
    let mut sa = SideSpec::proxy(SITE_A_PEM, 0xa, 7);
    let mut sb = SideSpec::proxy(SITE_B_PEM, 0xb, 8);
    for s in [&mut sa, &mut sb] {
        s.hosts = 6;
        s.narrow_tags = true;
    }
    let mut p = Pair::with(sa, sb);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for i in 0..6 {
        for j in 0..6 {
            p.connect(i, j);
        }
    }
    assert_eq!(p.a.engine.context_count(), 36);
    for round in 0..40 {
        match rng.gen_range(0..3) {
            0 => {
                // B loses a context; A's payload triggers recovery.
                let tags: Vec<_> = p.b.engine.contexts().map(|c| c.local_tag).collect();
                let victim = tags[rng.gen_range(0..tags.len())];
                let info = p.b.engine.context(victim).unwrap();
                p.b.engine.remove(p.now, victim);
                if let Some(ta) = p.a.engine.find(info.peer_ulid, info.local_ulid) {
                    let pair = p.a.engine.context(ta).unwrap().pair;
                    p.b.engine
                        .handle_unknown_tag(p.now, pair.local.0, pair.peer.0, victim);
                }
            }
            1 => {
                // A drops one and re-creates it.
                let tags: Vec<_> = p.a.engine.contexts().map(|c| c.local_tag).collect();
                let victim = tags[rng.gen_range(0..tags.len())];
                let info = p.a.engine.context(victim).unwrap();
                p.a.engine.remove(p.now, victim);
                let j = p.b.hosts.iter().position(|h| *h == info.peer_ulid).unwrap();
                let lb = p.b.locators(j);
                p.a.engine
                    .connect(p.now, info.local_ulid, info.peer_ulid, &lb)
                    .unwrap();
            }
            _ => p.drive_for(secs(1)),
        }
        p.drive_for(ms(500));
        let tags: Vec<_> = p.a.engine.contexts().map(|c| c.local_tag.get()).collect();
        assert!(tags.iter().all(|t| *t > 0 && *t < 128), "round {round}");
    }
    p.drive_for(secs(30));
    assert!(consistent(&p));
    assert_eq!(
        p.a.engine
            .contexts()
            .filter(|c| c.state == ContextState::Established)
            .count(),
        36
    );
    let s = p.a.engine.stats();
    assert!(
        s.recoveries_completed >= 5,
        "recoveries {}",
        s.recoveries_completed
    );
    assert!(p.b.engine.stats().recovered >= 5);
}
