//! CPU of the DynamoDB item conversions (issue 12, item 2: state items straight through
//! `serde_dynamo`; item 1: one outbox item shape): a completed 50-essay batch (registration,
//! slots, spellcheck and CJ results, ELS's phase outcomes, BOS's completion) encoded to the
//! items the store writes (root, essays, phases) and decoded back from them, and its published
//! messages to outbox items and back.
//! Written against the item functions' public API, which issue 12 kept, so the same file runs
//! on the code before and after it. `cargo bench -p ras-aws --bench items`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ras_aws::dynamo::items::{
    decode_essay, decode_phase, decode_root, encode_essay, encode_phase, encode_root, Item,
};
use ras_aws::dynamo::OutboxItem;
use ras_domain::model::BatchAggregate;
use ras_domain::plan::OutboxMessage;
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::batches::{batch_records, BatchShape, EssayShape};
use ras_domain::testing::events as ev;
use ras_domain::testing::{block_on, InMemoryStore};

const BATCH: &str = "bench-batch";
const ESSAYS: usize = 50;

/// The completed batch and what it published.
fn completed_batch() -> (BatchAggregate, Vec<OutboxMessage>) {
    let store = InMemoryStore::new();
    let essay = EssayShape {
        slot: true,
        spellcheck_ok: true,
        cj_ok: true,
    };
    let shape = BatchShape {
        essays: vec![essay; ESSAYS],
        anchor: false,
        nlp: false,
        bos_completion: true,
    };
    let now = ev::at_minute(30.0);
    for record in batch_records(BATCH, "teacher-1", &shape, 0) {
        let consumed = ConsumedRecord {
            topic: record.topic,
            value: &record.value,
            record_time: now,
        };
        block_on(process_record(&store, consumed, now)).expect("the record applies");
    }
    let aggregate = store.aggregate(BATCH).expect("the batch is stored");
    assert!(
        aggregate.root.results_ready.is_some(),
        "the batch completed"
    );
    (aggregate, store.outbox())
}

fn encode(aggregate: &BatchAggregate) -> Vec<Item> {
    let mut items = vec![encode_root(&aggregate.root).expect("root")];
    for essay in aggregate.essays.values() {
        items.push(encode_essay(essay).expect("essay"));
    }
    for phase in aggregate.phases.values() {
        items.push(encode_phase(BATCH, phase).expect("phase"));
    }
    items
}

fn decode(items: &[Item]) -> usize {
    let mut decoded = 0;
    let root = decode_root(items[0].clone()).expect("root");
    decoded += root.batch_id.len();
    for item in &items[1..=ESSAYS] {
        decoded += decode_essay(item.clone()).expect("essay").essay_id.len();
    }
    for item in &items[ESSAYS + 1..] {
        decode_phase(item.clone()).expect("phase");
        decoded += 1;
    }
    decoded
}

fn bench_state_items(c: &mut Criterion) {
    let (aggregate, _) = completed_batch();
    let items = encode(&aggregate);
    let mut group = c.benchmark_group("state_items");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.bench_function("encode_50_essay_batch", |b| {
        b.iter(|| black_box(encode(black_box(&aggregate))).len())
    });
    // The clones of the items are part of both sides (the store decodes owned items).
    group.bench_function("decode_50_essay_batch", |b| {
        b.iter(|| decode(black_box(&items)))
    });
    group.finish();
}

fn bench_outbox_items(c: &mut Criterion) {
    let (_, messages) = completed_batch();
    assert!(!messages.is_empty());
    let items: Vec<Item> = messages
        .iter()
        .map(|m| OutboxItem::from_message(m, BATCH).to_item().expect("item"))
        .collect();
    let mut group = c.benchmark_group("outbox_items");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            messages
                .iter()
                .map(|m| {
                    OutboxItem::from_message(black_box(m), BATCH)
                        .to_item()
                        .expect("item")
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            items
                .iter()
                .map(|i| {
                    OutboxItem::from_image(black_box(i.clone()))
                        .expect("item")
                        .body
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_state_items, bench_outbox_items);
criterion_main!(benches);
