//! The pshim6 data plane: packet buffers with headroom, burst-oriented I/O backends, the
//! per-packet fast path, pinned workers and the slow-path core that owns the protocol engines.

pub mod backend;
pub mod bench;
pub mod buf;
pub mod config;
pub mod fastpath;
pub mod io;
pub mod neighbor;
pub mod punt;
pub mod replay;
pub mod slowpath;
pub mod worker;
