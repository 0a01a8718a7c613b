//! Property: any permutation of a batch's events, with duplicates mixed in (the same record
//! twice, or re-published with a new event id), yields the same final state and the same set of
//! emitted events (same ids, each once) as the in-order run of the same records.

use proptest::prelude::*;
use ras_domain::contracts::Timestamp;
use ras_domain::model::BatchAggregate;
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::events::*;
use ras_domain::testing::{block_on, InMemoryStore};
use std::collections::BTreeSet;
use uuid::Uuid;

const B: &str = "batch-p";

#[derive(Clone, Debug)]
struct Shape {
    essays: Vec<(bool, bool)>, // (has slot, spellcheck succeeds)
    anchor: bool,
    bos_completion: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        prop::collection::vec((any::<bool>(), prop::bool::weighted(0.75)), 1..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(essays, anchor, bos_completion)| Shape {
            essays,
            anchor,
            bos_completion,
        })
}

fn records(shape: &Shape) -> Vec<TestRecord> {
    let ids: Vec<String> = (0..shape.essays.len()).map(|i| format!("e{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        event_id(n)
    };
    let mut out = vec![registration(
        next(),
        B,
        "teacher-p",
        &id_refs,
        at_minute(0.0),
    )];
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (i, (slot, success)) in shape.essays.iter().enumerate() {
        if *slot {
            out.push(slot_assigned(
                next(),
                B,
                &ids[i],
                at_minute(1.0 + i as f64 * 0.1),
            ));
        }
        let status = if *success {
            "spellchecked_success"
        } else {
            "spellcheck_failed"
        };
        out.push(spellcheck_result(
            next(),
            B,
            &ids[i],
            status,
            at_minute(2.0 + i as f64 * 0.1),
        ));
        if *success {
            ok.push(ids[i].as_str())
        } else {
            failed.push(ids[i].as_str())
        }
    }
    let status = if failed.is_empty() {
        "completed_successfully"
    } else {
        "completed_with_failures"
    };
    out.push(phase_outcome(
        next(),
        B,
        "spellcheck",
        status,
        &ok,
        &failed,
        at_minute(5.0),
    ));
    if !ok.is_empty() {
        let students: Vec<StudentResult> = ok
            .iter()
            .enumerate()
            .map(|(rank, id)| (*id, rank as i64 + 1, 1.0 - rank as f64 * 0.3, "B"))
            .collect();
        out.push(assessment_result(
            next(),
            B,
            "job-1",
            &students,
            shape.anchor,
            at_minute(20.0),
        ));
    }
    out.push(phase_outcome(
        next(),
        B,
        "cj_assessment",
        "completed_successfully",
        &ok,
        &[],
        at_minute(21.0),
    ));
    if shape.bos_completion {
        let final_status = if failed.is_empty() {
            "completed_successfully"
        } else {
            "completed_with_failures"
        };
        out.push(pipeline_completed(
            next(),
            B,
            final_status,
            &["spellcheck", "cj_assessment"],
            ok.len() as i64,
            failed.len() as i64,
            at_minute(25.0),
        ));
    }
    out
}

/// Insert duplicates right after their originals: `(index, republish?)`.
fn with_duplicates(records: &[TestRecord], dups: &[(usize, bool)]) -> Vec<TestRecord> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        out.push(r.clone());
        for (k, (idx, republish)) in dups.iter().enumerate() {
            if idx % records.len() == i {
                out.push(if *republish {
                    r.republished(Uuid::from_u128(0xd0d0_0000 + k as u128))
                } else {
                    r.clone()
                });
            }
        }
    }
    out
}

fn run(records: &[TestRecord]) -> (BatchAggregate, Vec<Uuid>) {
    let store = InMemoryStore::new();
    let now = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
    for r in records {
        block_on(process_record(
            &store,
            ConsumedRecord {
                topic: r.topic,
                value: &r.value,
                record_time: now,
            },
            now,
        ))
        .unwrap();
    }
    let mut agg = store.aggregate(B).unwrap();
    agg.root.version = 0; // counts commits, which legitimately differ
    (agg, store.outbox().iter().map(|m| m.event_id).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_order_with_duplicates_gives_the_same_outcome(
        shape in shape(),
        dups in prop::collection::vec((0usize..64, any::<bool>()), 0..6),
        seed in any::<u64>(),
    ) {
        let in_order = with_duplicates(&records(&shape), &dups);
        let mut shuffled = in_order.clone();
        // Fisher–Yates with a proptest-chosen seed (shrinks with the other inputs).
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (expected_state, expected_events) = run(&in_order);
        let (state, events) = run(&shuffled);
        prop_assert_eq!(&state, &expected_state);
        let unique: BTreeSet<_> = events.iter().collect();
        prop_assert_eq!(unique.len(), events.len(), "an event was emitted twice");
        let expected: BTreeSet<_> = expected_events.iter().collect();
        prop_assert_eq!(unique, expected);
        // Every well-formed batch completes: results ready + its notification are among them.
        prop_assert!(state.root.results_ready.is_some());
    }
}
