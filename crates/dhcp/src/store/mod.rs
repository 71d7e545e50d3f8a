//! Where bindings live across restarts: the [`BindingStore`] interface, an in-memory store for
//! tests and the embedded journal file ([`JournalStore`]). A distributed store (etcd) can come
//! later behind the same trait.

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
}
