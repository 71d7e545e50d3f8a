//! Criterion benches of the fast path on one thread, bursts of 32 in hot buffers:
//! parse/classify (control frames, punted), SHIM6 egress rewrite, SHIM6 ingress restore and
//! NATv6 out per packet, and the egress path at 1K and 1M contexts (lookup hit) and with no
//! context (lookup miss → NATv6), contexts drawn at random from the whole table.
//!
//! `cargo bench -p pshim6-dataplane --bench fastpath`; figures in BENCHMARKS.md.
// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::bench::Synthetic;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::config::{DataplaneConfig, MacAddr};
use dataplane::fastpath::{FastPath, ProviderStatus, PuntReason, Verdict};
use dataplane::io::{PortId, BURST};
use dataplane::neighbor::neighbor_table;
use table::TableWriter;

const ROUTER: MacAddr = MacAddr([2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
const HOST: MacAddr = MacAddr([2, 0x11, 0x22, 0x33, 0x44, 0x55]);
const SIZE: usize = 128;

struct Bench {
    cfg: DataplaneConfig,
    site: Synthetic,
    _table: TableWriter,
    _nbr: dataplane::neighbor::NeighborWriter,
    fp: FastPath,
    rng: u64,
}

impl Bench {
    fn new(contexts: usize) -> Self {
        let cfg = DataplaneConfig::example();
        let site = Synthetic::new(&cfg, contexts);
        let table = site.table(1).unwrap();
        let (mut nbr, reader) = neighbor_table(site.hosts + 8);
        for p in &cfg.providers {
            nbr.insert(p.port, p.exit.next_hop(), ROUTER).unwrap();
        }
        for h in 0..site.hosts {
            nbr.insert(cfg.inside.port, site.host_ulid(h), HOST)
                .unwrap();
        }
        let fp = FastPath::new(&cfg, table.reader(), 0, reader, ProviderStatus::new(&cfg)).unwrap();
        Bench {
            cfg,
            site,
            _table: table,
            _nbr: nbr,
            fp,
            rng: 0x1234_5678,
        }
    }

    fn next(&mut self) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % self.site.contexts as u64) as usize
    }

    /// Writes a fresh frame of `kind` for a random context into `buf`.
    fn fill(&mut self, kind: &str, buf: &mut HeapBuf) {
        let i = self.next();
        let e = self.site.entry(i);
        let mut f = [0u8; SIZE];
        let (dst_mac, src_mac) = if kind == "ingress" || kind == "control" {
            (self.cfg.providers[0].mac.0, ROUTER.0)
        } else {
            (self.cfg.inside.mac.0, HOST.0)
        };
        f[0..6].copy_from_slice(&dst_mac);
        f[6..12].copy_from_slice(&src_mac);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[18..20].copy_from_slice(&((SIZE - 54) as u16).to_be_bytes());
        f[21] = 64;
        let (nh, src, dst) = match kind {
            "egress" => (17, e.local_ulid.0, e.peer_ulid.0),
            "natv6" => (
                17,
                e.local_ulid.0,
                std::net::Ipv6Addr::from_bits(0x2001_0db8_f00d_u128 << 80 | self.rng as u128),
            ),
            _ => (140, e.pair.peer.0, e.pair.local.0),
        };
        f[20] = nh;
        f[22..38].copy_from_slice(&src.octets());
        f[38..54].copy_from_slice(&dst.octets());
        let udp = if nh == 140 {
            let t = e.local_tag.to_bytes();
            let (next, p) = if kind == "control" {
                (59, 0)
            } else {
                (17, 0x80)
            };
            f[54..62].copy_from_slice(&[next, 0, p | t[0], t[1], t[2], t[3], t[4], t[5]]);
            62
        } else {
            54
        };
        f[udp..udp + 8].copy_from_slice(&[
            0x9c,
            0x40,
            0x1f,
            0x90,
            0,
            (SIZE - udp) as u8,
            0x12,
            0x34,
        ]);
        buf.reset_from(&f).unwrap();
    }

    /// Time of `iters` bursts of 32, frames rebuilt (untimed) before each burst.
    fn time(&mut self, kind: &str, iters: u64, ok: fn(Verdict) -> bool) -> Duration {
        let mut bufs: Vec<HeapBuf> = (0..BURST).map(|_| HeapBuf::new()).collect();
        let mut verdicts = [Verdict::Forward(PortId(0)); BURST];
        let port = if kind == "ingress" || kind == "control" {
            PortId(1)
        } else {
            PortId(0)
        };
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            for b in &mut bufs {
                self.fill(kind, b);
            }
            let t = Instant::now();
            self.fp
                .process_burst(port, black_box(&mut bufs[..]), &mut verdicts);
            total += t.elapsed();
            assert!(verdicts.iter().all(|v| ok(*v)), "{kind}: {:?}", verdicts[0]);
        }
        total
    }
}

fn per_packet(c: &mut Criterion) {
    let mut b = Bench::new(1000);
    let mut g = c.benchmark_group("fastpath_1k");
    g.throughput(Throughput::Elements(BURST as u64));
    type Case = (&'static str, &'static str, fn(Verdict) -> bool);
    let cases: [Case; 4] = [
        ("classify_control", "control", |v| {
            matches!(v, Verdict::Punt(PuntReason::Control))
        }),
        ("egress_rewrite", "egress", |v| {
            v == Verdict::Forward(PortId(1))
        }),
        ("ingress_restore", "ingress", |v| {
            v == Verdict::Forward(PortId(0))
        }),
        ("natv6_out", "natv6", |v| {
            matches!(v, Verdict::Forward(PortId(1 | 2)))
        }),
    ];
    for (name, kind, ok) in cases {
        g.bench_function(name, |bn| bn.iter_custom(|iters| b.time(kind, iters, ok)));
    }
    g.finish();
}

fn by_table_size(c: &mut Criterion) {
    let mut g = c.benchmark_group("by_contexts");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(30);
    for contexts in [1_000usize, 1_000_000] {
        let mut b = Bench::new(contexts);
        g.bench_function(format!("egress_hit_{contexts}"), |bn| {
            bn.iter_custom(|iters| b.time("egress", iters, |v| v == Verdict::Forward(PortId(1))))
        });
        g.bench_function(format!("ingress_hit_{contexts}"), |bn| {
            bn.iter_custom(|iters| b.time("ingress", iters, |v| v == Verdict::Forward(PortId(0))))
        });
        g.bench_function(format!("natv6_miss_{contexts}"), |bn| {
            bn.iter_custom(|iters| {
                b.time("natv6", iters, |v| {
                    matches!(v, Verdict::Forward(PortId(1 | 2)))
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, per_packet, by_table_size);
criterion_main!(benches);
