//! What the core hands to its I/O layer: datagrams or TCP messages, and events for the slow
//! path.

use std::net::SocketAddr;
use std::time::Duration;

use wire::{Locator, Ulid};

/// How a DNS message travels. Over TCP every message is preceded by a 2-byte length
/// ([RFC 7766 §8](https://www.rfc-editor.org/rfc/rfc7766#section-8)); the I/O layer adds and
/// strips it, the core only sees messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// A length-prefixed message on a stream.
    Tcp,
}

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Back to a client (over the transport its query came on; for TCP the I/O layer finds
    /// the connection by the client's address).
    Client(SocketAddr),
    /// To an upstream server (for TCP the I/O layer opens a connection, sends the message,
    /// and feeds the answer to [`DnsAlg::handle_upstream`](crate::DnsAlg::handle_upstream)).
    Upstream(SocketAddr),
}

/// A DNS message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Where to.
    pub destination: Destination,
    /// How.
    pub transport: Transport,
    /// The DNS message (no TCP length prefix).
    pub payload: Vec<u8>,
}

/// What the ALG tells the slow path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgEvent {
    /// DNS gave `ulid`'s locators (its AAAA set), valid for `ttl`: the slow path may start the
    /// SHIM6 handshake at once (the I1 goes to one of them,
    /// [RFC 5533 §7.7](https://www.rfc-editor.org/rfc/rfc5533#section-7.7)).
    PeerLocators {
        /// The peer's ULID (from its ULID record).
        ulid: Ulid,
        /// Its locators (its AAAA records, in DNS order).
        locators: Vec<Locator>,
        /// How long they may be used.
        ttl: Duration,
    },
    /// A [`DnsAlg::resolve_ulid`](crate::DnsAlg::resolve_ulid) found nothing usable (no PTR,
    /// no AAAA, no ULID record, or one for another ULID, or upstream failure).
    ResolveFailed {
        /// The ULID asked about.
        ulid: Ulid,
    },
}

/// Counters of the ALG (all monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlgStats {
    /// Packets from clients.
    pub queries: u64,
    /// Packets from clients dropped by the rate limit.
    pub rate_limited: u64,
    /// Packets from clients dropped unanswered (shorter than a header, or responses).
    pub dropped: u64,
    /// FORMERR answers.
    pub formerr: u64,
    /// NOTIMP answers (opcodes other than QUERY).
    pub notimp: u64,
    /// BADVERS answers (EDNS version above 0).
    pub badvers: u64,
    /// REFUSED answers (zone transfers).
    pub refused: u64,
    /// SERVFAIL answers (every upstream attempt failed).
    pub servfail: u64,
    /// Queries dropped because `max_pending` queries were in progress.
    pub overload: u64,
    /// Answers sent to clients.
    pub answers: u64,
    /// AAAA answers carrying a ULID (SHIM6 peers).
    pub ulid_answers: u64,
    /// AAAA answers with the real addresses (peers without a ULID record).
    pub legacy_answers: u64,
    /// Answers about the site's own hosts.
    pub host_answers: u64,
    /// ULID records ignored because their RDATA was not 16 bytes.
    pub bad_ulid_records: u64,
    /// Answers truncated (TC=1) to fit the client's UDP size.
    pub truncated: u64,
    /// Additional RRsets dropped to fit an answer without truncation.
    pub additional_shed: u64,
    /// Messages sent upstream (first tries and retries).
    pub upstream_sent: u64,
    /// Upstream retries (after a timeout or an error answer).
    pub upstream_retries: u64,
    /// Upstream attempts that timed out.
    pub upstream_timeouts: u64,
    /// Upstream answers with an error RCODE (SERVFAIL, REFUSED, ...).
    pub upstream_errors: u64,
    /// Upstream answers that could not be decoded.
    pub upstream_malformed: u64,
    /// Upstream packets matching no pending query (unknown ID or server, other question).
    pub upstream_unmatched: u64,
    /// Upstream queries repeated over TCP after a truncated UDP answer.
    pub upstream_tcp_fallbacks: u64,
    /// Messages that could not be encoded (dropped).
    pub encode_errors: u64,
}
