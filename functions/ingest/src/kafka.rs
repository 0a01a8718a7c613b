//! The MSK event as Lambda delivers it, and the partial-batch response.
//!
//! An event maps `"<topic>-<partition>"` to that partition's records. Values and keys are
//! base64; header values are arrays of (signed) bytes; timestamps are milliseconds.

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use ras_domain::contracts::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Parse the event Lambda delivers into `aws_lambda_events`' [`KafkaEvent`], with exact record
/// timestamps.
///
/// `aws_lambda_events` 1.2.1 reads the millisecond timestamps through an `f64` and truncates,
/// so e.g. `1764237600100` becomes `…:00.099`; it rejects negative values (Kafka's "no
/// timestamp" is `-1`) and panics on fractional ones. Here each record's `timestamp` is read
/// from the JSON first and set on the parsed record afterwards; a missing, negative or
/// unreadable timestamp becomes the epoch (treated as "none" by [`InboundRecord`]).
pub fn parse_event(mut raw: Value) -> Result<KafkaEvent, serde_json::Error> {
    let mut exact: Vec<(String, usize, Option<i64>)> = Vec::new();
    if let Some(partitions) = raw.get_mut("records").and_then(Value::as_object_mut) {
        for (key, records) in partitions.iter_mut() {
            let Some(records) = records.as_array_mut() else {
                continue;
            };
            for (index, record) in records.iter_mut().enumerate() {
                if let Some(fields) = record.as_object_mut() {
                    let millis = fields.get("timestamp").and_then(millis_of);
                    exact.push((key.clone(), index, millis));
                    fields.insert("timestamp".into(), Value::from(0));
                }
            }
        }
    }
    let mut event: KafkaEvent = serde_json::from_value(raw)?;
    for (key, index, millis) in exact {
        if let Some(record) = event.records.get_mut(&key).and_then(|r| r.get_mut(index)) {
            *record.timestamp = millis
                .filter(|ms| *ms > 0)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .unwrap_or_default();
        }
    }
    Ok(event)
}

fn millis_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

/// The response Lambda reads when the event source mapping has
/// `FunctionResponseTypes: [ReportBatchItemFailures]`: for each partition, the first record
/// not processed. Lambda resumes that partition from the lowest failed offset; an empty list
/// acknowledges the whole batch.
///
/// `{"batchItemFailures": [{"itemIdentifier": {"partition": "<topic>-<partition>", "offset": 42}}]}`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaBatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<KafkaBatchItemFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaBatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: KafkaItemIdentifier,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaItemIdentifier {
    /// The key of the event's `records` map: `<topic>-<partition>`.
    pub partition: String,
    pub offset: i64,
}

impl KafkaBatchResponse {
    pub fn is_success(&self) -> bool {
        self.batch_item_failures.is_empty()
    }

    pub fn fail(&mut self, partition: &str, offset: i64) {
        self.batch_item_failures.push(KafkaBatchItemFailure {
            item_identifier: KafkaItemIdentifier {
                partition: partition.to_string(),
                offset,
            },
        });
    }
}

/// The records of one topic-partition, in offset order.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionBatch {
    /// The key of the event's `records` map (`<topic>-<partition>`).
    pub key: String,
    pub records: Vec<InboundRecord>,
}

/// Split an event into its partitions (sorted by key, for reproducible logs), each with its
/// records in offset order.
pub fn partitions(event: KafkaEvent) -> Vec<PartitionBatch> {
    let mut batches: Vec<PartitionBatch> = event
        .records
        .into_iter()
        .map(|(key, records)| {
            let mut records: Vec<InboundRecord> = records
                .into_iter()
                .map(|r| InboundRecord::from_kafka(&key, r))
                .collect();
            // Stable: records with equal offsets (never sent by Lambda) keep their order.
            records.sort_by_key(|r| r.offset);
            PartitionBatch { key, records }
        })
        .collect();
    batches.sort_by(|a, b| a.key.cmp(&b.key));
    batches
}

/// A consumed record, as far as the function needs it. The value stays base64 until it is
/// processed, so a dead letter carries exactly the bytes Lambda delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRecord {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    /// The broker's timestamp; `None` when Kafka had none (`-1`, or no usable value).
    pub timestamp: Option<Timestamp>,
    pub key_base64: Option<String>,
    /// `None` for a tombstone (null value).
    pub value_base64: Option<String>,
}

/// Why a record's value cannot even be handed to the decoder. Permanent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record value is not valid base64: {0}")]
    InvalidBase64(String),
    #[error("record has no value (tombstone)")]
    MissingValue,
}

impl RecordError {
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::InvalidBase64(_) => "invalid_base64",
            RecordError::MissingValue => "missing_value",
        }
    }
}

impl InboundRecord {
    /// `partition_key` is the record's key in the event's `records` map; it names the topic
    /// when the record itself does not.
    pub fn from_kafka(partition_key: &str, record: KafkaRecord) -> Self {
        let topic = record
            .topic
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| topic_of_partition_key(partition_key).to_string());
        let millis = record.timestamp.timestamp_millis();
        let timestamp = if millis <= 0 {
            None
        } else {
            Timestamp::from_unix_millis(millis)
        };
        InboundRecord {
            topic,
            partition: record.partition,
            offset: record.offset,
            timestamp,
            key_base64: record.key,
            value_base64: record.value,
        }
    }

    /// The record value's bytes.
    pub fn value_bytes(&self) -> Result<Vec<u8>, RecordError> {
        let text = self
            .value_base64
            .as_deref()
            .ok_or(RecordError::MissingValue)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| RecordError::InvalidBase64(e.to_string()))
    }
}

/// `"huleedu.batch.essays.registered.v1-3"` → `"huleedu.batch.essays.registered.v1"`.
pub fn topic_of_partition_key(key: &str) -> &str {
    match key.rsplit_once('-') {
        Some((topic, partition))
            if !partition.is_empty() && partition.bytes().all(|b| b.is_ascii_digit()) =>
        {
            topic
        }
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: serde_json::Value) -> KafkaEvent {
        parse_event(value).unwrap()
    }

    fn record(topic: Option<&str>, offset: i64, value: Option<&str>) -> serde_json::Value {
        json!({"topic": topic, "partition": 3, "offset": offset, "timestamp": 1764237600000i64,
               "timestampType": "CREATE_TIME", "key": "YjE=", "value": value,
               "headers": [{"traceparent": [48, 48, -1]}]})
    }

    #[test]
    fn partitions_are_sorted_and_records_in_offset_order() {
        let e = event(json!({
            "eventSource": "aws:kafka",
            "records": {
                "t.b-1": [record(Some("t.b"), 9, Some("eA==")), record(Some("t.b"), 7, Some("eQ=="))],
                "t.a-0": [record(None, 1, None)],
            }
        }));
        let parts = partitions(e);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].key, "t.a-0");
        assert_eq!(
            parts[0].records[0].topic, "t.a",
            "topic from the partition key"
        );
        assert_eq!(
            parts[0].records[0].value_bytes(),
            Err(RecordError::MissingValue)
        );
        assert_eq!(parts[1].key, "t.b-1");
        let offsets: Vec<i64> = parts[1].records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [7, 9]);
        let r = &parts[1].records[0];
        assert_eq!(r.value_bytes().unwrap(), b"y");
        assert_eq!(r.key_base64.as_deref(), Some("YjE="));
        assert_eq!(r.partition, 3);
        assert_eq!(
            r.timestamp,
            Timestamp::parse("2025-11-27T10:00:00Z"),
            "milliseconds → timestamp"
        );
    }

    #[test]
    fn bad_base64_is_a_permanent_record_error() {
        let e = event(json!({"records": {"t-0": [record(Some("t"), 0, Some("!!not base64!!"))]}}));
        let err = partitions(e)[0].records[0].value_bytes().unwrap_err();
        assert_eq!(err.kind(), "invalid_base64");
    }

    #[test]
    fn timestamps_are_exact_and_missing_ones_are_none() {
        let mut exact = record(Some("t"), 0, Some("eA=="));
        exact["timestamp"] = json!(1764237600100i64);
        let mut negative = record(Some("t"), 1, Some("eA=="));
        negative["timestamp"] = json!(-1);
        let mut fractional = record(Some("t"), 2, Some("eA=="));
        fractional["timestamp"] = json!(1764237600100.7);
        let mut missing = record(Some("t"), 3, Some("eA=="));
        missing.as_object_mut().unwrap().remove("timestamp");
        let e = event(json!({"records": {"t-0": [exact, negative, fractional, missing]}}));
        let times: Vec<Option<Timestamp>> = partitions(e)[0]
            .records
            .iter()
            .map(|r| r.timestamp)
            .collect();
        let t = Timestamp::parse("2025-11-27T10:00:00.100Z");
        assert_eq!(times, [t, None, t, None]);
    }

    #[test]
    fn topic_of_partition_key_strips_the_partition_number() {
        assert_eq!(topic_of_partition_key("a.b-c.v1-12"), "a.b-c.v1");
        assert_eq!(topic_of_partition_key("a.b-c"), "a.b-c");
        assert_eq!(topic_of_partition_key("plain"), "plain");
        assert_eq!(topic_of_partition_key("t-"), "t-");
    }

    #[test]
    fn response_shape() {
        let mut response = KafkaBatchResponse::default();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": []})
        );
        response.fail("huleedu.batch.essays.registered.v1-0", 42);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": {"partition": "huleedu.batch.essays.registered.v1-0", "offset": 42}}]})
        );
        assert!(!response.is_success());
    }
}
