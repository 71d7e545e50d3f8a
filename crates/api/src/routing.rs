//! Route announcement (issue #9): the proxy's role and the routes it announces through the
//! local routing daemon (kernel routes that BIRD learns; see `docs/routing.md`), and the
//! operator's withdraw / announce.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::routes::{blocking, AppState};

/// One route the proxy announces (or would announce).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AnnouncedRoute {
    /// The prefix (`ADDR/LEN`).
    pub prefix: String,
    /// `inside` (towards the site router: the CMULA space) or `exit` (towards the exit
    /// routers: a provider's PA prefix).
    pub towards: String,
    /// The provider whose PA prefix this is (`exit` routes only).
    pub provider: Option<u16>,
    /// In the kernel now (so announced by BIRD).
    pub installed: bool,
    /// Why not installed, when it is not (`withdrawn by the operator`, `provider drained`,
    /// `data plane lost`, ...).
    pub reason: Option<String>,
}

/// The proxy's routing role and announcements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingView {
    /// `primary` or `backup`.
    pub role: String,
    /// `announced` (every route installed), `partial` (some withheld, e.g. a drained
    /// provider) or `withdrawn` (none).
    pub state: String,
    /// The kernel device carrying the routes (deleted with the process).
    pub device: String,
    /// The rtnetlink protocol number of the routes (BIRD's `krt_source`).
    pub protocol: u8,
    /// The metric of the routes (BIRD's `krt_metric`; lower is preferred).
    pub metric: u32,
    /// The operator withdrew the announcement (`POST /v1/routing/withdraw`).
    pub operator_withdrawn: bool,
    /// Every worker heartbeats (the data plane forwards).
    pub dataplane_ok: bool,
    /// Every route and whether it is installed.
    pub routes: Vec<AnnouncedRoute>,
    /// Why the announcement last changed.
    pub last_change: String,
    /// When, in seconds since the Unix epoch.
    pub last_change_unix: f64,
}

/// The proxy's role and the routes it announces.
#[utoipa::path(get, path = "/v1/routing", tag = "routing", security(("bearer" = [])),
    responses(
        (status = 200, description = "Role and routes", body = RoutingView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 501, description = "No `[announce]` configured", body = ErrorBody)))]
pub(crate) async fn routing(State(s): State<AppState>) -> Result<Json<RoutingView>, ApiError> {
    blocking(move || s.appliance.routing()).await.map(Json)
}

/// Withdraws every route (the backup takes over); stays withdrawn until
/// `POST /v1/routing/announce`.
#[utoipa::path(post, path = "/v1/routing/withdraw", tag = "routing", security(("bearer" = [])),
    responses(
        (status = 200, description = "Withdrawn", body = RoutingView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 501, description = "No `[announce]` configured", body = ErrorBody),
        (status = 503, description = "The kernel refused", body = ErrorBody)))]
pub(crate) async fn withdraw(State(s): State<AppState>) -> Result<Json<RoutingView>, ApiError> {
    blocking(move || s.appliance.set_routes_withdrawn(true))
        .await
        .map(Json)
}

/// Announces again what the operator withdrew (routes of drained providers and a lost data
/// plane stay withdrawn).
#[utoipa::path(post, path = "/v1/routing/announce", tag = "routing", security(("bearer" = [])),
    responses(
        (status = 200, description = "Announced", body = RoutingView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 501, description = "No `[announce]` configured", body = ErrorBody),
        (status = 503, description = "The kernel refused", body = ErrorBody)))]
pub(crate) async fn announce(State(s): State<AppState>) -> Result<Json<RoutingView>, ApiError> {
    blocking(move || s.appliance.set_routes_withdrawn(false))
        .await
        .map(Json)
}
