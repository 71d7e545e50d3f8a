//! Simulated-time tests of the whole machine: one per state-table row (`transitions`),
//! keepalive timing, failover scenarios on a fake network, and property tests.

mod failover;
mod keepalive;
mod prop;
mod transitions;
mod util;
mod withdraw;
