//! Builders of consumed HuleEdu records (envelope + data), shaped exactly like the real
//! producers' messages in `tests/fixtures/huleedu/`. Each returns `(topic, value bytes)`.

use crate::contracts::{to_python_json, Timestamp};
use serde_json::{json, Value};
use uuid::Uuid;

/// A consumed record: topic and the Kafka value bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct TestRecord {
    pub topic: &'static str,
    pub value: Vec<u8>,
}

impl TestRecord {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.value).unwrap_or(Value::Null)
    }

    /// The same event re-published by its producer: same data, new envelope `event_id`.
    pub fn republished(&self, event_id: Uuid) -> TestRecord {
        let mut v = self.json();
        v["event_id"] = json!(event_id.to_string());
        TestRecord {
            topic: self.topic,
            value: bytes(&v),
        }
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    to_python_json(v).unwrap_or_default()
}

/// The producers' correlation id is the event id here: every test event is its own flow.
fn envelope(
    topic: &'static str,
    event_type: &str,
    source: &str,
    event_id: Uuid,
    at: Timestamp,
    data: Value,
    metadata: Value,
) -> TestRecord {
    let v = json!({
        "event_id": event_id.to_string(),
        "event_type": event_type,
        "event_timestamp": at.to_wire(),
        "source_service": source,
        "schema_version": 1,
        "correlation_id": event_id.to_string(),
        "data_schema_uri": null,
        "data": data,
        "metadata": metadata,
    });
    TestRecord {
        topic,
        value: bytes(&v),
    }
}

fn system_metadata(entity_id: &str, entity_type: &str, at: Timestamp, event: &str) -> Value {
    json!({"entity_id": entity_id, "entity_type": entity_type, "parent_id": null, "timestamp": at.to_wire(),
           "processing_stage": null, "started_at": null, "completed_at": null, "event": event, "error_info": {}})
}

pub fn registration(
    event_id: Uuid,
    batch_id: &str,
    user_id: &str,
    essay_ids: &[&str],
    at: Timestamp,
) -> TestRecord {
    let data = json!({
        "event": "batch.essays.registered",
        "entity_id": batch_id,
        "expected_essay_count": essay_ids.len(),
        "essay_ids": essay_ids,
        "metadata": system_metadata(batch_id, "batch", at, "batch.essays.registered"),
        "course_code": "ENG5",
        "student_prompt_ref": {"references": {"student_prompt_text": {"storage_id": format!("prompt-{batch_id}"), "path": ""}}},
        "user_id": user_id,
        "org_id": null,
        "class_id": null,
    });
    envelope(
        "huleedu.batch.essays.registered.v1",
        "huleedu.batch.essays.registered.v1",
        "batch-service",
        event_id,
        at,
        data,
        Value::Null,
    )
}

pub fn slot_assigned(event_id: Uuid, batch_id: &str, essay_id: &str, at: Timestamp) -> TestRecord {
    let data = json!({
        "event": "essay.slot.assigned",
        "batch_id": batch_id,
        "essay_id": essay_id,
        "file_upload_id": format!("upload-{essay_id}"),
        "text_storage_id": format!("text-{essay_id}"),
        "original_file_name": format!("{essay_id} – uppsats.docx"),
        "correlation_id": event_id.to_string(),
        "timestamp": at.to_wire(),
    });
    envelope(
        "huleedu.els.essay.slot.assigned.v1",
        "huleedu.els.essay.slot.assigned.v1",
        "essay-lifecycle-service",
        event_id,
        at,
        data,
        json!({}),
    )
}

/// `status`: e.g. `spellchecked_success`, `spellcheck_failed`, `spellchecking_in_progress`.
pub fn spellcheck_result(
    event_id: Uuid,
    batch_id: &str,
    essay_id: &str,
    status: &str,
    at: Timestamp,
) -> TestRecord {
    let failed = status.ends_with("_failed");
    let mut meta = system_metadata(essay_id, "essay", at, "spellcheck.results");
    if failed {
        meta["error_info"] = json!({"error_message": "timeout", "error_code": "TIMEOUT"});
    }
    let data = json!({
        "event_name": "spellcheck.results",
        "entity_id": essay_id,
        "entity_type": "essay",
        "parent_id": batch_id,
        "timestamp": at.to_wire(),
        "status": status,
        "system_metadata": meta,
        "batch_id": batch_id,
        "correlation_id": event_id.to_string(),
        "user_id": null,
        "corrections_made": if failed { 0 } else { 7 },
        "correction_metrics": {"total_corrections": 7, "l2_dictionary_corrections": 4, "spellchecker_corrections": 3, "word_count": 350, "correction_density": 2.0},
        "original_text_storage_id": format!("text-{essay_id}"),
        "corrected_text_storage_id": if failed { Value::Null } else { json!(format!("corr-{essay_id}")) },
        "processing_duration_ms": 1834,
        "processor_version": "pyspellchecker_1.0_L2_swedish",
    });
    envelope(
        "huleedu.essay.spellcheck.results.v1",
        "huleedu.essay.spellcheck.results.v1",
        "spellchecker_service",
        event_id,
        at,
        data,
        json!({"partition_key": essay_id}),
    )
}

/// `phase`: `spellcheck` / `cj_assessment` / …; `status`: a BatchStatus value.
pub fn phase_outcome(
    event_id: Uuid,
    batch_id: &str,
    phase: &str,
    status: &str,
    processed: &[&str],
    failed: &[&str],
    at: Timestamp,
) -> TestRecord {
    let processed: Vec<Value> = processed
        .iter()
        .map(|id| json!({"essay_id": id, "text_storage_id": format!("corr-{id}"), "spellcheck_metrics": null}))
        .collect();
    let data = json!({
        "batch_id": batch_id,
        "phase_name": phase,
        "phase_status": status,
        "processed_essays": processed,
        "failed_essay_ids": failed,
        "correlation_id": event_id.to_string(),
    });
    envelope(
        "huleedu.els.batch.phase.outcome.v1",
        "huleedu.els.batch.phase.outcome.v1",
        "essay-lifecycle-service",
        event_id,
        at,
        data,
        Value::Null,
    )
}

/// One student result: essay id, rank, BT score, letter grade.
pub type StudentResult<'a> = (&'a str, i64, f64, &'a str);

pub fn assessment_result(
    event_id: Uuid,
    batch_id: &str,
    job_id: &str,
    students: &[StudentResult],
    with_anchor: bool,
    at: Timestamp,
) -> TestRecord {
    let mut results: Vec<Value> = students
        .iter()
        .map(|(id, rank, bt, grade)| {
            json!({
            "essay_id": id, "normalized_score": 0.8, "letter_grade": grade, "confidence_score": 0.7,
            "confidence_label": "MID", "bt_score": bt, "rank": rank, "is_anchor": false,
            "feedback_uri": null, "metrics_uri": null, "display_name": null})
        })
        .collect();
    if with_anchor {
        results.push(json!({
            "essay_id": format!("ANCHOR_{job_id}_0a1b2c3d"), "normalized_score": 1.0, "letter_grade": "A", "confidence_score": 1.0,
            "confidence_label": "HIGH", "bt_score": 2.4, "rank": students.len() as i64 + 1, "is_anchor": true,
            "feedback_uri": null, "metrics_uri": null, "display_name": "ANCHOR GRADE A"}));
    }
    let data = json!({
        "event_name": "assessment.result.published",
        "entity_id": batch_id,
        "entity_type": "batch",
        "parent_id": null,
        "timestamp": at.to_wire(),
        "batch_id": batch_id,
        "cj_assessment_job_id": job_id,
        "assignment_id": "assignment-eng5-2025",
        "assessment_method": "cj_assessment",
        "model_used": "claude-3-5-haiku",
        "model_provider": "anthropic",
        "model_version": null,
        "essay_results": results,
        "assessment_metadata": {"anchor_essays_used": if with_anchor { 1 } else { 0 }, "calibration_method": if with_anchor { "anchor" } else { "default" },
                                 "comparison_count": 3, "processing_duration_seconds": 812.4, "llm_temperature": 0.1, "course_code": "ENG5"},
        "assessed_at": at.to_wire(),
    });
    envelope(
        "huleedu.assessment.result.published.v1",
        "assessment.result.published",
        "cj_assessment_service",
        event_id,
        at,
        data,
        json!({}),
    )
}

pub fn pipeline_completed(
    event_id: Uuid,
    batch_id: &str,
    final_status: &str,
    phases: &[&str],
    successful: i64,
    failed: i64,
    at: Timestamp,
) -> TestRecord {
    let data = json!({
        "event": "batch.pipeline.completed",
        "batch_id": batch_id,
        "completed_phases": phases,
        "final_status": final_status,
        "processing_duration_seconds": 1302.75,
        "successful_essay_count": successful,
        "failed_essay_count": failed,
        "correlation_id": event_id.to_string(),
        "metadata": system_metadata(batch_id, "batch", at, "batch.pipeline.completed"),
    });
    envelope(
        "huleedu.batch.pipeline.completed.v1",
        "batch.pipeline.completed",
        "batch_orchestrator_service",
        event_id,
        at,
        data,
        json!({"batch_id": batch_id, "completed_phases": phases, "final_status": final_status}),
    )
}

/// A timestamp `minutes` after 2025-11-27T10:00:00Z.
pub fn at_minute(minutes: f64) -> Timestamp {
    let base = Timestamp::parse("2025-11-27T10:00:00Z").unwrap_or_else(Timestamp::now);
    Timestamp::from_unix_micros(base.unix_micros() + (minutes * 60_000_000.0) as i64)
        .unwrap_or(base)
}

/// Deterministic event ids for tests: `n` → `aaaaaaaa-0000-4000-8000-00000000000n`.
pub fn event_id(n: u64) -> Uuid {
    Uuid::from_u128(0xaaaaaaaa_0000_4000_8000_000000000000u128 + n as u128)
}
