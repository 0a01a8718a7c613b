//! Whole batches through the ingest handler against the local AWS-API server: the full
//! lifecycle in order and shuffled (same final state, same outbox events), a result that
//! arrives before its batch's registration, and a spellcheck-only pipeline.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ingest::handle;
use ingest::handler::{process_event, Disposition};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use ras_domain::contracts::{BatchStatus, PublishedTopic};
use ras_domain::ids;
use ras_domain::model::BatchAggregate;
use ras_domain::ports::AggregateStore;
use ras_domain::service::RecordOutcome;
use ras_domain::testing::events::{self as ev, at_minute, TestRecord};
use ras_tests::huleedu::Scope;
use ras_tests::ingest_support::{dispositions, IngestEnv};
use ras_tests::local_aws::SerializedCommits;
use ras_tests::msk::{MskBatch, MskRecord};
use serde_json::Value;
use std::collections::BTreeMap;

/// Slot and spellcheck topics have two partitions (keyed by essay); the others one.
fn partition_of(record: &TestRecord, essay_index: Option<usize>) -> i64 {
    match (record.topic, essay_index) {
        ("huleedu.els.essay.slot.assigned.v1" | "huleedu.essay.spellcheck.results.v1", Some(i)) => {
            (i % 2) as i64
        }
        _ => 0,
    }
}

/// The records of a complete batch: registration, slots, spellcheck results (the third one
/// failed), the spellcheck phase outcome, the CJ result (with an anchor), the CJ phase outcome
/// and BOS's pipeline completion. Each with its essay index, if it is about one essay.
fn full_lifecycle(scope: &Scope) -> Vec<(TestRecord, Option<usize>)> {
    let b = scope.batch.as_str();
    let essays: Vec<String> = (1..=3).map(|n| scope.essay(n)).collect();
    let e: Vec<&str> = essays.iter().map(String::as_str).collect();
    let id = |n| scope.event_id(n);
    vec![
        (
            ev::registration(id(1), b, &scope.user, &e, at_minute(0.0)),
            None,
        ),
        (ev::slot_assigned(id(2), b, e[0], at_minute(1.0)), Some(0)),
        (ev::slot_assigned(id(3), b, e[1], at_minute(1.0)), Some(1)),
        (ev::slot_assigned(id(4), b, e[2], at_minute(1.0)), Some(2)),
        (
            ev::spellcheck_result(id(5), b, e[0], "spellchecked_success", at_minute(2.0)),
            Some(0),
        ),
        (
            ev::spellcheck_result(id(6), b, e[1], "spellchecked_success", at_minute(2.5)),
            Some(1),
        ),
        (
            ev::spellcheck_result(id(7), b, e[2], "spellcheck_failed", at_minute(3.0)),
            Some(2),
        ),
        (
            ev::phase_outcome(
                id(8),
                b,
                "spellcheck",
                "completed_with_failures",
                &e[..2],
                &e[2..],
                at_minute(5.0),
            ),
            None,
        ),
        (
            ev::assessment_result(
                id(9),
                b,
                &scope.job,
                &[(e[1], 1, 1.37, "B"), (e[0], 2, -0.21, "C")],
                true,
                at_minute(20.0),
            ),
            None,
        ),
        (
            ev::phase_outcome(
                id(10),
                b,
                "cj_assessment",
                "completed_successfully",
                &e[..2],
                &[],
                at_minute(21.0),
            ),
            None,
        ),
        (
            ev::pipeline_completed(
                id(11),
                b,
                "completed_with_failures",
                &["spellcheck", "cj_assessment"],
                2,
                1,
                at_minute(25.0),
            ),
            None,
        ),
    ]
}

fn msk_record(record: &TestRecord, essay_index: Option<usize>) -> MskRecord {
    MskRecord::new(
        record.topic,
        partition_of(record, essay_index),
        0,
        record.value.clone(),
    )
}

/// A reproducible shuffle: the same seed gives the same order.
fn shuffle<T>(items: &mut [T], seed: u64) {
    items.shuffle(&mut StdRng::seed_from_u64(seed));
}

/// The final state of a batch, as JSON in `target`'s identities, without the versions (they
/// count commits, which legitimately differ between orders).
fn normalized_state(agg: &BatchAggregate, scope: &Scope, target: &Scope) -> Value {
    let agg = agg.clone().without_versions();
    let text = serde_json::to_string(&agg).expect("serialise aggregate");
    serde_json::from_str(&scope.map_to(target, &text)).expect("JSON")
}

/// The paths where two JSON values differ, with both values (for readable failures).
fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (x.get(key), y.get(key));
                let (va, vb) = (va.unwrap_or(&Value::Null), vb.unwrap_or(&Value::Null));
                json_diff(va, vb, &format!("{path}.{key}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                json_diff(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

fn assert_same_json(actual: &Value, expected: &Value, what: &str) {
    let mut diff = Vec::new();
    json_diff(actual, expected, "$", &mut diff);
    assert!(diff.is_empty(), "{what}:\n  {}", diff.join("\n  "));
}

/// One outbox message, in `target`'s identities: what identifies it and where it goes, and
/// its body without correlation ids (the envelope's and the notification's
/// `data.correlation_id` are those of whichever record triggered the emission, which depends
/// on the order).
#[derive(Debug, PartialEq)]
struct Published {
    identity: Value,
    body: Value,
}

async fn normalized_outbox(
    env: &IngestEnv,
    scope: &Scope,
    target: &Scope,
) -> BTreeMap<String, Published> {
    let map = |v: &Value| -> Value {
        serde_json::from_str(&scope.map_to(target, &v.to_string())).expect("JSON")
    };
    let mut out = BTreeMap::new();
    for item in env.aws.outbox_of_batch(&scope.batch).await {
        let identity = serde_json::json!({
            "event_id": item.event_id,
            "topic": item.topic,
            "event_type": item.event_type,
            "destination": item.destination,
            "ordering_key": item.ordering_key,
            "created_at": item.created_at,
            "created_day": item.created_day,
            "batch_id": item.batch_id,
            "expires_at": item.expires_at,
        });
        let mut body: Value = serde_json::from_str(&item.body).expect("body is JSON");
        body["correlation_id"] = Value::Null;
        if body["data"].get("correlation_id").is_some() {
            body["data"]["correlation_id"] = Value::Null;
        }
        let event_id = scope.map_to(target, &item.event_id.to_string());
        let published = Published {
            identity: map(&identity),
            body: map(&body),
        };
        assert!(
            out.insert(event_id, published).is_none(),
            "an outbox message was written twice"
        );
    }
    out
}

/// Null `keys` in a results-ready event's data and in its notification's payload.
fn null_figures(body: &mut Value, keys: &[&str]) {
    let data = &mut body["data"];
    let has_payload = data.get("payload").is_some();
    let targets: Vec<&mut Value> = if has_payload {
        vec![&mut data["payload"]]
    } else {
        vec![data]
    };
    for figures in targets {
        let Some(object) = figures.as_object_mut() else {
            continue;
        };
        for key in keys {
            if *key == "processing_time_seconds" {
                if let Some(phases) = object
                    .get_mut("phase_results")
                    .and_then(Value::as_object_mut)
                {
                    for phase in phases.values_mut() {
                        phase["processing_time_seconds"] = Value::Null;
                    }
                }
            } else if object.contains_key(*key) {
                object.insert((*key).to_string(), Value::Null);
            }
        }
    }
}

/// Durations of a results-ready event: the event is emitted once, when the batch completes,
/// with the event times known then; a per-essay result consumed after completion can still
/// move the stored start of processing (the state converges), not what was published.
const TIMINGS: [&str; 2] = ["processing_duration_seconds", "processing_time_seconds"];

/// What a results-ready event says about the batch at the moment it completed.
const COMPLETION_FIGURES: [&str; 6] = [
    "total_essays",
    "completed_essays",
    "phase_results",
    "processing_duration_seconds",
    "processing_time_seconds",
    "message",
];

/// Same events (ids, topics, destinations, ordering keys, timestamps: each exactly once), same
/// bodies but for correlation ids and completion timings.
///
/// With `completed_last` false, BOS's pipeline completion may be consumed before per-essay
/// results: the batch completes on it (BOS is authoritative, SPEC §3.6/§3.8) and results-ready
/// is emitted — once — with the figures known at that moment (attached essays, phase
/// summaries), which later records cannot change. Then those figures are not compared.
fn assert_same_outbox(
    actual: &BTreeMap<String, Published>,
    expected: &BTreeMap<String, Published>,
    in_order: &Scope,
    completed_last: bool,
    what: &str,
) {
    let ids: Vec<&String> = actual.keys().collect();
    let expected_ids: Vec<&String> = expected.keys().collect();
    assert_eq!(ids, expected_ids, "{what}: not the same events");
    let ready = ids::results_ready_event_id(&in_order.batch);
    let ready_ids = [
        ready.to_string(),
        ids::notification_event_id(ready).to_string(),
    ];
    for (id, published) in actual {
        let wanted = &expected[id];
        assert_eq!(published.identity, wanted.identity, "{what}: {id}");
        let mut body = published.body.clone();
        let mut wanted_body = wanted.body.clone();
        if ready_ids.contains(id) {
            let ignored: &[&str] = if completed_last {
                &TIMINGS
            } else {
                &COMPLETION_FIGURES
            };
            null_figures(&mut body, ignored);
            null_figures(&mut wanted_body, ignored);
        }
        assert_same_json(&body, &wanted_body, &format!("{what}: body of {id}"));
    }
}

/// Run `records` through the handler in invocations of `chunk` records (partitions of one
/// invocation are processed concurrently: several writers of one batch at once).
async fn run_in_invocations(
    deps: &ingest::Deps<
        SerializedCommits<ras_aws::dynamo::DynamoStore>,
        ras_aws::dead_letter::SqsDeadLetterQueue,
    >,
    records: &[(TestRecord, Option<usize>)],
    chunk: usize,
) {
    for part in records.chunks(chunk) {
        let mut batch = MskBatch::new();
        for (record, essay) in part {
            batch.push_record(msk_record(record, *essay));
        }
        let report = process_event(deps, batch.event(), None).await;
        assert!(
            report.response().is_success(),
            "{:?}",
            dispositions(&report)
        );
        assert!(
            report.records().all(|r| matches!(
                r.disposition,
                Disposition::Done(RecordOutcome::Applied { .. })
            )),
            "{:?}",
            dispositions(&report)
        );
    }
}

#[tokio::test]
async fn full_lifecycle_in_order_and_shuffled_gives_the_same_state_and_events() {
    let env = IngestEnv::new().await;
    let deps = env.deps();

    // In order, one invocation per record.
    let in_order = Scope::new();
    for (record, essay) in full_lifecycle(&in_order) {
        let mut batch = MskBatch::new();
        batch.push_record(msk_record(&record, essay));
        let response = handle(&deps, batch.event()).await;
        assert!(response.is_success(), "{}: {response:?}", record.topic);
    }
    let expected_agg = env.store().load(&in_order.batch).await.expect("load");
    assert_eq!(
        expected_agg.root.derived.overall_status,
        Some(BatchStatus::CompletedWithFailures)
    );
    let expected_state = normalized_state(&expected_agg, &in_order, &in_order);
    let expected_outbox = normalized_outbox(&env, &in_order, &in_order).await;
    assert_eq!(
        expected_outbox.len(),
        4,
        "assessment completed, results ready + notifications"
    );

    // Shuffled, in invocations of four records spread over the topics' partitions. Some
    // shuffles keep BOS's pipeline completion for the end, the others put it anywhere.
    for (seed, completed_last) in [
        (0x5eed_u64, true),
        (0xc0ffee, true),
        (0xdecaf, false),
        (0xbadc0ffee, false),
    ] {
        let scope = Scope::new();
        let mut records = full_lifecycle(&scope);
        if completed_last {
            let completion = records.pop().expect("pipeline completed");
            shuffle(&mut records, seed);
            run_in_invocations(&deps, &records, 4).await;
            run_in_invocations(&deps, &[completion], 1).await;
        } else {
            shuffle(&mut records, seed);
            run_in_invocations(&deps, &records, 4).await;
        }
        let what = format!("seed {seed:#x}");
        let agg = env.store().load(&scope.batch).await.expect("load");
        assert_same_json(
            &normalized_state(&agg, &scope, &in_order),
            &expected_state,
            &format!("{what}: final state differs (actual != in order)"),
        );
        let outbox = normalized_outbox(&env, &scope, &in_order).await;
        assert_same_outbox(&outbox, &expected_outbox, &in_order, completed_last, &what);
    }
    env.cleanup().await;
}

/// SPEC §3.5: results that arrive before their batch's registration are kept and appear once
/// it registers; the CJ job's event is emitted then, once.
#[tokio::test]
async fn results_before_registration_are_kept_and_appear_once_it_registers() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let (e1, e2) = (scope.essay(1), scope.essay(2));

    let mut early = MskBatch::new();
    early.push_record(msk_record(
        &ev::spellcheck_result(
            scope.event_id(5),
            b,
            &e1,
            "spellchecked_success",
            at_minute(2.0),
        ),
        Some(0),
    ));
    early.push_record(msk_record(
        &ev::assessment_result(
            scope.event_id(9),
            b,
            &scope.job,
            &[(e1.as_str(), 1, 0.9, "A"), (e2.as_str(), 2, 0.1, "C")],
            false,
            at_minute(20.0),
        ),
        None,
    ));
    assert!(handle(&deps, early.event()).await.is_success());
    let agg = env.store().load(b).await.expect("load");
    assert!(!agg.is_registered());
    assert!(agg.essays[&e1].spellcheck.is_some(), "kept, not dropped");
    assert!(agg.cj_jobs.contains_key(&scope.job));
    assert!(
        env.aws.outbox_of_batch(b).await.is_empty(),
        "nothing to publish yet"
    );

    let mut registration = MskBatch::new();
    registration.push_record(msk_record(
        &ev::registration(
            scope.event_id(1),
            b,
            &scope.user,
            &[&e1, &e2],
            at_minute(0.0),
        ),
        None,
    ));
    assert!(handle(&deps, registration.event()).await.is_success());
    let agg = env.store().load(b).await.expect("load");
    assert!(agg.is_registered());
    assert_eq!(
        agg.root.registration.as_ref().map(|r| r.user_id.as_str()),
        Some(scope.user.as_str())
    );
    assert!(agg.essays[&e1].spellcheck.is_some());
    let completed = ids::assessment_completed_event_id(b, &scope.job);
    let outbox: Vec<_> = env
        .aws
        .outbox_of_batch(b)
        .await
        .iter()
        .map(|o| o.event_id)
        .collect();
    assert_eq!(outbox, [completed, ids::notification_event_id(completed)]);
    env.cleanup().await;
}

/// A batch that only ran spellcheck completes on BOS's pipeline completion, and its summary
/// covers spellcheck only.
#[tokio::test]
async fn spellcheck_only_pipeline_reaches_completion() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let (e1, e2) = (scope.essay(1), scope.essay(2));
    let steps = [
        vec![(
            ev::registration(
                scope.event_id(1),
                b,
                &scope.user,
                &[&e1, &e2],
                at_minute(0.0),
            ),
            None,
        )],
        vec![
            (
                ev::spellcheck_result(
                    scope.event_id(5),
                    b,
                    &e1,
                    "spellchecked_success",
                    at_minute(2.0),
                ),
                Some(0),
            ),
            (
                ev::spellcheck_result(
                    scope.event_id(6),
                    b,
                    &e2,
                    "spellchecked_success",
                    at_minute(2.0),
                ),
                Some(1),
            ),
            (
                ev::phase_outcome(
                    scope.event_id(8),
                    b,
                    "spellcheck",
                    "completed_successfully",
                    &[&e1, &e2],
                    &[],
                    at_minute(4.0),
                ),
                None,
            ),
        ],
    ];
    for step in &steps {
        let mut batch = MskBatch::new();
        for (record, essay) in step {
            batch.push_record(msk_record(record, *essay));
        }
        assert!(handle(&deps, batch.event()).await.is_success());
    }
    assert!(
        env.aws.outbox_of_batch(b).await.is_empty(),
        "CJ may still follow: not complete before BOS says so"
    );
    let mut done = MskBatch::new();
    done.push_record(msk_record(
        &ev::pipeline_completed(
            scope.event_id(11),
            b,
            "completed_successfully",
            &["spellcheck"],
            2,
            0,
            at_minute(5.0),
        ),
        None,
    ));
    assert!(handle(&deps, done.event()).await.is_success());

    let agg = env.store().load(b).await.expect("load");
    assert_eq!(
        agg.root.derived.overall_status,
        Some(BatchStatus::CompletedSuccessfully)
    );
    let outbox = env.aws.outbox_of_batch(b).await;
    let ready = ids::results_ready_event_id(b);
    let ids: Vec<_> = outbox.iter().map(|o| o.event_id).collect();
    assert_eq!(ids, [ready, ids::notification_event_id(ready)]);
    assert_eq!(outbox[0].topic, PublishedTopic::BatchResultsReady.name());
    let body: Value = serde_json::from_str(&outbox[0].body).expect("JSON");
    let phases: Vec<&String> = body["data"]["phase_results"]
        .as_object()
        .expect("phase_results")
        .keys()
        .collect();
    assert_eq!(phases, ["spellcheck"]);
    assert_eq!(body["data"]["overall_status"], "completed_successfully");
    assert_eq!(body["data"]["processing_duration_seconds"], 180.0);
    env.cleanup().await;
}
