//! The one error type of the crate.

/// What the context table refuses, each a case the slow path can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TableError {
    /// Every slot holds a context: garbage-collect quiescent contexts ([RFC 5533 §9]) or
    /// refuse to create new state.
    ///
    /// [RFC 5533 §9]: https://www.rfc-editor.org/rfc/rfc5533#section-9
    #[error("context table is full")]
    Full,
    /// The key's neighbourhood in one hashed index is saturated up to the probe bound. With a
    /// keyed hash this only happens when the table is close to full; treat it like [`Full`].
    ///
    /// [`Full`]: TableError::Full
    #[error("hashed index probe limit reached")]
    ProbeLimit,
    /// Another context already uses this local context tag: pick another tag
    /// ([RFC 5533 §7.1]: tags are unique per host).
    ///
    /// [RFC 5533 §7.1]: https://www.rfc-editor.org/rfc/rfc5533#section-7.1
    #[error("context tag already in the table")]
    DuplicateTag,
    /// Another context already serves this (local ULID, peer ULID) pair. The sending side looks
    /// contexts up by the ULID pair with FII = 0 ([RFC 5533 §12.4]), so the fast path maps a
    /// pair to one context: remove the old one first.
    ///
    /// [RFC 5533 §12.4]: https://www.rfc-editor.org/rfc/rfc5533#section-12.4
    #[error("ULID pair already in the table")]
    DuplicateUlids,
    /// No context with this tag.
    #[error("no context with this tag")]
    NotFound,
    /// The configured capacity is zero or does not fit a 32-bit slot index.
    #[error("capacity must be between 1 and 2^32 - 1 contexts")]
    InvalidCapacity,
    /// The configured number of workers is above [`MAX_WORKERS`](crate::MAX_WORKERS).
    #[error("too many workers")]
    InvalidWorkers,
    /// The allocator could not provide the fixed table memory at construction.
    #[error("out of memory while allocating the context table")]
    OutOfMemory,
    /// No counter shard for this worker number.
    #[error("no counter shard for this worker")]
    NoSuchWorker,
    /// The worker's counter shard is already held by a live [`WorkerCounters`] handle.
    ///
    /// [`WorkerCounters`]: crate::WorkerCounters
    #[error("counter shard already claimed")]
    WorkerTaken,
}
