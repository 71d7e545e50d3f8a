//! Netlink message layout ([rtnetlink(7)], `linux/netlink.h`, `linux/rtnetlink.h`): a
//! 16-byte `nlmsghdr`, a fixed family header (`rtmsg`, `ifinfomsg`), then attributes
//! (`rtattr`: length, type, value, padded to 4 bytes). Native byte order throughout.
//!
//! [rtnetlink(7)]: https://man7.org/linux/man-pages/man7/rtnetlink.7.html

use crate::{Result, RtnlError};

/// `NLMSG_ERROR`: an ack (errno 0) or a refusal.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a dump.
pub(crate) const NLMSG_DONE: u16 = 3;
/// `RTM_NEWLINK`.
pub(crate) const RTM_NEWLINK: u16 = 16;
/// `RTM_NEWROUTE`.
pub(crate) const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub(crate) const RTM_DELROUTE: u16 = 25;
/// `RTM_GETROUTE`.
pub(crate) const RTM_GETROUTE: u16 = 26;

/// `NLM_F_REQUEST`.
pub(crate) const F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub(crate) const F_ACK: u16 = 0x4;
/// `NLM_F_REPLACE`.
pub(crate) const F_REPLACE: u16 = 0x100;
/// `NLM_F_CREATE`.
pub(crate) const F_CREATE: u16 = 0x400;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub(crate) const F_DUMP: u16 = 0x300;

/// `RTA_DST`.
pub(crate) const RTA_DST: u16 = 1;
/// `RTA_OIF`.
pub(crate) const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
pub(crate) const RTA_GATEWAY: u16 = 5;
/// `RTA_PRIORITY` (the route metric).
pub(crate) const RTA_PRIORITY: u16 = 6;
/// `RTA_TABLE` (32-bit table id).
pub(crate) const RTA_TABLE: u16 = 15;

/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDR: usize = 16;
/// Size of `struct rtmsg`.
pub(crate) const RTMSG: usize = 12;
/// Size of `struct ifinfomsg`.
pub(crate) const IFINFOMSG: usize = 16;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A request under construction: header first, length patched by [`Builder::finish`].
pub(crate) struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub(crate) fn new(kind: u16, flags: u16, seq: u32) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Self { buf }
    }

    /// Appends raw bytes (a family header), padded to 4.
    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// Appends one attribute.
    pub(crate) fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = (4 + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.raw(value)
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = (self.buf.len() as u32).to_ne_bytes();
        self.buf[..4].copy_from_slice(&len);
        self.buf
    }
}

/// One message of a datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) seq: u32,
    /// Everything after the `nlmsghdr`.
    pub(crate) body: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a received datagram into its messages.
pub(crate) fn messages(mut buf: &[u8]) -> Result<Vec<Message<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDR {
        let len = u32_at(buf, 0).ok_or(RtnlError::Malformed("header"))? as usize;
        if len < NLMSG_HDR || len > buf.len() {
            return Err(RtnlError::Malformed("message length"));
        }
        out.push(Message {
            kind: u16_at(buf, 4).ok_or(RtnlError::Malformed("header"))?,
            seq: u32_at(buf, 8).ok_or(RtnlError::Malformed("header"))?,
            body: &buf[NLMSG_HDR..len],
        });
        buf = buf.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// The errno of an `NLMSG_ERROR` body (0 for an ack).
pub(crate) fn error_code(body: &[u8]) -> Result<i32> {
    let v = u32_at(body, 0).ok_or(RtnlError::Malformed("error message"))?;
    Ok(v as i32)
}

/// The attributes after a fixed header of `skip` bytes: (type, value).
pub(crate) fn attrs(body: &[u8], skip: usize) -> Result<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    let mut b = body.get(align4(skip)..).unwrap_or(&[]);
    while b.len() >= 4 {
        let len = u16_at(b, 0).ok_or(RtnlError::Malformed("attribute"))? as usize;
        let kind = u16_at(b, 2).ok_or(RtnlError::Malformed("attribute"))?;
        if len < 4 || len > b.len() {
            return Err(RtnlError::Malformed("attribute length"));
        }
        // The top bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER.
        out.push((kind & 0x3fff, &b[4..len]));
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_message_splits_back_into_its_header_and_attributes() {
        let mut b = Builder::new(RTM_NEWROUTE, F_REQUEST | F_ACK, 7);
        b.raw(&[10, 64, 0, 0, 254, 250, 0, 1, 0, 0, 0, 0])
            .attr(RTA_OIF, &3u32.to_ne_bytes())
            .attr(RTA_DST, &[0xfc; 3]);
        let m = b.finish();
        assert_eq!(m.len(), 16 + 12 + 8 + 8, "the 3-byte attribute is padded");
        let v = messages(&m).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].kind, v[0].seq), (RTM_NEWROUTE, 7));
        let a = attrs(v[0].body, RTMSG).unwrap();
        assert_eq!(
            a,
            vec![
                (RTA_OIF, &3u32.to_ne_bytes()[..]),
                (RTA_DST, &[0xfc; 3][..])
            ]
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut b = Builder::new(RTM_NEWROUTE, F_REQUEST, 1);
        b.attr(RTA_DST, &[1; 16]);
        let m = b.finish();
        for cut in 0..m.len() {
            if let Ok(v) = messages(&m[..cut]) {
                for x in v {
                    let _ = attrs(x.body, 0);
                }
            }
        }
        let mut bad = m.clone();
        bad[0] = 200;
        assert!(messages(&bad).is_err());
        assert!(attrs(&[200, 0, 1, 0], 0).is_err());
    }
}
