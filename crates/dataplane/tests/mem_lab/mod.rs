//! The in-memory two-site lab of the data plane's integration tests: complete pipelines
//! (worker, slow path, two providers each) on in-memory links, their provider links wired
//! to a core router thread, their inside links to legacy hosts. The sites themselves (keys,
//! prefixes, MACs, configurations) and the frame builders are in `twosite_common`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod core_router;
pub(crate) mod legacy_host;

use std::sync::Arc;

use dataplane::backend::mem::{pair, MemConfig, MemLink, MemQueue};
use dataplane::backend::BufPool;
use dataplane::slowpath::{Pipeline, PipelineConfig, SiteSetup};

use crate::twosite_common::{INSIDE, PROV_A, PROV_B};

/// The buffer pool and link settings every site of one lab shares.
pub(crate) struct MemWires {
    pub(crate) pool: Arc<BufPool>,
    pub(crate) cfg: MemConfig,
}

impl MemWires {
    /// A pool of `buffers` 2 KiB buffers; single-queue links of `ring_size` slots.
    pub(crate) fn new(buffers: usize, ring_size: usize) -> Self {
        Self {
            pool: Arc::new(BufPool::new(buffers, 2048)),
            cfg: MemConfig {
                ring_size,
                ..MemConfig::new(1)
            },
        }
    }

    /// Starts a site's pipeline (one worker) on fresh links: inside, provider A, provider B.
    pub(crate) fn start_site(&self, cfg: PipelineConfig, setup: SiteSetup) -> WiredSite {
        let (host_end, inside) = pair(&self.pool, &self.cfg).unwrap();
        let mut queues = vec![(INSIDE, one_queue(inside))];
        let mut core_ends = Vec::new();
        let mut cables = Vec::new();
        for port in [PROV_A, PROV_B] {
            let (core_end, proxy_end) = pair(&self.pool, &self.cfg).unwrap();
            cables.push(proxy_end.link().clone());
            core_ends.push(one_queue(core_end));
            queues.push((port, one_queue(proxy_end)));
        }
        WiredSite {
            pipeline: Pipeline::start(cfg, setup, vec![queues]).unwrap(),
            host_end: one_queue(host_end),
            core_ends,
            cables,
        }
    }
}

fn one_queue(port: dataplane::backend::mem::MemPort) -> MemQueue {
    port.into_queues().pop().unwrap()
}

/// One running site of the lab and the far ends of its links.
pub(crate) struct WiredSite {
    pub(crate) pipeline: Pipeline<MemQueue>,
    /// The hosts' end of the inside link.
    pub(crate) host_end: MemQueue,
    /// The core's ends of the provider A and B links.
    pub(crate) core_ends: Vec<MemQueue>,
    /// The proxy's side of the provider A and B links (to unplug them).
    pub(crate) cables: Vec<MemLink>,
}
