//! The fast path's per-packet function on arbitrary frames received inside and outside, in
//! bursts (`[op, len, bytes]` records; op selects the port). No panic; a forwarded frame keeps
//! at least an Ethernet + IPv6 header; counters add up to the frames processed.
#![no_main]

use dataplane::fastpath::Verdict;
use dataplane::io::PortId;
use libfuzzer_sys::fuzz_target;
use pshim6_fuzz::fastpath::Site;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static SITE: std::cell::RefCell<Site> = std::cell::RefCell::new(Site::new());
    }
    SITE.with(|s| {
        let mut site = s.borrow_mut();
        let before = site.fp.counters().packets;
        let mut by_port: [Vec<&[u8]>; 4] = Default::default();
        for (op, body) in pshim6_fuzz::ops::records(data) {
            by_port[usize::from(op % 4)].push(body);
        }
        let mut n = 0;
        for (port, frames) in by_port.iter().enumerate() {
            if frames.is_empty() {
                continue;
            }
            // Port 3 is no port of the site.
            for (v, out) in site.run(PortId(port as u16), frames) {
                if let Verdict::Forward(_) = v {
                    assert!(out.len() >= 54, "{v:?} {out:?}");
                }
            }
            n += frames.len() as u64;
        }
        assert_eq!(site.fp.counters().packets - before, n);
    });
});
