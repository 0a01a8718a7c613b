//! DynamoDB requests per consumed record, counted on the wire (an SDK interceptor on the
//! store's client) while the ingest handler runs against the local AWS-API server.
//! SPEC §6: ≤ 1 transactional write + ≤ 1 read per record on the steady path. A per-essay
//! record reads its batch's root and its essay with one `BatchGetItem` (issue 15); a
//! batch-level record reads the partition with one `Query`.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ingest::handler::{process_event, Disposition};
use ras_aws::dynamo::DynamoStore;
use ras_domain::service::RecordOutcome;
use ras_domain::testing::events::{self as ev, at_minute};
use ras_tests::huleedu::{Scope, PHASE_OUTCOME, REGISTERED, SLOT_ASSIGNED, SPELLCHECK};
use ras_tests::ingest_support::{deps, dispositions, IngestEnv};
use ras_tests::local_aws::{RequestCounter, SerializedCommits};
use ras_tests::msk::MskBatch;
use std::collections::BTreeMap;

fn per_record(counts: &BTreeMap<String, u64>, records: u64) -> String {
    counts
        .iter()
        .map(|(op, n)| format!("{op} {:.2}", *n as f64 / records as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn steady_path_costs_one_read_and_one_transaction_per_record() {
    let env = IngestEnv::new().await;
    let counter = RequestCounter::default();
    let store = DynamoStore::new(env.aws.counted_dynamo(&counter), env.aws.tables.clone());
    let deps = deps(SerializedCommits::new(store), env.dead_letter_queue());
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let essays: Vec<String> = (1..=20).map(|n| scope.essay(n)).collect();
    let ids: Vec<&str> = essays.iter().map(String::as_str).collect();

    let mut setup = MskBatch::new();
    setup.push(
        REGISTERED,
        0,
        ev::registration(scope.event_id(1), b, &scope.user, &ids, at_minute(0.0)).value,
    );
    assert!(process_event(&deps, setup.event(), None)
        .await
        .response()
        .is_success());
    counter.reset();

    // The steady path: per-essay records of a registered batch (one partition per topic).
    let mut event = MskBatch::new();
    for (i, essay) in essays.iter().enumerate() {
        let n = i as u64;
        let slot = ev::slot_assigned(scope.event_id(100 + n), b, essay, at_minute(1.0));
        event.push(SLOT_ASSIGNED, 0, slot.value);
        let spell = ev::spellcheck_result(
            scope.event_id(200 + n),
            b,
            essay,
            "spellchecked_success",
            at_minute(2.0),
        );
        event.push(SPELLCHECK, 0, spell.value);
    }
    let records = event.records.len() as u64;
    let report = process_event(&deps, event.event(), None).await;
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    assert!(report.records().all(|r| matches!(
        r.disposition,
        Disposition::Done(RecordOutcome::Applied { .. })
    ) && r.attempts == 1));
    let applied = counter.snapshot();
    println!(
        "steady path, {records} records: {applied:?} = per record: {}",
        per_record(&applied, records)
    );
    assert_eq!(
        counter.get("BatchGetItem"),
        records,
        "one read of root and essay per record"
    );
    assert_eq!(
        counter.get("TransactWriteItems"),
        records,
        "one transactional write per record"
    );
    assert_eq!(counter.total(), 2 * records, "nothing else: {applied:?}");
    // Every operation on the wire is one the roles are granted (template_matches_code.rs).
    for op in applied.keys() {
        assert!(
            ras_aws::dynamo::WRITE_PATH_OPERATIONS.contains(&op.as_str()),
            "{op} is not in WRITE_PATH_OPERATIONS"
        );
    }

    // Redelivered: each duplicate costs the same read and one cancelled transaction.
    counter.reset();
    let report = process_event(&deps, event.event(), None).await;
    assert!(report.records().all(|r| matches!(
        r.disposition,
        Disposition::Done(RecordOutcome::Duplicate { .. })
    )));
    let duplicates = counter.snapshot();
    println!(
        "duplicates, {records} records: {duplicates:?} = per record: {}",
        per_record(&duplicates, records)
    );
    assert_eq!(counter.get("BatchGetItem"), records);
    assert_eq!(counter.get("Query"), 0);
    assert_eq!(counter.get("TransactWriteItems"), records);
    assert!(
        counter.get("GetItem") <= records,
        "at most one marker read when the cancellation carries no old item"
    );

    // A batch-level record reads the partition: one Query. A per-essay record after it (here a
    // late spellcheck result) reads root and essay, finds that the batch's phase outcome
    // decides too, and reads the partition: two reads, the exception.
    let reads_of = |topic: &'static str, value: Vec<u8>| {
        let (counter, deps) = (&counter, &deps);
        async move {
            counter.reset();
            let mut late = MskBatch::new();
            late.push(topic, 0, value);
            let report = process_event(deps, late.event(), None).await;
            assert!(
                report.response().is_success(),
                "{:?}",
                dispositions(&report)
            );
            (counter.get("BatchGetItem"), counter.get("Query"))
        }
    };
    let outcome = ev::phase_outcome(
        scope.event_id(300),
        b,
        "spellcheck",
        "completed_successfully",
        &ids,
        &[],
        at_minute(3.0),
    );
    assert_eq!(reads_of(PHASE_OUTCOME, outcome.value).await, (0, 1));
    let spell = ev::spellcheck_result(
        scope.event_id(301),
        b,
        &scope.essay(21),
        "spellchecked_success",
        at_minute(2.5),
    );
    assert_eq!(reads_of(SPELLCHECK, spell.value).await, (1, 1));
    env.cleanup().await;
}
