//! Behaviour of the core: the reference's handler/projector/completion scenarios
//! (ras-behaviour §10) adapted to our fixes, and one test per SPEC §3 fix.

mod common;

use ras_domain::contracts::*;
use ras_domain::ids;
use ras_domain::plan::OutboxMessage;
use ras_domain::projection;
use ras_domain::service::{process_record, ConsumedRecord, ProcessError, RecordOutcome};
use ras_domain::testing::events::*;
use ras_domain::testing::{block_on, InMemoryStore};
use serde_json::Value;

const B: &str = "batch-1";
const T: &str = "teacher-1";

struct Harness {
    store: InMemoryStore,
    now: Timestamp,
}

impl Harness {
    fn new() -> Self {
        Harness {
            store: InMemoryStore::new(),
            now: Timestamp::parse("2025-11-27T11:00:00Z").unwrap(),
        }
    }

    fn feed(&self, record: &TestRecord) -> RecordOutcome {
        self.try_feed(record)
            .unwrap_or_else(|e| panic!("{}: {e}", record.topic))
    }

    fn try_feed(&self, record: &TestRecord) -> Result<RecordOutcome, ProcessError> {
        let r = ConsumedRecord {
            topic: record.topic,
            value: &record.value,
            record_time: self.now,
        };
        block_on(process_record(&self.store, r, self.now))
    }

    fn agg(&self) -> ras_domain::model::BatchAggregate {
        self.store.aggregate(B).expect("batch stored")
    }

    fn status(&self) -> Option<BatchStatus> {
        self.agg().root.derived.overall_status
    }

    fn outbox(&self) -> Vec<OutboxMessage> {
        self.store.outbox()
    }

    fn published(&self, topic: PublishedTopic) -> Vec<Value> {
        self.outbox()
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }
}

fn full_pipeline_events() -> Vec<TestRecord> {
    vec![
        registration(event_id(1), B, T, &["e1", "e2", "e3"], at_minute(0.0)),
        slot_assigned(event_id(2), B, "e1", at_minute(1.0)),
        slot_assigned(event_id(3), B, "e2", at_minute(1.0)),
        slot_assigned(event_id(4), B, "e3", at_minute(1.0)),
        spellcheck_result(event_id(5), B, "e1", "spellchecked_success", at_minute(2.0)),
        spellcheck_result(event_id(6), B, "e2", "spellchecked_success", at_minute(2.5)),
        spellcheck_result(event_id(7), B, "e3", "spellcheck_failed", at_minute(3.0)),
        phase_outcome(
            event_id(8),
            B,
            "spellcheck",
            "completed_with_failures",
            &["e1", "e2"],
            &["e3"],
            at_minute(5.0),
        ),
        assessment_result(
            event_id(9),
            B,
            "417",
            &[("e2", 1, 1.37, "B"), ("e1", 2, -0.21, "C")],
            true,
            at_minute(20.0),
        ),
        phase_outcome(
            event_id(10),
            B,
            "cj_assessment",
            "completed_successfully",
            &["e1", "e2"],
            &[],
            at_minute(21.0),
        ),
        pipeline_completed(
            event_id(11),
            B,
            "completed_with_failures",
            &["spellcheck", "cj_assessment"],
            2,
            1,
            at_minute(25.0),
        ),
    ]
}

#[test]
fn registration_creates_a_batch_awaiting_content() {
    let h = Harness::new();
    h.feed(&registration(
        event_id(1),
        B,
        T,
        &["e1", "e2"],
        at_minute(0.0),
    ));
    let agg = h.agg();
    let reg = agg.root.registration.as_ref().unwrap();
    assert_eq!(reg.user_id, T);
    assert_eq!(reg.essay_count, 2);
    assert_eq!(
        reg.student_prompt_ref.as_ref().unwrap()["references"]["student_prompt_text"]["storage_id"],
        "prompt-batch-1"
    );
    assert_eq!(h.status(), Some(BatchStatus::AwaitingContentValidation));
    assert_eq!(agg.root.derived.completed_essay_count, 0);
    assert_eq!(agg.root.derived.failed_essay_count, 0);
    // Registration alone attaches nothing (the reference creates no essay rows either).
    assert!(projection::attached_essays(&agg).is_empty());
    assert!(h.outbox().is_empty());
}

#[test]
fn registration_replay_is_harmless_and_earliest_wins() {
    let h = Harness::new();
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    let before = h.agg();
    // Same record again: duplicate by marker.
    assert!(matches!(
        h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0))),
        RecordOutcome::Duplicate { .. }
    ));
    // A later registration with another owner (new event id) does not take over.
    h.feed(&registration(
        event_id(2),
        B,
        "someone-else",
        &["e1"],
        at_minute(3.0),
    ));
    assert_eq!(h.agg().root.registration, before.root.registration);
}

#[test]
fn fix4_slot_assignment_attaches_the_essay_to_its_batch() {
    let h = Harness::new();
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    h.feed(&slot_assigned(event_id(2), B, "e1", at_minute(1.0)));
    let agg = h.agg();
    let essay = &agg.essays["e1"];
    assert_eq!(essay.batch_id, B);
    let slot = essay.slot.as_ref().unwrap();
    assert_eq!(slot.file_upload_id, "upload-e1");
    assert_eq!(slot.original_file_name, "e1 – uppsats.docx");
    assert_eq!(
        projection::attached_essays(&agg)
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["e1"]
    );
}

#[test]
fn fix5_results_before_registration_are_kept_and_appear_once_it_registers() {
    let h = Harness::new();
    h.feed(&spellcheck_result(
        event_id(5),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    h.feed(&assessment_result(
        event_id(9),
        B,
        "417",
        &[("e1", 1, 0.5, "B")],
        false,
        at_minute(20.0),
    ));
    let agg = h.agg();
    assert!(!agg.is_registered());
    assert_eq!(agg.root.derived.overall_status, None);
    assert!(
        h.outbox().is_empty(),
        "nothing is published before the owner is known"
    );
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    let agg = h.agg();
    assert_eq!(
        projection::essay_phase_stage(&agg, "e1", PhaseName::Spellcheck),
        Some(ProcessingStage::Completed)
    );
    assert_eq!(
        projection::essay_phase_stage(&agg, "e1", PhaseName::CjAssessment),
        Some(ProcessingStage::Completed)
    );
    // The assessment-completed event waited for the registration.
    let done = h.published(PublishedTopic::BatchAssessmentCompleted);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["data"]["user_id"], T);
}

#[test]
fn fix11_spellcheck_status_mapping_and_json_error_detail() {
    let h = Harness::new();
    h.feed(&registration(
        event_id(1),
        B,
        T,
        &["e1", "e2", "e3"],
        at_minute(0.0),
    ));
    h.feed(&spellcheck_result(
        event_id(5),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    h.feed(&spellcheck_result(
        event_id(6),
        B,
        "e2",
        "spellcheck_failed",
        at_minute(2.0),
    ));
    h.feed(&spellcheck_result(
        event_id(7),
        B,
        "e3",
        "spellchecking_in_progress",
        at_minute(2.0),
    ));
    let agg = h.agg();
    let e1 = agg.essays["e1"].spellcheck.as_ref().unwrap();
    assert_eq!(e1.stage, ProcessingStage::Completed);
    assert_eq!(e1.corrections_made, 7);
    assert_eq!(e1.corrected_text_storage_id.as_deref(), Some("corr-e1"));
    assert_eq!(e1.metrics.word_count, 350);
    assert!(e1.error_detail.is_none());
    let e2 = agg.essays["e2"].spellcheck.as_ref().unwrap();
    assert_eq!(e2.stage, ProcessingStage::Failed);
    let detail = e2.error_detail.as_ref().unwrap();
    assert_eq!(detail.error_code, "SPELLCHECK_SERVICE_ERROR");
    assert_eq!(detail.service, "result_aggregator_service");
    assert_eq!(detail.operation, "process_spellcheck_result");
    // JSON, not a Python repr.
    let message: Value = serde_json::from_str(&detail.message).unwrap();
    assert_eq!(message["error_message"], "timeout");
    assert_eq!(detail.details["status"], "spellcheck_failed");
    assert_eq!(detail.details["error_info"]["error_code"], "TIMEOUT");
    // In-progress is not a failure: the essay stays pending.
    assert_eq!(
        agg.essays["e3"].spellcheck.as_ref().unwrap().stage,
        ProcessingStage::Pending
    );
    assert_eq!(
        projection::essay_phase_stage(&agg, "e3", PhaseName::Spellcheck),
        Some(ProcessingStage::Pending)
    );
    // A later in-progress report never downgrades a terminal result; a terminal one replaces pending.
    h.feed(&spellcheck_result(
        event_id(8),
        B,
        "e1",
        "spellchecking_in_progress",
        at_minute(9.0),
    ));
    h.feed(&spellcheck_result(
        event_id(9),
        B,
        "e3",
        "spellchecked_success",
        at_minute(3.0),
    ));
    let agg = h.agg();
    assert_eq!(
        agg.essays["e1"].spellcheck.as_ref().unwrap().stage,
        ProcessingStage::Completed
    );
    assert_eq!(
        agg.essays["e3"].spellcheck.as_ref().unwrap().stage,
        ProcessingStage::Completed
    );
}

#[test]
fn spellcheck_failure_without_error_info_has_no_error_detail() {
    let h = Harness::new();
    let mut record = spellcheck_result(event_id(6), B, "e2", "spellcheck_failed", at_minute(2.0));
    let mut v = record.json();
    v["data"]["system_metadata"]["error_info"] = serde_json::json!({});
    record.value = to_python_json(&v).unwrap();
    h.feed(&record);
    let s = h.agg().essays["e2"].spellcheck.clone().unwrap();
    assert_eq!(s.stage, ProcessingStage::Failed);
    assert!(s.error_detail.is_none());
}

#[test]
fn fix9_cj_result_keeps_every_detail_and_emits_assessment_completed_once() {
    let h = Harness::new();
    h.feed(&registration(
        event_id(1),
        B,
        T,
        &["e1", "e2"],
        at_minute(0.0),
    ));
    let cj = assessment_result(
        event_id(9),
        B,
        "417",
        &[("e2", 1, 1.37, "B"), ("e1", 2, -0.21, "C")],
        true,
        at_minute(20.0),
    );
    h.feed(&cj);
    let agg = h.agg();
    let job = &agg.cj_jobs["417"];
    assert_eq!(job.result.essay_results.len(), 3, "anchors are kept");
    assert_eq!(job.result.model_used, "claude-3-5-haiku");
    assert_eq!(
        job.result.assessment_metadata["calibration_method"],
        "anchor"
    );
    let e2 = projection::cj_result_of(&agg, "e2").unwrap();
    assert_eq!(
        (
            e2.result.rank,
            e2.result.bt_score,
            e2.result.letter_grade.as_str()
        ),
        (1, 1.37, "B")
    );
    assert_eq!(e2.result.normalized_score, 0.8);
    assert_eq!(e2.result.confidence_label, ConfidenceLabel::Mid);
    // Anchors are not essays of the batch.
    assert_eq!(projection::attached_essays(&agg).len(), 2);
    assert_eq!(
        agg.root.derived.assignment_id.as_deref(),
        Some("assignment-eng5-2025")
    );

    let events = h.published(PublishedTopic::BatchAssessmentCompleted);
    assert_eq!(events.len(), 1);
    let data = &events[0]["data"];
    assert_eq!(data["assessment_job_id"], "417");
    assert_eq!(data["rankings_summary"].as_array().unwrap().len(), 2);
    assert_eq!(data["rankings_summary"][0]["essay_id"], "e2");
    assert_eq!(data["rankings_summary"][0]["score"], 1.37);
    assert_eq!(
        events[0]["event_id"],
        ids::assessment_completed_event_id(B, "417").to_string()
    );
    assert_eq!(events[0]["correlation_id"], event_id(9).to_string());
    let notes = h.published(PublishedTopic::TeacherNotificationRequested);
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0]["data"]["notification_type"],
        "batch_assessment_completed"
    );
    assert_eq!(notes[0]["data"]["priority"], "standard");
    assert_eq!(notes[0]["data"]["payload"]["rankings_count"], 2);
    assert_eq!(
        notes[0]["data"]["payload"]["message"],
        "Comparative judgment assessment completed for batch batch-1"
    );
    assert_eq!(notes[0]["metadata"], Value::Null);

    // Replays (same record, or re-published with a new event id) emit nothing more.
    h.feed(&cj);
    h.feed(&cj.republished(event_id(99)));
    assert_eq!(
        h.published(PublishedTopic::BatchAssessmentCompleted).len(),
        1
    );
    // A second CJ job for the batch gets its own event.
    h.feed(&assessment_result(
        event_id(12),
        B,
        "418",
        &[("e1", 1, 0.3, "A")],
        false,
        at_minute(30.0),
    ));
    assert_eq!(
        h.published(PublishedTopic::BatchAssessmentCompleted).len(),
        2
    );
    assert_eq!(
        projection::cj_result_of(&h.agg(), "e1").unwrap().job.job_id,
        "418",
        "latest job wins"
    );
}

#[test]
fn empty_cj_result_still_publishes_with_empty_rankings() {
    let h = Harness::new();
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    h.feed(&assessment_result(
        event_id(9),
        B,
        "417",
        &[],
        false,
        at_minute(20.0),
    ));
    let events = h.published(PublishedTopic::BatchAssessmentCompleted);
    assert_eq!(events[0]["data"]["rankings_summary"], serde_json::json!([]));
    let notes = h.published(PublishedTopic::TeacherNotificationRequested);
    assert_eq!(notes[0]["data"]["payload"]["rankings_available"], false);
}

#[test]
fn fix8_status_moves_forward_and_bos_is_authoritative() {
    let h = Harness::new();
    let events = full_pipeline_events();
    h.feed(&events[0]);
    assert_eq!(h.status(), Some(BatchStatus::AwaitingContentValidation));
    for e in &events[1..4] {
        h.feed(e);
    }
    assert_eq!(
        h.status(),
        Some(BatchStatus::AwaitingContentValidation),
        "slots are not a phase signal"
    );
    h.feed(&events[4]);
    assert_eq!(
        h.status(),
        Some(BatchStatus::ProcessingPipelines),
        "first phase signal"
    );
    assert_eq!(h.agg().root.processing_started_at, Some(at_minute(2.0)));
    for e in &events[5..10] {
        h.feed(e);
    }
    assert_eq!(h.status(), Some(BatchStatus::CompletedWithFailures));
    // A later critical phase failure does not rewrite a terminal status…
    h.feed(&phase_outcome(
        event_id(30),
        B,
        "nlp",
        "failed_critically",
        &[],
        &[],
        at_minute(22.0),
    ));
    assert_eq!(h.status(), Some(BatchStatus::CompletedWithFailures));
    // …but BOS's pipeline-completed is authoritative.
    h.feed(&pipeline_completed(
        event_id(31),
        B,
        "failed_critically",
        &["spellcheck", "cj_assessment", "nlp"],
        2,
        1,
        at_minute(25.0),
    ));
    assert_eq!(h.status(), Some(BatchStatus::FailedCritically));
    assert_eq!(h.agg().root.derived.completed_essay_count, 2);
    assert_eq!(h.agg().root.derived.failed_essay_count, 1);
}

#[test]
fn critical_phase_failure_sets_failed_critically_with_error_detail() {
    let h = Harness::new();
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    h.feed(&phase_outcome(
        event_id(8),
        B,
        "spellcheck",
        "failed_critically",
        &[],
        &["e1"],
        at_minute(5.0),
    ));
    let agg = h.agg();
    assert_eq!(
        agg.root.derived.overall_status,
        Some(BatchStatus::FailedCritically)
    );
    let failure = agg.root.critical_failure.as_ref().unwrap();
    assert_eq!(failure.error_detail.error_code, "PROCESSING_ERROR");
    assert_eq!(
        failure.error_detail.message,
        "Phase spellcheck failed critically"
    );
    assert_eq!(failure.error_detail.correlation_id, event_id(8));
    assert_eq!(failure.error_detail.details["status"], "failed_critically");
    // Not complete: BOS will report the pipeline's end.
    assert!(h.published(PublishedTopic::BatchResultsReady).is_empty());
    h.feed(&pipeline_completed(
        event_id(11),
        B,
        "failed_critically",
        &["spellcheck"],
        0,
        1,
        at_minute(6.0),
    ));
    let ready = h.published(PublishedTopic::BatchResultsReady);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["data"]["overall_status"], "failed_critically");
}

#[test]
fn fix6_fix7_full_pipeline_completes_once_with_real_timings() {
    let h = Harness::new();
    let events = full_pipeline_events();
    for e in &events[..10] {
        h.feed(e);
        assert!(
            h.published(PublishedTopic::BatchResultsReady).is_empty(),
            "not due before BOS reports the pipeline completed"
        );
    }
    // Every phase is reported: the every-phase rule holds and the batch waits for BOS only.
    assert_eq!(h.status(), Some(BatchStatus::CompletedWithFailures));
    assert!(h.agg().root.awaiting_facts_since.is_some());
    h.feed(&events[10]); // BOS's pipeline-completed makes it due
    let ready = h.published(PublishedTopic::BatchResultsReady);
    assert_eq!(ready.len(), 1);
    let env = &ready[0];
    assert_eq!(env["event_id"], ids::results_ready_event_id(B).to_string());
    assert_eq!(env["correlation_id"], event_id(11).to_string());
    assert_eq!(env["metadata"], serde_json::json!({}));
    let data = &env["data"];
    assert_eq!(data["total_essays"], 3);
    assert_eq!(data["completed_essays"], 2);
    assert_eq!(data["overall_status"], "completed_with_failures");
    assert_eq!(data["status"], "completed_with_failures");
    assert_eq!(data["user_id"], T);
    let sp = &data["phase_results"]["spellcheck"];
    assert_eq!(
        (sp["completed_count"].as_i64(), sp["failed_count"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(sp["status"], "completed_with_failures");
    // Real numbers: spellcheck outcome at minute 5, processing started at minute 2.
    assert_eq!(sp["processing_time_seconds"], 180.0);
    let cj = &data["phase_results"]["cj_assessment"];
    assert_eq!(
        (cj["completed_count"].as_i64(), cj["failed_count"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(cj["processing_time_seconds"], 19.0 * 60.0);
    // From the first phase signal (minute 2) to BOS's completion (minute 25).
    assert_eq!(data["processing_duration_seconds"], 23.0 * 60.0);
    let keys: Vec<_> = data["phase_results"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, vec!["spellcheck", "cj_assessment"]);

    let notes = h.published(PublishedTopic::TeacherNotificationRequested);
    let note = notes
        .iter()
        .find(|n| n["data"]["notification_type"] == "batch_results_ready")
        .unwrap();
    assert_eq!(note["data"]["priority"], "high");
    assert_eq!(note["data"]["category"], "processing_results");
    assert_eq!(note["data"]["teacher_id"], T);
    assert_eq!(
        note["data"]["payload"]["message"],
        "Batch batch-1 processing completed with 2/3 essays"
    );
    assert!(note["data"]["payload"]["phase_results"]["spellcheck"]
        .get("phase_name")
        .is_none());

    // Later phase outcomes and replays never re-emit.
    h.feed(&events[9].republished(event_id(40)));
    h.feed(&events[10].republished(event_id(42)));
    h.feed(&phase_outcome(
        event_id(41),
        B,
        "nlp",
        "completed_successfully",
        &["e1", "e2"],
        &[],
        at_minute(30.0),
    ));
    assert_eq!(h.published(PublishedTopic::BatchResultsReady).len(), 1);
    assert_eq!(
        h.published(PublishedTopic::TeacherNotificationRequested)
            .len(),
        2
    );
}

/// The reference loses this race: ELS's CJ phase outcome consumed before CJ's rich result.
#[test]
fn fix6_completion_is_checked_after_the_cj_result_too() {
    let h = Harness::new();
    let events = full_pipeline_events();
    for i in [0, 1, 2, 3, 4, 5, 6, 7, 9, 10] {
        h.feed(&events[i]);
    }
    assert!(
        h.published(PublishedTopic::BatchResultsReady).is_empty(),
        "waits for the CJ results to be stored"
    );
    h.feed(&events[8]);
    assert_eq!(h.published(PublishedTopic::BatchResultsReady).len(), 1);
}

#[test]
fn spellcheck_only_pipeline_completes_on_bos_pipeline_completed() {
    let h = Harness::new();
    h.feed(&registration(
        event_id(1),
        B,
        T,
        &["e1", "e2"],
        at_minute(0.0),
    ));
    h.feed(&spellcheck_result(
        event_id(5),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    h.feed(&spellcheck_result(
        event_id(6),
        B,
        "e2",
        "spellchecked_success",
        at_minute(2.0),
    ));
    h.feed(&phase_outcome(
        event_id(8),
        B,
        "spellcheck",
        "completed_successfully",
        &["e1", "e2"],
        &[],
        at_minute(4.0),
    ));
    assert!(
        h.published(PublishedTopic::BatchResultsReady).is_empty(),
        "CJ may still follow"
    );
    h.feed(&pipeline_completed(
        event_id(11),
        B,
        "completed_successfully",
        &["spellcheck"],
        2,
        0,
        at_minute(5.0),
    ));
    let ready = h.published(PublishedTopic::BatchResultsReady);
    assert_eq!(ready.len(), 1);
    let data = &ready[0]["data"];
    assert_eq!(data["overall_status"], "completed_successfully");
    assert_eq!(data["total_essays"], 2);
    let keys: Vec<_> = data["phase_results"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        vec!["spellcheck"],
        "phase summaries cover the phases that ran"
    );
    assert_eq!(data["processing_duration_seconds"], 180.0);
    assert_eq!(h.status(), Some(BatchStatus::CompletedSuccessfully));
}

#[test]
fn pipeline_completed_before_registration_completes_on_registration() {
    let h = Harness::new();
    h.feed(&pipeline_completed(
        event_id(11),
        B,
        "completed_successfully",
        &["spellcheck"],
        1,
        0,
        at_minute(5.0),
    ));
    h.feed(&spellcheck_result(
        event_id(5),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    h.feed(&phase_outcome(
        event_id(8),
        B,
        "spellcheck",
        "completed_successfully",
        &["e1"],
        &[],
        at_minute(4.0),
    ));
    assert!(h.outbox().is_empty());
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    let ready = h.published(PublishedTopic::BatchResultsReady);
    assert_eq!(ready.len(), 1);
    assert_eq!(
        ready[0]["data"]["phase_results"]["spellcheck"]["completed_count"],
        1
    );
    assert_eq!(h.agg().root.awaiting_facts_since, None);
}

#[test]
fn bos_completion_waits_for_the_phase_outcomes_and_results_it_implies() {
    let h = Harness::new();
    h.feed(&registration(
        event_id(1),
        B,
        T,
        &["e1", "e2"],
        at_minute(0.0),
    ));
    h.feed(&pipeline_completed(
        event_id(11),
        B,
        "completed_with_failures",
        &["spellcheck"],
        1,
        1,
        at_minute(5.0),
    ));
    // BOS overtook ELS: nothing is published, the batch waits for the spellcheck outcome.
    assert!(h.published(PublishedTopic::BatchResultsReady).is_empty());
    assert!(h.agg().root.awaiting_facts_since.is_some());
    assert_eq!(
        projection::missing_facts(&h.agg()).phases,
        vec![PhaseName::Spellcheck]
    );
    h.feed(&phase_outcome(
        event_id(8),
        B,
        "spellcheck",
        "completed_with_failures",
        &["e1"],
        &["e2"],
        at_minute(4.0),
    ));
    // The outcome names e1 as processed: its own result is still on its way. (e2 failed: a
    // failed essay needs no result of its own.)
    assert!(h.published(PublishedTopic::BatchResultsReady).is_empty());
    let missing = projection::missing_facts(&h.agg());
    assert_eq!(missing.essays.len(), 1);
    assert_eq!(missing.essays[0].essay_id, "e1");
    h.feed(&spellcheck_result(
        event_id(4),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    let ready = h.published(PublishedTopic::BatchResultsReady);
    assert_eq!(ready.len(), 1);
    let spellcheck = &ready[0]["data"]["phase_results"]["spellcheck"];
    assert_eq!(spellcheck["completed_count"], 1);
    assert_eq!(spellcheck["failed_count"], 1);
    assert_eq!(spellcheck["status"], "completed_with_failures");
    // The correlation id is BOS's, whichever record completed the facts.
    assert_eq!(ready[0]["correlation_id"], event_id(11).to_string());
    let agg = h.agg();
    assert_eq!(agg.root.awaiting_facts_since, None);
    assert_eq!(agg.root.results_ready_missing, None);
}

#[test]
fn current_phase_follows_the_first_unfinished_phase() {
    let h = Harness::new();
    let events = full_pipeline_events();
    for e in &events[..5] {
        h.feed(e);
    }
    assert_eq!(
        projection::current_phase(&h.agg()),
        Some(PhaseName::Spellcheck)
    );
    for e in &events[5..9] {
        h.feed(e);
    }
    assert_eq!(
        projection::current_phase(&h.agg()),
        None,
        "CJ results cover every essay still in the running"
    );
    h.feed(&events[9]);
    assert_eq!(
        projection::current_phase(&h.agg()),
        None,
        "terminal status has no current phase"
    );
}

#[test]
fn payload_conflict_and_decode_errors_are_permanent() {
    let h = Harness::new();
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    let other = registration(event_id(1), B, "other-teacher", &["e1"], at_minute(0.0));
    let err = h.try_feed(&other).unwrap_err();
    assert!(matches!(err, ProcessError::PayloadConflict { .. }));
    assert!(!err.is_retryable());
    assert_eq!(err.kind(), "payload_conflict");
    let bad = TestRecord {
        topic: "huleedu.els.batch.phase.outcome.v1",
        value: b"{not json".to_vec(),
    };
    let err = h.try_feed(&bad).unwrap_err();
    assert_eq!(err.kind(), "invalid_json");
    assert!(!err.is_retryable());
    assert_eq!(h.store.marker_count(), 1, "failed records leave no marker");
}

/// Deviation from the reference (docs/deviations.md, "Idempotency"): the reference keys a
/// record on its event type and a hash of `event_id` + `data`, so a re-sent envelope with the
/// same id and data but other metadata is a duplicate there. Here the marker holds the hash of
/// the whole record value: the same event id with other bytes — even only another
/// `event_timestamp` or another serialisation — is a payload conflict (dead-lettered, not
/// applied), and only byte-identical redeliveries are duplicates.
#[test]
fn same_event_id_with_other_envelope_bytes_is_a_conflict_not_a_duplicate() {
    let h = Harness::new();
    let original = registration(event_id(1), B, T, &["e1"], at_minute(0.0));
    h.feed(&original);
    assert!(matches!(h.feed(&original), RecordOutcome::Duplicate { .. }));

    let mut restamped = original.json();
    restamped["event_timestamp"] = at_minute(1.0).to_wire().into();
    assert_eq!(restamped["data"], original.json()["data"], "same data");
    let restamped = TestRecord {
        topic: "huleedu.batch.essays.registered.v1",
        value: to_python_json(&restamped).unwrap(),
    };
    let err = h.try_feed(&restamped).unwrap_err();
    assert_eq!(err.kind(), "payload_conflict");

    // The same JSON value serialised differently (compact instead of Python separators).
    let compact = TestRecord {
        topic: "huleedu.batch.essays.registered.v1",
        value: serde_json::to_vec(&original.json()).unwrap(),
    };
    assert_ne!(compact.value, original.value);
    assert_eq!(h.try_feed(&compact).unwrap_err().kind(), "payload_conflict");
    assert_eq!(h.store.marker_count(), 1, "only the original applied");
}

#[test]
fn a_record_without_event_id_is_deduplicated_by_content() {
    let h = Harness::new();
    let mut v = registration(event_id(1), B, T, &["e1"], at_minute(0.0)).json();
    v.as_object_mut().unwrap().remove("event_id");
    let record = TestRecord {
        topic: "huleedu.batch.essays.registered.v1",
        value: to_python_json(&v).unwrap(),
    };
    assert!(matches!(h.feed(&record), RecordOutcome::Applied { .. }));
    assert!(matches!(h.feed(&record), RecordOutcome::Duplicate { .. }));
}

/// The golden published fixtures, produced by our rules from the consumed fixtures.
#[test]
fn published_fixtures_are_reproduced_from_the_consumed_fixtures() {
    let h = Harness::new();
    let reg = common::fixture_bytes("huleedu.batch.essays.registered.v1.json");
    let cj = common::fixture_bytes("huleedu.assessment.result.published.v1.json");
    let now = Timestamp::parse("2025-11-27T10:21:00Z").unwrap();
    for (topic, value) in [
        ("huleedu.batch.essays.registered.v1", &reg),
        ("huleedu.assessment.result.published.v1", &cj),
    ] {
        block_on(process_record(
            &h.store,
            ConsumedRecord {
                topic,
                value,
                record_time: now,
            },
            now,
        ))
        .unwrap();
    }
    let outbox = h.outbox();
    assert_eq!(outbox.len(), 2);

    // Domain event: identical data; envelope identical but for our stable event id/timestamp.
    let expected = common::fixture_json("huleedu.ras.batch.assessment.completed.v1.json");
    let actual: Value = serde_json::from_str(&outbox[0].body).unwrap();
    common::assert_same_json_with_order(&actual["data"].to_string(), &expected["data"].to_string());
    let mut env = actual.clone();
    env["event_id"] = expected["event_id"].clone();
    env["event_timestamp"] = expected["event_timestamp"].clone();
    common::assert_same_json_with_order(&env.to_string(), &expected.to_string());
    assert_eq!(
        outbox[0].ordering_key,
        "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01"
    );

    // Notification: identical data but for its creation time (the fixture's projector ran a
    // second later); the envelope carries the originating correlation id (deviation).
    let expected = common::fixture_json(
        "huleedu.notification.teacher.requested.v1__batch_assessment_completed.json",
    );
    let mut actual: Value = serde_json::from_str(&outbox[1].body).unwrap();
    assert_eq!(actual["data"]["timestamp"], "2025-11-27T10:21:00Z");
    actual["data"]["timestamp"] = expected["data"]["timestamp"].clone();
    common::assert_same_json_with_order(&actual["data"].to_string(), &expected["data"].to_string());
    assert_eq!(
        actual["correlation_id"],
        "44444444-4444-4444-8444-444444444444"
    );
    assert_eq!(outbox[1].ordering_key, "teacher-7f3c9a");
}

/// A store that lets another writer commit between our read and our write, once.
struct RacingStore {
    inner: InMemoryStore,
    intruder: std::sync::Mutex<Option<TestRecord>>,
}

impl ras_domain::ports::AggregateStore for RacingStore {
    async fn load(
        &self,
        batch_id: &str,
    ) -> Result<ras_domain::model::BatchAggregate, ras_domain::ports::StoreError> {
        let agg = self.inner.load(batch_id).await;
        let intruder = self.intruder.lock().unwrap().take();
        if let Some(record) = intruder {
            let now = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
            process_record(
                &self.inner,
                ConsumedRecord {
                    topic: record.topic,
                    value: &record.value,
                    record_time: now,
                },
                now,
            )
            .await
            .unwrap();
        }
        agg
    }

    async fn commit(
        &self,
        marker: &ras_domain::ports::IdempotencyMarker,
        plan: &ras_domain::plan::Plan,
    ) -> Result<ras_domain::ports::CommitOutcome, ras_domain::ports::StoreError> {
        self.inner.commit(marker, plan).await
    }
}

/// SPEC §3.1: a plan computed from a stale read commits nothing (no marker, no state, no
/// outbox); the record is re-planned on the fresh state, so the concurrent write is not lost
/// and the completion it enables is seen.
#[test]
fn fix1_stale_plans_commit_nothing_and_are_replanned() {
    use ras_domain::ports::{AggregateStore, CommitOutcome, IdempotencyMarker};
    let events = full_pipeline_events();
    let store = RacingStore {
        inner: InMemoryStore::new(),
        intruder: std::sync::Mutex::new(None),
    };
    let now = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
    let feed = |r: &TestRecord| {
        block_on(process_record(
            &store,
            ConsumedRecord {
                topic: r.topic,
                value: &r.value,
                record_time: now,
            },
            now,
        ))
        .unwrap()
    };
    // Everything but ELS's CJ outcome (BOS's report included): that outcome completes the batch.
    for e in events[..9].iter().chain([&events[10]]) {
        feed(e);
    }
    // Direct check of the commit contract: a stale root version is refused as a whole.
    let stale = block_on(store.inner.load(B)).unwrap();
    feed(&slot_assigned(event_id(50), B, "e9", at_minute(1.5)));
    let plan = ras_domain::rules::apply(
        &stale,
        &decode_record(events[9].topic, &events[9].value)
            .unwrap()
            .payload,
        &ras_domain::rules::RecordContext {
            event_key: "event:stale".into(),
            occurred_at: at_minute(21.0),
            correlation_id: event_id(10),
            now,
        },
    )
    .unwrap();
    assert!(
        !plan.outbox.is_empty(),
        "the stale plan would have completed the batch"
    );
    let marker = IdempotencyMarker::new("event:stale".into(), "h".into(), events[9].topic, B, now);
    let markers_before = store.inner.marker_count();
    assert_eq!(
        block_on(store.inner.commit(&marker, &plan)).unwrap(),
        CommitOutcome::VersionConflict
    );
    assert_eq!(store.inner.marker_count(), markers_before);
    assert!(store
        .inner
        .outbox()
        .iter()
        .all(|m| m.topic != PublishedTopic::BatchResultsReady));

    // Through the service: another writer attaches essay e9 between our read and write.
    *store.intruder.lock().unwrap() = Some(slot_assigned(event_id(51), B, "e8", at_minute(1.6)));
    feed(&events[9]);
    let agg = store.inner.aggregate(B).unwrap();
    assert!(
        agg.essays.contains_key("e8"),
        "the concurrent write survived"
    );
    // The re-planned commit completed the batch once. e8 and e9 (slots only, named by no ELS
    // outcome) are stored but are not part of the published figures, whichever order they
    // arrive in.
    let ready: Vec<_> = store
        .inner
        .outbox()
        .into_iter()
        .filter(|m| m.topic == PublishedTopic::BatchResultsReady)
        .collect();
    assert_eq!(ready.len(), 1);
    let body: Value = serde_json::from_str(&ready[0].body).unwrap();
    assert_eq!(body["data"]["total_essays"], 3);
}

/// SPEC §3.2: ids and bytes of published events are fixed by what they are, so processing the
/// same records again (another invocation, a replay into a fresh store) gives identical messages.
#[test]
fn fix2_published_events_have_stable_identity_and_bytes() {
    let events = full_pipeline_events();
    let a = Harness::new();
    let b = Harness::new();
    for e in &events {
        a.feed(e);
    }
    for e in events.iter().rev() {
        b.feed(e);
    }
    let ids = |h: &Harness| {
        h.outbox()
            .iter()
            .map(|m| m.event_id)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    for m in a.outbox() {
        let v: Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(v["event_id"], m.event_id.to_string());
        assert_eq!(v["event_timestamp"], m.created_at.to_wire());
        assert_eq!(v["event_type"], m.topic.name());
        assert_eq!(v["source_service"], "result_aggregator_service");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["data_schema_uri"], Value::Null);
    }
    let again = Harness::new();
    for e in &events {
        again.feed(e);
    }
    assert_eq!(a.outbox(), again.outbox(), "same records, same bytes");
}

/// The facts timer (issue 10): a batch BOS reported complete whose facts never all arrive is
/// emitted once after the grace period, with what was missing recorded; late facts are stored
/// but nothing is emitted again.
#[test]
fn facts_timer_emits_once_after_the_grace_period_and_flags_what_was_missing() {
    use ras_domain::model::{MissingFacts, MissingResult};
    use ras_domain::service::{emit_overdue, OverdueOutcome};
    const GRACE: u64 = 900;
    let h = Harness::new();
    h.feed(&registration(
        event_id(1),
        B,
        T,
        &["e1", "e2"],
        at_minute(0.0),
    ));
    h.feed(&spellcheck_result(
        event_id(4),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    h.feed(&phase_outcome(
        event_id(8),
        B,
        "spellcheck",
        "completed_successfully",
        &["e1", "e2"],
        &[],
        at_minute(4.0),
    ));
    h.feed(&pipeline_completed(
        event_id(11),
        B,
        "completed_successfully",
        &["spellcheck", "cj_assessment"],
        2,
        0,
        at_minute(30.0),
    ));
    let since = h.agg().root.awaiting_facts_since.expect("awaiting facts");
    assert_eq!(since, h.now);
    let at = |seconds: i64| {
        Timestamp::from_unix_micros(since.unix_micros() + seconds * 1_000_000).unwrap()
    };

    // Before the grace period: nothing.
    let early = block_on(emit_overdue(&h.store, B, at(GRACE as i64 - 1), GRACE)).unwrap();
    assert!(matches!(early, OverdueOutcome::NotDue { .. }));
    assert!(h.published(PublishedTopic::BatchResultsReady).is_empty());

    // After it: emitted with what is known; the missing facts are on the stored batch.
    let due = block_on(emit_overdue(&h.store, B, at(GRACE as i64), GRACE)).unwrap();
    let expected_missing = MissingFacts {
        pipeline_completion: false,
        phases: vec![PhaseName::CjAssessment],
        essays: vec![MissingResult {
            phase: PhaseName::Spellcheck,
            essay_id: "e2".into(),
        }],
    };
    assert_eq!(
        due,
        OverdueOutcome::Emitted {
            batch_id: B.into(),
            missing: expected_missing.clone(),
            published: 2,
        }
    );
    let ready = h.published(PublishedTopic::BatchResultsReady);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["data"]["overall_status"], "completed_successfully");
    // ELS's outcome counts e2 as processed even though its own result never came.
    assert_eq!(
        ready[0]["data"]["phase_results"]["spellcheck"]["completed_count"],
        2
    );
    assert_eq!(
        h.published(PublishedTopic::TeacherNotificationRequested)
            .len(),
        1
    );
    let agg = h.agg();
    assert_eq!(agg.root.results_ready_missing, Some(expected_missing));
    assert_eq!(agg.root.awaiting_facts_since, None);

    // A second timer run and the late facts: stored and served, never emitted again.
    let again = block_on(emit_overdue(&h.store, B, at(GRACE as i64 + 60), GRACE)).unwrap();
    assert!(matches!(again, OverdueOutcome::NotDue { .. }));
    h.feed(&spellcheck_result(
        event_id(5),
        B,
        "e2",
        "spellchecked_success",
        at_minute(2.5),
    ));
    h.feed(&phase_outcome(
        event_id(9),
        B,
        "cj_assessment",
        "completed_successfully",
        &["e1", "e2"],
        &[],
        at_minute(25.0),
    ));
    assert_eq!(h.published(PublishedTopic::BatchResultsReady).len(), 1);
    let agg = h.agg();
    assert!(agg.essays["e2"].spellcheck.is_some());
    assert!(agg.phases.contains_key(&PhaseName::CjAssessment));
    assert_eq!(agg.root.awaiting_facts_since, None);
}

#[test]
fn facts_timer_leaves_batches_alone_that_are_not_waiting() {
    use ras_domain::service::{emit_overdue, OverdueOutcome};
    let h = Harness::new();
    // Registered, processing, not reported complete: no wait, no timed emission.
    h.feed(&registration(event_id(1), B, T, &["e1"], at_minute(0.0)));
    h.feed(&spellcheck_result(
        event_id(4),
        B,
        "e1",
        "spellchecked_success",
        at_minute(2.0),
    ));
    assert_eq!(h.agg().root.awaiting_facts_since, None);
    let later = Timestamp::parse("2025-11-28T11:00:00Z").unwrap();
    let outcome = block_on(emit_overdue(&h.store, B, later, 900)).unwrap();
    assert!(matches!(outcome, OverdueOutcome::NotDue { .. }));
    assert!(h.outbox().is_empty());
    // BOS completion without registration: no owner, so no wait either.
    const OTHER: &str = "batch-unregistered";
    h.feed(&pipeline_completed(
        event_id(21),
        OTHER,
        "completed_successfully",
        &["spellcheck"],
        1,
        0,
        at_minute(5.0),
    ));
    assert_eq!(
        h.store.aggregate(OTHER).unwrap().root.awaiting_facts_since,
        None
    );
}
