//! The three published events and both notification payloads (ras-behaviour §5), with the
//! reference's key order. Struct field order *is* the wire order.

use super::enums::{
    BatchStatus, ConfidenceLabel, NotificationPriority, PhaseName, WebSocketEventCategory,
};
use super::metadata::SystemProcessingMetadata;
use super::timestamp::Timestamp;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// One phase of `BatchResultsReadyV1.phase_results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseResultSummary {
    pub phase_name: PhaseName,
    /// `"completed"` or `"completed_with_failures"` (plain strings, not BatchStatus).
    pub status: String,
    pub completed_count: i64,
    pub failed_count: i64,
    pub processing_time_seconds: Option<f64>,
}

/// `phase_results`: an object keyed by phase name, in pipeline order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PhaseResults(pub Vec<PhaseResultSummary>);

impl Serialize for PhaseResults {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for summary in &self.0 {
            map.serialize_entry(summary.phase_name.as_str(), summary)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PhaseResults {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            let summary: PhaseResultSummary =
                serde_json::from_value(value).map_err(D::Error::custom)?;
            if summary.phase_name.as_str() != key {
                return Err(D::Error::custom(format!(
                    "phase_results key `{key}` names another phase"
                )));
            }
            out.push(summary);
        }
        Ok(PhaseResults(out))
    }
}

/// `huleedu.ras.batch.results.ready.v1` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchResultsReadyV1 {
    pub event_name: String,
    pub entity_id: Option<String>,
    pub entity_type: Option<String>,
    pub parent_id: Option<String>,
    pub timestamp: Timestamp,
    pub status: BatchStatus,
    pub system_metadata: SystemProcessingMetadata,
    pub batch_id: String,
    pub user_id: String,
    pub total_essays: i64,
    pub completed_essays: i64,
    pub phase_results: PhaseResults,
    pub overall_status: BatchStatus,
    pub processing_duration_seconds: f64,
}

/// One student essay of `BatchAssessmentCompletedV1.rankings_summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingSummaryEntry {
    pub essay_id: String,
    pub rank: i64,
    /// The BT score.
    pub score: f64,
    pub letter_grade: String,
    pub confidence_score: f64,
    pub confidence_label: ConfidenceLabel,
}

/// `huleedu.ras.batch.assessment.completed.v1` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchAssessmentCompletedV1 {
    pub event_name: String,
    pub entity_id: Option<String>,
    pub entity_type: Option<String>,
    pub parent_id: Option<String>,
    pub timestamp: Timestamp,
    pub status: BatchStatus,
    pub system_metadata: SystemProcessingMetadata,
    pub batch_id: String,
    pub user_id: String,
    pub assessment_job_id: String,
    pub rankings_summary: Vec<RankingSummaryEntry>,
}

/// A phase in the `batch_results_ready` notification payload (no `phase_name`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationPhaseResult {
    pub status: String,
    pub completed_count: i64,
    pub failed_count: i64,
    pub processing_time_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchResultsReadyPayload {
    pub batch_id: String,
    pub total_essays: i64,
    pub completed_essays: i64,
    pub overall_status: BatchStatus,
    pub processing_duration_seconds: f64,
    /// Keyed by phase name, in the order of the domain event.
    pub phase_results: Map<String, Value>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchAssessmentCompletedPayload {
    pub batch_id: String,
    pub assessment_job_id: String,
    pub rankings_available: bool,
    pub rankings_count: i64,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NotificationPayload {
    BatchResultsReady(BatchResultsReadyPayload),
    BatchAssessmentCompleted(BatchAssessmentCompletedPayload),
}

/// `huleedu.notification.teacher.requested.v1` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherNotificationRequestedV1 {
    pub teacher_id: String,
    pub notification_type: String,
    pub category: WebSocketEventCategory,
    pub priority: NotificationPriority,
    pub payload: NotificationPayload,
    pub action_required: bool,
    pub deadline_timestamp: Option<Timestamp>,
    /// The originating envelope's correlation id, as a string.
    pub correlation_id: String,
    pub batch_id: Option<String>,
    pub class_id: Option<String>,
    pub timestamp: Timestamp,
}
