//! Poison records through the ingest handler against the local AWS-API server: each kind
//! lands in the dead-letter queue (SQS) with its raw bytes, topic, partition, offset,
//! timestamp, error kind and message, and does not block the next record of its partition.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ingest::handle;
use ingest::handler::process_event;
use ras_domain::contracts::Timestamp;
use ras_domain::ports::AggregateStore;
use ras_domain::testing::events::{self as ev, at_minute};
use ras_tests::huleedu::{Scope, REGISTERED, SLOT_ASSIGNED};
use ras_tests::ingest_support::{dispositions, IngestEnv};
use ras_tests::msk::{kafka_event, msk_event_json, MskBatch, MskRecord, MskValue};
use serde_json::Value;
use std::collections::BTreeMap;

const UNKNOWN_TOPIC: &str = "huleedu.essay.unknown.v1";

/// A slot assignment whose essay item exceeds DynamoDB's 400 KB item limit: a 450 KB file name.
/// (A registration of any size fits: its essay ids are roster chunks of ≤ 300 KB.)
fn oversized_slot(scope: &Scope) -> Vec<u8> {
    let other = scope.another_batch();
    let mut json = ev::slot_assigned(
        scope.event_id(900),
        &other.batch,
        &scope.essay(900),
        at_minute(1.0),
    )
    .json();
    json["data"]["original_file_name"] = Value::String("x".repeat(450_000));
    serde_json::to_vec(&json).expect("JSON")
}

#[tokio::test]
async fn each_kind_of_poison_record_is_dead_lettered_and_does_not_block_its_partition() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let scope = Scope::new();
    let b = scope.batch.as_str();
    let slot =
        |n: u64| ev::slot_assigned(scope.event_id(n), b, &scope.essay(n), at_minute(1.0)).value;
    let slot_json = |n: u64| -> Value { serde_json::from_slice(&slot(n)).expect("JSON") };
    let mut missing_field = slot_json(20);
    if let Some(data) = missing_field["data"].as_object_mut() {
        data.remove("essay_id");
    }
    let mut empty_id = slot_json(21);
    empty_id["data"]["essay_id"] = Value::String(String::new());
    let mut wrong_type = slot_json(22);
    wrong_type["data"]["timestamp"] = Value::from(vec![1, 2]);
    let registration = ev::registration(
        scope.event_id(50),
        b,
        &scope.user,
        &[&scope.essay(1)],
        at_minute(0.0),
    );
    let mut conflicting = registration.json();
    conflicting["data"]["expected_essay_count"] = Value::from(7);

    // (record, expected error kind, or None for a valid record that must be applied)
    let mut batch = MskBatch::new();
    let mut expected: BTreeMap<(String, i64), Option<&str>> = BTreeMap::new();
    let mut add = |batch: &mut MskBatch, record: MskRecord, kind: Option<&'static str>| {
        let key = record.partition_key();
        let offset = batch.push_record(record);
        expected.insert((key, offset), kind);
    };
    let slot_record = |value: MskValue| {
        MskRecord::new(SLOT_ASSIGNED, 2, 0, Vec::new())
            .with_key(b"essay-key".to_vec())
            .with_header("traceparent", b"00-abc-01".to_vec())
            .with_value(value)
    };
    add(&mut batch, slot_record(MskValue::Bytes(slot(1))), None);
    add(
        &mut batch,
        slot_record(MskValue::Raw("!!! not base64 !!!".into())),
        Some("invalid_base64"),
    );
    add(&mut batch, slot_record(MskValue::Bytes(slot(2))), None);
    add(
        &mut batch,
        slot_record(MskValue::Null),
        Some("missing_value"),
    );
    add(
        &mut batch,
        slot_record(MskValue::Bytes(vec![b'{', 0xc3, 0x28, b'}'])),
        Some("invalid_utf8"),
    );
    add(
        &mut batch,
        slot_record(MskValue::Bytes(b"{\"data\": {\"batch_id\": ".to_vec())),
        Some("invalid_json"),
    );
    add(
        &mut batch,
        slot_record(MskValue::Bytes(b"[1, 2, 3]".to_vec())),
        Some("schema_violation"),
    );
    add(
        &mut batch,
        slot_record(MskValue::Bytes(
            serde_json::to_vec(&missing_field).expect("JSON"),
        )),
        Some("schema_violation"),
    );
    add(
        &mut batch,
        slot_record(MskValue::Bytes(
            serde_json::to_vec(&wrong_type).expect("JSON"),
        )),
        Some("schema_violation"),
    );
    add(
        &mut batch,
        slot_record(MskValue::Bytes(
            serde_json::to_vec(&empty_id).expect("JSON"),
        )),
        Some("constraint_violation"),
    );
    add(&mut batch, slot_record(MskValue::Bytes(slot(3))), None);

    add(
        &mut batch,
        MskRecord::new(UNKNOWN_TOPIC, 0, 0, slot(4)),
        Some("unknown_topic"),
    );
    add(
        &mut batch,
        MskRecord::new(UNKNOWN_TOPIC, 0, 0, b"{}".to_vec()),
        Some("unknown_topic"),
    );

    add(
        &mut batch,
        MskRecord::new(REGISTERED, 1, 0, registration.value.clone()),
        None,
    );
    add(
        &mut batch,
        MskRecord::new(
            REGISTERED,
            1,
            0,
            serde_json::to_vec(&conflicting).expect("JSON"),
        ),
        Some("payload_conflict"),
    );
    add(
        &mut batch,
        MskRecord::new(SLOT_ASSIGNED, 3, 0, oversized_slot(&scope)),
        Some("item_too_large"),
    );
    let other = scope.another_batch();
    let last = ev::registration(
        scope.event_id(51),
        &other.batch,
        &scope.user,
        &[&scope.essay(9)],
        at_minute(0.0),
    );
    add(
        &mut batch,
        MskRecord::new(REGISTERED, 1, 0, last.value.clone()),
        None,
    );

    // Through the entry point, from the event's JSON text.
    let json = batch.json();
    let text = serde_json::to_string(&json).expect("JSON");
    let event = kafka_event(&serde_json::from_str(&text).expect("JSON"));
    let response = handle(&deps, event).await;
    assert!(response.is_success(), "{:?}", response.batch_item_failures);

    // Every poison record is in the queue, once, with everything needed to re-drive it.
    let letters = env.dead_letters().await;
    let poison: Vec<(&(String, i64), &&str)> = expected
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|kind| (k, kind)))
        .collect();
    assert_eq!(letters.len(), poison.len(), "{letters:#?}");
    let raw: BTreeMap<(String, i64), &MskRecord> = batch
        .records
        .iter()
        .map(|r| ((r.partition_key(), r.offset), r))
        .collect();
    for received in &letters {
        let l = &received.letter;
        let key = (format!("{}-{}", l.topic, l.partition), l.offset);
        let kind = expected
            .get(&key)
            .copied()
            .flatten()
            .unwrap_or_else(|| panic!("unexpected dead letter {l:?}"));
        assert_eq!(l.error_kind, kind, "{key:?}: {}", l.error_message);
        assert!(!l.error_message.is_empty());
        let record = raw[&key];
        let value = record.value_base64().unwrap_or_default();
        if received.body["value_truncated"] == Value::Bool(true) {
            // Only the 450 KB slot assignment does not fit in one SQS message (256 KiB).
            assert_eq!(kind, "item_too_large");
            assert!(value.starts_with(&l.value_base64) && l.value_base64.len() > 200_000);
            assert_eq!(received.body["value_base64_length"], value.len());
        } else {
            assert_eq!(l.value_base64, value, "{key:?}: raw bytes");
        }
        assert_eq!(l.key_base64, record.key.as_ref().map(|k| BASE64.encode(k)));
        assert_eq!(
            l.timestamp,
            Timestamp::from_unix_millis(record.timestamp_ms)
        );
        assert_eq!(l.dead_lettered_at, ras_tests::ingest_support::now());
        assert_eq!(received.error_kind_attribute.as_deref(), Some(kind));
        assert_eq!(received.topic_attribute.as_deref(), Some(l.topic.as_str()));
        if kind == "payload_conflict" {
            let expected = format!("event:{}", scope.event_id(50));
            assert_eq!(l.event_key.as_deref(), Some(expected.as_str()));
        }
        if kind == "constraint_violation" {
            // Decoded far enough to know its idempotency key.
            let expected = format!("event:{}", scope.event_id(21));
            assert_eq!(l.event_key.as_deref(), Some(expected.as_str()));
        }
    }
    let kinds: Vec<&str> = letters
        .iter()
        .map(|l| l.letter.error_kind.as_str())
        .collect();
    for kind in [
        "invalid_base64",
        "missing_value",
        "invalid_utf8",
        "invalid_json",
        "schema_violation",
        "constraint_violation",
        "unknown_topic",
        "payload_conflict",
        "item_too_large",
    ] {
        assert!(kinds.contains(&kind), "no dead letter of kind {kind}");
    }

    // ... and the valid records around them were applied.
    let agg = env.store().load(b).await.expect("load");
    for n in [1, 2, 3] {
        assert!(agg.essays[&scope.essay(n)].slot.is_some(), "slot {n}");
    }
    assert_eq!(
        agg.root.registration.as_ref().map(|r| r.essay_count),
        Some(1)
    );
    assert!(env
        .store()
        .load(&other.batch)
        .await
        .expect("load")
        .is_registered());
    env.cleanup().await;
}

/// A poison record's raw bytes are in the dead letter even when the value is not UTF-8, and a
/// key-less tombstone is recorded with an empty value.
#[tokio::test]
async fn dead_letters_carry_the_exact_bytes() {
    let env = IngestEnv::new().await;
    let deps = env.deps();
    let bytes: Vec<u8> = (0u8..=255).collect();
    let records = [
        MskRecord::new(SLOT_ASSIGNED, 7, 70, bytes.clone()),
        MskRecord::new(SLOT_ASSIGNED, 7, 71, Vec::new()).with_value(MskValue::Null),
    ];
    let report = process_event(&deps, kafka_event(&msk_event_json(&records)), None).await;
    assert!(
        report.response().is_success(),
        "{:?}",
        dispositions(&report)
    );
    let letters = env.dead_letters().await;
    assert_eq!(letters.len(), 2);
    assert_eq!(
        BASE64
            .decode(&letters[0].letter.value_base64)
            .expect("base64"),
        bytes
    );
    assert_eq!(letters[0].letter.error_kind, "invalid_utf8");
    assert_eq!(letters[0].letter.key_base64, None);
    assert_eq!(letters[1].letter.value_base64, "");
    assert_eq!(letters[1].letter.error_kind, "missing_value");
    assert_eq!(letters[1].body["partition"], 7);
    assert_eq!(letters[1].body["offset"], 71);
    env.cleanup().await;
}
