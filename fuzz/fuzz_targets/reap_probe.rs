//! REAP Probe parsing and the REAP machine fed arbitrary probes, keepalives, payload activity,
//! locator changes and time (`[op, len, bytes]` records). No panic; every probe the machine
//! sends passes `ProbeRepr::check`; its deadline never lies in the past after `handle_timeout`.
#![no_main]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pshim6_fuzz::ops::records;
use reap::{ReapConfig, ReapMachine};
use wire::{ContextTag, Locator, LocatorPair, MessageBody, ProbeRepr};

fn loc(i: u8) -> Locator {
    Locator(Ipv6Addr::new(0x2001, 0xdb8, u16::from(i), 0, 0, 0, 0, 1))
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let local = vec![loc(1), loc(2)];
    let peer = vec![loc(3), loc(4)];
    let mut m = ReapMachine::new(
        ReapConfig::default(),
        now,
        ContextTag::new(0x1234).unwrap(),
        LocatorPair {
            local: loc(1),
            peer: loc(3),
        },
        local.clone(),
        peer.clone(),
        7,
    );
    for (op, body) in records(data) {
        let pick = |k: u8| [loc(1), loc(2), loc(3), loc(4), loc(5)][usize::from(k % 5)];
        match op & 0x07 {
            0 | 1 => {
                // The bytes as a whole Probe message (header included), as the wire crate
                // hands it over; parse failures are just dropped.
                if let Ok((probe, _)) = ProbeRepr::parse_body(body) {
                    m.on_probe(now, pick(op >> 3), pick(op >> 5), &probe);
                }
            }
            2 => m.on_keepalive(now),
            3 => m.on_payload_received(now, now),
            4 => m.on_payload_sent(now, now),
            5 => {
                let l = pick(op >> 3);
                if op & 0x80 != 0 {
                    m.local_locator_down(now, l);
                } else {
                    m.local_locator_up(now, l);
                }
            }
            6 => {
                let n = usize::from(op >> 3) % 3;
                let mut p = peer.clone();
                p.truncate(n.max(1));
                if let Some(&b) = body.first() {
                    p.push(pick(b));
                }
                m.set_locators(now, local.clone(), p);
            }
            _ => {
                now += Duration::from_millis(u64::from(op) * 200);
                m.handle_timeout(now);
                if let Some(t) = m.poll_timeout() {
                    assert!(t > now, "deadline {t:?} not after {now:?}");
                }
            }
        }
        while let Some(t) = m.poll_transmit() {
            if let MessageBody::Probe(p) = &t.body {
                assert!(p.check().is_ok(), "{p:?}");
            }
        }
        while m.poll_event().is_some() {}
    }
});
