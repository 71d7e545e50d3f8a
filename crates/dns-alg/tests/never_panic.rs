//! Arbitrary bytes as a client query or as an upstream answer never panic the core, and
//! whatever it sends back is a decodable DNS message.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dns_alg::hickory_proto::op::{Message, MessageType, OpCode, Query};
use dns_alg::hickory_proto::rr::{Name, RecordType};
use dns_alg::{AlgConfig, Destination, DnsAlg, Transport};
use proptest::prelude::*;

fn upstream() -> SocketAddr {
    "[2001:db8::53]:53".parse().unwrap()
}

fn alg() -> DnsAlg {
    let mut c = AlgConfig::new(vec![upstream()]);
    c.rate_limit.per_second = 0;
    DnsAlg::new(c, 3).unwrap()
}

/// Drains the transmits, asserting that each one decodes.
fn drain_checked(a: &mut DnsAlg) -> Vec<dns_alg::Transmit> {
    let out: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
    for t in &out {
        assert!(
            Message::from_vec(&t.payload).is_ok(),
            "undecodable output {t:?}"
        );
    }
    out
}

fn aaaa_query(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("peer.example.").unwrap(),
        RecordType::AAAA,
    ));
    m.to_vec().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_queries(bytes in proptest::collection::vec(any::<u8>(), 0..600), tcp in any::<bool>()) {
        let mut a = alg();
        let t0 = Instant::now();
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        a.handle_query(t0, "[::1]:5353".parse().unwrap(), &bytes, transport);
        for t in drain_checked(&mut a) {
            if let Destination::Client(_) = t.destination {
                // FORMERR and friends echo the ID.
                prop_assert_eq!(&t.payload[..2], &bytes[..2]);
            }
        }
        a.handle_timeout(t0 + Duration::from_secs(60));
        drain_checked(&mut a);
    }

    /// Mutated queries: a valid query with a few bytes changed reaches deeper than noise.
    #[test]
    fn mutated_queries(flips in proptest::collection::vec((0usize..40, any::<u8>()), 1..6)) {
        let mut a = alg();
        let mut q = aaaa_query(0x4242);
        for (i, b) in flips {
            if let Some(x) = q.get_mut(i) { *x = b; }
        }
        a.handle_query(Instant::now(), "[::1]:5353".parse().unwrap(), &q, Transport::Udp);
        drain_checked(&mut a);
    }

    /// Arbitrary upstream answers, with the ID of a pending question spliced in so they get
    /// past the first check.
    #[test]
    fn arbitrary_upstream_answers(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut a = alg();
        let t0 = Instant::now();
        a.handle_query(t0, "[::1]:5353".parse().unwrap(), &aaaa_query(1), Transport::Udp);
        let asked = drain_checked(&mut a);
        for q in &asked {
            let mut answer = q.payload[..2].to_vec();
            answer.extend_from_slice(&tail);
            a.handle_upstream(t0, upstream(), &answer);
            drain_checked(&mut a);
        }
        a.handle_timeout(t0 + Duration::from_secs(60));
        drain_checked(&mut a);
        while a.poll_event().is_some() {}
    }

    /// Upstream answers that are real responses to the question with mutated bytes.
    #[test]
    fn mutated_upstream_answers(flips in proptest::collection::vec((0usize..80, any::<u8>()), 1..6)) {
        let mut a = alg();
        let t0 = Instant::now();
        a.handle_query(t0, "[::1]:5353".parse().unwrap(), &aaaa_query(1), Transport::Udp);
        for q in drain_checked(&mut a) {
            let mut r = Message::from_vec(&q.payload).unwrap();
            r.metadata.message_type = MessageType::Response;
            let mut bytes = r.to_vec().unwrap();
            bytes.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0xfc, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
            bytes[7] = 1; // ANCOUNT
            for (i, b) in &flips {
                if let Some(x) = bytes.get_mut(*i) { *x = *b; }
            }
            a.handle_upstream(t0, upstream(), &bytes);
            drain_checked(&mut a);
        }
    }
}
