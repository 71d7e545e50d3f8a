//! IPv6 routes as rtnetlink carries them (`struct rtmsg` + `RTA_*` attributes).

use std::net::Ipv6Addr;

use crate::msg::{self, Builder, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_TABLE, RTMSG};
use crate::{Result, RtnlError};

/// `AF_INET6`.
const AF_INET6: u8 = 10;
/// `RT_TABLE_MAIN`.
pub(crate) const TABLE_MAIN: u32 = 254;
/// `RTN_UNICAST`.
const RTN_UNICAST: u8 = 1;
/// `RT_SCOPE_UNIVERSE`.
const SCOPE_UNIVERSE: u8 = 0;

/// One IPv6 unicast route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination prefix (host bits are the caller's business: the kernel refuses them).
    pub dst: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// Outgoing interface index (0: none given).
    pub oif: u32,
    /// Next hop, `None` for a device route.
    pub gateway: Option<Ipv6Addr>,
    /// The `rtm_protocol` (who installed it: 2 kernel, 3 boot, 4 static, 12 bird, ...).
    pub protocol: u8,
    /// The metric (`RTA_PRIORITY`; lower wins).
    pub metric: u32,
    /// The table (254: main).
    pub table: u32,
}

impl Route {
    /// A device route to `dst/prefix_len` out of `oif` in the main table.
    pub fn device(dst: Ipv6Addr, prefix_len: u8, oif: u32, protocol: u8, metric: u32) -> Self {
        Self {
            dst,
            prefix_len,
            oif,
            gateway: None,
            protocol,
            metric,
            table: TABLE_MAIN,
        }
    }

    /// The request adding (`RTM_NEWROUTE`) or deleting (`RTM_DELROUTE`) this route.
    pub(crate) fn request(&self, kind: u16, flags: u16, seq: u32) -> Result<Vec<u8>> {
        if self.prefix_len > 128 {
            return Err(RtnlError::Invalid(format!(
                "prefix length {} > 128",
                self.prefix_len
            )));
        }
        let mut b = Builder::new(kind, flags, seq);
        let table8 = u8::try_from(self.table).unwrap_or(0);
        b.raw(&[
            AF_INET6,
            self.prefix_len,
            0,
            0,
            table8,
            self.protocol,
            SCOPE_UNIVERSE,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ]);
        b.attr(RTA_TABLE, &self.table.to_ne_bytes());
        if self.prefix_len > 0 {
            b.attr(RTA_DST, &self.dst.octets());
        }
        if self.oif != 0 {
            b.attr(RTA_OIF, &self.oif.to_ne_bytes());
        }
        if let Some(g) = self.gateway {
            b.attr(RTA_GATEWAY, &g.octets());
        }
        b.attr(RTA_PRIORITY, &self.metric.to_ne_bytes());
        Ok(b.finish())
    }

    /// Parses the body of an `RTM_NEWROUTE` / `RTM_DELROUTE`; `None` for another family or
    /// type than IPv6 unicast.
    pub(crate) fn parse(body: &[u8]) -> Result<Option<Self>> {
        let h = body.get(..RTMSG).ok_or(RtnlError::Malformed("rtmsg"))?;
        if h[0] != AF_INET6 || h[7] != RTN_UNICAST {
            return Ok(None);
        }
        let mut r = Route {
            dst: Ipv6Addr::UNSPECIFIED,
            prefix_len: h[1],
            oif: 0,
            gateway: None,
            protocol: h[5],
            metric: 0,
            table: u32::from(h[4]),
        };
        for (kind, v) in msg::attrs(body, RTMSG)? {
            match kind {
                RTA_DST => r.dst = addr(v)?,
                RTA_GATEWAY => r.gateway = Some(addr(v)?),
                RTA_OIF => r.oif = msg::u32_at(v, 0).ok_or(RtnlError::Malformed("RTA_OIF"))?,
                RTA_PRIORITY => {
                    r.metric = msg::u32_at(v, 0).ok_or(RtnlError::Malformed("RTA_PRIORITY"))?
                }
                RTA_TABLE => {
                    r.table = msg::u32_at(v, 0).ok_or(RtnlError::Malformed("RTA_TABLE"))?
                }
                _ => {}
            }
        }
        Ok(Some(r))
    }
}

fn addr(v: &[u8]) -> Result<Ipv6Addr> {
    let o: [u8; 16] = v
        .get(..16)
        .and_then(|s| s.try_into().ok())
        .ok_or(RtnlError::Malformed("IPv6 address attribute"))?;
    Ok(Ipv6Addr::from(o))
}

/// A change the kernel notified ([`crate::RouteMonitor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEvent {
    /// `RTM_NEWROUTE`: added or replaced.
    Added(Route),
    /// `RTM_DELROUTE`: removed.
    Removed(Route),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{messages, F_REQUEST, RTM_NEWROUTE};

    #[test]
    fn a_route_request_parses_back_to_the_same_route() {
        let r = Route {
            gateway: Some("fe80::1".parse().unwrap()),
            ..Route::device("fc00::".parse().unwrap(), 7, 9, 250, 100)
        };
        let m = r.request(RTM_NEWROUTE, F_REQUEST, 1).unwrap();
        let v = messages(&m).unwrap();
        assert_eq!(Route::parse(v[0].body).unwrap(), Some(r));
    }

    #[test]
    fn a_default_route_carries_no_destination_and_a_long_prefix_is_refused() {
        let r = Route::device(Ipv6Addr::UNSPECIFIED, 0, 2, 250, 200);
        let m = r.request(RTM_NEWROUTE, F_REQUEST, 1).unwrap();
        let v = messages(&m).unwrap();
        let a = msg::attrs(v[0].body, RTMSG).unwrap();
        assert!(a.iter().all(|(k, _)| *k != RTA_DST));
        assert_eq!(Route::parse(v[0].body).unwrap(), Some(r));
        let bad = Route::device(Ipv6Addr::UNSPECIFIED, 129, 2, 250, 200);
        assert!(matches!(
            bad.request(RTM_NEWROUTE, F_REQUEST, 1),
            Err(RtnlError::Invalid(_))
        ));
    }

    #[test]
    fn ipv4_and_non_unicast_routes_are_skipped() {
        let mut body = vec![2u8, 24, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0];
        assert_eq!(Route::parse(&body).unwrap(), None, "AF_INET");
        body[0] = AF_INET6;
        body[7] = 2; // RTN_LOCAL
        assert_eq!(Route::parse(&body).unwrap(), None);
        assert!(Route::parse(&body[..5]).is_err());
    }
}
