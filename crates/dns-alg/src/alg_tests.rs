//! Unit tests of the core with simulated upstream servers and simulated time.

use std::net::Ipv6Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{AAAA, NULL, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::*;
use crate::config::RateLimitConfig;
use crate::{HostTable, CACHE_VIEW_NAME};

const S: Duration = Duration::from_secs(1);
const ULID_T: RecordType = RecordType::Unknown(65280);

fn up(i: u8) -> SocketAddr {
    SocketAddr::new(
        Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, u16::from(i)).into(),
        53,
    )
}
fn client() -> SocketAddr {
    "[fc00::1:2]:40000".parse().unwrap()
}
fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}
fn peer_ulid() -> Ulid {
    Ulid("fc00::1:34bd:84c2:3689:9c47".parse().unwrap())
}
fn loc(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0x1234)
}

fn config(servers: u8) -> AlgConfig {
    let mut c = AlgConfig::new((0..servers).map(up).collect());
    c.upstream_timeout = S;
    c.upstream_attempts = 3;
    c
}

fn alg(servers: u8) -> DnsAlg {
    DnsAlg::new(config(servers), 1).unwrap()
}

/// An ALG with one upstream server and `change` applied to its configuration.
fn alg_with(change: impl FnOnce(&mut AlgConfig)) -> DnsAlg {
    let mut c = config(1);
    change(&mut c);
    DnsAlg::new(c, 1).unwrap()
}

fn query(id: u16, qname: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname), qtype));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// The client asks `qname` / `qtype` with ID `id` over UDP, without EDNS.
fn ask(a: &mut DnsAlg, now: Instant, id: u16, qname: &str, qtype: RecordType) {
    a.handle_query(
        now,
        client(),
        &query(id, qname, qtype, None),
        Transport::Udp,
    );
}

/// A fresh ALG with `servers` upstream servers whose client asks `qname` / `qtype` (ID 3,
/// no EDNS) over `transport`: the ALG, the time of the question and the first upstream query.
fn first_upstream_query(
    servers: u8,
    qname: &str,
    qtype: RecordType,
    transport: Transport,
) -> (DnsAlg, Instant, Transmit) {
    let mut a = alg(servers);
    let t0 = Instant::now();
    a.handle_query(t0, client(), &query(3, qname, qtype, None), transport);
    let q0 = drain(&mut a).remove(0);
    (a, t0, q0)
}

fn drain(a: &mut DnsAlg) -> Vec<Transmit> {
    std::iter::from_fn(|| a.poll_transmit()).collect()
}

fn events(a: &mut DnsAlg) -> Vec<AlgEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

/// The question of an upstream transmit.
fn asked(t: &Transmit) -> Query {
    Message::from_vec(&t.payload).unwrap().queries[0].clone()
}

/// The transmit asking `qtype`.
fn find(ts: &[Transmit], qtype: RecordType) -> Transmit {
    ts.iter()
        .find(|t| asked(t).query_type() == qtype)
        .cloned()
        .unwrap_or_else(|| panic!("no {qtype} query in {ts:?}"))
}

/// A server's answer to `t` with `answers` and `rcode`.
fn reply(t: &Transmit, answers: Vec<Record>, rcode: ResponseCode) -> Vec<u8> {
    let q = Message::from_vec(&t.payload).unwrap();
    let mut r = Message::response(q.id, OpCode::Query);
    r.metadata.authoritative = true;
    r.metadata.response_code = rcode;
    r.add_queries(q.queries.iter().cloned());
    r.answers = answers;
    r.to_vec().unwrap()
}

/// Upstream server 0 answers query `t` with `answers` and `rcode`.
fn answer_with(
    a: &mut DnsAlg,
    now: Instant,
    t: &Transmit,
    answers: Vec<Record>,
    rcode: ResponseCode,
) {
    a.handle_upstream(now, up(0), &reply(t, answers, rcode));
}

/// The name of the SHIM6 peer most tests resolve.
const PEER: &str = "peer.example.test.";

/// `PEER`'s AAAA record for locator `loc(i)`.
fn peer_aaaa(i: u16, ttl: u32) -> Record {
    aaaa(PEER, loc(i), ttl)
}

/// `PEER`'s ULID record holding `peer_ulid()`.
fn peer_ulid_rec(ttl: u32) -> Record {
    ulid_rec(PEER, &peer_ulid().octets(), ttl)
}

fn aaaa(owner: &str, a: Ipv6Addr, ttl: u32) -> Record {
    Record::from_rdata(name(owner), ttl, RData::AAAA(AAAA(a)))
}

fn ulid_rec(owner: &str, bytes: &[u8], ttl: u32) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::Unknown {
            code: ULID_T,
            rdata: NULL::with(bytes.to_vec()),
        },
    )
}

fn dest(t: &Transmit) -> SocketAddr {
    match t.destination {
        Destination::Client(a) | Destination::Upstream(a) => a,
    }
}

/// The one message sent to the client, decoded.
fn client_answer(ts: &[Transmit]) -> Message {
    let [t] = ts else {
        panic!("expected one transmit, got {ts:?}")
    };
    assert_eq!(t.destination, Destination::Client(client()));
    Message::from_vec(&t.payload).unwrap()
}

/// Sends an AAAA query for `qname` and answers both upstream questions.
fn forward(
    a: &mut DnsAlg,
    now: Instant,
    qname: &str,
    aaaa_set: Vec<Record>,
    ulid_answer: Vec<Record>,
) -> Message {
    ask(a, now, 77, qname, RecordType::AAAA);
    let ts = drain(a);
    assert_eq!(ts.len(), 2, "AAAA and ULID asked in parallel");
    assert!(ts
        .iter()
        .all(|t| t.destination == Destination::Upstream(up(0))));
    let (qa, qu) = (find(&ts, RecordType::AAAA), find(&ts, ULID_T));
    assert!(asked(&qu).name().eq_case(&name(qname)));
    answer_with(a, now, &qu, ulid_answer, ResponseCode::NoError);
    assert!(drain(a).is_empty(), "waits for the AAAA answer");
    answer_with(a, now, &qa, aaaa_set, ResponseCode::NoError);
    client_answer(&drain(a))
}

/// [`forward`] for `PEER`: the upstream server answers `aaaa_set` and `PEER`'s ULID record
/// with TTL `ulid_ttl`.
fn forward_to_peer(a: &mut DnsAlg, now: Instant, aaaa_set: Vec<Record>, ulid_ttl: u32) -> Message {
    forward(a, now, PEER, aaaa_set, vec![peer_ulid_rec(ulid_ttl)])
}

#[test]
fn shim6_peer_gets_its_ulid_and_locators_are_cached() {
    let mut a = alg(1);
    let t0 = Instant::now();
    let m = forward_to_peer(&mut a, t0, vec![peer_aaaa(1, 300), peer_aaaa(2, 200)], 600);
    assert_eq!(m.id, 77);
    assert_eq!(m.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::AAAA(AAAA(peer_ulid().0)));
    assert_eq!(
        m.answers[0].ttl, 200,
        "min of the AAAA set and ULID record TTLs"
    );
    assert!(m.edns.is_none(), "no OPT in the query, none in the answer");
    let locators = vec![Locator(loc(1)), Locator(loc(2))];
    assert_eq!(
        events(&mut a),
        vec![AlgEvent::PeerLocators {
            ulid: peer_ulid(),
            locators: locators.clone(),
            ttl: 200 * S
        }]
    );
    assert_eq!(
        a.locators(t0 + 10 * S, peer_ulid()),
        Some((locators, 190 * S))
    );
    assert_eq!(a.stats().ulid_answers, 1);
    assert_eq!(a.pending(), 0);
    assert_eq!(a.poll_timeout(), None, "nothing left in flight");
}

#[test]
fn cache_entry_expires_with_the_ttl() {
    let mut a = alg(1);
    let t0 = Instant::now();
    forward_to_peer(&mut a, t0, vec![peer_aaaa(1, 30)], 600);
    assert!(a.locators(t0 + 29 * S, peer_ulid()).is_some());
    assert_eq!(a.cache_entries(t0 + 29 * S).len(), 1);
    assert!(a.cache_entries(t0 + 30 * S).is_empty());
    assert!(a.locators(t0 + 30 * S, peer_ulid()).is_none());
}

#[test]
fn cache_ttl_is_capped_by_configuration() {
    let mut a = alg_with(|c| c.cache_max_ttl = 60 * S);
    let t0 = Instant::now();
    forward_to_peer(&mut a, t0, vec![peer_aaaa(1, 86_400)], 86_400);
    assert!(matches!(events(&mut a)[..], [AlgEvent::PeerLocators { ttl, .. }] if ttl == 60 * S));
    assert!(a.locators(t0 + 60 * S, peer_ulid()).is_none());
}

#[test]
fn legacy_peer_gets_real_addresses() {
    let mut a = alg(1);
    let t0 = Instant::now();
    let m = forward(
        &mut a,
        t0,
        "legacy.example.test.",
        vec![aaaa("legacy.example.test.", loc(3), 300)],
        vec![],
    );
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::AAAA(AAAA(loc(3))));
    assert!(events(&mut a).is_empty());
    assert!(a.cache_entries(t0).is_empty());
    assert_eq!(a.stats().legacy_answers, 1);
}

#[test]
fn ulid_record_of_wrong_length_is_ignored_and_counted() {
    let mut a = alg(1);
    let m = forward(
        &mut a,
        Instant::now(),
        "odd.example.test.",
        vec![aaaa("odd.example.test.", loc(4), 300)],
        vec![ulid_rec("odd.example.test.", &[0xfc; 15], 300)],
    );
    assert_eq!(m.answers[0].data, RData::AAAA(AAAA(loc(4))));
    assert_eq!(a.stats().bad_ulid_records, 1);
    assert!(events(&mut a).is_empty());
}

#[test]
fn no_aaaa_set_answers_without_waiting_for_the_ulid() {
    let mut a = alg(1);
    let t0 = Instant::now();
    ask(&mut a, t0, 5, "nx.example.test.", RecordType::AAAA);
    let ts = drain(&mut a);
    let qa = find(&ts, RecordType::AAAA);
    answer_with(&mut a, t0, &qa, vec![], ResponseCode::NXDomain);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert_eq!(a.poll_timeout(), None, "the ULID question was cancelled");
}

#[test]
fn question_case_is_echoed() {
    let mut a = alg(1);
    let qname = "PeEr.ExAmPlE.TeSt.";
    let m = forward(
        &mut a,
        Instant::now(),
        qname,
        // A server that lowercases owner names.
        vec![peer_aaaa(1, 300)],
        vec![peer_ulid_rec(300)],
    );
    assert!(m.queries[0].name().eq_case(&name(qname)));
    assert!(m.answers[0].name.eq_case(&name(qname)));
}

#[test]
fn upstream_timeouts_rotate_servers_then_servfail() {
    let mut a = alg(2);
    let t0 = Instant::now();
    a.handle_query(
        t0,
        client(),
        &query(9, "slow.example.test.", RecordType::TXT, Some(1232)),
        Transport::Udp,
    );
    let first = drain(&mut a);
    assert_eq!(first.len(), 1);
    assert_eq!(dest(&first[0]), up(0));
    assert_eq!(a.poll_timeout(), Some(t0 + S));
    // Early and repeated calls do nothing.
    a.handle_timeout(t0 + S / 2);
    assert!(drain(&mut a).is_empty());
    a.handle_timeout(t0 + S);
    let second = drain(&mut a);
    assert_eq!(second.iter().map(dest).collect::<Vec<_>>(), vec![up(1)]);
    assert_eq!(second[0].payload, first[0].payload, "same ID and question");
    a.handle_timeout(t0 + 2 * S);
    assert_eq!(
        drain(&mut a).iter().map(dest).collect::<Vec<_>>(),
        vec![up(0)]
    );
    a.handle_timeout(t0 + 3 * S);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.id, 9);
    assert_eq!(m.response_code, ResponseCode::ServFail);
    assert!(m.edns.is_some());
    assert_eq!(a.stats().upstream_timeouts, 3);
    assert_eq!(a.stats().upstream_retries, 2);
    assert_eq!(a.stats().servfail, 1);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn servfail_upstream_moves_on_at_once_and_late_answers_count() {
    let (mut a, t0, q0) =
        first_upstream_query(2, "x.example.test.", RecordType::MX, Transport::Udp);
    answer_with(&mut a, t0, &q0, vec![], ResponseCode::ServFail);
    let q1 = drain(&mut a).remove(0);
    assert_eq!(dest(&q1), up(1), "next server without waiting");
    // Server 0 changes its mind and answers first: accepted (it was asked).
    answer_with(&mut a, t0, &q0, vec![], ResponseCode::NXDomain);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert_eq!(a.stats().upstream_errors, 1);
}

#[test]
fn forged_answers_are_ignored() {
    let (mut a, t0, q0) =
        first_upstream_query(2, "x.example.test.", RecordType::TXT, Transport::Udp);
    // From a server never asked.
    a.handle_upstream(t0, up(1), &reply(&q0, vec![], ResponseCode::NoError));
    // Right ID and server, other question.
    let mut other = Message::from_vec(&reply(&q0, vec![], ResponseCode::NoError)).unwrap();
    other.queries[0].set_name(name("evil.example.test."));
    a.handle_upstream(t0, up(0), &other.to_vec().unwrap());
    // Unknown ID, and a runt.
    let mut wrong = reply(&q0, vec![], ResponseCode::NoError);
    wrong[0] ^= 0xff;
    a.handle_upstream(t0, up(0), &wrong);
    a.handle_upstream(t0, up(0), &[1]);
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.stats().upstream_unmatched, 4);
    answer_with(&mut a, t0, &q0, vec![], ResponseCode::NoError);
    assert_eq!(
        client_answer(&drain(&mut a)).response_code,
        ResponseCode::NoError
    );
}

#[test]
fn garbage_from_upstream_fails_over() {
    let (mut a, t0, q0) =
        first_upstream_query(2, "x.example.test.", RecordType::TXT, Transport::Udp);
    let mut junk = q0.payload[..2].to_vec();
    junk.extend_from_slice(&[0x84, 0, 0, 9, 0, 9, 0, 0, 0, 0, 0xff]);
    a.handle_upstream(t0, up(0), &junk);
    assert_eq!(a.stats().upstream_malformed, 1);
    assert_eq!(
        drain(&mut a).iter().map(dest).collect::<Vec<_>>(),
        vec![up(1)]
    );
}

#[test]
fn truncated_upstream_answer_is_retried_over_tcp() {
    let (mut a, t0, q0) =
        first_upstream_query(1, "big.example.test.", RecordType::TXT, Transport::Tcp);
    assert_eq!(q0.transport, Transport::Udp);
    let mut tc = Message::from_vec(&reply(&q0, vec![], ResponseCode::NoError)).unwrap();
    tc.metadata.truncation = true;
    a.handle_upstream(t0, up(0), &tc.to_vec().unwrap());
    let again = drain(&mut a).remove(0);
    assert_eq!(again.transport, Transport::Tcp);
    assert_eq!(dest(&again), up(0));
    assert_eq!(a.stats().upstream_tcp_fallbacks, 1);
}

fn many(n: u16) -> Vec<Record> {
    (0..n)
        .map(|i| {
            aaaa(
                "many.example.test.",
                Ipv6Addr::new(0x2001, 0xdb8, 0xd, 0, 0, 0, 0, i),
                300,
            )
        })
        .collect()
}

/// Relays a 40-AAAA legacy answer to a client query sent with `edns` over `transport`.
fn many_answer(edns: Option<u16>, transport: Transport) -> (Vec<u8>, DnsAlg) {
    let mut a = alg(1);
    let t0 = Instant::now();
    a.handle_query(
        t0,
        client(),
        &query(4, "many.example.test.", RecordType::AAAA, edns),
        transport,
    );
    let ts = drain(&mut a);
    let (qa, qu) = (find(&ts, RecordType::AAAA), find(&ts, ULID_T));
    answer_with(&mut a, t0, &qu, vec![], ResponseCode::NoError);
    answer_with(&mut a, t0, &qa, many(40), ResponseCode::NoError);
    let mut out = drain(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].transport, transport);
    (out.remove(0).payload, a)
}

#[test]
fn oversize_udp_answer_is_truncated_keeping_opt() {
    let (bytes, a) = many_answer(Some(512), Transport::Udp);
    assert!(bytes.len() <= 512);
    let m = Message::from_vec(&bytes).unwrap();
    assert!(m.truncation);
    assert!(m.answers.is_empty());
    assert!(m.edns.is_some(), "the OPT record survives truncation");
    assert_eq!(a.stats().truncated, 1);

    let (bytes, _) = many_answer(None, Transport::Udp);
    let m = Message::from_vec(&bytes).unwrap();
    assert!(m.truncation);
    assert!(m.edns.is_none());

    let (bytes, _) = many_answer(Some(4096), Transport::Udp);
    let m = Message::from_vec(&bytes).unwrap();
    assert!(!m.truncation, "fits in the client's EDNS size");
    assert_eq!(m.answers.len(), 40);

    let (bytes, _) = many_answer(None, Transport::Tcp);
    let m = Message::from_vec(&bytes).unwrap();
    assert!(!m.truncation);
    assert_eq!(m.answers.len(), 40);
}

#[test]
fn badvers_and_formerr_from_the_core() {
    let mut a = alg(1);
    let t0 = Instant::now();
    let mut q = Message::from_vec(&query(21, "a.test.", RecordType::A, Some(1232))).unwrap();
    let mut e = q.edns.clone().unwrap();
    e.set_version(1);
    q.set_edns(e);
    a.handle_query(t0, client(), &q.to_vec().unwrap(), Transport::Udp);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.id, 21);
    assert_eq!(u16::from(m.response_code), 16, "BADVERS");
    assert_eq!(m.edns.map(|e| e.version()), Some(0));

    let mut bad = query(22, "a.test.", RecordType::A, None);
    bad.truncate(bad.len() - 3);
    a.handle_query(t0, client(), &bad, Transport::Udp);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.id, 22);
    assert_eq!(m.response_code, ResponseCode::FormErr);

    a.handle_query(t0, client(), &[0; 5], Transport::Udp);
    assert!(drain(&mut a).is_empty());
    assert_eq!(
        (a.stats().badvers, a.stats().formerr, a.stats().dropped),
        (1, 1, 1)
    );
    assert_eq!(a.stats().upstream_sent, 0);
}

#[test]
fn own_hosts_are_answered_locally() {
    let mut a = alg_with(|c| c.hosts = HostTable::parse("fc00::1:2 www.site.test\n").unwrap());
    let t0 = Instant::now();
    ask(&mut a, t0, 1, "WWW.site.test.", RecordType::AAAA);
    let m = client_answer(&drain(&mut a));
    assert!(m.authoritative);
    assert_eq!(
        m.answers[0].data,
        RData::AAAA(AAAA("fc00::1:2".parse().unwrap()))
    );
    assert!(m.answers[0].name.eq_case(&name("WWW.site.test.")));
    let rev = reverse_name("fc00::1:2".parse().unwrap()).to_ascii();
    ask(&mut a, t0, 2, &rev, RecordType::PTR);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.answers[0].data, RData::PTR(PTR(name("www.site.test."))));
    ask(&mut a, t0, 3, "www.site.test.", RecordType::A);
    let m = client_answer(&drain(&mut a));
    assert!(
        m.answers.is_empty() && m.response_code == ResponseCode::NoError,
        "NODATA"
    );
    assert_eq!(a.stats().upstream_sent, 0);
}

#[test]
fn cache_view_lists_entries() {
    let mut a = alg(1);
    let t0 = Instant::now();
    forward_to_peer(&mut a, t0, vec![peer_aaaa(1, 300), peer_aaaa(2, 300)], 300);
    let mut q = Message::from_vec(&query(6, CACHE_VIEW_NAME, RecordType::TXT, None)).unwrap();
    q.queries[0].set_query_class(DNSClass::CH);
    a.handle_query(t0 + 100 * S, client(), &q.to_vec().unwrap(), Transport::Udp);
    let m = client_answer(&drain(&mut a));
    assert_eq!(m.answers.len(), 1);
    let RData::TXT(txt) = &m.answers[0].data else {
        panic!()
    };
    let strings: Vec<String> = txt
        .txt_data
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    assert_eq!(
        strings,
        vec![
            peer_ulid().to_string(),
            "ttl=200".into(),
            loc(1).to_string(),
            loc(2).to_string()
        ]
    );
}

#[test]
fn rate_limit_drops_and_counts() {
    let mut a = alg_with(|c| {
        c.rate_limit = RateLimitConfig {
            per_second: 1,
            burst: 2,
            max_clients: 8,
        }
    });
    let t0 = Instant::now();
    for i in 0..5 {
        ask(&mut a, t0, i, "a.test.", RecordType::A);
    }
    assert_eq!(drain(&mut a).len(), 2);
    assert_eq!(a.stats().rate_limited, 3);
}

#[test]
fn overload_is_bounded() {
    let mut a = alg_with(|c| c.max_pending = 2);
    let t0 = Instant::now();
    for i in 0..4 {
        ask(&mut a, t0, i, "a.test.", RecordType::A);
    }
    assert_eq!(a.pending(), 2);
    assert_eq!(a.stats().overload, 2);
    assert_eq!(a.resolve_ulid(t0, peer_ulid()), ResolveStatus::Busy);
}

/// Drives a reverse resolution whose target's ULID record holds `ulid_bytes`.
fn reverse(a: &mut DnsAlg, t0: Instant, ulid_bytes: &[u8]) -> Vec<AlgEvent> {
    assert_eq!(a.resolve_ulid(t0, peer_ulid()), ResolveStatus::Started);
    assert_eq!(a.resolve_ulid(t0, peer_ulid()), ResolveStatus::InProgress);
    let q = drain(a).remove(0);
    assert_eq!(asked(&q).query_type(), RecordType::PTR);
    assert_eq!(*asked(&q).name(), reverse_name(peer_ulid().0));
    let ptr = Record::from_rdata(asked(&q).name().clone(), 300, RData::PTR(PTR(name(PEER))));
    answer_with(a, t0, &q, vec![ptr], ResponseCode::NoError);
    let ts = drain(a);
    let (qa, qu) = (find(&ts, RecordType::AAAA), find(&ts, ULID_T));
    assert_eq!(*asked(&qa).name(), name(PEER));
    answer_with(a, t0, &qa, vec![peer_aaaa(1, 120)], ResponseCode::NoError);
    answer_with(
        a,
        t0,
        &qu,
        vec![ulid_rec(PEER, ulid_bytes, 600)],
        ResponseCode::NoError,
    );
    assert!(drain(a).is_empty());
    events(a)
}

#[test]
fn reverse_resolution_fills_the_cache() {
    let mut a = alg(1);
    let t0 = Instant::now();
    let ev = reverse(&mut a, t0, &peer_ulid().octets());
    assert_eq!(
        ev,
        vec![AlgEvent::PeerLocators {
            ulid: peer_ulid(),
            locators: vec![Locator(loc(1))],
            ttl: 120 * S
        }]
    );
    assert!(a.locators(t0, peer_ulid()).is_some());
    // Next time the cache answers, still as an event.
    assert_eq!(a.resolve_ulid(t0, peer_ulid()), ResolveStatus::Cached);
    assert!(drain(&mut a).is_empty());
    assert_eq!(events(&mut a).len(), 1);
}

#[test]
fn reverse_resolution_needs_the_same_ulid() {
    let mut a = alg(1);
    let t0 = Instant::now();
    let ev = reverse(&mut a, t0, &[0xfc; 16]);
    assert_eq!(ev, vec![AlgEvent::ResolveFailed { ulid: peer_ulid() }]);
    assert!(a.locators(t0, peer_ulid()).is_none());
    assert_eq!(a.pending(), 0);
}

#[test]
fn reverse_resolution_failure_after_timeouts() {
    let mut a = alg(1);
    let t0 = Instant::now();
    a.resolve_ulid(t0, peer_ulid());
    for i in 1..=3 {
        a.handle_timeout(t0 + i * S);
    }
    assert_eq!(
        events(&mut a),
        vec![AlgEvent::ResolveFailed { ulid: peer_ulid() }]
    );
    assert_eq!(
        a.resolve_ulid(t0 + 4 * S, peer_ulid()),
        ResolveStatus::Started
    );
}
