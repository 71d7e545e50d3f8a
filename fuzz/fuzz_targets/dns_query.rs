//! Any bytes as a DNS query to the ALG, over UDP and TCP, and then as the upstream answer to
//! each question it asked: no panic, and every message it sends decodes.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dns_alg::hickory_proto::op::Message;
use dns_alg::{AlgConfig, DnsAlg, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let up: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
    let client: SocketAddr = "[fc00::1]:5353".parse().unwrap();
    let mut cfg = AlgConfig::new(vec![up]);
    cfg.rate_limit.per_second = 0;
    let mut alg = DnsAlg::new(cfg, 1).unwrap();
    let t0 = Instant::now();
    alg.handle_query(t0, client, data, Transport::Udp);
    alg.handle_query(t0, client, data, Transport::Tcp);
    let mut asked = Vec::new();
    while let Some(t) = alg.poll_transmit() {
        assert!(Message::from_vec(&t.payload).is_ok());
        asked.push(t);
    }
    // The same bytes as the answer to each question, with the question's ID.
    for q in asked {
        let mut answer = q.payload[..2].to_vec();
        answer.extend_from_slice(data.get(2..).unwrap_or_default());
        alg.handle_upstream(t0, up, &answer);
        while let Some(t) = alg.poll_transmit() {
            assert!(Message::from_vec(&t.payload).is_ok());
        }
    }
    alg.handle_timeout(t0 + Duration::from_secs(60));
    while alg.poll_transmit().is_some() {}
    while alg.poll_event().is_some() {}
});
