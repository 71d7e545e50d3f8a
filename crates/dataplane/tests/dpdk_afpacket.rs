//! Both proxies of the two-site lab (`netns_lab`) on the DPDK backend: every proxy interface
//! is a `net_af_packet` virtual device on a veth, created with `rte_vdev_init` from a thread in
//! the proxy's namespace (the PMD opens its socket there) and started from there. Plain Linux hosts in h1 and h2: a
//! `ping -6` from h1 to h2's CMULA must come back, and a 64 KiB TCP exchange (needing Packet
//! Too Big) must come back intact, through SHIM6 contexts established by the proxies.
//!
//! One EAL per process: this file is its own test binary with one test. Runs without NIC or
//! hugepages (`--no-huge --no-pci`). Needs root, `ip`, `ping`, `ethtool`; FAILS rather than
//! skips.
#![cfg(all(feature = "dpdk", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netns_lab;
mod twosite_common;

use dataplane::backend::dpdk::{attach_vdev, init_eal, DpdkQueue, PortSet, PortSetConfig};
use dataplane::slowpath::Pipeline;
use netns_lab::*;
use twosite_common::*;

#[test]
fn ping_and_tcp_between_two_sites_over_dpdk_af_packet() {
    let lab = Lab::new();
    let (s1, s2) = (site(1), site(2));
    let u2 = s2.host().0;
    lab.two_sites(&s1, &s2);

    init_eal(&[
        "dpdk_afpacket",
        "-l",
        "0",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--log-level=warning",
    ])
    .expect("EAL init");

    // Proxy n's ports: net_af_packet{3(n-1)+k} on its inside, A and B veths.
    let mut sets = Vec::new();
    let mut pipelines: Vec<Pipeline<DpdkQueue>> = Vec::new();
    for (n, me, peer) in [(1u8, &s1, &s2), (2, &s2, &s1)] {
        let mut names = Vec::new();
        for (k, link) in ["i", "a", "b"].iter().enumerate() {
            let name = format!("net_af_packet{}", usize::from(n - 1) * 3 + k);
            let iface = lab.ifname(&format!("{n}{link}"));
            let args = format!("iface={iface},qpairs=1,framecnt=512");
            let vdev = name.clone();
            in_ns(&lab.ns(&format!("p{n}")), move || attach_vdev(&vdev, &args))
                .unwrap_or_else(|e| panic!("creating {name} on {iface}: {e}"));
            names.push(name);
        }
        // Started from the namespace too: the PMD's flag ioctls (promiscuous mode, restored
        // by rte_eth_dev_start) look the interface up by name in the calling thread's namespace.
        let (set, queues) = in_ns(&lab.ns(&format!("p{n}")), move || {
            PortSet::open(&PortSetConfig {
                names,
                queues: 1,
                mbufs_per_socket: 4096,
                data_room: 2048,
                rx_desc: 512,
                tx_desc: 512,
                promiscuous: true,
            })
        })
        .expect("start the ports");
        assert!(
            set.ports().iter().all(|p| p.link_up() == Some(true)),
            "a veth is down for DPDK"
        );
        let per_worker = vec![[INSIDE, PROV_A, PROV_B]
            .into_iter()
            .zip(queues.into_iter().map(|mut q| q.pop().unwrap()))
            .collect()];
        let p = Pipeline::start(me.pipeline(), me.setup(peer), per_worker).expect("pipeline");
        pipelines.push(p);
        sets.push(set);
    }

    ping(&lab, u2.0);
    tcp_exchange(&lab, u2.0, 64 * 1024);

    let mut reports = pipelines.into_iter().map(Pipeline::stop);
    let (r1, r2) = (reports.next().unwrap(), reports.next().unwrap());
    let (sp1, sp2) = (r1.slow_path.unwrap(), r2.slow_path.unwrap());
    eprintln!("site 1: {sp1:?}\nsite 2: {sp2:?}");
    assert!(sp1.connects >= 1, "site 1 did not start the handshake");
    assert!(sp1.table_established >= 1 && sp2.table_established >= 1);
    assert!(
        sp1.too_big_sent + sp2.too_big_sent >= 1,
        "no Packet Too Big"
    );
    // The data went through the fast path of both proxies, on DPDK queues.
    let fwd = |r: &dataplane::slowpath::PipelineReport| -> u64 {
        r.workers
            .iter()
            .map(|w| w.fast_path.forwarded.iter().sum::<u64>())
            .sum()
    };
    assert!(fwd(&r1) >= 20 && fwd(&r2) >= 20, "fast path barely used");
    for set in &sets {
        for p in set.ports() {
            let s = p.device_stats().unwrap();
            assert!(s.rx_packets > 0 && s.tx_packets > 0, "port {} idle", p.id());
        }
    }
    drop(sets);
    drop(lab);
}
