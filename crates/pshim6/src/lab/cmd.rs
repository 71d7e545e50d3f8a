//! Running the system tools the lab drives (`ip`, `nft`, `bridge`, `ethtool`, `sysctl`, …),
//! in the root namespace or inside one of the lab's namespaces, with errors that name the
//! command and quote its stderr.

use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// Runs `prog args…`; its stdout on success, else an error with its stderr.
pub(crate) fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .with_context(|| format!("running `{prog}` (is it installed? see ci/deps.sh)"))?;
    check(prog, args, &out)
}

fn check(prog: &str, args: &[&str], out: &Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS args…`.
pub(crate) fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut v = vec!["-n", ns];
    v.extend_from_slice(args);
    run("ip", &v)
}

/// `ip netns exec NS args…` (the command sees the namespace's own `/sys`).
pub(crate) fn exec(ns: &str, args: &[&str]) -> Result<String> {
    let mut v = vec!["netns", "exec", ns];
    v.extend_from_slice(args);
    run("ip", &v)
}

/// `sysctl -qw KEY=VALUE` inside NS.
pub(crate) fn sysctl(ns: &str, kv: &str) -> Result<()> {
    exec(ns, &["sysctl", "-qw", kv]).map(drop)
}

/// A `Command` running `args` inside NS (for long-running children).
pub(crate) fn command_in(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args).env("LC_ALL", "C");
    c
}

/// Whether this process runs as root (network namespaces, veths, AF_PACKET need it).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `tool` is on PATH or in an sbin directory.
pub(crate) fn have_tool(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .any(|d| std::path::Path::new(d).join(tool).is_file());
    found
}

/// Fails naming every missing tool and its Debian package.
pub(crate) fn require_tools() -> Result<()> {
    let tools = [
        ("ip", "iproute2"),
        ("bridge", "iproute2"),
        ("ethtool", "ethtool"),
        ("nft", "nftables"),
        ("ping", "iputils-ping"),
        ("tshark", "tshark"),
        ("dumpcap", "tshark"),
        ("mergecap", "tshark"),
        ("knotd", "knot"),
        ("dig", "bind9-dnsutils"),
        ("dhcpcd", "dhcpcd-base"),
        ("sysctl", "procps"),
        ("curl", "curl"),
    ];
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| !have_tool(t))
        .map(|(t, p)| format!("{t} (package {p})"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "pshim6 lab needs {}: run `bash ci/deps.sh` as root to install them",
            missing.join(", ")
        );
    }
    Ok(())
}
