//! Classic libpcap capture files (Ethernet link type), read and written.
//!
//! The simulator writes every packet it moves as an Ethernet/IPv6 frame so that tshark can check
//! wire formats; the pcap replay backend reads captures back. Only the classic format is
//! supported (not pcapng): it is what `tshark -w` and DPDK's `net_pcap` produce and accept.
//! Timestamps are nanoseconds since the capture's epoch (simulated time in the simulator).

use std::io::{self, Read, Write};
use std::net::Ipv6Addr;

/// Magic number of a classic pcap file with nanosecond timestamps, as written in native order.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Magic number of a classic pcap file with microsecond timestamps.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame we record or accept.
pub const SNAPLEN: u32 = 65_535;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Length of an Ethernet II header without VLAN tag.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// Errors of the capture reader and writer.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The underlying reader or writer failed.
    #[error("pcap I/O: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with a classic pcap magic number.
    #[error("not a classic pcap file (magic {0:#010x})")]
    BadMagic(u32),
    /// The file's link type is not Ethernet.
    #[error("unsupported pcap link type {0} (only Ethernet, 1)")]
    LinkType(u32),
    /// A record is larger than [`SNAPLEN`] or than the packet it claims to capture.
    #[error("pcap record of {0} bytes is malformed or too large")]
    BadRecord(u32),
    /// A payload does not fit an IPv6 packet.
    #[error("payload of {0} bytes does not fit an IPv6 packet")]
    TooLarge(usize),
}

/// Writes a classic pcap file with nanosecond timestamps and Ethernet framing.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header and returns the writer.
    pub fn new(mut out: W) -> Result<Self, PcapError> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out, frames: 0 })
    }

    /// Records one Ethernet frame seen `nanos` nanoseconds after the capture's epoch.
    pub fn write_frame(&mut self, nanos: u64, frame: &[u8]) -> Result<(), PcapError> {
        let len = u32::try_from(frame.len()).map_err(|_| PcapError::TooLarge(frame.len()))?;
        if len > SNAPLEN {
            return Err(PcapError::TooLarge(frame.len()));
        }
        let secs = u32::try_from(nanos / 1_000_000_000).unwrap_or(u32::MAX);
        let sub = (nanos % 1_000_000_000) as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&sub.to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(frame)?;
        self.frames += 1;
        Ok(())
    }

    /// Wraps `payload` in an IPv6 header (hop limit 64, no flow label) and an Ethernet header,
    /// then records it. `next_header` names what `payload` starts with (140 for Shim6).
    pub fn write_ipv6(
        &mut self,
        nanos: u64,
        link: &EthernetLink,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next_header: u8,
        payload: &[u8],
    ) -> Result<(), PcapError> {
        let frame = ethernet_ipv6_frame(link, src, dst, next_header, 64, payload)?;
        self.write_frame(nanos, &frame)
    }

    /// Records a whole IPv6 packet (header included) inside an Ethernet header.
    pub fn write_ipv6_packet(
        &mut self,
        nanos: u64,
        link: &EthernetLink,
        packet: &[u8],
    ) -> Result<(), PcapError> {
        let mut frame = Vec::with_capacity(ETHERNET_HEADER_LEN + packet.len());
        frame.extend_from_slice(&link.dst);
        frame.extend_from_slice(&link.src);
        frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        frame.extend_from_slice(packet);
        self.write_frame(nanos, &frame)
    }

    /// Number of frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W, PcapError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The two MAC addresses of a (simulated) Ethernet link, source first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetLink {
    /// Source MAC address.
    pub src: [u8; 6],
    /// Destination MAC address.
    pub dst: [u8; 6],
}

impl EthernetLink {
    /// Locally administered unicast MACs derived from two small numbers, for simulations.
    pub const fn simulated(from: u8, to: u8) -> Self {
        Self {
            src: [0x02, 0, 0, 0, 0, from],
            dst: [0x02, 0, 0, 0, 0, to],
        }
    }
}

/// Builds an Ethernet II frame carrying an IPv6 packet around `payload`.
pub fn ethernet_ipv6_frame(
    link: &EthernetLink,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Result<Vec<u8>, PcapError> {
    let plen = u16::try_from(payload.len()).map_err(|_| PcapError::TooLarge(payload.len()))?;
    let mut frame = Vec::with_capacity(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + payload.len());
    frame.extend_from_slice(&link.dst);
    frame.extend_from_slice(&link.src);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&plen.to_be_bytes());
    frame.push(next_header);
    frame.push(hop_limit);
    frame.extend_from_slice(&src.octets());
    frame.extend_from_slice(&dst.octets());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// One record of a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Timestamp in nanoseconds since the epoch of the capture.
    pub nanos: u64,
    /// The captured bytes (the whole frame: we refuse truncated records).
    pub frame: Vec<u8>,
}

/// Reads a classic pcap file (either byte order, micro- or nanosecond timestamps).
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    input: R,
    swapped: bool,
    nanos: bool,
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, PcapError> {
        let mut header = [0u8; 24];
        input.read_exact(&mut header)?;
        let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let (swapped, nanos) = match magic {
            MAGIC_NANOS => (false, true),
            MAGIC_MICROS => (false, false),
            m if m.swap_bytes() == MAGIC_NANOS => (true, true),
            m if m.swap_bytes() == MAGIC_MICROS => (true, false),
            m => return Err(PcapError::BadMagic(m)),
        };
        let reader = Self {
            input,
            swapped,
            nanos,
        };
        let link = reader.u32_at(&header, 20);
        if link != LINKTYPE_ETHERNET {
            return Err(PcapError::LinkType(link));
        }
        Ok(reader)
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(s) = bytes.get(at..at + 4) {
            b.copy_from_slice(s);
        }
        if self.swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Reads the next record; `Ok(None)` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<PcapRecord>, PcapError> {
        let mut rec = [0u8; 16];
        match self.input.read_exact(&mut rec) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let secs = u64::from(self.u32_at(&rec, 0));
        let sub = u64::from(self.u32_at(&rec, 4));
        let incl = self.u32_at(&rec, 8);
        let orig = self.u32_at(&rec, 12);
        if incl > SNAPLEN || incl > orig {
            return Err(PcapError::BadRecord(incl));
        }
        let mut frame = vec![0u8; incl as usize];
        self.input.read_exact(&mut frame)?;
        let nanos = secs * 1_000_000_000 + if self.nanos { sub } else { sub * 1_000 };
        Ok(Some(PcapRecord { nanos, frame }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(1_500_000_123, &[1, 2, 3]).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(&bytes[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(&bytes[20..24], &[1, 0, 0, 0]);
        assert_eq!(&bytes[24..28], &1u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &500_000_123u32.to_le_bytes());
        assert_eq!(&bytes[32..36], &3u32.to_le_bytes());
        assert_eq!(&bytes[40..], &[1, 2, 3]);
    }

    #[test]
    fn ipv6_frame_round_trips_through_reader() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let src: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:c::2".parse().unwrap();
        w.write_ipv6(
            7,
            &EthernetLink::simulated(1, 2),
            src,
            dst,
            140,
            &[0x3b; 16],
        )
        .unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = PcapReader::new(bytes.as_slice()).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.nanos, 7);
        assert_eq!(rec.frame.len(), 14 + 40 + 16);
        assert_eq!(&rec.frame[12..14], &[0x86, 0xdd]);
        assert_eq!(&rec.frame[18..20], &16u16.to_be_bytes());
        assert_eq!(rec.frame[20], 140);
        assert_eq!(&rec.frame[22..38], &src.octets());
        assert_eq!(&rec.frame[38..54], &dst.octets());
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn reader_rejects_garbage() {
        assert!(matches!(
            PcapReader::new(&[0u8; 24][..]),
            Err(PcapError::BadMagic(0))
        ));
        assert!(PcapReader::new(&[0u8; 3][..]).is_err());
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(0, &[0; 4]).unwrap();
        let mut bytes = w.into_inner().unwrap();
        bytes[32..36].copy_from_slice(&100_000u32.to_le_bytes());
        let mut r = PcapReader::new(bytes.as_slice()).unwrap();
        assert!(matches!(
            r.next_record(),
            Err(PcapError::BadRecord(100_000))
        ));
    }
}
