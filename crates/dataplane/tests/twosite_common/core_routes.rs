//! The routing decision of the two-site tests' "core" router (the providers between the
//! sites), written independently of the code under test: answer Neighbor Solicitations for
//! the routers' link-local address, forward by destination /64, decrement the hop limit,
//! rewrite the MACs. The threaded in-memory core (`mem_lab::core_router`) and the simulated
//! time run of `te_sim_replay` both route through it.

use std::net::Ipv6Addr;

use dataplane::config::{MacAddr, Prefix64};

use super::{as_ns, core_mac, na_frame, Site, ROUTER_LL};

/// What the core does with one frame received on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Send this frame back on the link it came from (a Neighbor Advertisement).
    Reply(Vec<u8>),
    /// Forward the frame to this link, after [`CoreRoutes::rewrite`].
    Forward(usize),
    /// Drop it.
    Drop,
}

/// The core's view of its links: link `i` leads to the proxy MAC `proxy_macs[i]` and holds the
/// PA prefix `prefixes[i]`.
#[derive(Debug, Clone)]
pub(crate) struct CoreRoutes {
    pub(crate) prefixes: Vec<Prefix64>,
    pub(crate) proxy_macs: Vec<MacAddr>,
}

impl CoreRoutes {
    /// The provider links of `sites` in order: each site's provider A then provider B (so
    /// 0 = site 1 A, 1 = site 1 B, 2 = site 2 A, 3 = site 2 B for the two sites).
    pub(crate) fn of_sites(sites: &[&Site]) -> Self {
        let links = || {
            sites
                .iter()
                .flat_map(|s| [0, 1].map(|i| (s.pa[i], s.prov_mac[i])))
        };
        Self {
            prefixes: links().map(|l| l.0).collect(),
            proxy_macs: links().map(|l| l.1).collect(),
        }
    }

    /// Where `frame`, received on `link`, goes. Links in the `dead` bit mask neither send
    /// nor receive anything; frames other than Neighbor Solicitations from links in the
    /// `cut_in` mask are dropped (the provider stops forwarding one way). A destination goes
    /// to the first live link holding its /64; frames whose hop limit would reach 0 are
    /// dropped.
    pub(crate) fn route(&self, link: usize, frame: &[u8], dead: u64, cut_in: u64) -> Route {
        if dead & (1 << link) != 0 {
            return Route::Drop;
        }
        if let Some((src, target, mac)) = as_ns(frame) {
            if target != ROUTER_LL {
                return Route::Drop;
            }
            return Route::Reply(na_frame(
                mac,
                core_mac(link),
                ROUTER_LL,
                src,
                ROUTER_LL,
                true,
            ));
        }
        if cut_in & (1 << link) != 0 {
            return Route::Drop;
        }
        let Some(dst) = frame.get(38..54).and_then(|d| <[u8; 16]>::try_from(d).ok()) else {
            return Route::Drop;
        };
        let dst = Prefix64::of(Ipv6Addr::from(dst));
        let to =
            (0..self.prefixes.len()).find(|&j| self.prefixes[j] == dst && dead & (1 << j) == 0);
        match (to, frame.get(21)) {
            (Some(j), Some(&hl)) if hl > 1 => Route::Forward(j),
            _ => Route::Drop,
        }
    }

    /// Rewrites a frame [`Route::Forward`]ed to link `to`: the proxy's MAC as destination,
    /// the core's MAC on that link as source, one hop less.
    pub(crate) fn rewrite(&self, frame: &mut [u8], to: usize) {
        frame[0..6].copy_from_slice(&self.proxy_macs[to].0);
        frame[6..12].copy_from_slice(&core_mac(to).0);
        frame[21] -= 1;
    }
}
