//! The burst-oriented I/O abstraction every backend implements (DPDK, AF_PACKET, in-memory
//! rings, pcap replay): one [`PortQueue`] per (port, worker), receive and transmit in bursts.

use crate::buf::PacketBuf;

/// Packets per burst: the unit of work of a worker's run-to-completion loop.
pub const BURST: usize = 32;

/// Index of a port (an interface the appliance owns: inside links and provider links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortId(pub u16);

/// Counters a queue keeps about itself; read by the operator view, never on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames the backend dropped on receive (ring overrun, truncated frame).
    pub rx_dropped: u64,
    /// Frames that could not be transmitted (ring full) and were freed.
    pub tx_dropped: u64,
}

/// One receive/transmit queue pair of one port, owned by exactly one thread.
///
/// The burst vectors are allocated once with capacity [`BURST`] by the caller; backends push
/// into them and drain them, so no call allocates.
pub trait PortQueue: Send {
    /// The buffer type this backend hands out.
    type Buf: PacketBuf + Send;

    /// Appends up to `max` received frames to `out` and returns how many it appended.
    fn rx_burst(&mut self, out: &mut Vec<Self::Buf>, max: usize) -> usize;

    /// Transmits the frames in `pkts`, draining it; frames that could not be sent are dropped
    /// (freed or recycled) and counted in [`QueueStats::tx_dropped`]. Returns how many were sent.
    fn tx_burst(&mut self, pkts: &mut Vec<Self::Buf>) -> usize;

    /// A free buffer for a frame built locally (slow-path replies, generators), if any is left.
    fn alloc(&mut self) -> Option<Self::Buf>;

    /// Returns a buffer that will not be transmitted (a dropped packet) to the backend's pool.
    fn free(&mut self, buf: Self::Buf);

    /// This queue's counters.
    fn stats(&self) -> QueueStats;

    /// Whether the port's link is up, if the backend knows (AF_PACKET reads the interface
    /// flags, DPDK the link status); `None` when it cannot tell.
    fn link_up(&self) -> Option<bool> {
        None
    }

    /// Called on the worker's own thread before its first poll, after pinning (DPDK registers
    /// the thread as an lcore here, so the mempool's per-lcore cache serves its allocs and
    /// frees). Nothing by default.
    fn attach_thread(&mut self) {}

    /// Called on the worker's thread after its last poll: undoes [`PortQueue::attach_thread`].
    fn detach_thread(&mut self) {}

    /// A probe of the port's link state for another thread, when reading it costs a system
    /// call ([`link_up`](Self::link_up) and [`stats`](Self::stats) then make one): the slow
    /// path's housekeeping runs it, so the worker that owns the queue makes no system call
    /// beyond receive and transmit. `None` (the default) when `link_up` is a plain memory
    /// read the worker may do itself.
    fn link_probe(&self) -> Option<LinkProbe> {
        None
    }

    /// The counters the queue keeps itself, without asking the kernel (what a worker may
    /// publish); the same as [`stats`](Self::stats) unless that makes a system call.
    fn local_stats(&self) -> QueueStats {
        self.stats()
    }
}

/// What a [`LinkProbe`] learned about its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkReport {
    /// Link up (administratively and with carrier); `None` when it cannot tell (interface
    /// gone, queue closed).
    pub up: Option<bool>,
    /// Frames the kernel dropped on receive since the previous call (ring overruns), not
    /// counted in the queue's [`local_stats`](PortQueue::local_stats).
    pub rx_dropped: u64,
}

/// Reads a port's link state and kernel counters from a thread other than its worker
/// ([`PortQueue::link_probe`]).
pub type LinkProbe = Box<dyn FnMut() -> LinkReport + Send>;
