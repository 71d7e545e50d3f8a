//! I/O backends behind [`crate::io::PortQueue`].
//!
//! - [`mem`]: bounded lock-free rings of [`crate::buf::HeapBuf`] wired as a "cable" between two
//!   ports, plus a generator and a sink for benchmarks (tests, benches, back-to-back pipelines).
//! - [`afpacket`] (Linux): one `AF_PACKET` socket per (interface, worker) with mmap'd TPACKET_V2
//!   RX and TX rings and `PACKET_FANOUT` across the workers of one interface.
//! - [`pcap`]: frames read from a classic pcap file, transmitted frames written to another
//!   (offline replay and golden tests without root).
//! - [`pcap_replay`]: the queues of `pshim6 replay` ([`crate::replay`]), fed frame by frame
//!   and drained by the replay driver.
//!
//! The cable rings and the buffer pool are the crate's own bounded MPMC ring with burst
//! operations (`ring`, after DPDK's `rte_ring`): one atomic operation per burst, not per frame.
//!
//! Every backend hands out [`crate::buf::HeapBuf`]s taken from a shared, pre-allocated
//! [`BufPool`]: buffers move between ports (received on one, transmitted on another, dropped
//! on a third), so all ports of one appliance should share one pool, sized once at start-up.

#[cfg(target_os = "linux")]
pub mod afpacket;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod mem;
pub mod pcap;
pub mod pcap_replay;
mod pool;
mod ring;

pub use pool::BufPool;

use std::io;

/// Why a backend could not be set up (the per-packet paths never fail: they drop and count).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A configuration value is out of range; the message names it.
    #[error("invalid backend configuration: {0}")]
    Config(&'static str),
    /// The named interface does not exist (in the caller's network namespace).
    #[error("no such interface: {0}")]
    NoInterface(String),
    /// A system call failed while setting up a queue; `op` names it.
    #[error("{op}: {source}")]
    Sys {
        /// The operation that failed (e.g. `"setsockopt(PACKET_RX_RING)"`).
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// A capture file could not be opened, read or written.
    #[error(transparent)]
    Pcap(#[from] wire::pcap::PcapError),
}
