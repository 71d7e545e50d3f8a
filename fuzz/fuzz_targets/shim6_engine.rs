//! The SHIM6 engine fed arbitrary control messages and unknown-tag payload on an ESTABLISHED
//! context (input: `[op, len, bytes]` records, see `pshim6_fuzz::ops`). No panic; everything
//! the engine sends parses; the context table stays within `max_contexts`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pshim6_fuzz::engine::{drain_checked, established, tick};
use pshim6_fuzz::ops::records;
use shim6::EngineConfig;
use wire::ContextTag;

fuzz_target!(|data: &[u8]| {
    let config = EngineConfig {
        max_contexts: 4,
        ..EngineConfig::default()
    };
    let mut e = established(config);
    for (op, body) in records(data) {
        // Which locators the message travels between: A's to B's, or crossed / foreign.
        let src = e.a.locators[usize::from(op >> 4) & 1].0;
        let dst = e.b.locators[usize::from(op >> 5) & 1].0;
        match op & 0x07 {
            0..=2 => e.b.engine.handle_control(e.now, src, dst, body),
            3 => e.a.engine.handle_control(e.now, dst, src, body),
            4 => {
                let mut t = [0u8; 8];
                let n = body.len().min(8);
                t[..n].copy_from_slice(&body[..n]);
                let tag = ContextTag::from_wire(u64::from_be_bytes(t));
                e.b.engine.handle_unknown_tag(e.now, src, dst, tag);
            }
            5 => {
                let tag = if op & 0x40 != 0 { e.tag_b } else { e.tag_a };
                e.b.engine.handle_unknown_tag(e.now, src, dst, tag);
            }
            6 => tick(&mut e, Duration::from_millis(u64::from(op) * 250)),
            _ => {
                // Let the two engines talk (keepalives, probes, updates, recoveries).
                let _ = pshim6_fuzz::engine::exchange(&mut e.a, &mut e.b, e.now);
            }
        }
        drain_checked(&mut e.a.engine);
        drain_checked(&mut e.b.engine);
        assert!(e.b.engine.context_count() <= 4);
    }
});
