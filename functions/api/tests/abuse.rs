//! Hostile and malformed requests, through the whole router (and the Lambda adapter) against the
//! in-memory store holding one registered batch: odd credentials, oversized and malformed query
//! parameters, ids with slashes, unicode, percent-encoded garbage, NUL bytes, dot segments and
//! 10 KB lengths. Every answer is a 4xx with exactly one of the reference's error bodies
//! (`{"error": "…"}`, Python `json.dumps` style) or a legitimate 200/404, never a 5xx, and no
//! body carries internals (type names, SDK text, panics, backtraces).
//!
//! `tests/tests/api_errors.rs` covers the ordinary error cases against the local AWS-API server
//! (each 401/404/400/500 body byte for byte); this file covers the abuse.

use api::{router, ApiConfig, ApiState, MetricsSink};
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use axum::Router;
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::events::{at_minute, event_id, registration};
use ras_domain::testing::InMemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "abuse-test-key";
const SERVICE: &str = "api-gateway-service";
const BATCH: &str = "batch-abuse-1";
const USER: &str = "teacher-abuse";

const MISSING: &str = "Missing authentication";
const INVALID: &str = "Invalid credentials";

const PROTECTED: [&str; 4] = [
    "/internal/v1/batches/batch-abuse-1/status",
    "/internal/v1/batches/user/teacher-abuse",
    "/internal/v1/assessments/some-job",
    "/internal/v1/batches/batch-abuse-1/assessments",
];

async fn app() -> Router {
    let store = InMemoryStore::new();
    let record = registration(event_id(1), BATCH, USER, &["essay-1"], at_minute(0.0));
    let consumed = ConsumedRecord {
        topic: record.topic,
        value: &record.value,
        record_time: at_minute(0.0),
    };
    process_record(&store, consumed, at_minute(0.0))
        .await
        .expect("registration applies");
    let state = ApiState::new(
        Arc::new(store),
        &ApiConfig::with_key(KEY),
        None,
        MetricsSink::Discard,
    )
    .expect("state");
    router(state)
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Exactly the reference's error body for `error`, as JSON, with no internals.
    fn assert_error(&self, status: u16, error: &str, case: &dyn std::fmt::Debug) {
        assert_eq!(
            (self.status, self.text()),
            (status, format!("{{\"error\": \"{error}\"}}")),
            "{case:?}"
        );
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{case:?}"
        );
        assert_no_internals(&self.text(), case);
    }
}

/// Traces of the implementation that must never reach a client.
fn assert_no_internals(body: &str, case: &dyn std::fmt::Debug) {
    for needle in [
        "::",
        "panicked",
        "backtrace",
        "stack",
        "src/",
        ".rs",
        "thread '",
        "Error {",
        "Rejection",
        "dispatch failure",
        "service error",
        "DynamoDB",
        "serde",
        "axum",
        "hyper",
        "Utf8",
        "invalid utf-8",
    ] {
        assert!(
            !body.to_lowercase().contains(&needle.to_lowercase()),
            "{case:?}: body leaks {needle:?}: {body}"
        );
    }
}

/// The start of a long case, for assertion messages.
fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

fn with_valid_auth(req: axum::http::request::Builder) -> axum::http::request::Builder {
    req.header("X-Internal-API-Key", KEY)
        .header("X-Service-ID", SERVICE)
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response = app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// GET with the given raw header values (bytes, so non-ASCII and odd values can be sent).
async fn get_with(app: &Router, path: &str, key: Option<&[u8]>, service: Option<&[u8]>) -> Answer {
    let mut req = Request::builder().uri(path);
    if let Some(key) = key {
        req = req.header(
            "X-Internal-API-Key",
            HeaderValue::from_bytes(key).expect("header value"),
        );
    }
    if let Some(service) = service {
        req = req.header(
            "X-Service-ID",
            HeaderValue::from_bytes(service).expect("header value"),
        );
    }
    send(app, req.body(Body::empty()).expect("request")).await
}

async fn get(app: &Router, path: &str) -> Answer {
    let req = with_valid_auth(Request::builder().uri(path))
        .body(Body::empty())
        .expect("request");
    send(app, req).await
}

/// Raw values of `X-Internal-API-Key` and `X-Service-ID` (`None`: header not sent).
type Credentials<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

#[tokio::test]
async fn odd_credentials_are_401_with_the_reference_bodies() {
    let app = app().await;
    let long_key = "k".repeat(64 * 1024);
    let long_service = "s".repeat(64 * 1024);
    let key_with_suffix = format!("{KEY}\t");
    let missing: [Credentials; 4] = [
        (None, None),
        (Some(b""), Some(b"")),
        (Some(b""), None),
        (None, Some(b"")),
    ];
    let invalid: [Credentials; 12] = [
        // A blank key or service is present, just wrong.
        (Some(b" "), Some(SERVICE.as_bytes())),
        (Some(KEY.as_bytes()), Some(b" ")),
        (Some(long_key.as_bytes()), Some(SERVICE.as_bytes())),
        (Some(KEY.as_bytes()), Some(long_service.as_bytes())),
        // Non-ASCII bytes: Latin-1, invalid UTF-8, valid UTF-8.
        (Some(b"abuse-test-k\xe9y"), Some(SERVICE.as_bytes())),
        (Some(b"\xff\xfe\xfd"), Some(SERVICE.as_bytes())),
        (Some("ключ".as_bytes()), Some(SERVICE.as_bytes())),
        (Some(KEY.as_bytes()), Some(b"api-gateway-servic\xe9")),
        (
            Some(KEY.as_bytes()),
            Some("api-gateway-service™".as_bytes()),
        ),
        // Lookalikes of the key: a tab appended, the key of another service.
        (Some(key_with_suffix.as_bytes()), Some(SERVICE.as_bytes())),
        (
            Some(b"abuse-test-key,abuse-test-key"),
            Some(SERVICE.as_bytes()),
        ),
        (
            Some(KEY.as_bytes()),
            Some(b"api-gateway-service,bff-teacher-service"),
        ),
    ];
    for path in PROTECTED {
        for (key, service) in missing {
            let case = (path, key.map(<[u8]>::len), service.map(<[u8]>::len));
            get_with(&app, path, key, service)
                .await
                .assert_error(401, MISSING, &case);
        }
        for (key, service) in invalid {
            let case = (
                path,
                key.map(|k| String::from_utf8_lossy(&k[..k.len().min(40)]).into_owned()),
                service.map(|s| String::from_utf8_lossy(&s[..s.len().min(40)]).into_owned()),
            );
            get_with(&app, path, key, service)
                .await
                .assert_error(401, INVALID, &case);
        }
    }
    // Header names are case-insensitive: the lower-case spelling authenticates.
    let req = Request::builder()
        .uri(PROTECTED[0])
        .header("x-internal-api-key", KEY)
        .header("x-service-id", SERVICE)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, req).await.status, 200);
    // Unknown routes under /internal/v1 answer 401 to strangers too, whatever the id.
    let garbage = format!("/internal/v1/{}", "%FF".repeat(100));
    get_with(&app, &garbage, None, None)
        .await
        .assert_error(401, MISSING, &"unknown route");
}

#[tokio::test]
async fn duplicate_credential_headers_count_by_the_first_value() {
    let app = app().await;
    let request = |keys: [&str; 2]| {
        Request::builder()
            .uri(PROTECTED[0])
            .header("X-Internal-API-Key", keys[0])
            .header("X-Internal-API-Key", keys[1])
            .header("X-Service-ID", SERVICE)
            .body(Body::empty())
            .expect("request")
    };
    send(&app, request(["wrong", KEY]))
        .await
        .assert_error(401, INVALID, &"wrong key first");
    send(&app, request(["", KEY]))
        .await
        .assert_error(401, MISSING, &"empty key first");
    assert_eq!(send(&app, request([KEY, "wrong"])).await.status, 200);
}

#[tokio::test]
async fn malformed_and_oversized_list_parameters_are_400() {
    let app = app().await;
    let digits = "9".repeat(10_000);
    let long_status = "s".repeat(10_000);
    let many_params = "x=1&".repeat(5_000);
    let cases: Vec<(String, &str)> = vec![
        ("limit=1e999".into(), "Invalid limit"),
        ("limit=1e2".into(), "Invalid limit"),
        ("limit=-0".into(), "Invalid limit"),
        ("limit=--1".into(), "Invalid limit"),
        ("limit=NaN".into(), "Invalid limit"),
        ("limit=inf".into(), "Invalid limit"),
        ("limit=0x10".into(), "Invalid limit"),
        ("limit=5.0".into(), "Invalid limit"),
        ("limit=%EF%BC%95".into(), "Invalid limit"), // fullwidth digit five
        ("limit=5%00".into(), "Invalid limit"),
        ("limit=%ZZ".into(), "Invalid limit"),
        ("limit".into(), "Invalid limit"),
        (format!("limit={digits}"), "Invalid limit"),
        ("limit=4294967297".into(), "Invalid limit"),
        ("limit=18446744073709551617".into(), "Invalid limit"),
        ("limit=abc&limit=5".into(), "Invalid limit"),
        ("offset=1e999".into(), "Invalid offset"),
        ("offset=-0.5".into(), "Invalid offset"),
        ("offset=%FF".into(), "Invalid offset"),
        ("offset".into(), "Invalid offset"),
        (format!("offset={digits}"), "Invalid offset"),
        ("offset=4294967296".into(), "Invalid offset"),
        ("status=unknown_status".into(), "Invalid status"),
        (format!("status={long_status}"), "Invalid status"),
        ("status=%FF%FE".into(), "Invalid status"),
        ("status=completed_successfully%00".into(), "Invalid status"),
        (
            "status=completed%5Fsuccessfully%2Cfailed".into(),
            "Invalid status",
        ),
        ("status=Completed_Successfully".into(), "Invalid status"),
        ("status".into(), "Invalid status"),
        (
            "status=bogus&status=completed_successfully".into(),
            "Invalid status",
        ),
        (format!("{many_params}limit=0"), "Invalid limit"),
        // The first invalid parameter in the order limit → offset → status is reported.
        ("status=bogus&offset=-1&limit=0".into(), "Invalid limit"),
        ("status=bogus&offset=-1".into(), "Invalid offset"),
    ];
    for (query, error) in &cases {
        let path = format!("/internal/v1/batches/user/{USER}?{query}");
        let case = short(query);
        get(&app, &path).await.assert_error(400, error, &case);
    }
}

#[tokio::test]
async fn odd_but_valid_list_parameters_are_served() {
    let app = app().await;
    let cases = [
        ("limit=%2B5", 5, 0),
        ("limit=+5&limit=abc", 5, 0),
        ("limit=100&offset=4294967295", 100, 4_294_967_295),
        ("offset=0&offset=-1", 20, 0),
        ("limit=%20%207%20", 7, 0),
        ("status=%20completed_successfully%20&limit=1", 1, 0),
        ("x=%FF&limit=3&&&=&==", 3, 0),
        ("", 20, 0),
    ];
    for (query, limit, offset) in cases {
        let r = get(&app, &format!("/internal/v1/batches/user/{USER}?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let body = r.json();
        assert_eq!(
            (
                body["pagination"]["limit"].as_u64(),
                body["pagination"]["offset"].as_u64()
            ),
            (Some(limit), Some(offset)),
            "{query}"
        );
        assert_no_internals(&r.text(), &query);
    }
    // The registered batch is listed on the default page, not past the end.
    let r = get(&app, &format!("/internal/v1/batches/user/{USER}")).await;
    assert_eq!(r.json()["batches"][0]["batch_id"], BATCH);
    let r = get(
        &app,
        &format!("/internal/v1/batches/user/{USER}?offset=4294967295"),
    )
    .await;
    assert_eq!(r.json()["batches"], json!([]));
    assert_eq!(r.json()["pagination"]["total"], 1);
}

/// The three id routes with `{id}` replaced, and the error each answers for an impossible id.
fn id_routes(id: &str) -> [(String, &'static str); 4] {
    [
        (
            format!("/internal/v1/batches/{id}/status"),
            "Invalid batch ID",
        ),
        (
            format!("/internal/v1/batches/{id}/assessments"),
            "Invalid batch ID",
        ),
        (format!("/internal/v1/batches/user/{id}"), "Invalid user ID"),
        (
            format!("/internal/v1/assessments/{id}"),
            "Invalid assessment ID",
        ),
    ]
}

#[tokio::test]
async fn impossible_ids_are_400() {
    let app = app().await;
    let ten_kb = "i".repeat(10 * 1024);
    let ten_kb_encoded = "%C3%A5".repeat(2 * 1024); // 4 KB of `å` once decoded
    let long_unicode = "å".repeat(128); // 256 bytes
    let ids = [
        ten_kb.as_str(),
        ten_kb_encoded.as_str(),
        long_unicode.as_str(),
        "nul%00byte",
        "%00",
        "tab%09id",
        "del%7Fid",
        "c1%C2%85control", // U+0085, a C1 control character
        "bad%FFutf8",      // invalid UTF-8 after decoding
        "%C3%28",          // invalid UTF-8 sequence
        "%ED%A0%80",       // an encoded surrogate half
        "overlong%C0%AF",  // overlong encoding of `/`
    ];
    for id in ids {
        for (path, error) in id_routes(id) {
            let case = short(&path);
            get(&app, &path).await.assert_error(400, error, &case);
        }
    }
}

#[tokio::test]
async fn odd_but_possible_ids_are_looked_up() {
    let app = app().await;
    let longest = "x".repeat(255);
    let ids = [
        "a%2Fb",  // encoded slash: the id `a/b`
        "%2F",    // the id `/`
        "%2E%2E", // the id `..`
        "..",     // dot segments are not resolved: the id `..`
        ".",
        "%25",                     // the id `%`
        "%",                       // a lone `%` stays itself
        "%ZZ",                     // invalid escapes stay themselves
        "%C3%A5%C3%A4%C3%B6-批次", // unicode
        "批次",
        "emoji-%F0%9F%98%80",
        "%20", // the id ` `
        "a+b",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "'%20OR%201=1--",
        longest.as_str(),
    ];
    for id in ids {
        for (path, _) in id_routes(id) {
            let r = get(&app, &path).await;
            let case = short(&path);
            if path.contains("/user/") {
                // A user with no batches: an empty page.
                assert_eq!(r.status, 200, "{case}: {}", r.text());
                assert_eq!(r.json()["pagination"]["total"], 0, "{case}");
            } else if path.contains("/assessments/") && !path.ends_with("/assessments") {
                r.assert_error(404, "Assessment not found", &case);
            } else {
                r.assert_error(404, "Batch not found", &case);
            }
        }
    }
    // Raw slashes, dot segments and empty segments change the route: JSON 404 or 400.
    let shapes = [
        ("/internal/v1/batches/a/b/status", 404, "Not found"),
        (
            "/internal/v1/batches/../v1/batches/x/status",
            404,
            "Not found",
        ),
        ("/internal/v1/batches/user/a/b", 404, "Not found"),
        ("/internal/v1/batches/user/", 400, "Invalid user ID"),
        ("/internal/v1/batches//status", 400, "Invalid batch ID"),
        ("/internal/v1/assessments/", 400, "Invalid assessment ID"),
        ("/internal/v1/assessments//x", 404, "Not found"),
        ("/internal/v1//batches/x/status", 404, "Not found"),
        ("/internal/v1/batches/x/status/", 404, "Not found"),
        ("/internal/v1/BATCHES/x/status", 404, "Not found"),
        (
            "/internal/v1/batches/x/status;jsessionid=1",
            404,
            "Not found",
        ),
    ];
    for (path, status, error) in shapes {
        get(&app, path).await.assert_error(status, error, &path);
    }
}

#[tokio::test]
async fn other_methods_are_405() {
    let app = app().await;
    for method in [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::from_bytes(b"BREW").expect("extension method"),
    ] {
        for path in PROTECTED {
            let req = with_valid_auth(Request::builder().method(method.clone()).uri(path))
                .body(Body::from("{\"limit\": 1e999}"))
                .expect("request");
            send(&app, req)
                .await
                .assert_error(405, "Method not allowed", &(method.as_str(), path));
        }
    }
}

/// The same abuse through the Lambda adapter, as API Gateway (HTTP API, payload 2.0) would
/// deliver it: raw path and query as sent, headers lower-cased, duplicates comma-joined.
#[tokio::test]
async fn abuse_through_the_lambda_adapter() {
    let app = app().await;
    let event = |raw_path: &str, raw_query: &str, headers: Value| {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.eu-north-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": "GET", "path": raw_path, "protocol": "HTTP/1.1",
                         "sourceIp": "10.0.0.1", "userAgent": "abuse"},
                "requestId": "r-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "27/Nov/2025:10:00:00 +0000",
                "timeEpoch": 1764237600000i64
            },
            "isBase64Encoded": false
        })
        .to_string()
    };
    let valid = json!({"x-internal-api-key": KEY, "x-service-id": SERVICE});
    let cases = [
        (
            event(
                PROTECTED[0],
                "",
                json!({"x-internal-api-key": format!("{KEY},{KEY}"), "x-service-id": SERVICE}),
            ),
            401,
            INVALID,
        ),
        (
            event(
                PROTECTED[0],
                "",
                json!({"x-internal-api-key": "ключ", "x-service-id": SERVICE}),
            ),
            401,
            INVALID,
        ),
        (
            event(
                PROTECTED[0],
                "",
                json!({"x-internal-api-key": "k".repeat(10_240), "x-service-id": SERVICE}),
            ),
            401,
            INVALID,
        ),
        (
            event(PROTECTED[0], "", json!({"x-service-id": SERVICE})),
            401,
            MISSING,
        ),
        (
            event(PROTECTED[1], "limit=1e999", valid.clone()),
            400,
            "Invalid limit",
        ),
        (
            event(PROTECTED[1], "limit=5&offset=%FF", valid.clone()),
            400,
            "Invalid offset",
        ),
        (
            event(
                &format!("/internal/v1/batches/{}/status", "i".repeat(10 * 1024)),
                "",
                valid.clone(),
            ),
            400,
            "Invalid batch ID",
        ),
        (
            event("/internal/v1/batches/nul%00/status", "", valid.clone()),
            400,
            "Invalid batch ID",
        ),
        (
            event("/internal/v1/assessments/a%2Fb", "", valid.clone()),
            404,
            "Assessment not found",
        ),
    ];
    for (event, status, error) in cases {
        let response = api::lambda::invoke(app.clone(), &event)
            .await
            .expect("a request event");
        let case = short(&event);
        assert_eq!(response["statusCode"], status, "{case}: {response}");
        assert_eq!(
            response["body"].as_str(),
            Some(format!("{{\"error\": \"{error}\"}}").as_str()),
            "{case}"
        );
        assert_no_internals(&response.to_string(), &case);
    }
    // Hosts that do not form a URL with the path made `lambda_http` panic (fuzz finding,
    // `api_lambda_event`): a host header with a bad port, no host header and a bad
    // `domainName`, a non-ASCII host header falling back to a bad `domainName`.
    let with_host = |headers: Value, domain: &str| {
        let mut e: Value = serde_json::from_str(&event(PROTECTED[0], "", headers)).expect("event");
        e["requestContext"]["domainName"] = json!(domain);
        e.to_string()
    };
    let host_cases = [
        with_host(
            json!({"host": "abc:xyz", "x-internal-api-key": KEY, "x-service-id": SERVICE}),
            "d.example",
        ),
        with_host(
            json!({"x-internal-api-key": KEY, "x-service-id": SERVICE}),
            "abc123.execute-api.amazona:ws.com",
        ),
        with_host(
            json!({"host": "h\u{049d}st", "x-internal-api-key": KEY, "x-service-id": SERVICE}),
            "a:b",
        ),
        with_host(json!({"host": "", "x-forwarded-proto": "a b"}), ""),
    ];
    for event in host_cases {
        let response = api::lambda::invoke(app.clone(), &event)
            .await
            .expect("a request event");
        let case = short(&event);
        assert_eq!(response["statusCode"], 400, "{case}: {response}");
        assert_eq!(
            response["body"].as_str(),
            Some("{\"error\": \"Invalid request\"}"),
            "{case}"
        );
    }
    // Something that is not a request event is refused before the router.
    for junk in ["", "null", "[]", "{\"records\": {}}", "{\"rawPath\": 5}"] {
        assert!(
            api::lambda::invoke(app.clone(), junk).await.is_err(),
            "{junk:?}"
        );
    }
}
