//! DNS ALG upstream answers: a client AAAA query and a ULID reverse resolution are put in
//! flight, then each `[op, len, bytes]` record is an upstream answer to one of the questions
//! the ALG asked (its ID patched in), or the clock moving on. No panic; every message the ALG
//! sends decodes; nothing stays pending once every question has timed out.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dns_alg::hickory_proto::op::{Message, MessageType, OpCode, Query};
use dns_alg::hickory_proto::rr::{Name, RecordType};
use dns_alg::{AlgConfig, Destination, DnsAlg, Transport};
use libfuzzer_sys::fuzz_target;
use wire::Ulid;

fn query(name: &str, ty: RecordType) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
    m.to_vec().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let up: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
    let client: SocketAddr = "[fc00::1]:5353".parse().unwrap();
    let mut cfg = AlgConfig::new(vec![up]);
    cfg.rate_limit.per_second = 0;
    let mut alg = DnsAlg::new(cfg, 1).unwrap();
    let mut now = Instant::now();
    alg.handle_query(
        now,
        client,
        &query("peer.example.", RecordType::AAAA),
        Transport::Udp,
    );
    alg.handle_query(
        now,
        client,
        &query("peer.example.", RecordType::PTR),
        Transport::Tcp,
    );
    let _ = alg.resolve_ulid(now, Ulid("fc00:99::1".parse().unwrap()));
    let mut asked: Vec<Vec<u8>> = Vec::new();
    let drain = |alg: &mut DnsAlg, asked: &mut Vec<Vec<u8>>| {
        while let Some(t) = alg.poll_transmit() {
            assert!(Message::from_vec(&t.payload).is_ok(), "{t:?}");
            if let Destination::Upstream(_) = t.destination {
                asked.push(t.payload);
            }
        }
        while alg.poll_event().is_some() {}
    };
    drain(&mut alg, &mut asked);
    for (op, body) in pshim6_fuzz::ops::records(data) {
        if op == 0xff {
            now += Duration::from_millis(body.len() as u64 * 100);
            alg.handle_timeout(now);
        } else if let Some(q) = asked.get(usize::from(op) % asked.len().max(1)) {
            // The answer carries the question's ID (else it is dropped at once).
            let mut answer = q[..2].to_vec();
            answer.extend_from_slice(body.get(2..).unwrap_or_default());
            alg.handle_upstream(now, up, &answer);
        } else {
            alg.handle_upstream(now, up, body);
        }
        drain(&mut alg, &mut asked);
    }
    for _ in 0..10 {
        now += Duration::from_secs(30);
        alg.handle_timeout(now);
        drain(&mut alg, &mut asked);
    }
    assert_eq!(alg.pending(), 0);
});
