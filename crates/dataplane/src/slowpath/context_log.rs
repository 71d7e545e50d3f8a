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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use shim6::{FailReason, RemoveReason};
    use wire::{ContextTag, Locator, LocatorPair, Ulid};

    use super::*;

    /// A writer into a shared buffer (what the subscriber prints).
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON lines `f` logs.
    fn json_lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_structured_event_per_context_change() {
        let tag = ContextTag::new(0x1234).unwrap();
        let pair = LocatorPair {
            local: Locator("2001:db8:b::10".parse().unwrap()),
            peer: Locator("2001:db8:c::20".parse().unwrap()),
        };
        let est = |recovered| ContextEvent::Established {
            local_tag: tag,
            peer_tag: ContextTag::new(9).unwrap(),
            local_ulid: Ulid("fc00:1::10".parse().unwrap()),
            peer_ulid: Ulid("fc00:2::20".parse().unwrap()),
            pair,
            recovered,
        };
        let moved = ContextEvent::PairChanged {
            local_tag: tag,
            pair,
        };
        let lines = json_lines(|| {
            log_event(&est(false), Some(2), None, PairCause::Failover);
            log_event(&est(true), Some(2), None, PairCause::Failover);
            log_event(&moved, Some(2), Some(1), PairCause::Policy);
            log_event(&moved, Some(1), Some(2), PairCause::Failover);
            log_event(
                &ContextEvent::Removed {
                    local_tag: tag,
                    reason: RemoveReason::Idle,
                },
                None,
                None,
                PairCause::Failover,
            );
            log_event(
                &ContextEvent::Failed {
                    local_ulid: Ulid("fc00:1::10".parse().unwrap()),
                    peer_ulid: Ulid("fc00:2::20".parse().unwrap()),
                    reason: FailReason::EFailed,
                },
                None,
                None,
                PairCause::Failover,
            );
        });
        let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
        assert_eq!(
            events,
            [
                "established",
                "recovered",
                "moved",
                "failed_over",
                "removed",
                "failed"
            ]
        );
        for l in &lines {
            assert_eq!(l["target"], TARGET);
        }
        assert_eq!(lines[0]["tag"], tag.to_string());
        assert_eq!(lines[0]["local_locator"], "2001:db8:b::10");
        assert_eq!(lines[0]["peer_ulid"], "fc00:2::20");
        assert_eq!(lines[0]["provider"], 2);
        assert_eq!(
            (
                lines[2]["from_provider"].as_u64(),
                lines[2]["provider"].as_u64()
            ),
            (Some(1), Some(2))
        );
        assert_eq!(lines[4]["reason"], "Idle");
        assert_eq!(lines[5]["level"], "WARN");
    }
}
