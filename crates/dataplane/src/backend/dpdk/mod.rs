//! DPDK backend (feature `dpdk`): the safe layer over [`dpdk_sys`].
//!
//! - [`eal`]: the Environment Abstraction Layer, started once per process with the EAL
//!   arguments from the configuration passed through unchanged.
//! - [`mbuf`]: [`Mbuf`], an owned `rte_mbuf` freed on drop that implements
//!   [`crate::buf::PacketBuf`] (the Shim6 header goes into the mbuf headroom), and
//!   [`Mempool`], a packet-buffer pool on one NUMA socket.
//! - [`port`]: [`DpdkPort`] configures an ethdev with one rx and one tx queue per worker (RSS
//!   over IPv6 when there are several) and hands out one [`DpdkQueue`] per worker, which
//!   implements [`crate::io::PortQueue`].
//! - [`ports`]: [`PortSet`] brings up every port of an appliance with one mempool per NUMA
//!   socket in use.
//! - [`bench`]: `pshim6 bench pipeline --backend dpdk`, the pipeline benchmark over
//!   back-to-back ring ports.
//!
//! Runs without a NIC and without hugepages on virtual devices, e.g.
//! `--no-huge -m 256 --no-pci --no-shconf --vdev=net_ring0` (tests) or `net_pcap` (golden
//! files). Only one EAL exists per process.

pub mod bench;
pub mod eal;
pub mod mbuf;
pub mod port;
pub mod ports;

pub use eal::{
    allowed_cpus, attach_vdev, init_eal, lcore_id, register_thread, ring_port_pair,
    unregister_thread,
};
pub use mbuf::{Mbuf, Mempool};
pub use port::{port_mac, port_socket, DpdkPort, DpdkPortConfig, DpdkQueue};
pub use ports::{PortSet, PortSetConfig};

/// Why a DPDK set-up step failed (the per-packet paths never fail: they drop and count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` failed (bad EAL arguments, no memory); `errno` is DPDK's `rte_errno`.
    #[error("EAL initialisation failed (rte_errno {errno}): check the EAL arguments")]
    EalInit {
        /// `rte_errno` after the failed call.
        errno: i32,
    },
    /// The EAL has not been started yet ([`init_eal`] must come first).
    #[error("the DPDK EAL is not initialised")]
    NoEal,
    /// An argument contains a NUL byte or is otherwise unusable; the message names it.
    #[error("invalid DPDK argument: {0}")]
    Config(&'static str),
    /// No ethdev has this name (e.g. a `--vdev` missing from the EAL arguments).
    #[error("no DPDK port named {0}")]
    NoPort(String),
    /// A DPDK call returned an error; `op` names it, `code` is its (negative errno) result.
    #[error("{op} failed with {code}")]
    Call {
        /// The failed call, e.g. `"rte_eth_dev_configure"`.
        op: &'static str,
        /// Its return value or `-rte_errno`.
        code: i32,
    },
}
