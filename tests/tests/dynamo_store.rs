//! `DynamoStore` against the local AWS-API server, over HTTP through the real SDK.
//!
//! Needs `AWS_ENDPOINT_URL` (plus test credentials and region) and the tables of
//! `template.yaml`; `scripts/test.sh` provides all of it. Every test works on its own
//! batches, users and CJ jobs (fresh UUIDs), so tests run concurrently against one server and
//! repeated runs do not interfere.

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use ras_aws::dynamo::items::{self, Item};
use ras_aws::dynamo::{DynamoStore, OutboxItem};
use ras_domain::contracts::{
    decode_record, AssessmentResultV1, BatchStatus, ConfidenceLabel, EssayResultV1, InboundEvent,
    InboundPayload, PublishedTopic, Timestamp,
};
use ras_domain::ids;
use ras_domain::model::BatchAggregate;
use ras_domain::plan::{Plan, StateChange};
use ras_domain::ports::{
    AggregateStore, BatchPage, BatchReader, CommitOutcome, Destination, IdempotencyMarker,
    StoreError,
};
use ras_domain::rules::{apply, apply_to_essay, RecordContext};
use serde_json::{json, Value};
use uuid::Uuid;

const REGISTERED: &str = "huleedu.batch.essays.registered.v1";
const SLOT_ASSIGNED: &str = "huleedu.els.essay.slot.assigned.v1";
const PHASE_OUTCOME: &str = "huleedu.els.batch.phase.outcome.v1";
const SPELLCHECK: &str = "huleedu.essay.spellcheck.results.v1";
const CJ_RESULT: &str = "huleedu.assessment.result.published.v1";
const PIPELINE_COMPLETED: &str = "huleedu.batch.pipeline.completed.v1";

const FIXTURE_BATCH: &str = "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01";
const FIXTURE_USER: &str = "teacher-7f3c9a";

/// moto does not isolate a transaction from concurrent writes (it copies the tables and writes
/// them back), so a test's pre-written chunks can be lost to another test's transaction: the
/// tests of this file take turns committing, as in `SerializedCommits`.
async fn commit_exclusive(
    store: &DynamoStore,
    marker: &IdempotencyMarker,
    plan: &Plan,
) -> Result<CommitOutcome, StoreError> {
    let _turn = ras_tests::local_aws::commit_lock().await;
    store.commit(marker, plan).await
}

async fn store() -> DynamoStore {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set. These tests talk to the local AWS-API server (moto) with the \
         tables of template.yaml: run them with scripts/test.sh, which starts the server, \
         creates the resources and exports the environment."
    );
    DynamoStore::from_env()
        .await
        .unwrap_or_else(|e| panic!("{e}: source infra/local/env.sh (scripts/test.sh does)"))
}

/// Identities of one test: its own batch, teacher and CJ job.
struct Scope {
    batch: String,
    user: String,
    job: String,
}

impl Scope {
    fn new() -> Self {
        Scope {
            batch: format!("batch-{}", Uuid::new_v4()),
            user: format!("teacher-{}", Uuid::new_v4()),
            job: format!("cj-{}", Uuid::new_v4()),
        }
    }

    fn with_user(user: &str) -> Self {
        Scope {
            user: user.to_string(),
            ..Scope::new()
        }
    }

    /// The HuleEdu fixture of `topic`, moved to this scope, with a fresh envelope event id.
    fn fixture_json(&self, topic: &str) -> Value {
        let path = format!(
            "{}/fixtures/huleedu/{topic}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let text = text
            .replace(FIXTURE_BATCH, &self.batch)
            .replace(FIXTURE_USER, &self.user);
        let mut value: Value = serde_json::from_str(&text).expect("fixture JSON");
        value["event_id"] = json!(Uuid::new_v4().to_string());
        if topic == CJ_RESULT {
            value["data"]["cj_assessment_job_id"] = json!(self.job);
        }
        value
    }

    fn fixture(&self, topic: &'static str) -> Record {
        Record::new(topic, &self.fixture_json(topic))
    }
}

/// A consumed record: topic and value bytes.
struct Record {
    topic: &'static str,
    value: Vec<u8>,
}

impl Record {
    fn new(topic: &'static str, value: &Value) -> Self {
        Record {
            topic,
            value: serde_json::to_vec(value).expect("record JSON"),
        }
    }

    fn event(&self) -> InboundEvent {
        decode_record(self.topic, &self.value).expect("fixture decodes")
    }

    fn event_key(&self) -> String {
        ids::event_key(self.event().event_id, self.topic, &self.value)
    }

    fn marker(&self) -> IdempotencyMarker {
        let event = self.event();
        IdempotencyMarker::new(
            self.event_key(),
            ids::payload_hash(&self.value),
            self.topic,
            event.batch_id(),
            Timestamp::now(),
        )
    }

    fn context(&self) -> RecordContext {
        let now = Timestamp::now();
        RecordContext::for_event(&self.event(), self.event_key(), now, now)
    }
}

/// Load, apply, commit, and check the stored aggregate equals the in-memory expectation.
async fn ingest(store: &DynamoStore, record: &Record, expected: &mut BatchAggregate) -> Plan {
    let payload = record.event().payload;
    ingest_payload(
        store,
        &payload,
        &record.marker(),
        &record.context(),
        expected,
    )
    .await
}

async fn ingest_payload(
    store: &DynamoStore,
    payload: &InboundPayload,
    marker: &IdempotencyMarker,
    ctx: &RecordContext,
    expected: &mut BatchAggregate,
) -> Plan {
    let loaded = store.load(payload.batch_id()).await.expect("load");
    assert_eq!(
        &loaded, expected,
        "stored aggregate before {}",
        marker.topic
    );
    let plan = apply(&loaded, payload, ctx).expect("rules apply");
    let outcome = commit_exclusive(store, marker, &plan)
        .await
        .expect("commit");
    assert_eq!(outcome, CommitOutcome::Committed, "{}", marker.topic);
    expected.apply_plan(&plan);
    let reloaded = store.load(payload.batch_id()).await.expect("reload");
    assert_eq!(
        &reloaded, expected,
        "stored aggregate after {}",
        marker.topic
    );
    plan
}

/// Every item of a batch partition, raw.
async fn partition_items(store: &DynamoStore, batch_id: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .query()
            .table_name(&store.config().state_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(items::batch_pk(batch_id)))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query partition");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Delete every item of a batch partition (keeps the shared local tables small).
async fn delete_partition(store: &DynamoStore, batch_id: &str) {
    let keys: Vec<WriteRequest> = partition_items(store, batch_id)
        .await
        .into_iter()
        .map(|item| {
            let key = ["pk", "sk"].map(|name| (name.to_string(), item[name].clone()));
            let delete = DeleteRequest::builder()
                .set_key(Some(key.into_iter().collect()))
                .build()
                .expect("delete request");
            WriteRequest::builder().delete_request(delete).build()
        })
        .collect();
    for batch in keys.chunks(25) {
        let out = store
            .client()
            .batch_write_item()
            .request_items(&store.config().state_table, batch.to_vec())
            .send()
            .await
            .expect("batch delete");
        let unprocessed = out.unprocessed_items.unwrap_or_default();
        assert!(
            unprocessed.values().all(Vec::is_empty),
            "unprocessed deletes"
        );
    }
}

fn of_type<'a>(items: &'a [Item], item_type: &str) -> Vec<&'a Item> {
    items
        .iter()
        .filter(|i| items::get_s(i, items::ITEM_TYPE) == Some(item_type))
        .collect()
}

/// Every outbox message of the plan is stored, decodable, with the exact body.
async fn assert_outbox_written(store: &DynamoStore, batch_id: &str, plan: &Plan) {
    for message in &plan.outbox {
        let stored = store
            .get_outbox_item(message.event_id)
            .await
            .expect("get outbox item")
            .unwrap_or_else(|| panic!("outbox item {} missing", message.event_id));
        assert_eq!(stored.body, message.body);
        assert_eq!(stored.batch_id, batch_id);
        assert_eq!(stored.destination, Destination::of(message.topic));
        assert_eq!(
            stored.clone().into_message().expect("outbox item decodes"),
            *message
        );
        // The raw item, as the relay sees it in a stream image.
        let raw = store
            .client()
            .get_item()
            .table_name(&store.config().outbox_table)
            .key(
                "ordering_key",
                AttributeValue::S(stored.ordering_key.clone()),
            )
            .key("position", AttributeValue::S(stored.position.clone()))
            .send()
            .await
            .expect("get outbox item")
            .item
            .expect("outbox item");
        let created_at = items::get_s(&raw, "created_at").expect("created_at");
        assert_eq!(
            created_at.len(),
            "2025-11-27T10:00:00.000000Z".len(),
            "{created_at}"
        );
        assert_eq!(items::get_s(&raw, "created_day"), Some(&created_at[..10]));
        assert_eq!(OutboxItem::from_image(raw).expect("image decodes"), stored);
    }
}

async fn assert_outbox_absent(store: &DynamoStore, plan: &Plan) {
    for message in &plan.outbox {
        let stored = store
            .get_outbox_item(message.event_id)
            .await
            .expect("get outbox item");
        assert!(
            stored.is_none(),
            "outbox item {} was written",
            message.event_id
        );
    }
}

fn essay_results(count: usize, name_len: usize) -> Vec<EssayResultV1> {
    (0..count)
        .map(|i| EssayResultV1 {
            essay_id: format!("essay-{i:05}-{}", Uuid::from_u128(i as u128)),
            normalized_score: (count - i) as f64 / count as f64,
            letter_grade: ["A", "B+", "C-", "U"][i % 4].to_string(),
            confidence_score: 0.75,
            confidence_label: [
                ConfidenceLabel::High,
                ConfidenceLabel::Mid,
                ConfidenceLabel::Low,
            ][i % 3],
            bt_score: 2.5 - i as f64 * 0.01,
            rank: i as i64 + 1,
            is_anchor: i < 4,
            feedback_uri: None,
            metrics_uri: Some(format!("s3://metrics/{i}")),
            display_name: (name_len > 0)
                .then(|| format!("Student {i} {}", "Ö".repeat(name_len / 2))),
        })
        .collect()
}

/// A CJ result for the scope's batch and job with `count` synthetic essays.
fn cj_result(
    scope: &Scope,
    count: usize,
    name_len: usize,
) -> (InboundPayload, IdempotencyMarker, RecordContext) {
    let record = scope.fixture(CJ_RESULT);
    let InboundPayload::AssessmentResult(fixture) = record.event().payload else {
        panic!("CJ fixture is not an assessment result");
    };
    let result = AssessmentResultV1 {
        essay_results: essay_results(count, name_len),
        ..fixture
    };
    let payload = InboundPayload::AssessmentResult(result);
    let event_key = format!("event:{}", Uuid::new_v4());
    let hash = ids::payload_hash(format!("{event_key}|{count}|{name_len}").as_bytes());
    let now = Timestamp::now();
    let marker = IdempotencyMarker::new(event_key.clone(), hash, CJ_RESULT, &scope.batch, now);
    let ctx = RecordContext {
        event_key,
        occurred_at: Timestamp::parse("2025-11-27T10:20:00Z").expect("time"),
        correlation_id: Uuid::new_v4(),
        now,
    };
    (payload, marker, ctx)
}

async fn register(store: &DynamoStore, scope: &Scope) -> BatchAggregate {
    let mut expected = BatchAggregate::new(&scope.batch);
    ingest(store, &scope.fixture(REGISTERED), &mut expected).await;
    expected
}

#[tokio::test]
async fn every_record_type_round_trips_through_the_store() {
    let store = store().await;
    let scope = Scope::new();
    assert_eq!(
        store.load(&scope.batch).await.unwrap(),
        BatchAggregate::new(&scope.batch)
    );
    assert_eq!(store.get_batch(&scope.batch).await.unwrap(), None);

    let mut expected = BatchAggregate::new(&scope.batch);
    for topic in [
        REGISTERED,
        SLOT_ASSIGNED,
        SPELLCHECK,
        PHASE_OUTCOME,
        CJ_RESULT,
        PIPELINE_COMPLETED,
    ] {
        let plan = ingest(&store, &scope.fixture(topic), &mut expected).await;
        assert_outbox_written(&store, &scope.batch, &plan).await;
        if topic == CJ_RESULT {
            let topics: Vec<_> = plan.outbox.iter().map(|m| m.topic).collect();
            assert!(
                topics.contains(&PublishedTopic::BatchAssessmentCompleted),
                "{topics:?}"
            );
        }
    }
    assert!(
        !expected.essays.is_empty()
            && !expected.phases.is_empty()
            && expected.cj_jobs.contains_key(&scope.job)
    );
    assert_eq!(
        store.get_batch(&scope.batch).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.get_cj_job(&scope.job).await.unwrap().as_ref(),
        expected.cj_jobs.get(&scope.job)
    );

    // The layout of docs/data-model.md.
    let items = partition_items(&store, &scope.batch).await;
    let roots = of_type(&items, "batch");
    assert_eq!(roots.len(), 1);
    let root = roots[0];
    assert_eq!(items::get_s(root, "sk"), Some("#ROOT"));
    assert_eq!(
        root.get("version"),
        Some(&AttributeValue::N(expected.root.version.to_string()))
    );
    assert_eq!(
        items::get_s(root, "gsi1pk"),
        Some(format!("USER#{}", scope.user).as_str())
    );
    assert_eq!(
        items::get_s(root, "gsi1sk"),
        Some(format!("2025-11-27T10:00:00.000000Z#{}", scope.batch).as_str())
    );
    let status = expected
        .root
        .derived
        .overall_status
        .expect("status")
        .as_str();
    assert_eq!(
        items::get_s(root, "gsi2pk"),
        Some(format!("USER#{}#STATUS#{status}", scope.user).as_str())
    );
    for essay in of_type(&items, "essay") {
        assert!(items::get_s(essay, "sk").unwrap().starts_with("ESSAY#"));
        // The keys name batch and essay; the item keeps under 1 KB without repeating them.
        assert!(items::get_s(essay, "essay_id").is_none());
        assert!(essay.contains_key("version"));
    }
    // The registration's essay ids are the roster's, not the root's.
    let roster = of_type(&items, "roster");
    assert_eq!(roster.len(), 1);
    let registration_key = &expected
        .root
        .registration
        .as_ref()
        .expect("registered")
        .provenance
        .event_key;
    assert_eq!(
        items::get_s(roster[0], "sk"),
        Some(items::roster_sk(registration_key, 0).as_str())
    );
    let registration = root["registration"].as_m().expect("registration map");
    assert!(!registration.contains_key("essay_ids"));
    assert_eq!(of_type(&items, "phase").len(), expected.phases.len());
    let header = of_type(&items, "cj_job");
    assert_eq!(header.len(), 1);
    assert_eq!(
        items::get_s(header[0], "cj_job_id"),
        Some(scope.job.as_str())
    );
    assert_eq!(
        items::get_s(header[0], "sk"),
        Some(format!("CJ#{}", scope.job).as_str())
    );
    let chunks = of_type(&items, "cj_chunk");
    assert_eq!(chunks.len(), 1);
    assert!(items::get_s(chunks[0], "sk")
        .unwrap()
        .starts_with(&format!("CJ#{}#CHUNK#", scope.job)));
    assert!(items::get_s(chunks[0], "sk").unwrap().ends_with("#0000"));
    // Chunks carry no `cj_job_id`: the keys-only CJ job index holds the header alone.
    assert_eq!(items::get_s(chunks[0], "cj_job_id"), None);
    let indexed = store
        .client()
        .query()
        .table_name(&store.config().state_table)
        .index_name(items::INDEX_BY_CJ_JOB)
        .key_condition_expression("cj_job_id = :j")
        .expression_attribute_values(":j", AttributeValue::S(scope.job.clone()))
        .send()
        .await
        .expect("query by_cj_job_keys");
    let entries = indexed.items.unwrap_or_default();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut names: Vec<&str> = entries[0].keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["cj_job_id", "pk", "sk"], "keys only");
    assert_eq!(
        items::get_s(&entries[0], "sk"),
        Some(format!("CJ#{}", scope.job).as_str())
    );
}

#[tokio::test]
async fn redelivery_is_a_duplicate_and_a_reused_key_a_conflict() {
    let store = store().await;
    let scope = Scope::new();
    let record = scope.fixture(REGISTERED);
    let marker = record.marker();
    let mut expected = BatchAggregate::new(&scope.batch);
    let payload = record.event().payload;
    let plan = ingest_payload(&store, &payload, &marker, &record.context(), &mut expected).await;
    assert_eq!(
        store.get_marker(&marker.event_key).await.unwrap(),
        Some(marker.clone())
    );

    // Redelivery: the same plan again (as computed before the first commit), and a fresh one.
    assert_eq!(
        commit_exclusive(&store, &marker, &plan).await.unwrap(),
        CommitOutcome::Duplicate
    );
    let loaded = store.load(&scope.batch).await.unwrap();
    let replan = apply(&loaded, &record.event().payload, &record.context()).unwrap();
    assert_eq!(
        commit_exclusive(&store, &record.marker(), &replan)
            .await
            .unwrap(),
        CommitOutcome::Duplicate
    );

    // Same idempotency key, other payload.
    let mut other = marker.clone();
    other.payload_hash = ids::payload_hash(b"something else");
    assert_eq!(
        commit_exclusive(&store, &other, &Plan::default())
            .await
            .unwrap(),
        CommitOutcome::PayloadConflict {
            existing_hash: marker.payload_hash.clone()
        }
    );
    assert_eq!(store.load(&scope.batch).await.unwrap(), expected);
    assert_eq!(
        store.get_marker(&marker.event_key).await.unwrap(),
        Some(marker)
    );
}

#[tokio::test]
async fn stale_version_is_a_conflict_and_writes_nothing() {
    let store = store().await;
    let scope = Scope::new();
    let mut expected = register(&store, &scope).await;
    let stale = store.load(&scope.batch).await.unwrap();

    // Two records planned from the same version: the first commits ...
    let slot = scope.fixture(SLOT_ASSIGNED);
    ingest(&store, &slot, &mut expected).await;
    // ... the second (with outbox messages) must not.
    let (payload, marker, ctx) = cj_result(&scope, 3, 0);
    let late_plan = apply(&stale, &payload, &ctx).unwrap();
    assert!(!late_plan.outbox.is_empty());
    assert_eq!(
        commit_exclusive(&store, &marker, &late_plan).await.unwrap(),
        CommitOutcome::VersionConflict
    );
    assert_eq!(
        store.load(&scope.batch).await.unwrap(),
        expected,
        "rolled back"
    );
    assert_eq!(
        store.get_marker(&marker.event_key).await.unwrap(),
        None,
        "marker rolled back"
    );
    assert_outbox_absent(&store, &late_plan).await;
    assert_eq!(store.get_cj_job(&scope.job).await.unwrap(), None);

    // Re-planned from the current version it commits.
    ingest_payload(&store, &payload, &marker, &ctx, &mut expected).await;
    assert_outbox_written(&store, &scope.batch, &late_plan.clone()).await;

    // Two first writers of a new batch: only one creates it.
    let fresh = Scope::new();
    let first = fresh.fixture(REGISTERED);
    let second = fresh.fixture(REGISTERED);
    let empty = BatchAggregate::new(&fresh.batch);
    let first_plan = apply(&empty, &first.event().payload, &first.context()).unwrap();
    let second_plan = apply(&empty, &second.event().payload, &second.context()).unwrap();
    assert_eq!(
        commit_exclusive(&store, &first.marker(), &first_plan)
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        commit_exclusive(&store, &second.marker(), &second_plan)
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    assert_eq!(store.get_marker(&second.event_key()).await.unwrap(), None);
}

#[tokio::test]
async fn a_per_essay_record_is_planned_from_the_root_and_its_essay_and_guarded_by_both() {
    let store = store().await;
    let scope = Scope::new();
    let mut expected = register(&store, &scope).await;
    ingest(&store, &scope.fixture(SLOT_ASSIGNED), &mut expected).await;
    let mut other = scope.fixture_json(SLOT_ASSIGNED);
    other["data"]["essay_id"] = json!("another-essay");
    ingest(&store, &Record::new(SLOT_ASSIGNED, &other), &mut expected).await;

    // One BatchGetItem: the root (without the roster) and the one essay.
    let record = scope.fixture(SPELLCHECK);
    let payload = record.event().payload;
    let essay_id = payload.essay_id().expect("a per-essay record").to_string();
    let view = store.load_essay(&scope.batch, &essay_id).await.unwrap();
    assert_eq!(view.root.version, expected.root.version);
    assert_eq!(view.essays.keys().collect::<Vec<_>>(), [&essay_id]);
    assert_eq!(view.essays[&essay_id], expected.essays[&essay_id]);
    assert!(view
        .root
        .registration
        .as_ref()
        .unwrap()
        .essay_ids
        .is_empty());
    let ctx = record.context();
    let plan = apply_to_essay(&view, &payload, &ctx)
        .unwrap()
        .expect("the root and the essay are enough");
    assert_eq!(
        plan.changes.len(),
        2,
        "the root and the essay: {:?}",
        plan.changes
    );

    // A plan resting on an essay older than the root read (a torn read) cannot commit.
    let mut torn = plan.clone();
    for change in &mut torn.changes {
        if let StateChange::Essay(essay) = change {
            essay.version -= 1;
        }
    }
    assert_eq!(
        commit_exclusive(&store, &record.marker(), &torn)
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    assert_eq!(store.load(&scope.batch).await.unwrap(), expected);

    // The plan as made commits; the whole batch reads back with every essay id.
    assert_eq!(
        commit_exclusive(&store, &record.marker(), &plan)
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    expected.apply_plan(&plan);
    let stored = store.load(&scope.batch).await.unwrap();
    assert_eq!(stored, expected);
    assert_eq!(stored.root.registration.unwrap().essay_ids.len(), 3);
    // What the whole batch gives: the counts the API serves.
    assert_eq!(
        stored.root.derived,
        ras_domain::projection::derive_batch(&expected)
    );

    // An essay nothing stored yet: the root alone.
    let view = store
        .load_essay(&scope.batch, "no-such-essay")
        .await
        .unwrap();
    assert!(view.essays.is_empty());
    assert_eq!(view.root.version, expected.root.version);
    // A batch nothing stored yet: a new aggregate.
    let none = store.load_essay("no-such-batch", "e").await.unwrap();
    assert_eq!(none, BatchAggregate::new("no-such-batch"));
}

#[tokio::test]
async fn a_registration_of_9000_long_essay_ids_is_stored_in_roster_chunks() {
    let store = store().await;
    let scope = Scope::new();
    let mut registration = scope.fixture_json(REGISTERED);
    let ids: Vec<String> = (0..9_000).map(|i| format!("essay-{i:058}")).collect();
    registration["data"]["essay_ids"] = json!(ids);
    registration["data"]["expected_essay_count"] = json!(ids.len());
    let mut expected = BatchAggregate::new(&scope.batch);
    ingest(
        &store,
        &Record::new(REGISTERED, &registration),
        &mut expected,
    )
    .await;
    let items = partition_items(&store, &scope.batch).await;
    assert_eq!(of_type(&items, "roster").len(), 3, "~600 KB of ids");
    let root = of_type(&items, "batch")[0];
    assert!(
        items::estimated_item_size(root) < 4_096,
        "the root stays small: {} B",
        items::estimated_item_size(root)
    );
    // A per-essay record reads two small items, whatever the registration's size.
    let view = store.load_essay(&scope.batch, &ids[0]).await.unwrap();
    assert!(view.root.registration.unwrap().essay_ids.is_empty());
    assert_eq!(
        store
            .load(&scope.batch)
            .await
            .unwrap()
            .root
            .registration
            .unwrap()
            .essay_ids,
        ids
    );
}

#[tokio::test]
async fn a_root_stored_before_the_roster_keeps_its_essay_ids() {
    let store = store().await;
    let scope = Scope::new();
    let registered = register(&store, &scope).await;
    let ids = registered
        .root
        .registration
        .as_ref()
        .unwrap()
        .essay_ids
        .clone();
    // Put the batch back as it was stored before issue 15: the essay ids inside the root, no
    // roster item, no counters.
    let items = partition_items(&store, &scope.batch).await;
    let mut root = of_type(&items, "batch")[0].clone();
    root.remove("essay_counters");
    let Some(AttributeValue::M(registration)) = root.get_mut("registration") else {
        panic!("registration map")
    };
    registration.insert(
        "essay_ids".into(),
        AttributeValue::L(ids.iter().map(|id| AttributeValue::S(id.clone())).collect()),
    );
    let table = &store.config().state_table;
    for roster in of_type(&items, "roster") {
        store
            .client()
            .delete_item()
            .table_name(table)
            .key("pk", roster["pk"].clone())
            .key("sk", roster["sk"].clone())
            .send()
            .await
            .unwrap();
    }
    store
        .client()
        .put_item()
        .table_name(table)
        .set_item(Some(root))
        .send()
        .await
        .unwrap();
    assert!(of_type(&partition_items(&store, &scope.batch).await, "roster").is_empty());
    // The query API reads it as it is, and writes nothing (its role may not).
    let served = store.get_batch(&scope.batch).await.unwrap().unwrap();
    assert_eq!(served.root.registration.unwrap().essay_ids, ids);
    assert!(of_type(&partition_items(&store, &scope.batch).await, "roster").is_empty());

    // The next record (a slot assignment: the root has no counters, so the whole batch is read)
    // moves the ids to the roster; the root it writes is the small one.
    let slot = scope.fixture(SLOT_ASSIGNED);
    let now = Timestamp::now();
    let outcome = ras_domain::service::process_record(
        &ras_tests::local_aws::SerializedCommits::new(store.clone()),
        ras_domain::service::ConsumedRecord {
            topic: slot.topic,
            value: &slot.value,
            record_time: now,
        },
        now,
    )
    .await
    .unwrap();
    assert!(matches!(
        outcome,
        ras_domain::service::RecordOutcome::Applied { .. }
    ));
    let items = partition_items(&store, &scope.batch).await;
    assert_eq!(of_type(&items, "roster").len(), 1);
    let root = of_type(&items, "batch")[0];
    assert!(!root["registration"]
        .as_m()
        .unwrap()
        .contains_key("essay_ids"));
    let stored = store.load(&scope.batch).await.unwrap();
    assert_eq!(stored.root.registration.unwrap().essay_ids, ids);
    assert!(
        stored.root.essay_counters.is_some(),
        "written by that record"
    );
}

#[tokio::test]
async fn cj_result_of_500_essays_round_trips_in_chunks() {
    let store = store().await;
    let scope = Scope::new();
    let mut expected = register(&store, &scope).await;
    let (payload, marker, ctx) = cj_result(&scope, 500, 24);
    let plan = ingest_payload(&store, &payload, &marker, &ctx, &mut expected).await;
    assert_outbox_written(&store, &scope.batch, &plan).await;

    let job = store.get_cj_job(&scope.job).await.unwrap().expect("CJ job");
    assert_eq!(job.result.essay_results.len(), 500);
    assert_eq!(Some(&job), expected.cj_jobs.get(&scope.job));
    let items = partition_items(&store, &scope.batch).await;
    let header = of_type(&items, "cj_job");
    assert_eq!(
        header[0].get("chunk_count"),
        Some(&AttributeValue::N("1".into()))
    );
    assert_eq!(of_type(&items, "cj_chunk").len(), 1);
    assert_eq!(
        store
            .get_cj_job(&format!("{}-unknown", scope.job))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn cj_result_too_big_for_one_transaction_commits_with_pre_written_chunks() {
    let store = store().await;
    let scope = Scope::new();
    let mut expected = register(&store, &scope).await;
    // ~4.3 MB of essay results: more than a transaction can carry (4 MB).
    let (payload, marker, ctx) = cj_result(&scope, 1_500, 2_800);
    let plan = ingest_payload(&store, &payload, &marker, &ctx, &mut expected).await;
    assert_outbox_written(&store, &scope.batch, &plan).await;

    let items = partition_items(&store, &scope.batch).await;
    let chunks = of_type(&items, "cj_chunk");
    assert!(chunks.len() >= 14, "{} chunks", chunks.len());
    let header = of_type(&items, "cj_job");
    assert_eq!(
        header[0].get("chunk_count"),
        Some(&AttributeValue::N(chunks.len().to_string()))
    );
    let job = store.get_cj_job(&scope.job).await.unwrap().expect("CJ job");
    assert_eq!(Some(&job), expected.cj_jobs.get(&scope.job));

    // A redelivery rewrites the same (content-addressed) chunks and is a duplicate.
    assert_eq!(
        commit_exclusive(&store, &marker, &plan).await.unwrap(),
        CommitOutcome::Duplicate
    );
    assert_eq!(store.load(&scope.batch).await.unwrap(), expected);

    // The local server copies whole tables on every transaction: do not leave megabytes
    // behind for the tests that run after this one.
    delete_partition(&store, &scope.batch).await;
    for message in &plan.outbox {
        let stored = OutboxItem::from_message(message, &scope.batch);
        store
            .client()
            .delete_item()
            .table_name(&store.config().outbox_table)
            .key("ordering_key", AttributeValue::S(stored.ordering_key))
            .key("position", AttributeValue::S(stored.position))
            .send()
            .await
            .expect("delete outbox item");
    }
}

#[tokio::test]
async fn user_batches_are_listed_newest_first_with_total_and_status_filter() {
    let store = store().await;
    let user = format!("teacher-{}", Uuid::new_v4());
    let mut batches = Vec::new();
    for (i, created) in [
        "2025-11-27T09:00:00Z",
        "2025-11-27T10:00:00.5Z",
        "2025-11-27T11:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        let scope = Scope::with_user(&user);
        let mut value = scope.fixture_json(REGISTERED);
        value["data"]["metadata"]["timestamp"] = json!(created);
        let mut expected = BatchAggregate::new(&scope.batch);
        ingest(&store, &Record::new(REGISTERED, &value), &mut expected).await;
        if i == 1 {
            ingest(&store, &scope.fixture(SPELLCHECK), &mut expected).await;
        }
        batches.push(expected);
    }
    let status = |agg: &BatchAggregate| agg.root.derived.overall_status;
    assert_eq!(status(&batches[1]), Some(BatchStatus::ProcessingPipelines));
    assert_eq!(
        status(&batches[0]),
        Some(BatchStatus::AwaitingContentValidation)
    );
    let ids = |page: &BatchPage| {
        page.batches
            .iter()
            .map(|b| b.batch_id().to_string())
            .collect::<Vec<_>>()
    };
    let id = |i: usize| batches[i].batch_id().to_string();

    let all = store.list_user_batches(&user, None, 10, 0).await.unwrap();
    assert_eq!(ids(&all), [id(2), id(1), id(0)]);
    assert_eq!(all.total, 3);
    assert_eq!(
        all.batches,
        [batches[2].clone(), batches[1].clone(), batches[0].clone()]
    );

    let page = store.list_user_batches(&user, None, 1, 1).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec![id(1)], 3));
    let page = store.list_user_batches(&user, None, 5, 2).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec![id(0)], 3));
    let page = store.list_user_batches(&user, None, 0, 0).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec![], 3));

    let processing = store
        .list_user_batches(&user, Some(BatchStatus::ProcessingPipelines), 10, 0)
        .await
        .unwrap();
    assert_eq!((ids(&processing), processing.total), (vec![id(1)], 1));
    let awaiting = store
        .list_user_batches(&user, Some(BatchStatus::AwaitingContentValidation), 10, 0)
        .await
        .unwrap();
    assert_eq!((ids(&awaiting), awaiting.total), (vec![id(2), id(0)], 2));
    let none = store
        .list_user_batches(&user, Some(BatchStatus::Cancelled), 10, 0)
        .await
        .unwrap();
    assert_eq!((none.batches.len(), none.total), (0, 0));
    let stranger = store
        .list_user_batches("nobody-at-all", None, 10, 0)
        .await
        .unwrap();
    assert_eq!((stranger.batches.len(), stranger.total), (0, 0));
}

#[tokio::test]
async fn ping_reaches_the_state_table() {
    store().await.ping().await.expect("ping");
}

#[tokio::test]
async fn an_item_over_400_kb_is_a_permanent_failure() {
    let store = store().await;
    let scope = Scope::new();
    let expected = register(&store, &scope).await;
    // A 450 KB file name: an essay item over DynamoDB's 400 KB. (A registration of any size is
    // not: its essay ids are roster chunks of at most 300 KB.)
    let mut value = scope.fixture_json(SLOT_ASSIGNED);
    value["data"]["original_file_name"] = json!("x".repeat(450_000));
    let record = Record::new(SLOT_ASSIGNED, &value);
    let plan = apply(&expected, &record.event().payload, &record.context()).unwrap();
    let err = commit_exclusive(&store, &record.marker(), &plan)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Permanent {
                kind: "item_too_large",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.get_marker(&record.event_key()).await.unwrap(), None);
    assert_eq!(store.load(&scope.batch).await.unwrap(), expected);
}
