//! Helpers shared by pshim6's end-to-end tests: running real tools and reading their output.
//!
//! Every helper fails loudly when its tool is missing: a test that cannot run must not pass.

pub mod cmd;
pub mod dhcpcd;
pub mod tshark;
