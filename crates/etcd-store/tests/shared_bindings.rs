//! Two proxies of one site on one real etcd (issue 9, acceptance "two proxies on the etcd
//! store"): the real DHCPv6 server (`dhcp::DhcpServer`) on [`EtcdStore`], twice in one
//! process, exactly as `pshim6 run` builds it (the service applies `poll_changes` to the
//! server the same way). etcd is started by the test (`etcd` from Debian etcd-server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant, SystemTime};

use dhcp::{Binding, ClientKey, DhcpConfig, DhcpServer, ServerIdentity};
use dhcproto::v6::{DhcpOption, DhcpOptions, Message, MessageType, OptionCode, IANA};
use dhcproto::{Decodable, Decoder, Encodable};
use etcd_store::testing::EtcdProcess;
use etcd_store::{Change, EtcdConfig, EtcdStore};

const KEY: &str = include_str!("../../dhcp/tests/data/site-key.pem");
const CLIENT: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);

fn key_der() -> Vec<u8> {
    cga::SiteKey::from_pkcs8_pem(KEY)
        .unwrap()
        .public_key_der()
        .to_vec()
}

fn dhcp_config() -> DhcpConfig {
    DhcpConfig::from_toml_str(
        "[dhcp]\nsite_key = 'unused'\nulid_prefix = 'fc00:1:2:3::/64'\njournal = ''\n\
         pa_prefixes = ['2001:db8:a:1::/64', '2001:db8:b:1::/64']\n\
         rapid_commit = true\n[dhcp.rate_limit]\nper_second = 1e9\nburst = 1000000\n",
    )
    .unwrap()
}

/// One etcd at a time: on a loaded CI box several etcds fsyncing at once stretch every write.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn store(etcd: &EtcdProcess, timeout_ms: u64) -> EtcdStore {
    let mut c = EtcdConfig::new(vec![etcd.endpoint()], "/pshim6/test-site");
    c.timeout = Duration::from_millis(timeout_ms);
    c.startup_timeout = Duration::from_secs(30);
    EtcdStore::open(c).unwrap()
}

/// A proxy's DHCPv6 server on the shared store; `mac` makes its own DUID-LLT candidate differ.
fn proxy(etcd: &EtcdProcess, mac: u8, seed: u64) -> DhcpServer<EtcdStore> {
    DhcpServer::new(
        dhcp_config(),
        &key_der(),
        store(etcd, 5000),
        ServerIdentity::LinkLayerTime([2, 0, 0, 0, 0, mac]),
        seed,
        SystemTime::now(),
    )
    .unwrap()
}

/// Applies what the other proxies wrote, as `pshim6 run`'s DHCP service does; the number of
/// changes.
fn sync(p: &mut DhcpServer<EtcdStore>) -> usize {
    let changes = p.store_mut().poll_changes();
    let n = changes.len();
    for c in changes {
        match c {
            Change::Bound(b) => p.apply_stored(b),
            Change::Removed(k) => p.apply_removed(&k),
        }
    }
    n
}

fn duid(i: u32) -> Vec<u8> {
    let mut d = vec![0, 4]; // DUID-UUID
    d.extend_from_slice(&[0x5e; 12]);
    d.extend_from_slice(&i.to_be_bytes());
    d
}

fn message(ty: MessageType, duid: &[u8], server: Option<&[u8]>, addr: Option<Ipv6Addr>) -> Vec<u8> {
    let mut m = Message::new_with_id(ty, [1, 2, 3]);
    m.opts_mut().insert(DhcpOption::ClientId(duid.to_vec()));
    m.opts_mut().insert(DhcpOption::ElapsedTime(0));
    if let Some(s) = server {
        m.opts_mut().insert(DhcpOption::ServerId(s.to_vec()));
    }
    if ty == MessageType::Solicit {
        m.opts_mut().insert(DhcpOption::RapidCommit);
    }
    let mut opts = DhcpOptions::new();
    if let Some(a) = addr {
        opts.insert(DhcpOption::IAAddr(dhcproto::v6::IAAddr {
            addr: a,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts,
    }));
    m.to_vec().unwrap()
}

/// The address a Reply commits (valid lifetime > 0), and the Server Identifier.
fn committed(reply: &[u8]) -> Option<(Ipv6Addr, Vec<u8>)> {
    let m = Message::decode(&mut Decoder::new(reply)).ok()?;
    if m.msg_type() != MessageType::Reply {
        return None;
    }
    let Some(DhcpOption::ServerId(s)) = m.opts().get(OptionCode::ServerId) else {
        return None;
    };
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        return None;
    };
    match ia.opts.get(OptionCode::IAAddr) {
        Some(DhcpOption::IAAddr(a)) if a.valid_life > 0 => Some((a.addr, s.clone())),
        _ => None,
    }
}

/// Binds client `i` through `p`, retransmitting like a client (RFC 8415 §15) when a write
/// was not acknowledged (a loaded CI box can exceed the write timeout); at most 5 tries.
fn bind_acked(p: &mut DhcpServer<EtcdStore>, i: u32) -> Ipv6Addr {
    for _ in 0..5 {
        if let Some(a) = bind(p, i) {
            return a;
        }
        eprintln!(
            "client {i}: no Reply ({:?}), retrying",
            p.store().last_error()
        );
    }
    panic!(
        "client {i}: five Solicits, no Reply: {:?}",
        p.store().counters()
    );
}

/// Sends `msg` to `p` until it answers (a client retransmits), at most 5 times.
fn answered(p: &mut DhcpServer<EtcdStore>, msg: &[u8]) -> Vec<u8> {
    for _ in 0..5 {
        if let Some(r) = p.handle(SystemTime::now(), CLIENT, msg) {
            return r;
        }
    }
    panic!("five tries, no Reply: {:?}", p.store().counters());
}

/// Binds client `i` through `p` with a Rapid-Commit Solicit.
fn bind(p: &mut DhcpServer<EtcdStore>, i: u32) -> Option<Ipv6Addr> {
    let r = p.handle(
        SystemTime::now(),
        CLIENT,
        &message(MessageType::Solicit, &duid(i), None, None),
    )?;
    committed(&r).map(|(a, _)| a)
}

fn key(i: u32) -> ClientKey {
    ClientKey {
        duid: duid(i),
        iaid: 1,
    }
}

/// Polls `p` until `i`'s binding is there; the time it took.
fn wait_for(p: &mut DhcpServer<EtcdStore>, i: u32, bound_at: Instant) -> Duration {
    while p.binding(&key(i)).is_none() {
        assert!(
            bound_at.elapsed() < Duration::from_secs(5),
            "binding {i} never reached the other proxy"
        );
        sync(p);
        std::thread::sleep(Duration::from_micros(200));
    }
    bound_at.elapsed()
}

/// Everything that defines how a proxy serves the host: CMULA, CGA modifier, collision
/// count, Sec, prefix, locators, lease times (the CGA Parameters follow from these).
fn same_service(a: &Binding, b: &Binding, der: &[u8]) {
    assert_eq!(a, b);
    assert_eq!(a.cga_parameters(der), b.cga_parameters(der));
    cga::verify(b.address, &b.cga_parameters(der)).unwrap();
}

#[test]
fn a_host_bound_through_a_is_served_identically_by_b_and_the_watch_is_quick() {
    let _serial = serial();
    let etcd = EtcdProcess::start().unwrap();
    let mut a = proxy(&etcd, 0xa, 1);
    let mut b = proxy(&etcd, 0xb, 2);
    // One Server Identifier for the site: the first proxy's, claimed in etcd.
    assert_eq!(a.server_duid(), b.server_duid());
    let der = key_der();
    let mut lat = Vec::new();
    for i in 0..30 {
        let addr = bind_acked(&mut a, i);
        let t = Instant::now();
        lat.push(wait_for(&mut b, i, t));
        same_service(
            a.binding(&key(i)).unwrap(),
            b.binding(&key(i)).unwrap(),
            &der,
        );
        assert_eq!(b.binding(&key(i)).unwrap().address, addr);
        assert_eq!(b.binding(&key(i)).unwrap().locators.len(), 2);
        // The host renews through B (A is gone, say): same CMULA, B's Server ID accepted.
        let renew = message(
            MessageType::Renew,
            &duid(i),
            Some(a.server_duid()),
            Some(addr),
        );
        let (got, sid) = committed(&answered(&mut b, &renew)).unwrap();
        assert_eq!((got, sid.as_slice()), (addr, a.server_duid()));
    }
    // B's renewals reached A too.
    for i in 0..30 {
        let t = Instant::now();
        while a.binding(&key(i)) != b.binding(&key(i)) {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "B's renewal of {i} never reached A"
            );
            sync(&mut a);
        }
    }
    lat.sort();
    eprintln!(
        "watch propagation A -> B over {} bindings: median {:?}, max {:?}",
        lat.len(),
        lat[lat.len() / 2],
        lat[lat.len() - 1]
    );
    assert!(lat[lat.len() - 1] < Duration::from_millis(500), "{lat:?}");
    assert_eq!(a.counters().store_errors + b.counters().store_errors, 0);
}

#[test]
fn two_proxies_binding_one_client_at_once_hand_out_one_cmula() {
    let _serial = serial();
    let etcd = EtcdProcess::start().unwrap();
    let mut a = proxy(&etcd, 0xa, 11);
    let mut b = proxy(&etcd, 0xb, 12);
    for i in 0..10 {
        // Both proxies hear the same multicast Solicit before either sees the other's write:
        // each draws its own modifier; the etcd transaction lets one win, the other adopts it.
        let (first, second) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let x = bind(first, i).expect("first acknowledges");
        let y = bind(second, i).expect("second acknowledges");
        assert_eq!(x, y, "client {i}: both proxies must give the same CMULA");
        assert_eq!(
            first.binding(&key(i)).unwrap().address,
            second.binding(&key(i)).unwrap().address
        );
    }
    assert_eq!(
        a.counters().store_conflicts + b.counters().store_conflicts,
        10
    );
    assert_eq!(
        a.store().counters().conflicts + b.store().counters().conflicts,
        10
    );
    // And once the watch caught up, both hold the same bindings.
    let t = Instant::now();
    loop {
        sync(&mut a);
        sync(&mut b);
        if (0..10).all(|i| a.binding(&key(i)) == b.binding(&key(i))) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the proxies never converged"
        );
    }
}

#[test]
fn etcd_restart_loses_no_acknowledged_binding_and_outage_writes_get_no_reply() {
    let _serial = serial();
    let mut etcd = EtcdProcess::start().unwrap();
    let mut a = proxy(&etcd, 0xa, 21);
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push((i, bind_acked(&mut a, i)));
    }
    etcd.kill();
    // During the outage: no Reply (nothing durable backs it), counted.
    let t = Instant::now();
    assert_eq!(bind(&mut a, 100), None, "no Reply while etcd is down");
    eprintln!("a write during the outage failed after {:?}", t.elapsed());
    assert!(
        t.elapsed() <= Duration::from_millis(3500),
        "bounded by timeout_ms"
    );
    assert!(a.counters().store_errors >= 1);
    assert!(a.store().counters().write_failures >= 1);
    assert!(
        a.binding(&key(100)).is_none(),
        "nothing installed without the store's ack"
    );
    etcd.restart().unwrap();
    // The client retransmits until the store is back.
    let t = Instant::now();
    let addr = loop {
        sync(&mut a);
        if let Some(x) = bind(&mut a, 100) {
            break x;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no Reply after etcd came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("writes succeed again {:?} after the restart", t.elapsed());
    // The session state is what the last poll drained (the service polls every 10 ms).
    sync(&mut a);
    assert!(a.store().connected(), "{:?}", a.store().last_error());
    assert!(
        a.store().counters().resyncs >= 2,
        "resynchronised after the reconnect"
    );
    acked.push((100, addr));
    // A proxy started now sees every acknowledged binding, unchanged.
    let c = proxy(&etcd, 0xc, 22);
    for (i, addr) in &acked {
        assert_eq!(
            c.binding(&key(*i)).map(|b| b.address),
            Some(*addr),
            "binding {i}"
        );
    }
    assert_eq!(c.bindings().count(), acked.len());
}

#[test]
fn a_proxy_started_after_the_bindings_were_written_has_them_all_before_it_answers() {
    let _serial = serial();
    let etcd = EtcdProcess::start().unwrap();
    let mut a = proxy(&etcd, 0xa, 31);
    let mut acked = Vec::new();
    for i in 0..100 {
        acked.push((i, bind_acked(&mut a, i)));
    }
    // Opening the store returns only after the snapshot: the server is built on all of it.
    let t = Instant::now();
    let mut late = proxy(&etcd, 0xd, 32);
    eprintln!(
        "late proxy: store opened and 100 bindings loaded in {:?}",
        t.elapsed()
    );
    assert_eq!(late.server_duid(), a.server_duid());
    for (i, addr) in &acked {
        assert_eq!(late.binding(&key(*i)), a.binding(&key(*i)));
        // Its very first answers already give each host its CMULA.
        let renew = message(
            MessageType::Renew,
            &duid(*i),
            Some(a.server_duid()),
            Some(*addr),
        );
        let (got, _) = committed(&answered(&mut late, &renew)).unwrap();
        assert_eq!(got, *addr);
    }
    assert_eq!(
        late.counters().bindings_created,
        0,
        "no host got a new CMULA"
    );
}

#[test]
fn a_release_through_one_proxy_removes_the_host_from_the_other() {
    let _serial = serial();
    let etcd = EtcdProcess::start().unwrap();
    let mut a = proxy(&etcd, 0xa, 41);
    let mut b = proxy(&etcd, 0xb, 42);
    let addr = bind_acked(&mut a, 7);
    wait_for(&mut b, 7, Instant::now());
    let release = message(
        MessageType::Release,
        &duid(7),
        Some(a.server_duid()),
        Some(addr),
    );
    answered(&mut b, &release);
    assert!(b.binding(&key(7)).is_none());
    let t = Instant::now();
    while a.binding(&key(7)).is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the release never reached A"
        );
        sync(&mut a);
    }
}
