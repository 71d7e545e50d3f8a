//! Building the server's messages with `dhcproto` types
//! ([RFC 8415 §18.3](https://www.rfc-editor.org/rfc/rfc8415#section-18.3)).

use std::net::Ipv6Addr;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, Message, MessageType, OptionCode, Status, StatusCode, IANA,
    IAPD, IATA,
};

/// Lifetimes and renewal times of one IA_NA answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) t1: u32,
    pub(crate) t2: u32,
    pub(crate) preferred: u32,
    pub(crate) valid: u32,
}

/// A message of `msg_type` answering transaction `xid`, with our Server ID and the client's
/// Client ID when it sent one (RFC 8415 §16.10: only then).
pub(crate) fn answer(
    msg_type: MessageType,
    xid: [u8; 3],
    server_duid: &[u8],
    client_duid: Option<&[u8]>,
) -> Message {
    let mut m = Message::new_with_id(msg_type, xid);
    m.opts_mut()
        .insert(DhcpOption::ServerId(server_duid.to_vec()));
    if let Some(c) = client_duid {
        m.opts_mut().insert(DhcpOption::ClientId(c.to_vec()));
    }
    m
}

fn iaaddr(addr: Ipv6Addr, preferred: u32, valid: u32) -> DhcpOption {
    DhcpOption::IAAddr(IAAddr {
        addr,
        preferred_life: preferred,
        valid_life: valid,
        opts: DhcpOptions::new(),
    })
}

/// An IA_NA holding `addr` with `times`, plus `stale` addresses with lifetimes 0 (RFC 8415
/// §18.3.4: an address no longer appropriate goes back with lifetimes of 0).
pub(crate) fn ia_na_with(
    iaid: u32,
    addr: Ipv6Addr,
    times: Times,
    stale: &[Ipv6Addr],
) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    opts.insert(iaaddr(addr, times.preferred, times.valid));
    for &s in stale {
        opts.insert(iaaddr(s, 0, 0));
    }
    DhcpOption::IANA(IANA {
        id: iaid,
        t1: times.t1,
        t2: times.t2,
        opts,
    })
}

/// An IA_NA carrying only the `stale` addresses with lifetimes 0.
pub(crate) fn ia_na_stale(iaid: u32, stale: &[Ipv6Addr]) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    for &s in stale {
        opts.insert(iaaddr(s, 0, 0));
    }
    DhcpOption::IANA(IANA {
        id: iaid,
        t1: 0,
        t2: 0,
        opts,
    })
}

pub(crate) fn status(status: Status, msg: &str) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status,
        msg: msg.to_owned(),
    })
}

/// An IA of the same kind and IAID holding only a Status Code (RFC 8415 §18.3.2, §18.3.7).
pub(crate) fn ia_status(kind: IaKind, iaid: u32, code: Status, msg: &str) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    opts.insert(status(code, msg));
    match kind {
        IaKind::Na => DhcpOption::IANA(IANA {
            id: iaid,
            t1: 0,
            t2: 0,
            opts,
        }),
        IaKind::Ta => DhcpOption::IATA(IATA { id: iaid, opts }),
        IaKind::Pd => DhcpOption::IAPD(IAPD {
            id: iaid,
            t1: 0,
            t2: 0,
            opts,
        }),
    }
}

/// Which kind of Identity Association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IaKind {
    Na,
    Ta,
    Pd,
}

/// Whether the client's Option Request option lists `code`
/// ([RFC 8415 §21.7](https://www.rfc-editor.org/rfc/rfc8415#section-21.7)).
pub(crate) fn requested(msg: &Message, code: OptionCode) -> bool {
    match msg.opts().get(OptionCode::ORO) {
        Some(DhcpOption::ORO(oro)) => oro.opts.contains(&code),
        _ => false,
    }
}

/// Adds the configuration options the client asked for: DNS servers (option 23,
/// [RFC 3646 §3](https://www.rfc-editor.org/rfc/rfc3646#section-3)).
pub(crate) fn add_config(reply: &mut Message, request: &Message, dns: &[Ipv6Addr]) {
    if !dns.is_empty() && requested(request, OptionCode::DomainNameServers) {
        reply
            .opts_mut()
            .insert(DhcpOption::DomainNameServers(dns.to_vec()));
    }
}
