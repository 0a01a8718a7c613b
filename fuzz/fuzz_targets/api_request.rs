//! Whole requests through the API router (observability layer, auth, routing, path ids, query
//! parsing, projection) over the in-memory store holding the finished fixture batch.
//!
//! Input: text; the first line is `<METHOD> <request-target>`, each further line a header
//! `name: value` (a line `key` or `service` alone stands for the valid credential header, to
//! let the fuzzer get past authentication). Whatever fails to form an HTTP request is skipped.
//! Every answer must be below 500, JSON, and for errors exactly one known `{"error": …}`.
#![no_main]

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;
use ras_fuzz::{api_router, check_response, runtime, API_KEY};
use tower::ServiceExt;

fn build(data: &[u8]) -> Option<Request<Body>> {
    let mut lines = data.split(|b| *b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|b| *b == b' ')?;
    let method = Method::from_bytes(&first[..space]).ok()?;
    let target = std::str::from_utf8(&first[space + 1..]).ok()?;
    let mut builder = Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value): (&[u8], &[u8]) = match line {
            b"key" => (b"x-internal-api-key", API_KEY.as_bytes()),
            b"service" => (b"x-service-id", b"api-gateway-service"),
            _ => {
                let colon = line.iter().position(|b| *b == b':')?;
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
        };
        builder = builder.header(
            HeaderName::from_bytes(name).ok()?,
            HeaderValue::from_bytes(value).ok()?,
        );
    }
    builder.body(Body::empty()).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = build(data) else {
        return;
    };
    let what = format!("{} {}", request.method(), request.uri());
    let (status, body) = runtime().block_on(async {
        let response = api_router()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("body: {e}"));
        (status, body)
    });
    check_response(status, &body, &what);
});
