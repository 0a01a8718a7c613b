//! No attempt runs past the invocation deadline minus `deadline_reserve` (issue 11, item 3):
//! a processing attempt or a dead-letter send started close to the deadline is limited to the
//! time left before `deadline − reserve`, not to its full `attempt_timeout`, so the handler
//! answers before Lambda's timeout (which would make Lambda retry the whole batch). In-memory
//! fakes of the store and dead-letter ports that hang, and a deadline close to now.

use base64::Engine;
use ingest::handler::{process_event, Deps, Disposition, HandlerSettings};
use ingest::kafka::parse_event;
use ingest::retry::RetryPolicy;
use ras_domain::testing::events::*;
use ras_domain::testing::{MemoryDeadLetters, RecordingStore};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Far longer than any deadline of these tests: an operation that hangs.
const HANG: Duration = Duration::from_secs(30);

/// The in-memory store whose loads hang (a DynamoDB call that never answers).
fn hanging_store() -> RecordingStore {
    RecordingStore::default().with_load_delay(HANG)
}

fn event(values: &[Vec<u8>]) -> aws_lambda_events::event::kafka::KafkaEvent {
    let records: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(offset, value)| {
            json!({
                "topic": "huleedu.els.essay.slot.assigned.v1", "partition": 0, "offset": offset,
                "timestamp": 1_764_237_600_000i64, "timestampType": "CREATE_TIME",
                "key": null,
                "value": base64::engine::general_purpose::STANDARD.encode(value),
                "headers": [],
            })
        })
        .collect();
    parse_event(json!({
        "eventSource": "aws:MSK", "eventSourceArn": "arn",
        "records": {"huleedu.els.essay.slot.assigned.v1-0": records},
    }))
    .unwrap()
}

/// Attempts of 10 s (the default), a reserve of 300 ms, retries allowed.
fn settings() -> HandlerSettings {
    HandlerSettings {
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            budget: Duration::from_secs(10),
        },
        attempt_timeout: Duration::from_secs(10),
        deadline_reserve: Duration::from_millis(300),
        ..HandlerSettings::default()
    }
}

#[tokio::test]
async fn an_attempt_started_near_the_deadline_ends_before_deadline_minus_reserve() {
    let deps = Deps::new(hanging_store(), MemoryDeadLetters::new()).with_settings(settings());
    // 500 ms left, reserve 300 ms: the record may start, but its attempt only has 200 ms, not
    // the 10 s of `attempt_timeout` (before the fix it ran 10 s, far past the deadline).
    let started = Instant::now();
    let deadline = started + Duration::from_millis(500);
    let slot = slot_assigned(event_id(1), "batch-d", "e1", at_minute(1.0));
    let report = process_event(&deps, event(&[slot.value]), Some(deadline)).await;
    let done = Instant::now();
    assert!(
        done + Duration::from_millis(300) <= deadline + Duration::from_millis(60),
        "the handler answered {:?} after the start, the deadline was at 500 ms (reserve 300 ms)",
        done - started
    );
    let partition = &report.partitions[0];
    assert_eq!(partition.failed_offset, Some(0));
    assert!(
        matches!(&partition.records[0].disposition, Disposition::Failed { reason } if reason.contains("timed out")),
        "{:?}",
        partition.records[0].disposition
    );
    // The attempt was cut at the deadline minus the reserve; no retry started after it.
    assert_eq!(deps.store.loads(), 1);
    assert_eq!(
        serde_json::to_value(report.response()).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": {
            "partition": "huleedu.els.essay.slot.assigned.v1-0", "offset": 0}}]})
    );
}

#[tokio::test]
async fn a_dead_letter_send_near_the_deadline_ends_before_deadline_minus_reserve() {
    let deps = Deps::new(
        hanging_store(),
        // A dead-letter send that hangs (an SQS call that never answers).
        MemoryDeadLetters::new().with_delay(HANG),
    )
    .with_settings(settings());
    let started = Instant::now();
    let deadline = started + Duration::from_millis(500);
    // Poison: dead-lettered without touching the store; the send hangs.
    let report = process_event(&deps, event(&[b"not json".to_vec()]), Some(deadline)).await;
    let done = Instant::now();
    assert!(
        done + Duration::from_millis(300) <= deadline + Duration::from_millis(60),
        "the handler answered {:?} after the start, the deadline was at 500 ms (reserve 300 ms)",
        done - started
    );
    let partition = &report.partitions[0];
    assert_eq!(partition.failed_offset, Some(0));
    assert!(
        matches!(&partition.records[0].disposition, Disposition::Failed { reason } if reason.contains("dead-letter send failed")),
        "{:?}",
        partition.records[0].disposition
    );
    assert_eq!(deps.dead_letters.sends(), 1);
    assert_eq!(deps.store.loads(), 0);
}

#[tokio::test]
async fn no_record_starts_when_the_reserve_is_all_that_is_left() {
    let deps = Deps::new(hanging_store(), MemoryDeadLetters::new()).with_settings(settings());
    let deadline = Instant::now() + Duration::from_millis(250);
    let slot = slot_assigned(event_id(2), "batch-e", "e1", at_minute(1.0));
    let report = process_event(
        &deps,
        event(&[slot.value.clone(), slot.value]),
        Some(deadline),
    )
    .await;
    let partition = &report.partitions[0];
    assert_eq!(partition.failed_offset, Some(0));
    assert_eq!(partition.not_started, 1);
    assert!(partition.records.is_empty());
    assert_eq!(deps.store.loads(), 0);
}

#[tokio::test]
async fn far_from_the_deadline_a_slow_attempt_gets_its_whole_timeout() {
    let mut settings = settings();
    settings.attempt_timeout = Duration::from_millis(150);
    settings.retry.max_attempts = 2;
    let deps = Deps::new(hanging_store(), MemoryDeadLetters::new()).with_settings(settings);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let slot = slot_assigned(event_id(3), "batch-f", "e1", at_minute(1.0));
    let report = process_event(&deps, event(&[slot.value]), Some(deadline)).await;
    let elapsed = started.elapsed();
    // Two attempts of 150 ms each (and a backoff between them), both cut by attempt_timeout.
    assert_eq!(deps.store.loads(), 2);
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(report.partitions[0].failed_offset, Some(0));
}
