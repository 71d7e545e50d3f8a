//! What the API asks of the appliance. The binary implements [`Appliance`] over the slow
//! path's control channel, the workers' atomics, the DHCPv6 server and the DNS ALG; tests
//! implement it with fixed data. Calls may block for a bounded time (the slow path answers
//! through a channel with a timeout), so the server runs them on tokio's blocking pool, never
//! on a worker core.

use crate::error::ApiError;
use crate::metrics::MetricsWriter;
use crate::model::{
    CheckView, ContextFilter, ContextPage, ContextView, DnsCacheEntry, HostView, MoveRequest,
    ProviderView, StatsView,
};

/// The appliance behind the API.
pub trait Appliance: Send + Sync + 'static {
    /// Contexts matching `filter`, one page.
    fn contexts(&self, filter: &ContextFilter) -> Result<ContextPage, ApiError>;

    /// One context by its local tag.
    fn context(&self, tag: u64) -> Result<ContextView, ApiError>;

    /// Removes a context (SHIM6 has no teardown message, RFC 5533 §9: it simply goes).
    fn delete_context(&self, tag: u64) -> Result<(), ApiError>;

    /// Moves a live context to `to` (REAP confirms the pair first, RFC 5534 §4).
    fn move_context(&self, tag: u64, to: MoveRequest) -> Result<ContextView, ApiError>;

    /// Every provider.
    fn providers(&self) -> Result<Vec<ProviderView>, ApiError>;

    /// Moves every context off provider `name` and stops choosing it.
    fn drain(&self, name: &str) -> Result<ProviderView, ApiError> {
        Err(not_implemented(&format!("draining provider {name}")))
    }

    /// Undoes [`Appliance::drain`].
    fn undrain(&self, name: &str) -> Result<ProviderView, ApiError> {
        Err(not_implemented(&format!("undraining provider {name}")))
    }

    /// DHCPv6 bindings.
    fn hosts(&self) -> Result<Vec<HostView>, ApiError> {
        Err(ApiError::NotImplemented(
            "no DHCPv6 server runs in this appliance".into(),
        ))
    }

    /// The DNS ALG's peer locator cache.
    fn dns_cache(&self) -> Result<Vec<DnsCacheEntry>, ApiError> {
        Err(ApiError::NotImplemented(
            "no DNS ALG runs in this appliance".into(),
        ))
    }

    /// Replaces the DNS ALG's upstream servers live (the configuration's `dns.upstream`);
    /// returns the list now in force.
    fn set_dns_upstreams(
        &self,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Result<Vec<std::net::SocketAddr>, ApiError> {
        let _ = upstreams;
        Err(ApiError::NotImplemented(
            "no DNS ALG runs in this appliance".into(),
        ))
    }

    /// Counters per worker, port and drop reason; queue depths; handshakes.
    fn stats(&self) -> Result<StatsView, ApiError>;

    /// The traffic-engineering policy in force.
    fn te_policy(&self) -> Result<serde_json::Value, ApiError> {
        Err(not_implemented("traffic-engineering policy"))
    }

    /// Replaces the traffic-engineering policy (validated first); returns the policy now in
    /// force.
    fn set_te_policy(&self, policy: serde_json::Value) -> Result<serde_json::Value, ApiError> {
        let _ = policy;
        Err(not_implemented("traffic-engineering policy"))
    }

    /// The proxy's routing role and announced routes (`[announce]`).
    fn routing(&self) -> Result<crate::routing::RoutingView, ApiError> {
        Err(no_announce())
    }

    /// Withdraws (`true`) or announces again (`false`) the proxy's routes.
    fn set_routes_withdrawn(
        &self,
        withdrawn: bool,
    ) -> Result<crate::routing::RoutingView, ApiError> {
        let _ = withdrawn;
        Err(no_announce())
    }

    /// Readiness checks: workers heartbeating, slow path responsive, upstream DNS reachable.
    fn readiness(&self) -> Vec<CheckView>;

    /// Writes the appliance's metric families (the API adds `pshim6_build_info`).
    fn metrics(&self, out: &mut MetricsWriter);
}

fn not_implemented(what: &str) -> ApiError {
    ApiError::NotImplemented(format!(
        "{what}: traffic engineering is not built into this appliance yet"
    ))
}

fn no_announce() -> ApiError {
    ApiError::NotImplemented("route announcement: no `[announce]` in the configuration".into())
}
