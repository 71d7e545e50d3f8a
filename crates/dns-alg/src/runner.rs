//! The standalone runner: the sans-IO [`DnsAlg`] on kernel sockets (`pshim6 dns-alg`, and
//! the tests against a real Knot). UDP and TCP listeners on one address, UDP (and TCP after
//! a truncated answer) to the upstream servers. Plain threads and channels: one thread owns
//! the core, the others only move bytes.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wire::Ulid;

use crate::{
    AlgConfig, AlgEvent, AlgStats, CacheEntry, Destination, DnsAlg, DnsAlgError, Transport,
};

/// How often blocked socket reads wake up to look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// A TCP client silent this long is disconnected
/// ([RFC 7766 §6.2.3](https://www.rfc-editor.org/rfc/rfc7766#section-6.2.3)).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TCP client connections served at once; more are closed at once.
const MAX_TCP_CLIENTS: usize = 128;
/// Largest UDP datagram read.
const UDP_BUF: usize = 65_535;

enum Input {
    Client {
        from: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
    },
    TcpOpened {
        peer: SocketAddr,
        writer: TcpStream,
    },
    TcpClosed {
        peer: SocketAddr,
    },
    Upstream {
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Resolve(Ulid),
    Stats(Sender<(AlgStats, Vec<CacheEntry>)>),
    Stop,
}

/// A running ALG on kernel sockets. Dropping it stops every thread.
#[derive(Debug)]
pub struct Runner {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    input: Sender<Input>,
    events: Receiver<AlgEvent>,
    threads: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Binds UDP and TCP on `listen` (port 0: one free port for both) and starts serving.
    pub fn start(listen: SocketAddr, config: AlgConfig, seed: u64) -> Result<Self, DnsAlgError> {
        let alg = DnsAlg::new(config, seed)?;
        let (udp, tcp) = bind_pair(listen)?;
        let local_addr = udp.local_addr()?;
        udp.set_read_timeout(Some(POLL))?;
        tcp.set_nonblocking(true)?;
        let udp = Arc::new(udp);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (ev_tx, ev_rx) = mpsc::channel();
        let mut threads = Vec::new();

        // One upstream socket per address family in use.
        let mut up_v4 = None;
        let mut up_v6 = None;
        for s in &alg.config().upstream {
            let slot = if s.is_ipv4() { &mut up_v4 } else { &mut up_v6 };
            if slot.is_none() {
                let bind: SocketAddr = if s.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = UdpSocket::bind(bind)?;
                sock.set_read_timeout(Some(POLL))?;
                let sock = Arc::new(sock);
                threads.push(spawn_udp_reader(
                    Arc::clone(&sock),
                    tx.clone(),
                    Arc::clone(&stop),
                    |from, bytes| Input::Upstream { from, bytes },
                )?);
                *slot = Some(sock);
            }
        }
        threads.push(spawn_udp_reader(
            Arc::clone(&udp),
            tx.clone(),
            Arc::clone(&stop),
            |from, bytes| Input::Client {
                from,
                transport: Transport::Udp,
                bytes,
            },
        )?);
        threads.push(spawn_acceptor(tcp, tx.clone(), Arc::clone(&stop))?);
        let core = Core {
            alg,
            udp,
            up_v4,
            up_v6,
            tcp_clients: HashMap::new(),
            input: tx.clone(),
            events: ev_tx,
        };
        threads.push(
            thread::Builder::new()
                .name("dns-alg-core".into())
                .spawn(move || core.run(rx))?,
        );
        Ok(Self {
            local_addr,
            stop,
            input: tx,
            events: ev_rx,
            threads,
        })
    }

    /// The address served (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Events of the core ([`AlgEvent`]), in order.
    pub fn events(&self) -> &Receiver<AlgEvent> {
        &self.events
    }

    /// Asks the core to resolve `ulid` ([`DnsAlg::resolve_ulid`]); the result is an event.
    pub fn resolve_ulid(&self, ulid: Ulid) {
        // A send error means the core has stopped: nothing to resolve with.
        let _ = self.input.send(Input::Resolve(ulid));
    }

    /// The core's counters and cache, or `None` if it has stopped.
    pub fn snapshot(&self) -> Option<(AlgStats, Vec<CacheEntry>)> {
        let (tx, rx) = mpsc::channel();
        self.input.send(Input::Stats(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// Stops serving and waits for the threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.input.send(Input::Stop);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// UDP and TCP sockets on the same address; with port 0 both get the same free port.
fn bind_pair(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsAlgError> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(listen)?;
        let mut addr = listen;
        addr.set_port(udp.local_addr()?.port());
        match TcpListener::bind(addr) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(ErrorKind::AddrInUse, "no common free port"))
        .into())
}

fn spawn_udp_reader(
    sock: Arc<UdpSocket>,
    tx: Sender<Input>,
    stop: Arc<AtomicBool>,
    wrap: fn(SocketAddr, Vec<u8>) -> Input,
) -> Result<JoinHandle<()>, DnsAlgError> {
    Ok(thread::Builder::new()
        .name("dns-alg-udp".into())
        .spawn(move || {
            let mut buf = vec![0u8; UDP_BUF];
            while !stop.load(Ordering::Relaxed) {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let bytes = buf.get(..n).unwrap_or_default().to_vec();
                        if tx.send(wrap(from, bytes)).is_err() {
                            return;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // ICMP errors surface as ECONNREFUSED on some kernels: keep going.
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        })?)
}

fn spawn_acceptor(
    listener: TcpListener,
    tx: Sender<Input>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, DnsAlgError> {
    let active = Arc::new(AtomicUsize::new(0));
    Ok(thread::Builder::new()
        .name("dns-alg-accept".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        if active.load(Ordering::SeqCst) >= MAX_TCP_CLIENTS {
                            continue; // dropping the stream closes it
                        }
                        active.fetch_add(1, Ordering::SeqCst);
                        let (tx, stop2, active2) =
                            (tx.clone(), Arc::clone(&stop), Arc::clone(&active));
                        let spawned =
                            thread::Builder::new()
                                .name("dns-alg-tcp".into())
                                .spawn(move || {
                                    serve_tcp_client(stream, peer, &tx, &stop2);
                                    active2.fetch_sub(1, Ordering::SeqCst);
                                });
                        if spawned.is_err() {
                            active.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    // WouldBlock (nothing to accept) or a transient error.
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        })?)
}

/// Reads length-prefixed queries from one client connection until EOF, idle timeout or stop.
fn serve_tcp_client(stream: TcpStream, peer: SocketAddr, tx: &Sender<Input>, stop: &AtomicBool) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    if tx.send(Input::TcpOpened { peer, writer }).is_err() {
        return;
    }
    let mut stream = stream;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) && last.elapsed() < TCP_IDLE {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                last = Instant::now();
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                while let Some(msg) = take_frame(&mut buf) {
                    let input = Input::Client {
                        from: peer,
                        transport: Transport::Tcp,
                        bytes: msg,
                    };
                    if tx.send(input).is_err() {
                        return;
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Input::TcpClosed { peer });
}

/// Takes one complete length-prefixed message off the front of `buf`.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = match buf.get(..2) {
        Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
        _ => return None,
    };
    let end = len.checked_add(2)?;
    if buf.len() < end {
        return None;
    }
    let msg = buf.get(2..end)?.to_vec();
    buf.drain(..end);
    Some(msg)
}

/// `msg` with its 2-byte TCP length prefix; `None` if it is too long for one.
fn frame(msg: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(msg.len()).ok()?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Some(out)
}

/// One query to `server` over TCP; the answer goes to the core as an upstream packet.
fn tcp_upstream(server: SocketAddr, msg: Vec<u8>, timeout: Duration, tx: Sender<Input>) {
    let run = move || -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(&server, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let framed = frame(&msg).ok_or(ErrorKind::InvalidData)?;
        s.write_all(&framed)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut bytes)?;
        let _ = tx.send(Input::Upstream {
            from: server,
            bytes,
        });
        Ok(())
    };
    // Failures need no report: the core's timer retries elsewhere.
    let _ = thread::Builder::new()
        .name("dns-alg-tcp-up".into())
        .spawn(move || {
            let _ = run();
        });
}

struct Core {
    alg: DnsAlg,
    udp: Arc<UdpSocket>,
    up_v4: Option<Arc<UdpSocket>>,
    up_v6: Option<Arc<UdpSocket>>,
    tcp_clients: HashMap<SocketAddr, TcpStream>,
    input: Sender<Input>,
    events: Sender<AlgEvent>,
}

impl Core {
    fn run(mut self, rx: Receiver<Input>) {
        loop {
            let now = Instant::now();
            let wait = self
                .alg
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now))
                .min(Duration::from_secs(1));
            match rx.recv_timeout(wait) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if self.alg.poll_timeout().is_some_and(|t| t <= now) {
                self.alg.handle_timeout(now);
            }
            self.flush();
        }
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Client {
                from,
                transport,
                bytes,
            } => self.alg.handle_query(now, from, &bytes, transport),
            Input::Upstream { from, bytes } => self.alg.handle_upstream(now, from, &bytes),
            Input::TcpOpened { peer, writer } => {
                let _ = writer.set_write_timeout(Some(Duration::from_secs(2)));
                self.tcp_clients.insert(peer, writer);
            }
            Input::TcpClosed { peer } => {
                self.tcp_clients.remove(&peer);
            }
            Input::Resolve(ulid) => {
                self.alg.resolve_ulid(now, ulid);
            }
            Input::Stats(reply) => {
                let _ = reply.send((self.alg.stats().clone(), self.alg.cache_entries(now)));
            }
            Input::Stop => {}
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.alg.poll_transmit() {
            match (t.destination, t.transport) {
                (Destination::Client(c), Transport::Udp) => {
                    let _ = self.udp.send_to(&t.payload, c);
                }
                (Destination::Client(c), Transport::Tcp) => {
                    let ok = match (self.tcp_clients.get_mut(&c), frame(&t.payload)) {
                        (Some(w), Some(f)) => w.write_all(&f).is_ok(),
                        _ => false,
                    };
                    if !ok {
                        self.tcp_clients.remove(&c);
                    }
                }
                (Destination::Upstream(s), Transport::Udp) => {
                    let sock = if s.is_ipv4() {
                        &self.up_v4
                    } else {
                        &self.up_v6
                    };
                    if let Some(sock) = sock {
                        let _ = sock.send_to(&t.payload, s);
                    }
                }
                (Destination::Upstream(s), Transport::Tcp) => tcp_upstream(
                    s,
                    t.payload,
                    self.alg.config().upstream_timeout,
                    self.input.clone(),
                ),
            }
        }
        while let Some(e) = self.alg.poll_event() {
            // Nobody listening is fine: the cache has it anyway.
            let _ = self.events.send(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_framing() {
        let mut buf = vec![0, 3, 1, 2, 3, 0, 2, 9];
        assert_eq!(take_frame(&mut buf), Some(vec![1, 2, 3]));
        assert_eq!(take_frame(&mut buf), None, "incomplete");
        buf.push(8);
        assert_eq!(take_frame(&mut buf), Some(vec![9, 8]));
        assert!(buf.is_empty());
        assert_eq!(frame(&[7, 7]), Some(vec![0, 2, 7, 7]));
        assert_eq!(frame(&vec![0; 70_000]), None);
    }
}
