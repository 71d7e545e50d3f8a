//! The operator surface of pshim6 (issue #8): a versioned JSON REST API under `/v1`, `/healthz`,
//! `/readyz`, Prometheus `/metrics` and an OpenAPI document at `/v1/openapi.json`.
//!
//! - **Threading:** [`ApiServer`] runs axum on a tokio current-thread runtime on its own thread
//!   (pinned to a housekeeping core when given one). Handlers call the [`Appliance`] on the
//!   runtime's blocking pool, because the binary's implementation waits (with a timeout) for
//!   the slow path to answer through its control channel; the slow path never waits for us.
//! - **Auth:** every route but `/healthz` needs `Authorization: Bearer <token>`
//!   ([RFC 6750 §2.1](https://www.rfc-editor.org/rfc/rfc6750#section-2.1)), the token read
//!   from a file and compared in constant time ([`Token`]).
//! - **Errors:** one [`ApiError`] → status map; every error is JSON `{ "code", "message" }`;
//!   bad bodies, queries and path parameters are 400 with the reason ([`extract`]).
//! - **Independence:** this crate knows nothing of the data plane, DHCPv6 or DNS: the binary
//!   fills the plain [`model`] types.

mod appliance;
mod auth;
mod error;
pub mod extract;
pub mod metrics;
pub mod model;
mod openapi;
mod routes;
pub mod routing;
mod server;

pub use appliance::Appliance;
pub use auth::{Token, TokenError, MIN_TOKEN_LEN};
pub use error::{ApiError, ErrorBody};
pub use openapi::document as openapi_document;
pub use routes::BuildInfo;
pub use server::{ApiServer, ServerConfig, ServerError};
