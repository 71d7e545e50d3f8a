//! The one error type of the crate.

use wire::{ContextTag, Locator, Ulid};

use crate::site::ProviderId;

/// Why an engine call was refused. Every variant names something the caller can act on.
///
/// Packets received from the network never produce an error: they are counted in
/// [`EngineStats`](crate::EngineStats) and dropped.
#[derive(Debug, thiserror::Error)]
pub enum Shim6Error {
    /// A configuration value is out of range; the string names the field.
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(&'static str),
    /// The ULID is not one of the local hosts the engine acts for.
    #[error("{0} is not a local host of this engine")]
    UnknownLocalUlid(Ulid),
    /// `add_local_host`: the ULID is not under the site ULID /64.
    #[error("{0} is not under the site ULID prefix")]
    WrongUlidPrefix(Ulid),
    /// `add_local_host`: the CGA parameters carry another public key than the site key.
    #[error("the CGA parameters of {0} do not carry the site public key")]
    WrongKey(Ulid),
    /// A CGA operation failed (the ULID is not a CGA of the parameters, signing failed, ...).
    #[error("CGA: {0}")]
    Cga(#[from] cga::CgaError),
    /// `connect` was given no peer locator to send the I1 to.
    #[error("no peer locator to contact")]
    NoPeerLocators,
    /// No provider is up, so the local host has no locator to send from.
    #[error("no local locator is up")]
    NoLocalLocator,
    /// The tag allocator could not find a free context tag.
    #[error("no free context tag")]
    TagSpaceExhausted,
    /// No context has this local tag.
    #[error("no context with local tag {0}")]
    UnknownContext(ContextTag),
    /// The context exists but is not ESTABLISHED (no locator pair to steer yet).
    #[error("context {0} is not established")]
    NotEstablished(ContextTag),
    /// The locator is not one of the context's usable (local up / verified peer) locators.
    #[error("{0} is not a usable locator of the context")]
    UnusableLocator(Locator),
    /// A provider with this id already exists.
    #[error("provider {0:?} already exists")]
    DuplicateProvider(ProviderId),
    /// REAP refused the request.
    #[error("REAP: {0}")]
    Reap(#[from] reap::ReapError),
}
