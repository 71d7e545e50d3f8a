//! What the fast path decided about one packet, and why: every punt and every drop has a
//! reason, and every reason is a per-worker counter.

use wire::ContextTag;

use crate::io::PortId;

/// What a worker does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (translated) frame on this port.
    Forward(PortId),
    /// Hand a copy of the frame as received to the slow path.
    Punt(PuntReason),
    /// Free the frame and count it.
    Drop(DropReason),
}

/// Why a frame goes to the slow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PuntReason {
    /// Inside to a ULA (remote ULID) with no context: the slow path starts the handshake
    /// ([RFC 5533 §7.3](https://www.rfc-editor.org/rfc/rfc5533#section-7.3)) and queues the
    /// packet.
    NoContext,
    /// A payload header whose tag is not ours: the slow path answers R1bis
    /// ([RFC 5533 §7.17](https://www.rfc-editor.org/rfc/rfc5533#section-7.17)).
    UnknownTag(ContextTag),
    /// A Shim6 control message (P = 0, [RFC 5533 §5.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.3)),
    /// REAP included.
    Control,
    /// Neighbor Discovery ([RFC 4861](https://www.rfc-editor.org/rfc/rfc4861)) or other
    /// link-scope ICMPv6 the slow path's smoltcp interface answers.
    Neighbor,
    /// Addressed to the proxy itself (DNS, DHCPv6, echo to its addresses, multicast).
    ForUs,
    /// The next hop's MAC (provider exit or inside host) is not in the neighbour table yet:
    /// the slow path resolves it.
    NoNextHop,
    /// Larger than the egress link allows after translation: the slow path sends ICMPv6
    /// Packet Too Big with `mtu` to the inside host ([RFC 5533 §8](https://www.rfc-editor.org/rfc/rfc5533#section-8),
    /// [RFC 4443 §3.2](https://www.rfc-editor.org/rfc/rfc4443#section-3.2)). Never a silent drop.
    TooBig {
        /// The MTU the host must use: the link MTU less what translation adds.
        mtu: u16,
    },
    /// Hop limit would reach zero: the slow path sends Time Exceeded
    /// ([RFC 4443 §3.3](https://www.rfc-editor.org/rfc/rfc4443#section-3.3)).
    HopLimit,
    /// A payload packet for a known tag whose destination is not one of the host's locators
    /// (our hygiene check, spec shim6.md §14; the source is not checked, since REAP lets the
    /// peer send from any of its locators), or an egress context whose source locator no
    /// provider owns: the slow path, which knows the whole locator sets, decides.
    LocatorMismatch,
    /// An ICMPv6 error to be translated: its quoted packet needs rewriting too
    /// ([RFC 5533 §8](https://www.rfc-editor.org/rfc/rfc5533#section-8)), which is slow-path work.
    IcmpError,
}

impl PuntReason {
    /// Number of reason kinds (size of per-reason counter arrays).
    pub const COUNT: usize = 10;

    /// Names of the kinds, indexed by [`PuntReason::index`].
    pub const NAMES: [&'static str; Self::COUNT] = [
        "no_context",
        "unknown_tag",
        "control",
        "neighbor",
        "for_us",
        "no_next_hop",
        "too_big",
        "hop_limit",
        "locator_mismatch",
        "icmp_error",
    ];

    /// Index of this reason's kind in per-reason counters.
    pub const fn index(&self) -> usize {
        match self {
            PuntReason::NoContext => 0,
            PuntReason::UnknownTag(_) => 1,
            PuntReason::Control => 2,
            PuntReason::Neighbor => 3,
            PuntReason::ForUs => 4,
            PuntReason::NoNextHop => 5,
            PuntReason::TooBig { .. } => 6,
            PuntReason::HopLimit => 7,
            PuntReason::LocatorMismatch => 8,
            PuntReason::IcmpError => 9,
        }
    }
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Truncated or inconsistent headers (Payload Length past the frame, bad extension header
    /// chain, a payload header with Hdr Ext Len ≠ 0, ...).
    Malformed,
    /// Not an IPv6 frame (EtherType other than 0x86DD, version ≠ 6).
    NotIpv6,
    /// Source address impossible for the side it came from: an inside source outside the ULID
    /// prefix, or an outside source inside it (ULIDs are not routable, so it is spoofed).
    BadSource,
    /// From a provider, for an address that is neither ours nor in our prefixes.
    NotOurs,
    /// NATv6 needs a provider and none is up.
    NoProvider,
    /// The buffer has no headroom for the payload header or the tunnel header.
    NoHeadroom,
    /// Received on a port the configuration does not know.
    UnknownPort,
}

impl DropReason {
    /// Number of reason kinds.
    pub const COUNT: usize = 7;

    /// Names of the kinds, indexed by [`DropReason::index`].
    pub const NAMES: [&'static str; Self::COUNT] = [
        "malformed",
        "not_ipv6",
        "bad_source",
        "not_ours",
        "no_provider",
        "no_headroom",
        "unknown_port",
    ];

    /// Index of this reason in per-reason counters.
    pub const fn index(&self) -> usize {
        match self {
            DropReason::Malformed => 0,
            DropReason::NotIpv6 => 1,
            DropReason::BadSource => 2,
            DropReason::NotOurs => 3,
            DropReason::NoProvider => 4,
            DropReason::NoHeadroom => 5,
            DropReason::UnknownPort => 6,
        }
    }
}

/// Which translation forwarded a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Inside → provider with a context (payload header inserted).
    Egress,
    /// Provider → inside with a payload header (ULIDs restored).
    Ingress,
    /// Inside → provider, stateless NATv6.
    NatOut,
    /// Provider → inside, stateless NATv6.
    NatIn,
}

impl Path {
    /// Number of paths.
    pub const COUNT: usize = 4;
    /// Names, indexed by [`Path::index`].
    pub const NAMES: [&'static str; Self::COUNT] = ["egress", "ingress", "nat_out", "nat_in"];

    /// Index in per-path counters.
    pub const fn index(&self) -> usize {
        match self {
            Path::Egress => 0,
            Path::Ingress => 1,
            Path::NatOut => 2,
            Path::NatIn => 3,
        }
    }
}

/// The fast path's own counters: plain integers owned by one worker (no sharing, no atomics
/// per packet). The worker publishes them with relaxed atomic stores ([`crate::worker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastPathCounters {
    /// Frames classified.
    pub packets: u64,
    /// Forwarded frames per [`Path`].
    pub forwarded: [u64; Path::COUNT],
    /// Punted frames per [`PuntReason`] kind (whether or not the punt queue took them).
    pub punted: [u64; PuntReason::COUNT],
    /// Dropped frames per [`DropReason`].
    pub dropped: [u64; DropReason::COUNT],
}

impl FastPathCounters {
    /// Counts one verdict (forwards are counted by path where they are decided).
    pub(crate) fn count(&mut self, v: &Verdict) {
        match v {
            Verdict::Forward(_) => {}
            Verdict::Punt(r) => self.punted[r.index()] += 1,
            Verdict::Drop(r) => self.dropped[r.index()] += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_dense_and_distinct() {
        let tag = ContextTag::new(5).unwrap();
        let punts = [
            PuntReason::NoContext,
            PuntReason::UnknownTag(tag),
            PuntReason::Control,
            PuntReason::Neighbor,
            PuntReason::ForUs,
            PuntReason::NoNextHop,
            PuntReason::TooBig { mtu: 1492 },
            PuntReason::HopLimit,
            PuntReason::LocatorMismatch,
            PuntReason::IcmpError,
        ];
        let idx: Vec<_> = punts.iter().map(PuntReason::index).collect();
        assert_eq!(idx, (0..PuntReason::COUNT).collect::<Vec<_>>());
        let drops = [
            DropReason::Malformed,
            DropReason::NotIpv6,
            DropReason::BadSource,
            DropReason::NotOurs,
            DropReason::NoProvider,
            DropReason::NoHeadroom,
            DropReason::UnknownPort,
        ];
        let idx: Vec<_> = drops.iter().map(DropReason::index).collect();
        assert_eq!(idx, (0..DropReason::COUNT).collect::<Vec<_>>());
        let mut c = FastPathCounters::default();
        c.count(&Verdict::Punt(PuntReason::TooBig { mtu: 1 }));
        c.count(&Verdict::Drop(DropReason::NoProvider));
        c.count(&Verdict::Forward(PortId(1)));
        assert_eq!(c.punted[6], 1);
        assert_eq!(c.dropped[4], 1);
        assert_eq!(
            c.punted.iter().sum::<u64>() + c.dropped.iter().sum::<u64>(),
            2
        );
    }
}
