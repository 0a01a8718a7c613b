//! Route matching edge cases, against the in-memory store (no server needed).

use api::{router, ApiConfig, ApiState, MetricsSink};
use axum::body::Body;
use axum::http::Request;
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::events::{at_minute, event_id, registration};
use ras_domain::testing::InMemoryStore;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (u16, Value) {
    let req = Request::builder()
        .uri(path)
        .header("X-Internal-API-Key", "k")
        .header("X-Service-ID", "api-gateway-service")
        .body(Body::empty())
        .expect("request");
    let response = app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[tokio::test]
async fn batch_ids_that_look_like_the_user_route() {
    let store = InMemoryStore::new();
    for (n, batch) in ["userX", "user", "a b/c"].iter().enumerate() {
        let record = registration(
            event_id(n as u64),
            batch,
            "teacher-1",
            &["e-1"],
            at_minute(n as f64),
        );
        let consumed = ConsumedRecord {
            topic: record.topic,
            value: &record.value,
            record_time: at_minute(0.0),
        };
        process_record(&store, consumed, at_minute(0.0))
            .await
            .expect("ingest");
    }
    let state = ApiState::new(
        Arc::new(store),
        &ApiConfig::with_key("k"),
        None,
        MetricsSink::Discard,
    )
    .expect("state");
    let app = router(state);

    let (status, body) = get(&app, "/internal/v1/batches/userX/status").await;
    assert_eq!((status, body["batch_id"].as_str()), (200, Some("userX")));
    // Percent-encoded ids are decoded (a `/` inside an id must be encoded).
    let (status, body) = get(&app, "/internal/v1/batches/a%20b%2Fc/status").await;
    assert_eq!((status, body["batch_id"].as_str()), (200, Some("a b/c")));
    // `/batches/user/status` is the user route (user `status`), as in the reference's routing.
    let (status, body) = get(&app, "/internal/v1/batches/user/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["pagination"]["total"], 0);
    let (status, body) = get(&app, "/internal/v1/batches/user/teacher-1?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(body["pagination"]["total"], 3);
    assert_eq!(body["batches"][0]["batch_id"], "a b/c");
}
