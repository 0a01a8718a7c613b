//! A CJ result too big for one DynamoDB transaction (100 actions / 4 MB) through the ingest
//! handler: the adapter pre-writes its content-addressed result chunks and commits marker,
//! root, CJ header and outbox in one transaction (docs/data-model.md, "Beyond the limits").
//! The record commits once; a redelivery is a duplicate.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ingest::handler::{process_event, Disposition};
use ras_aws::dynamo::commit::{commit_writes, layout};
use ras_aws::dynamo::items;
use ras_domain::contracts::decode_record;
use ras_domain::ids;
use ras_domain::ports::{AggregateStore, IdempotencyMarker};
use ras_domain::rules::{self, RecordContext};
use ras_domain::service::RecordOutcome;
use ras_domain::testing::events::{self as ev, at_minute, StudentResult, TestRecord};
use ras_tests::huleedu::Scope;
use ras_tests::ingest_support::{dispositions, now, IngestEnv};
use ras_tests::msk::{msk_event, MskRecord};
use std::time::Instant;

fn cj_result(scope: &Scope, essays: &[String], uri_len: usize) -> TestRecord {
    let students: Vec<StudentResult> = essays
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let rank = i as i64 + 1;
            (id.as_str(), rank, 3.0 - i as f64 * 0.001, "C")
        })
        .collect();
    let record = ev::assessment_result(
        scope.event_id(2),
        &scope.batch,
        &scope.job,
        &students,
        true,
        at_minute(30.0),
    );
    if uri_len == 0 {
        return record;
    }
    // Per-essay feedback and metrics documents: kept with the results (and their chunks), not
    // in the published rankings.
    let mut value = record.json();
    for result in value["data"]["essay_results"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let essay = result["essay_id"].as_str().unwrap_or_default().to_string();
        let pad = "f".repeat(uri_len);
        result["feedback_uri"] =
            format!("s3://huleedu-cj/{}/{essay}/feedback-{pad}.json", scope.job).into();
        result["metrics_uri"] =
            format!("s3://huleedu-cj/{}/{essay}/metrics-{pad}.json", scope.job).into();
    }
    TestRecord {
        topic: record.topic,
        value: serde_json::to_vec(&value).expect("JSON"),
    }
}

/// Register the batch, then consume `cj` and check it commits once; returns the number of
/// chunk items the adapter pre-wrote.
async fn commits_once(env: &IngestEnv, scope: &Scope, essays: &[String], cj: &TestRecord) -> usize {
    let deps = env.deps();
    let b = scope.batch.as_str();
    println!(
        "CJ result record: {} essays, {} bytes",
        essays.len(),
        cj.value.len()
    );
    let registration = ev::registration(
        scope.event_id(1),
        b,
        &scope.user,
        &[&essays[0], &essays[1]],
        at_minute(0.0),
    );
    let setup = process_event(
        &deps,
        msk_event(&[MskRecord::new(registration.topic, 0, 1, registration.value)]),
        None,
    )
    .await;
    assert!(setup.response().is_success());

    // What the adapter will do with this plan.
    let event = decode_record(cj.topic, &cj.value).expect("decodes");
    let key = ids::event_key(event.event_id, cj.topic, &cj.value);
    let aggregate = env.store().load(b).await.expect("load");
    let ctx = RecordContext::for_event(&event, key.clone(), now(), now());
    let plan = rules::apply(&aggregate, &event.payload, &ctx).expect("plan");
    let marker = IdempotencyMarker::new(key, ids::payload_hash(&cj.value), cj.topic, b, now());
    let commit = layout(commit_writes(&marker, &plan).expect("writes")).expect("layout");
    let sizes: Vec<String> = commit
        .transaction
        .iter()
        .map(|w| format!("{:?} {} B", w.role, items::estimated_item_size(&w.item)))
        .collect();
    println!(
        "commit layout: {} chunk items pre-written; transaction: {}",
        commit.prewrite.len(),
        sizes.join(", ")
    );

    let record = MskRecord::new(cj.topic, 5, 77, cj.value.clone());
    let started = Instant::now();
    let report = process_event(&deps, msk_event(std::slice::from_ref(&record)), None).await;
    println!("handled in {:?}", started.elapsed());
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    let outcome = &report.partitions[0].records[0];
    assert!(
        matches!(
            outcome.disposition,
            Disposition::Done(RecordOutcome::Applied { .. })
        ),
        "{:?}",
        outcome.disposition
    );
    assert_eq!(outcome.attempts, 1);
    assert!(env.dead_letters().await.is_empty());

    let agg = env.store().load(b).await.expect("load");
    let job = &agg.cj_jobs[&scope.job];
    assert_eq!(
        job.result.essay_results.len(),
        essays.len() + 1,
        "every result and the anchor"
    );
    assert_eq!(
        job.result,
        cj_payload(cj),
        "stored whole, byte for byte equal when decoded"
    );
    let completed = ids::assessment_completed_event_id(b, &scope.job);
    let outbox: Vec<_> = env.aws.outbox_of_batch(b).await;
    let published: Vec<_> = outbox.iter().map(|o| o.event_id).collect();
    assert_eq!(
        published,
        [completed, ids::notification_event_id(completed)]
    );
    let body: serde_json::Value = serde_json::from_str(&outbox[0].body).expect("JSON");
    assert_eq!(
        body["data"]["rankings_summary"].as_array().map(Vec::len),
        Some(essays.len()),
        "students only, anchors are not ranked"
    );

    // Redelivered: a duplicate, nothing written again.
    let again = process_event(&deps, msk_event(&[record]), None).await;
    assert!(again.response().is_success());
    assert!(matches!(
        again.partitions[0].records[0].disposition,
        Disposition::Done(RecordOutcome::Duplicate { .. })
    ));
    let after = env.store().load(b).await.expect("load");
    assert_eq!(after.root.version, agg.root.version);
    commit.prewrite.len()
}

fn cj_payload(cj: &TestRecord) -> ras_domain::contracts::AssessmentResultV1 {
    match decode_record(cj.topic, &cj.value).expect("decodes").payload {
        ras_domain::contracts::InboundPayload::AssessmentResult(r) => r,
        other => panic!("not a CJ result: {other:?}"),
    }
}

/// ~3.9 MB of results (2,000 essays with their feedback and metrics URIs): more than one
/// transaction carries, so the result chunks are pre-written and the transaction holds
/// marker, root, CJ header and outbox.
#[tokio::test]
async fn a_cj_result_too_big_for_one_transaction_commits_once() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let essays: Vec<String> = (1..=2_000).map(|n| scope.essay(n)).collect();
    let cj = cj_result(&scope, &essays, 800);
    let prewritten = commits_once(&env, &scope, &essays, &cj).await;
    assert!(prewritten > 0, "the plan must need the pre-write scheme");
    env.cleanup().await;
}

/// 5,000 essays: the published `BatchAssessmentCompletedV1` lists every essay in
/// `rankings_summary`, ~820 KB of JSON — over DynamoDB's 400 KB item limit as text, so its
/// outbox item stores the body gzip-compressed (`body_gzip`) and reads it back whole.
#[tokio::test]
async fn a_cj_result_of_5000_essays_commits_once() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let essays: Vec<String> = (1..=5_000).map(|n| scope.essay(n)).collect();
    let cj = cj_result(&scope, &essays, 0);
    commits_once(&env, &scope, &essays, &cj).await;
    env.cleanup().await;
}
