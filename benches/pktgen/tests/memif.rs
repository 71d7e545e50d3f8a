//! A short acceptance run (`acceptance.sh`): `pshim6-pktgen` over memif through
//! `dpdk-testpmd` (io forward) and through `pshim6 run` on the DPDK backend, separate
//! processes with separate `--file-prefix`. Both must report a non-zero no-drop rate and sane
//! JSON, and the proxy must have forwarded every class on its fast path.
//!
//! Needs the `pshim6` binary built with `--features dpdk` next to this crate's binary
//! (`cargo build -p pshim6 --features dpdk`, as `ci/test.sh` does) and `dpdk-testpmd`
//! (Debian `dpdk-dev`). FAILS rather than skips.
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn check_report(who: &str, r: &Value) {
    let no_drop = r["no_drop_mpps"].as_f64().unwrap();
    assert!(no_drop > 0.0, "{who}: no-drop rate is zero: {r}");
    let best = &r["no_drop"];
    assert_eq!(best["passed"], true, "{who}: {best}");
    assert_eq!(
        best["received"], best["sent"],
        "{who}: the no-drop trial lost frames"
    );
    let trials = r["trials"].as_array().unwrap();
    assert!(!trials.is_empty(), "{who}: no trials");
    for t in trials {
        let (sent, recv) = (t["sent"].as_u64().unwrap(), t["received"].as_u64().unwrap());
        assert!(recv <= sent, "{who}: more back than sent: {t}");
        assert_eq!(
            t["misdelivered"], 0,
            "{who}: frames came back on the wrong port: {t}"
        );
        let classes = t["per_class"].as_array().unwrap();
        assert_eq!(classes.len(), 4);
        let lat = &t["latency"];
        let (p50, p99, max) = (
            lat["p50_us"].as_f64().unwrap(),
            lat["p99_us"].as_f64().unwrap(),
            lat["max_us"].as_f64().unwrap(),
        );
        if recv > 0 {
            assert!(
                p50 > 0.0 && p50 <= p99 && p99 <= max + 1.0,
                "{who}: latency {lat}"
            );
        }
    }
    // Every forwarded class of the default mix came back in the no-drop trial.
    for c in best["per_class"].as_array().unwrap() {
        if c["class"] != "control" {
            assert!(c["received"].as_u64().unwrap() > 0, "{who}: nothing of {c}");
        }
    }
}

#[test]
fn pktgen_over_memif_finds_a_no_drop_rate_for_testpmd_and_pshim6() {
    let pktgen = PathBuf::from(env!("CARGO_BIN_EXE_pshim6-pktgen"));
    let pshim6 = pktgen.with_file_name("pshim6");
    assert!(
        pshim6.exists(),
        "{} missing: build it first with `cargo build -p pshim6 --features dpdk`",
        pshim6.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("acceptance.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("PSHIM6", &pshim6)
        .env("PKTGEN", &pktgen)
        .env("SIZE", "86")
        .env("CONTEXTS", "64")
        .env("TRIAL_SECS", "0.5")
        .env("STEPS", "3")
        .env("ROUNDS", "2")
        .output()
        .expect("run acceptance.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "acceptance.sh failed:\n{stderr}");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stderr}"));
    check_report("testpmd", &v["baseline"]);
    check_report("pshim6", &v["pshim6"]);
    let ratio = v["ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio.is_finite(), "ratio {ratio}");
    // Two interleaved rounds, each with both figures; the ratio is their median.
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{v}");
    let mut ratios: Vec<f64> = rounds
        .iter()
        .map(|r| r["ratio"].as_f64().unwrap())
        .collect();
    for r in rounds {
        assert!(r["testpmd_no_drop_mpps"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["pshim6_no_drop_mpps"].as_f64().unwrap() > 0.0, "{r}");
    }
    ratios.sort_by(f64::total_cmp);
    assert!(
        (ratio - (ratios[0] + ratios[1]) / 2.0).abs() < 1e-9,
        "median of {ratios:?}"
    );
    assert!(v["load_before"].as_str().is_some_and(|l| !l.is_empty()));
    assert_eq!(v["pshim6"]["size"], "86");
    // The proxy's own counters: all three fast paths forwarded, neighbours resolved by ND
    // answered by the generator.
    let report = v["pshim6_report"].as_str().unwrap();
    for key in [
        "forwarded.egress",
        "forwarded.ingress",
        "forwarded.nat_out",
        "nd.resolved",
    ] {
        let n: u64 = report
            .lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0);
        assert!(n > 0, "pshim6 report: {key} is 0:\n{report}");
    }
    eprintln!(
        "no-drop: testpmd {:.3} Mpps, pshim6 {:.3} Mpps, ratio {ratio:.2}",
        v["baseline"]["no_drop_mpps"], v["pshim6"]["no_drop_mpps"]
    );
}
