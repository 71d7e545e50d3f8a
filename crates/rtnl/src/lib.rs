//! A small synchronous rtnetlink client ([rtnetlink(7)], [RFC 3549]) for the appliance's
//! housekeeping threads (never a worker): IPv6 routes ([`Rtnl`]: add, delete, dump), a route
//! monitor ([`RouteMonitor`]: the kernel's `RTMGRP_IPV6_ROUTE` notifications) and
//! non-persistent TAP devices ([`Tap`]) that carry routes which must live exactly as long as
//! the process holding them.
//!
//! Hand-written over `libc`: the few messages needed (`RTM_NEWROUTE`, `RTM_DELROUTE`,
//! `RTM_GETROUTE`, `RTM_NEWLINK` to bring a device up) are fixed C structs plus attributes.
//!
//! [rtnetlink(7)]: https://man7.org/linux/man-pages/man7/rtnetlink.7.html
//! [RFC 3549]: https://www.rfc-editor.org/rfc/rfc3549

mod msg;
mod route;
mod socket;
mod tap;

pub use route::{Route, RouteEvent};
pub use socket::{RouteMonitor, Rtnl};
pub use tap::Tap;

/// What can go wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    /// A system call failed (`what` names it).
    #[error("{what}: {source}")]
    Io {
        /// The call and its object.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The kernel refused a request (`NLMSG_ERROR` with a negative errno).
    #[error("{what}: the kernel refused: {source}")]
    Refused {
        /// The request.
        what: String,
        /// The errno the kernel returned.
        source: std::io::Error,
    },
    /// A reply did not parse.
    #[error("malformed netlink message: {0}")]
    Malformed(&'static str),
    /// An argument cannot be used (e.g. an interface name longer than 15 bytes).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl RtnlError {
    /// The errno of a refused request or failed call, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Io { source, .. } | Self::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    fn last_os(what: impl Into<String>) -> Self {
        Self::Io {
            what: what.into(),
            source: std::io::Error::last_os_error(),
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, RtnlError>;
