//! DNS query flood (issue #10 item 2), sans-IO on simulated time: one client floods, a
//! spoofed flood comes from random sources, and a legitimate client asks once every 100 ms;
//! a simulated upstream answers everything after 2 ms. The flooder is held to its per-client
//! limit, the pending table and the rate-limit table stay bounded, and the legitimate client
//! gets every answer. Prints a `figure:` line (RELIABILITY.md).

#![allow(clippy::unwrap_used)]

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use dns_alg::hickory_proto::op::{Message, MessageType, OpCode, Query};
use dns_alg::hickory_proto::rr::rdata::AAAA;
use dns_alg::hickory_proto::rr::{Name, RData, Record, RecordType};
use dns_alg::{AlgConfig, Destination, DnsAlg, RateLimitConfig, Transport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn query(id: u16, qname: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(qname).unwrap(),
        RecordType::AAAA,
    ));
    m.to_vec().unwrap()
}

/// The upstream's answer to `question`: one AAAA for AAAA questions, nothing else.
fn answer(question: &[u8]) -> Vec<u8> {
    let q = Message::from_vec(question).unwrap();
    let mut r = Message::response(q.id, OpCode::Query);
    r.add_queries(q.queries.iter().cloned());
    let asked = &q.queries[0];
    if asked.query_type() == RecordType::AAAA {
        r.answers.push(Record::from_rdata(
            asked.name().clone(),
            300,
            RData::AAAA(AAAA("2001:db8:c::1".parse::<Ipv6Addr>().unwrap())),
        ));
    }
    r.to_vec().unwrap()
}

#[test]
fn query_flood_is_limited_per_client_and_legitimate_clients_are_served() {
    let upstream: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
    let mut cfg = AlgConfig::new(vec![upstream]);
    cfg.rate_limit = RateLimitConfig {
        per_second: 20,
        burst: 40,
        max_clients: 1024,
    };
    cfg.max_pending = 512;
    let max_pending = cfg.max_pending;
    let mut alg = DnsAlg::new(cfg, 5).unwrap();
    let flooder: SocketAddr = "[fc00:1:2:3::666]:5353".parse().unwrap();
    let legit: SocketAddr = "[fc00:1:2:3::1001]:5353".parse().unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let t0 = Instant::now();
    let mut in_flight: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let (mut flood_sent, mut flood_answered) = (0u64, 0u64);
    let (mut spoofed_sent, mut legit_sent) = (0u64, 0u64);
    let mut legit_answered = HashSet::new();
    let mut max_seen_pending = 0;
    let seconds = 3;
    for step in 0..seconds * 1000u64 {
        let now = t0 + Duration::from_millis(step);
        // 3 000 queries/s from the flooder, 1 000/s from random (spoofed) sources.
        for _ in 0..3 {
            let q = query(rng.gen(), &format!("x{}.flood.example.", rng.gen::<u32>()));
            alg.handle_query(now, flooder, &q, Transport::Udp);
            flood_sent += 1;
        }
        for _ in 0..1 {
            let ip = IpAddr::V6(Ipv6Addr::from_bits(rng.gen::<u128>()));
            let q = query(rng.gen(), &format!("y{}.spoof.example.", rng.gen::<u32>()));
            alg.handle_query(now, SocketAddr::new(ip, 53), &q, Transport::Udp);
            spoofed_sent += 1;
        }
        if step % 100 == 0 {
            let id = u16::try_from(legit_sent).unwrap();
            alg.handle_query(now, legit, &query(id, "www.legit.example."), Transport::Udp);
            legit_sent += 1;
        }
        // The upstream answers after 2 ms.
        while in_flight
            .front()
            .is_some_and(|(at, _)| *at + Duration::from_millis(2) <= now)
        {
            let (_, q) = in_flight.pop_front().unwrap();
            alg.handle_upstream(now, upstream, &answer(&q));
        }
        alg.handle_timeout(now);
        while let Some(t) = alg.poll_transmit() {
            match t.destination {
                Destination::Upstream(_) => in_flight.push_back((now, t.payload)),
                Destination::Client(c) if c == flooder => flood_answered += 1,
                Destination::Client(c) if c == legit => {
                    let m = Message::from_vec(&t.payload).unwrap();
                    assert!(!m.answers.is_empty(), "legit answer carries the AAAA");
                    legit_answered.insert(m.id);
                }
                Destination::Client(_) => {}
            }
        }
        while alg.poll_event().is_some() {}
        max_seen_pending = max_seen_pending.max(alg.pending());
    }
    let s = alg.stats().clone();
    // The flooder: one burst plus the sustained rate over the run.
    let allowed = 40 + 20 * seconds;
    assert!(flood_answered <= allowed, "{flood_answered} > {allowed}");
    assert!(flood_answered >= allowed - 2, "{flood_answered}");
    assert_eq!(
        legit_answered.len() as u64,
        legit_sent,
        "every legit query answered"
    );
    assert!(max_seen_pending <= max_pending);
    assert!(s.rate_limited >= flood_sent - allowed);
    println!(
        "figure: DNS flood over {seconds} s: flooder {flood_sent} queries → {flood_answered} \
         answered (limit 40 + 20/s), spoofed {spoofed_sent} from random sources (overload \
         drops {}), legit {}/{legit_sent} answered, pending peak {max_seen_pending} (max \
         {max_pending}), rate-limited {}",
        s.overload,
        legit_answered.len(),
        s.rate_limited
    );
}
