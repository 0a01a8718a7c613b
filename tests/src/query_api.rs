//! Query API tests (issue 5): the router over the DynamoDB store of the local server, requests
//! with or without the internal headers, data written through the ingest path, and the golden
//! scenario that reproduces `tests/fixtures/huleedu/api/`.

use crate::huleedu::{Scope, CJ_RESULT, PIPELINE_COMPLETED, REGISTERED, SLOT_ASSIGNED, SPELLCHECK};
use crate::local_aws::LocalAws;
use api::{router, ApiConfig, ApiState, MetricsSink};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use ras_aws::config::StoreConfig;
use ras_aws::dynamo::DynamoStore;
use ras_domain::contracts::{to_python_json, Timestamp};
use ras_domain::service::{process_record, ConsumedRecord, RecordOutcome};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// The key the test router is configured with (also used by `events/api/*.json`).
pub const TEST_API_KEY: &str = "local-internal-api-key";
pub const TEST_SERVICE_ID: &str = "api-gateway-service";

/// Headers of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth<'a> {
    /// The configured key and an allowed service.
    Valid,
    None,
    /// Explicit header values (`None` = header absent).
    Headers {
        key: Option<&'a str>,
        service: Option<&'a str>,
    },
}

/// A response, body collected.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap_or_else(|e| panic!("body is not UTF-8: {e}"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Status and body, for assertion messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

/// The router over `store`, with the test key and EMF documents kept in memory.
pub fn app_with_metrics(store: DynamoStore) -> (Router, Arc<Mutex<Vec<Value>>>) {
    let (sink, metrics) = MetricsSink::memory();
    let state = ApiState::new(
        Arc::new(store),
        &ApiConfig::with_key(TEST_API_KEY),
        None,
        sink,
    )
    .unwrap_or_else(|e| panic!("API state: {e}"));
    (router(state), metrics)
}

pub fn app(store: DynamoStore) -> Router {
    app_with_metrics(store).0
}

/// `GET path` through the router.
pub async fn get(app: &Router, path: &str, auth: Auth<'_>) -> ApiResponse {
    get_with(app, path, auth, &[]).await
}

/// `GET path` with extra headers.
pub async fn get_with(
    app: &Router,
    path: &str,
    auth: Auth<'_>,
    extra: &[(&str, &str)],
) -> ApiResponse {
    request(app, "GET", path, auth, extra).await
}

pub async fn request(
    app: &Router,
    method: &str,
    path: &str,
    auth: Auth<'_>,
    extra: &[(&str, &str)],
) -> ApiResponse {
    let mut builder = Request::builder().method(method).uri(path);
    let (key, service) = match auth {
        Auth::Valid => (Some(TEST_API_KEY), Some(TEST_SERVICE_ID)),
        Auth::None => (None, None),
        Auth::Headers { key, service } => (key, service),
    };
    if let Some(key) = key {
        builder = builder.header("X-Internal-API-Key", key);
    }
    if let Some(service) = service {
        builder = builder.header("X-Service-ID", service);
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let req = builder
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("request {path}: {e}"));
    let response = app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_else(|e| panic!("body of {path}: {e}"));
    ApiResponse {
        status: parts.status,
        headers: parts.headers,
        body: body.to_vec(),
    }
}

/// Apply one consumed record through the ingest use case.
pub async fn ingest(store: &DynamoStore, topic: &str, value: &[u8]) -> RecordOutcome {
    let now = Timestamp::now();
    let record = ConsumedRecord {
        topic,
        value,
        record_time: now,
    };
    process_record(store, record, now)
        .await
        .unwrap_or_else(|e| panic!("ingest {topic}: {e}\n{}", String::from_utf8_lossy(value)))
}

/// A DynamoDB store whose endpoint is a closed port: every call fails fast (no retries).
pub async fn unreachable_store() -> DynamoStore {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("addr: {e}"));
    drop(listener); // nothing listens there any more
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "ras-tests"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await;
    // Nothing is reached: the local setup's table names, whatever the environment says.
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), StoreConfig::default())
}

/// A golden API body (`tests/fixtures/huleedu/api/<file>`), bytes as stored.
pub fn golden_bytes(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/huleedu/api")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The directory of the API Gateway request events.
pub fn api_events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/api")
}

fn python_bytes(value: &Value) -> Vec<u8> {
    to_python_json(value).unwrap_or_else(|e| panic!("serialise: {e}"))
}

/// Essay 3 of the fixtures fails spellcheck at 10:03:00 with `error_info {"error_message":
/// "timeout"}` — the HuleEdu spellcheck fixture with that essay, status and time.
pub fn golden_failed_spellcheck(scope: &Scope) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&scope.fixture(SPELLCHECK))
        .unwrap_or_else(|e| panic!("fixture: {e}"));
    let essay = scope.fixture_essays()[2].clone();
    let at = "2025-11-27T10:03:00Z";
    v["event_id"] = json!(scope.event_id(2001).to_string());
    let data = &mut v["data"];
    data["entity_id"] = json!(essay);
    data["timestamp"] = json!(at);
    data["status"] = json!("spellcheck_failed");
    data["system_metadata"]["entity_id"] = json!(essay);
    data["system_metadata"]["timestamp"] = json!(at);
    data["system_metadata"]["processing_stage"] = json!("failed");
    data["system_metadata"]["error_info"] = json!({"error_message": "timeout"});
    data["corrections_made"] = json!(0);
    data["corrected_text_storage_id"] = Value::Null;
    data["original_text_storage_id"] = json!("text-storage-003");
    v["metadata"]["partition_key"] = json!(essay);
    python_bytes(&v)
}

/// The HuleEdu CJ result ranking essay 1 (rank 2, BT −0.21) and the anchor only, assessed at
/// 10:20:31 — the golden body shows no essay 2 and essay 1 last updated at 10:20:31.
pub fn golden_cj_result(scope: &Scope) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&scope.fixture(CJ_RESULT))
        .unwrap_or_else(|e| panic!("fixture: {e}"));
    let essay2 = scope.fixture_essays()[1].clone();
    v["event_id"] = json!(scope.event_id(2002).to_string());
    let results = v["data"]["essay_results"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("essay_results"));
    results.retain(|r| r["essay_id"] != json!(essay2));
    v["data"]["assessed_at"] = json!("2025-11-27T10:20:31Z");
    python_bytes(&v)
}

/// The golden scenario through the ingest path: registration (10:00), slot of essay 1 (10:01),
/// its spellcheck (10:02), essay 3's failed spellcheck (10:03), the CJ result (10:20:31), BOS
/// pipeline completed `completed_with_failures` 2/1 (10:25). Idempotent: replays are duplicates.
pub async fn ingest_golden_scenario(store: &DynamoStore, scope: &Scope) {
    ingest(store, REGISTERED, &scope.fixture(REGISTERED)).await;
    ingest(store, SLOT_ASSIGNED, &scope.fixture(SLOT_ASSIGNED)).await;
    ingest(store, SPELLCHECK, &scope.fixture(SPELLCHECK)).await;
    ingest(store, SPELLCHECK, &golden_failed_spellcheck(scope)).await;
    ingest(store, CJ_RESULT, &golden_cj_result(scope)).await;
    ingest(
        store,
        PIPELINE_COMPLETED,
        &scope.fixture(PIPELINE_COMPLETED),
    )
    .await;
}

/// Connect to the local server (panics with instructions when it is not configured).
pub async fn local_store() -> (LocalAws, DynamoStore) {
    let local = LocalAws::connect().await;
    let store = local.store();
    (local, store)
}
