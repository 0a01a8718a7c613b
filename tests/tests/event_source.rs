//! The event-source simulator (`ras_tests::event_source`, issue 11): AWS's documented
//! semantics of the MSK and DynamoDB stream event sources, one test per rule, and the finding
//! they expose: with infinite retries *and* an on-failure destination, Lambda caps a Kafka
//! source at 10 retries, so a throttle storm longer than that skips records for good.

use ingest::retry::RetryPolicy;
use ingest::{Deps, HandlerSettings};
use ras_domain::testing::events::{self as ev, at_minute};
use ras_domain::testing::InMemoryStore;
use ras_domain::testing::MemoryDeadLetters;
use ras_tests::event_source::{
    deployed_ingest_source_config, deployed_relay_source_config, kafka_outcome, stream_outcome,
    Batch, EventSource, EventSourceConfig, GiveUp, OnFailure, Outcome, SourceKind, SourceRecord,
    STREAM_RETENTION,
};
use ras_tests::faults::FlakyStore;
use ras_tests::ingest_support::fixed_clock;
use ras_tests::msk::{msk_event, MskRecord};
use std::time::Duration;
use uuid::Uuid;

fn kafka(retries: i64, on_failure: Option<OnFailure>) -> EventSourceConfig {
    EventSourceConfig {
        kind: SourceKind::Kafka,
        batch_size: 100,
        maximum_retry_attempts: retries,
        maximum_record_age: None,
        bisect_batch_on_function_error: false,
        report_batch_item_failures: true,
        on_failure,
        function_timeout: Duration::from_secs(60),
    }
}

fn stream(retries: i64, bisect: bool) -> EventSourceConfig {
    EventSourceConfig {
        kind: SourceKind::DynamoDbStream,
        bisect_batch_on_function_error: bisect,
        on_failure: Some(OnFailure::Sqs),
        ..kafka(retries, None)
    }
}

/// A source with one lane of `n` records, ids 100.., written at time 0.
fn source(config: EventSourceConfig, lane: &str, n: i64) -> EventSource<i64> {
    let mut s = EventSource::new(config);
    for id in 100..100 + n {
        s.append(
            lane,
            SourceRecord {
                id,
                appended_at: Duration::ZERO,
                payload: id,
            },
        );
    }
    s
}

fn poll(s: &mut EventSource<i64>, lane: &str, max: usize) -> Batch<i64> {
    s.poll(lane, max, Duration::ZERO).expect("a batch")
}

#[test]
fn infinite_retries_with_an_on_failure_destination_are_capped_at_ten_on_kafka_only() {
    assert_eq!(kafka(-1, Some(OnFailure::Sqs)).retry_cap(), Some(10));
    assert_eq!(kafka(-1, Some(OnFailure::KafkaTopic)).retry_cap(), Some(10));
    assert_eq!(kafka(-1, None).retry_cap(), None);
    assert_eq!(kafka(3, Some(OnFailure::Sqs)).retry_cap(), Some(3));
    assert_eq!(kafka(0, None).retry_cap(), Some(0));
    // The cap is documented for Kafka sources; a stream retries until the records expire.
    assert_eq!(stream(-1, false).retry_cap(), None);
}

#[test]
fn a_kafka_batch_that_keeps_failing_is_skipped_after_the_cap_and_the_sqs_destination_gets_metadata()
{
    let mut s = source(kafka(-1, Some(OnFailure::Sqs)), "t-0", 5);
    // The first attempt and 10 retries fail; the records stay in place until then.
    for attempt in 0..=10 {
        let b = poll(&mut s, "t-0", 3);
        assert_eq!((b.start, b.end), (0, 3), "attempt {attempt}");
        assert!(s.discarded().is_empty(), "attempt {attempt}");
        s.complete(&b, Outcome::FunctionError);
    }
    let d = &s.discarded()[0];
    assert_eq!(
        (d.reason, d.first_id, d.last_id, d.count),
        (GiveUp::Retries, 100, 102, 3)
    );
    assert!(d.sent_to_destination);
    assert_eq!(d.records, None, "an SQS destination gets metadata only");
    // The event source moves on.
    assert_eq!(poll(&mut s, "t-0", 3).start, 3);
}

#[test]
fn a_kafka_topic_destination_receives_the_records_themselves() {
    let mut s = source(kafka(1, Some(OnFailure::KafkaTopic)), "t-0", 2);
    let b = poll(&mut s, "t-0", 10);
    s.complete(&b, Outcome::FailedFrom(1));
    let retry = poll(&mut s, "t-0", 10);
    assert_eq!(retry.records[0].id, 101);
    s.complete(&retry, Outcome::FailedFrom(0));
    let d = &s.discarded()[0];
    assert_eq!(d.records, Some(vec![101]));
    assert_eq!((d.first_id, d.count), (101, 1));
}

#[test]
fn without_a_destination_skipped_records_reach_nobody_and_infinite_retries_never_skip() {
    let mut capped = source(kafka(2, None), "t-0", 1);
    for _ in 0..3 {
        let b = poll(&mut capped, "t-0", 10);
        capped.complete(&b, Outcome::FunctionError);
    }
    assert!(!capped.discarded()[0].sent_to_destination);
    assert!(capped.is_drained());

    let mut infinite = source(kafka(-1, None), "t-0", 1);
    for _ in 0..500 {
        let b = poll(&mut infinite, "t-0", 10);
        infinite.complete(&b, Outcome::FunctionError);
    }
    assert!(infinite.discarded().is_empty());
    assert_eq!(infinite.stats().retries, 500);
}

#[test]
fn a_kafka_partial_response_resumes_each_partition_at_its_lowest_failed_offset() {
    let mut s = source(kafka(-1, None), "t-0", 6);
    for id in 200..204 {
        s.append(
            "t-1",
            SourceRecord {
                id,
                appended_at: Duration::ZERO,
                payload: id,
            },
        );
    }
    let (a, b) = (poll(&mut s, "t-0", 6), poll(&mut s, "t-1", 4));
    let (outcomes, problems) = kafka_outcome(
        &[&a, &b],
        [("t-0".to_string(), 104), ("t-0".to_string(), 102)],
    );
    assert!(problems.is_empty());
    assert_eq!(outcomes, vec![Outcome::FailedFrom(2), Outcome::Success]);
    s.complete(&a, outcomes[0]);
    s.complete(&b, outcomes[1]);
    assert_eq!(s.position("t-0"), Some((2, 6)));
    assert_eq!(s.position("t-1"), Some((4, 4)));
    // Everything from the lowest failed offset is delivered again, in order.
    assert_eq!(poll(&mut s, "t-0", 10).records[0].id, 102);

    let (outcomes, problems) = kafka_outcome(&[&a], [("t-9".to_string(), 1)]);
    assert_eq!(outcomes, vec![Outcome::Success]);
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn the_commit_offset_never_passes_a_failed_record_and_moves_on_when_given_up() {
    let mut s = source(kafka(1, None), "t-0", 4);
    assert_eq!(s.commit_offset("t-0"), Some(100));
    assert_eq!(s.commit_offset("t-9"), None);
    let batch = poll(&mut s, "t-0", 4);
    // Nothing processed yet: the next record to deliver is still the first.
    assert_eq!(s.commit_offset("t-0"), Some(100));
    s.complete(&batch, Outcome::FailedFrom(2));
    assert_eq!(
        s.commit_offset("t-0"),
        Some(102),
        "stops at the failed record"
    );
    assert_eq!(
        s.undelivered("t-0")
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![102, 103]
    );
    let retry = poll(&mut s, "t-0", 4);
    s.complete(&retry, Outcome::FailedFrom(0));
    // One retry allowed: the second failure gives the rest up, and the lane moves past it.
    assert_eq!(s.discarded().len(), 1);
    assert_eq!(s.commit_offset("t-0"), Some(104));
    assert_eq!(s.last_id("t-0"), Some(103));
}

#[test]
fn a_stream_checkpoints_at_the_lowest_sequence_number_and_bad_identifiers_fail_the_batch() {
    let mut s = source(stream(-1, false), "shard-0", 5);
    let b = poll(&mut s, "shard-0", 5);
    let seq = |r: &SourceRecord<i64>| format!("{}", r.id * 10);
    let ids = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(stream_outcome(&b, seq, ids(&[])), Outcome::Success);
    assert_eq!(
        stream_outcome(&b, seq, ids(&["1030", "1010"])),
        Outcome::FailedFrom(1)
    );
    assert_eq!(stream_outcome(&b, seq, [None]), Outcome::FunctionError);
    assert_eq!(stream_outcome(&b, seq, ids(&[""])), Outcome::FunctionError);
    assert_eq!(stream_outcome(&b, seq, ids(&["7"])), Outcome::FunctionError);
    s.complete(&b, Outcome::FailedFrom(1));
    assert_eq!(poll(&mut s, "shard-0", 5).records[0].id, 101);
}

#[test]
fn bisecting_splits_a_failed_batch_without_spending_retries() {
    let mut s = source(stream(1, true), "shard-0", 4);
    let b = poll(&mut s, "shard-0", 4);
    s.complete(&b, Outcome::FunctionError);
    let first_half = poll(&mut s, "shard-0", 4);
    assert_eq!((first_half.start, first_half.end), (0, 2));
    s.complete(&first_half, Outcome::Success);
    let second_half = poll(&mut s, "shard-0", 4);
    assert_eq!((second_half.start, second_half.end), (2, 4));
    // Down to one record: now failures count, and the cap (1 retry) applies.
    s.complete(&second_half, Outcome::FunctionError);
    let one = poll(&mut s, "shard-0", 4);
    assert_eq!((one.start, one.end), (2, 3));
    s.complete(&one, Outcome::FunctionError);
    assert!(s.discarded().is_empty());
    let again = poll(&mut s, "shard-0", 4);
    s.complete(&again, Outcome::FunctionError);
    assert_eq!(s.discarded()[0].first_id, 102);
    assert_eq!(s.stats().bisects, 2);
}

#[test]
fn records_older_than_the_maximum_age_are_skipped_and_a_stream_trims_after_24_hours() {
    let mut aged = EventSource::new(EventSourceConfig {
        maximum_record_age: Some(Duration::from_secs(60)),
        ..kafka(-1, Some(OnFailure::Sqs))
    });
    for (id, at) in [(1, 0), (2, 30), (3, 100)] {
        aged.append(
            "t-0",
            SourceRecord {
                id,
                appended_at: Duration::from_secs(at),
                payload: id,
            },
        );
    }
    let b = aged
        .poll("t-0", 10, Duration::from_secs(100))
        .expect("batch");
    assert_eq!(b.records[0].id, 3);
    let d = &aged.discarded()[0];
    assert_eq!((d.reason, d.first_id, d.last_id), (GiveUp::RecordAge, 1, 2));
    assert!(d.sent_to_destination);

    let mut trimmed = source(stream(-1, true), "shard-0", 1);
    let late = STREAM_RETENTION + Duration::from_secs(1);
    assert_eq!(trimmed.poll("shard-0", 10, late), None);
    let d = &trimmed.discarded()[0];
    assert_eq!(d.reason, GiveUp::Expired);
    assert!(
        !d.sent_to_destination,
        "expired records reach no destination"
    );
}

#[test]
fn an_invocation_past_the_function_timeout_fails_as_a_whole_and_is_retried() {
    let config = kafka(-1, None);
    assert!(!config.timed_out(Duration::from_secs(60)));
    assert!(config.timed_out(Duration::from_millis(60_001)));
    let mut s = source(config, "t-0", 3);
    let b = poll(&mut s, "t-0", 3);
    // Whatever the response said: the function was stopped.
    s.complete(&b, Outcome::FunctionError);
    assert_eq!(poll(&mut s, "t-0", 3).start, 0);
    assert_eq!(s.stats().retries, 1);
}

#[test]
fn a_partial_response_is_ignored_without_report_batch_item_failures() {
    let mut s = source(
        EventSourceConfig {
            report_batch_item_failures: false,
            ..kafka(-1, None)
        },
        "t-0",
        3,
    );
    let b = poll(&mut s, "t-0", 3);
    s.complete(&b, Outcome::FailedFrom(0));
    assert!(s.is_drained());
}

#[test]
fn the_event_sources_are_read_from_the_template() {
    let relay = deployed_relay_source_config();
    assert_eq!(
        relay,
        EventSourceConfig {
            kind: SourceKind::DynamoDbStream,
            batch_size: 100,
            maximum_retry_attempts: -1,
            maximum_record_age: Some(Duration::from_secs(82_800)),
            bisect_batch_on_function_error: true,
            report_batch_item_failures: true,
            on_failure: Some(OnFailure::Sqs),
            function_timeout: Duration::from_secs(30),
        }
    );
    let ingest = deployed_ingest_source_config();
    assert_eq!(ingest.kind, SourceKind::Kafka);
    assert_eq!(ingest.batch_size, 100);
    assert!(ingest.report_batch_item_failures);
    assert_eq!(ingest.function_timeout, Duration::from_secs(60));
}

/// The records of one batch in one partition, in production order.
fn one_batch_partition() -> Vec<MskRecord> {
    let batch = "storm-b0";
    let essays = ["storm-e0", "storm-e1"];
    let mut records = vec![ev::registration(
        Uuid::from_u128(1),
        batch,
        "storm-t0",
        &essays,
        at_minute(0.0),
    )];
    for (i, essay) in essays.iter().enumerate() {
        records.push(ev::slot_assigned(
            Uuid::from_u128(10 + i as u128),
            batch,
            essay,
            at_minute(1.0),
        ));
    }
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| MskRecord::new(r.topic, 0, i as i64, r.value))
        .collect()
}

/// Drive the real ingest handler through a throttle storm: every store call fails for the
/// first `storm` invocations (longer than the handler's own retries), then the store heals.
/// Returns the event source and the store.
async fn through_a_throttle_storm(
    config: EventSourceConfig,
    storm: u32,
) -> (EventSource<MskRecord>, usize, bool, usize) {
    const ATTEMPTS: u32 = 2;
    let records = one_batch_partition();
    let mut source = EventSource::new(config);
    for r in &records {
        source.append(
            &r.partition_key(),
            SourceRecord {
                id: r.offset,
                appended_at: Duration::ZERO,
                payload: r.clone(),
            },
        );
    }
    // Each invocation makes ATTEMPTS loads per partition (its first record), all throttled.
    let partitions = source.pending().len() as u32;
    let store = FlakyStore::new(InMemoryStore::new()).fail_loads(storm * ATTEMPTS * partitions);
    let deps = Deps::new(store, MemoryDeadLetters::default())
        .with_clock(fixed_clock())
        .with_settings(HandlerSettings {
            partition_concurrency: 1,
            retry: RetryPolicy {
                max_attempts: ATTEMPTS,
                base_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
                budget: Duration::from_secs(60),
            },
            attempt_timeout: Duration::from_secs(1),
            deadline_reserve: Duration::ZERO,
        });
    let mut now = Duration::ZERO;
    let mut invocations = 0;
    while !source.is_drained() {
        // One invocation over every partition with records left.
        let batches: Vec<Batch<MskRecord>> = source
            .pending()
            .iter()
            .filter_map(|lane| source.poll(lane, 100, now))
            .collect();
        let event: Vec<MskRecord> = batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.payload.clone()))
            .collect();
        let report = ingest::handler::process_event(&deps, msk_event(&event), None).await;
        invocations += 1;
        let failures = report
            .response()
            .batch_item_failures
            .into_iter()
            .map(|f| (f.item_identifier.partition, f.item_identifier.offset));
        let (outcomes, problems) = kafka_outcome(&batches.iter().collect::<Vec<_>>(), failures);
        assert!(problems.is_empty(), "{problems:?}");
        for (batch, outcome) in batches.iter().zip(outcomes) {
            source.complete(batch, outcome);
        }
        now += Duration::from_secs(1);
        assert!(invocations < 1_000, "not drained");
    }
    let store = deps.store.inner();
    let applied = store.aggregate("storm-b0").is_some();
    (source, store.marker_count(), applied, records.len())
}

#[tokio::test(start_paused = true)]
async fn a_throttle_storm_longer_than_ten_retries_skips_records_with_the_current_msk_settings() {
    // The MSK settings of template.yaml before i11-retries: MaximumRetryAttempts -1 and an
    // SQS on-failure destination = Lambda gives up after 10 retries.
    let current = kafka(-1, Some(OnFailure::Sqs));
    let (source, markers, applied, records) = through_a_throttle_storm(current, 15).await;
    let skipped = source.discarded();
    assert!(!skipped.is_empty());
    for d in skipped {
        assert_eq!(d.reason, GiveUp::Retries);
        assert!(d.sent_to_destination);
        assert_eq!(d.records, None, "the destination has offsets only");
    }
    assert_eq!(skipped.iter().map(|d| d.count).sum::<usize>(), records);
    assert_eq!(markers, 0, "the skipped records were never applied");
    assert!(!applied);
}

/// The MSK settings `template.yaml` deploys (read from it): the storm skips nothing.
#[tokio::test(start_paused = true)]
async fn the_deployed_msk_settings_lose_nothing_in_a_throttle_storm() {
    let (source, markers, applied, records) =
        through_a_throttle_storm(deployed_ingest_source_config(), 15).await;
    assert!(source.discarded().is_empty(), "{:?}", source.discarded());
    assert_eq!(markers, records);
    assert!(applied);
}

#[tokio::test(start_paused = true)]
async fn the_same_storm_loses_nothing_with_infinite_retries_and_no_destination() {
    let fixed = kafka(-1, None);
    let (source, markers, applied, records) = through_a_throttle_storm(fixed, 15).await;
    assert!(source.discarded().is_empty(), "{:?}", source.discarded());
    assert_eq!(markers, records);
    assert!(applied);
}
