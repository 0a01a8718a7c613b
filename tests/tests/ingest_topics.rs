//! The ingest handler, entry point to DynamoDB: each of the six consumed topics, from the
//! HuleEdu fixtures wrapped into MSK events (real Kafka event JSON), and the sample events in
//! `events/ingest/`.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ingest::handle;
use ingest::handler::{process_event, Disposition};
use ras_domain::contracts::{BatchStatus, PhaseName, ProcessingStage, PublishedTopic};
use ras_domain::ids;
use ras_domain::model::BatchAggregate;
use ras_domain::ports::{AggregateStore, Destination};
use ras_domain::service::RecordOutcome;
use ras_tests::huleedu::*;
use ras_tests::ingest_support::{dispositions, IngestEnv};
use ras_tests::msk::{kafka_event, msk_event_json, MskRecord, MskValue};
use serde_json::Value;
use std::path::PathBuf;

/// The fixture of `topic` in `scope` as a one-record MSK event (JSON), with the producer's key.
fn fixture_event(scope: &Scope, topic: &str, offset: i64) -> Value {
    let mut record = MskRecord::new(topic, 0, offset, scope.fixture(topic));
    if let Some(key) = scope.fixture_key(topic) {
        record = record.with_key(key);
    }
    msk_event_json(&[record])
}

/// Run `topics` (in this order, one invocation each) through the handler entry point.
async fn feed(env: &IngestEnv, scope: &Scope, topics: &[&str]) {
    let deps = env.deps();
    for (i, topic) in topics.iter().enumerate() {
        let json = fixture_event(scope, topic, 10 + i as i64);
        let response = handle(&deps, kafka_event(&json)).await;
        assert!(
            response.is_success(),
            "{topic}: {:?}",
            response.batch_item_failures
        );
    }
}

async fn aggregate(env: &IngestEnv, scope: &Scope) -> BatchAggregate {
    env.store().load(&scope.batch).await.expect("load batch")
}

#[tokio::test]
async fn batch_essays_registered() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    feed(&env, &scope, &[REGISTERED]).await;
    let agg = aggregate(&env, &scope).await;
    let registration = agg.root.registration.as_ref().expect("registered");
    assert_eq!(registration.user_id, scope.user);
    assert_eq!(registration.essay_ids, scope.fixture_essays());
    assert_eq!(registration.essay_count, 3);
    assert_eq!(
        registration.provenance.event_key,
        format!("event:{}", scope.event_id(1001))
    );
    assert_eq!(
        agg.root.derived.overall_status,
        Some(BatchStatus::AwaitingContentValidation)
    );
    assert_eq!(agg.root.version, 1);
    assert!(env.aws.outbox_of_batch(&scope.batch).await.is_empty());
    assert!(env.dead_letters().await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn essay_slot_assigned() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    feed(&env, &scope, &[REGISTERED, SLOT_ASSIGNED]).await;
    let agg = aggregate(&env, &scope).await;
    let essay = &agg.essays[&scope.fixture_essays()[0]];
    let slot = essay.slot.as_ref().expect("slot recorded");
    assert_eq!(
        slot.original_file_name,
        "\u{c5}sa \u{d6}berg \u{2013} uppsats.docx"
    );
    assert_eq!(slot.text_storage_id, "text-storage-001");
    assert_eq!(essay.batch_id, scope.batch);
    env.cleanup().await;
}

#[tokio::test]
async fn essay_spellcheck_results() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    feed(&env, &scope, &[REGISTERED, SPELLCHECK]).await;
    let agg = aggregate(&env, &scope).await;
    let spellcheck = agg.essays[&scope.fixture_essays()[0]]
        .spellcheck
        .as_ref()
        .expect("spellcheck recorded");
    assert_eq!(spellcheck.stage, ProcessingStage::Completed);
    assert_eq!(spellcheck.corrections_made, 7);
    assert_eq!(
        agg.root.derived.overall_status,
        Some(BatchStatus::ProcessingPipelines),
        "first phase signal"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn els_batch_phase_outcome() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    feed(&env, &scope, &[REGISTERED, PHASE_OUTCOME]).await;
    let agg = aggregate(&env, &scope).await;
    let phase = &agg.phases[&PhaseName::CjAssessment];
    let essays = scope.fixture_essays();
    assert_eq!(phase.processed_essay_ids, essays[..2].to_vec());
    assert_eq!(phase.failed_essay_ids, essays[2..].to_vec());
    env.cleanup().await;
}

#[tokio::test]
async fn assessment_result_published() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    feed(&env, &scope, &[REGISTERED, CJ_RESULT]).await;
    let agg = aggregate(&env, &scope).await;
    let job = &agg.cj_jobs[&scope.job];
    assert_eq!(job.result.essay_results.len(), 3, "anchors kept");
    assert!(job.assessment_completed.is_some());

    let outbox = env.aws.outbox_of_batch(&scope.batch).await;
    let completed_id = ids::assessment_completed_event_id(&scope.batch, &scope.job);
    let topics: Vec<(&str, Destination, &str)> = outbox
        .iter()
        .map(|o| (o.topic.as_str(), o.destination, o.ordering_key.as_str()))
        .collect();
    assert_eq!(
        topics,
        [
            (
                PublishedTopic::BatchAssessmentCompleted.name(),
                Destination::Events,
                scope.batch.as_str()
            ),
            (
                PublishedTopic::TeacherNotificationRequested.name(),
                Destination::Notifications,
                scope.user.as_str()
            ),
        ]
    );
    assert_eq!(outbox[0].event_id, completed_id);
    assert_eq!(outbox[1].event_id, ids::notification_event_id(completed_id));
    let body: Value = serde_json::from_str(&outbox[0].body).unwrap();
    assert_eq!(body["event_id"], completed_id.to_string());
    assert_eq!(body["event_timestamp"], "2025-11-27T11:00:00Z");
    assert_eq!(outbox[0].created_at, "2025-11-27T11:00:00.000000Z");
    assert_eq!(body["data"]["assessment_job_id"], scope.job.as_str());
    env.cleanup().await;
}

#[tokio::test]
async fn batch_pipeline_completed() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    feed(&env, &scope, &[REGISTERED, PIPELINE_COMPLETED]).await;
    let agg = aggregate(&env, &scope).await;
    let completion = agg
        .root
        .pipeline_completion
        .as_ref()
        .expect("BOS completion");
    assert_eq!(completion.final_status, BatchStatus::CompletedWithFailures);
    assert_eq!(
        agg.root.derived.overall_status,
        Some(BatchStatus::CompletedWithFailures)
    );
    // BOS's report overtook every fact it implies: results ready waits for the phases it
    // lists (and is in the facts timer's index meanwhile).
    assert_eq!(agg.root.results_ready, None);
    assert!(agg.root.awaiting_facts_since.is_some());
    assert_eq!(
        ras_domain::projection::missing_facts(&agg).phases,
        [PhaseName::Spellcheck, PhaseName::CjAssessment]
    );
    assert!(env.aws.outbox_of_batch(&scope.batch).await.is_empty());
    env.cleanup().await;
}

fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/ingest")
}

/// A fixture record as in the samples: partition 0 of its topic, the producer's key.
fn sample_record(topic: &str, partition: i64, offset: i64) -> MskRecord {
    let mut record = MskRecord::new(topic, partition, offset, original_fixture(topic));
    if let Some(key) = original_fixture_key(topic) {
        record = record.with_key(key.into_bytes());
    }
    record
}

/// The sample events of `events/ingest/`, built from the HuleEdu fixtures.
fn sample_events() -> Vec<(String, Value)> {
    let mut samples = Vec::new();
    for (i, topic) in CONSUMED_TOPICS.iter().enumerate() {
        let record = sample_record(topic, 0, 1_000 + i as i64);
        samples.push((format!("{topic}.json"), msk_event_json(&[record])));
    }
    // The whole batch: one partition per topic (processed concurrently, in any order).
    let mut lifecycle: Vec<MskRecord> = CONSUMED_TOPICS
        .iter()
        .enumerate()
        .map(|(i, topic)| sample_record(topic, 0, 2_000 + i as i64))
        .collect();
    // …and the facts BOS's completion implies (results ready waits for them): the spellcheck
    // results of the batch's other two essays and ELS's spellcheck outcome.
    let essay_1 = "0c9e1f8a-1111-4a2b-8c3d-000000000001";
    let spellcheck = String::from_utf8(original_fixture(SPELLCHECK)).unwrap();
    for (n, offset) in [(2, 2_006), (3, 2_007)] {
        let essay = format!("0c9e1f8a-{0}{0}{0}{0}-4a2b-8c3d-00000000000{0}", n);
        let mut value: Value = serde_json::from_str(
            &spellcheck
                .replace(essay_1, &essay)
                .replace("0c9e1f8a-1\"", &format!("0c9e1f8a-{n}\"")),
        )
        .unwrap();
        value["event_id"] = Value::String(format!("aaaaaaaa-0000-4000-8000-00000000{offset:04}"));
        lifecycle.push(
            MskRecord::new(SPELLCHECK, 0, offset, serde_json::to_vec(&value).unwrap())
                .with_key(essay.into_bytes()),
        );
    }
    let mut outcome: Value = serde_json::from_slice(&original_fixture(PHASE_OUTCOME)).unwrap();
    outcome["event_id"] = Value::String("aaaaaaaa-0000-4000-8000-000000002008".into());
    outcome["event_timestamp"] = Value::String("2025-11-27T10:05:00Z".into());
    outcome["data"]["phase_name"] = Value::String("spellcheck".into());
    outcome["data"]["phase_status"] = Value::String("completed_successfully".into());
    let processed: Vec<Value> = (1..=3)
        .map(|n| {
            serde_json::json!({
                "essay_id": format!("0c9e1f8a-{0}{0}{0}{0}-4a2b-8c3d-00000000000{0}", n),
                "text_storage_id": format!("corr-0c9e1f8a-{n}"),
                "spellcheck_metrics": null,
            })
        })
        .collect();
    outcome["data"]["processed_essays"] = Value::Array(processed);
    outcome["data"]["failed_essay_ids"] = Value::Array(Vec::new());
    let mut spellcheck_outcome = sample_record(PHASE_OUTCOME, 0, 2_008);
    spellcheck_outcome =
        spellcheck_outcome.with_value(MskValue::Bytes(serde_json::to_vec(&outcome).unwrap()));
    lifecycle.push(spellcheck_outcome);
    samples.push(("lifecycle.json".to_string(), msk_event_json(&lifecycle)));

    // One record per kind of poison, each followed by a valid record of its partition.
    let slot = |offset| sample_record(SLOT_ASSIGNED, 1, offset);
    let mut schema = serde_json::from_slice::<Value>(&original_fixture(SLOT_ASSIGNED)).unwrap();
    if let Some(data) = schema["data"].as_object_mut() {
        data.remove("essay_id");
    }
    let mut constraint = serde_json::from_slice::<Value>(&original_fixture(SLOT_ASSIGNED)).unwrap();
    constraint["data"]["essay_id"] = Value::String(String::new());
    let mut conflict = serde_json::from_slice::<Value>(&original_fixture(REGISTERED)).unwrap();
    conflict["data"]["expected_essay_count"] = Value::from(4);
    let poison = vec![
        slot(3_000).with_value(MskValue::Raw("%%% not base64 %%%".into())),
        slot(3_001).with_value(MskValue::Null),
        slot(3_002).with_value(MskValue::Bytes(vec![0x7b, 0xff, 0xfe, 0x7d])),
        slot(3_003).with_value(MskValue::Bytes(b"{\"event_id\": ".to_vec())),
        slot(3_004).with_value(MskValue::Bytes(serde_json::to_vec(&schema).unwrap())),
        slot(3_005).with_value(MskValue::Bytes(serde_json::to_vec(&constraint).unwrap())),
        slot(3_006),
        MskRecord::new(
            "huleedu.unknown.topic.v1",
            0,
            3_000,
            original_fixture(SLOT_ASSIGNED),
        ),
        sample_record(REGISTERED, 1, 3_000)
            .with_value(MskValue::Bytes(serde_json::to_vec(&conflict).unwrap())),
        sample_record(REGISTERED, 1, 3_001),
    ];
    samples.push(("poison.json".to_string(), msk_event_json(&poison)));
    samples
}

/// `events/ingest/*.json` are exactly what `sample_events` builds. Rewrite them with
/// `RAS_WRITE_SAMPLE_EVENTS=1 cargo test -p ras-tests --test ingest_topics sample_event_files`.
#[test]
fn sample_event_files_are_current() {
    let dir = sample_dir();
    let write = std::env::var("RAS_WRITE_SAMPLE_EVENTS").is_ok_and(|v| v == "1");
    for (name, json) in sample_events() {
        let path = dir.join(&name);
        let text = format!("{}\n", serde_json::to_string_pretty(&json).unwrap());
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == text,
            "{} is missing or outdated: run RAS_WRITE_SAMPLE_EVENTS=1 cargo test -p ras-tests \
             --test ingest_topics sample_event_files",
            path.display()
        );
    }
}

/// Each sample event of `events/ingest/` (for `cargo lambda invoke`) goes through the handler,
/// with its ids moved to a fresh scope: nothing is reported failed; valid records are applied
/// or duplicates (the lifecycle repeats the single-topic samples); every poison record is
/// dead-lettered.
#[tokio::test]
async fn sample_events_go_through_the_handler() {
    // On the tables of the environment (template.yaml's, created by the local setup).
    let env = IngestEnv::with_environment_tables().await;
    let scope = Scope::new();
    let deps = env.deps();
    let mut files: Vec<PathBuf> = std::fs::read_dir(sample_dir())
        .expect("events/ingest exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let expected: Vec<String> = sample_events().into_iter().map(|(n, _)| n).collect();
    for name in &expected {
        assert!(names.contains(name), "missing sample {name}");
    }
    let mut dead_lettered = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read sample");
        let json: Value = serde_json::from_str(&text).expect("sample is JSON");
        let report = process_event(&deps, kafka_event(&scope.rewrite_event(&json)), None).await;
        assert!(report.response().is_success(), "{}", path.display());
        let poison = path.ends_with("poison.json");
        for r in report.records() {
            let ok = match &r.disposition {
                Disposition::Done(RecordOutcome::Applied { .. })
                | Disposition::Done(RecordOutcome::Duplicate { .. }) => true,
                Disposition::DeadLettered { error_kind } => {
                    dead_lettered.push(error_kind.clone());
                    poison
                }
                Disposition::Failed { .. } => false,
            };
            assert!(ok, "{}: {:?}", path.display(), dispositions(&report));
        }
    }
    dead_lettered.sort();
    assert_eq!(
        dead_lettered,
        [
            "constraint_violation",
            "invalid_base64",
            "invalid_json",
            "invalid_utf8",
            "missing_value",
            "payload_conflict",
            "schema_violation",
            "unknown_topic",
        ]
    );
    assert_eq!(env.dead_letters().await.len(), dead_lettered.len());
    let agg = env.store().load(&scope.batch).await.expect("load");
    assert!(agg.is_registered());
    assert!(agg.root.results_ready.is_some(), "the lifecycle completes");
    env.cleanup().await;
}
