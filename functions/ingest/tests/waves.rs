//! Within one invocation, BOS's pipeline-completed records go after every other record of the
//! event (issue 10, item 4), without changing what is reported to Lambda: the lowest
//! unfinished offset of each partition. In-memory fakes of the store and dead-letter ports.

use base64::Engine;
use ingest::handler::{process_event, Deps, Disposition, HandlerSettings};
use ingest::kafka::parse_event;
use ingest::retry::RetryPolicy;
use ras_domain::contracts::PublishedTopic;
use ras_domain::testing::events::*;
use ras_domain::testing::{MemoryDeadLetters, RecordingStore};
use serde_json::{json, Map, Value};
use std::time::Duration;

const BOS: &str = "huleedu.batch.pipeline.completed.v1";

/// An MSK event of `(partition key, records)`, offsets from 0 in each partition.
fn event(partitions: &[(&str, Vec<TestRecord>)]) -> aws_lambda_events::event::kafka::KafkaEvent {
    let mut map = Map::new();
    for (key, records) in partitions {
        let list: Vec<Value> = records
            .iter()
            .enumerate()
            .map(|(offset, r)| {
                json!({
                    "topic": r.topic, "partition": 0, "offset": offset,
                    "timestamp": 1_764_237_600_000i64, "timestampType": "CREATE_TIME",
                    "key": null,
                    "value": base64::engine::general_purpose::STANDARD.encode(&r.value),
                    "headers": [],
                })
            })
            .collect();
        map.insert(key.to_string(), Value::Array(list));
    }
    parse_event(json!({"eventSource": "aws:kafka", "eventSourceArn": "arn", "records": map}))
        .unwrap()
}

/// The in-memory store, recording the topic of every commit (and failing the commits of one
/// topic, transiently, when asked); no record of these tests is ever dead-lettered.
fn deps(store: RecordingStore) -> Deps<RecordingStore, MemoryDeadLetters> {
    Deps::new(store, MemoryDeadLetters::new()).with_settings(HandlerSettings {
        retry: RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            budget: Duration::from_millis(1),
        },
        ..HandlerSettings::default()
    })
}

#[tokio::test]
async fn bos_completion_goes_after_the_results_of_the_same_event() {
    let b = "batch-w";
    let deps = deps(RecordingStore::default());
    let registration = registration(event_id(1), b, "t", &["e1"], at_minute(0.0));
    let bos = pipeline_completed(
        event_id(9),
        b,
        "completed_successfully",
        &["spellcheck"],
        1,
        0,
        at_minute(9.0),
    );
    let outcome = phase_outcome(
        event_id(8),
        b,
        "spellcheck",
        "completed_successfully",
        &["e1"],
        &[],
        at_minute(5.0),
    );
    let result = spellcheck_result(event_id(4), b, "e1", "spellchecked_success", at_minute(2.0));
    let report = process_event(
        &deps,
        event(&[
            ("bos-0", vec![bos]),
            ("registered-0", vec![registration]),
            ("outcome-0", vec![outcome]),
            ("spellcheck-0", vec![result]),
        ]),
        None,
    )
    .await;
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(deps.dead_letters.letters(), vec![]);
    let commits = deps.store.commit_topics();
    assert_eq!(commits.len(), 4);
    assert_eq!(commits.last().map(String::as_str), Some(BOS), "{commits:?}");
    // The batch never had to wait: BOS's report found every fact stored.
    let agg = deps.store.inner().aggregate(b).unwrap();
    assert!(agg.root.results_ready.is_some());
    let ready = deps
        .store
        .inner()
        .outbox()
        .into_iter()
        .filter(|m| m.topic == PublishedTopic::BatchResultsReady)
        .count();
    assert_eq!(ready, 1);
}

#[tokio::test]
async fn a_deferred_record_before_a_failure_is_processed_and_the_lowest_failure_reported() {
    let b = "batch-f";
    let store = RecordingStore::default().failing_topic("huleedu.els.essay.slot.assigned.v1");
    let deps = deps(store);
    let bos = pipeline_completed(
        event_id(9),
        b,
        "completed_successfully",
        &["spellcheck"],
        1,
        0,
        at_minute(9.0),
    );
    let slot = slot_assigned(event_id(2), b, "e1", at_minute(1.0));
    // One partition: BOS (offset 0), the failing slot (1), BOS re-published (2).
    let mixed = vec![
        bos.clone(),
        slot,
        bos.republished(uuid::Uuid::from_u128(77)),
    ];
    let report = process_event(&deps, event(&[("mixed-0", mixed)]), None).await;
    let partition = &report.partitions[0];
    assert_eq!(partition.failed_offset, Some(1));
    let offsets: Vec<(i64, bool)> = partition
        .records
        .iter()
        .map(|r| {
            (
                r.offset,
                matches!(r.disposition, Disposition::Failed { .. }),
            )
        })
        .collect();
    assert_eq!(deps.dead_letters.letters(), vec![]);
    // BOS at 0 ran (in the second wave), the slot at 1 failed, BOS at 2 waits for redelivery.
    assert_eq!(offsets, vec![(0, false), (1, true)]);
    assert_eq!(partition.not_started, 1);
    assert_eq!(
        serde_json::to_value(report.response()).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": {"partition": "mixed-0", "offset": 1}}]})
    );
}
