//! Router Advertisements for the inside link ([RFC 4861 §4.2](https://www.rfc-editor.org/rfc/rfc4861#section-4.2)):
//! hosts start DHCPv6 only after an RA with the M flag, and learn their default route from it.
//! The ULID /64 is advertised on-link with A = 0, so hosts take no SLAAC address and use only
//! the DHCPv6 CMULA. Building the message and scheduling it are sans-IO; the standalone runner
//! sends it on a raw ICMPv6 socket (the kernel fills the checksum, RFC 3542 §3.1).

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::config::RaConfig;
use crate::Prefix64;

/// ICMPv6 type of a Router Solicitation.
pub const ICMPV6_ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ICMPV6_ROUTER_ADVERTISEMENT: u8 = 134;
/// MAX_INITIAL_RTR_ADVERT_INTERVAL ([RFC 4861 §10](https://www.rfc-editor.org/rfc/rfc4861#section-10)).
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);
/// MAX_INITIAL_RTR_ADVERTISEMENTS (RFC 4861 §10).
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u8 = 3;
/// MIN_DELAY_BETWEEN_RAS (RFC 4861 §10).
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// MAX_RA_DELAY_TIME (RFC 4861 §10): a solicited RA waits a random time up to this.
pub const MAX_RA_DELAY_TIME: Duration = Duration::from_millis(500);

const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_PREFIX_INFO: u8 = 3;
/// Recursive DNS Server option ([RFC 8106 §5.1](https://www.rfc-editor.org/rfc/rfc8106#section-5.1)).
const OPT_RDNSS: u8 = 25;

/// The Router Advertisement body, from the ICMPv6 type on, checksum left 0.
///
/// Layout (RFC 4861 §4.2): type 134, code 0, checksum (2), Cur Hop Limit, flags (M = 0x80,
/// O = 0x40), Router Lifetime (2), Reachable Time (4), Retrans Timer (4), then options:
/// Source Link-layer Address (§4.6.1) when `source_mac` is known, Prefix Information
/// (§4.6.2: /64, L = 1, A = 0) for the ULID prefix, and RDNSS (RFC 8106) when enabled.
pub fn build_router_advertisement(
    ra: &RaConfig,
    ulid_prefix: Prefix64,
    dns: &[Ipv6Addr],
    source_mac: Option<[u8; 6]>,
) -> Vec<u8> {
    let mut m = vec![ICMPV6_ROUTER_ADVERTISEMENT, 0, 0, 0, ra.hop_limit];
    m.push(if ra.managed { 0x80 } else { 0 } | if ra.other { 0x40 } else { 0 });
    m.extend_from_slice(&ra.router_lifetime.to_be_bytes());
    m.extend_from_slice(&[0; 8]); // Reachable Time, Retrans Timer: unspecified
    if let Some(mac) = source_mac {
        m.extend_from_slice(&[OPT_SOURCE_LLADDR, 1]);
        m.extend_from_slice(&mac);
    }
    if ra.prefix_info {
        m.extend_from_slice(&[OPT_PREFIX_INFO, 4, 64, 0x80]); // L = 1, A = 0
        m.extend_from_slice(&ra.prefix_valid_lifetime.to_be_bytes());
        m.extend_from_slice(&ra.prefix_preferred_lifetime.to_be_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&ulid_prefix.network().octets());
    }
    // RFC 8106 §5.1: at most 127 addresses fit the 8-bit length; config allows 16.
    if ra.rdnss && !dns.is_empty() && dns.len() <= 16 {
        m.extend_from_slice(&[OPT_RDNSS, (1 + 2 * dns.len()) as u8, 0, 0]);
        // RFC 8106 §5.1: lifetime at least MaxRtrAdvInterval; 3× survives two lost RAs.
        m.extend_from_slice(&(ra.interval.saturating_mul(3)).to_be_bytes());
        for a in dns {
            m.extend_from_slice(&a.octets());
        }
    }
    m
}

/// Whether an ICMPv6 message (from the type on) is a Router Solicitation (RFC 4861 §6.1.1:
/// code 0, at least 8 bytes).
pub fn is_router_solicitation(icmp: &[u8]) -> bool {
    icmp.len() >= 8 && icmp[0] == ICMPV6_ROUTER_SOLICITATION && icmp[1] == 0
}

/// When to send the next multicast RA ([RFC 4861 §6.2.4](https://www.rfc-editor.org/rfc/rfc4861#section-6.2.4),
/// §6.2.6). Randomness comes from the caller as fractions in [0, 1).
#[derive(Debug, Clone)]
pub struct RaSchedule {
    max_interval: Duration,
    min_interval: Duration,
    next: Instant,
    initial_left: u8,
    last_sent: Option<Instant>,
}

impl RaSchedule {
    /// A schedule whose first RA is due at `now`. `max_interval` is MaxRtrAdvInterval;
    /// MinRtrAdvInterval is its default, a third of it (RFC 4861 §6.2.1).
    pub fn new(now: Instant, max_interval: Duration) -> Self {
        Self {
            max_interval,
            min_interval: max_interval / 3,
            next: now,
            initial_left: MAX_INITIAL_RTR_ADVERTISEMENTS,
            last_sent: None,
        }
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// A Router Solicitation arrived: answer after `delay_fraction` × MAX_RA_DELAY_TIME, but
    /// not sooner than MIN_DELAY_BETWEEN_RAS after the last RA (RFC 4861 §6.2.6).
    pub fn on_solicit(&mut self, now: Instant, delay_fraction: f64) {
        let mut at = now + MAX_RA_DELAY_TIME.mul_f64(delay_fraction.clamp(0.0, 1.0));
        if let Some(last) = self.last_sent {
            at = at.max(last + MIN_DELAY_BETWEEN_RAS);
        }
        self.next = self.next.min(at);
    }

    /// True when an RA is due at `now`; then the next one is scheduled `jitter` of the way
    /// between Min and MaxRtrAdvInterval (the first few at most 16 s apart, §6.2.4).
    pub fn handle_timeout(&mut self, now: Instant, jitter: f64) -> bool {
        if now < self.next {
            return false;
        }
        let span = self.max_interval.saturating_sub(self.min_interval);
        let mut interval = self.min_interval + span.mul_f64(jitter.clamp(0.0, 1.0));
        if self.initial_left > 0 {
            self.initial_left -= 1;
            interval = interval.min(MAX_INITIAL_RTR_ADVERT_INTERVAL);
        }
        self.last_sent = Some(now);
        self.next = now + interval;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_bytes() {
        let ra = RaConfig {
            router_lifetime: 1800,
            rdnss: true,
            interval: 200,
            ..RaConfig::default()
        };
        let prefix: Prefix64 = "fc00:1:2:3::/64".parse().unwrap();
        let dns: Ipv6Addr = "fc00:1:2:3::1".parse().unwrap();
        let m = build_router_advertisement(&ra, prefix, &[dns], Some([2, 0, 0, 0, 0, 0xaa]));
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[134, 0, 0, 0, 64, 0xc0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[1, 1, 2, 0, 0, 0, 0, 0xaa],
            // Prefix Information: /64, L=1 A=0, valid 86400, preferred 14400, reserved.
            &[3, 4, 64, 0x80, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0],
            &[0xfc, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
            // RDNSS: length 3 (24 bytes), lifetime 600.
            &[25, 3, 0, 0, 0, 0, 0x02, 0x58],
            &dns.octets(),
        ].concat();
        assert_eq!(m, expected);
        // Every option's length is in units of 8 bytes (RFC 4861 §4.6).
        assert_eq!((m.len() - 16) % 8, 0);
    }

    #[test]
    fn flags_and_optional_parts() {
        let ra = RaConfig {
            managed: false,
            other: true,
            prefix_info: false,
            ..RaConfig::default()
        };
        let m = build_router_advertisement(&ra, Prefix64([0; 8]), &[], None);
        assert_eq!(m.len(), 16);
        assert_eq!(m[5], 0x40);
    }

    #[test]
    fn solicitation_detection() {
        assert!(is_router_solicitation(&[133, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_router_solicitation(&[133, 0, 0, 0]));
        assert!(!is_router_solicitation(&[134, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_router_solicitation(&[133, 1, 0, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn schedule_initial_periodic_and_solicited() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = RaSchedule::new(t0, s(600));
        assert_eq!(r.poll_timeout(), t0, "the first RA goes out at once");
        assert!(!r.handle_timeout(t0 - Duration::from_millis(1), 0.0));
        // Initial RAs: capped at 16 s apart.
        let mut now = t0;
        for _ in 0..MAX_INITIAL_RTR_ADVERTISEMENTS {
            assert!(r.handle_timeout(now, 1.0));
            assert_eq!(r.poll_timeout(), now + s(16));
            now = r.poll_timeout();
        }
        // Then between Min (200 s) and Max (600 s).
        assert!(r.handle_timeout(now, 0.0));
        assert_eq!(r.poll_timeout(), now + s(200));
        assert!(r.handle_timeout(r.poll_timeout(), 1.0));
        let last = now + s(200);
        assert_eq!(r.poll_timeout(), last + s(600));
        // A solicitation 1 s after an RA waits for MIN_DELAY_BETWEEN_RAS.
        r.on_solicit(last + s(1), 0.0);
        assert_eq!(r.poll_timeout(), last + s(3));
        // Much later: within MAX_RA_DELAY_TIME.
        assert!(r.handle_timeout(last + s(3), 0.5));
        r.on_solicit(last + s(100), 0.5);
        assert_eq!(r.poll_timeout(), last + s(100) + Duration::from_millis(250));
    }
}
