//! Finding and removing everything a lab made: its child processes (through pid files in the
//! state directory, and any process still inside a lab namespace), its namespaces (and with
//! them every veth, bridge and nftables table) and stray `p6l*` links in the root namespace.
//! Used on exit, on Ctrl-C, and by `pshim6 lab --clean` after a crash.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::cmd::run;
use super::topology::PREFIX;

/// Where the lab writes its configurations, logs, captures and pid files.
pub(crate) fn state_dir() -> PathBuf {
    std::env::var_os("PSHIM6_LAB_DIR")
        .map_or_else(|| PathBuf::from("/tmp/pshim6-lab"), PathBuf::from)
}

fn pid_dir() -> PathBuf {
    state_dir().join("pids")
}

/// Records a child so that a later `--clean` can end it: `pids/NAME.pid` holds the pid and the
/// program it runs (checked before killing, so a reused pid is left alone).
pub(crate) fn record_pid(name: &str, pid: u32, program: &str) -> Result<()> {
    let dir = pid_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!("{name}.pid"));
    fs::write(&file, format!("{pid} {program}\n"))
        .with_context(|| format!("writing {}", file.display()))
}

/// Forgets a child that ended.
pub(crate) fn forget_pid(name: &str) {
    let _ = fs::remove_file(pid_dir().join(format!("{name}.pid")));
}

/// The first word of `/proc/PID/cmdline`, if the process exists.
fn program_of(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = raw.split(|b| *b == 0).next()?;
    Some(String::from_utf8_lossy(first).into_owned())
}

/// Whether `pid` runs (exists and is no zombie).
pub(crate) fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter says so.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// SIGTERM, then SIGKILL after `grace` if the process is still there.
pub(crate) fn terminate(pid: u32, grace: Duration) {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a positive pid signals exactly that process; no memory involved.
    unsafe { libc::kill(p, libc::SIGTERM) };
    let until = Instant::now() + grace;
    while alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// The lab's namespaces that exist now.
pub(crate) fn existing_namespaces() -> Vec<String> {
    let text = run("ip", &["netns", "list"]).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
        .map(str::to_string)
        .collect()
}

/// Links in the root namespace whose name starts with the lab's prefix.
pub(crate) fn stray_links() -> Vec<String> {
    let text = run("ip", &["-o", "link", "show"]).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(PREFIX))
        .collect()
}

/// Processes recorded in pid files that still run the recorded program.
pub(crate) fn recorded_processes() -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir(pid_dir()) else {
        return out;
    };
    for e in dir.flatten() {
        let text = fs::read_to_string(e.path()).unwrap_or_default();
        let mut words = text.split_whitespace();
        let (Some(pid), Some(program)) = (
            words.next().and_then(|p| p.parse::<u32>().ok()),
            words.next(),
        ) else {
            continue;
        };
        if alive(pid) && program_of(pid).is_some_and(|p| p == program) {
            out.push((e.file_name().to_string_lossy().into_owned(), pid));
        }
    }
    out
}

/// Removes every trace of a lab; returns what it removed, one line each.
pub(crate) fn clean() -> Vec<String> {
    let mut done = Vec::new();
    for (name, pid) in recorded_processes() {
        terminate(pid, Duration::from_secs(2));
        done.push(format!("process {pid} ({name})"));
    }
    for n in existing_namespaces() {
        // Anything still running inside (untracked helpers) ends with its namespace.
        let pids = run("ip", &["netns", "pids", &n]).unwrap_or_default();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            terminate(pid, Duration::from_millis(500));
            done.push(format!("process {pid} (in {n})"));
        }
        if run("ip", &["netns", "del", &n]).is_ok() {
            done.push(format!("namespace {n}"));
        }
    }
    for l in stray_links() {
        if run("ip", &["link", "del", &l]).is_ok() {
            done.push(format!("link {l}"));
        }
    }
    let _ = fs::remove_dir_all(pid_dir());
    done
}

/// What a finished lab left behind (should be nothing).
pub(crate) fn leftovers() -> Vec<String> {
    let mut v: Vec<String> = existing_namespaces()
        .into_iter()
        .map(|n| format!("namespace {n}"))
        .collect();
    v.extend(stray_links().into_iter().map(|l| format!("link {l}")));
    v.extend(
        recorded_processes()
            .into_iter()
            .map(|(n, p)| format!("process {p} ({n})")),
    );
    v
}
