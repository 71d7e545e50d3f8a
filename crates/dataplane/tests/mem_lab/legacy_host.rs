//! A legacy host on a proxy's inside link(s), and the loop that drives two of them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dataplane::backend::mem::MemQueue;
use dataplane::buf::PacketBuf;
use dataplane::config::MacAddr;
use dataplane::io::PortQueue;
use wire::Ulid;

use crate::twosite_common::{as_ns, datagram, datagram_faults, datagram_seq, eth, na_frame, Site};

/// A legacy host: sends numbered ULID datagrams to its peer through its current next hop
/// (one of its inside links), answers ND for its ULID on every link, and checks every
/// datagram it receives against what the peer sent: byte for byte (ULIDs restored) except
/// the hop limit, which must be 61 (64, less one per proxy and one in the core), from its
/// proxy's MAC to its own.
pub(crate) struct Host {
    pub(crate) links: Vec<MemQueue>,
    /// The link [`Host::send`] uses.
    pub(crate) next_hop: usize,
    pub(crate) mac: MacAddr,
    pub(crate) ulid: Ulid,
    pub(crate) peer: Ulid,
    pub(crate) proxy_mac: MacAddr,
    pub(crate) next_seq: u32,
    pub(crate) received: BTreeSet<u32>,
    pub(crate) errors: Vec<String>,
}

impl Host {
    /// `me`'s legacy host on `links`, talking to `peer`'s; it sends on `links[0]`.
    pub(crate) fn new(links: Vec<MemQueue>, me: &Site, peer: &Site) -> Self {
        Self {
            links,
            next_hop: 0,
            mac: me.host_mac,
            ulid: me.host().0,
            peer: peer.host().0,
            proxy_mac: me.inside_mac,
            next_seq: 0,
            received: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    /// Sends the next datagram.
    pub(crate) fn send(&mut self) {
        let mut f = eth(self.proxy_mac, self.mac);
        f.extend_from_slice(&datagram(self.ulid, self.peer, self.next_seq));
        self.next_seq += 1;
        let q = &mut self.links[self.next_hop];
        let mut b = q.alloc().expect("pool buffer");
        b.reset_from(&f).unwrap();
        q.tx_burst(&mut vec![b]);
    }

    /// Receives on every link: answers ND, checks and records datagrams.
    pub(crate) fn poll(&mut self) {
        for q in &mut self.links {
            let mut rx = Vec::new();
            q.rx_burst(&mut rx, 32);
            let mut replies = Vec::new();
            for b in rx {
                let f = b.as_ref().to_vec();
                q.free(b);
                if let Some((src, target, mac)) = as_ns(&f) {
                    if target == self.ulid.0 {
                        let na = na_frame(mac, self.mac, self.ulid.0, src, self.ulid.0, false);
                        let mut nb = q.alloc().expect("pool buffer");
                        nb.reset_from(&na).unwrap();
                        replies.push(nb);
                    }
                    continue;
                }
                if f.get(20) != Some(&17) {
                    continue; // other ND traffic
                }
                let Some(seq) = datagram_seq(&f[14..]) else {
                    self.errors.push(format!("short frame {f:02x?}"));
                    continue;
                };
                let faults = datagram_faults(&f[14..], self.peer, self.ulid, seq);
                self.errors
                    .extend(faults.into_iter().map(|e| format!("seq {seq}: {e}")));
                if f[0..6] != self.mac.0 || f[6..12] != self.proxy_mac.0 {
                    self.errors
                        .push(format!("seq {seq}: MACs {:02x?}", &f[0..12]));
                }
                if !self.received.insert(seq) {
                    self.errors.push(format!("seq {seq}: duplicate"));
                }
            }
            if !replies.is_empty() {
                q.tx_burst(&mut replies);
            }
        }
    }

    /// Datagrams received with a sequence number of `seq` or more.
    pub(crate) fn got_after(&self, seq: u32) -> usize {
        self.received.range(seq..).count()
    }
}

/// A lab with two legacy hosts: drives them and checks what they saw.
pub(crate) trait TwoHosts: Sized {
    /// Host 1 and host 2.
    fn hosts(&mut self) -> [&mut Host; 2];

    /// Sends from the hosts that are `sending` every ~4 ms until `done` or `timeout`;
    /// whether `done` came true.
    fn run(
        &mut self,
        sending: (bool, bool),
        timeout: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> bool {
        let end = Instant::now() + timeout;
        let mut last = Instant::now() - Duration::from_secs(1);
        while Instant::now() < end {
            let [h1, h2] = self.hosts();
            if last.elapsed() >= Duration::from_millis(4) {
                last = Instant::now();
                if sending.0 {
                    h1.send();
                }
                if sending.1 {
                    h2.send();
                }
            }
            h1.poll();
            h2.poll();
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Fails with every bad frame a host saw.
    fn assert_clean(&mut self) {
        for h in self.hosts() {
            assert!(
                h.errors.is_empty(),
                "host {} saw bad frames:\n{}",
                h.ulid,
                h.errors.join("\n")
            );
        }
    }
}
