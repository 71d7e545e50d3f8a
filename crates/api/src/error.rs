//! The one error type of the API and its mapping onto HTTP: every failure is a JSON body
//! `{ "code": "...", "message": "..." }` with a status that says who must act.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable kind (`bad_request`, `unauthorized`, `not_found`, ...).
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: a bad body, query or path parameter (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong bearer token (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The named object does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request is well-formed but cannot be done in the current state (409), e.g. moving a
    /// context that is not established.
    #[error("{0}")]
    Conflict(String),
    /// The body is valid JSON of the right shape but its values are refused (422).
    #[error("{0}")]
    Invalid(String),
    /// This appliance does not offer the operation (501).
    #[error("{0}")]
    NotImplemented(String),
    /// The slow path did not answer in time, or its command queue is full (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `code` of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "invalid",
            Self::NotImplemented(_) => "not_implemented",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status(), Json(self.body())).into_response();
        if self == Self::Unauthorized {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"pshim6\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_status_and_code() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                ApiError::MethodNotAllowed("x".into()),
                405,
                "method_not_allowed",
            ),
            (ApiError::Conflict("x".into()), 409, "conflict"),
            (ApiError::Invalid("x".into()), 422, "invalid"),
            (ApiError::NotImplemented("x".into()), 501, "not_implemented"),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
            (ApiError::Internal("x".into()), 500, "internal"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.body().code, code);
        }
    }

    #[test]
    fn the_body_carries_the_message_and_401_names_the_scheme() {
        let e = ApiError::NotFound("context 7: no such context".into());
        assert_eq!(e.body().message, "context 7: no such context");
        let r = ApiError::Unauthorized.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let h = r
            .headers()
            .get(axum::http::header::WWW_AUTHENTICATE)
            .unwrap();
        assert!(h.to_str().unwrap().starts_with("Bearer"));
    }
}
