//! Issue #3 acceptance: tshark on every scenario's capture — every control message's checksum is
//! Good, every payload packet carries the P bit and one of the *receiver's* context tags, and no
//! ULID (CMULA) ever appears as an IPv6 source or destination on the wire.

// Test helpers outside #[test] fns: a failed setup must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::time::Duration;

use e2e::tshark;
use sim::{Scenario, SimOptions};

fn prefix_of(a: Ipv6Addr) -> String {
    let mut o = a.octets();
    o[8..].fill(0);
    format!("{}/64", Ipv6Addr::from(o))
}

#[test]
fn tshark_checks_every_scenario_capture() {
    let dir = std::env::temp_dir().join(format!("pshim6-sim-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for sc in Scenario::ALL {
        let path = dir.join(format!("{sc}.pcap"));
        let opts = SimOptions {
            scenario: sc,
            pcap: Some(path.clone()),
            loss_percent: 5.0,
            delay: Duration::from_millis(20),
            seed: 7,
        };
        let report = sim::run(&opts).unwrap();
        assert!(report.ok, "{sc}: {:?}", report.failed_checks);
        let frames = tshark::dissect(&path).expect("tshark must be installed (ci/deps.sh)");
        let on_wire: u64 = report.packets.values().sum();
        assert_eq!(
            frames.len() as u64,
            on_wire,
            "{sc}: one frame per packet put on the wire"
        );

        let tags_of = |site: &str| -> HashSet<u64> {
            report.local_tags[site]
                .iter()
                .map(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).unwrap())
                .collect()
        };
        let (tags_a, tags_b) = (tags_of("a"), tags_of("b"));
        let prefixes_a: HashSet<&String> = report.provider_prefixes["a"].iter().collect();
        let (mut control, mut payload) = (0, 0);
        for f in &frames {
            let (src, dst) = (f.src.unwrap(), f.dst.unwrap());
            for a in [src, dst] {
                assert!(
                    (a.segments()[0] & 0xfe00) != 0xfc00,
                    "{sc} frame {}: ULA/CMULA {a} on the wire",
                    f.number
                );
            }
            match f.p {
                Some(false) => {
                    control += 1;
                    assert_eq!(
                        f.checksum_status.as_deref(),
                        Some("Good"),
                        "{sc} frame {}",
                        f.number
                    );
                    assert!(f.shim6_type.is_some(), "{sc} frame {}", f.number);
                }
                Some(true) => {
                    payload += 1;
                    let tag = f.payload_tag.expect("payload header carries a tag");
                    let receiver_tags = if prefixes_a.contains(&prefix_of(dst)) {
                        &tags_a
                    } else {
                        &tags_b
                    };
                    assert!(
                        receiver_tags.contains(&tag),
                        "{sc} frame {}: tag {tag:#x} is not one of the receiver's tags",
                        f.number
                    );
                }
                None => panic!("{sc} frame {}: not Shim6 ({})", f.number, f.protocols),
            }
        }
        assert!(
            control >= 2 && payload > 100,
            "{sc}: {control} control, {payload} payload frames"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
