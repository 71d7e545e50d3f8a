//! `pshim6 bench pipeline --backend dpdk` runs briefly (EAL without hugepages or NIC, ring
//! ports) and prints the in-memory benchmark's JSON fields, every rate positive. The figures
//! themselves are not checked (shared CI machines).
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_pipeline_on_dpdk_prints_the_same_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_pshim6"))
        .args([
            "bench",
            "pipeline",
            "--backend",
            "dpdk",
            "--seconds",
            "0.2",
            "--contexts",
            "300",
            "--no-pin",
            "--json",
            "--eal",
            "-l 0 --no-huge -m 512 --no-pci --no-shconf --log-level=error",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pshim6 bench failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["backend"], "dpdk");
    for k in [
        "null_mpps",
        "egress_mpps",
        "ingress_mpps",
        "natv6_mpps",
        "egress_ratio",
        "ingress_ratio",
        "bytes_per_context",
        "lcore_cached_mbufs",
    ] {
        let x = v[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {v}"));
        assert!(x > 0.0 && x.is_finite(), "{k} = {x}: {v}");
    }
    assert_eq!(v["contexts"], 300);
    // Without the feature the same command refuses, naming it; with it, a bad backend name is
    // refused too.
    let bad = Command::new(env!("CARGO_BIN_EXE_pshim6"))
        .args(["bench", "pipeline", "--backend", "nic", "--seconds", "0.1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected `mem` or `dpdk`"));
}
