//! The pktgen-dpdk profile `pshim6-pktgen profile` writes, checked with outside tools:
//! tshark decodes both pcaps as the intended mix (inside: plain UDP over IPv6 from the
//! ULIDs, egress and NATv6 in their weights; outside: Shim6 payload extension header with a
//! context tag in front of UDP, REAP keepalives with a good checksum; IMIX sizes) and
//! `luac5.4 -p` parses the Lua script. pktgen-dpdk itself is not in Debian and is not run.
//! Needs tshark and lua5.4 (ci/deps.sh); FAILS rather than skips without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/src/tshark.rs"]
mod tshark;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::Command;

fn in_prefix(a: Option<Ipv6Addr>, prefix: &str) -> bool {
    let p: Ipv6Addr = prefix.parse().unwrap();
    a.is_some_and(|a| a.octets()[..8] == p.octets()[..8])
}

#[test]
fn profile_pcaps_decode_as_the_mix_and_the_lua_parses() {
    let dir = std::env::temp_dir().join(format!("pshim6-profile-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_pshim6-pktgen"))
        .args([
            "profile",
            "--contexts",
            "16",
            "--count",
            "2048",
            "--size",
            "imix",
        ])
        .args(["--mix", "egress=6,ingress=5,natv6=3,control=2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pshim6-pktgen profile: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Inside port: egress (to peers' ULIDs) and NATv6 (to the Internet), plain UDP over IPv6.
    let inside = tshark::dissect(&dir.join("inside.pcap")).expect("tshark (ci/deps.sh)");
    assert!(!inside.is_empty());
    let (mut egress, mut natv6) = (0u32, 0u32);
    for f in &inside {
        assert!(
            f.protocols.starts_with("eth:ethertype:ipv6:udp"),
            "inside frame {}: {}",
            f.number,
            f.protocols
        );
        assert!(!f.protocols.contains("shim6"), "frame {}", f.number);
        assert!(in_prefix(f.src, "fc00:1:1:1::"), "from a ULID: {:?}", f.src);
        if in_prefix(f.dst, "2001:db8:1a::") {
            panic!("inside frame {} to our own locator", f.number);
        }
        if f.dst.is_some_and(|d| d.segments()[0] & 0xfe00 == 0xfc00) {
            egress += 1;
        } else {
            natv6 += 1;
        }
    }
    // Weights 6 : 3 of 16, exact over 2048 frames (the mix's pattern has 64 slots).
    assert_eq!(
        (egress, natv6),
        (768, 384),
        "egress and NATv6 in their weights"
    );

    // Outside port: Shim6 payload (tag, then UDP) and REAP keepalives (type 66, RFC 5534).
    let outside = tshark::dissect(&dir.join("outside.pcap")).unwrap();
    let (mut payload, mut keepalive) = (0u32, 0u32);
    for f in &outside {
        assert!(
            f.protocols.contains("ipv6:shim6"),
            "frame {}: {}",
            f.number,
            f.protocols
        );
        assert!(
            in_prefix(f.dst, "2001:db8:1a::"),
            "to our locator: {:?}",
            f.dst
        );
        match f.shim6_type {
            None => {
                assert_eq!(
                    f.p,
                    Some(true),
                    "frame {}: payload extension header",
                    f.number
                );
                assert!(f.payload_tag.is_some_and(|t| t != 0), "frame {}", f.number);
                assert!(f.protocols.contains("shim6:udp"), "{}", f.protocols);
                payload += 1;
            }
            Some(t) => {
                assert_eq!(t, 66, "frame {}: a keepalive", f.number);
                assert_eq!(f.checksum_status.as_deref(), Some("Good"));
                keepalive += 1;
            }
        }
    }
    assert_eq!(
        (payload, keepalive),
        (640, 256),
        "ingress and control in their weights"
    );

    // IMIX: several sizes on each side, none over a standard Ethernet frame.
    for name in ["inside.pcap", "outside.pcap"] {
        let lens = frame_lengths(&dir.join(name));
        let distinct: std::collections::BTreeSet<_> = lens.iter().collect();
        assert!(distinct.len() >= 3, "{name}: sizes {distinct:?}");
        assert!(lens.iter().all(|&l| (54..=1514).contains(&l)), "{name}");
    }

    let lua = dir.join("pshim6.lua");
    let luac = Command::new("luac5.4")
        .args(["-p"])
        .arg(&lua)
        .output()
        .expect("luac5.4 (Debian lua5.4, ci/deps.sh)");
    assert!(
        luac.status.success(),
        "luac5.4 -p pshim6.lua: {}",
        String::from_utf8_lossy(&luac.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `frame.len` of every frame, from tshark.
fn frame_lengths(pcap: &PathBuf) -> Vec<usize> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-e", "frame.len"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}
