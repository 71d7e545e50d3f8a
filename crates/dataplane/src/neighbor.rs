//! The neighbour table: (port, IPv6 address) → MAC, written by the slow path (which runs
//! Neighbor Discovery, [RFC 4861](https://www.rfc-editor.org/rfc/rfc4861)) and read by every
//! worker per packet.
//!
//! Single writer ([`NeighborWriter`], not `Clone`, `&mut self`), lock-free readers
//! ([`NeighborReader`], `Clone`). Fixed capacity, open addressing with linear probing and
//! tombstones; each slot is a seqlock over atomics: the writer makes the slot's sequence odd,
//! writes the words, makes it even again; a reader retries while the sequence is odd or changed
//! under it, so it never returns a torn (address, MAC) pair. A reader gives up after a few
//! retries and reports a miss (the packet is punted) rather than spin behind a preempted writer.
//!
//! A table-wide version counter changes on every write, so a worker can cache next-hop MACs
//! (one per provider) and re-read them only when the version moved.

use std::net::Ipv6Addr;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::MacAddr;
use crate::io::PortId;

const EMPTY: u32 = 0;
const FULL: u32 = 1;
const TOMBSTONE: u32 = 2;

/// Reads of one slot a reader tries before it gives up and reports a miss.
const READ_RETRIES: usize = 64;

/// Why the neighbour table refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NeighborError {
    /// Every slot holds a live entry.
    #[error("neighbour table full")]
    Full,
}

#[derive(Default)]
struct Slot {
    /// Seqlock sequence: odd while the writer is changing the slot.
    seq: AtomicU32,
    state: AtomicU32,
    addr_hi: AtomicU64,
    addr_lo: AtomicU64,
    /// Port in the top 16 bits, MAC in the low 48.
    port_mac: AtomicU64,
}

struct Snapshot {
    state: u32,
    hi: u64,
    lo: u64,
    port_mac: u64,
}

impl Slot {
    fn read(&self) -> Option<Snapshot> {
        for _ in 0..READ_RETRIES {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let snap = Snapshot {
                state: self.state.load(Ordering::Relaxed),
                hi: self.addr_hi.load(Ordering::Relaxed),
                lo: self.addr_lo.load(Ordering::Relaxed),
                port_mac: self.port_mac.load(Ordering::Relaxed),
            };
            // Orders the field loads before the second sequence load (seqlock read side).
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some(snap);
            }
        }
        None
    }

    /// Writer side; only the single [`NeighborWriter`] calls it.
    fn write(&self, state: u32, hi: u64, lo: u64, port_mac: u64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd sequence before the field stores (seqlock write side).
        fence(Ordering::Release);
        self.state.store(state, Ordering::Relaxed);
        self.addr_hi.store(hi, Ordering::Relaxed);
        self.addr_lo.store(lo, Ordering::Relaxed);
        self.port_mac.store(port_mac, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

struct Shared {
    slots: Box<[Slot]>,
    mask: usize,
    version: AtomicU64,
}

fn split(addr: Ipv6Addr) -> (u64, u64) {
    let bits = addr.to_bits();
    ((bits >> 64) as u64, bits as u64)
}

fn mac_bits(mac: MacAddr) -> u64 {
    let [a, b, c, d, e, f] = mac.0;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

fn pack(port: PortId, mac: MacAddr) -> u64 {
    (u64::from(port.0) << 48) | mac_bits(mac)
}

fn unpack_mac(port_mac: u64) -> MacAddr {
    let [_, _, a, b, c, d, e, f] = port_mac.to_be_bytes();
    MacAddr([a, b, c, d, e, f])
}

fn port_of(port_mac: u64) -> u16 {
    (port_mac >> 48) as u16
}

impl Shared {
    fn start(&self, port: PortId, hi: u64, lo: u64) -> usize {
        // A multiply-xorshift mix: interface ids are often sequential or EUI-64 derived.
        let mut h = hi ^ lo.rotate_left(29) ^ u64::from(port.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 29;
        (h as usize) & self.mask
    }

    fn lookup(&self, port: PortId, addr: Ipv6Addr) -> Option<MacAddr> {
        let (hi, lo) = split(addr);
        let mut i = self.start(port, hi, lo);
        for _ in 0..=self.mask {
            let snap = self.slots.get(i)?.read()?;
            match snap.state {
                EMPTY => return None,
                FULL if snap.hi == hi && snap.lo == lo && port_of(snap.port_mac) == port.0 => {
                    return Some(unpack_mac(snap.port_mac));
                }
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}

/// The slow path's handle: the only one that writes.
pub struct NeighborWriter {
    shared: Arc<Shared>,
    live: usize,
}

/// A worker's handle: lock-free lookups, cheap to clone.
#[derive(Clone)]
pub struct NeighborReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NeighborReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeighborReader")
            .field("slots", &self.shared.slots.len())
            .finish()
    }
}

/// A table for at least `capacity` entries (slots are twice that, rounded up to a power of
/// two, so probes stay short); returns the writer and a first reader.
pub fn neighbor_table(capacity: usize) -> (NeighborWriter, NeighborReader) {
    let slots = capacity.max(1).saturating_mul(2).next_power_of_two();
    let shared = Arc::new(Shared {
        slots: (0..slots).map(|_| Slot::default()).collect(),
        mask: slots - 1,
        version: AtomicU64::new(0),
    });
    (
        NeighborWriter {
            shared: shared.clone(),
            live: 0,
        },
        NeighborReader { shared },
    )
}

impl NeighborWriter {
    /// Adds or updates the MAC of `addr` on `port`.
    pub fn insert(
        &mut self,
        port: PortId,
        addr: Ipv6Addr,
        mac: MacAddr,
    ) -> Result<(), NeighborError> {
        let sh = &*self.shared;
        let (hi, lo) = split(addr);
        let mut i = sh.start(port, hi, lo);
        let mut free = None;
        for _ in 0..=sh.mask {
            let slot = &sh.slots[i];
            // Only this writer changes slots, so plain relaxed loads see the latest values.
            let state = slot.state.load(Ordering::Relaxed);
            if state == EMPTY {
                free.get_or_insert(i);
                break;
            }
            if state == TOMBSTONE {
                free.get_or_insert(i);
            } else if slot.addr_hi.load(Ordering::Relaxed) == hi
                && slot.addr_lo.load(Ordering::Relaxed) == lo
                && port_of(slot.port_mac.load(Ordering::Relaxed)) == port.0
            {
                slot.write(FULL, hi, lo, pack(port, mac));
                sh.version.fetch_add(1, Ordering::Release);
                return Ok(());
            }
            i = (i + 1) & sh.mask;
        }
        // Keep at least one empty slot so that a miss always ends its probe.
        let Some(i) = free.filter(|_| self.live < sh.mask) else {
            return Err(NeighborError::Full);
        };
        sh.slots[i].write(FULL, hi, lo, pack(port, mac));
        self.live += 1;
        sh.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Removes the entry for `addr` on `port`; returns whether there was one.
    pub fn remove(&mut self, port: PortId, addr: Ipv6Addr) -> bool {
        let sh = &*self.shared;
        let (hi, lo) = split(addr);
        let mut i = sh.start(port, hi, lo);
        for _ in 0..=sh.mask {
            let slot = &sh.slots[i];
            match slot.state.load(Ordering::Relaxed) {
                EMPTY => return false,
                FULL if slot.addr_hi.load(Ordering::Relaxed) == hi
                    && slot.addr_lo.load(Ordering::Relaxed) == lo
                    && port_of(slot.port_mac.load(Ordering::Relaxed)) == port.0 =>
                {
                    slot.write(TOMBSTONE, 0, 0, 0);
                    self.live -= 1;
                    sh.version.fetch_add(1, Ordering::Release);
                    return true;
                }
                _ => {}
            }
            i = (i + 1) & sh.mask;
        }
        false
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The MAC of `addr` on `port`, as a worker would see it.
    pub fn lookup(&self, port: PortId, addr: Ipv6Addr) -> Option<MacAddr> {
        self.shared.lookup(port, addr)
    }

    /// A new reader for a worker.
    pub fn reader(&self) -> NeighborReader {
        NeighborReader {
            shared: self.shared.clone(),
        }
    }
}

impl NeighborReader {
    /// The MAC of `addr` on `port`, or `None` (unknown, or a write kept the slot busy).
    pub fn lookup(&self, port: PortId, addr: Ipv6Addr) -> Option<MacAddr> {
        self.shared.lookup(port, addr)
    }

    /// Changes on every write: compare with a cached value to know when to refresh.
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn addr(i: u64) -> Ipv6Addr {
        Ipv6Addr::from_bits((0xfe80u128 << 112) | u128::from(i))
    }

    fn mac(i: u64) -> MacAddr {
        let b = i.to_be_bytes();
        MacAddr([0x02, b[3], b[4], b[5], b[6], b[7]])
    }

    #[test]
    fn insert_lookup_update_remove() {
        let (mut w, r) = neighbor_table(8);
        let v0 = r.version();
        assert_eq!(r.lookup(PortId(1), addr(1)), None);
        w.insert(PortId(1), addr(1), mac(1)).unwrap();
        assert_ne!(r.version(), v0);
        assert_eq!(r.lookup(PortId(1), addr(1)), Some(mac(1)));
        // Same address on another port is another neighbour.
        assert_eq!(r.lookup(PortId(2), addr(1)), None);
        w.insert(PortId(1), addr(1), mac(7)).unwrap();
        assert_eq!(r.lookup(PortId(1), addr(1)), Some(mac(7)));
        assert_eq!(w.len(), 1);
        assert!(w.remove(PortId(1), addr(1)));
        assert!(!w.remove(PortId(1), addr(1)));
        assert_eq!(r.lookup(PortId(1), addr(1)), None);
        assert!(w.is_empty());
    }

    #[test]
    fn fills_up_and_reuses_tombstones() {
        let (mut w, r) = neighbor_table(4);
        // 8 slots, one always kept empty.
        for i in 0..7 {
            w.insert(PortId(0), addr(i), mac(i)).unwrap();
        }
        assert_eq!(
            w.insert(PortId(0), addr(99), mac(99)),
            Err(NeighborError::Full)
        );
        for i in 0..7 {
            assert_eq!(r.lookup(PortId(0), addr(i)), Some(mac(i)), "entry {i}");
        }
        assert!(w.remove(PortId(0), addr(3)));
        w.insert(PortId(0), addr(99), mac(99)).unwrap();
        assert_eq!(r.lookup(PortId(0), addr(99)), Some(mac(99)));
        for i in (0..7).filter(|&i| i != 3) {
            assert_eq!(r.lookup(PortId(0), addr(i)), Some(mac(i)), "entry {i}");
        }
        // Churn through tombstones many times: lookups of absent keys still terminate.
        for round in 0..1000 {
            assert!(w.remove(PortId(0), addr(99)));
            w.insert(PortId(0), addr(99), mac(round)).unwrap();
            assert_eq!(r.lookup(PortId(0), addr(12345)), None);
        }
    }

    #[test]
    fn readers_never_see_a_torn_entry() {
        // The writer keeps MAC = f(address, generation) for one address; readers check that
        // whatever they read belongs to one write.
        let (mut w, r) = neighbor_table(16);
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(m) = r.lookup(PortId(3), addr(5)) {
                            // Bytes 1..3 and 3..6 carry the same generation.
                            assert_eq!(m.0[1..3], m.0[4..6], "torn MAC {m}");
                            seen += 1;
                        }
                    }
                    seen
                })
            })
            .collect();
        for g in 0..200_000u32 {
            let [_, _, x, y] = g.to_be_bytes();
            w.insert(PortId(3), addr(5), MacAddr([2, x, y, 0, x, y]))
                .unwrap();
            if g % 7 == 0 {
                w.remove(PortId(3), addr(5));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for h in readers {
            h.join().unwrap();
        }
    }
}
