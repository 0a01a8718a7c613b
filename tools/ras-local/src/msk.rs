//! Kafka records wrapped into the event Lambda's MSK event source delivers: records grouped by
//! `"<topic>-<partition>"`, key and value base64, header values as signed bytes, timestamps in
//! milliseconds.

use aws_lambda_events::event::kafka::KafkaEvent;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const EVENT_SOURCE_ARN: &str =
    "arn:aws:kafka:eu-north-1:123456789012:cluster/huleedu-local/6b0c7b1e-3f5a-4d8e-9a1c-2b3d4e5f6a7b-1";
pub const BOOTSTRAP_SERVERS: &str =
    "b-1.huleedu-local.abc123.c2.kafka.eu-north-1.amazonaws.com:9098,b-2.huleedu-local.abc123.c2.kafka.eu-north-1.amazonaws.com:9098";

/// 2025-11-27T10:00:00Z in milliseconds.
pub const BASE_TIMESTAMP_MS: i64 = 1_764_237_600_000;

/// A record's value as it appears in the event.
#[derive(Clone, Debug, PartialEq)]
pub enum MskValue {
    /// Bytes, base64-encoded into the event.
    Bytes(Vec<u8>),
    /// A `value` string put into the event as is (e.g. broken base64).
    Raw(String),
    /// `"value": null` (a tombstone).
    Null,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MskRecord {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: MskValue,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl MskRecord {
    pub fn new(topic: &str, partition: i64, offset: i64, value: impl Into<Vec<u8>>) -> Self {
        MskRecord {
            topic: topic.to_string(),
            partition,
            offset,
            timestamp_ms: BASE_TIMESTAMP_MS + offset,
            key: None,
            value: MskValue::Bytes(value.into()),
            headers: Vec::new(),
        }
    }

    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_value(mut self, value: MskValue) -> Self {
        self.value = value;
        self
    }

    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn with_timestamp_ms(mut self, ms: i64) -> Self {
        self.timestamp_ms = ms;
        self
    }

    /// The key of the event's `records` map.
    pub fn partition_key(&self) -> String {
        partition_key(&self.topic, self.partition)
    }

    /// The value's base64 as it appears in the event (`None` for a tombstone).
    pub fn value_base64(&self) -> Option<String> {
        match &self.value {
            MskValue::Bytes(bytes) => Some(BASE64.encode(bytes)),
            MskValue::Raw(text) => Some(text.clone()),
            MskValue::Null => None,
        }
    }

    pub fn to_json(&self) -> Value {
        let headers: Vec<Value> = self
            .headers
            .iter()
            .map(|(name, bytes)| {
                let signed: Vec<i8> = bytes.iter().map(|b| *b as i8).collect();
                let mut header = Map::new();
                header.insert(name.clone(), json!(signed));
                Value::Object(header)
            })
            .collect();
        json!({
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
            "timestampType": "CREATE_TIME",
            "key": self.key.as_ref().map(|k| BASE64.encode(k)),
            "value": self.value_base64(),
            "headers": headers,
        })
    }
}

pub fn partition_key(topic: &str, partition: i64) -> String {
    format!("{topic}-{partition}")
}

/// The MSK event JSON of `records`: grouped by partition (partitions in order of first
/// appearance, records in the given order — which need not be offset order).
pub fn msk_event_json(records: &[MskRecord]) -> Value {
    msk_event_json_from(records, EVENT_SOURCE_ARN, BOOTSTRAP_SERVERS)
}

/// [`msk_event_json`] with the event source's cluster ARN and bootstrap servers (the MSK
/// event-source emulator names the local broker).
pub fn msk_event_json_from(
    records: &[MskRecord],
    event_source_arn: &str,
    bootstrap_servers: &str,
) -> Value {
    let mut order: Vec<String> = Vec::new();
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in records {
        let key = r.partition_key();
        if !grouped.contains_key(&key) {
            order.push(key.clone());
        }
        grouped.entry(key).or_default().push(r.to_json());
    }
    let mut map = Map::new();
    for key in order {
        let list = grouped.remove(&key).unwrap_or_default();
        map.insert(key, Value::Array(list));
    }
    json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": event_source_arn,
        "bootstrapServers": bootstrap_servers,
        "records": map,
    })
}

/// Parse event JSON the way the function's bootstrap does (`ingest::kafka::parse_event`).
pub fn try_kafka_event(json: &Value) -> Result<KafkaEvent, serde_json::Error> {
    ingest::kafka::parse_event(json.clone())
}

/// [`try_kafka_event`] for tests: panics when the JSON is not a Kafka event.
pub fn kafka_event(json: &Value) -> KafkaEvent {
    try_kafka_event(json).unwrap_or_else(|e| panic!("not a Kafka event: {e}"))
}

/// `msk_event_json` + `try_kafka_event`.
pub fn try_msk_event(records: &[MskRecord]) -> Result<KafkaEvent, serde_json::Error> {
    try_kafka_event(&msk_event_json(records))
}

/// `msk_event_json` + `kafka_event` (tests).
pub fn msk_event(records: &[MskRecord]) -> KafkaEvent {
    kafka_event(&msk_event_json(records))
}

/// Builds records with consecutive offsets per partition.
#[derive(Clone, Debug, Default)]
pub struct MskBatch {
    pub records: Vec<MskRecord>,
    next_offsets: BTreeMap<String, i64>,
}

impl MskBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start the offsets of a partition at `offset`.
    pub fn starting_at(mut self, topic: &str, partition: i64, offset: i64) -> Self {
        self.next_offsets
            .insert(partition_key(topic, partition), offset);
        self
    }

    /// Append a record at the partition's next offset; returns its offset.
    pub fn push(&mut self, topic: &str, partition: i64, value: impl Into<Vec<u8>>) -> i64 {
        self.push_record(MskRecord::new(topic, partition, 0, value))
    }

    /// Append a record (its offset is replaced by the partition's next one); returns it.
    pub fn push_record(&mut self, mut record: MskRecord) -> i64 {
        let next = self
            .next_offsets
            .entry(record.partition_key())
            .or_insert(100);
        record.offset = *next;
        record.timestamp_ms = BASE_TIMESTAMP_MS + *next;
        *next += 1;
        let offset = record.offset;
        self.records.push(record);
        offset
    }

    pub fn json(&self) -> Value {
        msk_event_json(&self.records)
    }

    pub fn event(&self) -> KafkaEvent {
        msk_event(&self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape() {
        let r = MskRecord::new("t.v1", 2, 7, b"{}".to_vec())
            .with_key(b"k".to_vec())
            .with_header("h", vec![0xff, 0x41]);
        let j = msk_event_json(&[r]);
        assert_eq!(j["eventSource"], "aws:kafka");
        let rec = &j["records"]["t.v1-2"][0];
        assert_eq!(rec["value"], "e30=");
        assert_eq!(rec["key"], "aw==");
        assert_eq!(rec["headers"][0]["h"], json!([-1, 65]));
        let e = kafka_event(&j);
        assert_eq!(e.records["t.v1-2"][0].offset, 7);
    }
}
