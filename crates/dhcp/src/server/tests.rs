//! One test per message type and rule, on the in-memory store and a virtual clock.

use std::time::Duration;

use dhcproto::v6::{DhcpOptions, IAAddr, StatusCode, ORO};
use proptest::prelude::*;

use super::*;
use crate::store::MemoryStore;
use crate::test_key;
use crate::{interface_id, Prefix64};

const CLIENT: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
const LINK: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn config(extra: &str) -> DhcpConfig {
    DhcpConfig::from_toml_str(&format!(
        "[dhcp]\nsite_key = 'k'\nulid_prefix = 'fc00:1:2:3::/64'\njournal = 'j'\n\
         pa_prefixes = ['2001:db8:a:1::/64', '2001:db8:b:1::/64']\n\
         dns_servers = ['fc00:1:2:3::1']\n{extra}"
    ))
    .unwrap()
}

fn server_with(extra: &str, store: MemoryStore) -> DhcpServer<MemoryStore> {
    DhcpServer::new(
        config(extra),
        test_key::public_der(),
        store,
        ServerIdentity::Uuid,
        7,
        t(0),
    )
    .unwrap()
}

fn server(extra: &str) -> DhcpServer<MemoryStore> {
    server_with(extra, MemoryStore::new())
}

/// A client message builder.
struct Msg(Message);

impl Msg {
    fn new(ty: MessageType) -> Self {
        let mut m = Message::new_with_id(ty, [0xaa, 0xbb, 0xcc]);
        m.opts_mut().insert(DhcpOption::ClientId(CLIENT.to_vec()));
        m.opts_mut().insert(DhcpOption::ElapsedTime(0));
        m.opts_mut().insert(DhcpOption::ORO(ORO {
            opts: vec![OptionCode::DomainNameServers],
        }));
        Self(m)
    }
    fn client(mut self, duid: &[u8]) -> Self {
        self.0.opts_mut().remove(OptionCode::ClientId);
        self.0
            .opts_mut()
            .insert(DhcpOption::ClientId(duid.to_vec()));
        self
    }
    fn without(mut self, code: OptionCode) -> Self {
        self.0.opts_mut().remove(code);
        self
    }
    fn server(mut self, duid: &[u8]) -> Self {
        self.0
            .opts_mut()
            .insert(DhcpOption::ServerId(duid.to_vec()));
        self
    }
    fn ia(mut self, iaid: u32, addrs: &[Ipv6Addr]) -> Self {
        let mut opts = DhcpOptions::new();
        for &addr in addrs {
            opts.insert(DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: DhcpOptions::new(),
            }));
        }
        self.0.opts_mut().insert(DhcpOption::IANA(IANA {
            id: iaid,
            t1: 0,
            t2: 0,
            opts,
        }));
        self
    }
    fn opt(mut self, o: DhcpOption) -> Self {
        self.0.opts_mut().insert(o);
        self
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.to_vec().unwrap()
    }
}

fn send(s: &mut DhcpServer<MemoryStore>, at: u64, m: &Msg) -> Option<Message> {
    s.handle(t(at), LINK, &m.bytes())
        .map(|b| Message::decode(&mut Decoder::new(&b)).unwrap())
}

fn ia_of(m: &Message, iaid: u32) -> IANA {
    ias(m)
        .find(|ia| ia.id == iaid)
        .cloned()
        .expect("IA_NA in answer")
}

/// The (address, preferred, valid) of the first IAADDR in the IA.
fn addr_of(ia: &IANA) -> Option<(Ipv6Addr, u32, u32)> {
    ia.opts.iter().find_map(|o| match o {
        DhcpOption::IAAddr(a) => Some((a.addr, a.preferred_life, a.valid_life)),
        _ => None,
    })
}

fn status_of(opts: &DhcpOptions) -> Option<Status> {
    match opts.get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(StatusCode { status, .. })) => Some(*status),
        _ => None,
    }
}

fn key(iaid: u32) -> ClientKey {
    ClientKey {
        duid: CLIENT.to_vec(),
        iaid,
    }
}

/// Solicit then Request: the bound address.
fn bind(s: &mut DhcpServer<MemoryStore>, at: u64, iaid: u32) -> Ipv6Addr {
    let sid = s.server_duid().to_vec();
    let r = send(
        s,
        at,
        &Msg::new(MessageType::Request).server(&sid).ia(iaid, &[]),
    )
    .unwrap();
    addr_of(&ia_of(&r, iaid)).unwrap().0
}

#[test]
fn solicit_gets_an_advertised_cga_cmula_with_locators() {
    let mut s = server("preference = 255");
    let adv = send(&mut s, 0, &Msg::new(MessageType::Solicit).ia(1, &[])).unwrap();
    assert_eq!(adv.msg_type(), MessageType::Advertise);
    assert_eq!(adv.xid(), [0xaa, 0xbb, 0xcc]);
    assert_eq!(duid_option(&adv, OptionCode::ClientId), Some(&CLIENT[..]));
    assert_eq!(
        duid_option(&adv, OptionCode::ServerId),
        Some(s.server_duid())
    );
    assert_eq!(
        adv.opts().get(OptionCode::Preference),
        Some(&DhcpOption::Preference(255))
    );
    assert_eq!(
        adv.opts().get(OptionCode::DomainNameServers),
        Some(&DhcpOption::DomainNameServers(vec!["fc00:1:2:3::1"
            .parse()
            .unwrap()]))
    );
    let ia = ia_of(&adv, 1);
    assert_eq!((ia.t1, ia.t2), (1800, 2880));
    let (addr, pref, valid) = addr_of(&ia).unwrap();
    assert_eq!((pref, valid), (3600, 7200));
    assert!(s.config().ulid_prefix.contains(addr));

    let b = s.binding(&key(1)).unwrap().clone();
    assert_eq!(b.address, addr);
    assert_eq!(b.state, BindingState::Offered);
    cga::verify(addr, &b.cga_parameters(test_key::public_der())).unwrap();
    let iid = interface_id(addr);
    assert_eq!(
        b.locators,
        vec![
            "2001:db8:a:1::/64"
                .parse::<Prefix64>()
                .unwrap()
                .with_iid(iid),
            "2001:db8:b:1::/64"
                .parse::<Prefix64>()
                .unwrap()
                .with_iid(iid)
        ]
    );
    // Journaled before the Advertise went out.
    assert_eq!(s.store().get(&key(1)), Some(&b));
    assert_eq!(s.counters().advertise, 1);
    assert_eq!(s.counters().bindings_created, 1);
}

#[test]
fn advertise_wire_layout() {
    let mut s = server("");
    let bytes = s
        .handle(
            t(0),
            LINK,
            &Msg::new(MessageType::Solicit).ia(9, &[]).bytes(),
        )
        .unwrap();
    // msg-type 2, the client's transaction id (RFC 8415 §8).
    assert_eq!(&bytes[..4], &[2, 0xaa, 0xbb, 0xcc]);
    // Options in code order: Client ID, Server ID (18-byte DUID-UUID), IA_NA, DNS servers.
    let mut codes = Vec::new();
    let mut rest = &bytes[4..];
    while rest.len() >= 4 {
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        codes.push((code, len));
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty());
    // IA_NA: 12 + IAADDR (4 + 24); DNS: one address.
    assert_eq!(codes, [(1, 10), (2, 18), (3, 40), (23, 16)]);
    let ia = &bytes[4 + 14 + 22..];
    assert_eq!(&ia[4..8], &9u32.to_be_bytes(), "IAID");
    assert_eq!(&ia[16..20], &[0, 5, 0, 24], "IAADDR header");
    assert_eq!(
        &ia[20..28],
        &[0xfc, 0, 0, 1, 0, 2, 0, 3],
        "CMULA under the ULID /64"
    );
}

#[test]
fn dns_only_when_requested() {
    let mut s = server("");
    let adv = send(
        &mut s,
        0,
        &Msg::new(MessageType::Solicit)
            .without(OptionCode::ORO)
            .ia(1, &[]),
    )
    .unwrap();
    assert!(adv.opts().get(OptionCode::DomainNameServers).is_none());
    assert!(
        adv.opts().get(OptionCode::Preference).is_none(),
        "preference defaults to 0: omitted"
    );
}

#[test]
fn request_commits_the_advertised_address() {
    let mut s = server("");
    let adv = send(&mut s, 0, &Msg::new(MessageType::Solicit).ia(1, &[])).unwrap();
    let offered = addr_of(&ia_of(&adv, 1)).unwrap().0;
    let sid = s.server_duid().to_vec();
    let reply = send(
        &mut s,
        1,
        &Msg::new(MessageType::Request)
            .server(&sid)
            .ia(1, &[offered]),
    )
    .unwrap();
    assert_eq!(reply.msg_type(), MessageType::Reply);
    assert_eq!(addr_of(&ia_of(&reply, 1)).unwrap(), (offered, 3600, 7200));
    let b = s.binding(&key(1)).unwrap();
    assert_eq!(b.state, BindingState::Bound);
    assert_eq!(b.valid_until, 1_700_000_001 + 7200);
    assert_eq!(s.store().get(&key(1)), Some(b));
}

#[test]
fn request_rules() {
    let mut s = server("");
    let sid = s.server_duid().to_vec();
    // No Server ID, a foreign one, no Client ID: discarded (RFC 8415 §16.4).
    assert!(send(&mut s, 0, &Msg::new(MessageType::Request).ia(1, &[])).is_none());
    assert!(send(
        &mut s,
        0,
        &Msg::new(MessageType::Request)
            .server(&[0, 4, 1, 2, 3])
            .ia(1, &[])
    )
    .is_none());
    assert!(send(
        &mut s,
        0,
        &Msg::new(MessageType::Request)
            .without(OptionCode::ClientId)
            .server(&sid)
            .ia(1, &[])
    )
    .is_none());
    assert_eq!(s.counters().discarded, 3);
    // An address off the link: NotOnLink in the IA (§18.3.2).
    let r = send(
        &mut s,
        0,
        &Msg::new(MessageType::Request)
            .server(&sid)
            .ia(1, &["2001:db8::1".parse().unwrap()]),
    )
    .unwrap();
    let ia = ia_of(&r, 1);
    assert_eq!(status_of(&ia.opts), Some(Status::NotOnLink));
    assert!(addr_of(&ia).is_none());
    // IA_PD and IA_TA are answered with their NoPrefixAvail / NoAddrsAvail.
    let r = send(
        &mut s,
        0,
        &Msg::new(MessageType::Request)
            .server(&sid)
            .opt(DhcpOption::IAPD(dhcproto::v6::IAPD {
                id: 5,
                t1: 0,
                t2: 0,
                opts: DhcpOptions::new(),
            }))
            .opt(DhcpOption::IATA(dhcproto::v6::IATA {
                id: 6,
                opts: DhcpOptions::new(),
            })),
    )
    .unwrap();
    match r.opts().get(OptionCode::IAPD) {
        Some(DhcpOption::IAPD(pd)) => assert_eq!(status_of(&pd.opts), Some(Status::NoPrefixAvail)),
        o => panic!("{o:?}"),
    }
    match r.opts().get(OptionCode::IATA) {
        Some(DhcpOption::IATA(ta)) => assert_eq!(status_of(&ta.opts), Some(Status::NoAddrsAvail)),
        o => panic!("{o:?}"),
    }
}

#[test]
fn rapid_commit_replies_with_a_committed_binding() {
    let mut s = server("");
    let r = send(
        &mut s,
        0,
        &Msg::new(MessageType::Solicit)
            .opt(DhcpOption::RapidCommit)
            .ia(1, &[]),
    )
    .unwrap();
    assert_eq!(r.msg_type(), MessageType::Reply);
    assert_eq!(
        r.opts().get(OptionCode::RapidCommit),
        Some(&DhcpOption::RapidCommit)
    );
    let addr = addr_of(&ia_of(&r, 1)).unwrap().0;
    assert_eq!(s.store().get(&key(1)).unwrap().state, BindingState::Bound);
    assert_eq!(s.store().get(&key(1)).unwrap().address, addr);

    let mut off = server("rapid_commit = false");
    let a = send(
        &mut off,
        0,
        &Msg::new(MessageType::Solicit)
            .opt(DhcpOption::RapidCommit)
            .ia(1, &[]),
    )
    .unwrap();
    assert_eq!(a.msg_type(), MessageType::Advertise);
    assert!(a.opts().get(OptionCode::RapidCommit).is_none());
}

#[test]
fn renew_keeps_the_address_and_extends_the_lease() {
    let mut s = server("");
    let addr = bind(&mut s, 0, 1);
    let sid = s.server_duid().to_vec();
    let stale: Ipv6Addr = "fc00:1:2:3::99".parse().unwrap();
    let r = send(
        &mut s,
        1000,
        &Msg::new(MessageType::Renew)
            .server(&sid)
            .ia(1, &[addr, stale]),
    )
    .unwrap();
    let ia = ia_of(&r, 1);
    let addrs: Vec<_> = ia
        .opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some((a.addr, a.preferred_life, a.valid_life)),
            _ => None,
        })
        .collect();
    assert!(addrs.contains(&(addr, 3600, 7200)));
    assert!(
        addrs.contains(&(stale, 0, 0)),
        "not ours: lifetimes 0 (§18.3.4)"
    );
    assert_eq!(
        s.binding(&key(1)).unwrap().valid_until,
        1_700_001_000 + 7200
    );
    assert_eq!(
        s.store().get(&key(1)).unwrap().valid_until,
        1_700_001_000 + 7200
    );
    // Renew without our Server ID is discarded.
    assert!(send(&mut s, 1000, &Msg::new(MessageType::Renew).ia(1, &[addr])).is_none());
    // Renew of an unknown IA creates a binding.
    let r = send(
        &mut s,
        1000,
        &Msg::new(MessageType::Renew).server(&sid).ia(2, &[]),
    )
    .unwrap();
    assert!(addr_of(&ia_of(&r, 2)).is_some());
}

#[test]
fn rebind_extends_known_bindings_only_as_configured() {
    let mut s = server("rapid_commit = false");
    let addr = bind(&mut s, 0, 1);
    let r = send(&mut s, 5000, &Msg::new(MessageType::Rebind).ia(1, &[addr])).unwrap();
    assert_eq!(addr_of(&ia_of(&r, 1)).unwrap(), (addr, 3600, 7200));
    // A Rebind carrying a Server ID is discarded (§16.7).
    let sid = s.server_duid().to_vec();
    assert!(send(
        &mut s,
        5000,
        &Msg::new(MessageType::Rebind).server(&sid).ia(1, &[addr])
    )
    .is_none());
    // Unknown IA without rapid commit: NoBinding; an off-link address: lifetimes 0.
    let r = send(&mut s, 5000, &Msg::new(MessageType::Rebind).ia(2, &[])).unwrap();
    assert_eq!(status_of(&ia_of(&r, 2).opts), Some(Status::NoBinding));
    let off: Ipv6Addr = "2001:db8::5".parse().unwrap();
    let r = send(&mut s, 5000, &Msg::new(MessageType::Rebind).ia(3, &[off])).unwrap();
    assert_eq!(addr_of(&ia_of(&r, 3)).unwrap(), (off, 0, 0));
    assert!(s.binding(&key(2)).is_none());
}

#[test]
fn release_frees_the_binding() {
    let mut s = server("");
    let addr = bind(&mut s, 0, 1);
    let sid = s.server_duid().to_vec();
    let r = send(
        &mut s,
        10,
        &Msg::new(MessageType::Release)
            .server(&sid)
            .ia(1, &[addr])
            .ia(4, &[]),
    )
    .unwrap();
    assert_eq!(status_of(r.opts()), Some(Status::Success));
    assert_eq!(
        status_of(&ia_of(&r, 4).opts),
        Some(Status::NoBinding),
        "unknown IA"
    );
    assert!(s.binding(&key(1)).is_none());
    assert!(s.store().get(&key(1)).is_none());
    assert!(s.holder_of(addr).is_none());
    assert_eq!(s.counters().released, 1);
    // The next grant is a new CMULA.
    assert_ne!(bind(&mut s, 20, 1), addr);
    // A Release without our Server ID is discarded.
    assert!(send(&mut s, 30, &Msg::new(MessageType::Release).ia(1, &[])).is_none());
}

#[test]
fn decline_marks_the_address_and_moves_the_client_on() {
    let mut s = server("");
    let addr = bind(&mut s, 0, 1);
    let before = s.binding(&key(1)).unwrap().clone();
    let sid = s.server_duid().to_vec();
    let r = send(
        &mut s,
        10,
        &Msg::new(MessageType::Decline).server(&sid).ia(1, &[addr]),
    )
    .unwrap();
    assert_eq!(status_of(r.opts()), Some(Status::Success));
    let b = s.binding(&key(1)).unwrap();
    assert_eq!(b.state, BindingState::Declined);
    assert_eq!(b.declined, vec![addr]);
    assert_eq!(
        s.store().get(&key(1)).unwrap().state,
        BindingState::Declined
    );
    assert_eq!(s.counters().declined, 1);
    // The next grant uses the next collision count of the same modifier (RFC 3972 §4 step 8).
    let next = bind(&mut s, 20, 1);
    assert_ne!(next, addr);
    let b = s.binding(&key(1)).unwrap().clone();
    assert_eq!(
        (b.modifier, b.collision_count),
        (before.modifier, before.collision_count + 1)
    );
    cga::verify(next, &b.cga_parameters(test_key::public_der())).unwrap();
    // The declined address stays reserved.
    assert_eq!(s.holder_of(addr).map(|b| &b.client), Some(&key(1)));
    // Declining an address we never gave: ignored, still Success.
    let r = send(
        &mut s,
        30,
        &Msg::new(MessageType::Decline)
            .server(&sid)
            .ia(1, &["fc00:1:2:3::7".parse().unwrap()]),
    )
    .unwrap();
    assert_eq!(status_of(r.opts()), Some(Status::Success));
    assert_eq!(s.binding(&key(1)).unwrap().state, BindingState::Bound);
}

#[test]
fn confirm_checks_the_link() {
    let mut s = server("");
    let on: Ipv6Addr = "fc00:1:2:3::1234".parse().unwrap();
    let off: Ipv6Addr = "fc00:1:2:4::1234".parse().unwrap();
    let r = send(&mut s, 0, &Msg::new(MessageType::Confirm).ia(1, &[on])).unwrap();
    assert_eq!(status_of(r.opts()), Some(Status::Success));
    let r = send(
        &mut s,
        0,
        &Msg::new(MessageType::Confirm).ia(1, &[on]).ia(2, &[off]),
    )
    .unwrap();
    assert_eq!(status_of(r.opts()), Some(Status::NotOnLink));
    // No addresses: no Reply (§18.3.3); a Server ID: discarded (§16.5).
    assert!(send(&mut s, 0, &Msg::new(MessageType::Confirm).ia(1, &[])).is_none());
    let sid = s.server_duid().to_vec();
    assert!(send(
        &mut s,
        0,
        &Msg::new(MessageType::Confirm).server(&sid).ia(1, &[on])
    )
    .is_none());
}

#[test]
fn information_request_gets_options_only() {
    let mut s = server("");
    let r = send(&mut s, 0, &Msg::new(MessageType::InformationRequest)).unwrap();
    assert_eq!(r.msg_type(), MessageType::Reply);
    assert!(r.opts().get(OptionCode::DomainNameServers).is_some());
    assert!(ias(&r).next().is_none());
    // Without a Client ID: answered without one (§16.10).
    let r = send(
        &mut s,
        0,
        &Msg::new(MessageType::InformationRequest).without(OptionCode::ClientId),
    )
    .unwrap();
    assert!(r.opts().get(OptionCode::ClientId).is_none());
    // With an IA, or a foreign Server ID: discarded (§16.12).
    assert!(send(
        &mut s,
        0,
        &Msg::new(MessageType::InformationRequest).ia(1, &[])
    )
    .is_none());
    assert!(send(
        &mut s,
        0,
        &Msg::new(MessageType::InformationRequest).server(&[0, 4, 9, 9])
    )
    .is_none());
    assert!(s.bindings().next().is_none());
}

#[test]
fn server_messages_relays_and_garbage_are_discarded() {
    let mut s = server("");
    for ty in [
        MessageType::Advertise,
        MessageType::Reply,
        MessageType::Reconfigure,
    ] {
        assert!(send(&mut s, 0, &Msg::new(ty).ia(1, &[])).is_none());
    }
    assert_eq!(s.counters().discarded, 3);
    assert!(s.handle(t(0), LINK, &[12, 0, 0, 0]).is_none());
    assert!(s.handle(t(0), LINK, &[]).is_none());
    assert!(s.handle(t(0), LINK, &[1, 2]).is_none());
    // A Status Code too short for its code field (dhcproto would underflow).
    assert!(s
        .handle(t(0), LINK, &[1, 0, 0, 0, 0, 13, 0, 1, 0])
        .is_none());
    assert_eq!(s.counters().malformed, 4);
    assert_eq!(s.counters().received, 7);
}

#[test]
fn binding_cap_answers_no_addrs_avail_and_reclaims_expired() {
    let mut s = server("max_bindings = 2\nrapid_commit = false\noffer_lifetime = 60");
    let solicit = |duid: u8| {
        Msg::new(MessageType::Solicit)
            .client(&[0, 3, 0, 1, duid])
            .ia(1, &[])
    };
    assert!(addr_of(&ia_of(&send(&mut s, 0, &solicit(1)).unwrap(), 1)).is_some());
    assert!(addr_of(&ia_of(&send(&mut s, 0, &solicit(2)).unwrap(), 1)).is_some());
    let full = send(&mut s, 10, &solicit(3)).unwrap();
    let ia = ia_of(&full, 1);
    assert!(addr_of(&ia).is_none());
    assert_eq!(status_of(&ia.opts), Some(Status::NoAddrsAvail));
    assert_eq!(s.counters().no_addrs_avail, 1);
    // Once the offers expire, one is reclaimed for the newcomer.
    let later = send(&mut s, 61, &solicit(3)).unwrap();
    assert!(addr_of(&ia_of(&later, 1)).is_some());
    assert_eq!(s.counters().bindings_evicted, 1);
    assert_eq!(s.store().len(), 2);
}

#[test]
fn rate_limit_per_client() {
    let mut s = server("[dhcp.rate_limit]\nper_second = 1.0\nburst = 3");
    let m = Msg::new(MessageType::Solicit).ia(1, &[]);
    let answered = (0..10).filter(|_| send(&mut s, 0, &m).is_some()).count();
    assert_eq!(answered, 3);
    assert_eq!(s.counters().rate_limited, 7);
    // Another client is unaffected; the first recovers with time.
    assert!(send(&mut s, 0, &m.client(&[0, 3, 0, 1, 9]).ia(1, &[])).is_some());
    assert!(send(&mut s, 2, &Msg::new(MessageType::Solicit).ia(1, &[])).is_some());
}

#[test]
fn nothing_is_acknowledged_without_a_durable_write() {
    let mut s = server("");
    s.store_mut().fail_writes = true;
    assert!(send(&mut s, 0, &Msg::new(MessageType::Solicit).ia(1, &[])).is_none());
    assert_eq!(s.counters().store_errors, 1);
    assert!(s.binding(&key(1)).is_none(), "memory follows the store");
    s.store_mut().fail_writes = false;
    assert!(send(&mut s, 0, &Msg::new(MessageType::Solicit).ia(1, &[])).is_some());
}

#[test]
fn restart_keeps_server_duid_and_addresses() {
    let mut s = server("");
    let addr = bind(&mut s, 0, 1);
    let duid = s.server_duid().to_vec();
    let store = s.store().clone();
    // Different seed: only what was stored can give the same answers.
    let mut again = DhcpServer::new(
        config(""),
        test_key::public_der(),
        store,
        ServerIdentity::Uuid,
        99,
        t(50),
    )
    .unwrap();
    assert_eq!(again.server_duid(), duid);
    let adv = send(&mut again, 60, &Msg::new(MessageType::Solicit).ia(1, &[])).unwrap();
    assert_eq!(addr_of(&ia_of(&adv, 1)).unwrap().0, addr);
    assert_eq!(
        again.binding(&key(1)).unwrap().state,
        BindingState::Bound,
        "a Solicit does not unbind"
    );
}

#[test]
fn duid_llt_identity() {
    let s = DhcpServer::new(
        config(""),
        test_key::public_der(),
        MemoryStore::new(),
        ServerIdentity::LinkLayerTime([2, 0, 0, 0, 0, 1]),
        1,
        t(0),
    )
    .unwrap();
    assert_eq!(&s.server_duid()[..4], &[0, 1, 0, 1]);
    assert_eq!(&s.server_duid()[8..], &[2, 0, 0, 0, 0, 1]);
}

#[test]
fn static_binding_is_fixed() {
    let mut s = server(
        "[[dhcp.static]]\nduid = '00:03:00:01:02:00:00:00:00:01'\niaid = 1\nmodifier = '000102030405060708090a0b0c0d0e0f'",
    );
    let expected = cga::generate_from_modifier(
        test_key::public_der(),
        [0xfc, 0, 0, 1, 0, 2, 0, 3],
        0,
        &[],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        0,
    )
    .unwrap()
    .0;
    assert_eq!(bind(&mut s, 0, 1), expected);
    let sid = s.server_duid().to_vec();
    send(
        &mut s,
        1,
        &Msg::new(MessageType::Release)
            .server(&sid)
            .ia(1, &[expected]),
    )
    .unwrap();
    assert_eq!(
        bind(&mut s, 2, 1),
        expected,
        "release does not free a configured address"
    );
    assert!(
        s.store().is_empty(),
        "configured bindings are not journaled"
    );
}

#[test]
fn sec_one_addresses_verify() {
    let mut s = server("sec = 1");
    let addr = bind(&mut s, 0, 1);
    let b = s.binding(&key(1)).unwrap();
    assert_eq!(b.sec, 1);
    assert_eq!(
        addr.octets()[8] >> 5,
        1,
        "Sec in the top three IID bits (RFC 3972 §3)"
    );
    cga::verify(addr, &b.cga_parameters(test_key::public_der())).unwrap();
}

#[test]
fn distinct_clients_get_distinct_addresses() {
    let mut s = server("");
    let mut seen = std::collections::HashSet::new();
    for i in 0..200u16 {
        let d = [0, 3, 0, 1, (i >> 8) as u8, i as u8];
        let adv = send(
            &mut s,
            0,
            &Msg::new(MessageType::Solicit).client(&d).ia(1, &[]),
        )
        .unwrap();
        assert!(seen.insert(addr_of(&ia_of(&adv, 1)).unwrap().0));
    }
    assert_eq!(s.store().len(), 200);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut s = server("");
        let _ = s.handle(t(0), LINK, &bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(ty in 1u8..14, flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6), cut in 0usize..200) {
        let mut s = server("");
        let sid = s.server_duid().to_vec();
        let mut bytes = Msg::new(MessageType::from(ty)).server(&sid).ia(1, &["fc00:1:2:3::1".parse().unwrap()])
            .opt(DhcpOption::StatusCode(StatusCode { status: Status::Success, msg: "x".into() }))
            .bytes();
        for (i, v) in flips {
            if let Some(b) = bytes.get_mut(i) { *b = v; }
        }
        bytes.truncate(cut.max(1));
        let _ = s.handle(t(0), LINK, &bytes);
    }
}
