//! Non-persistent TAP devices ([Linux tuntap]): `open("/dev/net/tun")` + `TUNSETIFF`, no
//! `TUNSETPERSIST`. The device lives as long as the descriptor: when the process exits, even
//! by SIGKILL, the kernel deletes it and every route through it. Routes installed on such a
//! device are announcements that cannot outlive their owner.
//!
//! [Linux tuntap]: https://www.kernel.org/doc/html/latest/networking/tuntap.html

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::{Result, RtnlError};

/// `TUNSETIFF` (`_IOW('T', 202, int)`).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `IFF_TAP`.
const IFF_TAP: libc::c_short = 0x0002;
/// `IFF_NO_PI`.
const IFF_NO_PI: libc::c_short = 0x1000;

/// `struct ifreq` as `TUNSETIFF` reads it: the name, then the flags (40 bytes in all).
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A TAP device held open by this process. Nobody reads it: frames the kernel sends to it
/// (its own neighbour discovery) wait in its queue and are dropped when it is full.
#[derive(Debug)]
pub struct Tap {
    /// Held, never read: closing it deletes the device.
    _fd: OwnedFd,
    name: String,
    index: u32,
}

impl Tap {
    /// Creates device `name` (at most 15 bytes) in the calling thread's namespace. Fails with
    /// `EBUSY` if another process holds a device of that name.
    pub fn create(name: &str) -> Result<Self> {
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
            return Err(RtnlError::Invalid(format!(
                "interface name `{name}`: 1 to 15 bytes, no '/', space or NUL"
            )));
        }
        // SAFETY: the path is a NUL-terminated literal.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(RtnlError::last_os("open(/dev/net/tun)"));
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReq {
            name: [0; 16],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
        if rc < 0 {
            return Err(RtnlError::last_os(format!("TUNSETIFF {name}")));
        }
        let cname = std::ffi::CString::new(name)
            .map_err(|_| RtnlError::Invalid(format!("interface name `{name}`")))?;
        // SAFETY: `cname` is NUL-terminated.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(RtnlError::last_os(format!("if_nametoindex({name})")));
        }
        Ok(Self {
            _fd: fd,
            name: name.to_string(),
            index,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's interface index.
    pub fn index(&self) -> u32 {
        self.index
    }
}
