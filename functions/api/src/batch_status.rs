//! The reference's batch shapes (ras-behaviour §8.4): `BatchStatusResponse` with its
//! `EssayResultResponse`s, projected from a batch aggregate, and the user list page (§8.6).
//!
//! Field order is wire order (serde serialises struct fields in declaration order).
//! Timestamps are naive UTC (`2025-11-27T10:00:00`, microseconds only when non-zero), as the
//! reference serves them.

use ras_domain::contracts::{BatchStatus, PhaseName, ProcessingStage, Timestamp};
use ras_domain::model::BatchAggregate;
use ras_domain::projection;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One batch with its attached essays.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct BatchStatusResponse {
    pub batch_id: String,
    /// The batch owner; the API gateway compares it with the caller's user.
    pub user_id: String,
    pub assignment_id: Option<String>,
    /// Client status (`BatchClientStatus`), mapped from the internal `BatchStatus`.
    #[schema(value_type = ras_domain::contracts::BatchClientStatus)]
    pub overall_status: String,
    /// `expected_essay_count` of the registration.
    pub essay_count: i64,
    pub completed_essay_count: i64,
    pub failed_essay_count: i64,
    /// Always null (the reference never stores it).
    #[schema(value_type = Option<String>)]
    pub requested_pipeline: Option<String>,
    /// While the batch is processing: the first phase in which an essay is not finished yet.
    #[schema(value_type = Option<ras_domain::contracts::PhaseName>)]
    pub current_phase: Option<String>,
    /// Attached essays, by essay id.
    pub essays: Vec<EssayResultResponse>,
    /// Naive UTC: when the batch was registered.
    #[schema(example = "2025-11-27T10:00:00")]
    pub created_at: String,
    /// Naive UTC: the latest event time of any change to the batch.
    #[schema(example = "2025-11-27T10:25:00")]
    pub last_updated: String,
    /// Naive UTC: the earliest phase signal.
    pub processing_started_at: Option<String>,
    /// Naive UTC: when the batch completed.
    pub processing_completed_at: Option<String>,
    /// The registration's `StorageReferenceMetadata`, verbatim.
    #[schema(value_type = Option<Object>)]
    pub student_prompt_ref: Option<Value>,
}

/// One essay of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct EssayResultResponse {
    pub essay_id: String,
    pub filename: Option<String>,
    pub file_upload_id: Option<String>,
    #[schema(value_type = Option<ras_domain::contracts::ProcessingStage>)]
    pub spellcheck_status: Option<String>,
    /// Corrections of a completed spellcheck; null otherwise.
    pub spellcheck_correction_count: Option<i64>,
    pub spellcheck_corrected_text_storage_id: Option<String>,
    /// `ErrorDetail` of a failed spellcheck (`message` is the JSON text of the producer's
    /// `error_info`, which `details.error_info` holds as an object).
    #[schema(value_type = Option<Object>)]
    pub spellcheck_error_detail: Option<Value>,
    #[schema(value_type = Option<ras_domain::contracts::ProcessingStage>)]
    pub cj_assessment_status: Option<String>,
    /// Rank in the latest CJ job (anchors included in the ranking, so ranks may have gaps).
    pub cj_rank: Option<i64>,
    /// Bradley–Terry score in the latest CJ job.
    pub cj_score: Option<f64>,
    /// Always null (CJ failures are not reported per essay).
    #[schema(value_type = Option<Object>)]
    pub cj_assessment_error_detail: Option<Value>,
    /// Naive UTC: the latest event time that changed the essay.
    pub last_updated: String,
}

/// `GET /internal/v1/batches/user/{user_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct UserBatchesResponse {
    /// Newest first (by registration time).
    pub batches: Vec<BatchStatusResponse>,
    pub pagination: Pagination,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Pagination {
    pub limit: u32,
    pub offset: u32,
    /// Number of the user's batches matching the filter.
    pub total: u64,
}

fn naive(ts: Timestamp) -> String {
    ts.to_naive()
}

/// The status response of a registered batch; `None` when the batch is not registered.
pub fn batch_status(agg: &BatchAggregate) -> Option<BatchStatusResponse> {
    let registration = agg.root.registration.as_ref()?;
    let created_at = registration.provenance.occurred_at;
    let derived = &agg.root.derived;
    let status = derived
        .overall_status
        .unwrap_or(BatchStatus::AwaitingContentValidation);
    let essays = projection::attached_essays(agg)
        .into_iter()
        .map(|id| essay_result(agg, id))
        .collect();
    Some(BatchStatusResponse {
        batch_id: agg.batch_id().to_string(),
        user_id: registration.user_id.clone(),
        assignment_id: derived.assignment_id.clone(),
        overall_status: status.client_status().to_string(),
        essay_count: registration.essay_count,
        completed_essay_count: derived.completed_essay_count,
        failed_essay_count: derived.failed_essay_count,
        requested_pipeline: None,
        current_phase: projection::current_phase(agg).map(|p| p.as_str().to_string()),
        essays,
        created_at: naive(created_at),
        last_updated: naive(agg.root.updated_at.unwrap_or(created_at).max(created_at)),
        processing_started_at: agg.root.processing_started_at.map(naive),
        processing_completed_at: derived.processing_completed_at.map(naive),
        student_prompt_ref: registration.student_prompt_ref.clone(),
    })
}

fn essay_result(agg: &BatchAggregate, essay_id: &str) -> EssayResultResponse {
    let record = agg.essays.get(essay_id);
    let slot = record.and_then(|e| e.slot.as_ref());
    let spellcheck = record.and_then(|e| e.spellcheck.as_ref());
    let completed_spellcheck = spellcheck.filter(|s| s.stage == ProcessingStage::Completed);
    let cj = projection::cj_result_of(agg, essay_id);
    let stage =
        |phase| projection::essay_phase_stage(agg, essay_id, phase).map(|s| s.as_str().to_string());
    EssayResultResponse {
        essay_id: essay_id.to_string(),
        filename: slot.map(|s| s.original_file_name.clone()),
        file_upload_id: slot.map(|s| s.file_upload_id.clone()),
        spellcheck_status: stage(PhaseName::Spellcheck),
        spellcheck_correction_count: completed_spellcheck.map(|s| s.corrections_made),
        spellcheck_corrected_text_storage_id: spellcheck
            .and_then(|s| s.corrected_text_storage_id.clone()),
        spellcheck_error_detail: spellcheck
            .and_then(|s| s.error_detail.as_ref())
            .and_then(|d| serde_json::to_value(d).ok()),
        cj_assessment_status: stage(PhaseName::CjAssessment),
        cj_rank: cj.map(|c| c.result.rank),
        cj_score: cj.map(|c| c.result.bt_score),
        cj_assessment_error_detail: None,
        last_updated: naive(essay_last_updated(agg, essay_id)),
    }
}

/// The latest event time of anything that changed what the API shows for the essay: its own
/// record (slot, spellcheck), the phase outcomes that list it, the CJ jobs that rank it.
fn essay_last_updated(agg: &BatchAggregate, essay_id: &str) -> Timestamp {
    let own = agg.essays.get(essay_id).map(|e| e.updated_at);
    let phases = agg
        .phases
        .values()
        .filter(|o| o.stage_of(essay_id).is_some())
        .map(|o| o.provenance.occurred_at);
    let jobs = agg
        .cj_jobs
        .values()
        .filter(|j| {
            j.result
                .essay_results
                .iter()
                .any(|r| !r.is_anchor && r.essay_id == essay_id)
        })
        .map(|j| j.assessed_at().max(j.provenance.occurred_at));
    own.into_iter()
        .chain(phases)
        .chain(jobs)
        .max()
        .or(agg.root.updated_at)
        .unwrap_or_else(Timestamp::now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::service::{process_record, ConsumedRecord};
    use ras_domain::testing::events::*;
    use ras_domain::testing::{block_on, InMemoryStore};

    fn ingest(store: &InMemoryStore, record: TestRecord) {
        let consumed = ConsumedRecord {
            topic: record.topic,
            value: &record.value,
            record_time: at_minute(59.0),
        };
        block_on(process_record(store, consumed, at_minute(60.0))).expect("record applies");
    }

    #[test]
    fn unregistered_batch_has_no_status() {
        let store = InMemoryStore::new();
        ingest(
            &store,
            slot_assigned(event_id(1), "b-1", "e-1", at_minute(1.0)),
        );
        let agg = store.aggregate("b-1").expect("stored");
        assert!(batch_status(&agg).is_none());
    }

    #[test]
    fn processing_batch_reports_current_phase_and_pending_essays() {
        let store = InMemoryStore::new();
        ingest(
            &store,
            registration(event_id(1), "b-1", "u-1", &["e-1", "e-2"], at_minute(0.0)),
        );
        ingest(
            &store,
            slot_assigned(event_id(2), "b-1", "e-1", at_minute(1.0)),
        );
        ingest(
            &store,
            spellcheck_result(
                event_id(3),
                "b-1",
                "e-1",
                "spellchecked_success",
                at_minute(2.0),
            ),
        );
        ingest(
            &store,
            spellcheck_result(
                event_id(4),
                "b-1",
                "e-2",
                "spellchecking_in_progress",
                at_minute(3.0),
            ),
        );
        let status = batch_status(&store.aggregate("b-1").expect("stored")).expect("registered");
        assert_eq!(status.overall_status, "processing");
        assert_eq!(status.current_phase.as_deref(), Some("spellcheck"));
        assert_eq!(status.essays.len(), 2);
        let e1 = &status.essays[0];
        assert_eq!(e1.filename.as_deref(), Some("e-1 – uppsats.docx"));
        assert_eq!(e1.spellcheck_status.as_deref(), Some("completed"));
        assert_eq!(e1.spellcheck_correction_count, Some(7));
        assert_eq!(e1.last_updated, "2025-11-27T10:02:00");
        let e2 = &status.essays[1];
        assert_eq!(e2.spellcheck_status.as_deref(), Some("pending"));
        assert_eq!(e2.spellcheck_correction_count, None);
        assert_eq!(
            status.processing_started_at.as_deref(),
            Some("2025-11-27T10:02:00")
        );
        assert_eq!(status.last_updated, "2025-11-27T10:03:00");
    }

    #[test]
    fn keys_are_in_reference_order() {
        let store = InMemoryStore::new();
        ingest(
            &store,
            registration(event_id(1), "b-1", "u-1", &["e-1"], at_minute(0.0)),
        );
        ingest(
            &store,
            slot_assigned(event_id(2), "b-1", "e-1", at_minute(1.0)),
        );
        let status = batch_status(&store.aggregate("b-1").expect("stored")).expect("registered");
        let value = serde_json::to_value(&status).expect("serialises");
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "batch_id",
                "user_id",
                "assignment_id",
                "overall_status",
                "essay_count",
                "completed_essay_count",
                "failed_essay_count",
                "requested_pipeline",
                "current_phase",
                "essays",
                "created_at",
                "last_updated",
                "processing_started_at",
                "processing_completed_at",
                "student_prompt_ref"
            ]
        );
        let essay_keys: Vec<&str> = value["essays"][0]
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            essay_keys,
            [
                "essay_id",
                "filename",
                "file_upload_id",
                "spellcheck_status",
                "spellcheck_correction_count",
                "spellcheck_corrected_text_storage_id",
                "spellcheck_error_detail",
                "cj_assessment_status",
                "cj_rank",
                "cj_score",
                "cj_assessment_error_detail",
                "last_updated"
            ]
        );
        assert_eq!(value["overall_status"], "pending_content");
        assert_eq!(value["requested_pipeline"], Value::Null);
    }
}
