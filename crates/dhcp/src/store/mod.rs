//! Where bindings live across restarts: the [`BindingStore`] interface, an in-memory store for
//! tests and the embedded journal file ([`JournalStore`]). A store shared by several proxies
//! (crate `etcd-store`) implements the same trait and overrides the conditional writes
//! ([`BindingStore::put_checked`], [`BindingStore::claim_server_duid`]).

mod journal;
mod memory;

pub use journal::{JournalStore, LoadReport, JOURNAL_MAGIC, MAX_RECORD_LEN};
pub use memory::MemoryStore;

use crate::{Binding, ClientKey, DhcpError};

/// What a store holds: the server's DUID and the dynamic bindings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// The Server Identifier, once one was made
    /// ([RFC 8415 §11](https://www.rfc-editor.org/rfc/rfc8415#section-11): keep it forever).
    pub server_duid: Option<Vec<u8>>,
    /// Every live binding, in key order.
    pub bindings: Vec<Binding>,
}

/// What a conditional write found ([`BindingStore::put_checked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The binding is durable.
    Stored,
    /// Another writer (another proxy of the site) changed the client's binding since this
    /// server last saw it; nothing was written. The server adopts this binding (the current
    /// one) and decides again, so every proxy ends with the same CMULA.
    Superseded(Box<Binding>),
}

/// Durable binding storage. Every write is durable when it returns `Ok`: the server sends a
/// Reply or Advertise only after that, so an acknowledged lease survives a crash (`kill -9`)
/// at any moment.
pub trait BindingStore {
    /// Everything stored, read once when the server starts.
    fn load(&mut self) -> Result<StoredState, DhcpError>;
    /// Records the server DUID.
    fn set_server_duid(&mut self, duid: &[u8]) -> Result<(), DhcpError>;
    /// Inserts or replaces the binding of `binding.client`.
    fn put(&mut self, binding: &Binding) -> Result<(), DhcpError>;
    /// Deletes a binding (released); deleting an absent one is not an error.
    fn remove(&mut self, client: &ClientKey) -> Result<(), DhcpError>;

    /// [`Self::put`] unless another writer changed the binding since this server saw it. A
    /// store with a single writer (the journal) always stores.
    fn put_checked(&mut self, binding: &Binding) -> Result<PutOutcome, DhcpError> {
        self.put(binding).map(|()| PutOutcome::Stored)
    }

    /// Records `duid` as the server DUID unless one is already stored, and returns the one in
    /// force: proxies sharing a store share one Server Identifier, so a client may Renew with
    /// any of them ([RFC 8415 §18.3.4](https://www.rfc-editor.org/rfc/rfc8415#section-18.3.4)
    /// checks the Server Identifier).
    fn claim_server_duid(&mut self, duid: &[u8]) -> Result<Vec<u8>, DhcpError> {
        self.set_server_duid(duid).map(|()| duid.to_vec())
    }
}
