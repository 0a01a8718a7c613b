//! Transient failures injected around the real adapters (DynamoDB and SQS on the local
//! AWS-API server): retried within the invocation, or reported as a Kafka batch item failure
//! that stops the partition — never lost, never applied twice.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ingest::handler::{process_event, Disposition};
use ingest::kafka::{KafkaBatchItemFailure, KafkaItemIdentifier};
use ingest::{handle, handle_until};
use ras_domain::ids;
use ras_domain::ports::AggregateStore;
use ras_domain::service::RecordOutcome;
use ras_domain::testing::events::{self as ev, at_minute, TestRecord};
use ras_tests::faults::{FlakyDeadLetters, FlakyStore};
use ras_tests::huleedu::{Scope, REGISTERED, SLOT_ASSIGNED};
use ras_tests::ingest_support::{deps, dispositions, IngestEnv};
use ras_tests::msk::{msk_event, MskBatch, MskRecord, MskValue};
use std::time::{Duration, Instant};

fn registration(scope: &Scope, n: u64, batch: &str, essays: &[String]) -> TestRecord {
    let ids: Vec<&str> = essays.iter().map(String::as_str).collect();
    ev::registration(scope.event_id(n), batch, &scope.user, &ids, at_minute(0.0))
}

fn slot(scope: &Scope, n: u64, batch: &str, essay: &str) -> TestRecord {
    ev::slot_assigned(scope.event_id(n), batch, essay, at_minute(1.0))
}

#[tokio::test]
async fn transient_store_failures_are_retried_within_the_invocation() {
    let env = IngestEnv::new().await;
    let store = FlakyStore::new(env.isolated_store())
        .fail_loads(2)
        .fail_commits(2);
    let mut deps = deps(store, env.dead_letter_queue());
    deps.settings.retry.max_attempts = 5; // the production default
    let scope = Scope::new();
    let b = &scope.batch;
    let mut batch = MskBatch::new();
    batch.push(
        REGISTERED,
        0,
        registration(&scope, 1, b, &[scope.essay(1)]).value,
    );
    let slot_record = slot(&scope, 2, b, &scope.essay(1));
    batch.push(slot_record.topic, 0, slot_record.value);
    // One partition at a time, so the faults hit the first one: the registration's (key order).
    deps.settings.partition_concurrency = 1;
    let report = process_event(&deps, batch.event(), None).await;
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    assert_eq!(deps.store.injected(), 4);
    let first = &report.partitions[0].records[0];
    assert!(matches!(
        first.disposition,
        Disposition::Done(RecordOutcome::Applied { .. })
    ));
    assert_eq!(
        first.attempts, 5,
        "two failed loads, two failed commits, then success"
    );
    let stats = &report.metrics.topics[REGISTERED];
    assert_eq!(
        (stats.processed, stats.retried, stats.retry_attempts),
        (1, 1, 4)
    );
    assert_eq!(report.metrics.total().processed, 2);
    let agg = env.store().load(b).await.expect("load");
    assert_eq!(agg.root.version, 2, "two commits, no more");
    assert!(agg.essays[&scope.essay(1)].slot.is_some());
    env.cleanup().await;
}

/// The commit reaches DynamoDB but its response is lost (a timeout after the write): the retry
/// finds the marker and is a duplicate. The outbox holds each event once.
#[tokio::test]
async fn a_lost_commit_response_is_retried_as_a_duplicate_and_applied_once() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let e = [scope.essay(1), scope.essay(2)];
    let plain = env.deps();
    let mut setup = MskBatch::new();
    setup.push(REGISTERED, 0, registration(&scope, 1, b, &e).value);
    assert!(handle(&plain, setup.event()).await.is_success());

    let store = FlakyStore::new(env.isolated_store()).lose_commit_responses(1);
    let deps = deps(store, env.dead_letter_queue());
    let cj = ev::assessment_result(
        scope.event_id(2),
        b,
        &scope.job,
        &[(e[0].as_str(), 1, 0.4, "B"), (e[1].as_str(), 2, -0.4, "C")],
        false,
        at_minute(9.0),
    );
    let records = [MskRecord::new(cj.topic, 0, 7, cj.value.clone())];
    let report = process_event(&deps, msk_event(&records), None).await;
    assert!(report.response().is_success());
    let record = &report.partitions[0].records[0];
    assert!(
        matches!(
            record.disposition,
            Disposition::Done(RecordOutcome::Duplicate { .. })
        ),
        "{:?}",
        record.disposition
    );
    assert_eq!(record.attempts, 2);
    assert_eq!(report.metrics.topics[cj.topic].duplicate, 1);

    let completed = ids::assessment_completed_event_id(b, &scope.job);
    let outbox: Vec<_> = env
        .aws
        .outbox_of_batch(b)
        .await
        .iter()
        .map(|o| o.event_id)
        .collect();
    assert_eq!(outbox, [completed, ids::notification_event_id(completed)]);
    let agg = env.store().load(b).await.expect("load");
    assert_eq!(agg.root.version, 2, "registration + CJ result, once each");
    env.cleanup().await;
}

#[tokio::test]
async fn a_hanging_call_times_out_and_is_retried() {
    let env = IngestEnv::new().await;
    let store = FlakyStore::new(env.isolated_store()).hang_loads(1, Duration::from_secs(30));
    let mut deps = deps(store, env.dead_letter_queue());
    deps.settings.attempt_timeout = Duration::from_secs(2);
    let scope = Scope::new();
    let mut batch = MskBatch::new();
    batch.push(
        REGISTERED,
        0,
        registration(&scope, 1, &scope.batch, &[scope.essay(1)]).value,
    );
    let started = Instant::now();
    let report = process_event(&deps, batch.event(), None).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(report.response().is_success());
    let record = &report.partitions[0].records[0];
    assert!(matches!(
        record.disposition,
        Disposition::Done(RecordOutcome::Applied { .. })
    ));
    assert_eq!(record.attempts, 2);
    assert!(env
        .store()
        .load(&scope.batch)
        .await
        .expect("load")
        .is_registered());
    env.cleanup().await;
}

/// Retries exhausted: the partition stops at its first unfinished record, which is reported;
/// nothing after it is processed; other partitions complete. Redelivered from there (as Lambda
/// does), everything is applied exactly once.
#[tokio::test]
async fn persistent_failures_stop_only_their_partition_and_report_its_first_failed_record() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let (x, y, z) = (scope.clone(), scope.another_batch(), scope.another_batch());
    let store = FlakyStore::new(env.isolated_store())
        .only_batch(&y.batch)
        .fail_commits(u32::MAX);
    let deps = deps(store, env.dead_letter_queue());

    // Partition A: registrations of X, Y (failing), X again. Partition B: slots of Z.
    let mut event =
        MskBatch::new()
            .starting_at(REGISTERED, 4, 500)
            .starting_at(SLOT_ASSIGNED, 9, 900);
    let records = [
        (
            REGISTERED,
            4,
            registration(&scope, 1, &x.batch, &[scope.essay(1)]),
        ),
        (
            REGISTERED,
            4,
            registration(&scope, 2, &y.batch, &[scope.essay(2)]),
        ),
        (
            REGISTERED,
            4,
            registration(&scope, 3, &x.batch, &[scope.essay(1)]),
        ),
        (SLOT_ASSIGNED, 9, slot(&scope, 5, &z.batch, &scope.essay(3))),
        (SLOT_ASSIGNED, 9, slot(&scope, 6, &z.batch, &scope.essay(4))),
    ];
    let offsets: Vec<i64> = records
        .iter()
        .map(|(topic, partition, r)| event.push(topic, *partition, r.value.clone()))
        .collect();

    let response = handle(&deps, event.event()).await;
    assert_eq!(
        response.batch_item_failures,
        [KafkaBatchItemFailure {
            item_identifier: KafkaItemIdentifier {
                partition: format!("{REGISTERED}-4"),
                offset: offsets[1],
            }
        }]
    );
    assert!(env
        .store()
        .load(&x.batch)
        .await
        .expect("load")
        .is_registered());
    assert!(!env
        .store()
        .load(&y.batch)
        .await
        .expect("load")
        .is_registered());
    // The record after the failed one was not processed: its marker does not exist.
    let third = format!("event:{}", scope.event_id(3));
    assert!(env
        .store()
        .get_marker(&third)
        .await
        .expect("marker")
        .is_none());
    let z_agg = env.store().load(&z.batch).await.expect("load");
    assert!(z_agg.essays[&scope.essay(3)].slot.is_some());
    assert!(z_agg.essays[&scope.essay(4)].slot.is_some());

    // Lambda redelivers partition A from the reported offset (other partitions moved on).
    deps.store.heal();
    let redelivered: Vec<MskRecord> = event
        .records
        .iter()
        .filter(|r| r.partition_key() == format!("{REGISTERED}-4") && r.offset >= offsets[1])
        .cloned()
        .collect();
    let report = process_event(&deps, msk_event(&redelivered), None).await;
    assert!(report.response().is_success());
    let kinds: Vec<String> = dispositions(&report).into_iter().map(|d| d.2).collect();
    assert_eq!(kinds, ["applied", "applied"]);
    assert!(env
        .store()
        .load(&y.batch)
        .await
        .expect("load")
        .is_registered());
    assert!(env
        .store()
        .get_marker(&third)
        .await
        .expect("marker")
        .is_some());

    // And the whole event once more (a full retry): all duplicates.
    let report = process_event(&deps, event.event(), None).await;
    assert!(report.response().is_success());
    assert_eq!(report.metrics.total().duplicate, 5);
    env.cleanup().await;
}

#[tokio::test]
async fn a_failed_dead_letter_send_is_retried_then_reported_and_never_acknowledged() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let poison =
        MskRecord::new(SLOT_ASSIGNED, 3, 0, Vec::new()).with_value(MskValue::Raw("%%%".into()));
    let good = slot(&scope, 1, &scope.batch, &scope.essay(1));
    let mut event = MskBatch::new();
    event.push_record(poison);
    event.push(SLOT_ASSIGNED, 3, good.value.clone());

    // Fails twice, then reaches SQS: retried within the invocation.
    let deps1 = deps(
        env.isolated_store(),
        FlakyDeadLetters::new(env.dead_letter_queue()).fail_first(2),
    );
    let report = process_event(&deps1, event.event(), None).await;
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    assert_eq!(deps1.dead_letters.attempts(), 3);
    let first = &report.partitions[0].records[0];
    assert!(matches!(
        first.disposition,
        Disposition::DeadLettered { .. }
    ));
    assert_eq!(first.attempts, 3);
    assert_eq!(env.dead_letters().await.len(), 1);

    // Keeps failing: the record is reported (not acknowledged), its successor not processed.
    let scope2 = Scope::new();
    let good2 = slot(&scope2, 1, &scope2.batch, &scope2.essay(1));
    let mut event2 = MskBatch::new();
    let poison2 = event2.push_record(
        MskRecord::new(SLOT_ASSIGNED, 3, 0, Vec::new()).with_value(MskValue::Raw("%%%".into())),
    );
    event2.push(SLOT_ASSIGNED, 3, good2.value.clone());
    for (sink, attempts) in [
        (
            FlakyDeadLetters::new(env.dead_letter_queue()).fail_first(u32::MAX),
            4, // transient: every attempt the policy allows
        ),
        (
            FlakyDeadLetters::new(env.dead_letter_queue())
                .fail_first(u32::MAX)
                .permanently(),
            1, // permanent: no point in retrying, still not acknowledged
        ),
    ] {
        let deps2 = deps(env.isolated_store(), sink);
        let response = handle(&deps2, event2.event()).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.offset,
            poison2
        );
        assert_eq!(deps2.dead_letters.attempts(), attempts);
        assert!(env
            .store()
            .load(&scope2.batch)
            .await
            .expect("load")
            .essays
            .is_empty());
    }
    assert!(
        env.dead_letters().await.is_empty(),
        "nothing reached the queue"
    );
    env.cleanup().await;
}

/// The records of 16 essays of one batch: a slot and a spellcheck result each, spread over
/// four partitions of each topic.
fn busy_batch(scope: &Scope, essays: &[String], first_offset: i64) -> MskBatch {
    let b = scope.batch.as_str();
    let mut event = MskBatch::new();
    for p in 0..4 {
        event = event
            .starting_at(SLOT_ASSIGNED, p, first_offset)
            .starting_at("huleedu.essay.spellcheck.results.v1", p, first_offset);
    }
    for (i, essay) in essays.iter().enumerate() {
        let n = 100 + i as u64;
        event.push(
            SLOT_ASSIGNED,
            (i % 4) as i64,
            slot(scope, n, b, essay).value,
        );
        let spell = ev::spellcheck_result(
            scope.event_id(200 + i as u64),
            b,
            essay,
            "spellchecked_success",
            at_minute(2.0),
        );
        event.push(spell.topic, (i % 4) as i64, spell.value);
    }
    event
}

async fn register(env: &IngestEnv, scope: &Scope, essays: &[String]) {
    let mut setup = MskBatch::new();
    setup.push(
        REGISTERED,
        0,
        registration(scope, 1, &scope.batch, essays).value,
    );
    assert!(handle(&env.deps(), setup.event()).await.is_success());
}

/// Eight partitions of one invocation writing the same batch: its records take turns, none
/// is lost, none starves.
#[tokio::test]
async fn partitions_of_one_invocation_writing_one_batch_lose_nothing() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let essays: Vec<String> = (1..=16).map(|n| scope.essay(n)).collect();
    register(&env, &scope, &essays).await;
    let deps = deps(
        FlakyStore::new(env.isolated_store()),
        env.dead_letter_queue(),
    );
    let report = process_event(&deps, busy_batch(&scope, &essays, 100).event(), None).await;
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    assert_eq!(report.metrics.total().processed, 32);
    assert_eq!(
        deps.store.commits(),
        32,
        "no optimistic-concurrency conflict within an invocation"
    );
    let agg = env.store().load(&scope.batch).await.expect("load");
    for essay in &essays {
        let record = &agg.essays[essay];
        assert!(
            record.slot.is_some() && record.spellcheck.is_some(),
            "{essay}"
        );
    }
    assert_eq!(agg.root.version, 33, "one commit per record");
    env.cleanup().await;
}

/// Two invocations at once (Lambda runs one per group of partitions) writing the same batch:
/// their commits conflict on the root's version, are re-read and re-planned; nothing is lost,
/// nothing applied twice.
#[tokio::test]
async fn concurrent_invocations_writing_one_batch_resolve_conflicts_and_lose_nothing() {
    let env = IngestEnv::new().await;
    let scope = Scope::new();
    let essays: Vec<String> = (1..=16).map(|n| scope.essay(n)).collect();
    register(&env, &scope, &essays).await;
    let mut deps = deps(
        FlakyStore::new(env.isolated_store()),
        env.dead_letter_queue(),
    );
    deps.settings.retry.max_attempts = 5;
    let event = busy_batch(&scope, &essays, 100);
    let (slots, spellchecks): (Vec<MskRecord>, Vec<MskRecord>) = event
        .records
        .iter()
        .cloned()
        .partition(|r| r.topic == SLOT_ASSIGNED);
    let (a, b) = futures::join!(
        process_event(&deps, msk_event(&slots), None),
        process_event(&deps, msk_event(&spellchecks), None),
    );
    for report in [&a, &b] {
        assert!(report.response().is_success(), "{:?}", dispositions(report));
        assert_eq!(report.metrics.total().processed, 16);
    }
    let commits = deps.store.commits();
    let agg = env.store().load(&scope.batch).await.expect("load");
    for essay in &essays {
        let record = &agg.essays[essay];
        assert!(
            record.slot.is_some() && record.spellcheck.is_some(),
            "{essay}"
        );
    }
    assert_eq!(agg.root.version, 33, "one commit per record");
    println!(
        "32 records, {commits} commit attempts ({} cancelled by the version condition)",
        commits - 32
    );
    env.cleanup().await;
}

/// Near the invocation deadline no record is started: each partition reports its first
/// record, so Lambda redelivers everything.
#[tokio::test]
async fn no_record_is_started_when_the_deadline_is_near() {
    let env = IngestEnv::new().await;
    let mut deps = env.deps();
    deps.settings.deadline_reserve = Duration::from_secs(2);
    let scope = Scope::new();
    let mut event = MskBatch::new();
    let first_a = event.push(
        REGISTERED,
        0,
        registration(&scope, 1, &scope.batch, &[scope.essay(1)]).value,
    );
    event.push(
        SLOT_ASSIGNED,
        1,
        slot(&scope, 2, &scope.batch, &scope.essay(1)).value,
    );
    let deadline = Instant::now() + Duration::from_secs(1);
    let response = handle_until(&deps, event.event(), Some(deadline)).await;
    let failed: Vec<(String, i64)> = response
        .batch_item_failures
        .iter()
        .map(|f| {
            (
                f.item_identifier.partition.clone(),
                f.item_identifier.offset,
            )
        })
        .collect();
    assert_eq!(
        failed,
        [
            (format!("{REGISTERED}-0"), first_a),
            (format!("{SLOT_ASSIGNED}-1"), 100)
        ]
    );
    assert!(env
        .store()
        .load(&scope.batch)
        .await
        .expect("load")
        .is_empty());
    env.cleanup().await;
}
