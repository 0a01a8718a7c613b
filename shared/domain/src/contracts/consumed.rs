//! The six consumed payloads (ras-behaviour §2). Field names, optionality and defaults follow
//! the HuleEdu pydantic models; unknown keys are ignored. Constraints serde cannot express
//! (ranges, patterns, non-empty ids) are checked by [`super::validate`].

use super::enums::{BatchStatus, ConfidenceLabel, CourseCode, PhaseName, UpdateStatus};
use super::metadata::{StorageReferenceMetadata, SystemProcessingMetadata};
use super::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// `huleedu.batch.essays.registered.v1` (BOS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchEssaysRegistered {
    #[serde(default)]
    pub event: Option<String>,
    /// The batch id.
    pub entity_id: String,
    pub expected_essay_count: i64,
    pub essay_ids: Vec<String>,
    pub metadata: SystemProcessingMetadata,
    pub course_code: CourseCode,
    #[serde(default)]
    pub student_prompt_ref: Option<StorageReferenceMetadata>,
    pub user_id: String,
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub class_id: Option<String>,
}

/// `huleedu.els.essay.slot.assigned.v1` (ELS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EssaySlotAssignedV1 {
    #[serde(default)]
    pub event: Option<String>,
    pub batch_id: String,
    pub essay_id: String,
    pub file_upload_id: String,
    pub text_storage_id: String,
    pub original_file_name: String,
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpellcheckMetricsV1 {
    pub total_corrections: i64,
    pub l2_dictionary_corrections: i64,
    pub spellchecker_corrections: i64,
    pub word_count: i64,
    /// Corrections per 100 words.
    pub correction_density: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EssayProcessingInputRefV1 {
    pub essay_id: String,
    pub text_storage_id: String,
    #[serde(default)]
    pub spellcheck_metrics: Option<SpellcheckMetricsV1>,
}

/// `huleedu.els.batch.phase.outcome.v1` (ELS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElsBatchPhaseOutcomeV1 {
    pub batch_id: String,
    pub phase_name: PhaseName,
    pub phase_status: BatchStatus,
    /// The essays that succeeded in this phase.
    pub processed_essays: Vec<EssayProcessingInputRefV1>,
    pub failed_essay_ids: Vec<String>,
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
}

/// `huleedu.essay.spellcheck.results.v1` (spellchecker; a `ProcessingUpdate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpellcheckResultV1 {
    pub event_name: String,
    /// The essay id (required non-empty by RAS).
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    pub status: UpdateStatus,
    pub system_metadata: SystemProcessingMetadata,
    pub batch_id: String,
    pub correlation_id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    pub corrections_made: i64,
    pub correction_metrics: SpellcheckMetricsV1,
    pub original_text_storage_id: String,
    #[serde(default)]
    pub corrected_text_storage_id: Option<String>,
    pub processing_duration_ms: i64,
    #[serde(default)]
    pub processor_version: Option<String>,
}

/// One ranked essay of a CJ job; anchors included (`is_anchor`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EssayResultV1 {
    pub essay_id: String,
    /// 0.0 ..= 1.0
    pub normalized_score: f64,
    /// `^([A-F][+-]?|U)$`
    pub letter_grade: String,
    /// 0.0 ..= 1.0
    pub confidence_score: f64,
    pub confidence_label: ConfidenceLabel,
    pub bt_score: f64,
    /// > 0
    pub rank: i64,
    #[serde(default)]
    pub is_anchor: bool,
    #[serde(default)]
    pub feedback_uri: Option<String>,
    #[serde(default)]
    pub metrics_uri: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `huleedu.assessment.result.published.v1` (CJ, the rich result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssessmentResultV1 {
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    pub batch_id: String,
    pub cj_assessment_job_id: String,
    /// At most 100 characters.
    #[serde(default)]
    pub assignment_id: Option<String>,
    pub assessment_method: String,
    pub model_used: String,
    pub model_provider: String,
    #[serde(default)]
    pub model_version: Option<String>,
    pub essay_results: Vec<EssayResultV1>,
    #[serde(default)]
    pub assessment_metadata: Map<String, Value>,
    #[serde(default)]
    pub assessed_at: Option<Timestamp>,
}

/// `huleedu.batch.pipeline.completed.v1` (BOS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchPipelineCompletedV1 {
    #[serde(default)]
    pub event: Option<String>,
    pub batch_id: String,
    pub completed_phases: Vec<String>,
    pub final_status: BatchStatus,
    pub processing_duration_seconds: f64,
    pub successful_essay_count: i64,
    pub failed_essay_count: i64,
    pub correlation_id: Uuid,
    pub metadata: SystemProcessingMetadata,
}
