//! `pshim6 lab --scenario all --json`, the acceptance of issue #7 (and the lab part of issue
//! #8's: `drain` through the operator API), five times in a row; then a
//! lab interrupted with Ctrl-C (SIGINT) and a lab killed outright (SIGKILL, then
//! `pshim6 lab --clean`). After every run nothing may be left: no `p6l-` namespace, no `p6l`
//! link, no process of the lab.
//!
//! Needs root and the tools `ci/deps.sh` installs (iproute2, ethtool, nftables, tshark, knot,
//! bind9-dnsutils, dhcpcd-base, iputils-ping). Without them it FAILS, never skips: a green
//! run means the lab ran.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod lab_common;
use lab_common::{leftovers, num};

const BIN: &str = env!("CARGO_BIN_EXE_pshim6");

/// One lab at a time: every lab uses the same `p6l-` namespaces.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_lab() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn require_root_and_tools() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the lab test needs root (namespaces, veths, AF_PACKET); run it as root, as CI does"
    );
    for tool in [
        "ip", "bridge", "ethtool", "nft", "ping", "tshark", "dumpcap", "mergecap", "dig", "sysctl",
        "curl",
    ] {
        let found = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the lab needs `{tool}`: run `bash ci/deps.sh` as root"
        );
    }
    assert!(
        std::path::Path::new("/usr/sbin/knotd").is_file(),
        "the lab needs knotd (package knot): run `bash ci/deps.sh` as root"
    );
}

/// Checks one scenario object against the acceptance of issue #7 (#8 for `drain`).
fn check_scenario(v: &Value) {
    let name = v["scenario"].as_str().unwrap();
    assert_eq!(v["ok"], true, "{name} failed: {v:#}");
    assert_eq!(v["sha256_match"], true, "{name}: payload hash differs");
    assert!(
        num(v, "bytes_sent") > 400_000,
        "{name}: too little data: {v}"
    );
    assert_eq!(num(v, "bytes_sent"), num(v, "bytes_received"), "{name}");
    assert_eq!(
        v["ulid_seen_on_provider_links"], false,
        "{name}: a CMULA on a provider link"
    );
    assert_eq!(
        num(v, "ingress_filter_drops"),
        0,
        "{name}: ingress-filter drops"
    );
    let gap = num(v, "failover_gap_ms");
    let bound = num(v, "reap_bound_ms");
    match name {
        "failover" => {
            // The proxy finds the failure through REAP alone, within Send Timeout + probes.
            let detect = num(v, "failover_detect_ms");
            assert!(
                detect <= bound + 150,
                "failover detected after {detect} ms (bound {bound})"
            );
            // TCP's own backoff can add up to one more outage before its retransmission.
            assert!(
                gap <= 2 * bound + 200,
                "failover stalled {gap} ms (bound {bound})"
            );
            assert_ne!(v["cut_provider"], v["new_provider"]);
            check_tags(v);
        }
        "local-down" => {
            assert!(gap < 1000, "local-down stalled {gap} ms");
            assert_ne!(v["cut_provider"], v["new_provider"]);
            check_tags(v);
        }
        "drain" => {
            // Issue #8: the operator drains the provider carrying the stream through the REST
            // API; every S1 context leaves it, the stream goes on intact; after the undrain a
            // new context uses it again.
            assert!(
                v["moved_contexts"].as_u64().unwrap() >= 1,
                "drain moved no context: {v}"
            );
            assert!(v["cut_provider"].is_string(), "{v}");
            assert_ne!(v["cut_provider"], v["new_provider"], "{v}");
            assert_eq!(
                v["undrained_new_context_provider"], v["cut_provider"],
                "the new context after the undrain does not use the undrained provider: {v}"
            );
            assert!(gap <= bound, "drain stalled {gap} ms (bound {bound})");
            // REAP explores pairs on a drained provider last: a stall under load moves the
            // context to another working pair, never back onto the drained one.
            assert_eq!(
                v["back_on_drained_provider"].as_u64(),
                Some(0),
                "a context went back onto the drained provider: {v}"
            );
            let on_links = v["shim6_tags_on_provider_links"].as_array().unwrap();
            assert!(!on_links.is_empty(), "no payload header captured: {v}");
            // The drained context and the one made after the undrain, both ends (and those
            // the scenario removed, whose last packets may still be on their way).
            let contexts = v["context_tags"].as_array().unwrap();
            assert!(contexts.len() >= 4, "{v}");
            assert!(on_links.iter().all(|t| contexts.contains(t)), "{v}");
            assert_eq!(
                num(v, "payload_frames"),
                num(v, "payload_frames_tshark"),
                "{v}"
            );
        }
        "natv6" => {
            assert_eq!(v["ping"]["transmitted"], 3, "{v}");
            assert_eq!(v["ping"]["received"], 3, "{v}");
        }
        other => panic!("unexpected scenario {other}"),
    }
}

/// The tags in the payload headers on the provider links are the contexts' tags, and
/// tshark's dissector counts the same payload-header frames as the lab's parser.
fn check_tags(v: &Value) {
    let on_links: Vec<&Value> = v["shim6_tags_on_provider_links"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let contexts: Vec<&Value> = v["context_tags"].as_array().unwrap().iter().collect();
    assert!(!on_links.is_empty(), "no payload header captured: {v}");
    assert_eq!(contexts.len(), 2, "{v}");
    for t in &on_links {
        assert!(
            contexts.contains(t),
            "tag {t} on the wire is no context's: {v}"
        );
    }
    assert!(num(v, "payload_frames") > 100, "{v}");
    assert_eq!(
        num(v, "payload_frames"),
        num(v, "payload_frames_tshark"),
        "{v}"
    );
}

fn run_all() -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["lab", "--scenario", "all", "--json"])
        .output()
        .expect("run pshim6 lab");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let objects: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        objects
            .iter()
            .map(|o| o["scenario"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["failover", "local-down", "natv6", "drain"],
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    if objects.iter().any(|o| o["ok"] != true) {
        eprintln!("the lab's timeline:\n{stderr}");
    }
    for o in &objects {
        check_scenario(o);
    }
    assert!(
        out.status.success(),
        "exit {:?}; stderr:\n{stderr}",
        out.status
    );
    for want in [
        "by DHCPv6 (dhcpcd)",
        "from a Router Advertisement",
        "resolved h2.s2.lab.",
        "context established",
        "failover detected",
        "stream resumed",
        "API: POST /v1/providers/p6l-",
        "after the undrain uses",
        "torn down",
    ] {
        assert!(stderr.contains(want), "timeline lacks `{want}`:\n{stderr}");
    }
    (took, stderr.into_owned())
}

/// Starts a lab and returns it once its timeline reaches `line`.
fn lab_until(line: &str) -> std::process::Child {
    let mut child = Command::new(BIN)
        .args(["lab", "--scenario", "failover"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let Ok(l) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the lab never printed `{line}`");
        };
        if l.contains(line) {
            // Keep draining so the lab never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return child;
        }
    }
}

#[test]
fn lab_all_scenarios_five_times_and_nothing_left_behind() {
    let _lab = one_lab();
    require_root_and_tools();
    assert!(
        leftovers().is_empty(),
        "something is left before the test: {:?}",
        leftovers()
    );
    let mut durations = Vec::new();
    for round in 1..=5 {
        let (took, timeline) = run_all();
        eprintln!("round {round}: {took:?}");
        // A run takes 20-40 s (issue #7: well under a minute). The limit here only catches a
        // hang: on an oversubscribed machine (load 30-40 on 2 cores) the kernel's RTNL lock,
        // which every `ip` and dhcpcd takes, was seen to stall for a minute and more, and a
        // test that failed on that would say nothing about the lab.
        assert!(
            took < Duration::from_secs(180),
            "round {round} took {took:?}:\n{timeline}"
        );
        durations.push(took);
        let left = leftovers();
        assert!(left.is_empty(), "round {round} left {left:?}");
    }
    eprintln!("lab runs: {durations:?}");

    // Ctrl-C in the middle of a stream: the lab tears itself down.
    let mut lab = lab_until("TCP stream");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(lab.id() as libc::pid_t, libc::SIGINT) };
    let status = lab.wait().unwrap();
    assert!(
        !status.success(),
        "an interrupted lab must not report success"
    );
    let left = leftovers();
    assert!(left.is_empty(), "Ctrl-C left {left:?}");

    // A crash (SIGKILL): everything stays, `--clean` removes it.
    let mut lab = lab_until("TCP stream");
    lab.kill().unwrap();
    lab.wait().unwrap();
    assert!(
        !leftovers().is_empty(),
        "a killed lab should leave its namespaces"
    );
    let clean = Command::new(BIN).args(["lab", "--clean"]).output().unwrap();
    assert!(clean.status.success());
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(text.contains("namespace p6l-core"), "{text}");
    let left = leftovers();
    assert!(left.is_empty(), "--clean left {left:?}");
}

#[test]
fn unknown_scenario_is_refused() {
    let out = Command::new(BIN)
        .args(["lab", "--scenario", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected failover, local-down, natv6, drain, all")
            || err.contains("needs root"),
        "{err}"
    );
}

/// Issue #9, BGP as a failure signal: S1's provider carrying the stream withdraws site 2's
/// prefixes over BGP (BIRD on both sides) and stops forwarding there; S1's proxy follows its
/// BIRD's kernel tables and moves the context within 1 s, before REAP's bound; the stream
/// goes on intact. Twice in a row (the second run re-announces first), then nothing is left.
#[test]
fn lab_bgp_withdraw_moves_contexts_before_reap() {
    let _lab = one_lab();
    require_root_and_tools();
    for tool in ["bird", "birdc"] {
        assert!(
            std::path::Path::new(&format!("/usr/sbin/{tool}")).is_file(),
            "the bgp-withdraw lab needs {tool} (package bird2): run `bash ci/deps.sh` as root"
        );
    }
    assert!(
        leftovers().is_empty(),
        "something is left: {:?}",
        leftovers()
    );
    for round in 1..=2 {
        let out = Command::new(BIN)
            .args(["lab", "--scenario", "bgp-withdraw", "--json"])
            .output()
            .expect("run pshim6 lab");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let v: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}\n{stderr}"));
        assert_eq!(v["scenario"], "bgp-withdraw");
        if v["ok"] != true {
            eprintln!("the lab's timeline:\n{stderr}");
        }
        assert_eq!(v["ok"], true, "round {round}: {v:#}");
        assert_eq!(v["sha256_match"], true, "{v}");
        assert!(num(&v, "bytes_sent") > 400_000, "{v}");
        assert_eq!(num(&v, "bytes_sent"), num(&v, "bytes_received"));
        let moved = num(&v, "signal_move_ms");
        let bound = num(&v, "reap_bound_ms");
        assert!(
            moved <= 1000 && moved < bound,
            "moved after {moved} ms (REAP bound {bound} ms)"
        );
        // TCP's backoff can add up to one more outage (and its 200 ms minimum RTO).
        assert!(num(&v, "failover_gap_ms") <= 2 * 1000 + 200, "{v}");
        assert_eq!(num(&v, "bgp_withdrawals"), 2, "{v}");
        assert_ne!(v["cut_provider"], v["new_provider"], "{v}");
        assert_eq!(num(&v, "ingress_filter_drops"), 0, "{v}");
        check_tags(&v);
        assert!(out.status.success(), "exit {:?}", out.status);
        for want in [
            "eBGP up with both providers",
            "WITHDRAW",
            "bgp signal:",
            "moved ",
        ] {
            assert!(stderr.contains(want), "timeline lacks `{want}`:\n{stderr}");
        }
        let left = leftovers();
        assert!(left.is_empty(), "round {round} left {left:?}");
    }
}
