//! One record through the whole ingest use case against the in-memory store, on the fixture
//! batch in one of three states: decode → rules → atomic commit, then the same record again
//! (must be a duplicate), then the API projections of the resulting aggregate. No panic, and
//! the pure path (`rules::apply` on the prepared aggregate) agrees with the store path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ras_domain::contracts::decode_record;
use ras_domain::ids;
use ras_domain::rules::{self, RecordContext};
use ras_domain::service::{process_record, ConsumedRecord, RecordOutcome};
use ras_domain::testing::block_on;
use ras_fuzz::{now, prepared_aggregate, prepared_store, split_record_input, FIXTURE_BATCH};

fuzz_target!(|data: &[u8]| {
    let Some((topic, state, value)) = split_record_input(data) else {
        return;
    };

    // The pure path: decode → plan on the prepared aggregate → apply the plan.
    let planned = decode_record(topic, value).ok().and_then(|event| {
        let key = ids::event_key(event.event_id, topic, value);
        let ctx = RecordContext::for_event(&event, key, now(), now());
        let base = if event.batch_id() == FIXTURE_BATCH {
            prepared_aggregate(state).clone()
        } else {
            ras_domain::model::BatchAggregate::new(event.batch_id())
        };
        let plan = rules::apply(&base, &event.payload, &ctx).ok()?;
        let mut after = base;
        after.apply_plan(&plan);
        let _ = api::batch_status::batch_status(&after);
        let _ = api::assessments::batch_assessments(&after);
        Some(plan)
    });

    // The store path.
    let store = prepared_store(state);
    let record = ConsumedRecord {
        topic,
        value,
        record_time: now(),
    };
    let first = block_on(process_record(&store, record, now()));
    match (&first, &planned) {
        (
            Ok(RecordOutcome::Applied {
                state_changes,
                published,
                ..
            }),
            Some(plan),
        ) => {
            assert_eq!(
                (*state_changes, *published),
                (plan.changes.len(), plan.outbox.len())
            );
        }
        (Ok(RecordOutcome::Duplicate { .. }), _) | (Err(_), None) => {}
        (Ok(outcome), None) => panic!("store applied what the rules rejected: {outcome:?}"),
        (Err(e), Some(_)) => {
            // The fixture states already hold the fixtures' markers: a modified fixture with
            // an already-used event id is a payload conflict, not a rule failure.
            assert_eq!(e.kind(), "payload_conflict", "{e}");
        }
    }
    if let Ok(outcome) = first {
        let again = block_on(process_record(&store, record, now()));
        assert!(
            matches!(again, Ok(RecordOutcome::Duplicate { .. })),
            "second delivery of an applied record: {again:?} (first {outcome:?})"
        );
        let batch = match &outcome {
            RecordOutcome::Applied { batch_id, .. } | RecordOutcome::Duplicate { batch_id, .. } => {
                batch_id.clone()
            }
        };
        if let Some(aggregate) = store.aggregate(&batch) {
            if let Some(status) = api::batch_status::batch_status(&aggregate) {
                serde_json::to_vec(&status).unwrap_or_else(|e| panic!("status JSON: {e}"));
            }
            if let Some(body) = api::assessments::batch_assessments(&aggregate) {
                serde_json::to_vec(&body).unwrap_or_else(|e| panic!("assessments JSON: {e}"));
            }
            for job in aggregate.cj_jobs.values() {
                let detail = api::assessments::assessment_detail(job, "owner");
                serde_json::to_vec(&detail).unwrap_or_else(|e| panic!("detail JSON: {e}"));
            }
        }
    }
});
