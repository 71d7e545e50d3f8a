//! Writes the seed corpora of every fuzz target into `corpus/<target>/seed-*` from the same
//! fixtures the targets use (real handshakes, real frames, the example config). Run from
//! `fuzz/`: `cargo run --example seed_corpora`. Existing files are kept; seeds are rewritten.

use std::fs;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use dhcproto::v6::{DhcpOption, Message as DhcpMessage, MessageType as DhcpType, IANA, ORO};
use dhcproto::v6::{DhcpOptions, OptionCode};
use dhcproto::Encodable;
use dns_alg::hickory_proto::op::{Message, MessageType, OpCode, Query};
use dns_alg::hickory_proto::rr::rdata::{AAAA, PTR};
use dns_alg::hickory_proto::rr::{Name, RData, Record, RecordType};
use pshim6_fuzz::engine::{established, exchange};
use pshim6_fuzz::fastpath::{self, context, frame, shim_payload, udp};
use pshim6_fuzz::ops::encode;
use reap::{ReapConfig, ReapMachine};
use shim6::{EngineConfig, ProviderId};
use wire::{ContextTag, ControlRepr, Locator, LocatorPair, MessageBody};

fn write(target: &str, seeds: &[Vec<u8>]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
    }
    println!("{target}: {} seeds", seeds.len());
}

fn shim6_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut e = established(EngineConfig::default());
    // Messages after the handshake: an Update Request (provider 2 down, then up) and REAP
    // keepalives (payload received and not answered).
    let now = e.now;
    e.a.engine.set_provider_state(now, ProviderId(2), false);
    let mut later = exchange(&mut e.a, &mut e.b, now);
    e.a.engine.set_provider_state(now, ProviderId(2), true);
    later.extend(exchange(&mut e.a, &mut e.b, now));
    let all: Vec<_> = e.transcript.iter().chain(&later).cloned().collect();
    let control: Vec<Vec<u8>> = all.iter().map(|t| t.payload.clone()).collect();
    let mut engine = Vec::new();
    for t in &all {
        // From A to B is op 0; from B to A is op 3.
        let op = if e.b.locators.iter().any(|l| l.0 == t.dst) {
            0
        } else {
            3
        };
        engine.push(encode(&[(op, &t.payload)]));
    }
    let tag_b = e.tag_b.get().to_be_bytes();
    engine.push(encode(&[
        (4, &tag_b),
        (5, &[]),
        (0x45, &[]),
        (6, &[]),
        (7, &[]),
    ]));
    let whole: Vec<(u8, &[u8])> = control.iter().map(|c| (0u8, c.as_slice())).collect();
    engine.push(encode(&whole[whole.len().saturating_sub(4)..]));
    (control, engine)
}

fn reap_seeds() -> Vec<Vec<u8>> {
    let l = |s: &str| Locator(s.parse().unwrap());
    let now = Instant::now();
    let mut m = ReapMachine::new(
        ReapConfig::default(),
        now,
        ContextTag::new(0x1234).unwrap(),
        LocatorPair {
            local: l("2001:db8:1::1"),
            peer: l("2001:db8:3::1"),
        },
        vec![l("2001:db8:1::1"), l("2001:db8:2::1")],
        vec![l("2001:db8:3::1"), l("2001:db8:4::1")],
        3,
    );
    m.on_payload_sent(now, now);
    let mut t = now;
    let mut probes = Vec::new();
    for _ in 0..20 {
        t += Duration::from_secs(2);
        m.handle_timeout(t);
        while let Some(x) = m.poll_transmit() {
            if let MessageBody::Probe(p) = x.body {
                let mut msg = vec![0u8; p.body_len()];
                p.emit_body(&mut msg).unwrap();
                probes.push(msg);
            }
        }
    }
    let mut seeds: Vec<Vec<u8>> = probes
        .iter()
        .take(6)
        .map(|p| encode(&[(4, &[]), (7, &[]), (0x08, p), (2, &[]), (0x87, &[])]))
        .collect();
    seeds.push(encode(&[
        (0x85, &[]),
        (5, &[]),
        (6, &[3]),
        (7, &[]),
        (3, &[]),
    ]));
    seeds
}

fn fastpath_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for i in 0..3 {
        let (lt, _pt, host, _loc, peer, peer_loc) = context(i);
        let out = frame(fastpath::INSIDE_MAC, host, peer, 17, &udp(b"hello"));
        let loc = context(i).3;
        let inb = frame(
            fastpath::PROV_A_MAC,
            peer_loc,
            loc,
            140,
            &shim_payload(17, lt, &udp(b"world")),
        );
        let nat_in = frame(fastpath::PROV_A_MAC, peer_loc, loc, 17, &udp(b"nat"));
        seeds.push(encode(&[(0, &out), (1, &inb), (1, &nat_in)]));
    }
    let (_, _, host, _, _, _) = context(0);
    let unknown = frame(
        fastpath::PROV_A_MAC,
        "2001:db8:c:5::9".parse().unwrap(),
        context(0).3,
        140,
        &shim_payload(6, 0x7777, &[0; 20]),
    );
    let to_internet = frame(
        fastpath::INSIDE_MAC,
        host,
        "2001:db8:f00d::53".parse().unwrap(),
        58,
        &[128, 0, 0, 0, 0, 1, 0, 1],
    );
    seeds.push(encode(&[
        (1, &unknown),
        (0, &to_internet),
        (2, &unknown),
        (3, &unknown),
    ]));
    seeds
}

fn dns_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let name = Name::from_ascii("peer.example.").unwrap();
    let mut q = Message::new(0x4242, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(name.clone(), RecordType::AAAA));
    let query = q.to_vec().unwrap();
    let mut r = Message::new(0x4242, MessageType::Response, OpCode::Query);
    r.add_query(Query::query(name.clone(), RecordType::AAAA));
    r.add_answer(Record::from_rdata(
        name.clone(),
        300,
        RData::AAAA(AAAA("2001:db8:c:5::1".parse::<Ipv6Addr>().unwrap())),
    ));
    let answer = r.to_vec().unwrap();
    let mut p = Message::new(0x4243, MessageType::Response, OpCode::Query);
    let rev = dns_alg::reverse_name("fc00:99::1".parse().unwrap());
    p.add_query(Query::query(rev.clone(), RecordType::PTR));
    p.add_answer(Record::from_rdata(rev, 300, RData::PTR(PTR(name))));
    let ptr = p.to_vec().unwrap();
    let upstream = vec![
        encode(&[(0, &answer)]),
        encode(&[(2, &ptr), (0xff, &[0; 40]), (3, &answer)]),
        encode(&[(1, &answer), (0, &ptr)]),
    ];
    (vec![query], upstream)
}

fn dhcp_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for ty in [
        DhcpType::Solicit,
        DhcpType::Request,
        DhcpType::Renew,
        DhcpType::InformationRequest,
    ] {
        let mut m = DhcpMessage::new_with_id(ty, [0xaa, 0xbb, 0xcc]);
        m.opts_mut()
            .insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
        m.opts_mut().insert(DhcpOption::ElapsedTime(0));
        m.opts_mut().insert(DhcpOption::ORO(ORO {
            opts: vec![OptionCode::DomainNameServers],
        }));
        m.opts_mut().insert(DhcpOption::IANA(IANA {
            id: 1,
            t1: 0,
            t2: 0,
            opts: DhcpOptions::new(),
        }));
        seeds.push(m.to_vec().unwrap());
    }
    seeds
}

fn locator_seeds(control: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let addr: Ipv6Addr = "fc00:0:0:a::1".parse().unwrap();
    for c in control {
        let Ok(repr) = ControlRepr::parse(c) else {
            continue;
        };
        if let Some(l) = repr.locator_list() {
            let mut out = addr.octets().to_vec();
            let mut body = vec![0; l.contents_len()];
            let n = l.emit_contents(&mut body).unwrap();
            out.extend_from_slice(&body[..n]);
            seeds.push(out);
        }
        if let Some(p) = repr.cga_parameters() {
            let mut out = addr.octets().to_vec();
            out.extend_from_slice(p);
            seeds.push(out);
        }
    }
    seeds.truncate(8);
    seeds
}

fn option_seeds(control: &[Vec<u8>]) -> Vec<Vec<u8>> {
    // The options region of each message: everything after its fixed part, approximated as
    // the bytes after the first 16 (I1/I2/R2/UR fixed parts are 16 bytes or more).
    control
        .iter()
        .filter(|c| c.len() > 16)
        .map(|c| c[16..].to_vec())
        .take(8)
        .collect()
}

fn ip_packet_seeds() -> Vec<Vec<u8>> {
    fastpath_seeds()
        .iter()
        .flat_map(|s| {
            pshim6_fuzz::ops::records(s)
                .map(|(_, f)| f.get(14..).unwrap_or_default().to_vec())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `config_file`: every example under `configs/`, the complete test configuration (valid
/// in the target's directory, which holds its `site.pem`) with `[te]`, `[dns]` and `[dhcp]`,
/// and one with environment overrides after the NUL.
fn config_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let mut names: Vec<_> = fs::read_dir("../configs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    for p in names {
        seeds.push(fs::read(p).unwrap());
    }
    let te = "[te]\nmode = \"weighted\"\ntolerance_pct = 2.5\n\
              weights = [{ provider = 1, weight = 70 }, { provider = 2, weight = 30 }]\n\
              [[te.rules]]\ndestination = \"2001:db8:99::/48\"\nprovider = 2\n";
    let full = run_config::fixtures::config_text("workers = 2", te);
    seeds.push(full.clone().into_bytes());
    let services = run_config::fixtures::with_services(
        "[dns]\nupstream = [\"[2001:db8:53::53]:53\"]\nupstream_port = 50123\n",
        "[dhcp]\njournal = \"leases.journal\"\nmax_bindings = 10\n",
    );
    seeds.push(services.into_bytes());
    let mut with_env = full.into_bytes();
    with_env.extend_from_slice(
        b"\0SLOW_PATH__PENDING_TOTAL=8192\nWORKER_CORES=2,3\nINSIDE__MTU=9000\n",
    );
    seeds.push(with_env);
    seeds
}

/// `rest_bodies`: valid move bodies, TE policies (JSON, as `PUT /v1/te/policy` takes them),
/// `GET /v1/contexts` query strings and tags.
fn rest_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"local":"2001:db8:a:1::5","peer":"2001:db8:c::1"}"#,
        r#"{"mode":"weighted","weights":[{"provider":1,"weight":70},{"provider":2,"weight":30}],"tolerance_pct":2.5}"#,
        r#"{"mode":"cheapest_first","cheapest":[2,1],"overflow_mbps":100.0,"rules":[{"destination":"2001:db8:99::/48","provider":2}],"ingress":[{"provider":2,"priority":10,"weight":0}],"rebalance":{"enabled":true,"period_ms":3000,"max_moves_per_sec":50}}"#,
        r#"{"mode":"first_up"}"#,
        "state=established&limit=5&offset=10&provider=2",
        "ulid=fc00:1:1:1::5&peer=fc00:2:2:2::5",
        "0x2a",
        "140737488355327",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn main() {
    let (control, engine) = shim6_seeds();
    write("control_parse", &control);
    write("shim6_engine", &engine);
    write("option_iter", &option_seeds(&control));
    write("locators_cga", &locator_seeds(&control));
    write("reap_probe", &reap_seeds());
    write("fastpath", &fastpath_seeds());
    let packets = ip_packet_seeds();
    write("exthdr", &packets);
    write(
        "payload_parse",
        &[
            shim_payload(17, 0x1234_5678_9abc, &[]),
            shim_payload(59, 1, &[]),
        ],
    );
    let (queries, upstream) = dns_seeds();
    write("dns_query", &queries);
    write("dns_upstream", &upstream);
    write("dhcp_message", &dhcp_seeds());
    write("config_file", &config_seeds());
    write("rest_bodies", &rest_seeds());
}
