//! Ethdev ports: set-up (one rx and one tx queue per worker) and the per-worker
//! [`PortQueue`] that moves mbufs in bursts.

use std::ffi::CString;
use std::ptr::{null, null_mut, NonNull};
use std::sync::Arc;

use super::eal::eal_ready;
use super::mbuf::{Mbuf, Mempool};
use super::DpdkError;
use crate::buf::PacketBuf;
use crate::io::{PortQueue, QueueStats, BURST};

/// How to bring up one DPDK port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkPortConfig {
    /// The ethdev name: a PCI address (`0000:01:00.0`) or a vdev (`net_ring0`, `net_pcap0`).
    pub name: String,
    /// Queue pairs, one per worker (RSS spreads received frames over them).
    pub queues: u16,
    /// Receive descriptors per queue.
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    pub tx_desc: u16,
    /// Enable promiscuous mode (the appliance forwards frames not addressed to it).
    pub promiscuous: bool,
}

impl DpdkPortConfig {
    /// One queue pair, 1024 descriptors each way, promiscuous.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
        }
    }
}

/// A started ethdev port; stopped and closed on drop.
#[derive(Debug)]
pub struct DpdkPort {
    id: u16,
    queues: u16,
}

fn check(op: &'static str, rc: i32) -> Result<(), DpdkError> {
    if rc < 0 {
        Err(DpdkError::Call { op, code: rc })
    } else {
        Ok(())
    }
}

impl DpdkPort {
    /// Looks up, configures and starts the port, its rx queues filling from `pool`.
    /// Returns the port and one [`DpdkQueue`] per configured queue pair.
    #[cold]
    pub fn start(
        cfg: &DpdkPortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<(Self, Vec<DpdkQueue>), DpdkError> {
        if !eal_ready() {
            return Err(DpdkError::NoEal);
        }
        if cfg.queues == 0 {
            return Err(DpdkError::Config("a port needs at least one queue"));
        }
        let name =
            CString::new(cfg.name.as_str()).map_err(|_| DpdkError::Config("NUL in port name"))?;
        let mut id = 0u16;
        // SAFETY: `name` is a valid C string and `id` a valid place for the result.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::NoPort(cfg.name.clone()));
        }
        // SAFETY: `id` names an existing, not yet started port.
        check("rte_eth_dev_configure", unsafe {
            dpdk_sys::pshim6_port_configure(id, cfg.queues)
        })?;
        // SAFETY: `id` is a valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = u32::try_from(socket).unwrap_or(0);
        for q in 0..cfg.queues {
            // SAFETY: the port is configured with `cfg.queues` rx queues; NULL conf means the
            // driver's defaults; the pool outlives the port (its `Arc` lives in each queue).
            check("rte_eth_rx_queue_setup", unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id, q, cfg.rx_desc, socket, null(), pool.as_ptr())
            })?;
            // SAFETY: as above for the tx queues.
            check("rte_eth_tx_queue_setup", unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, cfg.tx_desc, socket, null())
            })?;
        }
        if cfg.promiscuous {
            // Not every vdev supports it (net_ring does, net_pcap ignores it): not fatal.
            // SAFETY: `id` is a valid port.
            let _ = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        }
        // SAFETY: `id` is configured with all its queues set up.
        check("rte_eth_dev_start", unsafe {
            dpdk_sys::rte_eth_dev_start(id)
        })?;
        let queues = (0..cfg.queues)
            .map(|q| DpdkQueue {
                port: id,
                queue: q,
                pool: Arc::clone(pool),
                stats: QueueStats::default(),
                registered: false,
            })
            .collect();
        Ok((
            Self {
                id,
                queues: cfg.queues,
            },
            queues,
        ))
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Queue pairs configured.
    pub fn queues(&self) -> u16 {
        self.queues
    }

    /// The device's own counters (`rte_eth_stats_get`), all queues together, for the
    /// operator view.
    #[cold]
    pub fn device_stats(&self) -> Result<QueueStats, DpdkError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: `self.id` is a started port; `s` is a valid place for the result.
        check("rte_eth_stats_get", unsafe {
            dpdk_sys::rte_eth_stats_get(self.id, &mut s)
        })?;
        Ok(QueueStats {
            rx_packets: s.ipackets,
            rx_bytes: s.ibytes,
            tx_packets: s.opackets,
            tx_bytes: s.obytes,
            rx_dropped: s
                .imissed
                .saturating_add(s.ierrors)
                .saturating_add(s.rx_nombuf),
            tx_dropped: s.oerrors,
        })
    }

    /// Extended statistics (`rte_eth_xstats_get`) as (name, value) pairs.
    #[cold]
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        // SAFETY: NULL with size 0 asks for the count only.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, null_mut(), 0) };
        check("rte_eth_xstats_get_names", n)?;
        let cap = u32::try_from(n).unwrap_or(0);
        let len = usize::try_from(cap).unwrap_or(0);
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); len];
        let mut vals = vec![dpdk_sys::rte_eth_xstat::default(); len];
        // SAFETY: `names` holds `cap` entries.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), cap) };
        check("rte_eth_xstats_get_names", got)?;
        // SAFETY: `vals` holds `cap` entries.
        let got2 = unsafe { dpdk_sys::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), cap) };
        check("rte_eth_xstats_get", got2)?;
        let used = usize::try_from(got.min(got2)).unwrap_or(0).min(len);
        let mut out = Vec::with_capacity(used);
        for v in vals.iter().take(used) {
            let Some(nm) = usize::try_from(v.id).ok().and_then(|i| names.get(i)) else {
                continue;
            };
            let bytes: Vec<u8> = nm
                .name
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            out.push((String::from_utf8_lossy(&bytes).into_owned(), v.value));
        }
        Ok(out)
    }

    /// Whether the link is up (`rte_eth_link_get_nowait`); `None` when the driver cannot say.
    pub fn link_up(&self) -> Option<bool> {
        link_up(self.id)
    }

    /// The port's own MAC address (`rte_eth_macaddr_get`): a NIC's burnt-in address, or the
    /// one a virtual device made up or was given (`mac=` of net_memif, net_af_packet's
    /// interface address).
    #[cold]
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        port_mac_of(self.id)
    }
}

/// The MAC address of the port named `name` (`rte_eth_macaddr_get`): readable as soon as the
/// EAL has probed the device, before the port is configured or started.
#[cold]
pub fn port_mac(name: &str) -> Result<[u8; 6], DpdkError> {
    port_mac_of(port_id(name)?)
}

fn port_mac_of(id: u16) -> Result<[u8; 6], DpdkError> {
    let mut a = dpdk_sys::rte_ether_addr::default();
    // SAFETY: `id` names an existing port; `a` is a valid place for the result.
    check("rte_eth_macaddr_get", unsafe {
        dpdk_sys::rte_eth_macaddr_get(id, &mut a)
    })?;
    Ok(a.addr_bytes)
}

fn port_id(name: &str) -> Result<u16, DpdkError> {
    if !eal_ready() {
        return Err(DpdkError::NoEal);
    }
    let cname = CString::new(name).map_err(|_| DpdkError::Config("NUL in port name"))?;
    let mut id = 0u16;
    // SAFETY: `cname` is a valid C string and `id` a valid place for the result.
    let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(DpdkError::NoPort(name.to_owned()));
    }
    Ok(id)
}

/// The NUMA socket of the port named `name` (`None`: a virtual device, or unknown).
#[cold]
pub fn port_socket(name: &str) -> Result<Option<u32>, DpdkError> {
    if !eal_ready() {
        return Err(DpdkError::NoEal);
    }
    let cname = CString::new(name).map_err(|_| DpdkError::Config("NUL in port name"))?;
    let mut id = 0u16;
    // SAFETY: `cname` is a valid C string and `id` a valid place for the result.
    let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(DpdkError::NoPort(name.to_owned()));
    }
    // SAFETY: `id` names an existing port.
    let s = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
    Ok(u32::try_from(s).ok())
}

fn link_up(port: u16) -> Option<bool> {
    // SAFETY: `port` is a started port (callers hold a `DpdkPort` or `DpdkQueue`).
    match unsafe { dpdk_sys::pshim6_link_up(port) } {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

impl Drop for DpdkPort {
    fn drop(&mut self) {
        // SAFETY: the port was started by `DpdkPort::start` and is stopped and closed once.
        // Queues still held elsewhere must not be used after this (documented on DpdkQueue).
        unsafe {
            let _ = dpdk_sys::rte_eth_dev_stop(self.id);
            let _ = dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

/// One rx/tx queue pair of a started port, owned by one worker thread.
///
/// Drop every queue before the [`DpdkPort`] it came from.
#[derive(Debug)]
pub struct DpdkQueue {
    port: u16,
    queue: u16,
    pool: Arc<Mempool>,
    stats: QueueStats,
    /// This queue registered its thread as an lcore ([`PortQueue::attach_thread`]) and
    /// releases it on detach.
    registered: bool,
}

impl DpdkQueue {
    /// The DPDK port id and queue index.
    pub fn id(&self) -> (u16, u16) {
        (self.port, self.queue)
    }

    /// The pool the queue's port receives into.
    pub fn pool(&self) -> &Arc<Mempool> {
        &self.pool
    }

    /// Transmits what the device takes from the front of `pkts` and leaves the rest there
    /// (a generator offers them again; [`PortQueue::tx_burst`] would drop them). Returns how
    /// many were sent.
    #[inline]
    pub fn tx_keep(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let take = pkts.len().min(BURST);
        let mut raw = [null_mut::<dpdk_sys::rte_mbuf>(); BURST];
        for (slot, m) in raw.iter_mut().zip(pkts.iter()) {
            *slot = m.as_raw().as_ptr();
        }
        // `take` <= BURST (32) fits u16.
        let take16 = take as u16;
        // SAFETY: 1. (port, queue) is started and polled by this thread only; 2. the first
        // `take` entries are mbufs owned by `pkts`; DPDK takes ownership of the first `sent`,
        // which are forgotten below without being freed.
        let sent =
            unsafe { dpdk_sys::pshim6_tx_burst(self.port, self.queue, raw.as_mut_ptr(), take16) };
        let sent = usize::from(sent).min(take);
        for m in pkts.drain(..sent) {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += m.len() as u64;
            let _ = m.into_raw();
        }
        sent
    }
}

impl PortQueue for DpdkQueue {
    type Buf = Mbuf;

    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let mut raw = [null_mut::<dpdk_sys::rte_mbuf>(); BURST];
        let want = max.min(BURST).min(out.capacity().saturating_sub(out.len()));
        let Ok(want16) = u16::try_from(want) else {
            return 0;
        };
        // SAFETY: 1. (port, queue) was set up and started by `DpdkPort::start`, and only this
        // queue (one thread) polls it; 2. `raw` holds BURST >= `want` pointers.
        let n =
            unsafe { dpdk_sys::pshim6_rx_burst(self.port, self.queue, raw.as_mut_ptr(), want16) };
        let mut pushed = 0;
        for &p in raw.iter().take(usize::from(n)) {
            let Some(p) = NonNull::new(p) else { continue };
            // SAFETY: `n` entries are mbufs DPDK now hands to us alone.
            let segs = unsafe { p.as_ref().nb_segs };
            // SAFETY: as above; ownership moves into the `Mbuf` (freed on drop).
            let m = unsafe { Mbuf::from_raw(p) };
            if segs != 1 {
                // Chained mbufs (jumbo frames over small buffers) are not supported.
                self.stats.rx_dropped += 1;
                continue;
            }
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += m.len() as u64;
            out.push(m);
            pushed += 1;
        }
        pushed
    }

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let mut sent_total = 0;
        while !pkts.is_empty() {
            let take = pkts.len().min(BURST);
            let mut raw = [null_mut::<dpdk_sys::rte_mbuf>(); BURST];
            let mut lens = [0u64; BURST];
            for (i, m) in pkts.drain(..take).enumerate() {
                lens[i] = m.len() as u64;
                raw[i] = m.into_raw().as_ptr();
            }
            // `take` <= BURST (32) fits u16.
            let take16 = take as u16;
            // SAFETY: 1. (port, queue) is started and polled by this thread only; 2. the first
            // `take` entries of `raw` are owned mbufs; DPDK takes the first `sent` of them.
            let sent = unsafe {
                dpdk_sys::pshim6_tx_burst(self.port, self.queue, raw.as_mut_ptr(), take16)
            };
            let sent = usize::from(sent).min(take);
            self.stats.tx_packets += sent as u64;
            self.stats.tx_bytes += lens[..sent].iter().sum::<u64>();
            if sent < take {
                self.stats.tx_dropped += (take - sent) as u64;
                let unsent = u32::try_from(take - sent).unwrap_or(0);
                // SAFETY: entries `sent..take` are still ours; freed once here.
                unsafe { dpdk_sys::pshim6_pktmbuf_free_bulk(raw[sent..].as_mut_ptr(), unsent) };
            }
            sent_total += sent;
        }
        sent_total
    }

    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    fn free(&mut self, buf: Mbuf) {
        drop(buf);
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }

    fn link_up(&self) -> Option<bool> {
        link_up(self.port)
    }

    /// Registers the worker's thread as a DPDK lcore (`rte_thread_register`) so the
    /// mempool's per-lcore cache serves its frees and allocs; without it every free goes to
    /// the shared ring. A thread already known to the EAL is left as it is. Failure (every
    /// lcore id taken, multi-process in use) only costs that speed.
    fn attach_thread(&mut self) {
        if super::eal::lcore_id().is_none() {
            self.registered = super::eal::register_thread().is_ok();
        }
    }

    fn detach_thread(&mut self) {
        if std::mem::take(&mut self.registered) {
            super::eal::unregister_thread();
        }
    }
}
