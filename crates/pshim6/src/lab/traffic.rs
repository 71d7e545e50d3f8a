//! The TCP stream tool the lab runs inside the hosts' namespaces (`pshim6 lab-traffic send |
//! recv`, hidden), and the lab side that starts it and reads its reports.
//!
//! The sender writes a deterministic pseudo-random payload at a paced rate until its stdin
//! closes (the lab's "stop"), then shuts down its side and waits for the receiver to close;
//! the receiver reads to the end, timing every read. Both print one `result {json}` line with
//! the byte count and the SHA-256 of the payload; the receiver adds the longest gap between
//! two reads (when the stream stalled, e.g. across a provider failure) and prints `progress`
//! lines meanwhile so the lab can show bytes flowing and see the stream resume.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::cleanup::{forget_pid, record_pid};
use super::cmd::command_in;
use super::timeline::now_ms;

/// `pshim6 lab-traffic ...` (used by `pshim6 lab` inside the hosts' namespaces).
#[derive(Debug, Subcommand)]
pub(crate) enum TrafficCommand {
    /// Connect and stream until stdin closes.
    Send(SendArgs),
    /// Accept one connection and read it to the end.
    Recv(RecvArgs),
}

/// `pshim6 lab-traffic send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Where to connect: [ADDR]:PORT.
    #[arg(long)]
    pub(crate) to: SocketAddr,
    /// Payload rate, bytes per second.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) rate: u64,
    /// Stop by itself after this long even if stdin stays open.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) max_seconds: f64,
}

/// `pshim6 lab-traffic recv`.
#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// Address to listen on: [ADDR]:PORT.
    #[arg(long)]
    pub(crate) listen: SocketAddr,
    /// Give up when nothing arrives for this long.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) idle_seconds: f64,
}

/// Runs `pshim6 lab-traffic ...`.
pub(crate) fn main(cmd: &TrafficCommand) -> Result<ExitCode> {
    match cmd {
        TrafficCommand::Send(a) => send(a),
        TrafficCommand::Recv(a) => recv(a),
    }
}

/// The payload: xorshift64* bytes from a fixed seed, so both ends could regenerate it.
struct Payload(u64);

impl Payload {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn send(a: &SendArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&a.to, Duration::from_secs(10))
        .with_context(|| format!("connecting to {}", a.to))?;
    let connect_ms = started.elapsed().as_millis();
    s.set_nodelay(true)?;
    say(&format!(
        "connected {}",
        json!({"t_ms": now_ms(), "connect_ms": connect_ms})
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        flag.store(true, Ordering::Relaxed);
    });
    const CHUNK: usize = 8192;
    let mut payload = Payload(0x9e37_79b9_7f4a_7c15);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut sent: u64 = 0;
    let deadline = started + Duration::from_secs_f64(a.max_seconds.max(0.1));
    let rate = a.rate.max(1);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // Paced: the n-th byte leaves no earlier than n / rate seconds after the start.
        let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait.min(Duration::from_millis(50)));
            continue;
        }
        payload.fill(&mut buf);
        s.write_all(&buf).context("sending")?;
        hash.update(&buf);
        sent += CHUNK as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    // The receiver closes after reading everything: then every byte arrived.
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    say(&format!(
        "result {}",
        json!({"bytes": sent, "sha256": hex::encode(hash.finalize()), "connect_ms": connect_ms})
    ));
    Ok(ExitCode::SUCCESS)
}

/// Longest gap between consecutive reads, and when it ended (Unix ms).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gaps {
    last_ms: Option<u64>,
    /// The longest gap, ms.
    pub(crate) max_gap_ms: u64,
    /// When the longest gap ended.
    pub(crate) max_gap_end_ms: u64,
}

impl Gaps {
    /// Data arrived at `t_ms`.
    pub(crate) fn on_read(&mut self, t_ms: u64) {
        if let Some(last) = self.last_ms {
            let gap = t_ms.saturating_sub(last);
            if gap > self.max_gap_ms {
                self.max_gap_ms = gap;
                self.max_gap_end_ms = t_ms;
            }
        }
        self.last_ms = Some(t_ms);
    }
}

fn recv(a: &RecvArgs) -> Result<ExitCode> {
    let l = TcpListener::bind(a.listen).with_context(|| format!("listening on {}", a.listen))?;
    say("listening");
    let (mut s, peer) = l.accept().context("accepting")?;
    say(&format!(
        "accepted {}",
        json!({"t_ms": now_ms(), "peer": peer.to_string()})
    ));
    s.set_read_timeout(Some(Duration::from_secs_f64(a.idle_seconds.max(0.1))))?;
    let mut buf = vec![0u8; 65536];
    let mut hash = Sha256::new();
    let mut got: u64 = 0;
    let mut gaps = Gaps::default();
    let mut last_progress = 0;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("receiving"),
        };
        let t = now_ms();
        gaps.on_read(t);
        hash.update(&buf[..n]);
        got += n as u64;
        if t >= last_progress + 100 {
            last_progress = t;
            say(&format!("progress {}", json!({"t_ms": t, "bytes": got})));
        }
    }
    say(&format!(
        "result {}",
        json!({"bytes": got, "sha256": hex::encode(hash.finalize()),
               "max_gap_ms": gaps.max_gap_ms, "max_gap_end_ms": gaps.max_gap_end_ms})
    ));
    Ok(ExitCode::SUCCESS)
}

/// What the lab knows of a receiver so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct RecvState {
    /// Bytes received so far and when that was reported (Unix ms).
    pub(crate) progress: Vec<(u64, u64)>,
    /// The final report.
    pub(crate) result: Option<Value>,
    /// The peer address a receiver accepted.
    pub(crate) peer: Option<String>,
}

impl RecvState {
    /// Bytes received so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.progress.last().map_or(0, |(_, b)| *b)
    }
}

/// A `lab-traffic` child and the thread reading its stdout.
#[derive(Debug)]
pub(crate) struct Traffic {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    /// Its reports.
    pub(crate) state: Arc<Mutex<RecvState>>,
    first_line: Arc<Mutex<Option<String>>>,
}

impl Traffic {
    fn spawn(name: &str, ns: &str, args: &[&str]) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the pshim6 binary")?;
        let exe_s = exe.to_string_lossy().into_owned();
        let mut all = vec![exe_s.as_str(), "lab-traffic"];
        all.extend_from_slice(args);
        let mut child = command_in(ns, &all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting lab-traffic in {ns}"))?;
        record_pid(name, child.id(), &exe_s)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        let state = Arc::new(Mutex::new(RecvState::default()));
        let first_line = Arc::new(Mutex::new(None));
        let (st, fl) = (Arc::clone(&state), Arc::clone(&first_line));
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut f) = fl.lock() {
                    f.get_or_insert_with(|| line.clone());
                }
                let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                let v: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                if let Ok(mut s) = st.lock() {
                    match word {
                        "progress" => s.progress.push((
                            v["t_ms"].as_u64().unwrap_or(0),
                            v["bytes"].as_u64().unwrap_or(0),
                        )),
                        "result" => s.result = Some(v),
                        "accepted" => s.peer = v["peer"].as_str().map(str::to_string),
                        _ => {}
                    }
                }
            }
        });
        Ok(Self {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            reader: Some(reader),
            state,
            first_line,
        })
    }

    /// Starts a receiver in `ns` on `listen`; returns once it listens.
    pub(crate) fn receiver(name: &str, ns: &str, listen: SocketAddr) -> Result<Self> {
        let l = listen.to_string();
        let t = Self::spawn(name, ns, &["recv", "--listen", &l])?;
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if t.first_line.lock().map(|f| f.is_some()).unwrap_or(false) {
                return Ok(t);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("the receiver in {ns} did not start listening on {listen}")
    }

    /// Starts a sender in `ns` streaming to `to` at `rate` bytes/s.
    pub(crate) fn sender(name: &str, ns: &str, to: SocketAddr, rate: u64) -> Result<Self> {
        let (t, r) = (to.to_string(), rate.to_string());
        Self::spawn(name, ns, &["send", "--to", &t, "--rate", &r])
    }

    /// Tells a sender to finish (closes its stdin).
    pub(crate) fn finish(&mut self) {
        self.stdin.take();
    }

    /// Waits up to `timeout` for the final report; ends the process either way.
    pub(crate) fn result(&mut self, timeout: Duration) -> Result<Value> {
        self.finish();
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        super::cleanup::terminate(self.child.id(), Duration::from_millis(200));
        let status = self.child.wait();
        forget_pid(&self.name);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let result = self.state.lock().ok().and_then(|s| s.result.clone());
        result.ok_or_else(|| anyhow!("{} gave no result ({status:?}): {}", self.name, err.trim()))
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        if self.reader.is_some() {
            super::cleanup::terminate(self.child.id(), Duration::from_millis(200));
            let _ = self.child.wait();
            forget_pid(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_track_the_longest_stall() {
        let mut g = Gaps::default();
        for t in [1000, 1010, 1020, 2500, 2510, 2600] {
            g.on_read(t);
        }
        assert_eq!((g.max_gap_ms, g.max_gap_end_ms), (1480, 2500));
    }

    #[test]
    fn payload_is_deterministic_and_not_constant() {
        let (mut a, mut b) = (Payload(7), Payload(7));
        let (mut x, mut y) = (vec![0u8; 100], vec![0u8; 100]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert!(x.iter().any(|v| *v != x[0]));
    }

    #[test]
    fn bytes_is_the_last_report() {
        let s = RecvState {
            progress: vec![(100, 10), (200, 20), (300, 35)],
            ..RecvState::default()
        };
        assert_eq!(s.bytes(), 35);
        assert_eq!(RecvState::default().bytes(), 0);
    }
}
