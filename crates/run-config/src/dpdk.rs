//! The `[dpdk]` table of the `pshim6 run` configuration (used with `backend = "dpdk"`).
//!
//! Ports are named by the interfaces of `[inside]` and `[[providers]]`: with the DPDK backend
//! each `interface` is an ethdev name, a PCI address (`0000:01:00.0`, bound to vfio-pci with
//! `dpdk-devbind.py`) or a virtual device created by an EAL `--vdev=` argument
//! (`net_memif0`, `net_af_packet0`, `net_pcap0`, ...). A port without a `mac` in the file uses
//! its device's own (`rte_eth_macaddr_get`: a NIC's burnt-in address, memif's `mac=`).

use crate::error::{bail, Result};
use dataplane::config::MacAddr;
use dataplane::io::PortId;
use serde::Deserialize;

/// What a DPDK port without a configured MAC holds until `run_dpdk::resolve_macs` reads the
/// device's (a valid unicast address so the configuration checks pass; never sent).
pub(crate) const MAC_PLACEHOLDER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0]);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpdk {
    eal_args: Option<Vec<String>>,
    mbufs_per_socket: Option<u32>,
    rx_desc: Option<u16>,
    tx_desc: Option<u16>,
    promiscuous: Option<bool>,
    synthetic_contexts: Option<usize>,
}

/// DPDK settings from `[dpdk]`, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkSettings {
    /// EAL arguments, passed to `rte_eal_init` unchanged after the program name.
    pub eal_args: Vec<String>,
    /// Mbufs in the pool of each NUMA socket a port sits on.
    pub mbufs_per_socket: u32,
    /// Receive descriptors per queue.
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    pub tx_desc: u16,
    /// Promiscuous mode on every port.
    pub promiscuous: bool,
    /// Benchmarks only: established contexts preloaded into the table
    /// (`dataplane::bench::Synthetic`), so `pshim6-pktgen` can send SHIM6 traffic without
    /// handshakes.
    pub synthetic_contexts: usize,
    /// Ports whose `mac` was not configured: their device's MAC replaces the placeholder once
    /// the EAL is up.
    pub mac_from_device: Vec<PortId>,
}

impl RawDpdk {
    /// Checks the table; `buffers` (the top-level key) is the default pool size.
    pub(crate) fn settings(&self, buffers: usize) -> Result<DpdkSettings> {
        let mbufs = match self.mbufs_per_socket {
            Some(n) => n,
            None => u32::try_from(buffers).unwrap_or(u32::MAX),
        };
        if mbufs < 1024 {
            bail!("dpdk.mbufs_per_socket: {mbufs}: at least 1024 (rx rings hold 1024 each)");
        }
        let rx_desc = self.rx_desc.unwrap_or(1024);
        let tx_desc = self.tx_desc.unwrap_or(1024);
        for (key, v) in [("dpdk.rx_desc", rx_desc), ("dpdk.tx_desc", tx_desc)] {
            if !(64..=16384).contains(&v) || !v.is_power_of_two() {
                bail!("{key}: {v}: expected a power of two in 64..=16384");
            }
        }
        Ok(DpdkSettings {
            eal_args: self.eal_args.clone().unwrap_or_default(),
            mbufs_per_socket: mbufs,
            rx_desc,
            tx_desc,
            promiscuous: self.promiscuous.unwrap_or(true),
            synthetic_contexts: self.synthetic_contexts.unwrap_or(0),
            mac_from_device: Vec::new(),
        })
    }
}
