//! Locator List / Locator Preferences option contents and CGA Parameter Data Structures
//! (RFC 3972 §3, with the Multi-Prefix extension of RFC 5535): parse, re-emit, parse back to
//! the same value; CGA and HBA verification against an address taken from the input and a
//! signature check over the parsed locators never panic.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use wire::{LocatorList, LocatorPreferences};

fuzz_target!(|data: &[u8]| {
    let (addr, rest) = match data.split_first_chunk::<16>() {
        Some((a, r)) => (Ipv6Addr::from(*a), r),
        None => (Ipv6Addr::UNSPECIFIED, data),
    };
    if let Ok(l) = LocatorList::parse_contents(rest) {
        let mut out = vec![0xa5; l.contents_len()];
        if let Ok(n) = l.emit_contents(&mut out) {
            assert_eq!(LocatorList::parse_contents(&out[..n]).as_ref(), Ok(&l));
        }
        let _ = (
            l.locators(),
            l.cga_locators(),
            l.contains(wire::Locator(addr)),
        );
    }
    if let Ok(p) = LocatorPreferences::parse_contents(rest) {
        let mut out = vec![0xa5; p.contents_len()];
        if let Ok(n) = p.emit_contents(&mut out) {
            assert_eq!(
                LocatorPreferences::parse_contents(&out[..n]).as_ref(),
                Ok(&p)
            );
        }
    }
    if let Ok(view) = cga::CgaParamsView::new_checked(rest) {
        let _ = (
            view.modifier(),
            view.subnet_prefix(),
            view.collision_count(),
        );
        for _ in view.extension_tlvs().take(64) {}
        let _ = cga::verify_view(addr, &view);
    }
    let _ = cga::check_extensions(rest);
    if let Ok(params) = cga::CgaParameters::parse(rest) {
        let bytes = params.to_bytes();
        assert_eq!(
            cga::CgaParameters::parse(&bytes).ok().as_ref(),
            Some(&params)
        );
        let _ = params.multi_prefix();
        let _ = cga::verify(addr, &params);
        let _ = cga::hba::verify_member(addr, &params);
        if let Ok(key) = cga::CgaPublicKey::from_der(&params.public_key) {
            let _ = key.verify_shim6(0, &[addr], rest);
        }
    }
});
