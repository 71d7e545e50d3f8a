//! AF_PACKET backend on real kernel interfaces: a veth pair between two network namespaces
//! made by each test (names unique per process and test, removed by a guard on drop).
//!
//! Needs root (CAP_NET_ADMIN for namespaces, CAP_NET_RAW for packet sockets). CI runs as root;
//! anywhere else these tests FAIL on purpose rather than skip, so a green run always means
//! the backend was exercised.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod netns_lab;
mod twosite_common;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dataplane::backend::afpacket::{self, AfPacketConfig, AfPacketQueue};
use dataplane::backend::{BackendError, BufPool};
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::io::{LinkProbe, LinkReport, PortQueue, BURST};
use netns_lab::in_ns;

/// EtherType of the test frames (IEEE local experimental), so stray kernel traffic is ignored.
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const MAC_A: [u8; 6] = [0x02, 0x50, 0x36, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x50, 0x36, 0, 0, 0x0b];

fn require_root() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "backend_afpacket tests need root (network namespaces, veth, AF_PACKET sockets); \
         run them as root, as CI does. They fail rather than skip so a pass means they ran."
    );
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2 `ip` is installed");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair, torn down on drop (deleting a namespace destroys
/// the veth end inside it, and with it the pair).
struct Lab {
    ns_a: String,
    ns_b: String,
    if_a: String,
    if_b: String,
}

impl Lab {
    fn new() -> Self {
        require_root();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id());
        let lab = Self {
            ns_a: format!("p6t-{id}-a"),
            ns_b: format!("p6t-{id}-b"),
            // IFNAMSIZ: at most 15 characters ("p6" + pid (≤ 7) + counter + "a").
            if_a: format!("p6{id}a"),
            if_b: format!("p6{id}b"),
        };
        ip(&["netns", "add", &lab.ns_a]);
        ip(&["netns", "add", &lab.ns_b]);
        ip(&[
            "link",
            "add",
            &lab.if_a,
            "netns",
            &lab.ns_a,
            "address",
            &mac(&MAC_A),
            "type",
            "veth",
            "peer",
            "name",
            &lab.if_b,
            "netns",
            &lab.ns_b,
            "address",
            &mac(&MAC_B),
        ]);
        for (ns, ifname) in [(&lab.ns_a, &lab.if_a), (&lab.ns_b, &lab.if_b)] {
            // The appliance owns these interfaces: no kernel IPv6 (no DAD, MLD or RS frames).
            let key = format!("net.ipv6.conf.{ifname}.disable_ipv6=1");
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw", &key])
                .output()
                .expect("ip netns exec sysctl");
            assert!(
                out.status.success(),
                "sysctl {key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        lab
    }

    fn open(&self, side: char, queues: usize, pool: &Arc<BufPool>) -> Vec<AfPacketQueue> {
        let (ns, ifname) = self.side(side);
        let pool = Arc::clone(pool);
        let cfg = AfPacketConfig {
            queues,
            rx_frames: 512,
            tx_frames: 256,
            ..Default::default()
        };
        in_ns(&ns, move || {
            afpacket::open(&ifname, &cfg, &pool).expect("open AF_PACKET")
        })
    }

    fn side(&self, side: char) -> (String, String) {
        match side {
            'a' => (self.ns_a.clone(), self.if_a.clone()),
            _ => (self.ns_b.clone(), self.if_b.clone()),
        }
    }

    fn set_link(&self, side: char, up: bool) {
        let (ns, ifname) = self.side(side);
        ip(&[
            "-n",
            &ns,
            "link",
            "set",
            &ifname,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A test frame from `src` to `dst` carrying `seq`, `len` bytes long (≥ 64).
fn test_frame(src: &[u8; 6], dst: &[u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(dst);
    f.extend_from_slice(src);
    f.extend_from_slice(&TEST_ETHERTYPE);
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((f.len() as u32 ^ seq) as u8);
    }
    f
}

/// An Ethernet/IPv6 frame of flow `flow` (its source address) carrying `seq` as payload.
fn ipv6_frame(flow: u16, seq: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 59, 64]);
    let mut src = [0u8; 16];
    src[..2].copy_from_slice(&[0x20, 0x01]);
    src[14..].copy_from_slice(&flow.to_be_bytes());
    let mut dst = [0u8; 16];
    dst[..2].copy_from_slice(&[0x20, 0x01]);
    dst[15] = 1;
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0; 4]);
    f
}

fn send(q: &mut AfPacketQueue, frames: &[Vec<u8>]) -> usize {
    let mut sent = 0;
    for chunk in frames.chunks(BURST) {
        let mut burst = Vec::with_capacity(BURST);
        for f in chunk {
            let mut b = q.alloc().expect("pool buffer");
            b.reset_from(f).unwrap();
            burst.push(b);
        }
        sent += q.tx_burst(&mut burst);
    }
    sent
}

/// Polls `queues` until `want` frames accepted by `keep` arrived or `timeout` passed; returns
/// them per queue.
fn collect(
    queues: &mut [AfPacketQueue],
    want: usize,
    timeout: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    let mut got = vec![Vec::new(); queues.len()];
    let mut burst: Vec<HeapBuf> = Vec::with_capacity(BURST);
    while got.iter().map(Vec::len).sum::<usize>() < want && Instant::now() < deadline {
        let mut idle = true;
        for (i, q) in queues.iter_mut().enumerate() {
            if q.rx_burst(&mut burst, BURST) > 0 {
                idle = false;
            }
            for b in burst.drain(..) {
                if keep(b.as_ref()) {
                    got[i].push(b.as_ref().to_vec());
                }
                q.free(b);
            }
        }
        if idle {
            thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

fn is_test_frame(f: &[u8]) -> bool {
    f.get(12..14) == Some(&TEST_ETHERTYPE[..])
}

fn wait_link(q: &AfPacketQueue, up: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if q.link_up() == Some(up) {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A plain packet socket bound to an interface: an independent sender/receiver to check our
/// rings against.
struct RawSocket(OwnedFd);

impl RawSocket {
    fn open(ns: &str, ifname: &str) -> Self {
        let ifname = ifname.to_owned();
        in_ns(ns, move || {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2) call; checked below.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
            assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` was just opened and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let name = std::ffi::CString::new(ifname).unwrap();
            // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(ifindex > 0, "if_nametoindex");
            // SAFETY: all-zero is a valid `sockaddr_ll`.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = proto;
            addr.sll_ifindex = ifindex as i32;
            // SAFETY: `addr` is a live `sockaddr_ll` and the length passed is its size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "bind raw socket");
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            // SAFETY: `tv` is a live `timeval` and the length passed is its size.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "SO_RCVTIMEO");
            RawSocket(fd)
        })
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is valid for reads of its length during the call.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "raw send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Test frames received within `timeout` that were not sent by this host.
    fn recv_test_frames(&self, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        while out.len() < want && Instant::now() < deadline {
            // SAFETY: all-zero is a valid `sockaddr_ll`.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` is writable for its length; `from`/`len` describe a live
            // `sockaddr_ll` the kernel may fill.
            let n = unsafe {
                libc::recvfrom(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n > 0
                && from.sll_pkttype != libc::PACKET_OUTGOING
                && is_test_frame(&buf[..n as usize])
            {
                out.push(buf[..n as usize].to_vec());
            }
        }
        out
    }
}

#[test]
fn frames_cross_the_veth_intact_both_ways() {
    let lab = Lab::new();
    let pool = Arc::new(BufPool::new(2048, 2048));
    let mut qa = lab.open('a', 1, &pool);
    let mut qb = lab.open('b', 1, &pool);
    assert!(wait_link(&qa[0], true), "veth carrier never came up");

    let a_to_b: Vec<Vec<u8>> = (0..100)
        .map(|i| test_frame(&MAC_A, &MAC_B, i, 60 + (i as usize * 97) % 1455))
        .collect();
    assert_eq!(send(&mut qa[0], &a_to_b), 100);
    let got = collect(&mut qb, 100, Duration::from_secs(5), is_test_frame);
    assert_eq!(got[0], a_to_b, "A -> B frames differ or are out of order");

    let b_to_a: Vec<Vec<u8>> = (0..100)
        .map(|i| test_frame(&MAC_B, &MAC_A, 1000 + i, 1514 - i as usize * 13))
        .collect();
    assert_eq!(send(&mut qb[0], &b_to_a), 100);
    let got = collect(&mut qa, 100, Duration::from_secs(5), is_test_frame);
    // Only B's frames: A never reads back what it sent itself.
    assert_eq!(
        got[0], b_to_a,
        "B -> A frames differ, are out of order, or A saw its own"
    );

    // 802.1Q-tagged frames: veth strips the tag into packet metadata on receive; the queue
    // must put it back so the frame is byte-exact (largest: MTU + header + tag).
    let tagged: Vec<Vec<u8>> = [64usize, 700, 1518]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut f = test_frame(&MAC_A, &MAC_B, 2000 + i as u32, len - 4);
            f.splice(12..12, [0x81, 0x00, 0x20 | i as u8, 0x07]);
            f
        })
        .collect();
    assert_eq!(send(&mut qa[0], &tagged), 3);
    let is_tagged = |f: &[u8]| f.get(12..14) == Some(&[0x81, 0x00][..]);
    let got = collect(&mut qb, 3, Duration::from_secs(5), is_tagged);
    assert_eq!(got[0], tagged, "VLAN tags not restored");

    let (sa, sb) = (qa[0].stats(), qb[0].stats());
    assert_eq!(sa.tx_packets, 103);
    let bytes = |fs: &[Vec<u8>]| fs.iter().map(|f| f.len() as u64).sum::<u64>();
    assert_eq!(sa.tx_bytes, bytes(&a_to_b) + bytes(&tagged));
    assert!(sb.rx_packets >= 103);
    assert_eq!(sb.tx_packets, 100);
    assert_eq!(
        (sa.tx_dropped, sb.tx_dropped, sa.rx_dropped, sb.rx_dropped),
        (0, 0, 0, 0)
    );
}

#[test]
fn interoperates_with_a_plain_packet_socket() {
    let lab = Lab::new();
    let pool = Arc::new(BufPool::new(1024, 2048));
    let mut qa = lab.open('a', 1, &pool);
    let raw_b = RawSocket::open(&lab.ns_b, &lab.if_b);
    assert!(wait_link(&qa[0], true), "veth carrier never came up");

    // Our TX ring -> the kernel's ordinary receive path.
    let out: Vec<Vec<u8>> = (0..20)
        .map(|i| test_frame(&MAC_A, &MAC_B, i, 64 + i as usize * 50))
        .collect();
    assert_eq!(send(&mut qa[0], &out), 20);
    assert_eq!(raw_b.recv_test_frames(20, Duration::from_secs(5)), out);

    // The kernel's ordinary send path -> our RX ring.
    let back: Vec<Vec<u8>> = (0..20)
        .map(|i| test_frame(&MAC_B, &MAC_A, 500 + i, 1514 - i as usize * 40))
        .collect();
    for f in &back {
        raw_b.send(f);
    }
    let got = collect(&mut qa, 20, Duration::from_secs(5), is_test_frame);
    assert_eq!(got[0], back);

    // Frames another socket of this host sends out of A's interface are outgoing: the queue
    // must not read them back as if they had arrived (PACKET_IGNORE_OUTGOING).
    let raw_a = RawSocket::open(&lab.ns_a, &lab.if_a);
    let local = test_frame(&MAC_A, &MAC_B, 9999, 100);
    raw_a.send(&local);
    assert_eq!(
        raw_b.recv_test_frames(1, Duration::from_secs(5)),
        vec![local]
    );
    let echoed = collect(&mut qa, 1, Duration::from_millis(300), is_test_frame);
    assert!(echoed[0].is_empty(), "queue read back an outgoing frame");
}

#[test]
fn fanout_delivers_each_frame_exactly_once() {
    let lab = Lab::new();
    let pool = Arc::new(BufPool::new(4096, 2048));
    let mut qa = lab.open('a', 1, &pool);
    let mut qb = lab.open('b', 2, &pool);
    assert!(wait_link(&qa[0], true), "veth carrier never came up");

    const FLOWS: u16 = 64;
    const PER_FLOW: u32 = 8;
    let frames: Vec<Vec<u8>> = (0..PER_FLOW)
        .flat_map(|s| (0..FLOWS).map(move |f| ipv6_frame(f, s)))
        .collect();
    assert_eq!(send(&mut qa[0], &frames), frames.len());
    let is_ours =
        |f: &[u8]| f.len() == 62 && f.get(12..14) == Some(&[0x86, 0xdd][..]) && f[6..12] == MAC_A;
    let got = collect(&mut qb, frames.len(), Duration::from_secs(5), is_ours);
    // Let stragglers (duplicates, if any) arrive before counting.
    let late = collect(&mut qb, usize::MAX, Duration::from_millis(200), is_ours);

    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut queue_of_flow: HashMap<u16, usize> = HashMap::new();
    for (i, q) in got.iter().chain(late.iter()).enumerate() {
        let queue = i % 2;
        for f in q {
            *seen.entry(f.clone()).or_default() += 1;
            let flow = u16::from_be_bytes([f[36], f[37]]);
            assert_eq!(
                *queue_of_flow.entry(flow).or_insert(queue),
                queue,
                "flow {flow} split across sockets"
            );
        }
    }
    assert_eq!(seen.len(), frames.len(), "some frames never arrived");
    assert!(
        seen.values().all(|&n| n == 1),
        "a frame was delivered twice"
    );
    assert!(frames.iter().all(|f| seen.contains_key(f)));
    assert!(
        !got[0].is_empty() && !got[1].is_empty(),
        "hash fanout used one socket for 64 flows"
    );
    assert!(qb[0].fanout_group().is_some());
    assert_eq!(qb[0].fanout_group(), qb[1].fanout_group());
}

#[test]
fn link_up_follows_ip_link_set() {
    let lab = Lab::new();
    let pool = Arc::new(BufPool::new(64, 2048));
    let qa = lab.open('a', 1, &pool);
    assert!(wait_link(&qa[0], true), "link never reported up");
    lab.set_link('a', false);
    assert!(wait_link(&qa[0], false), "admin down not seen");
    lab.set_link('a', true);
    assert!(wait_link(&qa[0], true), "admin up not seen");
    // Peer down: our end is still administratively up but loses carrier.
    lab.set_link('b', false);
    assert!(wait_link(&qa[0], false), "carrier loss not seen");
    lab.set_link('b', true);
    assert!(wait_link(&qa[0], true), "carrier return not seen");
}

/// The probe the slow path runs instead of the worker: it follows the link from another
/// thread, and once the queue is gone it reports nothing (it does not keep the socket open).
#[test]
fn link_probe_follows_the_link_from_another_thread() {
    let lab = Lab::new();
    let pool = Arc::new(BufPool::new(64, 2048));
    let mut qa = lab.open('a', 1, &pool);
    assert!(wait_link(&qa[0], true), "link never reported up");
    let mut probe = qa[0]
        .link_probe()
        .expect("AF_PACKET queues hand out a probe");
    let read = |probe: LinkProbe| {
        thread::spawn(move || {
            let mut probe = probe;
            let r = probe();
            (probe, r)
        })
        .join()
        .unwrap()
    };
    let (p, r) = read(probe);
    probe = p;
    assert_eq!(r.up, Some(true));
    lab.set_link('b', false);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = None;
    while Instant::now() < deadline {
        let (p, r) = read(probe);
        probe = p;
        seen = r.up;
        if seen == Some(false) {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen, Some(false), "carrier loss not seen by the probe");
    lab.set_link('b', true);
    drop(qa.pop());
    let (_, r) = read(probe);
    assert_eq!(
        r,
        LinkReport::default(),
        "a closed queue's probe reports nothing"
    );
}

#[test]
fn missing_interface_and_bad_config_are_errors() {
    require_root();
    let pool = Arc::new(BufPool::new(4, 2048));
    let cfg = AfPacketConfig::default();
    match afpacket::open("p6-no-such-if", &cfg, &pool) {
        Err(BackendError::NoInterface(name)) => assert_eq!(name, "p6-no-such-if"),
        other => panic!("expected NoInterface, got {other:?}"),
    }
    let bad = AfPacketConfig {
        frame_size: 1000,
        ..cfg
    };
    assert!(matches!(
        afpacket::open("lo", &bad, &pool),
        Err(BackendError::Config(_))
    ));
    let bad = AfPacketConfig { queues: 0, ..cfg };
    assert!(matches!(
        afpacket::open("lo", &bad, &pool),
        Err(BackendError::Config(_))
    ));
}
