//! Engine tests on a virtual clock (see `util.rs` for the `Pair` harness).

pub(crate) mod keys;
mod util;

mod establish;
mod recovery;
mod update;
mod negative;
mod host_peer;
mod lifetime;
mod reap_glue;
