//! What the lab tests share: what a lab left behind, and reading the `--json` objects.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

/// Namespaces, root-namespace links and processes a lab left behind.
pub(crate) fn leftovers() -> Vec<String> {
    let mut v = Vec::new();
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for l in String::from_utf8_lossy(&ns.stdout).lines() {
        if l.starts_with("p6l-") {
            v.push(format!("namespace {l}"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if let Some(name) = l.split(": ").nth(1) {
            if name.starts_with("p6l") {
                v.push(format!("link {name}"));
            }
        }
    }
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie && (cmd.contains("/tmp/pshim6-lab/") || cmd.contains("lab-traffic")) {
            v.push(format!("process {pid}: {cmd}"));
        }
    }
    v
}

pub(crate) fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("`{k}` missing or not a number in {v}"))
}
