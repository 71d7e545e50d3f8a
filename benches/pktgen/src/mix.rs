//! The appliance's traffic mix, frame by frame: the classes a SHIM6 proxy forwards, their
//! addresses (the synthetic site `dataplane::bench::Synthetic` that `pshim6 run` preloads with
//! `[dpdk] synthetic_contexts`), sizes, and the 8-byte stamp at the end of every payload.
//!
//! Sizes are the frame on the provider side (Ethernet header included, no FCS), so a 78-byte
//! size is the smallest tagged frame: Ethernet 14 + IPv6 40 + Shim6 payload header 8 + UDP 8
//! + stamp 8. Frames without the Shim6 header (inside ones, NATv6) are 8 bytes shorter, so the
//!   payload (and the stamp) is the same on both sides of the proxy.

use std::net::Ipv6Addr;

use dataplane::bench::Synthetic;

/// Ethernet + IPv6 + UDP headers.
const HDR: usize = 14 + 40 + 8;
/// The Shim6 payload extension header (RFC 5533 §5.1).
pub(crate) const SHIM6_PAYLOAD: usize = 8;
/// Bytes of the stamp: magic, class, 48-bit nanoseconds.
pub(crate) const STAMP: usize = 8;
/// Smallest size: a tagged frame with just the stamp as payload.
pub(crate) const MIN_SIZE: usize = HDR + SHIM6_PAYLOAD + STAMP;
/// Largest size: a 1500-byte IPv6 packet in an Ethernet frame.
pub(crate) const MAX_SIZE: usize = 14 + 1500;
const MAGIC: u8 = 0x36;
/// Destinations of NATv6 traffic (any global prefix that is not the site's).
const INTERNET: u128 = 0x2001_0db8_f00d_0000 << 64;

/// A kind of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    /// Inside → outside between a host ULID and a peer ULID with an established context: the
    /// proxy inserts the Shim6 payload header and rewrites to locators.
    Egress,
    /// Outside → inside, locators and a Shim6 payload header with our context tag: the proxy
    /// restores the ULIDs and strips the header.
    Ingress,
    /// Inside → a global destination with no context: stateless NATv6 out.
    Natv6,
    /// Outside → inside Shim6 control (a REAP Keepalive, RFC 5534 §5.3): punted to the slow
    /// path, never forwarded (background load; not counted as loss).
    Control,
}

impl Class {
    /// All classes, in stamp order.
    pub(crate) const ALL: [Class; 4] =
        [Class::Egress, Class::Ingress, Class::Natv6, Class::Control];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::Egress => "egress",
            Class::Ingress => "ingress",
            Class::Natv6 => "natv6",
            Class::Control => "control",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Sent from the inside port (else from the outside one).
    pub(crate) fn sent_inside(self) -> bool {
        matches!(self, Class::Egress | Class::Natv6)
    }

    /// Comes back through the proxy (control does not).
    pub(crate) fn forwarded(self) -> bool {
        !matches!(self, Class::Control)
    }

    /// Frame length for a provider-side `size`.
    pub(crate) fn frame_len(self, size: usize) -> usize {
        match self {
            Class::Ingress => size,
            // The control message must be a multiple of 8 bytes (Hdr Ext Len).
            Class::Control => 54 + (size.min(HDR + 40) - 54) / 8 * 8,
            Class::Egress | Class::Natv6 => size - SHIM6_PAYLOAD,
        }
    }
}

/// Frame sizes: one, or the IMIX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sizes(Vec<usize>);

impl Sizes {
    /// `78`, `1500`, ... or `imix` (7:4:1 of 78, 594, 1500, the simple IMIX with the smallest
    /// frame raised to what a tagged packet needs).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("imix") {
            let mut v = vec![78; 7];
            v.extend([594; 4]);
            v.push(1500);
            return Ok(Self(v));
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("size `{s}`: a number or `imix`"))?;
        if !(MIN_SIZE..=MAX_SIZE).contains(&n) {
            return Err(format!("size {n}: must be in {MIN_SIZE}..={MAX_SIZE}"));
        }
        Ok(Self(vec![n]))
    }

    /// The size of the `k`-th packet.
    #[inline]
    pub(crate) fn nth(&self, k: u64) -> usize {
        let v = &self.0;
        v[(k % v.len() as u64) as usize]
    }

    /// Mean provider-side frame size.
    pub(crate) fn mean(&self) -> f64 {
        self.0.iter().sum::<usize>() as f64 / self.0.len() as f64
    }
}

/// Class weights, expanded into a repeating pattern of 64 slots.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    pattern: Vec<Class>,
    weights: [u32; 4],
}

impl Mix {
    /// `egress=4,ingress=4,natv6=1,control=0`: relative weights (missing classes are 0).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut w = [0u32; 4];
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("mix `{part}`: expected CLASS=WEIGHT"))?;
            let c = Class::ALL
                .iter()
                .find(|c| c.name() == k)
                .ok_or_else(|| format!("mix class `{k}`: egress, ingress, natv6 or control"))?;
            w[c.index()] = v.parse().map_err(|_| format!("mix weight `{v}`"))?;
        }
        let total: u32 = w.iter().sum();
        if total == 0
            || w.iter()
                .zip(Class::ALL)
                .all(|(n, c)| *n == 0 || !c.forwarded())
        {
            return Err("mix: give some forwarded class (egress, ingress, natv6) a weight".into());
        }
        // Smooth weighted round robin over 64 slots: exact shares when the total divides 64,
        // interleaved so a burst holds every class.
        let mut pattern = Vec::with_capacity(64);
        let mut acc = [0i64; 4];
        for _ in 0..64 {
            for (a, n) in acc.iter_mut().zip(w) {
                *a += i64::from(n);
            }
            let (i, _) = acc
                .iter()
                .enumerate()
                .max_by_key(|(_, a)| **a)
                .unwrap_or((0, &0));
            acc[i] -= i64::from(total);
            pattern.push(Class::ALL[i]);
        }
        Ok(Self {
            pattern,
            weights: w,
        })
    }

    /// The class of the `k`-th packet.
    #[inline]
    pub(crate) fn nth(&self, k: u64) -> Class {
        self.pattern[(k % self.pattern.len() as u64) as usize]
    }

    /// Weights by class.
    pub(crate) fn weights(&self) -> [u32; 4] {
        self.weights
    }
}

/// Who is who on the two links: the proxy's MACs and prefixes, and the generator's MACs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addressing {
    /// The proxy's MAC on its inside link (the hosts' router).
    pub(crate) dut_inside_mac: [u8; 6],
    /// The proxy's MAC on the provider link.
    pub(crate) dut_outside_mac: [u8; 6],
    /// The generator's MAC on the inside link (every host).
    pub(crate) host_mac: [u8; 6],
    /// The generator's MAC on the provider link (the exit router).
    pub(crate) router_mac: [u8; 6],
    /// The site: ULIDs, locators (its PA prefix) and tags of every context.
    pub(crate) site: Synthetic,
}

/// Writes frames of the mix.
#[derive(Debug, Clone)]
pub(crate) struct Builder {
    pub(crate) addr: Addressing,
}

impl Builder {
    /// Writes the frame of `class` for context `ctx` with provider-side `size` and stamp time
    /// `ns` into `out` (which it zeroes first) and returns its length.
    #[inline]
    pub(crate) fn build(
        &self,
        out: &mut [u8],
        class: Class,
        ctx: usize,
        size: usize,
        ns: u64,
    ) -> usize {
        let len = class.frame_len(size).min(out.len());
        let f = &mut out[..len];
        f.fill(0);
        let a = &self.addr;
        let e = a.site.entry(ctx % a.site.contexts);
        match class {
            Class::Egress => {
                eth(f, a.dut_inside_mac, a.host_mac);
                udp_packet(f, e.local_ulid.0, e.peer_ulid.0, None, ctx);
            }
            Class::Natv6 => {
                let dst = Ipv6Addr::from_bits(INTERNET | (ctx as u128 + 1));
                eth(f, a.dut_inside_mac, a.host_mac);
                udp_packet(f, e.local_ulid.0, dst, None, ctx);
            }
            Class::Ingress => {
                eth(f, a.dut_outside_mac, a.router_mac);
                // On the wire: locators, and the Shim6 payload header with our tag. The UDP
                // checksum covers the ULIDs (RFC 5533 §5.1): what the host will check.
                let wire = (e.pair.peer.0, e.pair.local.0);
                let shim = Some((wire, e.local_tag.to_bytes()));
                udp_packet(f, e.peer_ulid.0, e.local_ulid.0, shim, ctx);
            }
            Class::Control => {
                eth(f, a.dut_outside_mac, a.router_mac);
                keepalive(f, e.pair.peer.0, e.pair.local.0, e.local_tag.to_bytes());
            }
        }
        stamp(f, class, ns);
        len
    }
}

fn eth(f: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
}

fn ipv6(f: &mut [u8], plen: usize, nh: u8, src: Ipv6Addr, dst: Ipv6Addr) {
    f[14..18].copy_from_slice(&[0x60, 0, 0, 0]);
    f[18..20].copy_from_slice(&(plen as u16).to_be_bytes());
    f[20] = nh;
    f[21] = 64;
    f[22..38].copy_from_slice(&src.octets());
    f[38..54].copy_from_slice(&dst.octets());
}

/// IPv6 + (optional Shim6 payload header) + UDP; the UDP checksum is left for [`stamp`]
/// to finish (it covers the stamp), seeded here with the pseudo-header and UDP header.
/// `shim`: the on-wire (locator) addresses and the tag, for a tagged frame.
fn udp_packet(
    f: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    shim: Option<((Ipv6Addr, Ipv6Addr), [u8; 6])>,
    ctx: usize,
) {
    let len = f.len();
    let (udp, plen) = match shim {
        Some(((wsrc, wdst), t)) => {
            ipv6(f, len - 54, 140, wsrc, wdst);
            f[54..62].copy_from_slice(&[17, 0, 0x80 | t[0], t[1], t[2], t[3], t[4], t[5]]);
            (62, len - 62)
        }
        None => {
            ipv6(f, len - 54, 17, src, dst);
            (54, len - 54)
        }
    };
    // Source port varies by context so RSS spreads flows over the proxy's workers.
    let sport = 0xc000 | (ctx as u16 & 0x3fff);
    f[udp..udp + 2].copy_from_slice(&sport.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&9u16.to_be_bytes());
    f[udp + 4..udp + 6].copy_from_slice(&(plen as u16).to_be_bytes());
    let mut s = pseudo_sum(src, dst, plen as u32, 17);
    s += sum16(&f[udp..udp + 6]);
    // Parked in the checksum field until `stamp` adds the payload.
    let folded = fold(s);
    f[udp + 6..udp + 8].copy_from_slice(&folded.to_be_bytes());
}

/// A REAP Keepalive (RFC 5534 §5.3) in a Shim6 control header (RFC 5533 §5.2): no next
/// header, P bit clear, S bit clear, then the receiver's context tag. Its checksum (the
/// message alone, no pseudo-header) is completed by [`stamp`], the stamp being part of it.
fn keepalive(f: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, tag: [u8; 6]) {
    let len = f.len();
    ipv6(f, len - 54, 140, src, dst);
    let c = &mut f[54..];
    c[0] = 59;
    c[1] = ((len - 54) / 8).saturating_sub(1) as u8;
    c[2] = 66;
    c[6] = 0;
    c[7] = 0;
    c[8..14].copy_from_slice(&tag);
}

/// Writes the stamp in the last 8 bytes and completes the UDP checksum over it.
#[inline]
fn stamp(f: &mut [u8], class: Class, ns: u64) {
    let len = f.len();
    let mut v = (ns & 0xffff_ffff_ffff).to_be_bytes();
    v[0] = MAGIC;
    v[1] = class as u8;
    f[len - STAMP..].copy_from_slice(&v);
    let udp = match (f[20], class) {
        (17, _) => 54,
        (140, Class::Ingress) => 62,
        (140, Class::Control) => {
            let c = !fold(sum16(&f[54..]));
            f[58..60].copy_from_slice(&c.to_be_bytes());
            return;
        }
        _ => return,
    };
    let parked = u16::from_be_bytes([f[udp + 6], f[udp + 7]]);
    let s = u32::from(parked) + sum16(&v);
    let c = !fold(s);
    let c = if c == 0 { 0xffff } else { c };
    f[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
}

/// Reads the stamp of a received frame: (class, nanoseconds), if it carries one.
#[inline]
pub(crate) fn read_stamp(f: &[u8]) -> Option<(Class, u64)> {
    if f.len() < MIN_SIZE - SHIM6_PAYLOAD {
        return None;
    }
    let s = &f[f.len() - STAMP..];
    if s[0] != MAGIC {
        return None;
    }
    let class = *Class::ALL.get(usize::from(s[1]))?;
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&s[2..]);
    Some((class, u64::from_be_bytes(b)))
}

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Ones-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub(crate) fn pseudo_sum(src: Ipv6Addr, dst: Ipv6Addr, len: u32, nh: u8) -> u32 {
    sum16(&src.octets()) + sum16(&dst.octets()) + (len >> 16) + (len & 0xffff) + u32::from(nh)
}

/// Completes an ICMPv6 checksum (`sum` of the pseudo-header, the message with a zero
/// checksum field).
pub(crate) fn finish(sum: u32, msg: &[u8]) -> u16 {
    !fold(sum + sum16(msg))
}

#[cfg(test)]
mod tests {
    use dataplane::config::Prefix64;

    use super::*;

    fn builder() -> Builder {
        let p = |s: &str| Prefix64::of(s.parse().unwrap());
        Builder {
            addr: Addressing {
                dut_inside_mac: [2, 0, 0, 0, 0, 1],
                dut_outside_mac: [2, 0, 0, 0, 1, 1],
                host_mac: [2, 0x11, 0x22, 0x33, 0x44, 0x55],
                router_mac: [2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa],
                site: Synthetic::with_prefixes(p("fc00:1:1:1::"), p("2001:db8:1a::"), 10),
            },
        }
    }

    fn addr(f: &[u8], at: usize) -> Ipv6Addr {
        let mut b = [0u8; 16];
        b.copy_from_slice(&f[at..at + 16]);
        Ipv6Addr::from(b)
    }

    /// The UDP checksum verifies over `src`/`dst` (sum folds to all ones).
    fn udp_ok(f: &[u8], udp: usize, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let len = (f.len() - udp) as u32;
        finish(pseudo_sum(src, dst, len, 17), &f[udp..]) == 0
    }

    #[test]
    fn every_class_is_built_as_the_proxy_expects_it() {
        let b = builder();
        let e = b.addr.site.entry(3);
        let mut buf = vec![0u8; MAX_SIZE];
        for size in [78usize, 86, 128, 512, 1500] {
            let n = b.build(&mut buf, Class::Egress, 3, size, 12345);
            let f = &buf[..n];
            assert_eq!(n, size - 8);
            assert_eq!((&f[0..6], f[20]), (&[2u8, 0, 0, 0, 0, 1][..], 17));
            assert_eq!((addr(f, 22), addr(f, 38)), (e.local_ulid.0, e.peer_ulid.0));
            assert!(
                udp_ok(f, 54, e.local_ulid.0, e.peer_ulid.0),
                "egress {size}"
            );
            assert_eq!(read_stamp(f), Some((Class::Egress, 12345)));

            let n = b.build(&mut buf, Class::Ingress, 3, size, 777);
            let f = &buf[..n];
            assert_eq!(n, size);
            assert_eq!(f[20], 140, "Shim6 next header");
            assert_eq!((addr(f, 22), addr(f, 38)), (e.pair.peer.0, e.pair.local.0));
            let t = e.local_tag.to_bytes();
            assert_eq!(
                &f[54..62],
                &[17, 0, 0x80 | t[0], t[1], t[2], t[3], t[4], t[5]]
            );
            // Valid once the proxy has put the ULIDs back (RFC 5533 §5.1).
            assert!(
                udp_ok(f, 62, e.peer_ulid.0, e.local_ulid.0),
                "ingress {size}"
            );
            assert_eq!(read_stamp(f), Some((Class::Ingress, 777)));

            let n = b.build(&mut buf, Class::Natv6, 3, size, 1);
            let f = &buf[..n];
            assert_eq!(addr(f, 22), e.local_ulid.0);
            assert_eq!(
                addr(f, 38).segments()[..3],
                [0x2001, 0xdb8, 0xf00d],
                "a global dst"
            );
            assert!(udp_ok(f, 54, addr(f, 22), addr(f, 38)));

            let n = b.build(&mut buf, Class::Control, 3, size, 1);
            let f = &buf[..n];
            assert_eq!((n - 54) % 8, 0);
            assert_eq!(
                (f[20], f[56] & 0x80, f[56] & 0x7f),
                (140, 0, 66),
                "control, P clear"
            );
            assert_eq!(usize::from(f[55]), (n - 54) / 8 - 1, "Hdr Ext Len");
            assert_eq!(!fold(sum16(&f[54..])), 0, "Shim6 checksum");
        }
    }

    #[test]
    fn mix_and_sizes_parse_and_spread() {
        let m = Mix::parse("egress=1,ingress=1,natv6=2").unwrap();
        let mut n = [0; 4];
        for k in 0..64 {
            n[m.nth(k).index()] += 1;
        }
        assert_eq!(n, [16, 16, 32, 0]);
        assert!(Mix::parse("control=1").is_err(), "nothing forwarded");
        assert!(Mix::parse("bogus=1").is_err());
        let s = Sizes::parse("imix").unwrap();
        assert_eq!((s.nth(0), s.nth(7), s.nth(11)), (78, 594, 1500));
        assert!(
            Sizes::parse("64").is_err(),
            "below the smallest tagged frame"
        );
        assert!(Sizes::parse("1515").is_err());
        assert_eq!(read_stamp(&[0u8; 100]), None);
    }
}
