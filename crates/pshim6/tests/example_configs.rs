//! Every example in `configs/` passes `pshim6 check-config` (next to a site key and an API
//! token, as an operator would put them), and says what it would start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

static KEY: &str = include_str!("../../sim/keys/site-a.pem");
const TOKEN: &str = "example-token-0123456789abcdef";

/// A private file (mode 0600), as `pshim6 run` wants keys and tokens.
fn write_private(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The `[dpdk]` table and `backend = "dpdk"` need the DPDK backend in `pshim6 run` (feature
/// `dpdk`); the rest of that file is checked on the mem backend.
fn without_dpdk(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.trim() == "[dpdk]";
        }
        if skipping {
            continue;
        }
        out.push_str(&line.replace("backend = \"dpdk\"", "backend = \"mem\""));
        out.push('\n');
    }
    out
}

#[test]
fn every_example_config_checks() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    for want in [
        "dpdk-appliance.toml",
        "lab-site1.toml",
        "pair-backup.toml",
        "pair-primary.toml",
        "single-site-afpacket.toml",
    ] {
        assert!(names.iter().any(|n| n == want), "configs/{want} is missing");
    }
    let tmp = std::env::temp_dir().join(format!("pshim6-examples-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    write_private(&tmp.join("site.pem"), KEY);
    write_private(&tmp.join("api.token"), TOKEN);
    for name in &names {
        let text = fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let text = if text.contains("backend = \"dpdk\"") {
            without_dpdk(&text)
        } else {
            text
        };
        let file = tmp.join(name);
        fs::write(&file, &text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pshim6"))
            .arg("check-config")
            .arg(&file)
            .env_clear()
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "configs/{name}: {said}");
        assert!(said.contains(": ok: backend"), "configs/{name}: {said}");
        if text.contains("backend = \"etcd\"") {
            assert!(
                said.contains("DHCPv6: bindings on etcd http://"),
                "configs/{name}: {said}"
            );
        }
        if text.contains("\n[api]") {
            assert!(said.contains("API on [::1]:80"), "configs/{name}: {said}");
        }
    }
    let _ = fs::remove_dir_all(tmp);
}
