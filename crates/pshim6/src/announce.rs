//! Route announcement through the local routing daemon (issue #9; `docs/routing.md`).
//!
//! pshim6 speaks no BGP or OSPF: it installs kernel routes with its own rtnetlink protocol
//! number on a non-persistent TAP device it creates at start, and the local BIRD learns them
//! (`kernel` protocol, `learn`, filter on `krt_source`) and announces them: the CMULA space
//! towards the site router, each provider's PA prefix towards the exit routers, with the
//! metric of the proxy's role (BIRD maps `krt_metric` to BGP local preference / MED or an
//! OSPF metric). The kernel deletes the device, and every route on it, when the process
//! exits, even by SIGKILL: the announcement cannot outlive the proxy.
//!
//! What is withdrawn, and when: everything on clean stop (deleted before the device goes),
//! everything while the operator has withdrawn it (`POST /v1/routing/withdraw`), everything
//! while a worker has not heartbeaten for `heartbeat_timeout_ms` (the data plane is lost; the
//! same heartbeats `/readyz` watches), and a drained provider's PA prefix. It comes back when
//! the cause goes. All of it runs on the operator (housekeeping) thread or the API's blocking
//! pool, never on a worker.

use std::net::Ipv6Addr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use api::routing::{AnnouncedRoute, RoutingView};
use rtnl::{Route, Rtnl, Tap};

use run_config::AnnounceSettings;

/// How often the kernel's table is read back (a route deleted behind our back is re-added).
const RESYNC: Duration = Duration::from_secs(5);

/// Where a route points the routing daemon's peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Towards {
    /// The site router: traffic from the hosts.
    Inside,
    /// The exit routers: traffic to provider `id`'s PA prefix.
    Exit(u16),
}

#[derive(Debug)]
struct Candidate {
    route: Route,
    towards: Towards,
    installed: bool,
    /// The last error installing or removing it.
    error: Option<String>,
}

/// Worker heartbeats as last seen.
#[derive(Debug)]
struct Heartbeats {
    last: Vec<u64>,
    moved: Vec<Option<Instant>>,
}

#[derive(Debug)]
struct Inner {
    settings: AnnounceSettings,
    rtnl: Rtnl,
    tap: Option<Tap>,
    routes: Vec<Candidate>,
    operator_withdrawn: bool,
    dataplane_ok: bool,
    drained: Vec<u16>,
    beats: Heartbeats,
    last_change: String,
    last_change_at: SystemTime,
    last_resync: Instant,
}

/// The announcer: owns the TAP device and the routes on it.
#[derive(Debug)]
pub(crate) struct Announcer {
    inner: Mutex<Inner>,
}

/// What the announcer is told at each tick.
pub(crate) struct Health<'a> {
    /// Each worker's heartbeat counter.
    pub(crate) heartbeats: &'a [u64],
    /// Drained provider ids.
    pub(crate) drained: &'a [u16],
}

impl Announcer {
    /// Creates the TAP device and brings it up; announces nothing until the first
    /// [`Announcer::tick`] sees every worker heartbeat. `providers`: id and PA prefix.
    pub(crate) fn start(settings: AnnounceSettings, providers: &[(u16, Ipv6Addr)]) -> Result<Self> {
        let mut rtnl = Rtnl::open().context("announce: opening rtnetlink")?;
        let tap = Tap::create(&settings.device).with_context(|| {
            format!(
                "announce: creating TAP device {} (another pshim6 running?)",
                settings.device
            )
        })?;
        rtnl.set_link_up(tap.index())
            .with_context(|| format!("announce: bringing {} up", settings.device))?;
        let (proto, metric, oif) = (settings.protocol, settings.metric, tap.index());
        let mut routes: Vec<Candidate> = settings
            .inside
            .iter()
            .map(|(a, l)| (Route::device(*a, *l, oif, proto, metric), Towards::Inside))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(route, towards)| Candidate {
                route,
                towards,
                installed: false,
                error: None,
            })
            .collect();
        if settings.pa_prefixes {
            routes.extend(providers.iter().map(|(id, prefix)| Candidate {
                route: Route::device(*prefix, 64, oif, proto, metric),
                towards: Towards::Exit(*id),
                installed: false,
                error: None,
            }));
        }
        eprintln!(
            "pshim6: announce: {} on {} (protocol {proto}, metric {metric}); waiting for the workers",
            settings.role.name(),
            settings.device
        );
        Ok(Self {
            inner: Mutex::new(Inner {
                settings,
                rtnl,
                tap: Some(tap),
                routes,
                operator_withdrawn: false,
                dataplane_ok: false,
                drained: Vec::new(),
                beats: Heartbeats {
                    last: Vec::new(),
                    moved: Vec::new(),
                },
                last_change: "starting: waiting for the data plane".into(),
                last_change_at: SystemTime::now(),
                last_resync: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One housekeeping step: data-plane health and drains, then the kernel brought in line.
    pub(crate) fn tick(&self, h: &Health<'_>) {
        let mut i = self.lock();
        let now = Instant::now();
        let timeout = i.settings.heartbeat_timeout_ms;
        let ok = i.beats.observe(h.heartbeats, now, timeout);
        let mut why = None;
        if ok != i.dataplane_ok {
            i.dataplane_ok = ok;
            why = Some(if ok {
                "data plane up: every worker heartbeating".to_string()
            } else {
                format!(
                    "data plane lost: a worker silent for {} ms",
                    i.settings.heartbeat_timeout_ms
                )
            });
        }
        if h.drained != i.drained.as_slice() {
            i.drained = h.drained.to_vec();
            why = Some(format!("drained providers now {:?}", i.drained));
        }
        if now.duration_since(i.last_resync) >= RESYNC {
            i.last_resync = now;
            i.resync();
        }
        i.apply(why);
    }

    /// The operator's withdraw (`true`) or announce (`false`); the routes as they now are.
    pub(crate) fn set_withdrawn(&self, withdrawn: bool) -> Result<RoutingView, String> {
        let mut i = self.lock();
        if i.operator_withdrawn != withdrawn {
            i.operator_withdrawn = withdrawn;
            let why = if withdrawn {
                "withdrawn by the operator"
            } else {
                "announced by the operator"
            };
            i.apply(Some(why.into()));
        }
        match i.routes.iter().find_map(|c| c.error.clone()) {
            Some(e) => Err(e),
            None => Ok(i.view()),
        }
    }

    /// The API's view.
    pub(crate) fn view(&self) -> RoutingView {
        self.lock().view()
    }

    /// Clean stop: every route deleted, then the device.
    pub(crate) fn stop(&self) {
        let mut i = self.lock();
        i.operator_withdrawn = true;
        i.apply(Some("stopping".into()));
        i.tap = None;
    }
}

impl Heartbeats {
    /// Whether every worker moved within `timeout_ms` (and at least once since start).
    fn observe(&mut self, now_beats: &[u64], now: Instant, timeout_ms: u64) -> bool {
        if self.last.len() != now_beats.len() {
            self.last = now_beats.to_vec();
            self.moved = vec![None; now_beats.len()];
            return false;
        }
        for ((last, moved), b) in self.last.iter_mut().zip(&mut self.moved).zip(now_beats) {
            if *b != *last {
                *last = *b;
                *moved = Some(now);
            }
        }
        let limit = Duration::from_millis(timeout_ms);
        !self.moved.is_empty()
            && self
                .moved
                .iter()
                .all(|m| m.is_some_and(|t| now.duration_since(t) <= limit))
    }
}

impl Inner {
    /// Why `c` must not be announced now, if it must not.
    fn withheld(&self, c: &Candidate) -> Option<String> {
        if self.tap.is_none() {
            Some("stopped".into())
        } else if self.operator_withdrawn {
            Some("withdrawn by the operator".into())
        } else if !self.dataplane_ok {
            Some("data plane lost".into())
        } else {
            match c.towards {
                Towards::Exit(id) if self.drained.contains(&id) => {
                    Some(format!("provider {id} drained"))
                }
                _ => None,
            }
        }
    }

    /// Installs what should be, deletes what should not; logs a change with `why`.
    fn apply(&mut self, why: Option<String>) {
        let mut changed = Vec::new();
        for k in 0..self.routes.len() {
            let want = self.withheld(&self.routes[k]).is_none();
            let c = &self.routes[k];
            if want == c.installed {
                continue;
            }
            let route = c.route;
            let r = if want {
                self.rtnl.add_route(&route)
            } else {
                match self.rtnl.delete_route(&route) {
                    // Already gone (e.g. the device was deleted): that is what we wanted.
                    Err(e) if e.errno() == Some(libc::ESRCH) => Ok(()),
                    other => other,
                }
            };
            let c = &mut self.routes[k];
            match r {
                Ok(()) => {
                    c.installed = want;
                    c.error = None;
                    changed.push(format!(
                        "{} {}/{}",
                        if want { "+" } else { "-" },
                        route.dst,
                        route.prefix_len
                    ));
                }
                Err(e) => {
                    let msg = format!("announce: {e}");
                    if c.error.as_ref() != Some(&msg) {
                        eprintln!("pshim6: {msg}");
                    }
                    c.error = Some(msg);
                }
            }
        }
        if let Some(why) = why
            .filter(|_| !changed.is_empty())
            .or_else(|| (!changed.is_empty()).then(|| "kernel table resynchronised".to_string()))
        {
            eprintln!("pshim6: announce: {why}: {}", changed.join(", "));
            self.last_change = why;
            self.last_change_at = SystemTime::now();
        }
    }

    /// Reads the kernel's table back: a route of ours that vanished is marked missing (and
    /// re-added by [`Inner::apply`]).
    fn resync(&mut self) {
        let Some(oif) = self.tap.as_ref().map(Tap::index) else {
            return;
        };
        let Ok(present) = self.rtnl.dump_routes() else {
            return;
        };
        for c in &mut self.routes {
            c.installed = present.iter().any(|r| {
                r.oif == oif
                    && r.protocol == c.route.protocol
                    && r.dst == c.route.dst
                    && r.prefix_len == c.route.prefix_len
            });
        }
    }

    fn view(&self) -> RoutingView {
        let routes: Vec<AnnouncedRoute> = self
            .routes
            .iter()
            .map(|c| AnnouncedRoute {
                prefix: format!("{}/{}", c.route.dst, c.route.prefix_len),
                towards: match c.towards {
                    Towards::Inside => "inside".into(),
                    Towards::Exit(_) => "exit".into(),
                },
                provider: match c.towards {
                    Towards::Inside => None,
                    Towards::Exit(id) => Some(id),
                },
                installed: c.installed,
                reason: if c.installed {
                    None
                } else {
                    self.withheld(c).or_else(|| c.error.clone())
                },
            })
            .collect();
        let n = routes.iter().filter(|r| r.installed).count();
        RoutingView {
            role: self.settings.role.name().into(),
            state: if n == 0 {
                "withdrawn"
            } else if n == routes.len() {
                "announced"
            } else {
                "partial"
            }
            .into(),
            device: self.settings.device.clone(),
            protocol: self.settings.protocol,
            metric: self.settings.metric,
            operator_withdrawn: self.operator_withdrawn,
            dataplane_ok: self.dataplane_ok,
            routes,
            last_change: self.last_change.clone(),
            last_change_unix: self
                .last_change_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use run_config::AnnounceSettings;

    /// Runs `f` on a thread in a fresh, private network namespace (root needed: fails
    /// loudly without it; no fixed names, so no lab lock).
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

    fn installed(rtnl: &mut Rtnl) -> Vec<String> {
        let mut v: Vec<String> = rtnl
            .dump_routes()
            .unwrap()
            .into_iter()
            .filter(|r| r.protocol == 251)
            .map(|r| format!("{}/{} {}", r.dst, r.prefix_len, r.metric))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn routes_follow_heartbeats_drains_the_operator_and_stop() {
        in_private_netns(|| {
            let settings = AnnounceSettings {
                role: run_config::Role::Backup,
                device: "p6t-annu".into(),
                protocol: 251,
                metric: 200,
                inside: vec![("fc00::".parse().unwrap(), 7)],
                pa_prefixes: true,
                heartbeat_timeout_ms: 1000,
            };
            let pa: Vec<(u16, Ipv6Addr)> = vec![
                (1, "2001:db8:a:1::".parse().unwrap()),
                (2, "2001:db8:b:1::".parse().unwrap()),
            ];
            let a = Announcer::start(settings, &pa).unwrap();
            let mut rtnl = Rtnl::open().unwrap();
            let all = vec![
                "2001:db8:a:1::/64 200".to_string(),
                "2001:db8:b:1::/64 200".into(),
                "fc00::/7 200".into(),
            ];
            let mut beat = 0u64;
            let mut tick = |a: &Announcer, moving: bool, drained: &[u16]| {
                if moving {
                    beat += 1;
                }
                a.tick(&Health {
                    heartbeats: &[beat],
                    drained,
                });
            };
            tick(&a, true, &[]);
            assert_eq!(
                installed(&mut rtnl),
                Vec::<String>::new(),
                "not before a beat"
            );
            assert_eq!(a.view().state, "withdrawn");
            tick(&a, true, &[]);
            assert_eq!(installed(&mut rtnl), all);
            let v = a.view();
            assert_eq!((v.state.as_str(), v.role.as_str()), ("announced", "backup"));

            // A drained provider's PA prefix goes, and comes back.
            tick(&a, true, &[2]);
            assert_eq!(installed(&mut rtnl), vec![all[0].clone(), all[2].clone()]);
            let v = a.view();
            assert_eq!(v.state, "partial");
            assert_eq!(v.routes[2].reason.as_deref(), Some("provider 2 drained"));
            tick(&a, true, &[]);
            assert_eq!(installed(&mut rtnl), all);

            // The worker stops beating: after the timeout everything is withdrawn.
            tick(&a, false, &[]);
            assert_eq!(installed(&mut rtnl), all, "within the timeout");
            std::thread::sleep(Duration::from_millis(1100));
            tick(&a, false, &[]);
            assert_eq!(installed(&mut rtnl), Vec::<String>::new());
            let v = a.view();
            assert!(
                !v.dataplane_ok && v.last_change.starts_with("data plane lost"),
                "{v:?}"
            );
            assert_eq!(v.routes[0].reason.as_deref(), Some("data plane lost"));
            tick(&a, true, &[]);
            assert_eq!(installed(&mut rtnl), all, "back with the heartbeat");

            // The operator: withdraw wins over a healthy data plane until announce.
            let v = a.set_withdrawn(true).unwrap();
            assert_eq!(
                (v.state.as_str(), v.operator_withdrawn),
                ("withdrawn", true)
            );
            tick(&a, true, &[]);
            assert_eq!(installed(&mut rtnl), Vec::<String>::new());
            a.set_withdrawn(false).unwrap();
            assert_eq!(installed(&mut rtnl), all);

            // A route deleted behind our back is re-added at the next resynchronisation.
            rtnl.delete_route(&a.lock().routes[0].route).unwrap();
            a.lock().resync();
            tick(&a, true, &[]);
            assert_eq!(installed(&mut rtnl), all);

            // Clean stop: routes and device gone.
            a.stop();
            assert_eq!(installed(&mut rtnl), Vec::<String>::new());
            assert_eq!(a.view().state, "withdrawn");
            let again = Tap::create("p6t-annu");
            assert!(again.is_ok(), "the device was released: {again:?}");
        });
    }

    #[test]
    fn the_data_plane_is_up_once_every_worker_moved_and_lost_when_one_stalls() {
        let mut h = Heartbeats {
            last: Vec::new(),
            moved: Vec::new(),
        };
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(
            !h.observe(&[1, 1], t0, 1000),
            "first sight: nothing moved yet"
        );
        assert!(!h.observe(&[2, 1], ms(10), 1000), "worker 1 never moved");
        assert!(h.observe(&[3, 2], ms(20), 1000));
        assert!(
            h.observe(&[4, 2], ms(1000), 1000),
            "worker 1 moved 980 ms ago"
        );
        assert!(
            !h.observe(&[5, 2], ms(1100), 1000),
            "worker 1 silent 1080 ms"
        );
        assert!(h.observe(&[6, 3], ms(1200), 1000), "back");
        assert!(!h.observe(&[], ms(1300), 1000), "no workers: no data plane");
    }
}
