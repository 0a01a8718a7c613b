//! Every route of the query API over the local AWS-API server, with data written by the ingest
//! path: batch status (read-after-write), a user's batches (order, pagination, `total`, status
//! filter), the CJ results routes, health, the OpenAPI document, correlation ids and metrics.

use ras_domain::contracts::{to_python_json, Timestamp};
use ras_domain::testing::events;
use ras_tests::huleedu::{Scope, CJ_RESULT, REGISTERED, SLOT_ASSIGNED};
use ras_tests::query_api::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("timestamp")
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test]
async fn status_reads_its_own_writes() {
    let (_local, store) = local_store().await;
    let scope = Scope::new();
    let app = app(store.clone());
    let path = format!("/internal/v1/batches/{}/status", scope.batch);

    assert_eq!(get(&app, &path, Auth::Valid).await.status, 404);
    ingest(&store, REGISTERED, &scope.fixture(REGISTERED)).await;
    let body = get(&app, &path, Auth::Valid).await.json();
    assert_eq!(body["overall_status"], "pending_content");
    assert_eq!(body["essays"], json!([]));
    assert_eq!(body["essay_count"], 3);
    assert_eq!(body["created_at"], "2025-11-27T10:00:00");
    assert_eq!(body["processing_started_at"], Value::Null);

    ingest(&store, SLOT_ASSIGNED, &scope.fixture(SLOT_ASSIGNED)).await;
    let body = get(&app, &path, Auth::Valid).await.json();
    assert_eq!(
        body["essays"][0]["essay_id"],
        scope.fixture_essays()[0].as_str()
    );
    assert_eq!(body["essays"][0]["filename"], "Åsa Öberg – uppsats.docx");
    assert_eq!(body["essays"][0]["spellcheck_status"], Value::Null);
    assert_eq!(body["last_updated"], "2025-11-27T10:01:00");
}

#[tokio::test]
async fn processing_batch_shows_current_phase() {
    let (_local, store) = local_store().await;
    let (batch, user) = (
        Uuid::new_v4().to_string(),
        format!("teacher-{}", Uuid::new_v4().simple()),
    );
    let id = |_: u8| Uuid::new_v4();
    ingest_builder(
        &store,
        events::registration(
            id(1),
            &batch,
            &user,
            &["e-1", "e-2"],
            at("2025-11-27T10:00:00Z"),
        ),
    )
    .await;
    ingest_builder(
        &store,
        events::spellcheck_result(
            id(2),
            &batch,
            "e-1",
            "spellchecked_success",
            at("2025-11-27T10:02:00Z"),
        ),
    )
    .await;
    ingest_builder(
        &store,
        events::spellcheck_result(
            id(3),
            &batch,
            "e-2",
            "spellchecking_in_progress",
            at("2025-11-27T10:03:00Z"),
        ),
    )
    .await;
    let app = app(store);
    let body = get(
        &app,
        &format!("/internal/v1/batches/{batch}/status"),
        Auth::Valid,
    )
    .await
    .json();
    assert_eq!(body["overall_status"], "processing");
    assert_eq!(body["current_phase"], "spellcheck");
    assert_eq!(body["processing_started_at"], "2025-11-27T10:02:00");
    assert_eq!(body["essays"][0]["spellcheck_status"], "completed");
    assert_eq!(body["essays"][1]["spellcheck_status"], "pending");
    // The list filter takes internal values: the reference could never match this one.
    let list = get(
        &app,
        &format!("/internal/v1/batches/user/{user}?status=processing_pipelines"),
        Auth::Valid,
    )
    .await
    .json();
    assert_eq!(list["pagination"]["total"], 1);
    assert_eq!(list["batches"][0]["batch_id"], batch.as_str());
}

async fn ingest_builder(store: &ras_aws::dynamo::DynamoStore, record: events::TestRecord) {
    ingest(store, record.topic, &record.value).await;
}

#[tokio::test]
async fn user_batches_newest_first_paginated_and_filtered() {
    let (_local, store) = local_store().await;
    let user = format!("teacher-{}", Uuid::new_v4().simple());
    let batch = |n: u8| format!("b{n}-{}", Uuid::new_v4().simple());
    let (old, mid, new) = (batch(1), batch(2), batch(3));
    for (b, time) in [
        (&old, "2025-11-27T10:00:00Z"),
        (&mid, "2025-11-27T11:00:00Z"),
        (&new, "2025-11-27T12:00:00.250000Z"),
    ] {
        ingest_builder(
            &store,
            events::registration(Uuid::new_v4(), b, &user, &["e-1"], at(time)),
        )
        .await;
    }
    ingest_builder(
        &store,
        events::pipeline_completed(
            Uuid::new_v4(),
            &mid,
            "completed_successfully",
            &["spellcheck"],
            1,
            0,
            at("2025-11-27T11:30:00Z"),
        ),
    )
    .await;
    let app = app(store);
    let list = |query: &str| {
        let app = app.clone();
        let path = format!("/internal/v1/batches/user/{user}{query}");
        async move {
            let r = get(&app, &path, Auth::Valid).await;
            assert_eq!(r.status, 200, "{path}: {}", r.describe());
            r
        }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["batches"]
            .as_array()
            .expect("batches")
            .iter()
            .map(|b| b["batch_id"].as_str().unwrap_or("").to_string())
            .collect()
    };

    let all = list("").await;
    let body = all.json();
    assert_eq!(ids(&body), [new.clone(), mid.clone(), old.clone()]);
    assert_eq!(
        body["pagination"],
        json!({"limit": 20, "offset": 0, "total": 3})
    );
    assert_eq!(keys(&body), ["batches", "pagination"]);
    assert_eq!(
        body["batches"][0]["created_at"],
        "2025-11-27T12:00:00.250000"
    );
    assert_eq!(
        body["batches"][1]["overall_status"],
        "completed_successfully"
    );
    assert_eq!(
        body["batches"][1]["processing_completed_at"],
        "2025-11-27T11:30:00"
    );
    // Python `json.dumps` bytes.
    assert_eq!(all.body, to_python_json(&body).expect("serialise"));
    assert!(all.text().contains("\"pagination\": {\"limit\": 20"));

    let page = list("?limit=2").await.json();
    assert_eq!(ids(&page), [new.clone(), mid.clone()]);
    assert_eq!(
        page["pagination"],
        json!({"limit": 2, "offset": 0, "total": 3})
    );
    let page = list("?limit=2&offset=2").await.json();
    assert_eq!(ids(&page), std::slice::from_ref(&old));
    assert_eq!(
        page["pagination"],
        json!({"limit": 2, "offset": 2, "total": 3})
    );
    let page = list("?offset=5").await.json();
    assert_eq!(ids(&page), Vec::<String>::new());
    assert_eq!(page["pagination"]["total"], 3);
    let page = list("?limit=100").await.json();
    assert_eq!(page["pagination"]["limit"], 100);

    let done = list("?status=completed_successfully").await.json();
    assert_eq!(ids(&done), std::slice::from_ref(&mid));
    assert_eq!(
        done["pagination"],
        json!({"limit": 20, "offset": 0, "total": 1})
    );
    let waiting = list("?status=awaiting_content_validation&limit=1&offset=1")
        .await
        .json();
    assert_eq!(ids(&waiting), std::slice::from_ref(&old));
    assert_eq!(
        waiting["pagination"],
        json!({"limit": 1, "offset": 1, "total": 2})
    );
    let none = list("?status=cancelled").await.json();
    assert_eq!(none["pagination"]["total"], 0);
}

#[tokio::test]
async fn unknown_user_has_an_empty_page() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let r = get(
        &app,
        &format!("/internal/v1/batches/user/nobody-{}", Uuid::new_v4()),
        Auth::Valid,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        r#"{"batches": [], "pagination": {"limit": 20, "offset": 0, "total": 0}}"#
    );
}

#[tokio::test]
async fn assessment_detail_has_every_essay_incl_anchors() {
    let (_local, store) = local_store().await;
    let scope = Scope::new();
    // The CJ result arrives before the registration: kept, and served once the batch registers.
    ingest(&store, CJ_RESULT, &scope.fixture(CJ_RESULT)).await;
    let app = app(store.clone());
    let path = format!("/internal/v1/assessments/{}", scope.job);
    let r = get(&app, &path, Auth::Valid).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (404, r#"{"error": "Assessment not found"}"#.to_string())
    );
    ingest(&store, REGISTERED, &scope.fixture(REGISTERED)).await;

    let r = get(&app, &path, Auth::Valid).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let body = r.json();
    let fixture: Value = serde_json::from_slice(&scope.fixture(CJ_RESULT)).expect("fixture");
    let data = &fixture["data"];
    assert_eq!(
        keys(&body),
        [
            "cj_assessment_job_id",
            "batch_id",
            "user_id",
            "assignment_id",
            "assessment_method",
            "model_used",
            "model_provider",
            "model_version",
            "assessed_at",
            "comparison_count",
            "student_essay_count",
            "anchor_essay_count",
            "grade_distribution",
            "essays",
            "assessment_metadata"
        ]
    );
    assert_eq!(body["cj_assessment_job_id"], scope.job.as_str());
    assert_eq!(body["batch_id"], scope.batch.as_str());
    assert_eq!(body["user_id"], scope.user.as_str());
    for field in [
        "assignment_id",
        "assessment_method",
        "model_used",
        "model_provider",
        "model_version",
    ] {
        assert_eq!(body[field], data[field], "{field}");
    }
    assert_eq!(body["assessed_at"], "2025-11-27T10:20:30Z");
    assert_eq!(body["comparison_count"], 3);
    assert_eq!(body["student_essay_count"], 2);
    assert_eq!(body["anchor_essay_count"], 1);
    assert_eq!(
        serde_json::to_string(&body["grade_distribution"]).expect("json"),
        r#"{"B":1,"C":1}"#
    );
    // Every essay, anchors included, by rank, exactly as CJ sent them (values and key order).
    assert_eq!(
        serde_json::to_string(&body["essays"]).expect("json"),
        serde_json::to_string(&data["essay_results"]).expect("json")
    );
    assert_eq!(body["essays"][2]["is_anchor"], true);
    assert_eq!(body["essays"][2]["display_name"], "ANCHOR GRADE A");
    assert_eq!(
        serde_json::to_string(&body["assessment_metadata"]).expect("json"),
        serde_json::to_string(&data["assessment_metadata"]).expect("json")
    );

    // The batch status shows the students of the job (anchors are not essays of the batch).
    let status = get(
        &app,
        &format!("/internal/v1/batches/{}/status", scope.batch),
        Auth::Valid,
    )
    .await
    .json();
    let essays = status["essays"].as_array().expect("essays");
    assert_eq!(essays.len(), 2);
    assert_eq!(essays[0]["cj_rank"], 2);
    assert_eq!(essays[0]["cj_score"], -0.21);
    assert_eq!(essays[1]["cj_rank"], 1);
    assert_eq!(essays[1]["cj_assessment_status"], "completed");
}

#[tokio::test]
async fn batch_assessments_newest_first() {
    let (_local, store) = local_store().await;
    let scope = Scope::new();
    let app = app(store.clone());
    let path = format!("/internal/v1/batches/{}/assessments", scope.batch);
    let r = get(&app, &path, Auth::Valid).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (404, r#"{"error": "Batch not found"}"#.to_string())
    );

    ingest(&store, REGISTERED, &scope.fixture(REGISTERED)).await;
    let empty = get(&app, &path, Auth::Valid).await.json();
    assert_eq!(
        empty,
        json!({"batch_id": scope.batch, "user_id": scope.user, "assessments": []})
    );

    ingest(&store, CJ_RESULT, &scope.fixture(CJ_RESULT)).await;
    // A second, later job of the same batch in which both students got a B.
    let mut later: Value = serde_json::from_slice(&scope.fixture(CJ_RESULT)).expect("fixture");
    let later_job = format!("{}-rerun", scope.job);
    later["event_id"] = json!(scope.event_id(3001).to_string());
    later["data"]["cj_assessment_job_id"] = json!(later_job);
    later["data"]["assessed_at"] = json!("2025-11-27T11:00:00Z");
    later["data"]["model_used"] = json!("gpt-5.1");
    later["data"]["model_provider"] = json!("openai");
    later["data"]["essay_results"][1]["letter_grade"] = json!("B");
    ingest(
        &store,
        CJ_RESULT,
        &to_python_json(&later).expect("serialise"),
    )
    .await;

    let body = get(&app, &path, Auth::Valid).await.json();
    assert_eq!(keys(&body), ["batch_id", "user_id", "assessments"]);
    let expected = json!([
        {"cj_assessment_job_id": later_job, "assessed_at": "2025-11-27T11:00:00Z", "student_essay_count": 2, "anchor_essay_count": 1,
         "grade_distribution": {"B": 2}, "comparison_count": 3, "model_used": "gpt-5.1", "model_provider": "openai"},
        {"cj_assessment_job_id": scope.job, "assessed_at": "2025-11-27T10:20:30Z", "student_essay_count": 2, "anchor_essay_count": 1,
         "grade_distribution": {"B": 1, "C": 1}, "comparison_count": 3, "model_used": "claude-3-5-haiku", "model_provider": "anthropic"},
    ]);
    assert_eq!(
        serde_json::to_string(&body["assessments"]).expect("json"),
        serde_json::to_string(&expected).expect("json")
    );

    // The status route reports the latest job's rank and score per essay.
    let status = get(
        &app,
        &format!("/internal/v1/batches/{}/status", scope.batch),
        Auth::Valid,
    )
    .await
    .json();
    assert_eq!(status["essays"][0]["cj_rank"], 2);
}

#[tokio::test]
async fn health_checks_the_table() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let r = get(&app, "/healthz", Auth::None).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let body = r.json();
    assert_eq!(
        keys(&body),
        [
            "service",
            "status",
            "message",
            "version",
            "checks",
            "dependencies",
            "environment"
        ]
    );
    assert_eq!(body["service"], "result_aggregator_service");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["message"], "Result Aggregator Service is healthy");
    assert_eq!(
        body["checks"],
        json!({"service_responsive": true, "dependencies_available": true})
    );
    assert_eq!(
        body["dependencies"],
        json!({"dynamodb": {"status": "healthy"}})
    );
    assert!(r
        .text()
        .starts_with(r#"{"service": "result_aggregator_service", "status": "healthy""#));
}

#[tokio::test]
async fn openapi_document_is_served_without_auth_and_matches_docs() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let r = get(&app, "/internal/v1/openapi.json", Auth::None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let checked_in = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"),
    )
    .expect("docs/openapi.json");
    assert!(
        r.body == checked_in,
        "docs/openapi.json is stale: cargo run -p api -- --print-openapi > docs/openapi.json"
    );
}

#[tokio::test]
async fn correlation_id_is_logged_echoed_and_metrics_are_emitted_per_route_and_status() {
    let (_local, store) = local_store().await;
    let scope = Scope::new();
    ingest(&store, REGISTERED, &scope.fixture(REGISTERED)).await;
    let (app, metrics) = app_with_metrics(store);
    let path = format!("/internal/v1/batches/{}/status", scope.batch);

    let r = get_with(
        &app,
        &path,
        Auth::Valid,
        &[("X-Correlation-ID", "corr-api-1")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-correlation-id"], "corr-api-1");
    let r = get(&app, &path, Auth::None).await;
    assert_eq!(r.status, 401);
    let generated = r.headers["x-correlation-id"].to_str().expect("ascii");
    assert!(Uuid::parse_str(generated).is_ok(), "{generated}");
    get(&app, "/no/such/route", Auth::None).await;

    let docs = metrics.lock().expect("metrics").clone();
    assert_eq!(docs.len(), 3);
    let cw = &docs[0]["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(cw["Namespace"], "HuleEdu/ResultAggregator");
    assert_eq!(
        cw["Dimensions"],
        json!([["Function", "Route", "StatusCode"]])
    );
    assert_eq!(
        cw["Metrics"],
        json!([{"Name": "Requests", "Unit": "Count"}, {"Name": "LatencyMs", "Unit": "Milliseconds"}])
    );
    let summary: Vec<(Value, Value, Value)> = docs
        .iter()
        .map(|d| {
            (
                d["Route"].clone(),
                d["StatusCode"].clone(),
                d["Requests"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!("/internal/v1/batches/{batch_id}/status"),
                json!("200"),
                json!(1.0)
            ),
            (
                json!("/internal/v1/batches/{batch_id}/status"),
                json!("401"),
                json!(1.0)
            ),
            (json!("unmatched"), json!("404"), json!(1.0)),
        ]
    );
    assert_eq!(docs[0]["correlation_id"], "corr-api-1");
    assert!(docs[0]["LatencyMs"].as_f64().is_some_and(|ms| ms >= 0.0));
}
