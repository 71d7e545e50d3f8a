//! The data plane's context table: one writer (the slow path), lock-free readers (the
//! workers), fixed memory.
//!
//! Workers look contexts up on every packet ([RFC 5533 §12.4]): egress by the (local ULID,
//! peer ULID) pair of a packet from an inside host, ingress by the Receiver Context Tag of a
//! payload extension header ([RFC 5533 §12.2]). They must never block, allocate or take a
//! lock, and must never see a half-written context or one the slow path has removed. So:
//!
//! - **Slots**: each context lives in a 96-byte slot guarded by a sequence number (a seqlock
//!   built from atomics and fences only, no `UnsafeCell`). A lookup copies the slot and
//!   keeps the copy only if no write overlapped it: every [`Entry`] is a consistent snapshot.
//! - **Two hashed indexes** map a key to a slot: open addressing over 64-byte buckets of
//!   seven entries plus an overflow count, triangular probing bounded by 32 buckets. The
//!   keys are hashed with a seeded mix, never used as indexes: tags keep at least 30 random
//!   bits but may carry structure ([RFC 5533 §7.1]), and peers choose ULIDs.
//! - **One writer**: [`TableWriter`] (not `Clone`) publishes a context by writing its slot,
//!   then its index entries; it removes one by clearing the index entries, then the slot.
//!   A reader that finds the slot cleared or reused (the key no longer matches) moves on,
//!   so a lookup never returns a context whose removal completed before it started.
//! - **Counters** ([`WorkerCounters`]): one shard per worker, written without contention;
//!   the slow path reads the sums ([`Activity`]) for REAP and garbage collection.
//! - **Batches** ([`TableReader::by_tag_batch`], [`TableReader::by_ulids_batch`]) prefetch
//!   the buckets and slots of a whole burst before resolving it, once the table outgrows
//!   the cache (about 1 MiB); smaller tables skip the prefetch passes.
//!
//! Memory is allocated once, in [`TableWriter::new`]; [`Footprint`] and
//! [`bytes_per_context`] report it (about 121 bytes per context for slot + indexes, plus 40
//! per worker for counters).
//!
//! [RFC 5533 §12.4]: https://www.rfc-editor.org/rfc/rfc5533#section-12.4
//! [RFC 5533 §12.2]: https://www.rfc-editor.org/rfc/rfc5533#section-12.2
//! [RFC 5533 §7.1]: https://www.rfc-editor.org/rfc/rfc5533#section-7.1

#![deny(unsafe_op_in_unsafe_fn)]
// Under `--cfg loom` only the seqlock is built, with loom's atomics, for its model check.
#![cfg_attr(loom, allow(dead_code, unused_imports, unreachable_pub))]

mod entry;
mod error;
mod mem;
mod slot;

#[cfg(not(loom))]
mod batch;
#[cfg(not(loom))]
mod counters;
#[cfg(not(loom))]
mod footprint;
#[cfg(not(loom))]
mod hash;
#[cfg(not(loom))]
mod index;
#[cfg(not(loom))]
mod raw;
#[cfg(not(loom))]
mod table;

#[cfg(not(loom))]
pub use batch::BATCH;
#[cfg(not(loom))]
pub use counters::{Activity, WorkerCounters};
pub use entry::{flags, Entry, NewEntry, SlotId};
pub use error::TableError;
#[cfg(not(loom))]
pub use footprint::{bytes_per_context, Footprint};
pub use mem::prefetch_write;
#[cfg(not(loom))]
pub use raw::{PairKey, RawEntry};
#[cfg(not(loom))]
pub use table::{Lookup, ProbeStats, TableConfig, TableReader, TableWriter, MAX_WORKERS};
