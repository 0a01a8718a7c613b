//! The HuleEdu fixtures (`tests/fixtures/huleedu/`) moved to fresh identities, so tests can
//! share one local server, run concurrently and be repeated without seeing each other's
//! batches, users, CJ jobs or idempotency markers.
//!
//! Ids are replaced by ids of the same shape (a UUID by a UUID), everything else in the record
//! value stays byte for byte what the producer sent.

use serde_json::Value;
use std::path::PathBuf;
use uuid::Uuid;

pub const REGISTERED: &str = "huleedu.batch.essays.registered.v1";
pub const SLOT_ASSIGNED: &str = "huleedu.els.essay.slot.assigned.v1";
pub const PHASE_OUTCOME: &str = "huleedu.els.batch.phase.outcome.v1";
pub const SPELLCHECK: &str = "huleedu.essay.spellcheck.results.v1";
pub const CJ_RESULT: &str = "huleedu.assessment.result.published.v1";
pub const PIPELINE_COMPLETED: &str = "huleedu.batch.pipeline.completed.v1";

/// The six consumed topics, in pipeline order.
pub const CONSUMED_TOPICS: [&str; 6] = [
    REGISTERED,
    SLOT_ASSIGNED,
    SPELLCHECK,
    PHASE_OUTCOME,
    CJ_RESULT,
    PIPELINE_COMPLETED,
];

pub const FIXTURE_BATCH: &str = "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01";
pub const FIXTURE_USER: &str = "teacher-7f3c9a";
/// Every fixture essay id starts with this.
pub const FIXTURE_ESSAY_PREFIX: &str = "0c9e1f8a-";
/// Every fixture envelope `event_id` starts with this.
pub const FIXTURE_EVENT_PREFIX: &str = "aaaaaaaa-0000-4000-8000-";
pub const FIXTURE_CJ_JOB: &str = "417";

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/huleedu")
}

/// The exact bytes of a fixture file.
pub fn fixture_bytes(file: &str) -> Vec<u8> {
    let path = fixture_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The consumed record of `topic` as HuleEdu produced it.
pub fn original_fixture(topic: &str) -> Vec<u8> {
    fixture_bytes(&format!("{topic}.json"))
}

/// The Kafka key the producer used (`kafka_key` of the `.meta.json`).
pub fn original_fixture_key(topic: &str) -> Option<String> {
    let meta: Value = serde_json::from_slice(&fixture_bytes(&format!("{topic}.meta.json")))
        .unwrap_or_else(|e| panic!("{topic}.meta.json: {e}"));
    meta["kafka_key"].as_str().map(str::to_string)
}

/// The identities of one test.
#[derive(Clone, Debug)]
pub struct Scope {
    pub batch: String,
    pub user: String,
    pub job: String,
    essay_prefix: String,
    event_prefix: String,
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Scope {
    pub fn new() -> Self {
        let hex = |n: usize| {
            let id = Uuid::new_v4().simple().to_string();
            id[..n].to_string()
        };
        Scope {
            batch: Uuid::new_v4().to_string(),
            user: format!("teacher-{}", hex(12)),
            job: format!("cj-{}", hex(12)),
            essay_prefix: format!("{}-", hex(8)),
            event_prefix: format!("{}-{}-4{}-8{}-", hex(8), hex(4), hex(3), hex(3)),
        }
    }

    /// A fresh batch id in the same scope (same user, essays, event-id space).
    pub fn another_batch(&self) -> Scope {
        Scope {
            batch: Uuid::new_v4().to_string(),
            ..self.clone()
        }
    }

    /// The `n`th envelope event id of this scope, `n` in decimal digits like the fixtures'
    /// (which use 1001..=1006).
    pub fn event_id(&self, n: u64) -> Uuid {
        let text = format!("{}{:012}", self.event_prefix, n % 1_000_000_000_000);
        Uuid::parse_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// An essay id of this scope, shaped like the fixtures'.
    pub fn essay(&self, n: u64) -> String {
        format!("{}{:04x}-4a2b-8c3d-{:012x}", self.essay_prefix, n, n)
    }

    /// The fixture essay ids moved to this scope, in the order of the registration.
    pub fn fixture_essays(&self) -> Vec<String> {
        [
            "0c9e1f8a-1111-4a2b-8c3d-000000000001",
            "0c9e1f8a-2222-4a2b-8c3d-000000000002",
            "0c9e1f8a-3333-4a2b-8c3d-000000000003",
        ]
        .iter()
        .map(|id| self.rewrite(id))
        .collect()
    }

    /// Move every fixture identity in `text` to this scope.
    pub fn rewrite(&self, text: &str) -> String {
        text.replace(FIXTURE_BATCH, &self.batch)
            .replace(FIXTURE_USER, &self.user)
            .replace(FIXTURE_ESSAY_PREFIX, &self.essay_prefix)
            .replace(FIXTURE_EVENT_PREFIX, &self.event_prefix)
            .replace(
                &format!("\"cj_assessment_job_id\": \"{FIXTURE_CJ_JOB}\""),
                &format!("\"cj_assessment_job_id\": \"{}\"", self.job),
            )
    }

    /// The consumed fixture of `topic`, moved to this scope.
    pub fn fixture(&self, topic: &str) -> Vec<u8> {
        let text = String::from_utf8(original_fixture(topic))
            .unwrap_or_else(|e| panic!("{topic} fixture is not UTF-8: {e}"));
        self.rewrite(&text).into_bytes()
    }

    /// The fixture's Kafka key, moved to this scope.
    pub fn fixture_key(&self, topic: &str) -> Option<Vec<u8>> {
        original_fixture_key(topic).map(|key| {
            if key == FIXTURE_CJ_JOB {
                self.job.clone().into_bytes()
            } else {
                self.rewrite(&key).into_bytes()
            }
        })
    }
}

impl Scope {
    /// Replace this scope's identities in `text` by those of `other` (to compare the results
    /// of two runs of the same story). Ids derived from the batch / CJ job (published event
    /// ids) are mapped too.
    pub fn map_to(&self, other: &Scope, text: &str) -> String {
        use ras_domain::ids;
        let mut pairs: Vec<(String, String)> = Vec::new();
        let ready = (
            ids::results_ready_event_id(&self.batch),
            ids::results_ready_event_id(&other.batch),
        );
        let completed = (
            ids::assessment_completed_event_id(&self.batch, &self.job),
            ids::assessment_completed_event_id(&other.batch, &other.job),
        );
        for (from, to) in [ready, completed] {
            pairs.push((from.to_string(), to.to_string()));
            pairs.push((
                ids::notification_event_id(from).to_string(),
                ids::notification_event_id(to).to_string(),
            ));
        }
        pairs.push((self.batch.clone(), other.batch.clone()));
        pairs.push((self.user.clone(), other.user.clone()));
        pairs.push((self.job.clone(), other.job.clone()));
        pairs.push((self.essay_prefix.clone(), other.essay_prefix.clone()));
        pairs.push((self.event_prefix.clone(), other.event_prefix.clone()));
        pairs
            .iter()
            .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
    }

    /// An MSK event JSON (e.g. a sample of `events/ingest/`) with every record key and value
    /// moved to this scope. Values that are not base64 of UTF-8 text stay as they are.
    pub fn rewrite_event(&self, event: &Value) -> Value {
        use base64::engine::general_purpose::STANDARD as BASE64;
        use base64::Engine;
        let mut event = event.clone();
        let rewrite = |field: &mut Value| {
            let Some(text) = field.as_str() else { return };
            let Ok(bytes) = BASE64.decode(text) else {
                return;
            };
            let Ok(plain) = String::from_utf8(bytes) else {
                return;
            };
            *field = Value::String(BASE64.encode(self.rewrite(&plain)));
        };
        if let Some(partitions) = event["records"].as_object_mut() {
            for records in partitions.values_mut() {
                for record in records.as_array_mut().into_iter().flatten() {
                    rewrite(&mut record["value"]);
                    rewrite(&mut record["key"]);
                }
            }
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_move_to_the_scope() {
        let scope = Scope::new();
        for topic in CONSUMED_TOPICS {
            let moved = String::from_utf8(scope.fixture(topic)).unwrap();
            assert!(!moved.contains(FIXTURE_BATCH), "{topic}");
            assert!(!moved.contains(FIXTURE_EVENT_PREFIX), "{topic}");
            assert!(moved.contains(&scope.batch), "{topic}");
            let v: Value = serde_json::from_str(&moved).unwrap();
            let id = v["event_id"].as_str().unwrap();
            assert!(Uuid::parse_str(id).is_ok());
            assert!(scope.fixture_key(topic).is_some(), "{topic}");
        }
        let cj: Value = serde_json::from_slice(&scope.fixture(CJ_RESULT)).unwrap();
        assert_eq!(cj["data"]["cj_assessment_job_id"], scope.job.as_str());
        assert_eq!(
            scope.event_id(1001).to_string(),
            format!("{}000000001001", scope.event_prefix)
        );
        assert!(Uuid::parse_str(&scope.essay(7)).is_ok());
    }
}
