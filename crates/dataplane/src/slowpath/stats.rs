//! Counters of the slow path, printed by `pshim6 run` on exit and read by tests.

use super::nd::NdStats;
use super::pending::PendingStats;
use crate::punt::PuntReason;

/// What the slow path did, by kind. Monotonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlowPathStats {
    /// Punted frames handled, per [`PuntReason`] kind.
    pub punts: [u64; PuntReason::COUNT],
    /// Punted frames that did not parse as Ethernet/IPv6 (or lacked what their reason needs).
    pub malformed: u64,
    /// NoContext: a handshake was started for the pair.
    pub connects: u64,
    /// NoContext: the pair's context exists already (handshake under way, or the entry raced
    /// the punt), the packet was held or sent again.
    pub context_races: u64,
    /// NoContext: the peer ULID is in E-FAILED / NO-SUPPORT hold-down, or the engine is full.
    pub held_down: u64,
    /// NoContext: no locator is known for the peer ULID (cache and resolver both empty).
    pub no_locators: u64,
    /// NoContext: the resolver is looking the peer up; the packet waits.
    pub resolving: u64,
    /// NoContext: the source is not one of the configured hosts, or the engine refused.
    pub connect_errors: u64,
    /// Shim6 control messages handed to the engine.
    pub control_in: u64,
    /// Payload with an unknown tag handed to the engine (R1bis).
    pub unknown_tag: u64,
    /// Payload whose locators were not the context's current pair, delivered by the slow
    /// path because they are in the context's verified locator sets.
    pub mismatch_delivered: u64,
    /// Payload whose locators are not the context's at all (handed to the engine: R1bis).
    pub mismatch_rejected: u64,
    /// Control messages the engine sent.
    pub tx_control: u64,
    /// Control messages with a source locator under no provider (not sent).
    pub tx_no_route: u64,
    /// Echo replies sent.
    pub echo_replies: u64,
    /// Packet Too Big sent.
    pub too_big_sent: u64,
    /// Time Exceeded sent.
    pub time_exceeded_sent: u64,
    /// Port unreachable sent (UDP for one of our addresses that no service takes).
    pub port_unreachable_sent: u64,
    /// ICMPv6 errors suppressed (rate limit or RFC 4443 §2.4 (e)).
    pub icmp_suppressed: u64,
    /// ICMPv6 Parameter Problems handed to the engine (NO-SUPPORT detection).
    pub param_problems: u64,
    /// Punted frames for us that nothing handles (host-to-host, MLD, UDP without services...).
    pub unhandled: u64,
    /// UDP datagrams a local service took.
    pub udp_in: u64,
    /// UDP datagrams for our addresses that no service took (port not served, or from the
    /// wrong side).
    pub udp_unhandled: u64,
    /// UDP datagrams for our addresses dropped for a zero or wrong checksum.
    pub udp_bad_checksum: u64,
    /// UDP datagrams the services sent.
    pub udp_out: u64,
    /// Service datagrams not sent: no provider up with an address, or too big.
    pub udp_no_route: u64,
    /// Host bindings from the services the engine now acts for.
    pub services_hosts: u64,
    /// Host bindings from the services the engine refused.
    pub services_hosts_refused: u64,
    /// Hosts the services released (the engine no longer acts for them).
    pub services_hosts_released: u64,
    /// Peer locator sets the services learnt (DNS).
    pub services_peers: u64,
    /// Learnt peer locator sets dropped at the end of their TTL.
    pub peers_expired: u64,
    /// Learnt peer locator sets evicted from the full cache.
    pub peers_evicted: u64,
    /// Learnt peer locator sets refused (cache full of configured peers).
    pub peers_refused: u64,
    /// Context table writes: inserts and in-place re-establishments.
    pub table_established: u64,
    /// Context table writes: pair / peer tag updates.
    pub table_updates: u64,
    /// Context table writes: removals.
    pub table_removes: u64,
    /// Contexts the table refused (full) or that had no provider: removed from the engine.
    pub table_refused: u64,
    /// Activity reports given to the engine.
    pub activity_reports: u64,
    /// Provider link state changes applied.
    pub link_changes: u64,
    /// Frames handed to the workers.
    pub injected: u64,
    /// Frames the inject queue refused.
    pub inject_dropped: u64,
    /// Frames the slow path's own fast path dropped or could not place.
    pub reprocess_dropped: u64,
    /// Pending queue counters.
    pub pending: PendingStats,
    /// Neighbor Discovery counters.
    pub nd: NdStats,
    /// Route changes received from the BGP signal's route monitor.
    pub route_changes: u64,
    /// (provider, peer locator) reachability marks the route changes set or cleared.
    pub reachability_changes: u64,
}

impl SlowPathStats {
    /// Every counter with its name, in a stable order (for printing).
    pub fn named(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = PuntReason::NAMES
            .iter()
            .zip(self.punts)
            .map(|(n, c)| (format!("punt.{n}"), c))
            .collect();
        let fixed = [
            ("malformed", self.malformed),
            ("no_context.connects", self.connects),
            ("no_context.races", self.context_races),
            ("no_context.held_down", self.held_down),
            ("no_context.no_locators", self.no_locators),
            ("no_context.resolving", self.resolving),
            ("no_context.errors", self.connect_errors),
            ("control_in", self.control_in),
            ("unknown_tag", self.unknown_tag),
            ("mismatch.delivered", self.mismatch_delivered),
            ("mismatch.rejected", self.mismatch_rejected),
            ("tx_control", self.tx_control),
            ("tx_no_route", self.tx_no_route),
            ("icmp.echo_replies", self.echo_replies),
            ("icmp.too_big", self.too_big_sent),
            ("icmp.time_exceeded", self.time_exceeded_sent),
            ("icmp.port_unreachable", self.port_unreachable_sent),
            ("icmp.suppressed", self.icmp_suppressed),
            ("icmp.param_problems", self.param_problems),
            ("unhandled", self.unhandled),
            ("udp.in", self.udp_in),
            ("udp.unhandled", self.udp_unhandled),
            ("udp.bad_checksum", self.udp_bad_checksum),
            ("udp.out", self.udp_out),
            ("udp.no_route", self.udp_no_route),
            ("services.hosts", self.services_hosts),
            ("services.hosts_refused", self.services_hosts_refused),
            ("services.hosts_released", self.services_hosts_released),
            ("services.peers", self.services_peers),
            ("peers.expired", self.peers_expired),
            ("peers.evicted", self.peers_evicted),
            ("peers.refused", self.peers_refused),
            ("table.established", self.table_established),
            ("table.updates", self.table_updates),
            ("table.removes", self.table_removes),
            ("table.refused", self.table_refused),
            ("activity_reports", self.activity_reports),
            ("link_changes", self.link_changes),
            ("bgp.route_changes", self.route_changes),
            ("bgp.reachability_changes", self.reachability_changes),
            ("injected", self.injected),
            ("inject_dropped", self.inject_dropped),
            ("reprocess_dropped", self.reprocess_dropped),
            ("pending.queued", self.pending.queued),
            ("pending.released", self.pending.released),
            ("pending.dropped_pair_full", self.pending.dropped_pair_full),
            (
                "pending.dropped_total_full",
                self.pending.dropped_total_full,
            ),
            ("pending.expired", self.pending.expired),
            ("pending.failed", self.pending.failed),
            ("nd.ns_in", self.nd.ns_in),
            ("nd.na_in", self.nd.na_in),
            ("nd.rs_in", self.nd.rs_in),
            ("nd.ignored", self.nd.ignored),
            ("nd.na_out", self.nd.na_out),
            ("nd.ns_out", self.nd.ns_out),
            ("nd.ra_out", self.nd.ra_out),
            ("nd.learned", self.nd.learned),
            ("nd.resolved", self.nd.resolved),
            ("nd.failed", self.nd.failed),
            ("nd.held_dropped", self.nd.held_dropped),
            ("nd.table_full", self.nd.table_full),
        ];
        v.extend(fixed.into_iter().map(|(n, c)| (n.to_string(), c)));
        v
    }
}
