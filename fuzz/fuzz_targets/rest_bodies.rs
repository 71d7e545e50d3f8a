//! Any bytes as what an operator sends the REST API (`crates/api`), through the functions the
//! handlers use: a `POST /v1/contexts/{tag}/move` body, a `PUT /v1/te/policy` body (JSON,
//! then the TE policy and its validation, as the binary's bridge does), the query string of
//! `GET /v1/contexts` (paging and filters) and a `{tag}` path segment. None may panic; every
//! refusal is a 400 (`BadRequest`) or, for a policy that parses but is wrong, a named error.
#![no_main]

use api::extract::{context_filter, parse_body, parse_tag, MAX_BODY};
use api::model::{MoveRequest, MAX_LIMIT};
use api::ApiError;
use dataplane::slowpath::te::TePolicy;
use libfuzzer_sys::fuzz_target;

/// Provider ids of the appliance the policy is checked against.
const PROVIDERS: [u16; 2] = [1, 2];

fn bad_request<T>(r: &Result<T, ApiError>) -> bool {
    matches!(r, Ok(_) | Err(ApiError::BadRequest(_)))
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let moved = parse_body::<MoveRequest>(data);
    assert!(bad_request(&moved), "{moved:?}");

    let value = parse_body::<serde_json::Value>(data);
    assert!(bad_request(&value), "{value:?}");
    if let Ok(v) = value {
        if let Ok(policy) = serde_json::from_value::<TePolicy>(v) {
            if policy.validate(&PROVIDERS).is_ok() {
                // A valid policy survives the round trip the API answers with.
                let back = serde_json::to_value(&policy).unwrap();
                let again: TePolicy = serde_json::from_value(back).unwrap();
                assert_eq!(again, policy);
            }
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let filter = context_filter(Some(text));
        assert!(bad_request(&filter), "{filter:?}");
        if let Ok(f) = filter {
            assert!((1..=MAX_LIMIT).contains(&f.limit), "{f:?}");
        }
        let tag = parse_tag(text);
        assert!(bad_request(&tag), "{tag:?}");
        if let Ok(t) = tag {
            assert!(t != 0 && t < 1 << 47);
        }
    }
});
