//! One scenario's outcome: the JSON object `pshim6 lab --json` prints per scenario, the
//! acceptance checks that decide `ok`, and the readable summary.

use std::collections::BTreeSet;

use serde_json::{json, Value};

/// Everything measured in one scenario.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScenarioReport {
    /// `failover`, `local-down`, `natv6` or `drain`.
    pub(crate) scenario: String,
    /// Payload bytes the sender wrote / the receiver read.
    pub(crate) bytes_sent: u64,
    /// See `bytes_sent`.
    pub(crate) bytes_received: u64,
    /// Whether both ends hashed the same payload (SHA-256).
    pub(crate) sha256_match: bool,
    /// Longest gap between two reads of the receiver (ms).
    pub(crate) failover_gap_ms: u64,
    /// The largest gap the scenario accepts (ms).
    pub(crate) gap_limit_ms: u64,
    /// From the cut to the S1 proxy's `context-pair-changed` (ms), when there was a cut; for
    /// `drain`, from the drain request until no S1 context uses the provider.
    pub(crate) failover_detect_ms: Option<u64>,
    /// How long the cut command took (ms): failover times count from its end.
    pub(crate) cut_command_ms: u64,
    /// The REAP bound (Send Timeout + initial probes) of the proxies' timers (ms).
    pub(crate) reap_bound_ms: u64,
    /// Provider cut (or drained), and the one the context moved to.
    pub(crate) cut_provider: Option<String>,
    /// See `cut_provider`.
    pub(crate) new_provider: Option<String>,
    /// Any CMULA seen as source or destination on a provider link.
    pub(crate) ulid_seen_on_provider_links: bool,
    /// Packets the providers' ingress filters dropped during the scenario.
    pub(crate) ingress_filter_drops: u64,
    /// Context tags in Shim6 payload headers on the provider links.
    pub(crate) tags_on_links: BTreeSet<u64>,
    /// The tags of the proxies' contexts for the scenario's ULID pair (both ends' CT(local)).
    pub(crate) context_tags: BTreeSet<u64>,
    /// Payload-header frames: our parser, tshark's dissector.
    pub(crate) payload_frames: (u64, u64),
    /// Ping (NATv6): transmitted, received.
    pub(crate) ping: Option<(u32, u32)>,
    /// The name resolved and what it gave, when the scenario resolved one.
    pub(crate) resolved: Option<(String, Vec<String>)>,
    /// `drain`: contexts that were on the drained provider and left it.
    pub(crate) moved_contexts: Option<usize>,
    /// `drain`: S1 pair changes back onto the drained provider before the undrain.
    pub(crate) back_on_drained_provider: Option<usize>,
    /// `drain`: the provider of the new context made after the undrain.
    pub(crate) undrained_new_context_provider: Option<String>,
    /// `bgp-withdraw`: from the withdraw to the S1 proxy's `context-pair-changed` (ms).
    pub(crate) signal_move_ms: Option<u64>,
    /// `bgp-withdraw`: prefixes the S1 proxy saw the provider withdraw.
    pub(crate) bgp_withdrawals: Option<u64>,
    /// Problems found; `ok` is true when there are none.
    pub(crate) problems: Vec<String>,
    /// Takeover: from the SIGKILL to the first payload byte through the backup (the end of
    /// the stream's longest stall).
    pub(crate) recovery_ms: Option<u64>,
    /// Takeover: the bound `recovery_ms` must stay within.
    pub(crate) recovery_bound_ms: Option<u64>,
    /// Takeover: from the SIGKILL until the site router and both provider routers route to
    /// the backup.
    pub(crate) route_convergence_ms: Option<u64>,
    /// Takeover: from the SIGKILL until the dead proxy's BIRD dropped its routes.
    pub(crate) withdraw_ms: Option<u64>,
    /// Takeover: how the backup got its context (`r1bis` or `handshake`).
    pub(crate) takeover_by: Option<String>,
    /// When the stream's longest stall ended (Unix ms), from the receiver.
    pub(crate) gap_end_ms: Option<u64>,
}

impl ScenarioReport {
    /// Applies the acceptance checks common to every scenario (payload intact, no ULID on a
    /// provider link, no ingress-filter drop, gap within the limit, tags consistent).
    pub(crate) fn check(&mut self, shim6: bool) {
        if !self.sha256_match || self.bytes_sent != self.bytes_received || self.bytes_sent == 0 {
            self.problems.push(format!(
                "payload differs: sent {} bytes, received {}, hashes match: {}",
                self.bytes_sent, self.bytes_received, self.sha256_match
            ));
        }
        if self.ulid_seen_on_provider_links {
            self.problems
                .push("a CMULA appeared on a provider link".into());
        }
        if self.ingress_filter_drops != 0 {
            self.problems.push(format!(
                "{} packet(s) dropped by the providers' ingress filters",
                self.ingress_filter_drops
            ));
        }
        if self.failover_gap_ms > self.gap_limit_ms {
            self.problems.push(format!(
                "the stream stalled {} ms (limit {} ms)",
                self.failover_gap_ms, self.gap_limit_ms
            ));
        }
        if shim6 {
            if self.tags_on_links.is_empty() || self.context_tags.is_empty() {
                self.problems
                    .push("no Shim6 payload header or no context seen".into());
            } else if !self.tags_on_links.is_subset(&self.context_tags) {
                self.problems.push(format!(
                    "tags on the links {:?} are not the contexts' tags {:?}",
                    self.tags_on_links, self.context_tags
                ));
            }
        }
        if let (Some(r), Some(b)) = (self.recovery_ms, self.recovery_bound_ms) {
            if r > b {
                self.problems
                    .push(format!("recovery took {r} ms (bound {b} ms)"));
            }
        }
        if self.payload_frames.0 != self.payload_frames.1 {
            self.problems.push(format!(
                "payload-header frames: {} by our parser, {} by tshark",
                self.payload_frames.0, self.payload_frames.1
            ));
        }
    }

    /// Whether every check passed.
    pub(crate) fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The JSON object of `--json`.
    pub(crate) fn to_json(&self) -> Value {
        let hex = |s: &BTreeSet<u64>| s.iter().map(|t| format!("{t:#014x}")).collect::<Vec<_>>();
        json!({
            "scenario": self.scenario,
            "ok": self.ok(),
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "sha256_match": self.sha256_match,
            "failover_gap_ms": self.failover_gap_ms,
            "gap_limit_ms": self.gap_limit_ms,
            "failover_detect_ms": self.failover_detect_ms,
            "cut_command_ms": self.cut_command_ms,
            "reap_bound_ms": self.reap_bound_ms,
            "cut_provider": self.cut_provider,
            "new_provider": self.new_provider,
            "ulid_seen_on_provider_links": self.ulid_seen_on_provider_links,
            "ingress_filter_drops": self.ingress_filter_drops,
            "shim6_tags_on_provider_links": hex(&self.tags_on_links),
            "context_tags": hex(&self.context_tags),
            "payload_frames": self.payload_frames.0,
            "payload_frames_tshark": self.payload_frames.1,
            "ping": self.ping.map(|(t, r)| json!({"transmitted": t, "received": r})),
            "resolved": self.resolved.as_ref().map(|(n, a)| json!({"name": n, "addresses": a})),
            "moved_contexts": self.moved_contexts,
            "undrained_new_context_provider": self.undrained_new_context_provider,
            "back_on_drained_provider": self.back_on_drained_provider,
            "signal_move_ms": self.signal_move_ms,
            "bgp_withdrawals": self.bgp_withdrawals,
            "recovery_ms": self.recovery_ms,
            "recovery_bound_ms": self.recovery_bound_ms,
            "route_convergence_ms": self.route_convergence_ms,
            "withdraw_ms": self.withdraw_ms,
            "takeover_by": self.takeover_by,
            "problems": self.problems,
        })
    }

    /// A few readable lines.
    pub(crate) fn summary(&self) -> String {
        let mut s =
            format!(
            "{}: {} — {} bytes sent, {} received, SHA-256 {}, longest stall {} ms (limit {} ms)",
            self.scenario,
            if self.ok() { "OK" } else { "FAILED" },
            self.bytes_sent,
            self.bytes_received,
            if self.sha256_match { "match" } else { "MISMATCH" },
            self.failover_gap_ms,
            self.gap_limit_ms
        );
        if let Some(d) = self.failover_detect_ms {
            s.push_str(&format!(
                "\n  failover detected {d} ms after the cut (REAP bound {} ms)",
                self.reap_bound_ms
            ));
        }
        s.push_str(&format!(
            "\n  provider links: ULID seen {}, ingress drops {}, payload tags {:?}",
            self.ulid_seen_on_provider_links,
            self.ingress_filter_drops,
            self.tags_on_links
                .iter()
                .map(|t| format!("{t:#014x}"))
                .collect::<Vec<_>>()
        ));
        if let Some(rec) = self.recovery_ms {
            s.push_str(&format!(
                "\n  takeover: routes moved after {:?} ms, payload through the backup after {rec} ms (bound {:?} ms), by {:?}",
                self.route_convergence_ms, self.recovery_bound_ms, self.takeover_by
            ));
        }
        for p in &self.problems {
            s.push_str(&format!("\n  problem: {p}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ScenarioReport {
        ScenarioReport {
            scenario: "failover".into(),
            bytes_sent: 10,
            bytes_received: 10,
            sha256_match: true,
            failover_gap_ms: 100,
            gap_limit_ms: 1000,
            tags_on_links: [1, 2].into(),
            context_tags: [1, 2].into(),
            payload_frames: (5, 5),
            ..ScenarioReport::default()
        }
    }

    #[test]
    fn checks_decide_ok() {
        let mut r = good();
        r.check(true);
        assert!(r.ok(), "{:?}", r.problems);
        let v = r.to_json();
        for k in [
            "scenario",
            "ok",
            "bytes_sent",
            "bytes_received",
            "sha256_match",
            "failover_gap_ms",
            "ulid_seen_on_provider_links",
            "ingress_filter_drops",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        for broken in [
            ScenarioReport {
                sha256_match: false,
                ..good()
            },
            ScenarioReport {
                ulid_seen_on_provider_links: true,
                ..good()
            },
            ScenarioReport {
                ingress_filter_drops: 1,
                ..good()
            },
            ScenarioReport {
                failover_gap_ms: 1001,
                ..good()
            },
            ScenarioReport {
                tags_on_links: [3].into(),
                ..good()
            },
            ScenarioReport {
                payload_frames: (5, 4),
                ..good()
            },
        ] {
            let mut b = broken;
            b.check(true);
            assert!(!b.ok());
            assert_eq!(b.to_json()["ok"], false);
        }
    }
}
