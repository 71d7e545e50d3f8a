//! Netlink route sockets: [`Rtnl`] for requests (each acknowledged), [`RouteMonitor`] for the
//! kernel's IPv6 route notifications.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::msg::{
    self, Builder, F_ACK, F_CREATE, F_DUMP, F_REPLACE, F_REQUEST, IFINFOMSG, NLMSG_DONE,
    NLMSG_ERROR, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWLINK, RTM_NEWROUTE,
};
use crate::route::{Route, RouteEvent};
use crate::{Result, RtnlError};

/// Receive buffer: a dump datagram is at most a page or two; 64 KiB leaves room.
const RECV_BUF: usize = 64 * 1024;
/// How long a request waits for the kernel's answer before giving up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// `RTMGRP_IPV6_ROUTE`.
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
/// `IFF_UP`.
const IFF_UP: u32 = 0x1;

fn open(groups: u32, timeout: Duration) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(RtnlError::last_os("socket(AF_NETLINK, NETLINK_ROUTE)"));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; zero is a valid value for every field.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = groups;
    // SAFETY: `sa` is a valid sockaddr_nl of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(RtnlError::last_os("bind(AF_NETLINK)"));
    }
    set_timeout(&fd, timeout)?;
    Ok(fd)
}

fn set_timeout(fd: &OwnedFd, t: Duration) -> Result<()> {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(t.subsec_micros()),
    };
    // SAFETY: `tv` is a valid timeval of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    if rc < 0 {
        return Err(RtnlError::last_os("setsockopt(SO_RCVTIMEO)"));
    }
    Ok(())
}

/// One datagram into `buf`; `Ok(None)` on timeout.
fn recv(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<usize>> {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Ok(None),
            std::io::ErrorKind::Interrupted => Ok(Some(0)),
            _ => Err(RtnlError::Io {
                what: "recv(AF_NETLINK)".into(),
                source: e,
            }),
        };
    }
    Ok(Some(n as usize))
}

/// A request socket. Every call sends one request and waits (at most 2 s) for its answer:
/// meant for a housekeeping thread, never a worker.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        Ok(Self {
            fd: open(0, REPLY_TIMEOUT)?,
            seq: 1,
            buf: vec![0; RECV_BUF],
        })
    }

    fn send(&mut self, req: &[u8], what: &str) -> Result<()> {
        // SAFETY: `req` is readable for its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if n < 0 {
            return Err(RtnlError::last_os(format!("send({what})")));
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `req` (built with sequence `seq`, `NLM_F_ACK`) and waits for its ack.
    fn acked(&mut self, req: &[u8], seq: u32, what: &str) -> Result<()> {
        self.send(req, what)?;
        loop {
            let Some(n) = recv(&self.fd, &mut self.buf)? else {
                return Err(RtnlError::Io {
                    what: format!("{what}: no answer within {REPLY_TIMEOUT:?}"),
                    source: std::io::ErrorKind::TimedOut.into(),
                });
            };
            for m in msg::messages(&self.buf[..n])? {
                if m.seq != seq || m.kind != NLMSG_ERROR {
                    continue;
                }
                let code = msg::error_code(m.body)?;
                return if code == 0 {
                    Ok(())
                } else {
                    Err(RtnlError::Refused {
                        what: what.into(),
                        source: std::io::Error::from_raw_os_error(-code),
                    })
                };
            }
        }
    }

    /// Adds `route`, replacing one with the same destination, table and metric.
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        let seq = self.next_seq();
        let req = route.request(RTM_NEWROUTE, F_REQUEST | F_ACK | F_CREATE | F_REPLACE, seq)?;
        self.acked(
            &req,
            seq,
            &format!("adding {}/{}", route.dst, route.prefix_len),
        )
    }

    /// Deletes `route` (matched on destination, table, metric, protocol and interface).
    pub fn delete_route(&mut self, route: &Route) -> Result<()> {
        let seq = self.next_seq();
        let req = route.request(RTM_DELROUTE, F_REQUEST | F_ACK, seq)?;
        self.acked(
            &req,
            seq,
            &format!("deleting {}/{}", route.dst, route.prefix_len),
        )
    }

    /// Every IPv6 unicast route of every table.
    pub fn dump_routes(&mut self) -> Result<Vec<Route>> {
        let seq = self.next_seq();
        let mut b = Builder::new(RTM_GETROUTE, F_REQUEST | F_DUMP, seq);
        b.raw(&[10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        self.send(&b.finish(), "dumping routes")?;
        let mut out = Vec::new();
        loop {
            let Some(n) = recv(&self.fd, &mut self.buf)? else {
                return Err(RtnlError::Io {
                    what: format!("dumping routes: no end within {REPLY_TIMEOUT:?}"),
                    source: std::io::ErrorKind::TimedOut.into(),
                });
            };
            for m in msg::messages(&self.buf[..n])? {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = msg::error_code(m.body)?;
                        return Err(RtnlError::Refused {
                            what: "dumping routes".into(),
                            source: std::io::Error::from_raw_os_error(-code),
                        });
                    }
                    RTM_NEWROUTE => out.extend(Route::parse(m.body)?),
                    _ => {}
                }
            }
        }
    }

    /// Brings interface `index` up (`RTM_NEWLINK`, `IFF_UP`).
    pub fn set_link_up(&mut self, index: u32) -> Result<()> {
        let seq = self.next_seq();
        let mut b = Builder::new(RTM_NEWLINK, F_REQUEST | F_ACK, seq);
        let mut h = [0u8; IFINFOMSG];
        h[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
        h[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        h[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
        b.raw(&h);
        self.acked(&b.finish(), seq, &format!("bringing up interface {index}"))
    }
}

/// The kernel's IPv6 route notifications (`RTMGRP_IPV6_ROUTE`): every route added, replaced
/// or removed in the thread's namespace, by anyone (BIRD, `ip route`, a device going away).
#[derive(Debug)]
pub struct RouteMonitor {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl RouteMonitor {
    /// Subscribes; [`RouteMonitor::recv`] waits at most `timeout` per call.
    pub fn open(timeout: Duration) -> Result<Self> {
        Ok(Self {
            fd: open(RTMGRP_IPV6_ROUTE, timeout)?,
            buf: vec![0; RECV_BUF],
        })
    }

    /// The events of the next datagram (empty on timeout). An `ENOBUFS` error means the
    /// socket overflowed and events were lost: dump the table again ([`Rtnl::dump_routes`]).
    pub fn recv(&mut self) -> Result<Vec<RouteEvent>> {
        let Some(n) = recv(&self.fd, &mut self.buf)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for m in msg::messages(&self.buf[..n])? {
            match m.kind {
                RTM_NEWROUTE => out.extend(Route::parse(m.body)?.map(RouteEvent::Added)),
                RTM_DELROUTE => out.extend(Route::parse(m.body)?.map(RouteEvent::Removed)),
                _ => {}
            }
        }
        Ok(out)
    }
}
