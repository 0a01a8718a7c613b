//! Shared setup of the fuzz targets: topic selection, HuleEdu fixture states, in-memory ports,
//! the API router and the response checks every target applies.
//!
//! Run with `scripts/fuzz.sh [target] [seconds]` (see `docs/operations.md`).

use api::{router, ApiConfig, ApiState, MetricsSink};
use axum::Router;
use ras_domain::contracts::{ConsumedTopic, Timestamp};
use ras_domain::model::BatchAggregate;
use ras_domain::ports::{DeadLetter, DeadLetterSink, PublishError};
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::{block_on, InMemoryStore};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The batch of the HuleEdu fixtures (`tests/fixtures/huleedu`).
pub const FIXTURE_BATCH: &str = "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01";
/// The owner of the fixture batch.
pub const FIXTURE_USER: &str = "teacher-7f3c9a";
/// The API key the fuzzed router accepts.
pub const API_KEY: &str = "fuzz-key";

/// The consumed topics' fixtures, in lifecycle order.
pub const FIXTURES: [(&str, &[u8]); 6] = [
    (
        "huleedu.batch.essays.registered.v1",
        include_bytes!("../../tests/fixtures/huleedu/huleedu.batch.essays.registered.v1.json"),
    ),
    (
        "huleedu.els.essay.slot.assigned.v1",
        include_bytes!("../../tests/fixtures/huleedu/huleedu.els.essay.slot.assigned.v1.json"),
    ),
    (
        "huleedu.essay.spellcheck.results.v1",
        include_bytes!("../../tests/fixtures/huleedu/huleedu.essay.spellcheck.results.v1.json"),
    ),
    (
        "huleedu.els.batch.phase.outcome.v1",
        include_bytes!("../../tests/fixtures/huleedu/huleedu.els.batch.phase.outcome.v1.json"),
    ),
    (
        "huleedu.assessment.result.published.v1",
        include_bytes!("../../tests/fixtures/huleedu/huleedu.assessment.result.published.v1.json"),
    ),
    (
        "huleedu.batch.pipeline.completed.v1",
        include_bytes!("../../tests/fixtures/huleedu/huleedu.batch.pipeline.completed.v1.json"),
    ),
];

/// Inputs of the record targets start with one selector byte: `selector % 7` picks the topic
/// (0–5: the consumed topics in [`ConsumedTopic::ALL`] order, 6: a topic nobody consumes),
/// `selector / 7 % 3` the state the record meets (see [`prepared_store`]). The rest is the
/// record value. `scripts/fuzz.sh` builds the seeds from the fixtures this way.
pub fn split_record_input(data: &[u8]) -> Option<(&'static str, usize, &[u8])> {
    let (&selector, value) = data.split_first()?;
    let topic = ConsumedTopic::ALL
        .get(usize::from(selector % 7))
        .map_or("huleedu.unknown.topic.v1", ConsumedTopic::name);
    Some((topic, usize::from(selector / 7 % 3), value))
}

/// Record time and processing time of every fuzzed record.
pub fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_764_241_200_000).unwrap_or_else(Timestamp::now)
}

/// A store holding the fixture batch in one of three states: 0 = empty, 1 = registered,
/// 2 = the whole fixture lifecycle applied (slots, spellcheck, phase outcome, CJ results,
/// pipeline completed).
pub fn prepared_store(state: usize) -> InMemoryStore {
    let store = InMemoryStore::new();
    let count = match state {
        0 => 0,
        1 => 1,
        _ => FIXTURES.len(),
    };
    for (topic, value) in &FIXTURES[..count] {
        let record = ConsumedRecord {
            topic,
            value,
            record_time: now(),
        };
        if let Err(e) = block_on(process_record(&store, record, now())) {
            panic!("fixture {topic} does not apply: {e}");
        }
    }
    store
}

/// The fixture batch's aggregate in each state of [`prepared_store`], built once.
pub fn prepared_aggregate(state: usize) -> &'static BatchAggregate {
    static STATES: OnceLock<Vec<BatchAggregate>> = OnceLock::new();
    let states = STATES.get_or_init(|| {
        (0..3)
            .map(|s| {
                prepared_store(s)
                    .aggregate(FIXTURE_BATCH)
                    .unwrap_or_else(|| BatchAggregate::new(FIXTURE_BATCH))
            })
            .collect()
    });
    &states[state.min(states.len() - 1)]
}

/// Dead letters are counted and dropped.
#[derive(Default)]
pub struct CountingDeadLetters(pub AtomicUsize);

impl DeadLetterSink for CountingDeadLetters {
    async fn send(&self, _letter: &DeadLetter) -> Result<(), PublishError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A single-threaded runtime for the targets that need one (axum, the ingest handler).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

/// The API router over a store with the fixture batch fully applied, built once.
pub fn api_router() -> Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let state = ApiState::new(
                Arc::new(prepared_store(2)),
                &ApiConfig::with_key(API_KEY),
                None,
                MetricsSink::Discard,
            )
            .unwrap_or_else(|e| panic!("state: {e}"));
            router(state)
        })
        .clone()
}

/// The error texts the API may answer with (`functions/api/src/errors.rs`).
pub const ERROR_TEXTS: [&str; 13] = [
    "Missing authentication",
    "Invalid credentials",
    "Invalid batch ID",
    "Invalid user ID",
    "Invalid assessment ID",
    "Invalid limit",
    "Invalid offset",
    "Invalid status",
    "Invalid request",
    "Batch not found",
    "Assessment not found",
    "Not found",
    "Method not allowed",
];

/// What every answer of the API over the in-memory store must be: no 5xx (the store cannot
/// fail), a JSON body, and for an error exactly `{"error": "<one of the known texts>"}`.
pub fn check_response(status: u16, body: &[u8], what: &dyn std::fmt::Debug) {
    assert!(status < 500, "{what:?}: status {status}");
    let value: Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what:?}: body is not JSON ({e})"));
    if status >= 400 {
        let text = value.get("error").and_then(Value::as_str);
        let known = text.is_some_and(|t| ERROR_TEXTS.contains(&t));
        assert!(
            known && value.as_object().is_some_and(|o| o.len() == 1),
            "{what:?}: unexpected error body {value}"
        );
    }
}
