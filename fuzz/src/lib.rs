//! Fixtures shared by the fuzz targets and by `examples/seed_corpora.rs`, which writes the
//! seed corpora under `corpus/<target>/` from the same fixtures (so seeds carry the tags,
//! locators and validators the targets' engines really use).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

pub mod engine;
pub mod fastpath;
pub mod ops;
