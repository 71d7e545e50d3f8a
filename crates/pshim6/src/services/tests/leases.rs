//! DHCPv6 on the slow path: leases make (and unmake) engine hosts.

use super::*;
use run_config::StoreSettings;

#[test]
fn dhcpv6_solicit_gets_a_reply_with_a_cga_and_the_host_becomes_an_engine_host() {
    let mut fx = fixture("dhcp");
    let client_ll = a("fe80::11:22ff:fe33:4455");
    let duid = vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [1, 2, 3]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.clone()));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::RapidCommit);
    m.opts_mut().insert(DhcpOption::ORO(ORO {
        opts: vec![OptionCode::DomainNameServers],
    }));
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 7,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    let f = udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(client_ll, 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0);
    let out: Vec<_> = injected(&fx.link)
        .into_iter()
        .filter(|(_, f)| f[20] == 17)
        .collect();
    assert_eq!(out.len(), 1, "one UDP answer: {out:02x?}");
    let (port, f) = &out[0];
    assert_eq!(*port, PortId(0));
    let (mac, src, dst, payload) = parse_udp(f);
    assert_eq!(mac, HOST_MAC, "to the MAC the Solicit came from");
    assert_eq!(src, sa(a("fe80::1"), 547), "from our link-local");
    assert_eq!(dst, sa(client_ll, 546));
    let reply = Dhcp::decode(&mut Decoder::new(&payload)).unwrap();
    assert_eq!(reply.msg_type(), MessageType::Reply, "rapid commit");
    assert_eq!(
        reply.opts().get(OptionCode::DomainNameServers),
        Some(&DhcpOption::DomainNameServers(vec![a("fc00:1:2:3::1")])),
        "the ALG's address as DNS server"
    );
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    let cmula = ia
        .opts
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAAddr(x) => Some(x.addr),
            _ => None,
        })
        .expect("an address");
    assert!(DataplaneConfig::example().ulid_prefix.contains(cmula));
    // The engine took it: it checked that it is a CGA of the site key under the prefix.
    let locators = fx.sp.engine().local_locators(Ulid(cmula));
    assert_eq!(
        locators,
        vec![
            Locator(dataplane::config::Prefix64::of(a("2001:db8:a:1::")).with_iid_of(cmula)),
            Locator(dataplane::config::Prefix64::of(a("2001:db8:b:1::")).with_iid_of(cmula)),
        ]
    );
    let s = fx.sp.stats();
    assert_eq!((s.udp_in, s.udp_out, s.services_hosts), (1, 1, 1));
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("host bound")
            && l.contains(&cmula.to_string())
            && l.contains("0003000102112233")),
        "{lines:?}"
    );
    let counters = fx.sp.services_counters();
    assert!(
        counters.contains(&("dhcp.reply".to_string(), 1)),
        "{counters:?}"
    );

    // A restart loads the binding from the journal: the host is an engine host at once.
    let again = fixture_reusing(&fx.dir);
    assert_eq!(again.engine().local_locators(Ulid(cmula)).len(), 2);
}

/// A slow path whose DHCPv6 journal is `dir`'s (what a restart sees).
fn fixture_reusing(dir: &std::path::Path) -> SlowPath {
    slow_path_with_store(&StoreSettings::Journal(dir.join("leases.journal"))).0
}

/// A slow path with DHCPv6 on the store of `store`, and its punt/inject link.
pub(super) fn slow_path_with_store(store: &StoreSettings) -> (SlowPath, Arc<SlowPathLink>) {
    let dp = dataplane();
    let key = SiteKey::from_pkcs8_pem(KEY).unwrap();
    let cfg = dhcp::DhcpConfig {
        ulid_prefix: dhcp::Prefix64(dp.ulid_prefix.0.to_be_bytes()),
        journal: match store {
            StoreSettings::Journal(p) => p.clone(),
            StoreSettings::Etcd(_) => PathBuf::new(),
        },
        pa_prefixes: dp
            .providers
            .iter()
            .map(|p| dhcp::Prefix64(p.prefix.0.to_be_bytes()))
            .collect(),
        ..dhcp::DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/64'\njournal='j'\n",
        )
        .unwrap()
    };
    let timeline: Timeline = Arc::new(|_: &str| {});
    let dhcp = DhcpService::with_store(
        cfg,
        store,
        key.public_key_der(),
        dp.inside.mac.0,
        5,
        Arc::clone(&timeline),
    )
    .unwrap();
    let site = SiteSetup {
        key,
        engine: EngineConfig::default(),
        hosts: vec![],
        seed: 1,
        peers: PeerLocatorCache::new(),
        resolver: Box::new(StaticResolver::default()),
    };
    let (neighbors, _) = neighbor_table(64);
    let t0 = Instant::now();
    let link = Arc::new(SlowPathLink::new(64, 64));
    let io = SlowPathIo {
        table: TableWriter::new(&TableConfig::new(64, 1).with_seed(1)).unwrap(),
        neighbors,
        link: Arc::clone(&link),
        status: ProviderStatus::new(&dp),
        links: LinkState::new(3),
        shard: 0,
        epoch: t0,
    };
    let inside = dp.inside.global;
    let mut sp = SlowPath::new(SlowPathConfig::default(), dp, site, io, t0).unwrap();
    sp.set_services(
        Box::new(Services::new(inside, None, Some(dhcp), timeline)),
        t0,
    );
    (sp, link)
}

#[test]
fn dhcpv6_through_workers_and_slow_path_on_the_mem_backend() {
    use dataplane::backend::mem::{pair, MemConfig};
    use dataplane::backend::BufPool;
    use dataplane::buf::PacketBuf;
    use dataplane::io::PortQueue;
    use dataplane::slowpath::{Pipeline, PipelineConfig};

    let dir = std::env::temp_dir().join(format!("pshim6-services-mem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dp = dataplane();
    let key = SiteKey::from_pkcs8_pem(KEY).unwrap();
    let cfg = dhcp::DhcpConfig {
        ulid_prefix: dhcp::Prefix64(dp.ulid_prefix.0.to_be_bytes()),
        dns_servers: vec![dp.inside.global],
        journal: dir.join("leases.journal"),
        ..dhcp::DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00::/64'\njournal='j'\n",
        )
        .unwrap()
    };
    let timeline: Timeline = Arc::new(|_: &str| {});
    let dhcp = DhcpService::new(
        cfg,
        key.public_key_der(),
        dp.inside.mac.0,
        6,
        Arc::clone(&timeline),
    )
    .unwrap();
    let services = Services::new(dp.inside.global, None, Some(dhcp), timeline);
    let pool = Arc::new(BufPool::new(1024, 2048));
    let mut far = Vec::new();
    let mut queues = Vec::new();
    for port in [PortId(0), PortId(1), PortId(2)] {
        let (near, other) = pair(&pool, &MemConfig::new(1)).unwrap();
        far.push(other.into_queues().pop().unwrap());
        queues.push((port, near.into_queues().pop().unwrap()));
    }
    let site = SiteSetup {
        key,
        engine: EngineConfig::default(),
        hosts: vec![],
        seed: 2,
        peers: PeerLocatorCache::new(),
        resolver: Box::new(StaticResolver::default()),
    };
    let pcfg = PipelineConfig {
        dataplane: dp,
        slow_path: SlowPathConfig::default(),
        table_capacity: 64,
        neighbor_capacity: 64,
    };
    let p =
        Pipeline::start_with_services(pcfg, site, Some(Box::new(services)), vec![queues]).unwrap();

    let client_ll = a("fe80::11:22ff:fe33:4455");
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [4, 5, 6]);
    m.opts_mut().insert(DhcpOption::ClientId(vec![
        0, 3, 0, 1, 2, 0x11, 0x22, 0x33, 0x44, 0x55,
    ]));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    let solicit = udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(client_ll, 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    );
    let inside = &mut far[0];
    let mut b = inside.alloc().unwrap();
    b.reset_from(&solicit).unwrap();
    assert_eq!(inside.tx_burst(&mut vec![b]), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rx = Vec::with_capacity(32);
    let advertise = 'wait: loop {
        assert!(
            Instant::now() < deadline,
            "no DHCPv6 answer on the inside port"
        );
        inside.rx_burst(&mut rx, 32);
        for b in rx.drain(..) {
            let f = b.as_ref().to_vec();
            inside.free(b);
            if f.len() > 56 && f[20] == 17 && f[54..56] == [2, 35] {
                break 'wait f;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (mac, src, dst, payload) = parse_udp(&advertise);
    assert_eq!(
        (mac, src, dst),
        (HOST_MAC, sa(a("fe80::1"), 547), sa(client_ll, 546))
    );
    let msg = Dhcp::decode(&mut Decoder::new(&payload)).unwrap();
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    let report = p.stop();
    let s = report.slow_path.unwrap();
    assert_eq!((s.udp_in, s.udp_out), (1, 1));
    assert_eq!(s.services_hosts, 0, "advertised, not yet bound");
    assert!(report.services.contains(&("dhcp.advertise".to_string(), 1)));
    assert_eq!(
        report.workers[0].fast_path.punted[PuntReason::ForUs.index()],
        1,
        "punted ForUs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `m` from the host's link-local to ff02::1:2 and returns the server's answer.
fn dhcp_exchange(fx: &mut Fixture, m: &Dhcp, at: Duration) -> Dhcp {
    let f = udp_frame(
        [0x33, 0x33, 0, 1, 0, 2],
        HOST_MAC,
        sa(a("fe80::11:22ff:fe33:4455"), 546),
        sa(a("ff02::1:2"), 547),
        &m.to_vec().unwrap(),
    );
    fx.link.punt(PuntReason::ForUs, PortId(0), &f).unwrap();
    fx.sp.poll(fx.t0 + at);
    let out: Vec<_> = injected(&fx.link)
        .into_iter()
        .filter(|(_, f)| f[20] == 17)
        .collect();
    assert_eq!(out.len(), 1, "{out:02x?}");
    let (_, _, _, payload) = parse_udp(&out[0].1);
    Dhcp::decode(&mut Decoder::new(&payload)).unwrap()
}

fn ia_na(id: u32, addr: Option<Ipv6Addr>) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    if let Some(addr) = addr {
        opts.insert(DhcpOption::IAAddr(dhcproto::v6::IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    DhcpOption::IANA(IANA {
        id,
        t1: 0,
        t2: 0,
        opts,
    })
}

#[test]
fn a_released_lease_is_no_longer_an_engine_host() {
    let mut fx = fixture("release");
    let duid = vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x66];
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [7, 7, 7]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.clone()));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::RapidCommit);
    m.opts_mut().insert(ia_na(3, None));
    let reply = dhcp_exchange(&mut fx, &m, Duration::ZERO);
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    let cmula = ia
        .opts
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAAddr(x) => Some(x.addr),
            _ => None,
        })
        .unwrap();
    let Some(DhcpOption::ServerId(server)) = reply.opts().get(OptionCode::ServerId) else {
        panic!("no Server ID");
    };
    assert_eq!(fx.sp.engine().local_locators(Ulid(cmula)).len(), 2);

    let mut rel = Dhcp::new_with_id(MessageType::Release, [8, 8, 8]);
    rel.opts_mut().insert(DhcpOption::ClientId(duid));
    rel.opts_mut().insert(DhcpOption::ServerId(server.clone()));
    rel.opts_mut().insert(DhcpOption::ElapsedTime(0));
    rel.opts_mut().insert(ia_na(3, Some(cmula)));
    let reply = dhcp_exchange(&mut fx, &rel, Duration::from_millis(1));
    assert_eq!(reply.msg_type(), MessageType::Reply);
    assert!(
        fx.sp.engine().local_locators(Ulid(cmula)).is_empty(),
        "the engine no longer acts for it"
    );
    let s = fx.sp.stats();
    assert_eq!((s.services_hosts, s.services_hosts_released), (1, 1));
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("host released") && l.contains(&cmula.to_string())),
        "{lines:?}"
    );
}

/// Issue #10: a lease that runs out without a Renew stops being an engine host (the engine's
/// hosts stay bounded by the live leases); the static host is untouched.
#[test]
fn an_expired_lease_is_no_longer_an_engine_host() {
    let mut fx = fixture("expiry");
    let duid = vec![0, 3, 0, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x77];
    let mut m = Dhcp::new_with_id(MessageType::Solicit, [9, 9, 9]);
    m.opts_mut().insert(DhcpOption::ClientId(duid));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    m.opts_mut().insert(DhcpOption::RapidCommit);
    m.opts_mut().insert(ia_na(4, None));
    let reply = dhcp_exchange(&mut fx, &m, Duration::ZERO);
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    let (cmula, valid) = ia
        .opts
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAAddr(x) => Some((x.addr, x.valid_life)),
            _ => None,
        })
        .unwrap();
    assert!(valid > 0);
    assert_eq!(fx.sp.engine().local_locators(Ulid(cmula)).len(), 2);

    // Shortly before the end of the valid lifetime the host is still served...
    fx.sp
        .poll(fx.t0 + Duration::from_secs(u64::from(valid).saturating_sub(5)));
    assert_eq!(fx.sp.engine().local_locators(Ulid(cmula)).len(), 2);
    assert_eq!(fx.sp.stats().services_hosts_released, 0);
    // ...and once it has run out (no Renew came), the engine no longer acts for it.
    fx.sp
        .poll(fx.t0 + Duration::from_secs(u64::from(valid) + 30));
    assert!(
        fx.sp.engine().local_locators(Ulid(cmula)).is_empty(),
        "the expired lease's host is gone"
    );
    assert_eq!(fx.sp.stats().services_hosts_released, 1);
    assert_eq!(
        fx.sp.engine().local_locators(fx.host).len(),
        2,
        "the configured host stays"
    );
    let lines = fx.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("host expired") && l.contains(&cmula.to_string())),
        "{lines:?}"
    );
}
