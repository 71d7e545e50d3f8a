//! The follower against the real kernel: routes added and deleted with `ip -6 route` in
//! tables of a private network namespace (root needed; fails loudly without it).

use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// Runs `f` on a thread in a fresh network namespace; `ip` children inherit it.
fn in_private_netns(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) affects only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed (run as root, as CI does): {}",
            std::io::Error::last_os_error()
        );
        f();
    })
    .join()
    .unwrap();
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn net(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

/// Reads changes until `want` has been seen in order or 3 s passed; returns all seen.
fn expect(f: &mut Follower, want: &[RouteChange]) -> Vec<RouteChange> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end && !seen.ends_with(want) {
        seen.extend(f.next().unwrap());
    }
    assert!(seen.ends_with(want), "want {want:?}, saw {seen:?}");
    seen
}

#[test]
fn follows_kernel_tables() {
    in_private_netns(|| {
        ip(&["link", "set", "lo", "up"]);
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:b1::/64",
            "dev",
            "lo",
            "table",
            "101",
        ]);
        ip(&["-6", "route", "add", "2001:db8:99::/64", "dev", "lo"]);
        let mut f = Follower::open(vec![(1, 101), (2, 102)]).unwrap();
        assert_eq!(
            f.dump().unwrap(),
            [
                RouteChange::Reset { provider: 1 },
                RouteChange::Reset { provider: 2 },
                RouteChange::Add {
                    provider: 1,
                    net: net("2001:db8:b1::/64")
                },
                RouteChange::Synced { provider: 1 },
                RouteChange::Synced { provider: 2 },
            ]
        );
        // A route in another table: ignored. One in table 102: provider 2 announces it.
        ip(&["-6", "route", "add", "2001:db8:98::/64", "dev", "lo"]);
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:b2::/48",
            "dev",
            "lo",
            "table",
            "102",
        ]);
        let seen = expect(
            &mut f,
            &[RouteChange::Add {
                provider: 2,
                net: net("2001:db8:b2::/48"),
            }],
        );
        assert_eq!(seen.len(), 1, "{seen:?}");
        // A second route to the same prefix, then the first one goes: still announced;
        // the last one goes: withdrawn.
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:b1::/64",
            "dev",
            "lo",
            "table",
            "101",
            "metric",
            "500",
        ]);
        ip(&[
            "-6",
            "route",
            "del",
            "2001:db8:b1::/64",
            "dev",
            "lo",
            "table",
            "101",
            "metric",
            "1024",
        ]);
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:b3::/64",
            "dev",
            "lo",
            "table",
            "101",
        ]);
        let seen = expect(
            &mut f,
            &[RouteChange::Add {
                provider: 1,
                net: net("2001:db8:b3::/64"),
            }],
        );
        assert_eq!(
            seen.len(),
            1,
            "the surviving route must not withdraw: {seen:?}"
        );
        ip(&[
            "-6",
            "route",
            "del",
            "2001:db8:b1::/64",
            "table",
            "101",
            "metric",
            "500",
        ]);
        expect(
            &mut f,
            &[RouteChange::Remove {
                provider: 1,
                net: net("2001:db8:b1::/64"),
            }],
        );
    });
}

#[test]
fn describes_batches_in_one_line() {
    assert_eq!(describe(&[RouteChange::Synced { provider: 1 }]), None);
    let gone: Vec<RouteChange> = (0..6)
        .map(|i| RouteChange::Remove {
            provider: 1,
            net: net(&format!("2001:db8:{i}::/48")),
        })
        .collect();
    let line = describe(&gone).unwrap();
    assert!(
        line.starts_with(
            "bgp signal: 0 prefix(es) announced, 6 withdrawn: 2001:db8::/48 (provider 1)"
        ),
        "{line}"
    );
    assert!(line.ends_with("and 2 more"), "{line}");
}
