//! Against the real kernel, in a private network namespace of the test's own thread (root
//! needed; fails loudly without it): routes on a TAP device are added, dumped, monitored,
//! deleted, and vanish with the device.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use rtnl::{Route, RouteEvent, RouteMonitor, Rtnl, Tap};

/// Runs `f` on a thread in a fresh network namespace (nothing shared with the machine).
fn in_private_netns(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) affects only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed (run as root): {}",
            std::io::Error::last_os_error()
        );
        f();
    })
    .join()
    .unwrap();
}

fn ours(rtnl: &mut Rtnl, proto: u8) -> Vec<Route> {
    rtnl.dump_routes()
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol == proto)
        .collect()
}

fn wait_event(mon: &mut RouteMonitor, want: impl Fn(&RouteEvent) -> bool) -> RouteEvent {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Some(e) = mon.recv().unwrap().into_iter().find(|e| want(e)) {
            return e;
        }
    }
    panic!("no matching route event within 5 s");
}

#[test]
fn routes_on_a_tap_are_added_dumped_monitored_and_die_with_the_device() {
    in_private_netns(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let mut mon = RouteMonitor::open(Duration::from_millis(200)).unwrap();
        let tap = Tap::create("p6t-ann0").unwrap();
        assert_eq!(tap.name(), "p6t-ann0");
        rtnl.set_link_up(tap.index()).unwrap();
        let cmula = Route::device("fc00::".parse().unwrap(), 7, tap.index(), 250, 100);
        let pa = Route::device("2001:db8:a:1::".parse().unwrap(), 64, tap.index(), 250, 100);
        rtnl.add_route(&cmula).unwrap();
        rtnl.add_route(&pa).unwrap();
        // Adding again replaces: still one route each.
        rtnl.add_route(&cmula).unwrap();
        let mut got = ours(&mut rtnl, 250);
        got.sort_by_key(|r| r.prefix_len);
        assert_eq!(got, vec![cmula, pa]);
        let e = wait_event(
            &mut mon,
            |e| matches!(e, RouteEvent::Added(r) if r.prefix_len == 7),
        );
        assert_eq!(e, RouteEvent::Added(cmula));

        rtnl.delete_route(&pa).unwrap();
        assert_eq!(ours(&mut rtnl, 250), vec![cmula]);
        let e = wait_event(&mut mon, |e| matches!(e, RouteEvent::Removed(_)));
        assert_eq!(e, RouteEvent::Removed(pa));
        let again = rtnl.delete_route(&pa).unwrap_err();
        assert_eq!(again.errno(), Some(libc::ESRCH), "{again}");

        // The same name cannot be taken while we hold it.
        let busy = Tap::create("p6t-ann0").unwrap_err();
        assert_eq!(busy.errno(), Some(libc::EBUSY), "{busy}");

        // Closing the device withdraws its routes: the kernel notifies the removal.
        drop(tap);
        let e = wait_event(&mut mon, |e| matches!(e, RouteEvent::Removed(_)));
        assert_eq!(e, RouteEvent::Removed(cmula));
        assert_eq!(ours(&mut rtnl, 250), vec![]);
        assert!(matches!(
            Tap::create("this-name-is-too-long"),
            Err(rtnl::RtnlError::Invalid(_))
        ));
        let off = Route::device(Ipv6Addr::LOCALHOST, 128, 999_999, 250, 1);
        assert!(rtnl.add_route(&off).is_err(), "no such interface");
    });
}
