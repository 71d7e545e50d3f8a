//! Any bytes as an options region: the iterator must stop cleanly, and every option that
//! parses must re-emit and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{ShimOption, ShimOptionIter, ShimOptionView};

fuzz_target!(|data: &[u8]| {
    let mut consumed = 0usize;
    for item in ShimOptionIter::new(data) {
        let Ok(view) = item else { break };
        consumed += view.total_len();
        let _ = (view.kind(), view.critical(), view.length(), view.data());
        if let Ok(opt) = ShimOption::parse(&view) {
            let mut out = vec![0u8; opt.buffer_len()];
            if opt.emit(&mut out).is_ok() {
                let back = ShimOption::parse(&ShimOptionView::new_unchecked(&out[..]));
                assert_eq!(back.as_ref(), Ok(&opt));
            }
        }
    }
    assert!(consumed <= data.len());
});
