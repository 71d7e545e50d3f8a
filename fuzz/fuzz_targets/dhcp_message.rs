//! Any bytes into the DHCPv6 server: it must never panic, and whatever it answers must be a
//! server message (Advertise or Reply) that decodes. One server lives across inputs so the
//! fuzzer also reaches states with bindings (capped, so memory stays bounded).
#![no_main]

use std::net::Ipv6Addr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use dhcp::{DhcpConfig, DhcpServer, MemoryStore, ServerIdentity};
use libfuzzer_sys::fuzz_target;

const KEY: &str = include_str!("../../crates/dhcp/tests/data/site-key.pem");

fn server() -> &'static Mutex<(DhcpServer<MemoryStore>, u64)> {
    static S: OnceLock<Mutex<(DhcpServer<MemoryStore>, u64)>> = OnceLock::new();
    S.get_or_init(|| {
        let cfg = DhcpConfig::from_toml_str(
            "[dhcp]\nsite_key='k'\nulid_prefix='fc00:1:2:3::/64'\njournal='j'\n\
             pa_prefixes=['2001:db8::/64']\ndns_servers=['fc00:1:2:3::1']\nmax_bindings=512\n\
             [dhcp.rate_limit]\nper_second=1e9\nburst=1000000\n",
        )
        .unwrap();
        let key = cga::SiteKey::from_pkcs8_pem(KEY).unwrap();
        let s = DhcpServer::new(
            cfg,
            key.public_key_der(),
            MemoryStore::new(),
            ServerIdentity::Uuid,
            1,
            UNIX_EPOCH,
        )
        .unwrap();
        Mutex::new((s, 0))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut guard = server().lock().unwrap();
    let (s, clock) = &mut *guard;
    *clock += 1;
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + *clock);
    if let Some(reply) = s.handle(now, Ipv6Addr::LOCALHOST, data) {
        assert!(
            matches!(reply.first(), Some(2 | 7)),
            "only Advertise or Reply"
        );
        use dhcproto::Decodable;
        dhcproto::v6::Message::decode(&mut dhcproto::Decoder::new(&reply)).unwrap();
    }
});
