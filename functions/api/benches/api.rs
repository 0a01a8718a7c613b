//! Request handling through the whole router (observability layer, auth, routing, projection,
//! serialisation) against the in-memory store: what the function adds on top of DynamoDB.
//!
//! `cargo bench -p api --bench api`

use api::{router, ApiConfig, ApiState, MetricsSink};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use ras_domain::contracts::Timestamp;
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::events::{self, at_minute, TestRecord};
use ras_domain::testing::{block_on, InMemoryStore};
use std::hint::black_box;
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

const KEY: &str = "bench-key";

fn ingest(store: &InMemoryStore, record: TestRecord, at: Timestamp) {
    let consumed = ConsumedRecord {
        topic: record.topic,
        value: &record.value,
        record_time: at,
    };
    if let Err(e) = block_on(process_record(store, consumed, at)) {
        panic!("ingest: {e}");
    }
}

/// A finished batch: registration, slots, spellcheck results, both phase outcomes, a CJ job
/// with two anchors, BOS pipeline completed.
fn finished_batch(store: &InMemoryStore, batch: &str, user: &str, essays: usize, start: f64) {
    let ids: Vec<String> = (0..essays)
        .map(|n| format!("{batch}-essay-{n:03}"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let t = |m: f64| at_minute(start + m);
    ingest(
        store,
        events::registration(Uuid::new_v4(), batch, user, &refs, t(0.0)),
        t(0.0),
    );
    for (n, id) in refs.iter().enumerate() {
        ingest(
            store,
            events::slot_assigned(Uuid::new_v4(), batch, id, t(1.0)),
            t(1.0),
        );
        let status = if n % 10 == 9 {
            "spellcheck_failed"
        } else {
            "spellchecked_success"
        };
        ingest(
            store,
            events::spellcheck_result(Uuid::new_v4(), batch, id, status, t(2.0)),
            t(2.0),
        );
    }
    let failed: Vec<&str> = refs
        .iter()
        .copied()
        .enumerate()
        .filter(|(n, _)| n % 10 == 9)
        .map(|(_, id)| id)
        .collect();
    let ok: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|id| !failed.contains(id))
        .collect();
    ingest(
        store,
        events::phase_outcome(
            Uuid::new_v4(),
            batch,
            "spellcheck",
            "completed_with_failures",
            &ok,
            &failed,
            t(3.0),
        ),
        t(3.0),
    );
    let grades = ["A", "B", "C", "D", "E"];
    let students: Vec<(&str, i64, f64, &str)> = ok
        .iter()
        .enumerate()
        .map(|(n, id)| {
            (
                *id,
                n as i64 + 1,
                1.5 - n as f64 * 0.1,
                grades[n % grades.len()],
            )
        })
        .collect();
    ingest(
        store,
        events::assessment_result(
            Uuid::new_v4(),
            batch,
            &format!("{batch}-job"),
            &students,
            true,
            t(20.0),
        ),
        t(20.0),
    );
    ingest(
        store,
        events::phase_outcome(
            Uuid::new_v4(),
            batch,
            "cj_assessment",
            "completed_successfully",
            &ok,
            &[],
            t(21.0),
        ),
        t(21.0),
    );
    ingest(
        store,
        events::pipeline_completed(
            Uuid::new_v4(),
            batch,
            "completed_with_failures",
            &["spellcheck", "cj_assessment"],
            ok.len() as i64,
            failed.len() as i64,
            t(25.0),
        ),
        t(25.0),
    );
}

fn app(store: InMemoryStore) -> Router {
    let state = ApiState::new(
        Arc::new(store),
        &ApiConfig::with_key(KEY),
        None,
        MetricsSink::Discard,
    )
    .unwrap_or_else(|e| panic!("state: {e}"));
    router(state)
}

async fn call(app: &Router, path: &str, authenticated: bool) -> usize {
    let mut req = Request::builder()
        .uri(path)
        .header("X-Correlation-ID", "bench");
    if authenticated {
        req = req
            .header("X-Internal-API-Key", KEY)
            .header("X-Service-ID", "api-gateway-service");
    }
    let req = req
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|never| match never {});
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("body: {e}"));
    body.len()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let store = InMemoryStore::new();
    finished_batch(&store, "batch-small", "teacher-a", 3, 0.0);
    finished_batch(&store, "batch-30", "teacher-a", 30, 60.0);
    for n in 0..20 {
        finished_batch(
            &store,
            &format!("list-batch-{n:02}"),
            "teacher-list",
            3,
            120.0 + n as f64 * 60.0,
        );
    }
    let app = app(store);
    for (path, authenticated) in [
        ("/internal/v1/batches/batch-small/status", true),
        ("/internal/v1/batches/batch-30/status", true),
        ("/internal/v1/batches/user/teacher-list", true),
    ] {
        let status = rt.block_on(async {
            let req = Request::builder()
                .uri(path)
                .header("X-Internal-API-Key", KEY)
                .header("X-Service-ID", "api-gateway-service")
                .body(Body::empty())
                .unwrap_or_else(|e| panic!("request: {e}"));
            app.clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|never| match never {})
                .status()
        });
        assert!(status.is_success() && authenticated, "{path}: {status}");
    }

    let mut group = c.benchmark_group("api");
    group.bench_function("status_3_essays", |b| {
        b.iter(|| {
            rt.block_on(call(
                &app,
                black_box("/internal/v1/batches/batch-small/status"),
                true,
            ))
        })
    });
    group.bench_function("status_30_essays", |b| {
        b.iter(|| {
            rt.block_on(call(
                &app,
                black_box("/internal/v1/batches/batch-30/status"),
                true,
            ))
        })
    });
    group.bench_function("list_20_batches", |b| {
        b.iter(|| {
            rt.block_on(call(
                &app,
                black_box("/internal/v1/batches/user/teacher-list"),
                true,
            ))
        })
    });
    group.bench_function("cj_detail_27_essays", |b| {
        b.iter(|| {
            rt.block_on(call(
                &app,
                black_box("/internal/v1/assessments/batch-30-job"),
                true,
            ))
        })
    });
    group.bench_function("unauthenticated_401", |b| {
        b.iter(|| {
            rt.block_on(call(
                &app,
                black_box("/internal/v1/batches/batch-small/status"),
                false,
            ))
        })
    });
    group.finish();
}

criterion_group!(api_benches, benches);
criterion_main!(api_benches);
