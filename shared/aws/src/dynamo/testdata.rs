//! Domain records with every optional part filled in, for the encoding tests.

use ras_domain::contracts::{
    AssessmentResultV1, BatchStatus, ConfidenceLabel, CourseCode, ErrorDetail, EssayResultV1,
    PhaseName, ProcessingStage, SpellcheckMetricsV1, Timestamp,
};
use ras_domain::model::*;
use ras_domain::ports::IdempotencyMarker;
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("test timestamp")
}

fn provenance(at: &str, key: &str) -> Provenance {
    Provenance {
        occurred_at: ts(at),
        event_key: key.to_string(),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub fn error_detail() -> ErrorDetail {
    ErrorDetail {
        error_code: "PROCESSING_ERROR".into(),
        message: "Phase cj_assessment failed critically".into(),
        correlation_id: Uuid::from_u128(7),
        timestamp: ts("2025-11-27T10:05:00.25Z"),
        service: "result_aggregator_service".into(),
        operation: "process_batch_phase_outcome".into(),
        // Order and float-ness must survive.
        details: object(
            json!({"zeta": 1, "alpha": 2.0, "nested": {"b": [1.5, null, "x"], "a": {}}, "empty": ""}),
        ),
        stack_trace: Some("trace".into()),
        trace_id: None,
        span_id: Some("span".into()),
    }
}

pub fn registered_root(batch_id: &str) -> BatchRoot {
    BatchRoot {
        batch_id: batch_id.to_string(),
        version: 3,
        registration: Some(Registration {
            user_id: "teacher-1".into(),
            essay_count: 2,
            essay_ids: vec!["e-1".into(), "e-2".into()],
            course_code: CourseCode::Sv2,
            student_prompt_ref: Some(
                json!({"references": {"student_prompt_text": {"storage_id": "p-1", "path": ""}}, "a_float": 2.0}),
            ),
            org_id: Some("org".into()),
            class_id: None,
            correlation_id: Uuid::from_u128(1),
            provenance: provenance("2025-11-27T10:00:00Z", "event:reg"),
        }),
        pipeline_completion: Some(PipelineCompletion {
            final_status: BatchStatus::CompletedWithFailures,
            completed_phases: vec!["spellcheck".into()],
            successful_essay_count: 1,
            failed_essay_count: 1,
            processing_duration_seconds: 120.0,
            correlation_id: Uuid::from_u128(2),
            provenance: provenance("2025-11-27T10:30:00.000001Z", "event:bos"),
        }),
        critical_failure: Some(CriticalFailure {
            phase: PhaseName::CjAssessment,
            error_detail: error_detail(),
            provenance: provenance("2025-11-27T10:05:00Z", "sha256:abc"),
        }),
        processing_started_at: Some(ts("2025-11-27T10:01:00Z")),
        updated_at: Some(ts("2025-11-27T10:30:00.000001Z")),
        results_ready: Some(Emission {
            event_id: Uuid::from_u128(3),
            emitted_at: ts("2025-11-27T10:31:00Z"),
        }),
        awaiting_facts_since: None,
        results_ready_missing: Some(MissingFacts {
            pipeline_completion: false,
            phases: vec![PhaseName::CjAssessment],
            essays: vec![MissingResult {
                phase: PhaseName::Spellcheck,
                essay_id: "e-2".into(),
            }],
        }),
        essay_counters: Some(EssayCounters {
            spellcheck_completed: 1,
            spellcheck_failed: 1,
        }),
        derived: DerivedBatch {
            overall_status: Some(BatchStatus::ProcessingPipelines),
            completed_essay_count: 1,
            failed_essay_count: 1,
            assignment_id: Some("assignment".into()),
            processing_completed_at: Some(ts("2025-11-27T10:29:00Z")),
        },
    }
}

pub fn essay(batch_id: &str, essay_id: &str, full: bool) -> EssayRecord {
    EssayRecord {
        essay_id: essay_id.to_string(),
        batch_id: batch_id.to_string(),
        slot: full.then(|| SlotAssignment {
            file_upload_id: "upload".into(),
            text_storage_id: "text".into(),
            original_file_name: "Åsa Öberg – uppsats.docx".into(),
            provenance: provenance("2025-11-27T10:01:00Z", "event:slot"),
        }),
        spellcheck: full.then(|| SpellcheckOutcome {
            stage: ProcessingStage::Failed,
            status: "spellcheck_failed".into(),
            corrections_made: 0,
            corrected_text_storage_id: None,
            metrics: SpellcheckMetricsV1 {
                total_corrections: 7,
                l2_dictionary_corrections: 4,
                spellchecker_corrections: 3,
                word_count: 350,
                correction_density: 2.0,
            },
            processing_duration_ms: 1834,
            error_detail: Some(error_detail()),
            correlation_id: Uuid::from_u128(4),
            provenance: provenance("2025-11-27T10:02:00Z", "event:spell"),
        }),
        updated_at: ts("2025-11-27T10:02:00Z"),
        version: u64::from(full),
    }
}

pub fn phase() -> PhaseOutcomeRecord {
    PhaseOutcomeRecord {
        phase: PhaseName::CjAssessment,
        phase_status: BatchStatus::CompletedWithFailures,
        processed_essay_ids: vec!["e-1".into()],
        failed_essay_ids: vec!["e-2".into()],
        correlation_id: Uuid::from_u128(5),
        provenance: provenance("2025-11-27T10:10:00Z", "event:phase"),
    }
}

pub fn essay_result(i: usize, name_len: usize) -> EssayResultV1 {
    EssayResultV1 {
        essay_id: format!("essay-{i:05}"),
        normalized_score: (i % 100) as f64 / 100.0,
        letter_grade: ["A", "B+", "C-", "U"][i % 4].into(),
        confidence_score: 0.5,
        confidence_label: ConfidenceLabel::Mid,
        bt_score: -1.25 + i as f64 * 0.1,
        rank: i as i64 + 1,
        is_anchor: i < 3,
        feedback_uri: (i % 3 == 1).then(|| format!("s3://feedback/{i}")),
        metrics_uri: None,
        display_name: (name_len > 0).then(|| "Ö".repeat(name_len / 2)),
    }
}

pub fn cj_job(batch_id: &str, job_id: &str, essays: usize, name_len: usize) -> CjJobRecord {
    CjJobRecord {
        job_id: job_id.to_string(),
        batch_id: batch_id.to_string(),
        result: AssessmentResultV1 {
            event_name: Some("assessment.result.published".into()),
            entity_id: Some(batch_id.to_string()),
            entity_type: Some("batch".into()),
            parent_id: None,
            timestamp: Some(ts("2025-11-27T10:20:00Z")),
            batch_id: batch_id.to_string(),
            cj_assessment_job_id: job_id.to_string(),
            assignment_id: Some("assignment".into()),
            assessment_method: "cj_assessment".into(),
            model_used: "claude".into(),
            model_provider: "anthropic".into(),
            model_version: None,
            essay_results: (0..essays).map(|i| essay_result(i, name_len)).collect(),
            assessment_metadata: object(
                json!({"llm_temperature": 0.1, "duration": 812.0, "grades": {"B": 0, "A": 1}}),
            ),
            assessed_at: Some(ts("2025-11-27T10:20:00.123Z")),
        },
        correlation_id: Uuid::from_u128(6),
        provenance: provenance("2025-11-27T10:20:00.123Z", "event:cj"),
        assessment_completed: Some(Emission {
            event_id: Uuid::from_u128(8),
            emitted_at: ts("2025-11-27T10:21:00Z"),
        }),
    }
}

pub fn marker(batch_id: &str, event_key: &str, hash: &str) -> IdempotencyMarker {
    IdempotencyMarker::new(
        event_key.into(),
        hash.into(),
        "huleedu.els.batch.phase.outcome.v1",
        batch_id,
        ts("2025-11-27T10:00:00.5Z"),
    )
}

pub fn aggregate(batch_id: &str) -> BatchAggregate {
    let mut agg = BatchAggregate::new(batch_id);
    agg.root = registered_root(batch_id);
    for (id, full) in [("e-1", true), ("e-2", false)] {
        agg.essays.insert(id.into(), essay(batch_id, id, full));
    }
    let phase = phase();
    agg.phases.insert(phase.phase, phase);
    for (job, essays) in [("417", 25), ("418", 0)] {
        agg.cj_jobs
            .insert(job.into(), cj_job(batch_id, job, essays, 100));
    }
    agg
}
