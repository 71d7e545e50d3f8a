//! One structured `tracing` event per context change the slow path applies (issue #8
//! "Logs"): established, recovered, moved (traffic engineering), failed over (REAP), removed,
//! failed. Emitted from the engine's events, never per packet; target `pshim6::context`, so
//! an env filter such as `pshim6::context=info` selects exactly these.

use shim6::ContextEvent;

/// The `tracing` target of context events.
pub const TARGET: &str = "pshim6::context";

/// Why a context's pair changed, as far as the slow path knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairCause {
    /// Traffic engineering asked for it (`prefer_pair`) and REAP confirmed it.
    Policy,
    /// REAP found the pair broken and moved to another one
    /// ([RFC 5534 §4](https://www.rfc-editor.org/rfc/rfc5534#section-4)).
    Failover,
}

/// Logs `ev`; `provider` is the provider of the (new) local locator, `from` the provider the
/// context used before a pair change.
pub(crate) fn log_event(
    ev: &ContextEvent,
    provider: Option<u16>,
    from: Option<u16>,
    cause: PairCause,
) {
    match *ev {
        ContextEvent::Established {
            local_tag,
            peer_tag,
            local_ulid,
            peer_ulid,
            pair,
            recovered,
        } => {
            let event = if recovered {
                "recovered"
            } else {
                "established"
            };
            tracing::info!(
                target: TARGET,
                event,
                tag = %local_tag,
                peer_tag = %peer_tag,
                local_ulid = %local_ulid.0,
                peer_ulid = %peer_ulid.0,
                local_locator = %pair.local.0,
                peer_locator = %pair.peer.0,
                provider,
                "context {event}"
            );
        }
        ContextEvent::PairChanged { local_tag, pair } => {
            let event = match cause {
                PairCause::Policy => "moved",
                PairCause::Failover => "failed_over",
            };
            tracing::info!(
                target: TARGET,
                event,
                tag = %local_tag,
                local_locator = %pair.local.0,
                peer_locator = %pair.peer.0,
                from_provider = from,
                provider,
                "context {event}"
            );
        }
        ContextEvent::PeerTagChanged {
            local_tag,
            peer_tag,
        } => {
            tracing::info!(
                target: TARGET,
                event = "peer_tag_changed",
                tag = %local_tag,
                peer_tag = %peer_tag,
                "context peer tag changed"
            );
        }
        ContextEvent::Removed { local_tag, reason } => {
            tracing::info!(
                target: TARGET,
                event = "removed",
                tag = %local_tag,
                reason = ?reason,
                "context removed"
            );
        }
        ContextEvent::Failed {
            local_ulid,
            peer_ulid,
            reason,
        } => {
            tracing::warn!(
                target: TARGET,
                event = "failed",
                local_ulid = %local_ulid.0,
                peer_ulid = %peer_ulid.0,
                reason = ?reason,
                "context establishment failed"
            );
        }
    }
}
