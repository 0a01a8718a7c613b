//! The API Gateway (HTTP API, payload 2.0) request files of `events/api/` — the same files
//! `cargo lambda invoke api --data-file events/api/<file>` uses — run through the Lambda
//! handler (`lambda_http`'s adapter around the router, as `lambda_http::run` does) against the
//! local AWS-API server, with the data they name written by the ingest path.

use ras_domain::contracts::Timestamp;
use ras_domain::testing::events;
use ras_tests::query_api::*;
use serde_json::{json, Value};
use uuid::Uuid;

const BATCH: &str = "api-events-batch-0001";
const USER: &str = "api-events-teacher-0001";
const JOB: &str = "api-events-job-0001";
const ESSAYS: [&str; 2] = ["api-events-essay-1", "api-events-essay-2"];

/// Deterministic event ids: re-running the test replays duplicates, the state stays the same.
fn event_id(n: u8) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("https://ras-tests/api-events/{n}").as_bytes(),
    )
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("timestamp")
}

async fn ingest_event_data(store: &ras_aws::dynamo::DynamoStore) {
    let records = [
        events::registration(
            event_id(1),
            BATCH,
            USER,
            &ESSAYS,
            at("2025-11-27T10:00:00Z"),
        ),
        events::slot_assigned(event_id(2), BATCH, ESSAYS[0], at("2025-11-27T10:01:00Z")),
        events::spellcheck_result(
            event_id(3),
            BATCH,
            ESSAYS[0],
            "spellchecked_success",
            at("2025-11-27T10:02:00Z"),
        ),
        events::spellcheck_result(
            event_id(4),
            BATCH,
            ESSAYS[1],
            "spellcheck_failed",
            at("2025-11-27T10:03:00Z"),
        ),
        events::assessment_result(
            event_id(5),
            BATCH,
            JOB,
            &[(ESSAYS[0], 1, 0.9, "B")],
            true,
            at("2025-11-27T10:20:00Z"),
        ),
        events::pipeline_completed(
            event_id(6),
            BATCH,
            "completed_with_failures",
            &["spellcheck", "cj_assessment"],
            1,
            1,
            at("2025-11-27T10:25:00Z"),
        ),
    ];
    for record in records {
        ingest(store, record.topic, &record.value).await;
    }
}

/// A check of a response body (parsed and as text).
type BodyCheck = Box<dyn Fn(&Value, &str)>;

/// What each request file must produce: status, and a check of the body.
fn expectation(file: &str) -> Option<(u16, BodyCheck)> {
    let golden = |name: &'static str| -> BodyCheck {
        Box::new(move |_, text| {
            assert_eq!(text, String::from_utf8(golden_bytes(name)).expect("UTF-8"))
        })
    };
    let error = |message: &'static str| -> BodyCheck {
        Box::new(move |body, _| assert_eq!(body, &json!({"error": message})))
    };
    Some(match file {
        "get_batch_status.json" => (
            200,
            Box::new(|body, _| {
                assert_eq!(body["batch_id"], BATCH);
                assert_eq!(body["user_id"], USER);
                assert_eq!(body["overall_status"], "completed_with_failures");
                assert_eq!(body["essays"].as_array().map(Vec::len), Some(2));
                assert_eq!(body["essays"][1]["spellcheck_status"], "failed");
                assert_eq!(body["processing_completed_at"], "2025-11-27T10:25:00");
            }),
        ),
        "get_user_batches.json" => (
            200,
            Box::new(|body, _| {
                assert_eq!(
                    body["pagination"],
                    json!({"limit": 10, "offset": 0, "total": 1})
                );
                assert_eq!(body["batches"][0]["batch_id"], BATCH);
            }),
        ),
        "get_assessment.json" => (
            200,
            Box::new(|body, _| {
                assert_eq!(body["cj_assessment_job_id"], JOB);
                assert_eq!(body["user_id"], USER);
                assert_eq!(body["essays"].as_array().map(Vec::len), Some(2));
                assert_eq!(body["anchor_essay_count"], 1);
            }),
        ),
        "get_batch_assessments.json" => (
            200,
            Box::new(|body, _| {
                assert_eq!(body["assessments"][0]["cj_assessment_job_id"], JOB);
                assert_eq!(
                    body["assessments"][0]["grade_distribution"],
                    json!({"B": 1})
                );
            }),
        ),
        "get_healthz.json" => (
            200,
            Box::new(|body, _| assert_eq!(body["status"], "healthy")),
        ),
        "get_openapi.json" => (
            200,
            Box::new(|_, text| {
                let docs = std::fs::read_to_string(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"),
                )
                .expect("docs/openapi.json");
                assert_eq!(text, docs);
            }),
        ),
        "error_401_missing_headers.json" => (401, golden("401_missing_headers.json")),
        "error_401_invalid_credentials.json" => (401, golden("401_invalid_credentials.json")),
        "error_404_batch_not_found.json" => (404, golden("404_batch_not_found.json")),
        "error_400_invalid_batch_id.json" => (400, golden("400_invalid_batch_id.json")),
        "error_400_invalid_limit.json" => (400, error("Invalid limit")),
        "error_400_invalid_status.json" => (400, error("Invalid status")),
        "error_404_assessment_not_found.json" => (404, error("Assessment not found")),
        _ => return None,
    })
}

#[tokio::test]
async fn api_gateway_request_files_through_the_lambda_handler() {
    let (_local, store) = local_store().await;
    ingest_event_data(&store).await;
    let app = app(store);

    let mut files: Vec<_> = std::fs::read_dir(api_events_dir())
        .expect("events/api")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .to_string()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 13, "{files:?}");
    for file in files {
        let (status, check) = expectation(&file)
            .unwrap_or_else(|| panic!("events/api/{file} has no expectation in this test"));
        let event = std::fs::read_to_string(api_events_dir().join(&file)).expect("read event");
        let response = api::lambda::invoke(app.clone(), &event)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        // An API Gateway v2 response: statusCode, headers, body text (JSON is not base64).
        assert_eq!(response["statusCode"], status, "{file}: {response}");
        assert_eq!(response["isBase64Encoded"], false, "{file}");
        assert_eq!(
            response["headers"]["content-type"], "application/json",
            "{file}"
        );
        let text = response["body"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no body"));
        let body: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}: {text}"));
        check(&body, text);
        let request: Value = serde_json::from_str(&event).expect("event JSON");
        if let Some(correlation) = request["headers"]["x-correlation-id"].as_str() {
            assert_eq!(
                response["headers"]["x-correlation-id"], correlation,
                "{file}"
            );
        }
    }
}
