//! DHCPv6 Solicit flood (issue #10 item 2), sans-IO on simulated time: one client floods
//! with a fixed DUID, a second flood uses a fresh DUID per Solicit (pool exhaustion), and a
//! legitimate client renews in the middle of it; a new client comes once the flood stopped
//! and the offers expired. Prints a `figure:` line (RELIABILITY.md).

#![allow(clippy::unwrap_used)]

use std::net::Ipv6Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcp::{DhcpConfig, DhcpServer, MemoryStore, ServerIdentity};
use dhcproto::v6::{DhcpOption, DhcpOptions, Message, MessageType, OptionCode, IANA};
use dhcproto::{Decodable, Decoder, Encodable};

const KEY: &str = include_str!("data/site-key.pem");
const LINK: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7);
const MAX_BINDINGS: usize = 100;

fn t(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
}

fn msg(ty: MessageType, duid: &[u8], server: Option<&[u8]>) -> Vec<u8> {
    let mut m = Message::new_with_id(ty, [1, 2, 3]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.to_vec()));
    if let Some(s) = server {
        m.opts_mut().insert(DhcpOption::ServerId(s.to_vec()));
    }
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    m.to_vec().unwrap()
}

/// The message type and the IA_NA address with a non-zero valid lifetime, if any.
fn outcome(reply: Option<Vec<u8>>) -> Option<(MessageType, Option<Ipv6Addr>)> {
    let m = Message::decode(&mut Decoder::new(&reply?)).unwrap();
    let addr = match m.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(ia)) => match ia.opts.get(OptionCode::IAAddr) {
            Some(DhcpOption::IAAddr(a)) if a.valid_life > 0 => Some(a.addr),
            _ => None,
        },
        _ => None,
    };
    Some((m.msg_type(), addr))
}

/// Solicit then Request: the bound address.
fn bind(s: &mut DhcpServer<MemoryStore>, now: SystemTime, duid: &[u8]) -> Option<Ipv6Addr> {
    let sid = s.server_duid().to_vec();
    let (ty, offered) = outcome(s.handle(now, LINK, &msg(MessageType::Solicit, duid, None)))?;
    assert_eq!(ty, MessageType::Advertise);
    offered?;
    let (ty, bound) = outcome(s.handle(now, LINK, &msg(MessageType::Request, duid, Some(&sid))))?;
    assert_eq!(ty, MessageType::Reply);
    bound
}

#[test]
fn solicit_flood_is_limited_pool_exhaustion_is_handled_and_clients_are_served() {
    let cfg = DhcpConfig::from_toml_str(&format!(
        "[dhcp]\nsite_key = 'k'\nulid_prefix = 'fc00:1:2:3::/64'\njournal = 'j'\n\
         pa_prefixes = ['2001:db8:a:1::/64']\ndns_servers = ['fc00:1:2:3::1']\n\
         max_bindings = {MAX_BINDINGS}\n\
         [dhcp.rate_limit]\nper_second = 1\nburst = 3\n"
    ))
    .unwrap();
    let key = cga::SiteKey::from_pkcs8_pem(KEY).unwrap();
    let mut s = DhcpServer::new(
        cfg,
        key.public_key_der(),
        MemoryStore::new(),
        ServerIdentity::Uuid,
        3,
        t(0),
    )
    .unwrap();
    let legit = b"\x00\x04legit-client-0001".to_vec();
    let legit_addr = bind(&mut s, t(0), &legit).unwrap();
    let flooder = b"\x00\x04flooding-client!".to_vec();
    let (mut flood_answers, mut random_offers, mut random_refused, mut random_sent) = (0, 0, 0, 0);
    let mut peak_bindings = 0;
    let mut legit_renewed = None;
    // 60 s: 100 Solicits/s from the flooder and 100/s with a fresh DUID each.
    for ms in (1000..61_000u64).step_by(10) {
        let now = t(ms);
        if outcome(s.handle(now, LINK, &msg(MessageType::Solicit, &flooder, None))).is_some() {
            flood_answers += 1;
        }
        let duid = format!("\x00\x04random-{ms:012}");
        random_sent += 1;
        match outcome(s.handle(now, LINK, &msg(MessageType::Solicit, duid.as_bytes(), None))) {
            Some((MessageType::Advertise, Some(_))) => random_offers += 1,
            Some((MessageType::Advertise, None)) => random_refused += 1,
            other => panic!("{other:?}"),
        }
        peak_bindings = peak_bindings.max(s.bindings().count());
        if ms == 30_000 {
            let sid = s.server_duid().to_vec();
            let renew = msg(MessageType::Renew, &legit, Some(&sid));
            legit_renewed = outcome(s.handle(now, LINK, &renew));
        }
    }
    let c = *s.counters();
    // The fixed-DUID flooder: a burst of 3 plus 1/s.
    assert!(flood_answers <= 3 + 60, "{flood_answers}");
    assert!(c.rate_limited >= 6000 - 63);
    // The pool: never above the cap; the rest refused with NoAddrsAvail.
    assert!(peak_bindings <= MAX_BINDINGS, "{peak_bindings}");
    assert_eq!(random_offers + random_refused, random_sent);
    assert!(random_refused > 0 && c.no_addrs_avail >= random_refused);
    // The legitimate, bound client kept its address through the flood.
    assert_eq!(
        legit_renewed,
        Some((MessageType::Reply, Some(legit_addr))),
        "renewal during the flood"
    );
    // Offers expire (offer_lifetime 120 s): a new client is served once the flood stops.
    let later = t(61_000 + 121_000);
    let newcomer = bind(&mut s, later, b"\x00\x04newcomer-client1").expect("served after");
    assert_ne!(newcomer, legit_addr);
    assert!(s.bindings().count() <= MAX_BINDINGS);
    println!(
        "figure: DHCPv6 Solicit flood over 60 s: fixed-DUID flooder 6000 Solicits → \
         {flood_answers} answered (limit 3 + 1/s); {random_sent} fresh-DUID Solicits → \
         {random_offers} offers, {random_refused} NoAddrsAvail; bindings peak {peak_bindings} \
         (max {MAX_BINDINGS}); bound client renewed during the flood; newcomer bound after \
         offers expired (evicted {})",
        c.bindings_evicted
    );
}
