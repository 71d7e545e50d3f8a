//! A [`BindingStore`] in memory, for tests: same semantics as the journal, nothing durable.

use std::collections::BTreeMap;

use super::{BindingStore, StoredState};
use crate::{Binding, ClientKey, DhcpError};

/// In-memory store. `fail_writes` makes every write fail, to test that nothing is
/// acknowledged without a durable write.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    server_duid: Option<Vec<u8>>,
    bindings: BTreeMap<ClientKey, Binding>,
    /// Writes performed so far (successful ones).
    pub writes: u64,
    /// When set, every write returns [`DhcpError::StoreUnavailable`].
    pub fail_writes: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored binding of `client`, if any.
    pub fn get(&self, client: &ClientKey) -> Option<&Binding> {
        self.bindings.get(client)
    }

    /// Number of stored bindings.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether no binding is stored.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    fn check(&mut self) -> Result<(), DhcpError> {
        if self.fail_writes {
            return Err(DhcpError::StoreUnavailable);
        }
        self.writes += 1;
        Ok(())
    }
}

impl BindingStore for MemoryStore {
    fn load(&mut self) -> Result<StoredState, DhcpError> {
        Ok(StoredState {
            server_duid: self.server_duid.clone(),
            bindings: self.bindings.values().cloned().collect(),
        })
    }

    fn set_server_duid(&mut self, duid: &[u8]) -> Result<(), DhcpError> {
        self.check()?;
        self.server_duid = Some(duid.to_vec());
        Ok(())
    }

    fn put(&mut self, binding: &Binding) -> Result<(), DhcpError> {
        self.check()?;
        self.bindings
            .insert(binding.client.clone(), binding.clone());
        Ok(())
    }

    fn remove(&mut self, client: &ClientKey) -> Result<(), DhcpError> {
        self.check()?;
        self.bindings.remove(client);
        Ok(())
    }
}
