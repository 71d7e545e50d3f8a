//! Engine tests on a virtual clock (see `util.rs` for the `Pair` harness).

pub(crate) mod keys;
mod util;

mod establish;
mod flood;
mod host_peer;
mod lifetime;
mod negative;
mod reap_glue;
mod recovery;
mod routing;
mod security;
mod soak;
mod te;
mod update;
