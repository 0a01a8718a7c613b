//! The facts timer over DynamoDB on the local AWS-API server: a batch BOS reported complete is
//! in the `by_facts_wait` index (written in the same transaction as the batch) until its
//! results-ready event goes out; the timer finds it past the grace period, emits it once with
//! the missing facts recorded, and it leaves the index. Late facts are stored, not re-emitted.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ras_domain::contracts::{PhaseName, PublishedTopic, Timestamp};
use ras_domain::ids;
use ras_domain::model::{MissingFacts, MissingResult};
use ras_domain::ports::{AggregateStore, AwaitingFactsIndex};
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::events::{self as ev, at_minute, TestRecord};
use ras_tests::huleedu::Scope;
use ras_tests::ingest_support::IngestEnv;
use timer::{sweep, TimerSettings};

fn plus(ts: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_unix_micros(ts.unix_micros() + seconds * 1_000_000).unwrap()
}

async fn feed(store: &impl AggregateStore, record: &TestRecord, now: Timestamp) {
    let consumed = ConsumedRecord {
        topic: record.topic,
        value: &record.value,
        record_time: now,
    };
    process_record(store, consumed, now)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", record.topic));
}

#[tokio::test]
async fn an_overdue_batch_is_emitted_once_with_its_gap_recorded() {
    let env = IngestEnv::new().await;
    let store = env.store();
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let (e1, e2) = (scope.essay(1), scope.essay(2));
    let now = Timestamp::parse("2026-12-06T10:00:00Z").unwrap();
    let id = |n| scope.event_id(n);
    feed(
        &store,
        &ev::registration(id(1), b, "teacher-t", &[&e1, &e2], at_minute(0.0)),
        now,
    )
    .await;
    feed(
        &store,
        &ev::spellcheck_result(id(2), b, &e1, "spellchecked_success", at_minute(2.0)),
        now,
    )
    .await;
    feed(
        &store,
        &ev::phase_outcome(
            id(3),
            b,
            "spellcheck",
            "completed_successfully",
            &[&e1, &e2],
            &[],
            at_minute(5.0),
        ),
        now,
    )
    .await;
    feed(
        &store,
        &ev::pipeline_completed(
            id(4),
            b,
            "completed_successfully",
            &["spellcheck"],
            2,
            0,
            at_minute(9.0),
        ),
        now,
    )
    .await;

    // In the index from the commit that made it wait; not yet overdue.
    assert_eq!(
        store.awaiting_since(now, 10).await.unwrap(),
        vec![b.to_string()]
    );
    assert!(store
        .awaiting_since(plus(now, -1), 10)
        .await
        .unwrap()
        .is_empty());
    let settings = TimerSettings::default();
    let early = sweep(&store, plus(now, 899), &settings, None)
        .await
        .unwrap();
    assert_eq!((early.overdue, early.emitted.len()), (0, 0));
    assert!(env.aws.outbox_of_batch(b).await.is_empty());

    let report = sweep(&store, plus(now, 900), &settings, None)
        .await
        .unwrap();
    let missing = MissingFacts {
        pipeline_completion: false,
        phases: vec![],
        essays: vec![MissingResult {
            phase: PhaseName::Spellcheck,
            essay_id: e2.clone(),
        }],
    };
    assert_eq!(report.emitted, vec![(b.to_string(), missing.clone())]);
    assert_eq!(report.published, 2);
    let ready = ids::results_ready_event_id(b);
    let outbox: Vec<_> = env
        .aws
        .outbox_of_batch(b)
        .await
        .into_iter()
        .map(|o| o.event_id)
        .collect();
    assert_eq!(outbox, [ready, ids::notification_event_id(ready)]);
    let agg = store.load(b).await.unwrap();
    assert_eq!(agg.root.results_ready_missing, Some(missing.clone()));
    assert_eq!(agg.root.awaiting_facts_since, None);
    assert!(
        store
            .awaiting_since(plus(now, 3600), 10)
            .await
            .unwrap()
            .is_empty(),
        "left the index"
    );

    // The late fact is stored and served; nothing is published again.
    feed(
        &store,
        &ev::spellcheck_result(id(5), b, &e2, "spellchecked_success", at_minute(2.5)),
        plus(now, 1000),
    )
    .await;
    let again = sweep(&store, plus(now, 1800), &settings, None)
        .await
        .unwrap();
    assert!(again.emitted.is_empty());
    let agg = store.load(b).await.unwrap();
    assert!(agg.essays[&e2].spellcheck.is_some());
    assert_eq!(agg.root.results_ready_missing, Some(missing));
    let published = env.aws.outbox_of_batch(b).await;
    assert_eq!(published.len(), 2);
    assert!(published
        .iter()
        .any(|o| o.topic == PublishedTopic::BatchResultsReady.name()));
    env.cleanup().await;
}

/// `events/timer/scheduled.json` (for `cargo lambda invoke timer`) goes through the handler.
#[tokio::test]
async fn the_sample_event_runs_the_timer() {
    let env = IngestEnv::new().await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/timer/scheduled.json");
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let report = timer::handle_event(
        &env.store(),
        &event,
        Timestamp::now(),
        &TimerSettings::default(),
        None,
    )
    .await
    .unwrap();
    assert!(report.failed.is_empty() && report.emitted.is_empty());
    env.cleanup().await;
}
