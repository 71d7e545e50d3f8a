#![allow(clippy::unwrap_used)]
use std::sync::Arc;
use std::time::Instant;
use dataplane::backend::mem::{self, Generator, MemConfig, Refill, Sink};
use dataplane::backend::BufPool;
use dataplane::io::{PortQueue, BURST};
#[test]
fn perf() {
    for refill in [Refill::Rewrite, Refill::Keep] {
        let pool = Arc::new(BufPool::new(4096, 2048));
        let cfg = MemConfig { ring_size: 1024, ..MemConfig::new(1) };
        let (g, wi) = mem::pair(&pool, &cfg).unwrap();
        let (wo, s) = mem::pair(&pool, &cfg).unwrap();
        let t: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8; 78]).collect();
        let mut gen = Generator::new(g, t, refill).unwrap();
        let mut sink = Sink::new(s);
        let mut rx = wi.into_queues().remove(0);
        let mut tx = wo.into_queues().remove(0);
        let mut b = Vec::with_capacity(BURST);
        let n = 20_000_000u64;
        let t0 = Instant::now();
        let mut fwd = std::time::Duration::ZERO;
        while sink.packets() < n {
            gen.push_burst();
            let t1 = Instant::now();
            rx.rx_burst(&mut b, BURST);
            tx.tx_burst(&mut b);
            fwd += t1.elapsed();
            sink.drain();
        }
        let el = t0.elapsed();
        eprintln!("{refill:?}: total {:.1} ns/pkt, forwarder {:.1} ns/pkt", el.as_nanos() as f64 / n as f64, fwd.as_nanos() as f64 / n as f64);
    }
}
