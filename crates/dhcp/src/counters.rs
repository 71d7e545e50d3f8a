//! What the server did, for the operator view and the tests.

/// Message and binding counters; they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to [`crate::DhcpServer::handle`].
    pub received: u64,
    /// Received, per message type 1..=13 (index = type; 0 counts unknown types).
    pub by_type: [u64; 14],
    /// Failed the structural check or the decoder.
    pub malformed: u64,
    /// Valid but discarded by an RFC 8415 §16 rule (missing or foreign Server ID, wrong type,
    /// nothing to say).
    pub discarded: u64,
    /// Dropped by the per-client rate limit.
    pub rate_limited: u64,
    /// Not answered because the binding store failed to persist the change.
    pub store_errors: u64,
    /// Advertise messages produced.
    pub advertise: u64,
    /// Reply messages produced.
    pub reply: u64,
    /// IAs answered with NoAddrsAvail (binding cap reached).
    pub no_addrs_avail: u64,
    /// Dynamic bindings created.
    pub bindings_created: u64,
    /// Expired bindings reclaimed to make room under the cap.
    pub bindings_evicted: u64,
    /// Bindings released by their client.
    pub released: u64,
    /// Addresses declined by clients.
    pub declined: u64,
    /// Writes refused because another proxy sharing the store changed the binding first; the
    /// server adopted that binding.
    pub store_conflicts: u64,
    /// Bindings applied from the shared store (written by another proxy).
    pub remote_updates: u64,
}

impl Counters {
    pub(crate) fn count_type(&mut self, msg_type: u8) {
        let i = if usize::from(msg_type) < self.by_type.len() {
            usize::from(msg_type)
        } else {
            0
        };
        self.by_type[i] += 1;
    }
}
