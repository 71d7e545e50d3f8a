//! The OpenAPI 3.1 document of the API (utoipa, generated from the handlers' annotations;
//! served at `/v1/openapi.json`, no Swagger UI).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::model::{
    BgpRoutesView, CheckView, ContextPage, ContextView, DnsCacheEntry, DnsUpstreams, HandshakeView,
    Health, HostView, LocatorPairView, MoveRequest, PeerLocatorView, PortView, ProviderView,
    Readiness, ReapView, StatsView, TrafficView, WorkerView,
};
use crate::routes;
use crate::routing::{self, AnnouncedRoute, RoutingView};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The token from the `[api] token_file`"))
                .build(),
        );
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", scheme);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "pshim6 operator API", description = "SHIM6 proxy appliance: contexts, providers, services, counters."),
    paths(
        routes::healthz, routes::readyz, routes::list_contexts, routes::get_context,
        routes::delete_context, routes::move_context, routes::list_providers, routes::drain,
        routes::undrain, routes::hosts, routes::dns_cache, routes::put_dns_upstreams, routes::stats, routes::get_policy,
        routes::put_policy, routes::openapi_json, routes::metrics_text,
        routing::routing, routing::withdraw, routing::announce
    ),
    components(schemas(
        ErrorBody, ContextPage, ContextView, LocatorPairView, PeerLocatorView, TrafficView,
        MoveRequest, ProviderView, BgpRoutesView, ReapView, HostView, DnsCacheEntry, DnsUpstreams, StatsView,
        WorkerView, PortView, HandshakeView, Readiness, CheckView, Health, RoutingView,
        AnnouncedRoute
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}
