//! Duplicates through the ingest handler against the local AWS-API server: the same record
//! twice (in one event and redelivered), the same event re-published with a new event id, and
//! an event id reused for another payload (a conflict: dead-lettered).
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ingest::handle;
use ingest::handler::{process_event, Disposition};
use ras_aws::dynamo::DynamoStore;
use ras_domain::contracts::CourseCode;
use ras_domain::ids;
use ras_domain::ports::AggregateStore;
use ras_domain::service::RecordOutcome;
use ras_domain::testing::events::{self as ev, at_minute};
use ras_tests::huleedu::{Scope, CJ_RESULT, REGISTERED};
use ras_tests::ingest_support::{dispositions, IngestEnv};
use ras_tests::msk::{msk_event, MskBatch, MskRecord};

async fn marker_exists(store: &DynamoStore, event_key: &str) -> bool {
    store
        .get_marker(event_key)
        .await
        .expect("GetItem marker")
        .is_some()
}

#[tokio::test]
async fn the_same_record_twice_is_applied_once_and_counted_as_duplicate() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let scope = Scope::new();
    let registration = scope.fixture(REGISTERED);
    let cj = scope.fixture(CJ_RESULT);

    // Twice within one event (a producer retry: same bytes at two offsets), then the whole
    // event redelivered (Lambda retrying after a crash).
    let records = [
        MskRecord::new(REGISTERED, 0, 5, registration.clone()),
        MskRecord::new(REGISTERED, 0, 6, registration.clone()),
        MskRecord::new(CJ_RESULT, 3, 40, cj.clone()),
        MskRecord::new(CJ_RESULT, 3, 41, cj.clone()),
    ];
    let report = process_event(&deps, msk_event(&records), None).await;
    assert!(report.response().is_success());
    let kinds: Vec<String> = dispositions(&report).into_iter().map(|d| d.2).collect();
    // Partitions in key order: the CJ result's, then the registration's.
    assert_eq!(kinds, ["applied", "duplicate", "applied", "duplicate"]);
    let stats = &report.metrics.topics;
    assert_eq!(stats[REGISTERED].processed, 1);
    assert_eq!(stats[REGISTERED].duplicate, 1);
    assert_eq!(stats[CJ_RESULT].processed, 1);
    assert_eq!(stats[CJ_RESULT].duplicate, 1);
    let state = env.store().load(&scope.batch).await.expect("load");
    let outbox = env.aws.outbox_of_batch(&scope.batch).await;
    assert_eq!(outbox.len(), 2, "assessment completed + notification, once");

    let again = process_event(&deps, msk_event(&records), None).await;
    assert!(again.response().is_success());
    assert!(again.records().all(|r| matches!(
        r.disposition,
        Disposition::Done(RecordOutcome::Duplicate { .. })
    )));
    assert_eq!(again.metrics.total().duplicate, 4);
    let mut after = env.store().load(&scope.batch).await.expect("load");
    assert_eq!(after.root.version, state.root.version, "nothing written");
    after.root.version = state.root.version;
    assert_eq!(after, state);
    assert_eq!(env.aws.outbox_of_batch(&scope.batch).await, outbox);
    assert!(env.dead_letters().await.is_empty());
    env.cleanup().await;
}

/// A producer re-publishing the same event with a new envelope `event_id`: a new idempotency
/// key, but the facts are known already. Nothing is published again, and the state differs at
/// most in which record a fact is attributed to (facts of equal event time are ordered by
/// their idempotency key, so a re-published copy may become the fact's provenance).
#[tokio::test]
async fn the_same_event_republished_with_a_new_event_id_adds_nothing_and_publishes_nothing() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let essays = [scope.essay(1), scope.essay(2)];
    let e: Vec<&str> = essays.iter().map(String::as_str).collect();
    let registration = ev::registration(scope.event_id(1), b, &scope.user, &e, at_minute(0.0));
    let cj = ev::assessment_result(
        scope.event_id(2),
        b,
        &scope.job,
        &[(e[0], 1, 0.5, "B"), (e[1], 2, -0.5, "D")],
        false,
        at_minute(10.0),
    );
    let slot = ev::slot_assigned(scope.event_id(3), b, e[0], at_minute(1.0));
    let mut batch = MskBatch::new();
    for r in [&registration, &cj, &slot] {
        batch.push(r.topic, 0, r.value.clone());
    }
    assert!(handle(&deps, batch.event()).await.is_success());
    let before = env.store().load(b).await.expect("load");
    let outbox = env.aws.outbox_of_batch(b).await;
    assert_eq!(outbox.len(), 2);

    let mut again = MskBatch::new().starting_at(REGISTERED, 0, 200);
    let republished = [
        registration.republished(scope.event_id(101)),
        cj.republished(scope.event_id(102)),
        slot.republished(scope.event_id(103)),
    ];
    for r in &republished {
        again.push(r.topic, 0, r.value.clone());
    }
    let report = process_event(&deps, again.event(), None).await;
    assert!(report.response().is_success());
    for r in report.records() {
        match &r.disposition {
            Disposition::Done(RecordOutcome::Applied { published, .. }) => {
                assert_eq!(*published, 0, "{}: nothing published again", r.topic)
            }
            other => panic!("{}: {other:?}", r.topic),
        }
    }
    let normalized = |agg: &ras_domain::model::BatchAggregate| {
        let agg = agg.clone().without_versions();
        let mut text = serde_json::to_string(&agg).expect("JSON");
        for n in [1, 2, 3] {
            let copy = scope.event_id(100 + n).to_string();
            text = text.replace(&copy, &scope.event_id(n).to_string());
        }
        text
    };
    let after = env.store().load(b).await.expect("load");
    assert_eq!(normalized(&after), normalized(&before), "the same facts");
    assert_eq!(env.aws.outbox_of_batch(b).await, outbox);
    for n in [101, 102, 103] {
        let key = format!("event:{}", scope.event_id(n));
        assert!(marker_exists(&env.store(), &key).await, "{key}");
    }
    env.cleanup().await;
}

/// An event id reused for another payload is never applied: dead-lettered as a conflict, with
/// its key, and the partition moves on.
#[tokio::test]
async fn the_same_event_id_with_another_payload_is_dead_lettered_as_a_conflict() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let original = ev::registration(
        scope.event_id(1),
        b,
        &scope.user,
        &[&scope.essay(1)],
        at_minute(0.0),
    );
    let mut altered = original.json();
    altered["data"]["course_code"] = "SV1".into();
    let altered = serde_json::to_vec(&altered).expect("JSON");
    let other = scope.another_batch();
    let next = ev::registration(
        scope.event_id(2),
        &other.batch,
        &scope.user,
        &[&scope.essay(2)],
        at_minute(0.0),
    );

    let mut batch = MskBatch::new();
    batch.push(REGISTERED, 0, original.value.clone());
    let conflict_offset = batch.push(REGISTERED, 0, altered.clone());
    batch.push(REGISTERED, 0, next.value.clone());
    let report = process_event(&deps, batch.event(), None).await;
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    let letters = env.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0].letter;
    assert_eq!(letter.error_kind, "payload_conflict");
    assert_eq!(letter.offset, conflict_offset);
    assert_eq!(
        letter.event_key.as_deref(),
        Some(format!("event:{}", scope.event_id(1)).as_str())
    );
    assert!(
        letter
            .error_message
            .contains(&ids::payload_hash(&original.value)),
        "{}",
        letter.error_message
    );
    let agg = env.store().load(b).await.expect("load");
    let registration = agg.root.registration.as_ref().expect("registered");
    assert_eq!(
        registration.course_code,
        CourseCode::Eng5,
        "the original stays"
    );
    let next_batch = env.store().load(&other.batch).await.expect("load");
    assert!(next_batch.is_registered(), "the next record was applied");
    env.cleanup().await;
}
