//! `pshim6 bench pipeline --backend dpdk` runs briefly (EAL without hugepages or NIC, ring
//! ports) and prints the in-memory benchmark's JSON fields, every rate positive. The figures
//! themselves are not checked (shared CI machines).
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use dataplane::bench::REPORT_FIGURES;
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
    // The headline figures (`contexts` included: 300 is checked below) and DPDK's own.
    for k in REPORT_FIGURES.iter().chain(&["lcore_cached_mbufs"]) {
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

/// `pshim6 run` on DPDK with no `mac` for the inside port takes the device's (here memif's
/// `mac=` argument) and uses it: logged, and the proxy runs.
#[test]
fn run_takes_a_missing_mac_from_the_device() {
    use std::os::unix::fs::PermissionsExt;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("pshim6-devmac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("site.pem");
    std::fs::copy(root.join("crates/sim/keys/site-a.pem"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = dir.display();
    let text = std::fs::read_to_string(root.join("configs/dpdk-memif.toml"))
        .unwrap()
        .replacen("mac = \"02:00:00:00:00:01\"\n", "", 1)
        .replace(
            "socket=/tmp/pshim6-in.sock,socket-abstract=no",
            &format!("socket={d}/in.sock,socket-abstract=no,mac=02:00:00:00:00:42"),
        )
        .replace("/tmp/pshim6-out.sock", &format!("{d}/out.sock"))
        .replace(
            "\"--file-prefix\", \"pshim6\"",
            &format!("\"--file-prefix\", \"devmac{}\"", std::process::id()),
        )
        .replace("worker_cores = [1]", "workers = 1");
    assert!(
        !text.contains("02:00:00:00:00:01"),
        "the inside MAC is left out"
    );
    std::fs::write(dir.join("pshim6.toml"), text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pshim6"))
        .args(["run", "--stop-after", "1", "--config"])
        .arg(dir.join("pshim6.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pshim6 run failed:\n{stderr}");
    assert!(
        stderr.contains("port net_memif0: MAC 02:00:00:00:00:42 (from the device)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
