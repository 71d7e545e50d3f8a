//! AF_PACKET backend (Linux): the default way to own an interface when DPDK is not built.
//!
//! One packet socket per (interface, worker), each with its own mmap'd RX and TX ring, joined
//! in a `PACKET_FANOUT_HASH` group so the kernel spreads flows across the workers the way RSS
//! would (each flow stays on one socket, so per-flow order holds).
//!
//! Choices, and why:
//! - **TPACKET_V2, not V3.** V3 hands frames over in blocks that the kernel retires when full
//!   or when a timer (≥ 1 ms) fires: at low rates a busy-polling worker would wait for that
//!   timer, adding latency to SHIM6 control traffic and REAP probes. V2 hands over each frame
//!   as soon as it lands, which is what a worker polling in bursts of 32 wants; V3's memory
//!   savings matter little with 2 KiB slots. DPDK's `net_af_packet` makes the same choice.
//! - **A TX ring** (V2 frames), kicked once per burst with a non-blocking `sendto`: one system
//!   call per burst instead of one per frame (`sendmmsg` would still build one skb per frame
//!   from user memory; the ring lets the kernel read frames in place).
//! - **Copies.** A received frame is copied from the ring into a pooled [`HeapBuf`] and a
//!   transmitted one from its `HeapBuf` into the TX ring. Zero-copy would tie buffer lifetimes
//!   to ring slots (the fast path may hold a frame while a handshake completes); a copy of a
//!   cache-hot frame costs far less than the syscall-free I/O saves, and DPDK is the path for
//!   line rate.
//! - `PACKET_IGNORE_OUTGOING` keeps a socket from reading back what this host sends on the
//!   interface (our own TX ring included); frames marked `PACKET_OUTGOING` are skipped as
//!   well, for kernels older than 4.20.
//! - Promiscuous mode through `PACKET_ADD_MEMBERSHIP` (refcounted by the kernel and dropped
//!   when the socket closes, so a crash leaves the interface as it was).
//! - Non-blocking sockets: workers busy-poll the ring's status words and make no system call
//!   on receive.
//!
//! A note for whoever wires this up: sockets receive every frame from `bind` until they join
//! the fanout group, so the first few frames after [`open`] may be seen by more than one
//! queue. Workers should start polling after `open` returns.

mod ring;
mod sys;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use ring::{Geometry, Mmap, Ring};
use sys::{sys, IfReq};

use super::{BackendError, BufPool};
use crate::buf::HeapBuf;
use crate::io::{LinkProbe, LinkReport, PortQueue, QueueStats};

/// Sizes and switches of the sockets [`open`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Sockets (queues, one per worker) on the interface; more than one joins a fanout group.
    pub queues: usize,
    /// Bytes per ring slot, a multiple of 16. A received frame must fit after the ~66-byte
    /// slot header: 2048 carries a 1500-byte MTU with VLAN tags; use 16384 for 9000.
    pub frame_size: usize,
    /// Slots in each RX ring (rounded up to whole pages).
    pub rx_frames: usize,
    /// Slots in each TX ring (rounded up to whole pages).
    pub tx_frames: usize,
    /// `SO_RCVBUF`/`SO_SNDBUF` in bytes (forced past the sysctl limits when running as root).
    pub socket_buffer: usize,
    /// Put the interface in promiscuous mode (the appliance owns it: it forwards frames not
    /// addressed to its own MAC when acting as a bump in the wire).
    pub promiscuous: bool,
    /// Send with `PACKET_QDISC_BYPASS` (faster, but no traffic shaping on the interface).
    pub qdisc_bypass: bool,
    /// Fanout group id; `None` lets the kernel pick an unused one.
    pub fanout_group: Option<u16>,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        Self {
            queues: 1,
            frame_size: 2048,
            rx_frames: 4096,
            tx_frames: 1024,
            socket_buffer: 4 << 20,
            promiscuous: true,
            qdisc_bypass: false,
            fanout_group: None,
        }
    }
}

/// Opens `cfg.queues` sockets on `ifname` (in the calling thread's network namespace), with
/// buffers taken from `pool`. Needs `CAP_NET_RAW`.
pub fn open(
    ifname: &str,
    cfg: &AfPacketConfig,
    pool: &Arc<BufPool>,
) -> Result<Vec<AfPacketQueue>, BackendError> {
    if cfg.queues == 0 || cfg.queues > 1024 {
        return Err(BackendError::Config(
            "AF_PACKET queue count must be in 1..=1024",
        ));
    }
    let mut queues = Vec::with_capacity(cfg.queues);
    let mut group = cfg.fanout_group;
    for _ in 0..cfg.queues {
        let mut q = AfPacketQueue::open(ifname, cfg, pool)?;
        if cfg.queues > 1 {
            let id = q.join_fanout(group)?;
            group = Some(id);
        }
        queues.push(q);
    }
    Ok(queues)
}

/// One AF_PACKET socket with its RX and TX rings: the [`PortQueue`] of one worker on one
/// interface.
#[derive(Debug)]
pub struct AfPacketQueue {
    // Field order is drop order: the rings point into `map`, which is unmapped before `fd`
    // is closed.
    rx: Ring,
    tx: Ring,
    _map: Mmap,
    /// Shared (weakly) with the link probe, which must not keep the socket open once the
    /// queue is gone.
    fd: Arc<OwnedFd>,
    ifreq: IfReq,
    ifindex: i32,
    max_tx_frame: usize,
    fanout_group: Option<u16>,
    pool: Arc<BufPool>,
    stats: QueueStats,
    kernel_drops: Cell<u64>,
}

impl AfPacketQueue {
    fn open(ifname: &str, cfg: &AfPacketConfig, pool: &Arc<BufPool>) -> Result<Self, BackendError> {
        let ifreq = IfReq::new(ifname)?;
        // Protocol 0: the socket receives nothing until `bind` names the protocol, so the
        // rings can be set up without frames from every interface rushing in first.
        // SAFETY: plain socket(2) call; the returned descriptor is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(sys("socket(AF_PACKET)")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a freshly opened descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ifindex = sys::if_index(fd.as_fd(), &ifreq).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => BackendError::NoInterface(ifname.to_owned()),
            _ => sys("ioctl(SIOCGIFINDEX)")(e),
        })?;
        let mtu = sys::if_mtu(fd.as_fd(), &ifreq).map_err(sys("ioctl(SIOCGIFMTU)"))?;

        let one: libc::c_int = 1;
        sys::setsockopt(
            fd.as_fd(),
            sys::SOL_PACKET,
            sys::PACKET_VERSION,
            &sys::TPACKET_V2,
        )
        .map_err(sys("setsockopt(PACKET_VERSION)"))?;
        // Without PACKET_LOSS one malformed frame stalls the TX ring in WRONG_FORMAT.
        sys::setsockopt(fd.as_fd(), sys::SOL_PACKET, sys::PACKET_LOSS, &one)
            .map_err(sys("setsockopt(PACKET_LOSS)"))?;
        if cfg.qdisc_bypass {
            sys::setsockopt(fd.as_fd(), sys::SOL_PACKET, sys::PACKET_QDISC_BYPASS, &one)
                .map_err(sys("setsockopt(PACKET_QDISC_BYPASS)"))?;
        }
        // Older kernels lack it (ENOPROTOOPT); rx_burst filters PACKET_OUTGOING anyway.
        let _ = sys::setsockopt(
            fd.as_fd(),
            sys::SOL_PACKET,
            sys::PACKET_IGNORE_OUTGOING,
            &one,
        );
        set_buffer(
            &fd,
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            cfg.socket_buffer,
        )?;
        set_buffer(
            &fd,
            libc::SO_SNDBUFFORCE,
            libc::SO_SNDBUF,
            cfg.socket_buffer,
        )?;

        let page = page_size();
        let rx_geo = Geometry::new(cfg.frame_size, cfg.rx_frames, page)?;
        let tx_geo = Geometry::new(cfg.frame_size, cfg.tx_frames, page)?;
        sys::setsockopt(
            fd.as_fd(),
            sys::SOL_PACKET,
            sys::PACKET_RX_RING,
            &rx_geo.request()?,
        )
        .map_err(sys("setsockopt(PACKET_RX_RING)"))?;
        sys::setsockopt(
            fd.as_fd(),
            sys::SOL_PACKET,
            sys::PACKET_TX_RING,
            &tx_geo.request()?,
        )
        .map_err(sys("setsockopt(PACKET_TX_RING)"))?;
        let map = Mmap::new(fd.as_fd(), rx_geo.bytes() + tx_geo.bytes())?;
        let rx = Ring::new(&map, 0, rx_geo)?;
        let tx = Ring::new(&map, rx_geo.bytes(), tx_geo)?;

        bind(&fd, ifindex)?;
        if cfg.promiscuous {
            let mreq = sys::PacketMreq {
                mr_ifindex: ifindex,
                mr_type: sys::PACKET_MR_PROMISC,
                ..Default::default()
            };
            sys::setsockopt(
                fd.as_fd(),
                sys::SOL_PACKET,
                sys::PACKET_ADD_MEMBERSHIP,
                &mreq,
            )
            .map_err(sys("setsockopt(PACKET_ADD_MEMBERSHIP)"))?;
        }
        // Ethernet header plus one VLAN tag over the MTU, and what fits in a TX slot.
        let max_tx_frame = (mtu + 14 + 4).min(cfg.frame_size - sys::TPACKET2_HDR_ALIGNED);
        Ok(Self {
            rx,
            tx,
            _map: map,
            fd: Arc::new(fd),
            ifreq,
            ifindex,
            max_tx_frame,
            fanout_group: None,
            pool: Arc::clone(pool),
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
        })
    }

    /// Joins fanout group `group` (or a new one the kernel picks) in hash mode; returns its id.
    fn join_fanout(&mut self, group: Option<u16>) -> Result<u16, BackendError> {
        let arg: u32 = match group {
            Some(id) => u32::from(id) | (sys::PACKET_FANOUT_HASH << 16),
            None => (sys::PACKET_FANOUT_HASH | sys::PACKET_FANOUT_FLAG_UNIQUEID) << 16,
        };
        sys::setsockopt(self.fd.as_fd(), sys::SOL_PACKET, sys::PACKET_FANOUT, &arg)
            .map_err(sys("setsockopt(PACKET_FANOUT)"))?;
        let got: u32 = sys::getsockopt(self.fd.as_fd(), sys::SOL_PACKET, sys::PACKET_FANOUT)
            .map_err(sys("getsockopt(PACKET_FANOUT)"))?;
        let id = (got & 0xffff) as u16;
        self.fanout_group = Some(id);
        Ok(id)
    }

    /// Index of the interface this queue is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The fanout group this queue belongs to (`None` for a single queue).
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }

    /// Largest frame [`PortQueue::tx_burst`] sends, VLAN tag included (4 bytes less for an
    /// untagged frame); larger ones are dropped and counted.
    pub fn max_tx_frame(&self) -> usize {
        self.max_tx_frame
    }

    /// Asks the kernel again to send frames left in the TX ring by an earlier burst (after
    /// `ENOBUFS`, or while the interface was down). [`PortQueue::tx_burst`] does this itself
    /// whenever it is given frames; an idle worker can call this instead.
    pub fn flush(&self) {
        self.kick();
    }

    /// Copies the frame under the RX cursor into a pooled buffer, or counts why not.
    #[inline]
    fn receive(&mut self, frame: &ring::Frame, status: u32) -> Option<HeapBuf> {
        if frame.pkttype() == sys::PACKET_OUTGOING {
            return None;
        }
        let hdr = frame.header();
        let data = match frame.bytes(usize::from(hdr.tp_mac), hdr.tp_snaplen as usize) {
            Some(d) if hdr.tp_snaplen == hdr.tp_len => d,
            // Larger than a slot (truncated) or a header pointing outside the slot.
            _ => {
                self.stats.rx_dropped += 1;
                return None;
            }
        };
        let Some(mut buf) = self.pool.alloc() else {
            self.stats.rx_dropped += 1;
            return None;
        };
        // The kernel moves a VLAN tag the driver stripped into the header: put it back, so
        // the frame is what was on the wire.
        let tag = (status & sys::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & sys::TP_STATUS_VLAN_TPID_VALID != 0 && hdr.tp_vlan_tpid != 0 {
                hdr.tp_vlan_tpid
            } else {
                0x8100
            };
            (tpid, hdr.tp_vlan_tci)
        });
        let len = data.len() + if tag.is_some() { 4 } else { 0 };
        let copied = match (buf.spare_mut().get_mut(..len), tag) {
            (Some(dst), None) => {
                dst.copy_from_slice(data);
                true
            }
            (Some(dst), Some((tpid, tci))) => match (data.get(..12), data.get(12..)) {
                (Some(macs), Some(rest)) => {
                    let (head, tail) = dst.split_at_mut(16);
                    head[..12].copy_from_slice(macs);
                    head[12..14].copy_from_slice(&tpid.to_be_bytes());
                    head[14..16].copy_from_slice(&tci.to_be_bytes());
                    tail.copy_from_slice(rest);
                    true
                }
                _ => false,
            },
            (None, _) => false,
        };
        if !copied || buf.set_len(len).is_err() {
            self.stats.rx_dropped += 1;
            self.pool.free(buf);
            return None;
        }
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += len as u64;
        Some(buf)
    }

    /// Asks the kernel to send every frame marked SEND_REQUEST. Errors leave the frames
    /// marked, so the next kick retries them (e.g. after `ENOBUFS` or while the interface is
    /// down); what no longer fits in the ring meanwhile is dropped and counted.
    #[inline]
    fn kick(&self) {
        // SAFETY: sendto(2) with no buffer and no address, the documented way to flush a
        // packet socket's TX ring; `fd` is open for the lifetime of `self`.
        let _ = unsafe {
            libc::sendto(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
    }
}

impl PortQueue for AfPacketQueue {
    type Buf = HeapBuf;

    fn rx_burst(&mut self, out: &mut Vec<HeapBuf>, max: usize) -> usize {
        let mut n = 0;
        // Bounded by one lap of the ring even if most frames are skipped.
        let mut budget = self.rx.len();
        while n < max && budget > 0 {
            budget -= 1;
            let frame = self.rx.current();
            let status = frame.status();
            if status & sys::TP_STATUS_USER == 0 {
                break;
            }
            if let Some(buf) = self.receive(&frame, status) {
                out.push(buf);
                n += 1;
            }
            frame.set_status(sys::TP_STATUS_KERNEL);
            self.rx.advance();
        }
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<HeapBuf>) -> usize {
        if pkts.is_empty() {
            return 0;
        }
        let mut queued = 0usize;
        for buf in pkts.drain(..) {
            let data = buf.as_ref();
            let mut frame = self.tx.current();
            let status = frame.status();
            let fits = tx_fits(data, self.max_tx_frame);
            let slot_free =
                status == sys::TP_STATUS_AVAILABLE || status == sys::TP_STATUS_WRONG_FORMAT;
            let dst = if fits && slot_free {
                frame.bytes_mut(sys::TPACKET2_HDR_ALIGNED, data.len())
            } else {
                None
            };
            match dst {
                Some(dst) => {
                    dst.copy_from_slice(data);
                    frame.set_tx_len(data.len() as u32);
                    frame.set_status(sys::TP_STATUS_SEND_REQUEST);
                    self.tx.advance();
                    queued += 1;
                    self.stats.tx_bytes += data.len() as u64;
                }
                // Ring full (the kernel still owns the slot) or a frame that cannot be sent.
                None => self.stats.tx_dropped += 1,
            }
            self.pool.free(buf);
        }
        // Kick even when nothing was queued: a full ring may hold frames an earlier kick
        // could not send.
        self.kick();
        self.stats.tx_packets += queued as u64;
        queued
    }

    fn alloc(&mut self) -> Option<HeapBuf> {
        self.pool.alloc()
    }

    fn free(&mut self, buf: HeapBuf) {
        self.pool.free(buf);
    }

    /// Includes the kernel's own drop count (`PACKET_STATISTICS`, ring overruns) in
    /// `rx_dropped`; reading it is a system call, fine off the hot path.
    fn stats(&self) -> QueueStats {
        self.kernel_drops
            .set(self.kernel_drops.get() + kernel_drops(&self.fd));
        let mut s = self.stats;
        s.rx_dropped += self.kernel_drops.get();
        s
    }

    /// Up when the interface is administratively up and has carrier (`IFF_UP` and
    /// `IFF_RUNNING`); `None` if the flags cannot be read (interface gone).
    fn link_up(&self) -> Option<bool> {
        link_up(&self.fd, &self.ifreq)
    }

    /// The interface flags (an ioctl) and the kernel's drop count (a getsockopt), read by
    /// the slow path instead of the worker. The probe holds the socket weakly: once the
    /// queue is dropped it reports nothing.
    fn link_probe(&self) -> Option<LinkProbe> {
        let fd = Arc::downgrade(&self.fd);
        let ifreq = self.ifreq;
        Some(Box::new(move || {
            let Some(fd) = fd.upgrade() else {
                return LinkReport::default();
            };
            LinkReport {
                up: link_up(&fd, &ifreq),
                rx_dropped: kernel_drops(&fd),
            }
        }))
    }

    /// The queue's own counters: no `PACKET_STATISTICS` read (the link probe reports the
    /// kernel's drops).
    fn local_stats(&self) -> QueueStats {
        self.stats
    }
}

/// Up when the interface is administratively up and has carrier (`IFF_UP` and
/// `IFF_RUNNING`); `None` if the flags cannot be read (interface gone).
fn link_up(fd: &OwnedFd, ifreq: &IfReq) -> Option<bool> {
    let flags = sys::if_flags(fd.as_fd(), ifreq).ok()?;
    Some(flags & sys::IFF_UP != 0 && flags & sys::IFF_RUNNING != 0)
}

/// Frames the kernel dropped since the previous read (`PACKET_STATISTICS` resets on read).
fn kernel_drops(fd: &OwnedFd) -> u64 {
    sys::getsockopt::<sys::TpacketStats>(fd.as_fd(), sys::SOL_PACKET, sys::PACKET_STATISTICS)
        .map_or(0, |k| u64::from(k.tp_drops))
}

/// Whether the kernel will send `frame`: at most MTU + Ethernet header, plus 4 bytes when
/// it carries a VLAN tag (`max` allows for the tag), and at least an Ethernet header.
#[inline]
fn tx_fits(frame: &[u8], max: usize) -> bool {
    let tagged = matches!(frame.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8]));
    let limit = if tagged { max } else { max.saturating_sub(4) };
    frame.len() >= 14 && frame.len() <= limit
}

/// Binds the socket to every protocol on interface `ifindex`.
fn bind(fd: &OwnedFd, ifindex: i32) -> Result<(), BackendError> {
    // SAFETY: `sockaddr_ll` is plain integers; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a live, initialised `sockaddr_ll` and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            (&addr as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(sys("bind(AF_PACKET)")(io::Error::last_os_error()))
    }
}

/// Sets a socket buffer size, forcing past `net.core.*mem_max` when allowed (root).
fn set_buffer(
    fd: &OwnedFd,
    force: libc::c_int,
    plain: libc::c_int,
    bytes: usize,
) -> Result<(), BackendError> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    if sys::setsockopt(fd.as_fd(), libc::SOL_SOCKET, force, &v).is_ok() {
        return Ok(());
    }
    sys::setsockopt(fd.as_fd(), libc::SOL_SOCKET, plain, &v).map_err(sys("setsockopt(SO_*BUF)"))
}

/// The system page size (rings are made of whole pages).
fn page_size() -> usize {
    // SAFETY: sysconf(3) has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_size_limit_allows_a_vlan_tag_only_on_tagged_frames() {
        let mut f = vec![0u8; 1518];
        assert!(!tx_fits(&f, 1518));
        assert!(tx_fits(&f[..1514], 1518));
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(tx_fits(&f, 1518));
        assert!(!tx_fits(&f[..13], 1518));
        assert!(!tx_fits(&[], 1518));
    }
}
