//! A running `pshim6 run` (mem backend) with the operator API, each in its own network
//! namespace reached over a veth pair (the API listens on the namespace's management address
//! only), and a raw HTTP/1.1 client. Needs root (CI runs as root): without it the namespace
//! cannot be made and the test fails.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub(crate) const TOKEN: &str = "test-token-0123456789abcdef";
static KEY: &str = include_str!("../../../sim/keys/site-a.pem");

/// A private file (mode 0600).
pub(crate) fn write_private(path: &Path, text: &str) {
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A complete mem-backend configuration; `extra` goes at the top level before the tables,
/// `peers` is the `[[peers]]` list.
pub(crate) fn config_text(extra: &str, peers: &[(&str, &str)]) -> String {
    let mut t = format!(
        r#"backend = "mem"
ulid_prefix = "fc00:1:1:1::/64"
site_key = "site.pem"
workers = 1
{extra}
[inside]
interface = "in0"
mac = "02:00:00:00:00:01"
link_local = "fe80::1"
global = "fc00:1:1:1::1"

[[providers]]
id = 1
interface = "up0"
mac = "02:00:00:00:01:01"
prefix = "2001:db8:1a::/64"
exit = {{ next_hop = "fe80::a" }}

[[providers]]
id = 2
interface = "up1"
mac = "02:00:00:00:02:01"
prefix = "2001:db8:1b::/64"
exit = {{ next_hop = "fe80::b" }}

[api]
listen = "[::1]:0"
token_file = "api.token"
"#
    );
    for (ulid, loc) in peers {
        t.push_str(&format!(
            "\n[[peers]]\nulid = \"{ulid}\"\nlocators = [\"{loc}\"]\n"
        ));
    }
    t
}

/// A fresh directory with `pshim6.toml` (`text`), the site key and the API token.
pub(crate) fn config_dir(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pshim6-api-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("pshim6.toml"), text).unwrap();
    write_private(&dir.join("site.pem"), KEY);
    write_private(&dir.join("api.token"), &format!("{TOKEN}\n"));
    dir
}

/// `pshim6 run` with its stderr lines on a channel.
pub(crate) struct Appliance {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) stderr: Receiver<String>,
    pub(crate) dir: PathBuf,
    /// The network namespace it runs in (deleted on drop, after the process).
    _netns: Netns,
}

/// A network namespace with a veth pair to the test's namespace: `root` is our end's
/// address, `inner` the namespace's (the appliance's management address).
struct Netns {
    name: String,
    inner: std::net::Ipv6Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` (iproute2) must be installed");
    assert!(
        out.status.success(),
        "ip {}: {} (the API tests need root to make network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Netns {
    /// A fresh namespace named after this process and a counter, linked by a veth pair.
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("p6api-{pid}-{n}");
        // Interface names: at most 15 bytes.
        let (outer, peer) = (
            format!("pa{}o{n}", pid % 100_000),
            format!("pa{}i{n}", pid % 100_000),
        );
        let net = format!("fd00:a11:{:x}:{:x}", pid & 0xffff, n & 0xffff);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &outer, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &name]);
        ip(&[
            "addr",
            "add",
            &format!("{net}::1/64"),
            "dev",
            &outer,
            "nodad",
        ]);
        ip(&["link", "set", &outer, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{net}::2/64"),
            "dev",
            &peer,
            "nodad",
        ]);
        ip(&["-n", &name, "link", "set", &peer, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Self {
            name,
            inner: format!("{net}::2").parse().unwrap(),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end and so the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

impl Appliance {
    pub(crate) fn start(name: &str, text: &str) -> Self {
        Self::start_for(name, text, 120)
    }

    /// As [`start`](Self::start), running at most `secs` seconds.
    pub(crate) fn start_for(name: &str, text: &str, secs: u32) -> Self {
        let netns = Netns::new();
        // The API listens on the namespace's management address, not on loopback.
        let text = text.replace(
            "listen = \"[::1]:0\"",
            &format!("listen = \"[{}]:0\"", netns.inner),
        );
        let dir = config_dir(name, &text);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns.name, env!("CARGO_BIN_EXE_pshim6")])
            .args(["run", "--stop-after", &secs.to_string(), "--config"])
            .arg(dir.join("pshim6.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[pshim6] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut me = Self {
            child,
            addr: "[::1]:1".parse().unwrap(),
            stderr: rx,
            dir,
            _netns: netns,
        };
        let line = me.wait_for("pshim6: API on http://", Duration::from_secs(30));
        me.addr = line
            .trim_start_matches("pshim6: API on http://")
            .parse()
            .unwrap();
        me
    }

    /// The next stderr line containing `want` (panics after `timeout`).
    pub(crate) fn wait_for(&mut self, want: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(want) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("pshim6 never printed `{want}`");
    }

    /// Replaces the running appliance's config file with `text` (its API address moved into
    /// the namespace as at the start), e.g. before a SIGHUP.
    pub(crate) fn write_config(&self, text: &str) {
        let text = text.replace(
            "listen = \"[::1]:0\"",
            &format!("listen = \"[{}]:0\"", self._netns.inner),
        );
        fs::write(self.dir.join("pshim6.toml"), text).unwrap();
    }

    /// A request with the right token.
    pub(crate) fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, Some(TOKEN), None)
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a JSON error with `status` and `code`; returns its message.
    pub(crate) fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        let j = self.json();
        assert_eq!(j["code"], code, "{self:?}");
        j["message"].as_str().unwrap().to_string()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    match body {
        Some((ctype, b)) => req.push_str(&format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => req.push_str("\r\n"),
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(&raw[split + 4..])
    } else {
        raw[split + 4..].to_vec()
    };
    Response {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}
