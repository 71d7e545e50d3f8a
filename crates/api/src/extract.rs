//! Request parsing with our own rejections: a bad body, query or path parameter is a 400 with
//! a JSON error that says what is wrong and where (serde's line and column), instead of
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::Uri;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::model::{ContextFilter, ContextQuery};

/// Most bytes a request body may have (policies and move requests are small).
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON request body; refused with 400 when it is not `application/json` or does not
/// deserialize into `T` (unknown fields included).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::BadRequest(
                "body: expected Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("body: {}", e.body_text())))?;
        if bytes.len() > MAX_BODY {
            return Err(ApiError::BadRequest(format!(
                "body: larger than {MAX_BODY} bytes"
            )));
        }
        parse_body(&bytes).map(JsonBody)
    }
}

/// Deserializes a JSON body, naming the problem and its position.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "body: empty; expected a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// The query string of `GET /v1/contexts` (without the `?`), decoded as axum's `Query`
/// extractor decodes it and checked: what the handler serves, or the 400 it answers.
pub fn context_filter(query: Option<&str>) -> Result<ContextFilter, ApiError> {
    let uri: Uri = match query {
        Some(q) => format!("/v1/contexts?{q}")
            .parse()
            .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?,
        None => Uri::from_static("/v1/contexts"),
    };
    let Query(q) = Query::<ContextQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    q.check().map_err(ApiError::BadRequest)
}

/// A context tag from a path segment: decimal, or hexadecimal with `0x`; at most 47 bits
/// ([RFC 5533 §5.1](https://www.rfc-editor.org/rfc/rfc5533#section-5.1)).
pub fn parse_tag(s: &str) -> Result<u64, ApiError> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    }
    .map_err(|_| ApiError::BadRequest(format!("tag: `{s}` is not a number")))?;
    if v == 0 || v >= 1 << 47 {
        return Err(ApiError::BadRequest(format!(
            "tag: `{s}` is not a 47-bit context tag (1 to 2^47-1)"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MoveRequest;

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        let msg = |b: &str| match parse_body::<MoveRequest>(b.as_bytes()) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{b}: {other:?}"),
        };
        assert!(msg("").contains("empty"));
        assert!(msg("{").contains("EOF"), "{}", msg("{"));
        assert!(msg(r#"{"local":"2001:db8::1"}"#).contains("missing field `peer`"));
        assert!(msg(r#"{"local":"x","peer":"2001:db8::2"}"#).contains("invalid IPv6"));
        assert!(
            msg(r#"{"local":"2001:db8::1","peer":"2001:db8::2","colour":1}"#)
                .contains("unknown field `colour`")
        );
        let ok: MoveRequest =
            parse_body(br#"{"local":"2001:db8::1","peer":"2001:db8::2"}"#).unwrap();
        assert_eq!(
            ok.peer,
            "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn context_queries_are_decoded_and_checked() {
        let f = context_filter(Some("state=established&limit=5&offset=10&provider=2")).unwrap();
        assert_eq!(
            (f.state, f.limit, f.offset, f.provider),
            (Some("established"), 5, 10, Some(2))
        );
        assert_eq!(
            context_filter(None).unwrap(),
            context_filter(Some("")).unwrap()
        );
        let msg = |q: &str| match context_filter(Some(q)) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{q}: {other:?}"),
        };
        assert!(msg("limit=0").contains("limit"), "{}", msg("limit=0"));
        assert!(msg("colour=red").contains("unknown field `colour`"));
        assert!(
            msg("provider=x").contains("provider"),
            "{}",
            msg("provider=x")
        );
        assert!(msg("peer=zz").contains("peer"));
    }

    #[test]
    fn tags_are_47_bit_numbers() {
        assert_eq!(parse_tag("42").unwrap(), 42);
        assert_eq!(parse_tag("0x2a").unwrap(), 42);
        assert_eq!(parse_tag("140737488355327").unwrap(), (1 << 47) - 1);
        for bad in ["0", "140737488355328", "-1", "x", "", "0xzz"] {
            assert!(
                matches!(parse_tag(bad), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
