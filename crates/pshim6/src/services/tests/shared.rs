//! Two proxies' slow paths with their DHCPv6 bindings on one real etcd: a host bound through
//! proxy A becomes an engine host of proxy B through the store's watch, with the same CMULA
//! and locators, and B answers its Renew with that CMULA.

use super::leases::slow_path_with_store;
use super::*;
use etcd_store::testing::EtcdProcess;
use etcd_store::EtcdConfig;
use run_config::StoreSettings;

fn solicit_frame(duid: &[u8], ty: MessageType, server: Option<&[u8]>) -> Vec<u8> {
    let mut m = Dhcp::new_with_id(ty, [4, 5, 6]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.to_vec()));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    if let Some(s) = server {
        m.opts_mut().insert(DhcpOption::ServerId(s.to_vec()));
    } else {
        m.opts_mut().insert(DhcpOption::RapidCommit);
    }
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 3,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(a("fe80::11:22ff:fe33:4455"), 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    )
}

/// The committed address and Server Identifier of the one DHCPv6 answer `sp` sent.
fn answer(link: &SlowPathLink) -> (Ipv6Addr, Vec<u8>) {
    let out: Vec<_> = injected(link)
        .into_iter()
        .filter(|(_, f)| f[20] == 17)
        .collect();
    assert_eq!(out.len(), 1, "one DHCPv6 answer");
    let (_, _, _, payload) = parse_udp(&out[0].1);
    let reply = Dhcp::decode(&mut Decoder::new(&payload)).unwrap();
    assert_eq!(reply.msg_type(), MessageType::Reply);
    let Some(DhcpOption::ServerId(sid)) = reply.opts().get(OptionCode::ServerId) else {
        panic!("no Server ID");
    };
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    let addr = ia
        .opts
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAAddr(x) if x.valid_life > 0 => Some(x.addr),
            _ => None,
        })
        .expect("a committed address");
    (addr, sid.clone())
}

#[test]
fn a_host_bound_through_proxy_a_becomes_an_engine_host_of_proxy_b() {
    let etcd = EtcdProcess::start().unwrap();
    let mut cfg = EtcdConfig::new(vec![etcd.endpoint()], "/pshim6/s1");
    // A loaded CI box can stretch etcd's fsync well past the default.
    cfg.timeout = Duration::from_secs(5);
    cfg.startup_timeout = Duration::from_secs(30);
    let store = StoreSettings::Etcd(cfg);
    let (mut a, a_link) = slow_path_with_store(&store);
    let (mut b, b_link) = slow_path_with_store(&store);
    let duid = vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    a_link
        .punt(
            PuntReason::ForUs,
            PortId(0),
            &solicit_frame(&duid, MessageType::Solicit, None),
        )
        .unwrap();
    a.poll(Instant::now());
    let (cmula, sid) = answer(&a_link);
    assert_eq!(a.engine().local_locators(Ulid(cmula)).len(), 2);
    // B learns it from the watch, on its slow path's timer, and installs the engine host.
    let t = Instant::now();
    while b.engine().local_locators(Ulid(cmula)).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "B never learnt the host"
        );
        b.poll(Instant::now());
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!(
        "host bound through A is an engine host of B after {:?}",
        t.elapsed()
    );
    assert_eq!(
        b.engine().local_locators(Ulid(cmula)),
        a.engine().local_locators(Ulid(cmula))
    );
    assert!(b
        .services_counters()
        .contains(&("dhcp.remote_updates".to_string(), 1)));
    // The host renews with B (the Server ID is the site's, shared): same CMULA.
    b_link
        .punt(
            PuntReason::ForUs,
            PortId(0),
            &solicit_frame(&duid, MessageType::Renew, Some(&sid)),
        )
        .unwrap();
    b.poll(Instant::now());
    let (renewed, sid_b) = answer(&b_link);
    assert_eq!((renewed, sid_b), (cmula, sid));
}
