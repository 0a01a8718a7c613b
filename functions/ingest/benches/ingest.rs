//! Ingest CPU per record, against SPEC §6 ("decode + domain CPU per record ≤ 20 µs median").
//!
//! * `decode_plan/<topic>`: the pure path of one record — `decode_record`, its idempotency key
//!   and context, `rules::apply` on a prepared aggregate — for each consumed topic's HuleEdu
//!   fixture (the registration on a new batch, the others on the registered fixture batch).
//! * `handler/100_records`: the handler over an in-memory store, for an event of 100 per-essay
//!   records of one registered batch in two partitions (base64, envelope peek, decode, plan,
//!   in-memory commit, per-topic stats): everything but the network.
//!
//! It also prints the store calls per record of that event (1 load + 1 commit on the steady
//! path: one `Query` and one `TransactWriteItems` with the DynamoDB adapter, counted on the
//! wire by `tests/tests/ingest_requests.rs`).
//!
//! `cargo bench -p ingest --bench ingest`

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ingest::handler::{process_event, Deps};
use ras_domain::contracts::{decode_record, Timestamp};
use ras_domain::ids;
use ras_domain::model::BatchAggregate;
use ras_domain::plan::Plan;
use ras_domain::rules::{self, RecordContext};
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::events as ev;
use ras_domain::testing::{block_on, InMemoryStore, MemoryDeadLetters, RecordingStore};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

const TOPICS: [&str; 6] = [
    "huleedu.batch.essays.registered.v1",
    "huleedu.els.essay.slot.assigned.v1",
    "huleedu.essay.spellcheck.results.v1",
    "huleedu.els.batch.phase.outcome.v1",
    "huleedu.assessment.result.published.v1",
    "huleedu.batch.pipeline.completed.v1",
];
const FIXTURE_BATCH: &str = "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01";

fn fixture(topic: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/huleedu")
        .join(format!("{topic}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn now() -> Timestamp {
    Timestamp::parse("2025-11-27T11:00:00Z").unwrap_or_else(Timestamp::now)
}

/// The fixture batch after its registration.
fn registered_fixture_batch() -> BatchAggregate {
    let store = InMemoryStore::new();
    let registration = fixture(TOPICS[0]);
    let record = ConsumedRecord {
        topic: TOPICS[0],
        value: &registration,
        record_time: now(),
    };
    block_on(process_record(&store, record, now())).expect("registration applies");
    store.aggregate(FIXTURE_BATCH).expect("stored")
}

/// decode → key → context → plan: what `process_record` does between its two I/O calls.
fn decode_and_plan(topic: &str, value: &[u8], agg: &BatchAggregate) -> Plan {
    let event = decode_record(topic, value).expect("decodes");
    let key = ids::event_key(event.event_id, topic, value);
    let ctx = RecordContext::for_event(&event, key, now(), now());
    rules::apply(agg, &event.payload, &ctx).expect("plans")
}

fn bench_decode_plan(c: &mut Criterion) {
    let registered = registered_fixture_batch();
    let empty = BatchAggregate::new(FIXTURE_BATCH);
    let mut group = c.benchmark_group("decode_plan");
    for topic in TOPICS {
        let value = fixture(topic);
        let agg = if topic == TOPICS[0] {
            &empty
        } else {
            &registered
        };
        let plan = decode_and_plan(topic, &value, agg);
        assert!(!plan.is_noop(), "{topic}: the fixture changes the batch");
        group.throughput(Throughput::Elements(1));
        group.bench_function(topic, |b| {
            b.iter(|| decode_and_plan(black_box(topic), black_box(&value), agg))
        });
    }
    group.finish();
}

/// A registered batch of `n` essays, each with its slot and spellcheck result.
fn busy_batch(n: usize) -> BatchAggregate {
    let store = InMemoryStore::new();
    let essays: Vec<String> = (0..n).map(essay).collect();
    let ids: Vec<&str> = essays.iter().map(String::as_str).collect();
    let mut records = vec![ev::registration(
        ev::event_id(1),
        BATCH,
        "teacher-1",
        &ids,
        ev::at_minute(0.0),
    )];
    for (i, id) in essays.iter().enumerate() {
        let n = i as u64;
        records.push(ev::slot_assigned(
            ev::event_id(10_000 + n),
            BATCH,
            id,
            ev::at_minute(1.0),
        ));
        records.push(ev::spellcheck_result(
            ev::event_id(20_000 + n),
            BATCH,
            id,
            "spellchecked_success",
            ev::at_minute(2.0),
        ));
    }
    for r in &records {
        let record = ConsumedRecord {
            topic: r.topic,
            value: &r.value,
            record_time: now(),
        };
        block_on(process_record(&store, record, now())).expect("applies");
    }
    store.aggregate(BATCH).expect("stored")
}

/// decode + plan of one more essay's slot assignment, by the size of the batch it joins: the
/// rules clone the aggregate and re-derive its status from every essay.
fn bench_batch_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_plan_by_batch_size");
    for n in [3usize, 50, 500] {
        let agg = busy_batch(n);
        let slot = ev::slot_assigned(ev::event_id(99_999), BATCH, "essay-new", ev::at_minute(1.5));
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("slot_assigned/{n}_essays"), |b| {
            b.iter(|| decode_and_plan(black_box(slot.topic), black_box(&slot.value), &agg))
        });
    }
    group.finish();
}

const BATCH: &str = "bench-batch";
const ESSAYS: usize = 50;

fn essay(i: usize) -> String {
    format!("essay-{i:03}")
}

/// A registered batch of [`ESSAYS`] essays in the in-memory store, which counts the store calls
/// (a DynamoDB `Query` per load, a `TransactWriteItems` per commit).
fn registered_store() -> RecordingStore {
    let store = InMemoryStore::new();
    let essays: Vec<String> = (0..ESSAYS).map(essay).collect();
    let ids: Vec<&str> = essays.iter().map(String::as_str).collect();
    let registration = ev::registration(
        ev::event_id(1),
        BATCH,
        "teacher-1",
        &ids,
        ev::at_minute(0.0),
    );
    let record = ConsumedRecord {
        topic: registration.topic,
        value: &registration.value,
        record_time: now(),
    };
    block_on(process_record(&store, record, now())).expect("registration applies");
    RecordingStore::new(store)
}

/// 50 slot assignments and 50 spellcheck results as an MSK event (two partitions).
fn hundred_records() -> Value {
    let mut slots = Vec::new();
    let mut spellchecks = Vec::new();
    for i in 0..ESSAYS {
        let slot = ev::slot_assigned(
            ev::event_id(100 + i as u64),
            BATCH,
            &essay(i),
            ev::at_minute(1.0),
        );
        let spell = ev::spellcheck_result(
            ev::event_id(200 + i as u64),
            BATCH,
            &essay(i),
            "spellchecked_success",
            ev::at_minute(2.0),
        );
        for (list, record) in [(&mut slots, slot), (&mut spellchecks, spell)] {
            let offset = list.len();
            list.push(json!({
                "topic": record.topic, "partition": 0, "offset": offset,
                "timestamp": 1_764_237_600_000i64 + offset as i64, "timestampType": "CREATE_TIME",
                "key": BASE64.encode(essay(i)), "value": BASE64.encode(&record.value), "headers": [],
            }));
        }
    }
    json!({
        "eventSource": "aws:kafka",
        "records": {
            "huleedu.els.essay.slot.assigned.v1-0": slots,
            "huleedu.essay.spellcheck.results.v1-0": spellchecks,
        }
    })
}

fn bench_handler(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let event_json = hundred_records();
    let clock: ingest::handler::Clock = Arc::new(now);

    // Store calls per record on the steady path.
    let deps =
        Deps::new(registered_store(), MemoryDeadLetters::new()).with_clock(Arc::clone(&clock));
    let event = ingest::kafka::parse_event(event_json.clone()).expect("event");
    let report = runtime.block_on(process_event(&deps, event, None));
    assert!(report.response().is_success());
    assert_eq!(deps.dead_letters.sends(), 0);
    assert_eq!(report.metrics.total().processed, 100);
    println!(
        "store calls per record (steady path, 100 records): load {:.2}, commit {:.2}",
        f64::from(deps.store.loads()) / 100.0,
        f64::from(deps.store.commit_calls()) / 100.0,
    );

    let mut group = c.benchmark_group("handler");
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_records", |b| {
        b.iter_batched(
            || {
                let deps = Deps::new(registered_store(), MemoryDeadLetters::new())
                    .with_clock(Arc::clone(&clock));
                (deps, event_json.clone())
            },
            |(deps, json)| {
                let event = ingest::kafka::parse_event(json).expect("event");
                let report = runtime.block_on(process_event(&deps, event, None));
                black_box(report.partitions.len())
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_decode_plan, bench_batch_size, bench_handler);
criterion_main!(benches);
