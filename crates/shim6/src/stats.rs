//! Counters for everything the engine sent, and every reason it dropped or refused something.

/// Engine counters (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Control messages handed to `handle_control`.
    pub rx_control: u64,
    /// Dropped: checksum does not verify ([RFC 5533 §12.3](https://www.rfc-editor.org/rfc/rfc5533#section-12.3)).
    pub rx_bad_checksum: u64,
    /// Dropped: malformed (length, option layout, HIP packet, ...).
    pub rx_malformed: u64,
    /// Dropped: multicast or unspecified IPv6 source or destination.
    pub rx_bad_address: u64,
    /// Dropped: unknown message type (answered with Error code 0 when the rate allows).
    pub rx_unknown_type: u64,
    /// Dropped: unrecognised critical option (answered with Error code 1).
    pub rx_unknown_critical_option: u64,
    /// Error messages received (never answered).
    pub rx_error: u64,
    /// Dropped: the message names a ULID that is not one of our hosts, or arrived on a
    /// locator that is not one of that host's.
    pub rx_not_for_us: u64,
    /// Dropped: the Responder Nonce is older than the previous validator secret.
    pub stale_validator: u64,
    /// Dropped: the Responder Validator does not match.
    pub bad_validator: u64,
    /// Dropped: R1/R2 whose Initiator Nonce (and locators) match no context.
    pub wrong_nonce: u64,
    /// Dropped: the PDS does not correspond to ULID(peer).
    pub pds_mismatch: u64,
    /// Dropped: a CGA signature over a Locator List did not verify.
    pub bad_signature: u64,
    /// Dropped: a Locator List that cannot be verified (bad method, not in the HBA set, no PDS)
    /// or a handshake source locator not bound to ULID(peer).
    pub forged_locator_list: u64,
    /// Dropped: message not valid in the context's state (R1 when not I1-SENT, R2 when
    /// ESTABLISHED, R1bis when not ESTABLISHED, UR/UA in I1-SENT, ...).
    pub discarded_in_state: u64,
    /// Dropped: an Update Request whose Locator List generation the peer had already replaced
    /// (replay, or a stale retransmission).
    pub replayed_generation: u64,
    /// Update Requests refused with Error 3 (generation) or 4 (count).
    pub bad_preferences: u64,
    /// I1 messages sent (first transmissions).
    pub i1_sent: u64,
    /// I1 retransmissions.
    pub i1_retransmitted: u64,
    /// R1 sent.
    pub r1_sent: u64,
    /// R1 not sent because of `r1_per_sec`.
    pub r1_rate_limited: u64,
    /// I2 sent (retransmissions included).
    pub i2_sent: u64,
    /// R2 sent.
    pub r2_sent: u64,
    /// R1bis sent.
    pub r1bis_sent: u64,
    /// R1bis not sent because of `r1bis_per_sec`.
    pub r1bis_rate_limited: u64,
    /// I2bis sent (retransmissions included).
    pub i2bis_sent: u64,
    /// Update Requests sent (retransmissions included).
    pub update_sent: u64,
    /// Update Requests received and acknowledged.
    pub update_received: u64,
    /// Update Acknowledgements sent.
    pub update_ack_sent: u64,
    /// Update Acknowledgements that completed our Update Request.
    pub update_acked: u64,
    /// Shim6 Error messages sent.
    pub error_sent: u64,
    /// Shim6 Error messages not sent because of `error_per_sec`.
    pub error_rate_limited: u64,
    /// Keepalive and Probe messages sent for REAP.
    pub reap_sent: u64,
    /// Contexts that reached ESTABLISHED (re-establishments included).
    pub established: u64,
    /// Contexts rebuilt by I2bis at our side (we had lost them).
    pub recovered: u64,
    /// Recoveries completed at our side (R2 answered our I2bis).
    pub recoveries_completed: u64,
    /// `connect` refused because of `max_contexts`.
    pub refused_cap: u64,
    /// I2/I2bis dropped because of `max_contexts`.
    pub i2_dropped_cap: u64,
    /// Context creation failed: the tag allocator had no tag.
    pub tag_exhausted: u64,
    /// Contexts that ended in E-FAILED.
    pub e_failed: u64,
    /// Contexts that ended in NO-SUPPORT.
    pub no_support: u64,
    /// Contexts removed for idleness.
    pub idle_removed: u64,
    /// Contexts removed by context confusion.
    pub confusion_removed: u64,
    /// Locator-list signatures made with the site key.
    pub signatures_made: u64,
    /// Peer verification cache hits.
    pub verify_cache_hits: u64,
    /// Peer verifications done (cache misses).
    pub verify_cache_misses: u64,
    /// Outgoing messages that could not be built (should never happen).
    pub emit_failed: u64,
    /// Contexts moved off a pair a routing signal marked unreachable (BGP withdraw, the
    /// "bgp" reason; [`ContextEngine::set_peer_reachability`](crate::ContextEngine::set_peer_reachability)).
    pub bgp_moves: u64,
    /// Unreachable marks refused because [`MAX_UNREACHABLE`](crate::MAX_UNREACHABLE) were held.
    pub unreachable_refused: u64,
}
