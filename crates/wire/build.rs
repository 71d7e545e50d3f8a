//! Declares `cfg(fuzzing)` (set by cargo-fuzz) so the checksum bypass under fuzzing does not
//! trip the `unexpected_cfgs` lint.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
}
