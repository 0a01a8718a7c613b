//! The batch aggregate: everything the aggregator knows about one batch.
//!
//! One aggregate per `batch_id` (every consumed event names its batch). It is made of *facts*
//! recorded from events — registration, slot assignments, spellcheck results, phase outcomes,
//! CJ jobs, BOS pipeline completion — each merged by a commutative rule (earliest/latest by
//! event time, ties broken by idempotency key), so the same set of events gives the same
//! aggregate in any order. Derived values (status, counts) are recomputed from the facts by
//! [`crate::projection`] and stored on the root for queries.
//!
//! The records' serde form is their stored form (`ras_aws::dynamo::items` writes them with
//! `serde_dynamo`, attribute for attribute): the free-form JSON kept verbatim is JSON text
//! there ([`json_text`]).

use crate::contracts::{
    AssessmentResultV1, BatchStatus, CourseCode, ErrorDetail, PhaseName, ProcessingStage,
    SpellcheckMetricsV1, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// When and by which record a fact was established; orders competing facts deterministically.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Provenance {
    pub occurred_at: Timestamp,
    pub event_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub user_id: String,
    pub essay_count: i64,
    /// Stored apart from the root (serde default: a root item without them).
    #[serde(default)]
    pub essay_ids: Vec<String>,
    pub course_code: CourseCode,
    /// `StorageReferenceMetadata` JSON, verbatim (serde: JSON text, see [`json_text`]).
    #[serde(default, with = "json_text::whole")]
    pub student_prompt_ref: Option<Value>,
    pub org_id: Option<String>,
    pub class_id: Option<String>,
    pub correlation_id: Uuid,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineCompletion {
    pub final_status: BatchStatus,
    pub completed_phases: Vec<String>,
    pub successful_essay_count: i64,
    pub failed_essay_count: i64,
    pub processing_duration_seconds: f64,
    pub correlation_id: Uuid,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriticalFailure {
    pub phase: PhaseName,
    /// serde: `details` as JSON text, see [`json_text`].
    #[serde(with = "json_text::details")]
    pub error_detail: ErrorDetail,
    pub provenance: Provenance,
}

/// A published event recorded on the aggregate so it is emitted exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emission {
    pub event_id: Uuid,
    pub emitted_at: Timestamp,
}

/// The batch item: registration and batch-level facts, derived values, and the version that
/// serialises writers (optimistic concurrency).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRoot {
    pub batch_id: String,
    /// 0 while nothing is stored; bumped by the store on every committed change.
    pub version: u64,
    pub registration: Option<Registration>,
    pub pipeline_completion: Option<PipelineCompletion>,
    pub critical_failure: Option<CriticalFailure>,
    /// Event time of the first phase signal (phase outcome, spellcheck or CJ result).
    pub processing_started_at: Option<Timestamp>,
    /// Latest event time of any change.
    pub updated_at: Option<Timestamp>,
    pub results_ready: Option<Emission>,
    /// Processing time at which the batch was first seen completed (BOS's report or the strict
    /// every-phase rule) while facts its results-ready event needs were still missing
    /// ([`crate::projection::missing_facts`]); cleared when the event is emitted. The facts
    /// timer emits it anyway once this is older than the grace period
    /// ([`crate::rules::emit_overdue_results`]).
    #[serde(default)]
    pub awaiting_facts_since: Option<Timestamp>,
    /// What was still missing when the results-ready event went out on the facts timer; `None`
    /// when it went out with every fact.
    #[serde(default)]
    pub results_ready_missing: Option<MissingFacts>,
    /// Sums over the batch's essays that let a per-essay record be applied from the root and
    /// its own essay alone ([`crate::rules::apply_to_essay`]); `None` while they are not
    /// enough: once the batch has a phase outcome or a CJ job (an essay's status then
    /// depends on them), and on roots stored before the counters existed (the next record
    /// applied to the whole batch writes them).
    #[serde(default)]
    pub essay_counters: Option<EssayCounters>,
    pub derived: DerivedBatch,
}

/// What an essay adds to its batch's [`EssayCounters`]: its spellcheck result's terminal
/// stage. Before any phase outcome or CJ job, that alone decides whether the essay counts as
/// completed or failed ([`crate::projection::derive_batch`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EssayCounters {
    /// Essays whose spellcheck result is completed.
    pub spellcheck_completed: i64,
    /// Essays whose spellcheck result is failed.
    pub spellcheck_failed: i64,
}

impl EssayCounters {
    /// One essay's contribution.
    pub fn of(essay: &EssayRecord) -> Self {
        let stage = essay.spellcheck.as_ref().map(|s| s.stage);
        EssayCounters {
            spellcheck_completed: i64::from(stage == Some(ProcessingStage::Completed)),
            spellcheck_failed: i64::from(stage == Some(ProcessingStage::Failed)),
        }
    }

    /// `self` with `before` taken out and `after` put in: an essay that changed.
    pub fn replace(self, before: Option<&EssayRecord>, after: Option<&EssayRecord>) -> Self {
        let (old, new) = (
            before.map(Self::of).unwrap_or_default(),
            after.map(Self::of).unwrap_or_default(),
        );
        EssayCounters {
            spellcheck_completed: self.spellcheck_completed - old.spellcheck_completed
                + new.spellcheck_completed,
            spellcheck_failed: self.spellcheck_failed - old.spellcheck_failed
                + new.spellcheck_failed,
        }
    }

    /// The sum over `essays`.
    pub fn sum<'a>(essays: impl IntoIterator<Item = &'a EssayRecord>) -> Self {
        essays
            .into_iter()
            .fold(Self::default(), |acc, e| acc.replace(None, Some(e)))
    }
}

/// Facts a results-ready event waits for and does not have yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingFacts {
    /// BOS's `BatchPipelineCompletedV1` has not arrived (the batch was seen complete by the
    /// every-phase rule only).
    #[serde(default)]
    pub pipeline_completion: bool,
    /// Phases BOS lists or that ran (by a result) without ELS's phase outcome.
    #[serde(default)]
    pub phases: Vec<PhaseName>,
    /// Essays ELS reports in a phase without their own result stored.
    #[serde(default)]
    pub essays: Vec<MissingResult>,
}

impl MissingFacts {
    pub fn is_empty(&self) -> bool {
        !self.pipeline_completion && self.phases.is_empty() && self.essays.is_empty()
    }
}

impl std::fmt::Display for MissingFacts {
    /// `BOS pipeline completion; phase outcomes: cj_assessment; essay results: spellcheck:e2`
    /// (the parts that are missing), or `nothing`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.pipeline_completion {
            parts.push("BOS pipeline completion".into());
        }
        if !self.phases.is_empty() {
            let phases: Vec<&str> = self.phases.iter().map(|p| p.as_str()).collect();
            parts.push(format!("phase outcomes: {}", phases.join(", ")));
        }
        if !self.essays.is_empty() {
            let essays: Vec<String> = self
                .essays
                .iter()
                .map(|m| format!("{}:{}", m.phase.as_str(), m.essay_id))
                .collect();
            parts.push(format!("essay results: {}", essays.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// One essay's result ELS reported and we do not have.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MissingResult {
    pub phase: PhaseName,
    pub essay_id: String,
}

/// Values computed from the facts by [`crate::projection::derive_batch`]; stored for queries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivedBatch {
    pub overall_status: Option<BatchStatus>,
    pub completed_essay_count: i64,
    pub failed_essay_count: i64,
    pub assignment_id: Option<String>,
    pub processing_completed_at: Option<Timestamp>,
}

impl BatchRoot {
    pub fn new(batch_id: &str) -> Self {
        BatchRoot {
            batch_id: batch_id.to_string(),
            version: 0,
            registration: None,
            pipeline_completion: None,
            critical_failure: None,
            processing_started_at: None,
            updated_at: None,
            results_ready: None,
            awaiting_facts_since: None,
            results_ready_missing: None,
            // Nothing stored: every sum is zero.
            essay_counters: Some(EssayCounters::default()),
            derived: DerivedBatch::default(),
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        self.registration.as_ref().map(|r| r.user_id.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotAssignment {
    pub file_upload_id: String,
    pub text_storage_id: String,
    pub original_file_name: String,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpellcheckOutcome {
    /// completed / failed, or pending for in-progress statuses.
    pub stage: ProcessingStage,
    /// The status string as received (e.g. `spellchecked_success`).
    pub status: String,
    pub corrections_made: i64,
    pub corrected_text_storage_id: Option<String>,
    pub metrics: SpellcheckMetricsV1,
    pub processing_duration_ms: i64,
    /// serde: `details` as JSON text, see [`json_text`].
    #[serde(default, with = "json_text::details")]
    pub error_detail: Option<ErrorDetail>,
    pub correlation_id: Uuid,
    pub provenance: Provenance,
}

/// One essay's own facts: its slot (file) and its spellcheck result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EssayRecord {
    pub essay_id: String,
    pub batch_id: String,
    pub slot: Option<SlotAssignment>,
    pub spellcheck: Option<SpellcheckOutcome>,
    pub updated_at: Timestamp,
    /// 0 while not stored; bumped by the store on every write of the essay. A plan's essay is
    /// written only if the stored one still has this version: the record applied from the
    /// root and this essay alone ([`crate::rules::apply_to_essay`]) cannot commit on an essay
    /// read from before the root it read.
    #[serde(default)]
    pub version: u64,
}

/// The latest ELS outcome of one phase for the batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseOutcomeRecord {
    pub phase: PhaseName,
    pub phase_status: BatchStatus,
    pub processed_essay_ids: Vec<String>,
    pub failed_essay_ids: Vec<String>,
    pub correlation_id: Uuid,
    pub provenance: Provenance,
}

impl PhaseOutcomeRecord {
    pub fn stage_of(&self, essay_id: &str) -> Option<ProcessingStage> {
        if self.failed_essay_ids.iter().any(|id| id == essay_id) {
            Some(ProcessingStage::Failed)
        } else if self.processed_essay_ids.iter().any(|id| id == essay_id) {
            Some(ProcessingStage::Completed)
        } else {
            None
        }
    }
}

/// One CJ assessment job's full result (anchors, grades, confidence, model, metadata).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CjJobRecord {
    pub job_id: String,
    pub batch_id: String,
    /// serde: `assessment_metadata` as JSON text, see [`json_text`].
    #[serde(with = "json_text::assessment_metadata")]
    pub result: AssessmentResultV1,
    pub correlation_id: Uuid,
    pub provenance: Provenance,
    pub assessment_completed: Option<Emission>,
}

impl CjJobRecord {
    pub fn assessed_at(&self) -> Timestamp {
        self.result
            .assessed_at
            .unwrap_or(self.provenance.occurred_at)
    }
}

/// Everything known about one batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchAggregate {
    pub root: BatchRoot,
    pub essays: BTreeMap<String, EssayRecord>,
    pub phases: BTreeMap<PhaseName, PhaseOutcomeRecord>,
    pub cj_jobs: BTreeMap<String, CjJobRecord>,
}

impl BatchAggregate {
    pub fn new(batch_id: &str) -> Self {
        BatchAggregate {
            root: BatchRoot::new(batch_id),
            essays: BTreeMap::new(),
            phases: BTreeMap::new(),
            cj_jobs: BTreeMap::new(),
        }
    }

    pub fn batch_id(&self) -> &str {
        &self.root.batch_id
    }

    pub fn is_registered(&self) -> bool {
        self.root.registration.is_some()
    }

    /// The facts alone: the versions (how many commits stored them, which depends on the
    /// order records arrived in) set to 0. For comparing two runs of the same records.
    pub fn without_versions(mut self) -> Self {
        self.root.version = 0;
        for essay in self.essays.values_mut() {
            essay.version = 0;
        }
        self
    }

    /// Nothing stored yet for this batch.
    pub fn is_empty(&self) -> bool {
        self.root.version == 0
            && self.essays.is_empty()
            && self.phases.is_empty()
            && self.cj_jobs.is_empty()
    }
}

/// The serde form of the free-form JSON the model keeps verbatim (`student_prompt_ref`,
/// `ErrorDetail.details`, `assessment_metadata`): JSON *text* (a string), not a structure. The
/// records are stored with `serde_dynamo`, and a DynamoDB map would lose the JSON's key order
/// (the API serves `student_prompt_ref` as received) while its `N` type cannot tell `2.0` from
/// `2`: as text, the value survives the round trip exactly. A null value stays null; on
/// reading, a string is parsed and anything else taken as it is.
///
/// Each module applies this to one place of a field's value (the value itself, or one of its
/// object's fields), going through that value's `serde_json::Value`.
pub mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    fn at<'a>(json: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
        path.iter()
            .try_fold(json, |node, key| node.as_object_mut()?.get_mut(*key))
    }

    fn serialize_at<T: Serialize, S: Serializer>(
        value: &T,
        path: &[&str],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut json = serde_json::to_value(value).map_err(S::Error::custom)?;
        if let Some(node) = at(&mut json, path) {
            if !node.is_null() {
                *node = Value::String(serde_json::to_string(node).map_err(S::Error::custom)?);
            }
        }
        json.serialize(serializer)
    }

    fn deserialize_at<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        deserializer: D,
        path: &[&str],
    ) -> Result<T, D::Error> {
        let mut json = Value::deserialize(deserializer)?;
        if let Some(node) = at(&mut json, path) {
            if let Value::String(text) = node {
                *node = serde_json::from_str(text).map_err(D::Error::custom)?;
            }
        }
        serde_json::from_value(json).map_err(D::Error::custom)
    }

    macro_rules! json_text_at {
        ($(#[$doc:meta])* $name:ident, [$($key:literal),*]) => {
            $(#[$doc])*
            pub mod $name {
                use super::*;

                pub fn serialize<T: Serialize, S: Serializer>(
                    value: &T,
                    serializer: S,
                ) -> Result<S::Ok, S::Error> {
                    serialize_at(value, &[$($key),*], serializer)
                }

                pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
                    deserializer: D,
                ) -> Result<T, D::Error> {
                    deserialize_at(deserializer, &[$($key),*])
                }
            }
        };
    }

    json_text_at!(
        /// The whole value (`student_prompt_ref`).
        whole,
        []
    );
    json_text_at!(
        /// An `ErrorDetail`'s `details`.
        details,
        ["details"]
    );
    json_text_at!(
        /// An `AssessmentResultV1`'s `assessment_metadata`.
        assessment_metadata,
        ["assessment_metadata"]
    );
}
