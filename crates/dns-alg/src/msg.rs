//! DNS message plumbing on top of hickory-proto: reading a client's query (with the FORMERR,
//! NOTIMP and BADVERS answers it may deserve), building responses, and fitting them into
//! the client's transport (shed Additional RRsets, then truncate keeping the OPT record).

use std::net::Ipv6Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::AAAA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::ProtoError;
use wire::Ulid;

/// Largest UDP answer to a client that sent no OPT record
/// ([RFC 1035 §2.3.4](https://www.rfc-editor.org/rfc/rfc1035#section-2.3.4)).
pub(crate) const UDP_NO_EDNS: usize = 512;
/// Largest DNS message over TCP: the 2-byte length prefix
/// ([RFC 7766 §8](https://www.rfc-editor.org/rfc/rfc7766#section-8)).
pub(crate) const TCP_MAX: usize = 65535;
/// DNS header length.
pub(crate) const HEADER_LEN: usize = 12;

/// The EDNS parameters of a client's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientEdns {
    /// Requestor's UDP payload size, at least 512
    /// ([RFC 6891 §6.2.5](https://www.rfc-editor.org/rfc/rfc6891#section-6.2.5)).
    pub(crate) payload: u16,
    /// DO bit ([RFC 3225](https://www.rfc-editor.org/rfc/rfc3225)).
    pub(crate) dnssec_ok: bool,
}

/// What the ALG keeps of a well-formed client query.
#[derive(Debug, Clone)]
pub(crate) struct ClientQuery {
    pub(crate) id: u16,
    pub(crate) op_code: OpCode,
    pub(crate) rd: bool,
    pub(crate) cd: bool,
    /// The question exactly as asked (its name's case is echoed back).
    pub(crate) query: Query,
    pub(crate) edns: Option<ClientEdns>,
}

/// Why a query got an immediate answer from [`parse_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    FormErr,
    NotImp,
    BadVers,
    Refused,
}

/// The verdict on a packet from a client.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A query to work on.
    Query(ClientQuery),
    /// Answer at once with this message.
    Reply(Message, ReplyKind),
    /// Nothing can be answered: shorter than a header, or a response rather than a query.
    Drop,
}

/// Our OPT record: version 0, our payload size, the client's DO bit
/// ([RFC 6891 §6.1.3](https://www.rfc-editor.org/rfc/rfc6891#section-6.1.3): a response
/// carries the responder's highest version).
pub(crate) fn our_edns(payload: u16, dnssec_ok: bool) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e.set_version(0);
    e.set_dnssec_ok(dnssec_ok);
    e
}

/// Reads a client's packet. Malformed queries whose header is readable get FORMERR with the
/// ID (and opcode, RD) echoed ([RFC 1035 §4.1.1](https://www.rfc-editor.org/rfc/rfc1035#section-4.1.1));
/// EDNS versions above 0 get BADVERS ([RFC 6891 §6.1.3](https://www.rfc-editor.org/rfc/rfc6891#section-6.1.3)).
pub(crate) fn parse_query(bytes: &[u8], our_payload: u16) -> Inbound {
    let (Some(&[id_hi, id_lo, flags, _]), true) = (bytes.get(..4), bytes.len() >= HEADER_LEN)
    else {
        return Inbound::Drop;
    };
    if flags & 0x80 != 0 {
        // A response: answering it could start a loop between two servers.
        return Inbound::Drop;
    }
    let id = u16::from_be_bytes([id_hi, id_lo]);
    let op_code = OpCode::from_u8((flags >> 3) & 0x0f);
    let rd = flags & 0x01 != 0;
    let msg = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => {
            let mut r = Message::error_msg(id, op_code, ResponseCode::FormErr);
            r.metadata.recursion_desired = rd;
            return Inbound::Reply(r, ReplyKind::FormErr);
        }
    };
    let edns = msg.edns.as_ref().map(|e| ClientEdns {
        payload: e.max_payload().max(512),
        dnssec_ok: e.flags().dnssec_ok,
    });
    let skeleton = |rcode: ResponseCode| {
        let mut r = Message::error_msg(id, op_code, rcode);
        r.metadata.recursion_desired = rd;
        r.metadata.checking_disabled = msg.metadata.checking_disabled;
        r.add_queries(msg.queries.iter().cloned());
        if let Some(e) = edns {
            r.set_edns(our_edns(our_payload, e.dnssec_ok));
        }
        r
    };
    if msg.op_code != OpCode::Query {
        return Inbound::Reply(skeleton(ResponseCode::NotImp), ReplyKind::NotImp);
    }
    if msg.version() > 0 {
        // BADVERS is an extended RCODE: it needs our OPT record, which `skeleton` adds.
        let mut r = skeleton(ResponseCode::BADVERS);
        r.queries.clear();
        return Inbound::Reply(r, ReplyKind::BadVers);
    }
    let [query] = msg.queries.as_slice() else {
        return Inbound::Reply(skeleton(ResponseCode::FormErr), ReplyKind::FormErr);
    };
    if matches!(
        query.query_type(),
        RecordType::AXFR | RecordType::IXFR | RecordType::OPT
    ) {
        return Inbound::Reply(skeleton(ResponseCode::Refused), ReplyKind::Refused);
    }
    Inbound::Query(ClientQuery {
        id,
        op_code,
        rd,
        cd: msg.metadata.checking_disabled,
        query: query.clone(),
        edns,
    })
}

/// A response to `q` with rcode `rcode`, the question echoed exactly, and an OPT record only
/// when the query had one ([RFC 6891 §6.1.1](https://www.rfc-editor.org/rfc/rfc6891#section-6.1.1)).
/// An extended RCODE cannot be expressed without OPT: it becomes SERVFAIL then.
pub(crate) fn response(q: &ClientQuery, rcode: ResponseCode, our_payload: u16) -> Message {
    let rcode = if rcode.high() > 0 && q.edns.is_none() {
        ResponseCode::ServFail
    } else {
        rcode
    };
    let mut r = Message::error_msg(q.id, q.op_code, rcode);
    r.metadata.recursion_desired = q.rd;
    r.metadata.checking_disabled = q.cd;
    r.add_query(q.query.clone());
    if let Some(e) = q.edns {
        r.set_edns(our_edns(our_payload, e.dnssec_ok));
    }
    r
}

/// Writes `qname`'s exact spelling into every record owned by it (compared without case),
/// so the client sees the case it asked with (the question is echoed verbatim anyway).
pub(crate) fn echo_case(records: &mut [Record], qname: &Name) {
    for r in records {
        if r.name == *qname {
            r.name = qname.clone();
        }
    }
}

/// The upstream answer `up` relayed to the client of `q`: our header and OPT, upstream's
/// RCODE, AA, RA and records (owner names in the client's case). Upstream's OPT and any
/// TSIG are hop-by-hop and not passed on; AD is cleared because the ALG may rewrite answers.
pub(crate) fn relay(q: &ClientQuery, up: Message, our_payload: u16) -> Message {
    let mut r = response(q, up.metadata.response_code, our_payload);
    r.metadata.authoritative = up.metadata.authoritative;
    r.metadata.recursion_available = up.metadata.recursion_available;
    let qname = q.query.name().clone();
    r.answers = up.answers;
    r.authorities = up.authorities;
    r.additionals = up.additionals;
    echo_case(&mut r.answers, &qname);
    echo_case(&mut r.authorities, &qname);
    echo_case(&mut r.additionals, &qname);
    r
}

/// The AAAA records of an answer section: (owner, address, TTL).
pub(crate) fn aaaa_records(m: &Message) -> Vec<(&Name, Ipv6Addr, u32)> {
    m.answers
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN)
        .filter_map(|r| match &r.data {
            RData::AAAA(AAAA(a)) => Some((&r.name, *a, r.ttl)),
            _ => None,
        })
        .collect()
}

/// The ULID record found in an answer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UlidFound {
    /// The first well-formed one: (ULID, TTL).
    pub(crate) ulid: Option<(Ulid, u32)>,
    /// Records of the type whose RDATA is not exactly 16 bytes (ignored).
    pub(crate) bad: u64,
}

/// Looks for ULID records (type `ulid_type`, class IN, RDATA exactly 16 bytes) in the answer
/// section. Their RDATA is opaque ([RFC 3597 §4](https://www.rfc-editor.org/rfc/rfc3597#section-4)):
/// copied, never interpreted beyond its length.
pub(crate) fn find_ulid(m: &Message, ulid_type: u16) -> UlidFound {
    let mut found = UlidFound { ulid: None, bad: 0 };
    let rt = RecordType::from(ulid_type);
    for r in m.answers.iter().filter(|r| r.dns_class == DNSClass::IN) {
        if r.record_type() != rt {
            continue;
        }
        let bytes: &[u8] = match &r.data {
            RData::Unknown { rdata, .. } => &rdata.anything,
            RData::NULL(n) => &n.anything,
            _ => &[],
        };
        match <[u8; 16]>::try_from(bytes) {
            Ok(b) if found.ulid.is_none() => found.ulid = Some((Ulid(Ipv6Addr::from(b)), r.ttl)),
            Ok(_) => {}
            Err(_) => found.bad = found.bad.saturating_add(1),
        }
    }
    found
}

/// The answer to an AAAA query for a SHIM6 peer: the CNAME chain upstream gave, then a single
/// AAAA carrying the ULID, owned by the name that held the AAAA set.
pub(crate) fn synthesize(
    q: &ClientQuery,
    up: &Message,
    owner: &Name,
    ulid: Ulid,
    ttl: u32,
    our_payload: u16,
) -> Message {
    let mut r = response(q, ResponseCode::NoError, our_payload);
    r.metadata.recursion_available = up.metadata.recursion_available;
    let mut answers: Vec<Record> = up
        .answers
        .iter()
        .filter(|rec| rec.record_type() == RecordType::CNAME)
        .cloned()
        .collect();
    answers.push(Record::from_rdata(
        owner.clone(),
        ttl,
        RData::AAAA(AAAA(ulid.0)),
    ));
    echo_case(&mut answers, q.query.name());
    r.answers = answers;
    r
}

/// Whether `resp` answers `question`: a response, with the same single question (name
/// compared without case).
pub(crate) fn answers_question(resp: &Message, question: &Query) -> bool {
    resp.metadata.message_type == MessageType::Response
        && resp.op_code == OpCode::Query
        && matches!(resp.queries.as_slice(), [q] if q.name() == question.name()
            && q.query_type() == question.query_type()
            && q.query_class() == question.query_class())
}

/// A query for `question` as the ALG sends it upstream.
pub(crate) fn upstream_query(
    id: u16,
    question: &Query,
    rd: bool,
    cd: bool,
    dnssec_ok: bool,
    payload: u16,
) -> Result<Vec<u8>, ProtoError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rd;
    m.metadata.checking_disabled = cd;
    m.add_query(question.clone());
    m.set_edns(our_edns(payload, dnssec_ok));
    m.to_vec()
}

/// An encoded answer and what fitting it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fitted {
    pub(crate) bytes: Vec<u8>,
    /// Additional RRsets dropped to make it fit.
    pub(crate) shed: usize,
    /// Whether it had to be truncated (TC=1).
    pub(crate) truncated: bool,
}

/// Encodes `msg` in at most `limit` bytes. First whole Additional RRsets are dropped, last
/// first, without setting TC (they are not required data,
/// [RFC 2181 §9](https://www.rfc-editor.org/rfc/rfc2181#section-9)); if the answer still
/// does not fit, the reply is the header with TC=1, the question and the OPT record
/// ([RFC 6891 §7](https://www.rfc-editor.org/rfc/rfc6891#section-7): the OPT stays in a
/// truncated response), so the client retries over TCP
/// ([RFC 7766 §5](https://www.rfc-editor.org/rfc/rfc7766#section-5)).
///
/// The truncated message is built here rather than with hickory's size-limited encoder,
/// which in 0.26 can lose the OPT record when the sections overflow.
pub(crate) fn fit(mut msg: Message, limit: usize) -> Result<Fitted, ProtoError> {
    let mut shed = 0;
    loop {
        let bytes = msg.to_vec()?;
        if bytes.len() <= limit {
            return Ok(Fitted {
                bytes,
                shed,
                truncated: false,
            });
        }
        let Some(last) = msg.additionals.last() else {
            break;
        };
        let (name, rtype) = (last.name.clone(), last.record_type());
        while msg
            .additionals
            .last()
            .is_some_and(|r| r.name == name && r.record_type() == rtype)
        {
            msg.additionals.pop();
        }
        shed += 1;
    }
    let mut tc = Message::new(msg.id, MessageType::Response, msg.op_code);
    tc.metadata = msg.metadata;
    tc.metadata.truncation = true;
    tc.queries = msg.queries;
    tc.edns = msg.edns;
    Ok(Fitted {
        bytes: tc.to_vec()?,
        shed,
        truncated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::NULL;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// A query as `dig` sends it: `id`, RD, one question, optional OPT.
    pub(crate) fn query_bytes(
        id: u16,
        qname: &str,
        qtype: RecordType,
        edns: Option<u16>,
    ) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name(qname), qtype));
        if let Some(p) = edns {
            m.set_edns(our_edns(p, false));
        }
        m.to_vec().unwrap()
    }

    fn client_query(edns: Option<u16>) -> ClientQuery {
        match parse_query(
            &query_bytes(7, "Peer.Example.TEST.", RecordType::AAAA, edns),
            1232,
        ) {
            Inbound::Query(q) => q,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn formerr_echoes_the_id() {
        // Header claims one question, none follows.
        let bytes = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let Inbound::Reply(r, ReplyKind::FormErr) = parse_query(&bytes, 1232) else {
            panic!()
        };
        let out = r.to_vec().unwrap();
        assert_eq!(&out[..2], &[0xab, 0xcd]);
        assert_eq!(out[2] & 0x80, 0x80, "QR");
        assert_eq!(out[2] & 0x01, 0x01, "RD echoed");
        assert_eq!(out[3] & 0x0f, 1, "FORMERR");
        assert!(matches!(parse_query(&bytes[..11], 1232), Inbound::Drop));
    }

    #[test]
    fn responses_are_never_answered() {
        let mut b = query_bytes(1, "a.test.", RecordType::A, None);
        b[2] |= 0x80;
        assert!(matches!(parse_query(&b, 1232), Inbound::Drop));
    }

    #[test]
    fn two_questions_is_formerr() {
        let mut m = Message::new(9, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(name("a.test."), RecordType::A));
        m.add_query(Query::query(name("b.test."), RecordType::A));
        let r = parse_query(&m.to_vec().unwrap(), 1232);
        assert!(matches!(r, Inbound::Reply(_, ReplyKind::FormErr)));
    }

    #[test]
    fn other_opcodes_are_notimp() {
        let mut b = query_bytes(3, "a.test.", RecordType::A, None);
        b[2] |= 2 << 3; // STATUS
        let Inbound::Reply(r, ReplyKind::NotImp) = parse_query(&b, 1232) else {
            panic!()
        };
        assert_eq!(r.to_vec().unwrap()[3] & 0x0f, 4);
    }

    #[test]
    fn badvers_for_edns_version_1() {
        let mut m = Message::new(5, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(name("a.test."), RecordType::A));
        let mut e = our_edns(4096, false);
        e.set_version(1);
        m.set_edns(e);
        let Inbound::Reply(r, ReplyKind::BadVers) = parse_query(&m.to_vec().unwrap(), 1232) else {
            panic!()
        };
        let wire = r.to_vec().unwrap();
        let back = Message::from_vec(&wire).unwrap();
        // 16 is both BADVERS and BADSIG; hickory decodes it as the latter.
        assert_eq!(u16::from(back.response_code), 16);
        let opt = back.edns.unwrap();
        assert_eq!(opt.version(), 0, "answered at our version");
        // Low 4 bits of RCODE 16 are 0 in the header; the high 8 bits (1) live in the OPT TTL.
        assert_eq!(wire[3] & 0x0f, 0);
        assert_eq!(opt.rcode_high(), 1);
    }

    #[test]
    fn opt_only_when_asked() {
        let with = response(&client_query(Some(1232)), ResponseCode::NoError, 1232);
        assert!(with.edns.is_some());
        let without = response(&client_query(None), ResponseCode::NoError, 1232);
        assert!(without.edns.is_none());
        // BADVERS cannot be said without OPT.
        let r = response(&client_query(None), ResponseCode::BADVERS, 1232);
        assert_eq!(r.response_code, ResponseCode::ServFail);
    }

    #[test]
    fn case_is_echoed() {
        let q = client_query(None);
        let mut up = Message::response(99, OpCode::Query);
        up.add_query(Query::query(name("peer.example.test."), RecordType::AAAA));
        up.add_answer(Record::from_rdata(
            name("peer.example.test."),
            60,
            RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
        ));
        let r = relay(&q, up, 1232);
        let wire = r.to_vec().unwrap();
        let text = String::from_utf8_lossy(&wire);
        assert!(text.contains("Peer\x07Example\x04TEST"), "{wire:02x?}");
        assert!(!text.contains("peer"));
        let back = Message::from_vec(&wire).unwrap();
        assert_eq!(back.id, 7);
        assert!(back.answers[0].name.eq_case(&name("Peer.Example.TEST.")));
    }

    fn big_answer(q: &ClientQuery, n: u16) -> Message {
        let mut r = response(q, ResponseCode::NoError, 1232);
        for i in 0..n {
            r.add_answer(Record::from_rdata(
                q.query.name().clone(),
                300,
                RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))),
            ));
        }
        r
    }

    #[test]
    fn truncation_keeps_opt() {
        let q = client_query(Some(512));
        let f = fit(big_answer(&q, 40), 512).unwrap();
        assert!(f.truncated);
        assert!(f.bytes.len() <= 512);
        assert_eq!(f.bytes[2] & 0x02, 0x02, "TC");
        let back = Message::from_vec(&f.bytes).unwrap();
        assert!(back.answers.is_empty());
        assert_eq!(back.queries.len(), 1);
        assert!(back.queries[0].name().eq_case(&name("Peer.Example.TEST.")));
        assert_eq!(back.edns.map(|e| e.max_payload()), Some(1232), "OPT kept");
        // ARCOUNT counts the OPT.
        assert_eq!(&f.bytes[10..12], &[0, 1]);
        // Without EDNS in the query there is none in the answer either.
        let q = client_query(None);
        let f = fit(big_answer(&q, 40), 512).unwrap();
        assert!(f.truncated);
        assert_eq!(&f.bytes[10..12], &[0, 0]);
        // Over TCP everything fits.
        let f = fit(big_answer(&q, 40), TCP_MAX).unwrap();
        assert!(!f.truncated);
        assert_eq!(Message::from_vec(&f.bytes).unwrap().answers.len(), 40);
    }

    #[test]
    fn additional_rrsets_are_shed_before_truncating() {
        let q = client_query(Some(512));
        let mut r = big_answer(&q, 4);
        for host in ["ns1.example.test.", "ns2.example.test."] {
            for i in 0..6 {
                r.add_additional(Record::from_rdata(
                    name(host),
                    300,
                    RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i))),
                ));
            }
        }
        let full = r.to_vec().unwrap().len();
        // Room for the answers and one of the two glue RRsets (6 × 28 bytes + name).
        let limit = full - 6 * 28;
        let f = fit(r, limit).unwrap();
        assert!(!f.truncated, "answers fit: no TC");
        assert_eq!(f.shed, 1);
        let back = Message::from_vec(&f.bytes).unwrap();
        assert_eq!(back.answers.len(), 4);
        assert_eq!(back.additionals.len(), 6);
        assert!(back
            .additionals
            .iter()
            .all(|a| a.name == name("ns1.example.test.")));
        assert!(back.edns.is_some());
    }

    #[test]
    fn ulid_records() {
        let mut up = Message::response(1, OpCode::Query);
        let t = RecordType::Unknown(65280);
        let rec = |data: Vec<u8>, ttl| {
            Record::from_rdata(
                name("peer.test."),
                ttl,
                RData::Unknown {
                    code: t,
                    rdata: NULL::with(data),
                },
            )
        };
        up.add_answer(rec(vec![1; 15], 10));
        up.add_answer(rec(vec![0xfc; 16], 20));
        up.add_answer(rec(vec![0xfd; 17], 30));
        // The record survives the wire with its opaque RDATA.
        let back = Message::from_vec(&up.to_vec().unwrap()).unwrap();
        let f = find_ulid(&back, 65280);
        assert_eq!(f.bad, 2);
        assert_eq!(f.ulid, Some((Ulid(Ipv6Addr::from([0xfc; 16])), 20)));
        assert_eq!(find_ulid(&back, 65281).ulid, None);
    }
}
