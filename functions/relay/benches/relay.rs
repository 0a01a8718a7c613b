//! Relay benchmarks (`docs/benchmarks.md`, "Relay"):
//!
//! * handler CPU per record: a 100-record stream event through `Relay::handle` with a
//!   publisher that only counts (no I/O), with and without parsing the Lambda event JSON;
//! * SQS requests per event for several shapes of stream batch (printed before the runs).
//!
//! `cargo bench -p relay --bench relay`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ras_aws::dynamo::OutboxItem;
use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::testing::{insert_record, stream_event};
use relay::Relay;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Counts requests and messages; keeps nothing.
#[derive(Default)]
struct CountingPublisher {
    requests: AtomicU64,
    messages: AtomicU64,
}

impl MessagePublisher for CountingPublisher {
    async fn send_batch(
        &self,
        _destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.messages
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        Ok(vec![SendResult::Sent; messages.len()])
    }
}

/// A body of the size of a real `BatchResultsReadyV1` envelope (~1.6 KB).
fn body(event_id: Uuid) -> String {
    let phases: Vec<String> = (0..3)
        .map(|i| format!(r#""phase_{i}": {{"status": "completed_successfully", "completed_count": 24, "failed_count": 1, "processing_time_seconds": 812.25}}"#))
        .collect();
    format!(
        r#"{{"event_id": "{event_id}", "event_type": "huleedu.ras.batch.results.ready.v1", "event_timestamp": "2025-11-27T10:20:30.123456Z", "source_service": "result_aggregator_service", "schema_version": 1, "correlation_id": "{event_id}", "data_schema_uri": null, "data": {{"event_name": "batch.results.ready", "entity_id": null, "entity_type": null, "parent_id": null, "timestamp": "2025-11-27T10:20:30.123456Z", "status": "completed_successfully", "system_metadata": {{"entity_id": "b", "entity_type": "batch", "parent_id": null, "timestamp": "2025-11-27T10:20:30.123456Z", "processing_stage": "completed", "started_at": null, "completed_at": null, "event": "results_ready", "error_info": {{}}}}, "batch_id": "b", "user_id": "teacher-000001", "total_essays": 25, "completed_essays": 24, "phase_results": {{{}}}, "overall_status": "completed_successfully", "processing_duration_seconds": 1234.5}}, "metadata": {{}}}}{}"#,
        phases.join(", "),
        " ".repeat(600)
    )
}

fn item(n: usize, topic: PublishedTopic, key: &str, batch: &str, seq: u32) -> OutboxItem {
    let event_id = Uuid::from_u128(0xbe00_0000 + n as u128);
    let created = Timestamp::from_unix_micros(1_764_238_830_000_000 + n as i64 * 1000).unwrap();
    OutboxItem::from_message(
        &OutboxMessage {
            event_id,
            topic,
            ordering_key: key.to_string(),
            correlation_id: event_id,
            created_at: created,
            sequence: seq,
            body: body(event_id),
        },
        batch,
    )
}

/// 100 results-ready events of 100 batches: every request full.
fn distinct_keys(n: usize) -> Vec<OutboxItem> {
    (0..n)
        .map(|i| {
            let b = format!("batch-{i:04}");
            item(i, PublishedTopic::BatchResultsReady, &b, &b, 0)
        })
        .collect()
}

/// Completed batches spread over `teachers`: per batch the assessment-completed and
/// results-ready events (key: batch) and a notification for each (key: teacher).
fn completions(batches: usize, teachers: usize) -> Vec<OutboxItem> {
    let mut items = Vec::new();
    for b in 0..batches {
        let batch = format!("batch-{b:04}");
        let teacher = format!("teacher-{:04}", b % teachers);
        for (k, topic) in [
            PublishedTopic::BatchAssessmentCompleted,
            PublishedTopic::BatchResultsReady,
        ]
        .into_iter()
        .enumerate()
        {
            let n = items.len();
            items.push(item(n, topic, &batch, &batch, 0));
            let n = items.len();
            items.push(item(
                n,
                PublishedTopic::TeacherNotificationRequested,
                &teacher,
                &batch,
                1 + k as u32,
            ));
        }
    }
    items
}

/// A single hot key: 100 notifications of one teacher.
fn one_key(n: usize) -> Vec<OutboxItem> {
    (0..n)
        .map(|i| {
            item(
                i,
                PublishedTopic::TeacherNotificationRequested,
                "teacher-0001",
                &format!("batch-{i:04}"),
                0,
            )
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn requests_per_event(name: &str, items: &[OutboxItem]) {
    let relay = Relay::new(
        CountingPublisher::default(),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    let out = runtime()
        .block_on(relay.handle(&stream_event(items, 1), None))
        .expect("relay");
    assert_eq!(out.published.len(), items.len());
    let requests = relay.publisher().requests.load(Ordering::Relaxed);
    println!(
        "relay-requests: {name}: {} events, {requests} SendMessageBatch requests, {:.3} requests/event",
        items.len(),
        requests as f64 / items.len() as f64
    );
}

fn bench(c: &mut Criterion) {
    requests_per_event("100 keys x 1 event (full batches)", &distinct_keys(100));
    requests_per_event(
        "25 completed batches of 25 teachers (50 events + 50 notifications)",
        &completions(25, 25),
    );
    requests_per_event(
        "25 completed batches of 5 teachers (50 events + 50 notifications)",
        &completions(25, 5),
    );
    requests_per_event("1 key x 100 events (hot key)", &one_key(100));

    let rt = runtime();
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(100));
    for (name, items) in [
        ("handle_100_records_100_keys", distinct_keys(100)),
        (
            "handle_100_records_25_batches_5_teachers",
            completions(25, 5),
        ),
    ] {
        let event = stream_event(&items, 1);
        let relay = Relay::new(
            CountingPublisher::default(),
            Arc::new(CircuitBreaker::default()),
            SystemClock,
        );
        // The event is cloned outside the measurement: the function receives it owned.
        group.bench_function(name, |b| {
            b.iter_batched(
                || event.clone(),
                |event| rt.block_on(relay.handle_event(event, None)).expect("relay"),
                BatchSize::SmallInput,
            )
        });
    }
    // What the function does per invocation: parse the Lambda event JSON, then handle it.
    let records: Vec<serde_json::Value> = distinct_keys(100)
        .iter()
        .enumerate()
        .map(|(i, it)| insert_record(it, &(1000 + i).to_string()))
        .collect();
    let json = serde_json::to_vec(&serde_json::json!({ "Records": records })).expect("json");
    let relay = Relay::new(
        CountingPublisher::default(),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    group.bench_function("parse_and_handle_100_records_100_keys", |b| {
        b.iter_batched(
            || json.clone(),
            |bytes| {
                let event: aws_lambda_events::dynamodb::Event =
                    serde_json::from_slice(&bytes).expect("event");
                rt.block_on(relay.handle_event(event, None)).expect("relay")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
