//! Declares the `loom` cfg, under which the seqlock is model-checked.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
