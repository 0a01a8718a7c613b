//! Shared payload parts: `SystemProcessingMetadata`, `StorageReferenceMetadata`, `ErrorDetail`.

use super::enums::ProcessingStage;
use super::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemProcessingMetadata {
    pub entity_id: String,
    pub entity_type: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    #[serde(default)]
    pub processing_stage: Option<ProcessingStage>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub error_info: Map<String, Value>,
}

impl SystemProcessingMetadata {
    /// The metadata RAS puts on its own domain events (§5.1/§5.2).
    pub fn for_batch_event(batch_id: &str, timestamp: Timestamp, event: &str) -> Self {
        SystemProcessingMetadata {
            entity_id: batch_id.to_string(),
            entity_type: "batch".to_string(),
            parent_id: None,
            timestamp: Some(timestamp),
            processing_stage: None,
            started_at: None,
            completed_at: None,
            event: Some(event.to_string()),
            error_info: Map::new(),
        }
    }
}

/// `StorageReferenceMetadata`: `references` keyed by `ContentType` value, each an object of
/// strings (`{"storage_id": …, "path": …}`). Kept verbatim (key order included) because the API
/// serves `student_prompt_ref` as received; keys and values are checked by
/// [`crate::contracts::validate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageReferenceMetadata {
    pub references: Map<String, Value>,
}

/// `common_core.models.error_models.ErrorDetail`, as stored on essays and batches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub error_code: String,
    pub message: String,
    pub correlation_id: Uuid,
    pub timestamp: Timestamp,
    pub service: String,
    pub operation: String,
    #[serde(default)]
    pub details: Map<String, Value>,
    #[serde(default)]
    pub stack_trace: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub span_id: Option<String>,
}
