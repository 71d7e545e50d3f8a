//! The per-packet fast path: classify a frame, look its context up, translate it, and say
//! what to do with it as a [`Verdict`].
//!
//! Per packet there is no allocation, no lock, no syscall and no log: everything the fast path
//! needs is prepared in [`FastPath::new`] (provider state, scratch arrays for a burst), the
//! context table and the neighbour table are read lock-free, and counters are plain integers
//! ([`FastPathCounters`]) that the worker publishes.
//!
//! | from | packet | what happens | file |
//! |---|---|---|---|
//! | inside | (src ULID, dst) has an established context | locators + payload header, to the provider owning the source locator | `egress` |
//! | inside | no context, dst is a ULA | `Punt(NoContext)`: the slow path starts the handshake | `classify` |
//! | inside | no context, dst is global | stateless NATv6 out | `natv6` |
//! | provider | payload header, known tag | ULIDs restored, header stripped, to the host | `ingress` |
//! | provider | payload header, unknown tag | `Punt(UnknownTag)`: R1bis | `classify` |
//! | provider | Shim6 control | `Punt(Control)` | `classify` |
//! | provider | to one of our PA prefixes, no Shim6 | stateless NATv6 in | `natv6` |
//! | any | ND, multicast, link-local, the proxy's own addresses | `Punt(Neighbor / ForUs)` | `classify` |
//! | any | hop limit ≤ 1 on a forwarded packet | `Punt(HopLimit)` | `classify` |
//!
//! A burst is processed in two passes so the table lookups of the whole burst are batched
//! (`by_pair_batch` / `by_tag_raw_batch` prefetch every bucket first, and answer in the
//! packed slot words the rewrites copy from): pass one classifies and
//! collects keys, pass two resolves them and translates.
//!
//! Deliberate departure (architecture.md): the proxy inserts and removes the Shim6 payload
//! header in transit, which [RFC 8200 §4](https://www.rfc-editor.org/rfc/rfc8200#section-4)
//! reserves to the endpoints; it acts as the shim endpoint of its hosts.

mod classify;
mod egress;
mod hostmac;
mod ingress;
mod natv6;
pub mod packet;
mod verdict;

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use table::{PairKey, RawEntry, SlotId, TableError, TableReader, WorkerCounters};
use wire::{ContextTag, PAYLOAD_HEADER_LEN};

pub use natv6::{checksum_delta, checksum_update, flow_hash};
pub use verdict::{DropReason, FastPathCounters, Path, PuntReason, Verdict};

use crate::buf::PacketBuf;

use crate::config::{ConfigError, DataplaneConfig, Exit, MacAddr, MAX_PROVIDERS};
use crate::io::{PortId, BURST};
use crate::neighbor::NeighborReader;

/// Bytes from the frame start that pass one and the rewrites touch: Ethernet, IPv6, payload
/// header, the first 8 bytes of the upper layer (UDP header, TCP ports, ICMPv6 checksum).
const HEADER_SPAN: usize = packet::ETH_LEN + packet::IPV6_LEN + PAYLOAD_HEADER_LEN + 8;
/// Why a fast path (or a worker) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The context table refused (e.g. the worker's counter shard is taken or missing).
    #[error("context table: {0}")]
    Table(#[from] TableError),
    /// A worker thread could not be started.
    #[error("cannot start worker thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// An I/O backend could not be set up.
    #[error("backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
}

/// Which providers are usable, shared by the slow path (which changes it, e.g. on link loss)
/// and every worker (which reads it once per burst). Bit `i` is the `i`-th provider of the
/// configuration. Stateless NATv6 only picks providers that are up; SHIM6 contexts keep their
/// locator pair (REAP moves them).
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    mask: Arc<AtomicU32>,
    ids: Arc<[u16]>,
}

impl ProviderStatus {
    /// The initial state from the configuration's `up` flags.
    pub fn new(config: &DataplaneConfig) -> Self {
        let mask = config
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.up)
            .fold(0u32, |m, (i, _)| m | (1 << i));
        Self {
            mask: Arc::new(AtomicU32::new(mask)),
            ids: config.providers.iter().map(|p| p.id).collect(),
        }
    }

    /// Marks provider `id` up or down; `false` if no such provider.
    pub fn set_up(&self, id: u16, up: bool) -> bool {
        let Some(i) = self.ids.iter().position(|&x| x == id) else {
            return false;
        };
        if up {
            self.mask.fetch_or(1 << i, Ordering::Relaxed);
        } else {
            self.mask.fetch_and(!(1 << i), Ordering::Relaxed);
        }
        true
    }

    /// Whether provider `id` is up.
    pub fn is_up(&self, id: u16) -> bool {
        self.ids
            .iter()
            .position(|&x| x == id)
            .is_some_and(|i| self.mask.load(Ordering::Relaxed) & (1 << i) != 0)
    }

    fn mask(&self) -> u32 {
        self.mask.load(Ordering::Relaxed)
    }
}

/// Per-provider state derived from the configuration once.
#[derive(Debug, Clone)]
struct Provider {
    id: u16,
    port: PortId,
    mac: MacAddr,
    mtu: u16,
    prefix: u64,
    /// Outer header bytes of the exit (0 or 40).
    overhead: u16,
    tunnel: Option<(Ipv6Addr, Ipv6Addr)>,
    next_hop: Ipv6Addr,
    /// Cached MAC of `next_hop`, refreshed when the neighbour table's version changes.
    nh_mac: Option<MacAddr>,
    address: Option<[u8; 16]>,
    /// One's-complement checksum delta for ULID prefix → this PA prefix (and back).
    to_pa: u16,
    to_ulid: u16,
}

/// The inside port.
#[derive(Debug, Clone)]
struct Inside {
    port: PortId,
    mac: MacAddr,
    mtu: u16,
    global: [u8; 16],
    /// The link-local and global addresses as big-endian halves (what classification
    /// compares).
    link_local_w: [u64; 2],
    global_w: [u64; 2],
}

/// What a port is to the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Inside,
    Outside,
    Unknown,
}

/// Where the IPv6 packet of a frame is: `f[l3..end]` (l3 is 14, or 54 after a tunnel header
/// we terminate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    l3: usize,
    end: usize,
}

/// Pass-one result for one packet.
#[derive(Debug, Clone, Copy)]
enum Step {
    Done(Verdict),
    /// Needs the egress lookup; `key` indexes the burst's key array.
    Outbound {
        p: Parsed,
        key: usize,
    },
    /// Needs the ingress lookup; the payload header is at `p.l3 + shim`.
    Inbound {
        p: Parsed,
        shim: usize,
        key: usize,
    },
    /// NATv6 towards the inside through provider `provider`'s prefix.
    NatIn {
        p: Parsed,
        provider: usize,
    },
}

/// Everything but the burst scratch arrays (so both can be borrowed at once).
struct State {
    ulid_prefix: u64,
    inside: Inside,
    providers: Vec<Provider>,
    /// Whether any provider exits through a tunnel (else no packet can be a tunnel's).
    tunnels: bool,
    roles: Vec<Role>,
    status: ProviderStatus,
    status_mask: u32,
    nat_up: [u8; MAX_PROVIDERS],
    nat_up_len: usize,
    neighbors: NeighborReader,
    nh_version: u64,
    /// Inside hosts' MACs, cleared whenever `nh_version` moves.
    host_macs: hostmac::HostMacCache,
    table: TableReader,
    counters: WorkerCounters,
    /// Context counter updates of the current burst, applied together at its end: their
    /// cache misses (one counter cell per context, megabytes at a million contexts) then
    /// overlap instead of stalling each packet.
    ctx_updates: [(SlotId, u32, bool); BURST],
    n_ctx_updates: usize,
    now: u32,
    stats: FastPathCounters,
}

struct Scratch {
    steps: [Step; BURST],
    keys: [PairKey; BURST],
    tags: [ContextTag; BURST],
    out_hits: [RawEntry; BURST],
    in_hits: [RawEntry; BURST],
}

/// One worker's fast path: configuration-derived state, its table and neighbour readers, its
/// counters and burst scratch space.
pub struct FastPath {
    st: State,
    scratch: Box<Scratch>,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("stats", &self.st.stats)
            .finish_non_exhaustive()
    }
}

impl FastPath {
    /// A fast path for worker number `worker` (its table counter shard).
    pub fn new(
        config: &DataplaneConfig,
        table: TableReader,
        worker: usize,
        neighbors: NeighborReader,
        status: ProviderStatus,
    ) -> Result<Self, SetupError> {
        config.validate()?;
        let counters = table.counters(worker)?;
        let ulid_prefix = config.ulid_prefix.0;
        let providers: Vec<Provider> = config
            .providers
            .iter()
            .map(|p| Provider {
                id: p.id,
                port: p.port,
                mac: p.mac,
                mtu: p.mtu,
                prefix: p.prefix.0,
                overhead: p.exit.overhead(),
                tunnel: match p.exit {
                    Exit::Direct { .. } => None,
                    Exit::Tunnel { local, remote, .. } => Some((local, remote)),
                },
                next_hop: p.exit.next_hop(),
                nh_mac: None,
                address: p.address.map(|a| a.octets()),
                to_pa: checksum_delta(ulid_prefix, p.prefix.0),
                to_ulid: checksum_delta(p.prefix.0, ulid_prefix),
            })
            .collect();
        let max_port = providers
            .iter()
            .map(|p| p.port.0)
            .chain([config.inside.port.0])
            .max();
        let mut roles = vec![Role::Unknown; usize::from(max_port.unwrap_or(0)) + 1];
        for p in &providers {
            roles[usize::from(p.port.0)] = Role::Outside;
        }
        roles[usize::from(config.inside.port.0)] = Role::Inside;
        let mut st = State {
            ulid_prefix,
            inside: Inside {
                port: config.inside.port,
                mac: config.inside.mac,
                mtu: config.inside.mtu,
                global: config.inside.global.octets(),
                link_local_w: packet::halves(config.inside.link_local),
                global_w: packet::halves(config.inside.global),
            },
            tunnels: providers.iter().any(|p| p.tunnel.is_some()),
            providers,
            roles,
            status_mask: !status.mask(),
            status,
            nat_up: [0; MAX_PROVIDERS],
            nat_up_len: 0,
            nh_version: neighbors.version().wrapping_sub(1),
            host_macs: hostmac::HostMacCache::new(),
            neighbors,
            table,
            counters,
            ctx_updates: [(SlotId(0), 0, false); BURST],
            n_ctx_updates: 0,
            now: 0,
            stats: FastPathCounters::default(),
        };
        st.refresh();
        let scratch = Box::new(Scratch {
            steps: [Step::Done(Verdict::Drop(DropReason::Malformed)); BURST],
            keys: [[0; 4]; BURST],
            tags: [ContextTag::default(); BURST],
            out_hits: [RawEntry::MISS; BURST],
            in_hits: [RawEntry::MISS; BURST],
        });
        Ok(Self { st, scratch })
    }

    /// Sets the coarse clock stamped on context activity (table ticks, e.g. 1/16 s).
    pub fn set_now(&mut self, tick: u32) {
        self.st.now = tick;
    }

    /// The counters so far.
    pub fn counters(&self) -> &FastPathCounters {
        &self.st.stats
    }

    /// Decides (and, for forwards, translates in place) every packet of `pkts`, received on
    /// `rx_port`; `verdicts[i]` gets packet `i`'s verdict. `verdicts` must be at least as long
    /// as `pkts` (extra packets get no verdict and are left untouched).
    pub fn process_burst<B: PacketBuf>(
        &mut self,
        rx_port: PortId,
        pkts: &mut [B],
        verdicts: &mut [Verdict],
    ) {
        self.st.refresh();
        let role = self
            .st
            .roles
            .get(usize::from(rx_port.0))
            .copied()
            .unwrap_or(Role::Unknown);
        for (pkts, verdicts) in pkts.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
            self.chunk(role, rx_port, pkts, verdicts);
        }
    }

    fn chunk<B: PacketBuf>(
        &mut self,
        role: Role,
        rx_port: PortId,
        pkts: &mut [B],
        verdicts: &mut [Verdict],
    ) {
        let st = &mut self.st;
        let sc = &mut *self.scratch;
        let (mut nkeys, mut ntags) = (0, 0);
        // Prefetch, for writing, the header lines of every frame before looking at any: the
        // misses of the burst overlap instead of stalling packet by packet, and the lines
        // arrive exclusive, ready for the rewrite (a frame written last by another core, the
        // NIC's DMA or a generator, would otherwise cost a read miss and then an upgrade).
        // The span covers what any path reads or writes: 8 bytes of headroom (egress grows
        // the frame there) to the end of Ethernet + IPv6 + payload header + UDP (70 bytes),
        // at most three lines.
        for pkt in pkts.iter() {
            let start = pkt.as_ref().as_ptr();
            table::prefetch_write(start.wrapping_sub(PAYLOAD_HEADER_LEN));
            table::prefetch_write(start.wrapping_add(56));
            table::prefetch_write(start.wrapping_add(HEADER_SPAN - 1));
        }
        for (step, pkt) in sc.steps.iter_mut().zip(pkts.iter()) {
            *step = match role {
                Role::Inside => st.classify_inside(pkt.as_ref(), &mut sc.keys, &mut nkeys),
                Role::Outside => {
                    st.classify_outside(rx_port, pkt.as_ref(), &mut sc.tags, &mut ntags)
                }
                Role::Unknown => Step::Done(Verdict::Drop(DropReason::UnknownPort)),
            };
        }
        if nkeys > 0 {
            st.table
                .by_pair_batch(&sc.keys[..nkeys], &mut sc.out_hits[..nkeys]);
        }
        if ntags > 0 {
            st.table
                .by_tag_raw_batch(&sc.tags[..ntags], &mut sc.in_hits[..ntags]);
        }
        // Start every hit's counter cell on its way before any rewrite: the burst's rewrites
        // hide the misses (at a million contexts a worker's cells are 40 MB, one or two
        // uncached lines per packet), and the flush at the end finds them cached.
        st.counters
            .prefetch_hits(sc.out_hits.get(..nkeys).unwrap_or_default());
        st.counters
            .prefetch_hits(sc.in_hits.get(..ntags).unwrap_or_default());
        for ((step, pkt), v) in sc
            .steps
            .iter()
            .zip(pkts.iter_mut())
            .zip(verdicts.iter_mut())
        {
            let verdict = match *step {
                Step::Done(v) => v,
                Step::Outbound { p, key } => match sc.out_hits.get(key) {
                    Some(e) if e.is_hit() => st.egress(pkt, p, e),
                    _ => st.no_context(pkt, p),
                },
                Step::Inbound { p, shim, key } => match sc.in_hits.get(key) {
                    Some(e) if e.is_hit() => st.ingress(pkt, p, shim, e),
                    _ => Verdict::Punt(PuntReason::UnknownTag(
                        sc.tags.get(key).copied().unwrap_or_default(),
                    )),
                },
                Step::NatIn { p, provider } => st.nat_in(pkt, p, provider),
            };
            st.stats.count(&verdict);
            *v = verdict;
        }
        // One update per burst rather than per packet (pkts.len() <= BURST).
        st.stats.packets += pkts.len().min(verdicts.len()) as u64;
        st.flush_context_counters();
    }
}

impl State {
    /// Once per burst: pick up provider up/down changes and next-hop MAC changes.
    fn refresh(&mut self) {
        let mask = self.status.mask();
        if mask != self.status_mask {
            self.status_mask = mask;
            self.nat_up_len = 0;
            for i in 0..self.providers.len() {
                if mask & (1 << i) != 0 {
                    // i < MAX_PROVIDERS (validated), so it fits a u8 and the array.
                    self.nat_up[self.nat_up_len] = i as u8;
                    self.nat_up_len += 1;
                }
            }
        }
        // Read the version first: a write racing the lookups below bumps it again after it
        // finishes, so the next burst refreshes once more.
        let v = self.neighbors.version();
        if v != self.nh_version {
            self.nh_version = v;
            self.host_macs.clear();
            for p in &mut self.providers {
                p.nh_mac = self.neighbors.lookup(p.port, p.next_hop);
            }
        }
    }

    /// Records traffic on a context (received or sent), applied at the end of the burst.
    #[inline]
    fn count_context(&mut self, slot: SlotId, bytes: u32, rx: bool) {
        if let Some(u) = self.ctx_updates.get_mut(self.n_ctx_updates) {
            *u = (slot, bytes, rx);
            self.n_ctx_updates += 1;
        }
    }

    fn flush_context_counters(&mut self) {
        let n = self.n_ctx_updates.min(BURST);
        self.counters.apply(&self.ctx_updates[..n], self.now);
        self.n_ctx_updates = 0;
    }

    /// The MAC of inside host `ulid`: the worker's cache, else the neighbour table.
    #[inline]
    fn host_mac(&mut self, ulid: Ipv6Addr) -> Option<MacAddr> {
        if let Some(m) = self.host_macs.get(ulid) {
            return Some(m);
        }
        let m = self.neighbors.lookup(self.inside.port, ulid)?;
        self.host_macs.put(ulid, m);
        Some(m)
    }

    /// The provider whose PA /64 is `prefix`.
    #[inline]
    fn provider_of_prefix(&self, prefix: u64) -> Option<usize> {
        self.providers.iter().position(|p| p.prefix == prefix)
    }
}
