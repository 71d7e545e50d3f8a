//! Neighbour Discovery for the generator's two links: the proxy resolves its exit router on
//! the provider link and every host on the inside link (RFC 4861 §7.2); the generator plays
//! all of them, answering any Neighbor Solicitation with its own MAC.

use std::net::Ipv6Addr;

use crate::mix::{finish, pseudo_sum};

/// Length of the Neighbor Advertisement frame [`answer`] writes.
pub(crate) const NA_LEN: usize = 14 + 40 + 24 + 8;

/// If `frame` is a Neighbor Solicitation (no extension headers), writes the Neighbor
/// Advertisement answering it with `mac` into `out` and returns true.
pub(crate) fn answer(frame: &[u8], mac: [u8; 6], out: &mut [u8; NA_LEN]) -> bool {
    // Ethernet, IPv6 with next header ICMPv6, type 135, at least the target.
    if frame.len() < 14 + 40 + 24 || frame[12..14] != [0x86, 0xdd] || frame[20] != 58 {
        return false;
    }
    if frame[54] != 135 {
        return false;
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&frame[22..38]);
    let mut target = [0u8; 16];
    target.copy_from_slice(&frame[62..78]);
    let src = Ipv6Addr::from(src);
    // RFC 4861 §7.2.4: to the solicitor, or to all-nodes for DAD (unspecified source).
    let (dst, solicited) = if src.is_unspecified() {
        (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), false)
    } else {
        (src, true)
    };
    let dst_mac = if solicited {
        [frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]
    } else {
        [0x33, 0x33, 0, 0, 0, 1]
    };
    out.fill(0);
    out[0..6].copy_from_slice(&dst_mac);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&[0x86, 0xdd]);
    out[14] = 0x60;
    out[18..20].copy_from_slice(&32u16.to_be_bytes());
    out[20] = 58;
    out[21] = 255;
    out[22..38].copy_from_slice(&target);
    out[38..54].copy_from_slice(&dst.octets());
    let m = &mut out[54..];
    m[0] = 136;
    // Router: the exit router is one; Solicited; Override.
    m[4] = 0x80 | if solicited { 0x40 } else { 0 } | 0x20;
    m[8..24].copy_from_slice(&target);
    m[24] = 2; // Target Link-Layer Address
    m[25] = 1;
    m[26..32].copy_from_slice(&mac);
    let c = finish(pseudo_sum(Ipv6Addr::from(target), dst, 32, 58), &out[54..]);
    out[56..58].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 24];
        f[0..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 0x0a]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 1, 1]);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[18..20].copy_from_slice(&24u16.to_be_bytes());
        f[20] = 58;
        f[21] = 255;
        f[22..38].copy_from_slice(&src.octets());
        f[54] = 135;
        f[62..78].copy_from_slice(&target.octets());
        f
    }

    #[test]
    fn a_solicitation_gets_a_valid_advertisement() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let target: Ipv6Addr = "fe80::a".parse().unwrap();
        let mac = [2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
        let mut out = [0u8; NA_LEN];
        assert!(answer(&ns(src, target), mac, &mut out));
        assert_eq!(&out[0..6], &[2, 0, 0, 0, 1, 1], "to the solicitor's MAC");
        assert_eq!(&out[22..38], &target.octets());
        assert_eq!(&out[38..54], &src.octets());
        assert_eq!((out[54], out[55], out[58] & 0x60), (136, 0, 0x60));
        assert_eq!(&out[86 - 6..], &mac, "target link-layer address option");
        // The checksum verifies: the sum over pseudo-header and message folds to 0xffff.
        assert_eq!(finish(pseudo_sum(target, src, 32, 58), &out[54..]), 0);
        // Not a solicitation: no answer.
        let mut other = ns(src, target);
        other[54] = 128;
        assert!(!answer(&other, mac, &mut out));
    }
}
