//! A real etcd for tests (the crate's, `pshim6 run`'s and the lab's): one member on loopback,
//! random ports, a private data directory that survives [`EtcdProcess::kill`] so that
//! [`EtcdProcess::restart`] brings back the same cluster. Fails loudly when the `etcd` binary
//! is missing (Debian `etcd-server`, installed by `ci/deps.sh`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running (or killed) single-member etcd.
#[derive(Debug)]
pub struct EtcdProcess {
    child: Option<Child>,
    /// The network namespace it runs in (`ip netns exec`), if not the caller's.
    netns: Option<String>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

/// Two distinct free loopback ports (client, peer). Both listeners are held until both ports
/// are known: binding one after the other dropping could hand out the same port twice.
fn free_ports() -> io::Result<(u16, u16)> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// How many times [`EtcdProcess::start`] picks new ports when etcd finds one taken (another
/// process may bind a port between our probe and etcd's start).
const START_ATTEMPTS: usize = 3;

/// The last lines of etcd's log, for an error message (the directory goes with the value).
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

impl EtcdProcess {
    /// Starts etcd in a new temporary data directory and waits until it accepts connections.
    pub fn start() -> io::Result<Self> {
        Self::start_in(None)
    }

    /// Starts etcd inside network namespace `ns` (on that namespace's loopback), for
    /// processes running there.
    pub fn start_in_netns(ns: &str) -> io::Result<Self> {
        Self::start_in(Some(ns.to_string()))
    }

    fn start_in(netns: Option<String>) -> io::Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pshim6-etcd-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let (client_port, peer_port) = free_ports()?;
        let mut e = Self {
            child: None,
            netns,
            dir,
            client_port,
            peer_port,
        };
        let mut attempt = 1;
        loop {
            match e.spawn() {
                Ok(()) => return Ok(e),
                Err(_)
                    if attempt < START_ATTEMPTS
                        && log_tail(&e.dir).contains("address already in use") =>
                {
                    attempt += 1;
                    (e.client_port, e.peer_port) = free_ports()?;
                    let _ = std::fs::remove_dir_all(e.dir.join("data"));
                    let _ = std::fs::remove_file(e.dir.join("etcd.log"));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory (and etcd's log, `etcd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILLs etcd (no clean shutdown) and reaps it; the data directory stays.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts etcd again on the same data directory and ports.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcd"]);
                c
            }
            None => Command::new("etcd"),
        };
        let child = cmd
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("starting `etcd` ({e}): install Debian etcd-server (ci/deps.sh)"),
                )
            })?;
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.listening(&addr) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(io::Error::other(format!(
                    "etcd exited ({status}); the end of {}:\n{}",
                    self.dir.join("etcd.log").display(),
                    log_tail(&self.dir)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other(format!(
            "etcd not listening on {} after 15 s; see {}",
            self.endpoint(),
            self.dir.join("etcd.log").display()
        )))
    }
}

impl EtcdProcess {
    /// Whether the client port accepts connections (from inside the namespace if any).
    fn listening(&self, addr: &SocketAddr) -> bool {
        match &self.netns {
            None => TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok(),
            Some(ns) => Command::new("ip")
                .args(["netns", "exec", ns, "etcdctl", "--dial-timeout=1s"])
                .arg(format!("--endpoints={}", self.endpoint()))
                .args(["endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        }
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
