//! A set of started ports sharing one mempool per NUMA socket: what an appliance (or a test, or
//! a generator) brings up in one call, torn down in the right order on drop.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::mbuf::Mempool;
use super::port::{port_socket, DpdkPort, DpdkPortConfig, DpdkQueue};
use super::DpdkError;

static NEXT_POOL: AtomicU32 = AtomicU32::new(0);

/// How to bring up every port of a [`PortSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetConfig {
    /// Ethdev names (PCI addresses or vdev names), in port order.
    pub names: Vec<String>,
    /// Queue pairs per port: one per worker.
    pub queues: u16,
    /// Mbufs in each socket's pool.
    pub mbufs_per_socket: u32,
    /// Bytes of frame an mbuf holds (headroom excluded).
    pub data_room: u16,
    /// Receive descriptors per queue.
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    pub tx_desc: u16,
    /// Promiscuous mode.
    pub promiscuous: bool,
}

/// Started ports and their pools. Fields drop in order: ports (stopped, closed) before the
/// pools their rx rings hold mbufs of.
#[derive(Debug)]
pub struct PortSet {
    ports: Vec<DpdkPort>,
    pools: Vec<(Option<u32>, Arc<Mempool>)>,
}

impl PortSet {
    /// Creates one mempool per NUMA socket the ports sit on (`None`: a virtual device with
    /// no socket) and starts every port. Returns the set and, per port, its queues.
    #[cold]
    pub fn open(cfg: &PortSetConfig) -> Result<(Self, Vec<Vec<DpdkQueue>>), DpdkError> {
        let mut set = Self {
            ports: Vec::with_capacity(cfg.names.len()),
            pools: Vec::new(),
        };
        let mut queues = Vec::with_capacity(cfg.names.len());
        for name in &cfg.names {
            let socket = port_socket(name)?;
            let pool = match set.pools.iter().find(|(s, _)| *s == socket) {
                Some((_, p)) => Arc::clone(p),
                None => {
                    // Pool names are process-wide (several sets may coexist, e.g. in tests).
                    let k = NEXT_POOL.fetch_add(1, Ordering::Relaxed);
                    let pname = format!(
                        "pshim6_{k}_s{}",
                        socket.map_or_else(|| "any".to_owned(), |s| s.to_string())
                    );
                    let p = Arc::new(Mempool::new(
                        &pname,
                        cfg.mbufs_per_socket,
                        cfg.data_room,
                        socket,
                    )?);
                    set.pools.push((socket, Arc::clone(&p)));
                    p
                }
            };
            let pc = DpdkPortConfig {
                name: name.clone(),
                queues: cfg.queues,
                rx_desc: cfg.rx_desc,
                tx_desc: cfg.tx_desc,
                promiscuous: cfg.promiscuous,
            };
            let (port, qs) = DpdkPort::start(&pc, &pool)?;
            set.ports.push(port);
            queues.push(qs);
        }
        Ok((set, queues))
    }

    /// The started ports, in configuration order.
    pub fn ports(&self) -> &[DpdkPort] {
        &self.ports
    }

    /// The pools, with the socket each serves (`None`: any).
    pub fn pools(&self) -> impl Iterator<Item = (Option<u32>, &Mempool)> {
        self.pools.iter().map(|(s, p)| (*s, p.as_ref()))
    }
}
