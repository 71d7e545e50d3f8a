//! Kernel route events → per-provider prefix changes for the slow path.
//!
//! The kernel reports routes, not prefixes: a table may hold several routes to one prefix
//! (different metrics), so a prefix is announced while at least one of its routes is there.
//! Routes are told apart by their metric, which with the table and prefix is how the kernel
//! identifies an IPv6 route (`ip -6 route replace` swaps the next hop of the route with the
//! same metric and reports it as new, with no deletion).

use std::collections::{HashMap, HashSet};

use dataplane::slowpath::bgp::{Ipv6Net, RouteChange};

/// One kernel route as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelRoute {
    /// Kernel table.
    pub(crate) table: u32,
    /// Destination prefix.
    pub(crate) net: Ipv6Net,
    /// Metric (`RTA_PRIORITY`).
    pub(crate) metric: u32,
}

/// The routes of the followed tables, by provider and prefix.
#[derive(Debug)]
pub(crate) struct RouteTracker {
    /// (provider id, kernel table).
    tables: Vec<(u16, u32)>,
    routes: HashMap<(u16, Ipv6Net), HashSet<u32>>,
}

impl RouteTracker {
    /// Follows `tables` ((provider id, kernel table) pairs).
    pub(crate) fn new(tables: Vec<(u16, u32)>) -> Self {
        Self {
            tables,
            routes: HashMap::new(),
        }
    }

    fn provider(&self, table: u32) -> Option<u16> {
        self.tables
            .iter()
            .find(|(_, t)| *t == table)
            .map(|(id, _)| *id)
    }

    /// A full dump (at start, or after the monitor lost events): every followed provider is
    /// reset, gets its prefixes, and is marked synced. Routes of other tables are ignored.
    pub(crate) fn dump(&mut self, routes: &[KernelRoute]) -> Vec<RouteChange> {
        self.routes.clear();
        let mut out: Vec<RouteChange> = self
            .tables
            .iter()
            .map(|&(provider, _)| RouteChange::Reset { provider })
            .collect();
        for r in routes {
            if let Some(c) = self.added(*r) {
                out.push(c);
            }
        }
        out.extend(
            self.tables
                .iter()
                .map(|&(provider, _)| RouteChange::Synced { provider }),
        );
        out
    }

    /// A route appeared: the prefix change, if it is the prefix's first route.
    pub(crate) fn added(&mut self, r: KernelRoute) -> Option<RouteChange> {
        let provider = self.provider(r.table)?;
        let set = self.routes.entry((provider, r.net)).or_default();
        (set.insert(r.metric) && set.len() == 1).then_some(RouteChange::Add {
            provider,
            net: r.net,
        })
    }

    /// A route went away: the prefix change, if it was the prefix's last route.
    pub(crate) fn removed(&mut self, r: KernelRoute) -> Option<RouteChange> {
        let provider = self.provider(r.table)?;
        let set = self.routes.get_mut(&(provider, r.net))?;
        if !set.remove(&r.metric) || !set.is_empty() {
            return None;
        }
        self.routes.remove(&(provider, r.net));
        Some(RouteChange::Remove {
            provider,
            net: r.net,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(table: u32, net: &str, metric: u32) -> KernelRoute {
        KernelRoute {
            table,
            net: net.parse().unwrap(),
            metric,
        }
    }

    #[test]
    fn dump_then_events() {
        let mut t = RouteTracker::new(vec![(1, 101), (2, 102)]);
        let d = t.dump(&[
            route(101, "2001:db8:b1::/64", 32),
            route(101, "2001:db8:b1::/64", 64),
            route(254, "2001:db8:b1::/64", 32),
            route(102, "2001:db8::/32", 32),
        ]);
        let net = |s: &str| s.parse::<Ipv6Net>().unwrap();
        assert_eq!(
            d,
            [
                RouteChange::Reset { provider: 1 },
                RouteChange::Reset { provider: 2 },
                RouteChange::Add {
                    provider: 1,
                    net: net("2001:db8:b1::/64")
                },
                RouteChange::Add {
                    provider: 2,
                    net: net("2001:db8::/32")
                },
                RouteChange::Synced { provider: 1 },
                RouteChange::Synced { provider: 2 },
            ]
        );
        // One of two routes goes: the prefix stays announced; the second one withdraws it.
        assert_eq!(t.removed(route(101, "2001:db8:b1::/64", 64)), None);
        assert_eq!(
            t.removed(route(101, "2001:db8:b1::/64", 32)),
            Some(RouteChange::Remove {
                provider: 1,
                net: net("2001:db8:b1::/64")
            })
        );
        assert_eq!(t.removed(route(101, "2001:db8:b1::/64", 32)), None);
        // A replace (same metric, reported as new) is no change.
        assert_eq!(t.added(route(102, "2001:db8::/32", 32)), None);
        assert_eq!(
            t.added(route(254, "2001:db8:b2::/64", 32)),
            None,
            "main table"
        );
        assert_eq!(
            t.added(route(101, "2001:db8:b1::/64", 32)),
            Some(RouteChange::Add {
                provider: 1,
                net: net("2001:db8:b1::/64")
            })
        );
        // A re-dump starts over.
        let d = t.dump(&[]);
        assert_eq!(d.len(), 4);
        assert_eq!(t.removed(route(101, "2001:db8:b1::/64", 32)), None);
    }
}
