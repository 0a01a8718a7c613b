//! Property: any permutation of a batch's records, with duplicates mixed in (the same record
//! twice, or re-published with a new event id), yields the same final state and publishes the
//! same messages — same ids, each once, and the same content apart from processing times — as
//! the in-order run of the same records (issue 10; docs/deviations.md, "Published events").
//!
//! A permutation models every interleaving ingest can produce: Lambda runs an MSK event's
//! partitions concurrently and splits a partition over invocations, but each commit of a batch
//! is serialised by the root's version condition, so the batch sees its records one at a time
//! in *some* order. BOS's pipeline-completed first is one of them (and forced in a share of the
//! cases). The shuffled run also uses another clock, so processing times differ.
//!
//! Every record a per-essay fast path applies from the root and its own essay (issue 15) is
//! also planned from the whole batch, and the two plans must be equal; after every record the
//! root's derived values and counters must be what the whole batch's facts give.

use proptest::prelude::*;
use ras_domain::contracts::Timestamp;
use ras_domain::model::BatchAggregate;
use ras_domain::model::MissingFacts;
use ras_domain::plan::StateChange;
use ras_domain::ports::AggregateStore;
use ras_domain::projection;
use ras_domain::rules::{self, RecordContext};
use ras_domain::service::{emit_overdue, process_record, ConsumedRecord, DecodedRecord};
use ras_domain::testing::batches::*;
use ras_domain::testing::events::*;
use ras_domain::testing::{block_on, InMemoryStore};
use std::collections::BTreeSet;
use uuid::Uuid;

const B: &str = "batch-p";
const GRACE_SECONDS: u64 = 900;

fn essay() -> impl Strategy<Value = EssayShape> {
    (
        any::<bool>(),
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(slot, spellcheck_ok, cj_ok)| EssayShape {
            slot,
            spellcheck_ok,
            cj_ok,
        })
}

fn shape() -> impl Strategy<Value = BatchShape> {
    (
        prop::collection::vec(essay(), 1..7),
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.75),
    )
        .prop_map(|(essays, anchor, nlp, bos_completion)| BatchShape {
            essays,
            anchor,
            nlp,
            bos_completion,
        })
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

type Published = std::collections::BTreeMap<Uuid, (String, &'static str, serde_json::Value)>;

/// The plan `record` gets from the root and its own essay ([`rules::apply_to_essay`]), when
/// that path takes it, checked against the plan the whole batch gives: the same records, the
/// same messages (the root read without the registration's essay ids, which the plan then
/// leaves as stored). True when the fast path took it.
fn fast_path_agrees(store: &InMemoryStore, record: &TestRecord, now: Timestamp) -> bool {
    let DecodedRecord::Event {
        event, event_key, ..
    } = DecodedRecord::decode(record.topic, &record.value)
    else {
        panic!("test records decode")
    };
    let Some(essay_id) = event.payload.essay_id() else {
        return false;
    };
    let ctx = RecordContext::for_event(&event, event_key, now, now);
    let whole = block_on(store.load(B)).unwrap();
    let view = block_on(store.load_essay(B, essay_id)).unwrap();
    let Some(mut fast) = rules::apply_to_essay(&view, &event.payload, &ctx).unwrap() else {
        return false;
    };
    let expected = rules::apply(&whole, &event.payload, &ctx).unwrap();
    for change in &mut fast.changes {
        if let (StateChange::Root(root), Some(stored)) = (change, whole.root.registration.as_ref())
        {
            if let Some(registration) = root.registration.as_mut() {
                registration.essay_ids = stored.essay_ids.clone();
            }
        }
    }
    assert_eq!(fast, expected, "{}", record.topic);
    true
}

fn run(
    records: &[TestRecord],
    mut clock: impl FnMut() -> Timestamp,
) -> (BatchAggregate, Published, usize, usize) {
    let store = InMemoryStore::new();
    let mut fast = 0;
    for r in records {
        let now = clock();
        fast += usize::from(fast_path_agrees(&store, r, now));
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
        // What the root stores for queries is what the whole batch's facts give, whichever
        // path (the root and one essay, or the whole batch) applied the record.
        let stored = store.aggregate(B).unwrap();
        assert_eq!(stored.root.derived, projection::derive_batch(&stored));
        assert_eq!(
            stored.root.essay_counters,
            projection::essay_counters(&stored)
        );
    }
    // BOS's report is the last fact; without it the batch waits for the facts timer, which
    // emits it once the grace period is over, flagging BOS's report as missing.
    let waiting = store.aggregate(B).unwrap();
    if waiting.root.pipeline_completion.is_none() {
        assert!(waiting.root.results_ready.is_none());
        let since = waiting
            .root
            .awaiting_facts_since
            .expect("the every-phase rule holds");
        let after_grace =
            Timestamp::from_unix_micros(since.unix_micros() + GRACE_SECONDS as i64 * 1_000_000)
                .unwrap();
        block_on(emit_overdue(&store, B, after_grace, GRACE_SECONDS)).unwrap();
    }
    // Commit counts and processing times legitimately differ between runs.
    let mut agg = store.aggregate(B).unwrap().without_versions();
    if agg.root.awaiting_facts_since.is_some() {
        agg.root.awaiting_facts_since = Some(at_minute(0.0));
    }
    if let Some(e) = agg.root.results_ready.as_mut() {
        e.emitted_at = at_minute(0.0);
    }
    for job in agg.cj_jobs.values_mut() {
        if let Some(e) = job.assessment_completed.as_mut() {
            e.emitted_at = at_minute(0.0);
        }
    }
    let outbox = store.outbox();
    (agg, published_content(&outbox), outbox.len(), fast)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_order_with_duplicates_gives_the_same_state_and_the_same_published_messages(
        shape in shape(),
        dups in prop::collection::vec((0usize..64, any::<bool>()), 0..6),
        seed in any::<u64>(),
        bos_first in prop::bool::weighted(0.3),
    ) {
        let in_order = with_duplicates(&batch_records(B, "teacher-p", &shape, 0), &dups);
        let mut shuffled = in_order.clone();
        // Fisher–Yates with a proptest-chosen seed (shrinks with the other inputs).
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        if bos_first {
            // BOS's completion overtakes everything (the race of issue 10).
            if let Some(i) = shuffled.iter().position(|r| r.topic == "huleedu.batch.pipeline.completed.v1") {
                let bos = shuffled.remove(i);
                shuffled.insert(0, bos);
            }
        }
        let start = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
        let (expected_state, expected, _, fast) = run(&in_order, ticking_clock(start));
        // In the producers' order every slot assignment and spellcheck result comes before
        // ELS's first outcome: each is applied from the root and its essay (duplicates are
        // caught by the marker before any plan is committed, but planned all the same).
        prop_assert!(fast >= shape.essays.len(), "{} fast-path records", fast);
        let later = Timestamp::parse("2025-11-28T08:30:00Z").unwrap();
        let (state, published, sent, _) = run(&shuffled, ticking_clock(later));
        prop_assert_eq!(&state, &expected_state);
        prop_assert_eq!(sent, published.len(), "an event was emitted twice");
        let ids: BTreeSet<_> = published.keys().collect();
        let expected_ids: BTreeSet<_> = expected.keys().collect();
        prop_assert_eq!(ids, expected_ids);
        for (id, message) in &published {
            prop_assert_eq!(Some(message), expected.get(id), "content of {}", id);
        }
        // Every well-formed batch completes: results ready is out and nothing waits. It went out
        // with every fact, or — BOS's report never came — on the timer with that flagged.
        prop_assert!(state.root.results_ready.is_some());
        prop_assert_eq!(state.root.awaiting_facts_since, None);
        let expected_missing = (!shape.bos_completion).then(|| MissingFacts {
            pipeline_completion: true,
            ..MissingFacts::default()
        });
        prop_assert_eq!(&state.root.results_ready_missing, &expected_missing);
    }
}
