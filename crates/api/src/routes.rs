//! The routes of issue #8: handlers only turn HTTP into calls of the [`Appliance`] (run on
//! tokio's blocking pool: they may wait for the slow path) and results into JSON.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::appliance::Appliance;
use crate::auth::Token;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{context_filter, parse_tag, JsonBody};
use crate::metrics::{self, Kind, MetricsWriter, Sample};
use crate::model::{
    ContextPage, ContextQuery, ContextView, DnsCacheEntry, DnsUpstreams, Health, HostView,
    MoveRequest, ProviderView, Readiness, StatsView,
};
use crate::openapi;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) appliance: Arc<dyn Appliance>,
    pub(crate) token: Arc<Token>,
    pub(crate) build: Arc<BuildInfo>,
}

/// Labels of `pshim6_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Package version.
    pub version: String,
    /// Backend in use (`afpacket`, `mem`, `dpdk`).
    pub backend: String,
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs `f` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("handler failed: {e}")))?
}

/// The whole API: `/healthz` open, everything else behind the bearer token.
pub(crate) fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/contexts", get(list_contexts))
        .route(
            "/v1/contexts/{tag}",
            get(get_context).delete(delete_context),
        )
        .route("/v1/contexts/{tag}/move", post(move_context))
        .route("/v1/providers", get(list_providers))
        .route("/v1/providers/{name}/drain", post(drain))
        .route("/v1/providers/{name}/undrain", post(undrain))
        .route("/v1/hosts", get(hosts))
        .route("/v1/dns/cache", get(dns_cache))
        .route("/v1/dns/upstreams", put(put_dns_upstreams))
        .route("/v1/stats", get(stats))
        .route("/v1/te/policy", get(get_policy).put(put_policy))
        .route("/v1/routing", get(crate::routing::routing))
        .route("/v1/routing/withdraw", post(crate::routing::withdraw))
        .route("/v1/routing/announce", post(crate::routing::announce))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if s.token.authorizes(header) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("{}: no such endpoint", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} {}: method not allowed",
        req.method(),
        req.uri().path()
    ))
}

/// Liveness: the API thread answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "alive".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness: workers heartbeating, slow path responsive, upstream DNS reachable.
#[utoipa::path(get, path = "/readyz", tag = "health", security(("bearer" = [])),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A check failed", body = Readiness),
        (status = 401, description = "No or wrong token", body = ErrorBody)))]
pub(crate) async fn readyz(State(s): State<AppState>) -> Result<Response, ApiError> {
    let checks = blocking(move || Ok(s.appliance.readiness())).await?;
    let r = Readiness::of(checks);
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(r)).into_response())
}

/// Contexts, filtered and paged.
#[utoipa::path(get, path = "/v1/contexts", tag = "contexts", params(ContextQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of contexts", body = ContextPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 503, description = "The slow path did not answer", body = ErrorBody)))]
pub(crate) async fn list_contexts(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<ContextPage> {
    let filter = context_filter(q.as_deref())?;
    blocking(move || s.appliance.contexts(&filter))
        .await
        .map(Json)
}

/// One context.
#[utoipa::path(get, path = "/v1/contexts/{tag}", tag = "contexts",
    params(("tag" = String, Path, description = "CT(local), decimal or 0x-hex")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The context", body = ContextView),
        (status = 400, description = "Bad tag", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such context", body = ErrorBody)))]
pub(crate) async fn get_context(
    State(s): State<AppState>,
    Path(tag): Path<String>,
) -> ApiResult<ContextView> {
    let tag = parse_tag(&tag)?;
    blocking(move || s.appliance.context(tag)).await.map(Json)
}

/// Removes a context at once.
#[utoipa::path(delete, path = "/v1/contexts/{tag}", tag = "contexts",
    params(("tag" = String, Path, description = "CT(local), decimal or 0x-hex")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Bad tag", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such context", body = ErrorBody)))]
pub(crate) async fn delete_context(
    State(s): State<AppState>,
    Path(tag): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tag = parse_tag(&tag)?;
    blocking(move || s.appliance.delete_context(tag)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a live context to a given locator pair.
#[utoipa::path(post, path = "/v1/contexts/{tag}/move", tag = "contexts",
    params(("tag" = String, Path, description = "CT(local), decimal or 0x-hex")),
    request_body = MoveRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The move is under way (REAP confirms the pair)", body = ContextView),
        (status = 400, description = "Bad tag or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such context", body = ErrorBody),
        (status = 409, description = "Not established, or the pair is unusable", body = ErrorBody)))]
pub(crate) async fn move_context(
    State(s): State<AppState>,
    Path(tag): Path<String>,
    JsonBody(to): JsonBody<MoveRequest>,
) -> ApiResult<ContextView> {
    let tag = parse_tag(&tag)?;
    blocking(move || s.appliance.move_context(tag, to))
        .await
        .map(Json)
}

/// Providers: link state, REAP view, traffic share, drops.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every provider", body = Vec<ProviderView>),
        (status = 401, description = "No or wrong token", body = ErrorBody)))]
pub(crate) async fn list_providers(State(s): State<AppState>) -> ApiResult<Vec<ProviderView>> {
    blocking(move || s.appliance.providers()).await.map(Json)
}

/// Moves every context off a provider and stops choosing it.
#[utoipa::path(post, path = "/v1/providers/{name}/drain", tag = "providers",
    params(("name" = String, Path, description = "Provider id or interface name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Drained", body = ProviderView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 501, description = "No traffic engineering in this build", body = ErrorBody)))]
pub(crate) async fn drain(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<ProviderView> {
    blocking(move || s.appliance.drain(&name)).await.map(Json)
}

/// Undoes a drain.
#[utoipa::path(post, path = "/v1/providers/{name}/undrain", tag = "providers",
    params(("name" = String, Path, description = "Provider id or interface name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Back in use", body = ProviderView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 501, description = "No traffic engineering in this build", body = ErrorBody)))]
pub(crate) async fn undrain(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<ProviderView> {
    blocking(move || s.appliance.undrain(&name)).await.map(Json)
}

/// DHCPv6 bindings.
#[utoipa::path(get, path = "/v1/hosts", tag = "services", security(("bearer" = [])),
    responses(
        (status = 200, description = "Bindings", body = Vec<HostView>),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 501, description = "No DHCPv6 server configured", body = ErrorBody)))]
pub(crate) async fn hosts(State(s): State<AppState>) -> ApiResult<Vec<HostView>> {
    blocking(move || s.appliance.hosts()).await.map(Json)
}

/// The DNS ALG's peer locator cache.
#[utoipa::path(get, path = "/v1/dns/cache", tag = "services", security(("bearer" = [])),
    responses(
        (status = 200, description = "Cache entries", body = Vec<DnsCacheEntry>),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 501, description = "No DNS ALG configured", body = ErrorBody)))]
pub(crate) async fn dns_cache(State(s): State<AppState>) -> ApiResult<Vec<DnsCacheEntry>> {
    blocking(move || s.appliance.dns_cache()).await.map(Json)
}

/// Counters per worker, port and drop reason; queue depths; handshakes.
#[utoipa::path(get, path = "/v1/stats", tag = "stats", security(("bearer" = [])),
    responses(
        (status = 200, description = "Counters", body = StatsView),
        (status = 401, description = "No or wrong token", body = ErrorBody)))]
pub(crate) async fn stats(State(s): State<AppState>) -> ApiResult<StatsView> {
    blocking(move || s.appliance.stats()).await.map(Json)
}

/// The traffic-engineering policy in force.
#[utoipa::path(get, path = "/v1/te/policy", tag = "te", security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 501, description = "No traffic engineering in this build", body = ErrorBody)))]
pub(crate) async fn get_policy(State(s): State<AppState>) -> ApiResult<serde_json::Value> {
    blocking(move || s.appliance.te_policy()).await.map(Json)
}

/// Replaces the traffic-engineering policy (validated, applied live).
#[utoipa::path(put, path = "/v1/te/policy", tag = "te", request_body = Object,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy now in force", body = Object),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 422, description = "The policy is refused", body = ErrorBody),
        (status = 501, description = "No traffic engineering in this build", body = ErrorBody)))]
pub(crate) async fn put_policy(
    State(s): State<AppState>,
    JsonBody(policy): JsonBody<serde_json::Value>,
) -> ApiResult<serde_json::Value> {
    if !policy.is_object() {
        return Err(ApiError::BadRequest("body: expected a JSON object".into()));
    }
    blocking(move || s.appliance.set_te_policy(policy))
        .await
        .map(Json)
}

/// Replaces the DNS ALG's upstream servers (applied live, as `dns.upstream` on SIGHUP).
#[utoipa::path(put, path = "/v1/dns/upstreams", tag = "services", request_body = DnsUpstreams,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The servers now in force", body = DnsUpstreams),
        (status = 400, description = "Bad body or address", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 422, description = "The list is refused (empty, IPv4)", body = ErrorBody),
        (status = 501, description = "No DNS ALG runs", body = ErrorBody),
        (status = 503, description = "The slow path does not answer", body = ErrorBody)))]
pub(crate) async fn put_dns_upstreams(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<DnsUpstreams>,
) -> ApiResult<DnsUpstreams> {
    let mut list = Vec::with_capacity(body.upstreams.len());
    for (i, u) in body.upstreams.iter().enumerate() {
        let a: std::net::SocketAddr = u.parse().map_err(|e| {
            ApiError::BadRequest(format!("upstreams[{i}]: `{u}`: {e} (expected [IPv6]:port)"))
        })?;
        list.push(a);
    }
    let now = blocking(move || s.appliance.set_dns_upstreams(list)).await?;
    Ok(Json(DnsUpstreams {
        upstreams: now.iter().map(ToString::to_string).collect(),
    }))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenAPI 3.1 document", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody)))]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::document())
}

/// Prometheus metrics, read from the data plane at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "meta", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "No or wrong token", body = ErrorBody)))]
pub(crate) async fn metrics_text(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = blocking(move || Ok(render_metrics(&s))).await?;
    Ok(([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

/// The exposition: `pshim6_build_info`, then the appliance's families.
pub(crate) fn render_metrics(s: &AppState) -> String {
    let mut w = MetricsWriter::new();
    w.family(
        "pshim6_build_info",
        Kind::Gauge,
        "Build of the running pshim6 (always 1).",
        &[Sample::with(
            vec![
                ("version", s.build.version.clone()),
                ("backend", s.build.backend.clone()),
            ],
            1.0,
        )],
    );
    s.appliance.metrics(&mut w);
    w.finish()
}
