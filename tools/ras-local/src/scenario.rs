//! Scenario files: the Kafka records the local pipeline feeds to the ingest handler, in the
//! order they reach the consumer. Format (`docs/local.md`):
//!
//! ```json
//! {"description": "…", "records": [
//!   {"topic": "huleedu.batch.essays.registered.v1", "partition": 0, "offset": 0,
//!    "key": "5b1f4c2e-…", "value": {"event_id": "…", "data": {…}}, "note": "…"},
//!   {"topic": "huleedu.essay.spellcheck.results.v1", "value": "{\"event_id\": truncated"}
//! ]}
//! ```
//!
//! or just the list of records. Per record: `topic` (required), `partition` (default: Kafka's
//! default partitioner on the key over [`PARTITIONS`] partitions, as HuleEdu's producers
//! place their keyed records; 0 without a key), `offset` (default: the partition's next),
//! `key` (text, optional), `value` (required: a JSON
//! object/array/number/bool is sent as its JSON text in Python's `json.dumps` style, a string
//! is sent as is — e.g. broken JSON —, `null` is a tombstone), `note` (ignored). A record whose
//! `offset` was already used on its partition must repeat that record exactly: it is delivered
//! again (Kafka's at-least-once redelivery). The local pipeline produces the records to the
//! broker in file order; the broker assigns the real offsets.

use crate::msk::{partition_key, MskRecord, MskValue, BASE_TIMESTAMP_MS};
use ras_aws::kafka_publisher::partition_for;
use ras_domain::contracts::to_python_json;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// The built-in scenario (`events/scenarios/demo.json`), compiled in.
pub const DEMO_JSON: &str = include_str!("../../../events/scenarios/demo.json");
/// Its path in the repository, for messages.
pub const DEMO_PATH: &str = "events/scenarios/demo.json";

/// Partitions a record without `partition` is spread over by its key: those of the topics
/// `infra/local/kafka-start.sh` (and ras-local, when missing) create.
pub const PARTITIONS: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: not JSON: {source}")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// One record of a scenario, with its final coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRecord {
    /// Position in the file (0-based).
    pub index: usize,
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: MskValue,
    pub note: Option<String>,
    /// The offset was delivered before: this is a redelivery of the same record.
    pub redelivery: bool,
}

impl ScenarioRecord {
    /// The record as the MSK event carries it; timestamps one second apart in file order.
    pub fn msk_record(&self) -> MskRecord {
        MskRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: BASE_TIMESTAMP_MS + self.index as i64 * 1_000,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: Vec::new(),
        }
    }

    pub fn partition_key(&self) -> String {
        partition_key(&self.topic, self.partition)
    }
}

/// A parsed, validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Where it came from (a path, or the built-in name).
    pub origin: String,
    pub description: Option<String>,
    pub records: Vec<ScenarioRecord>,
}

impl Scenario {
    /// The built-in scenario.
    pub fn demo() -> Result<Self, ScenarioError> {
        Self::parse(DEMO_JSON, DEMO_PATH)
    }

    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::parse(&text, &origin)
    }

    /// Parse and validate scenario JSON; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let doc: Value = serde_json::from_str(text).map_err(|source| ScenarioError::Json {
            origin: origin.to_string(),
            source,
        })?;
        let (description, raw_records) = match doc {
            Value::Array(records) => (None, records),
            Value::Object(mut fields) => {
                let unknown: Vec<&String> = fields
                    .keys()
                    .filter(|k| !["description", "records"].contains(&k.as_str()))
                    .collect();
                if !unknown.is_empty() {
                    return Err(invalid(format!(
                        "unknown top-level field(s) {unknown:?} (expected `description`, `records`)"
                    )));
                }
                let description = match fields.remove("description") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    Some(_) => return Err(invalid("`description` must be a string".into())),
                };
                match fields.remove("records") {
                    Some(Value::Array(records)) => (description, records),
                    _ => return Err(invalid("`records` must be a list of records".into())),
                }
            }
            _ => {
                return Err(invalid(
                    "expected a list of records or an object with `records`".into(),
                ))
            }
        };
        if raw_records.is_empty() {
            return Err(invalid("the scenario has no records".into()));
        }

        // Per partition: the next offset, and what each used offset holds.
        let mut next_offset: HashMap<String, i64> = HashMap::new();
        let mut used: HashMap<(String, i64), RecordContent> = HashMap::new();
        let mut records = Vec::with_capacity(raw_records.len());
        for (index, raw) in raw_records.into_iter().enumerate() {
            let at = |message: String| invalid(format!("record {index}: {message}"));
            let Value::Object(fields) = raw else {
                return Err(at("expected an object".into()));
            };
            let raw = RawRecord::from_fields(fields).map_err(at)?;
            let pkey = partition_key(&raw.topic, raw.partition);
            let next = next_offset.get(&pkey).copied().unwrap_or(0);
            let offset = raw.offset.unwrap_or(next);
            let redelivery = offset < next;
            if redelivery {
                match used.get(&(pkey.clone(), offset)) {
                    Some((key, value)) if *key == raw.key && *value == raw.value => {}
                    Some(_) => {
                        return Err(at(format!(
                            "offset {offset} of {pkey} already holds a different record (a repeated offset must repeat the record: a redelivery)"
                        )))
                    }
                    None => {
                        return Err(at(format!(
                            "offset {offset} of {pkey} is below the partition's next offset {next} but was never used"
                        )))
                    }
                }
            } else {
                used.insert((pkey.clone(), offset), (raw.key.clone(), raw.value.clone()));
                next_offset.insert(pkey, offset + 1);
            }
            records.push(ScenarioRecord {
                index,
                topic: raw.topic,
                partition: raw.partition,
                offset,
                key: raw.key,
                value: raw.value,
                note: raw.note,
                redelivery,
            });
        }
        Ok(Scenario {
            origin: origin.to_string(),
            description,
            records,
        })
    }

    /// Distinct topic-partitions, sorted.
    pub fn partitions(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.records.iter().map(|r| r.partition_key()).collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// A record's key and value.
type RecordContent = (Option<Vec<u8>>, MskValue);

struct RawRecord {
    topic: String,
    partition: i64,
    offset: Option<i64>,
    key: Option<Vec<u8>>,
    value: MskValue,
    note: Option<String>,
}

impl RawRecord {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, String> {
        const KNOWN: [&str; 6] = ["topic", "partition", "offset", "key", "value", "note"];
        let unknown: Vec<&String> = fields
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown field(s) {unknown:?} (expected {})",
                KNOWN.join(", ")
            ));
        }
        let topic = match fields.remove("topic") {
            Some(Value::String(t)) if !t.trim().is_empty() => t,
            _ => return Err("`topic` must be a non-empty string".into()),
        };
        let integer = |name: &str, value: Option<Value>| -> Result<Option<i64>, String> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(v) if v >= 0 => Ok(Some(v)),
                    _ => Err(format!("`{name}` must be a non-negative integer")),
                },
                Some(_) => Err(format!("`{name}` must be a non-negative integer")),
            }
        };
        let partition = integer("partition", fields.remove("partition"))?;
        let offset = integer("offset", fields.remove("offset"))?;
        let key = match fields.remove("key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.into_bytes()),
            Some(_) => return Err("`key` must be a string or null".into()),
        };
        // Kafka's default partitioner for keyed records (murmur2, as aiokafka and the Java
        // client): where HuleEdu's producers put them.
        let partition = partition.unwrap_or_else(|| {
            key.as_deref()
                .map_or(0, |k| i64::from(partition_for(k, PARTITIONS)))
        });
        let value = match fields.remove("value") {
            None => return Err("`value` is required (use null for a tombstone)".into()),
            Some(Value::Null) => MskValue::Null,
            Some(Value::String(text)) => MskValue::Bytes(text.into_bytes()),
            Some(json) => MskValue::Bytes(
                to_python_json(&json).map_err(|e| format!("`value` cannot be serialised: {e}"))?,
            ),
        };
        let note = match fields.remove("note") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(n),
            Some(_) => return Err("`note` must be a string".into()),
        };
        Ok(RawRecord {
            topic,
            partition,
            offset,
            key,
            value,
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "test.json")
    }

    #[test]
    fn offsets_default_per_partition_and_values_are_bytes() {
        let s = parse(
            r#"[{"topic": "t", "value": {"b": 1, "a": "å"}},
                {"topic": "t", "partition": 1, "key": "k", "value": "{broken"},
                {"topic": "t", "value": null, "note": "tombstone"},
                {"topic": "t", "offset": 10, "value": 5}]"#,
        )
        .unwrap();
        let coords: Vec<(i64, i64, bool)> = s
            .records
            .iter()
            .map(|r| (r.partition, r.offset, r.redelivery))
            .collect();
        assert_eq!(
            coords,
            vec![(0, 0, false), (1, 0, false), (0, 1, false), (0, 10, false)]
        );
        assert_eq!(
            s.records[0].value,
            MskValue::Bytes(br#"{"b": 1, "a": "\u00e5"}"#.to_vec())
        );
        assert_eq!(s.records[1].value, MskValue::Bytes(b"{broken".to_vec()));
        assert_eq!(s.records[1].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(s.records[2].value, MskValue::Null);
        assert_eq!(s.partitions(), vec!["t-0", "t-1"]);
    }

    #[test]
    fn a_repeated_offset_is_a_redelivery_of_the_same_record_only() {
        let ok = parse(
            r#"{"description": "d", "records": [
                {"topic": "t", "value": {"a": 1}}, {"topic": "t", "value": {"a": 2}},
                {"topic": "t", "offset": 0, "value": {"a": 1}}, {"topic": "t", "value": {"a": 3}}]}"#,
        )
        .unwrap();
        assert_eq!(ok.description.as_deref(), Some("d"));
        assert!(ok.records[2].redelivery);
        assert_eq!(ok.records[3].offset, 2);

        let err = parse(
            r#"[{"topic": "t", "value": {"a": 1}}, {"topic": "t", "offset": 0, "value": {"a": 2}}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("record 1"), "{err}");
        assert!(err.to_string().contains("different record"), "{err}");
        let err = parse(
            r#"[{"topic": "t", "offset": 5, "value": 1}, {"topic": "t", "offset": 3, "value": 1}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("never used"), "{err}");
    }

    #[test]
    fn malformed_records_are_named() {
        for (text, expected) in [
            ("{}", "`records`"),
            ("[]", "no records"),
            ("[1]", "record 0: expected an object"),
            (r#"[{"value": 1}]"#, "`topic`"),
            (r#"[{"topic": "t"}]"#, "`value` is required"),
            (
                r#"[{"topic": "t", "value": 1, "partition": -1}]"#,
                "`partition`",
            ),
            (
                r#"[{"topic": "t", "value": 1, "extra": 1}]"#,
                "unknown field",
            ),
            (r#"{"records": [], "x": 1}"#, "unknown top-level"),
            ("nope", "not JSON"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with("test.json"), "{err}");
        }
    }

    #[test]
    fn keyed_records_without_a_partition_go_where_kafkas_default_partitioner_puts_them() {
        let s = parse(
            r#"[{"topic": "t", "key": "b", "value": 1}, {"topic": "t", "key": "b", "value": 2},
                {"topic": "t", "key": "a", "value": 3},
                {"topic": "t", "key": "b", "partition": 0, "value": 4},
                {"topic": "t", "value": 5}]"#,
        )
        .unwrap();
        // toPositive(murmur2(key)) % 3: "b" 294391796 % 3 = 2, "a" 584102524 % 3 = 1 (the
        // murmur2 of Kafka's Utils: "21" gives -973932308 as in its UtilsTest).
        let coords: Vec<(i64, i64)> = s.records.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(coords, vec![(2, 0), (2, 1), (1, 0), (0, 0), (0, 1)]);
    }

    #[test]
    fn the_demo_scenario_is_valid() {
        let demo = Scenario::demo().unwrap();
        assert!(demo.records.len() >= 20);
        assert!(demo.records.iter().any(|r| r.redelivery));
    }
}
