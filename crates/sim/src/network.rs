//! The simulated provider network between the two sites: one-way delay, random loss, link cuts,
//! and a capture of everything that goes on the wire.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shim6::prefix64;
use wire::pcap::{EthernetLink, PcapWriter};

use crate::SimError;

/// A whole IPv6 packet as it travels between the sites' provider links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePacket {
    /// The IPv6 packet, header included.
    pub bytes: Vec<u8>,
}

impl WirePacket {
    /// IPv6 source address (the packet is always at least a full IPv6 header: we build it).
    pub fn src(&self) -> Ipv6Addr {
        addr_at(&self.bytes, 8)
    }

    /// IPv6 destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr_at(&self.bytes, 24)
    }
}

/// Reads the address at `at`, or `::` when the packet is too short (never for our own packets).
pub(crate) fn addr_at(bytes: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    if let Some(s) = bytes.get(at..at + 16) {
        a.copy_from_slice(s);
    }
    Ipv6Addr::from(a)
}

/// What the network counted.
#[derive(Debug, Clone, Default)]
pub struct NetworkStats {
    /// Packets put on the wire, by kind ("payload", "I1", "Probe", ...).
    pub by_kind: BTreeMap<String, u64>,
    /// Packets dropped by random loss.
    pub lost: u64,
    /// Packets dropped because a provider link on their path was cut.
    pub cut: u64,
    /// Packets whose source or destination was a ULID prefix (must stay 0).
    pub ulid_on_wire: u64,
}

/// Ordered by delivery time, then by send order so equal times stay FIFO.
type Queued = Reverse<(Instant, u64, Vec<u8>)>;

/// Provider network with per-packet delay and loss.
#[derive(Debug)]
pub struct Network {
    start: Instant,
    delay: Duration,
    loss: f64,
    rng: StdRng,
    queue: BinaryHeap<Queued>,
    seq: u64,
    cut: HashSet<[u8; 8]>,
    ulid_prefixes: Vec<[u8; 8]>,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    /// Counters.
    pub stats: NetworkStats,
}

impl Network {
    /// A network with the given one-way delay and loss probability (0.0..=1.0).
    pub fn new(start: Instant, delay: Duration, loss: f64, seed: u64) -> Self {
        Self {
            start,
            delay,
            loss,
            rng: StdRng::seed_from_u64(seed ^ 0x6e65_7477_6f72_6b00),
            queue: BinaryHeap::new(),
            seq: 0,
            cut: HashSet::new(),
            ulid_prefixes: Vec::new(),
            pcap: None,
            stats: NetworkStats::default(),
        }
    }

    /// Records everything that goes on the wire into `path`.
    pub fn capture(&mut self, path: &std::path::Path) -> Result<(), SimError> {
        let file = File::create(path).map_err(|e| SimError::Pcap(e.to_string()))?;
        let w = PcapWriter::new(BufWriter::new(file)).map_err(|e| SimError::Pcap(e.to_string()))?;
        self.pcap = Some(w);
        Ok(())
    }

    /// Declares a ULID prefix: such addresses must never appear on the wire (counted if they do).
    pub fn add_ulid_prefix(&mut self, prefix: [u8; 8]) {
        self.ulid_prefixes.push(prefix);
    }

    /// One-way delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Cuts (or restores) the provider link serving `prefix`, in both directions. The sites are
    /// not told: only REAP can notice.
    pub fn set_cut(&mut self, prefix: [u8; 8], cut: bool) {
        if cut {
            self.cut.insert(prefix);
        } else {
            self.cut.remove(&prefix);
        }
    }

    /// Whether a packet between `src` and `dst` uses a provider link that is cut.
    fn crosses_cut(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.cut.contains(&prefix64(src)) || self.cut.contains(&prefix64(dst))
    }

    /// Puts a packet on the wire at `now`.
    pub fn send(&mut self, now: Instant, packet: WirePacket, kind: &str) -> Result<(), SimError> {
        let (src, dst) = (packet.src(), packet.dst());
        if self.crosses_cut(src, dst) {
            self.stats.cut += 1;
            return Ok(());
        }
        *self.stats.by_kind.entry(kind.to_string()).or_default() += 1;
        if self.ulid_prefixes.contains(&prefix64(src))
            || self.ulid_prefixes.contains(&prefix64(dst))
        {
            self.stats.ulid_on_wire += 1;
        }
        if let Some(pcap) = self.pcap.as_mut() {
            let nanos =
                u64::try_from(now.duration_since(self.start).as_nanos()).unwrap_or(u64::MAX);
            // Frames from the lower-addressed site to the other get MACs 1 -> 2, else 2 -> 1.
            let link = if src < dst {
                EthernetLink::simulated(1, 2)
            } else {
                EthernetLink::simulated(2, 1)
            };
            pcap.write_ipv6_packet(nanos, &link, &packet.bytes)
                .map_err(|e| SimError::Pcap(e.to_string()))?;
        }
        if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
            self.stats.lost += 1;
            return Ok(());
        }
        self.seq += 1;
        self.queue
            .push(Reverse((now + self.delay, self.seq, packet.bytes)));
        Ok(())
    }

    /// When the next packet arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Takes the next packet due at or before `now`. A packet in flight when its link is cut is
    /// lost too.
    pub fn take_due(&mut self, now: Instant) -> Option<WirePacket> {
        loop {
            let due = matches!(self.queue.peek(), Some(Reverse((t, _, _))) if *t <= now);
            if !due {
                return None;
            }
            let Reverse((_, _, bytes)) = self.queue.pop()?;
            let packet = WirePacket { bytes };
            if self.crosses_cut(packet.src(), packet.dst()) {
                self.stats.cut += 1;
                continue;
            }
            return Some(packet);
        }
    }

    /// Flushes the capture file.
    pub fn finish(&mut self) -> Result<(), SimError> {
        if let Some(pcap) = self.pcap.take() {
            pcap.into_inner()
                .map_err(|e| SimError::Pcap(e.to_string()))?;
        }
        Ok(())
    }
}
