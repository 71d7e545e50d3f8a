//! The slice of the Linux packet-socket ABI the AF_PACKET backend uses (`<linux/if_packet.h>`,
//! `<linux/sockios.h>`, `<net/if.h>`), declared here so the backend does not depend on which
//! of these a given `libc` release exports, plus thin wrappers that turn return codes into
//! [`BackendError`]s.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::{c_int, c_void, socklen_t};

use crate::backend::BackendError;

/// `SOL_PACKET`: socket option level of packet sockets.
pub(super) const SOL_PACKET: c_int = 263;
/// `PACKET_ADD_MEMBERSHIP`: join a multicast group or enable promiscuous mode (refcounted by
/// the kernel and undone when the socket closes).
pub(super) const PACKET_ADD_MEMBERSHIP: c_int = 1;
/// `PACKET_RX_RING`.
pub(super) const PACKET_RX_RING: c_int = 5;
/// `PACKET_STATISTICS`: `tpacket_stats`, reset on every read.
pub(super) const PACKET_STATISTICS: c_int = 6;
/// `PACKET_VERSION`.
pub(super) const PACKET_VERSION: c_int = 10;
/// `PACKET_TX_RING`.
pub(super) const PACKET_TX_RING: c_int = 13;
/// `PACKET_LOSS`: skip malformed TX frames instead of stalling the ring on them.
pub(super) const PACKET_LOSS: c_int = 14;
/// `PACKET_FANOUT`.
pub(super) const PACKET_FANOUT: c_int = 18;
/// `PACKET_QDISC_BYPASS`.
pub(super) const PACKET_QDISC_BYPASS: c_int = 20;
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20).
pub(super) const PACKET_IGNORE_OUTGOING: c_int = 23;
/// `TPACKET_V2` (value of `enum tpacket_versions`).
pub(super) const TPACKET_V2: c_int = 1;
/// `PACKET_FANOUT_HASH`: spread by the skb's flow hash, so each flow stays on one socket.
pub(super) const PACKET_FANOUT_HASH: u32 = 0;
/// `PACKET_FANOUT_FLAG_UNIQUEID`: the kernel picks an unused group id (Linux 4.4).
pub(super) const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;
/// `PACKET_MR_PROMISC`.
pub(super) const PACKET_MR_PROMISC: u16 = 1;
/// `PACKET_OUTGOING`: `sll_pkttype` of frames this host sent.
pub(super) const PACKET_OUTGOING: u8 = 4;

/// RX frame status: the kernel owns the frame.
pub(super) const TP_STATUS_KERNEL: u32 = 0;
/// RX frame status: user space owns the frame.
pub(super) const TP_STATUS_USER: u32 = 1;
/// RX: `tp_vlan_tci` holds a tag the NIC stripped.
pub(super) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// RX: `tp_vlan_tpid` is valid.
pub(super) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// TX frame status: free for user space.
pub(super) const TP_STATUS_AVAILABLE: u32 = 0;
/// TX frame status: filled, waiting for the kernel.
pub(super) const TP_STATUS_SEND_REQUEST: u32 = 1;
/// TX frame status: the kernel refused the frame (only without `PACKET_LOSS`).
pub(super) const TP_STATUS_WRONG_FORMAT: u32 = 1 << 2;

/// `SIOCGIFFLAGS`.
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
/// `SIOCGIFMTU`.
const SIOCGIFMTU: libc::c_ulong = 0x8921;
/// `SIOCGIFINDEX`.
const SIOCGIFINDEX: libc::c_ulong = 0x8933;
/// `IFF_UP`: administratively up.
pub(super) const IFF_UP: i16 = 0x1;
/// `IFF_RUNNING`: operationally up (carrier present).
pub(super) const IFF_RUNNING: i16 = 0x40;
/// `IFNAMSIZ`, terminating NUL included.
const IFNAMSIZ: usize = 16;

/// `struct tpacket2_hdr`: the header at the start of every TPACKET_V2 ring frame.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct Tpacket2Hdr {
    pub(super) tp_status: u32,
    pub(super) tp_len: u32,
    pub(super) tp_snaplen: u32,
    pub(super) tp_mac: u16,
    pub(super) tp_net: u16,
    pub(super) tp_sec: u32,
    pub(super) tp_nsec: u32,
    pub(super) tp_vlan_tci: u16,
    pub(super) tp_vlan_tpid: u16,
    pub(super) tp_padding: [u8; 4],
}

/// `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))`: where the `sockaddr_ll` of an RX frame sits,
/// and where the data of a TX frame starts (without `PACKET_TX_HAS_OFF`).
pub(super) const TPACKET2_HDR_ALIGNED: usize = align16(size_of::<Tpacket2Hdr>());
/// `TPACKET2_HDRLEN`: header plus `sockaddr_ll`.
pub(super) const TPACKET2_HDRLEN: usize = TPACKET2_HDR_ALIGNED + size_of::<libc::sockaddr_ll>();
/// Offset of `sll_pkttype` inside `struct sockaddr_ll`.
pub(super) const SLL_PKTTYPE_OFFSET: usize = 10;

/// `TPACKET_ALIGN`.
pub(super) const fn align16(x: usize) -> usize {
    (x + 15) & !15
}

/// `struct tpacket_req`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TpacketReq {
    pub(super) tp_block_size: u32,
    pub(super) tp_block_nr: u32,
    pub(super) tp_frame_size: u32,
    pub(super) tp_frame_nr: u32,
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TpacketStats {
    pub(super) tp_packets: u32,
    pub(super) tp_drops: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PacketMreq {
    pub(super) mr_ifindex: c_int,
    pub(super) mr_type: u16,
    pub(super) mr_alen: u16,
    pub(super) mr_address: [u8; 8],
}

/// `struct ifreq` with its union seen as raw bytes (40 bytes on LP64, 32 on ILP32: the union
/// is at most 24 bytes, and the kernel copies `sizeof(struct ifreq)`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct IfReq {
    name: [libc::c_char; IFNAMSIZ],
    data: [u64; 3],
}

impl IfReq {
    /// A request naming `ifname`; fails when the name is empty, too long or holds a NUL.
    pub(super) fn new(ifname: &str) -> Result<Self, BackendError> {
        let bytes = ifname.as_bytes();
        if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
            return Err(BackendError::NoInterface(ifname.to_owned()));
        }
        let mut name = [0 as libc::c_char; IFNAMSIZ];
        for (d, s) in name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        Ok(Self { name, data: [0; 3] })
    }

    fn data_bytes(&self) -> [u8; 4] {
        let b = self.data[0].to_ne_bytes();
        [b[0], b[1], b[2], b[3]]
    }
}

/// `setsockopt(fd, level, name, &value, sizeof value)`.
pub(super) fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised `T` of exactly the length passed, which
    // the kernel only reads for the duration of the call; `fd` is an open descriptor.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt` of a plain-data `T` (every bit pattern valid).
pub(super) fn getsockopt<T: Copy + Default>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
) -> io::Result<T> {
    let mut value = T::default();
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: `value` is a live `T` and `len` its exact size; the kernel writes at most `len`
    // bytes. Callers use only integer-only `repr(C)` types, valid for any bytes written.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast::<c_void>(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs an `ifreq` ioctl on `fd` (resolved in the socket's network namespace).
fn ifreq_ioctl(fd: BorrowedFd<'_>, request: libc::c_ulong, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: the three requests used here read the NUL-terminated name and write at most
    // `sizeof(struct ifreq)` bytes into `req`, a live, writable `IfReq` of that size.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, req as *mut IfReq) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The interface's index.
pub(super) fn if_index(fd: BorrowedFd<'_>, name: &IfReq) -> io::Result<c_int> {
    let mut req = *name;
    ifreq_ioctl(fd, SIOCGIFINDEX, &mut req)?;
    Ok(c_int::from_ne_bytes(req.data_bytes()))
}

/// The interface's MTU (layer 3 bytes).
pub(super) fn if_mtu(fd: BorrowedFd<'_>, name: &IfReq) -> io::Result<usize> {
    let mut req = *name;
    ifreq_ioctl(fd, SIOCGIFMTU, &mut req)?;
    Ok(usize::try_from(c_int::from_ne_bytes(req.data_bytes())).unwrap_or(0))
}

/// The interface's flags (`IFF_*`).
pub(super) fn if_flags(fd: BorrowedFd<'_>, name: &IfReq) -> io::Result<i16> {
    let mut req = *name;
    ifreq_ioctl(fd, SIOCGIFFLAGS, &mut req)?;
    let b = req.data_bytes();
    Ok(i16::from_ne_bytes([b[0], b[1]]))
}

/// Wraps an OS error with the name of the failed operation.
pub(super) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> BackendError {
    move |source| BackendError::Sys { op, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_sizes_match_the_kernel_headers() {
        assert_eq!(size_of::<Tpacket2Hdr>(), 32);
        assert_eq!(TPACKET2_HDR_ALIGNED, 32);
        assert_eq!(TPACKET2_HDRLEN, 52);
        assert_eq!(size_of::<TpacketReq>(), 16);
        assert_eq!(size_of::<PacketMreq>(), 16);
        assert_eq!(size_of::<libc::sockaddr_ll>(), 20);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size_of::<IfReq>(), 40);
    }

    #[test]
    fn ifreq_rejects_bad_names() {
        assert!(IfReq::new("").is_err());
        assert!(IfReq::new("a-very-long-name0").is_err());
        assert!(IfReq::new("a\0b").is_err());
        assert!(IfReq::new("veth0").is_ok());
    }
}
