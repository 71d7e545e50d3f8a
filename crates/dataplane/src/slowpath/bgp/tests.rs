//! Route changes → per-provider sets → reachability of peer locators.

use std::time::{Duration, Instant};

use wire::Locator;

use super::*;

fn net(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}
fn loc(s: &str) -> Locator {
    Locator(s.parse().unwrap())
}

/// No verdict (reachable) before the dump is complete; then a withdraw of the only covering
/// prefix makes the locator unreachable via that provider only, a covering shorter prefix
/// keeps it reachable, and an empty table gives no verdict.
#[test]
fn reachability_follows_synced_tables() {
    let t0 = Instant::now();
    let mut r = BgpRoutes::default();
    let peer = loc("2001:db8:b1::77");
    assert!(!r.apply(t0, RouteChange::Reset { provider: 1 }));
    assert!(!r.apply(
        t0,
        RouteChange::Add {
            provider: 1,
            net: net("2001:db8:b1::/64")
        }
    ));
    r.apply(
        t0,
        RouteChange::Add {
            provider: 1,
            net: net("2001:db8:e::/64"),
        },
    );
    assert_eq!(
        r.reachability(loc("2001:db8:99::1")).collect::<Vec<_>>(),
        [(1, true)],
        "not synced: no verdict"
    );
    assert!(r.apply(t0, RouteChange::Synced { provider: 1 }));
    assert_eq!(
        r.reachability(loc("2001:db8:99::1")).collect::<Vec<_>>(),
        [(1, false)]
    );
    r.apply(t0, RouteChange::Reset { provider: 2 });
    r.apply(
        t0,
        RouteChange::Add {
            provider: 2,
            net: net("2001:db8::/32"),
        },
    );
    r.apply(t0, RouteChange::Synced { provider: 2 });
    assert_eq!(
        r.reachability(peer).collect::<Vec<_>>(),
        [(1, true), (2, true)]
    );
    let t1 = t0 + Duration::from_secs(3);
    assert!(r.apply(
        t1,
        RouteChange::Remove {
            provider: 1,
            net: net("2001:db8:b1::/64")
        }
    ));
    assert!(
        !r.apply(
            t1,
            RouteChange::Remove {
                provider: 1,
                net: net("2001:db8:b1::/64")
            }
        ),
        "a repeated withdraw changes nothing"
    );
    assert_eq!(
        r.reachability(peer).collect::<Vec<_>>(),
        [(1, false), (2, true)]
    );
    let s = r.stats(t1 + Duration::from_secs(2), 1).unwrap();
    assert_eq!(s.routes, 1);
    assert_eq!(s.withdrawals, 1);
    assert_eq!(s.last_withdraw_ago, Some(Duration::from_secs(2)));
    assert!(r.stats(t1, 3).is_none());
    // The last route gone (session down): no verdict.
    r.apply(
        t1,
        RouteChange::Remove {
            provider: 1,
            net: net("2001:db8:e::/64"),
        },
    );
    assert_eq!(
        r.reachability(peer).collect::<Vec<_>>(),
        [(1, true), (2, true)]
    );
    // A re-dump under way gives no verdict either.
    r.apply(t1, RouteChange::Reset { provider: 2 });
    r.apply(
        t1,
        RouteChange::Add {
            provider: 2,
            net: net("2001:db8:e::/64"),
        },
    );
    assert_eq!(
        r.reachability(peer).collect::<Vec<_>>(),
        [(1, true), (2, true)]
    );
    r.apply(t1, RouteChange::Synced { provider: 2 });
    assert_eq!(
        r.reachability(peer).collect::<Vec<_>>(),
        [(1, true), (2, false)]
    );
}
