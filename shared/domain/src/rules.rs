//! `apply(aggregate, event) -> Plan`: how each consumed event changes a batch and what it
//! emits (ras-behaviour §3 with the SPEC §3 fixes).
//!
//! Every fact is merged by a commutative rule, so the result does not depend on arrival order
//! (SPEC §3.5); published events have ids fixed by what they are and are recorded on the
//! aggregate when emitted, so each is emitted exactly once (SPEC §3.6).

use crate::contracts::{
    AssessmentResultV1, BatchEssaysRegistered, BatchPipelineCompletedV1, BatchStatus,
    ElsBatchPhaseOutcomeV1, EssaySlotAssignedV1, SpellcheckResultV1,
};
use crate::contracts::{
    BatchAssessmentCompletedPayload, BatchAssessmentCompletedV1, BatchResultsReadyV1, ErrorDetail,
    InboundEvent, InboundPayload, NotificationPayload, NotificationPriority, OutboundEnvelope,
    PhaseName, PublishedTopic, RankingSummaryEntry, SystemProcessingMetadata,
    TeacherNotificationRequestedV1, Timestamp, WebSocketEventCategory, SOURCE_SERVICE,
};
use crate::facts::Draft;
use crate::ids;
use crate::model::*;
use crate::plan::{OutboxMessage, Plan};
use crate::projection;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// What the rules need to know about the record besides its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordContext {
    /// Idempotency key ([`ids::event_key`]); breaks ties between facts of equal event time.
    pub event_key: String,
    /// Event time: the payload's own timestamp, else the envelope's, else the Kafka record's.
    pub occurred_at: Timestamp,
    /// The envelope's correlation id, or a stable stand-in derived from the event key.
    pub correlation_id: Uuid,
    /// Wall clock at processing: the `event_timestamp` of anything published now.
    pub now: Timestamp,
}

impl RecordContext {
    pub fn for_event(
        event: &InboundEvent,
        event_key: String,
        record_time: Timestamp,
        now: Timestamp,
    ) -> Self {
        let occurred_at = event
            .payload
            .payload_time()
            .or(event.event_timestamp)
            .unwrap_or(record_time);
        let correlation_id = event
            .correlation_id
            .unwrap_or_else(|| ids::fallback_correlation_id(&event_key));
        RecordContext {
            event_key,
            occurred_at,
            correlation_id,
            now,
        }
    }

    fn provenance(&self) -> Provenance {
        Provenance {
            occurred_at: self.occurred_at,
            event_key: self.event_key.clone(),
        }
    }
}

/// Errors that can only come from a bug or corrupted state, never from input data.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("event for batch `{event}` applied to aggregate of batch `{aggregate}`")]
    WrongAggregate { event: String, aggregate: String },
    #[error("could not serialise a published event: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// Apply one event to the batch it names. Returns the plan; the aggregate is not modified.
pub fn apply(
    agg: &BatchAggregate,
    payload: &InboundPayload,
    ctx: &RecordContext,
) -> Result<Plan, RuleError> {
    apply_in(agg, payload, ctx, Scope::Batch)
}

/// Apply a per-essay event (slot assignment, spellcheck result) from its batch's root and its
/// own essay alone: `view` holds the stored root and the event's essay if stored, nothing
/// else of the batch (its other essays, phase outcomes, CJ jobs and the registration's essay
/// ids may be left out). The plan is the one [`apply`] makes from the whole batch.
///
/// `None` when the root alone cannot decide: a batch-level event, or a root without
/// [`EssayCounters`] (the batch has a phase outcome or a CJ job: an essay's status then
/// depends on them), or with BOS's report, a critical failure or the results-ready event
/// recorded (the record may complete the batch or change what completion depends on). Then
/// the caller applies it to the whole batch. Otherwise nothing this record changes depends on
/// another essay: the status is the root's (no completion is possible without a CJ job or
/// BOS's report, [`projection::is_complete`]), no event can become due, and the counts are the
/// root's counters with this essay's contribution replaced.
pub fn apply_to_essay(
    view: &BatchAggregate,
    payload: &InboundPayload,
    ctx: &RecordContext,
) -> Result<Option<Plan>, RuleError> {
    let Some(essay_id) = payload.essay_id() else {
        return Ok(None);
    };
    let root = &view.root;
    if root.essay_counters.is_none()
        || root.pipeline_completion.is_some()
        || root.critical_failure.is_some()
        || root.results_ready.is_some()
        || !view.phases.is_empty()
        || !view.cj_jobs.is_empty()
    {
        return Ok(None);
    }
    apply_in(view, payload, ctx, Scope::Essay(essay_id)).map(Some)
}

/// What the aggregate given to the rules holds.
#[derive(Clone, Copy)]
enum Scope<'e> {
    /// The whole batch.
    Batch,
    /// The root and this essay (if stored), see [`apply_to_essay`].
    Essay(&'e str),
}

fn apply_in(
    agg: &BatchAggregate,
    payload: &InboundPayload,
    ctx: &RecordContext,
    scope: Scope<'_>,
) -> Result<Plan, RuleError> {
    if payload.batch_id() != agg.batch_id() {
        return Err(RuleError::WrongAggregate {
            event: payload.batch_id().to_string(),
            aggregate: agg.batch_id().to_string(),
        });
    }
    // Copy on write: only the root and the records this event touches are copied.
    let mut next = Draft::new(agg);
    let facts_changed = match payload {
        InboundPayload::BatchRegistered(e) => record_registration(&mut next, e, ctx),
        InboundPayload::EssaySlotAssigned(e) => record_slot(&mut next, e, ctx),
        InboundPayload::PhaseOutcome(e) => record_phase_outcome(&mut next, e, ctx),
        InboundPayload::SpellcheckResult(e) => record_spellcheck(&mut next, e, ctx),
        InboundPayload::AssessmentResult(e) => record_assessment(&mut next, e, ctx),
        InboundPayload::PipelineCompleted(e) => record_pipeline_completed(&mut next, e, ctx),
    };
    // Times are merged whether or not the facts changed (min/max commute), so they too are
    // independent of arrival order.
    let is_phase_signal = matches!(
        payload,
        InboundPayload::PhaseOutcome(_)
            | InboundPayload::SpellcheckResult(_)
            | InboundPayload::AssessmentResult(_)
    );
    if is_phase_signal {
        let start = &mut next.root.processing_started_at;
        *start = Some(start.map_or(ctx.occurred_at, |s| s.min(ctx.occurred_at)));
    }
    next.root.updated_at = next.root.updated_at.max(Some(ctx.occurred_at));
    if !facts_changed && next.root == agg.root && next.essays.is_unchanged() {
        return Ok(Plan::default());
    }
    let outbox = emit_due_events(&mut next, ctx)?;
    match scope {
        Scope::Batch => {
            next.root.essay_counters = projection::essay_counters(&next);
            next.root.derived = projection::derive_batch(&next);
        }
        Scope::Essay(essay_id) => {
            // `apply_to_essay` checked that the root has counters.
            let counters = agg
                .root
                .essay_counters
                .unwrap_or_default()
                .replace(agg.essays.get(essay_id), next.essays.get(essay_id));
            next.root.essay_counters = Some(counters);
            next.root.derived = projection::derive_with_counters(&next, counters);
        }
    }
    Ok(next.into_plan(outbox))
}

/// Replace `slot` with `candidate` when `better(candidate, current)`; true when it changed.
fn merge<T: PartialEq>(
    slot: &mut Option<T>,
    candidate: T,
    better: impl Fn(&T, &T) -> bool,
) -> bool {
    let replace = match slot.as_ref() {
        None => true,
        Some(current) => current != &candidate && better(&candidate, current),
    };
    if replace {
        *slot = Some(candidate);
    }
    replace
}

fn essay_entry<'d>(
    agg: &'d mut Draft<'_>,
    essay_id: &str,
    ctx: &RecordContext,
) -> &'d mut EssayRecord {
    let batch_id = agg.root.batch_id.clone();
    agg.essays.get_or_insert_with(essay_id, || EssayRecord {
        essay_id: essay_id.to_string(),
        batch_id,
        slot: None,
        spellcheck: None,
        updated_at: ctx.occurred_at,
        version: 0,
    })
}

/// Earliest registration wins (the reference keeps the first insert and drops replays).
fn record_registration(
    agg: &mut Draft<'_>,
    e: &BatchEssaysRegistered,
    ctx: &RecordContext,
) -> bool {
    let candidate = Registration {
        user_id: e.user_id.clone(),
        essay_count: e.expected_essay_count,
        essay_ids: e.essay_ids.clone(),
        course_code: e.course_code,
        student_prompt_ref: e
            .student_prompt_ref
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok()),
        org_id: e.org_id.clone(),
        class_id: e.class_id.clone(),
        correlation_id: ctx.correlation_id,
        provenance: ctx.provenance(),
    };
    merge(&mut agg.root.registration, candidate, |c, cur| {
        c.provenance < cur.provenance
    })
}

/// Slot assignment attaches the essay to the batch the event names (SPEC §3.4); latest wins.
fn record_slot(agg: &mut Draft<'_>, e: &EssaySlotAssignedV1, ctx: &RecordContext) -> bool {
    let candidate = SlotAssignment {
        file_upload_id: e.file_upload_id.clone(),
        text_storage_id: e.text_storage_id.clone(),
        original_file_name: e.original_file_name.clone(),
        provenance: ctx.provenance(),
    };
    let is_new = !agg.essays.contains_key(&e.essay_id);
    let essay = essay_entry(agg, &e.essay_id, ctx);
    essay.updated_at = essay.updated_at.max(ctx.occurred_at);
    merge(&mut essay.slot, candidate, |c, cur| {
        c.provenance > cur.provenance
    }) || is_new
}

fn record_phase_outcome(
    agg: &mut Draft<'_>,
    e: &ElsBatchPhaseOutcomeV1,
    ctx: &RecordContext,
) -> bool {
    let candidate = PhaseOutcomeRecord {
        phase: e.phase_name,
        phase_status: e.phase_status,
        processed_essay_ids: e
            .processed_essays
            .iter()
            .map(|r| r.essay_id.clone())
            .collect(),
        failed_essay_ids: e.failed_essay_ids.clone(),
        correlation_id: ctx.correlation_id,
        provenance: ctx.provenance(),
    };
    let mut slot = agg.phases.get(&e.phase_name).cloned();
    let mut changed = merge(&mut slot, candidate, |c, cur| c.provenance > cur.provenance);
    if let (true, Some(outcome)) = (changed, slot) {
        agg.phases.insert(e.phase_name, outcome);
    }
    if e.phase_status == BatchStatus::FailedCritically {
        let failure = CriticalFailure {
            phase: e.phase_name,
            error_detail: critical_failure_detail(&agg.root.batch_id, e.phase_name, ctx),
            provenance: ctx.provenance(),
        };
        changed |= merge(&mut agg.root.critical_failure, failure, |c, cur| {
            c.provenance < cur.provenance
        });
    }
    changed
}

fn critical_failure_detail(batch_id: &str, phase: PhaseName, ctx: &RecordContext) -> ErrorDetail {
    let mut details = Map::new();
    details.insert("batch_id".into(), json!(batch_id));
    details.insert("phase".into(), json!(phase.as_str()));
    details.insert("status".into(), json!("failed_critically"));
    ErrorDetail {
        error_code: "PROCESSING_ERROR".into(),
        message: format!("Phase {phase} failed critically"),
        correlation_id: ctx.correlation_id,
        timestamp: ctx.occurred_at,
        service: SOURCE_SERVICE.into(),
        operation: "process_batch_phase_outcome".into(),
        details,
        stack_trace: None,
        trace_id: None,
        span_id: None,
    }
}

/// A terminal result beats an in-progress one; among equals the latest wins.
fn record_spellcheck(agg: &mut Draft<'_>, e: &SpellcheckResultV1, ctx: &RecordContext) -> bool {
    let essay_id = e.entity_id.clone().unwrap_or_default();
    let stage = e.status.spellcheck_stage();
    let error_detail = (stage == crate::contracts::ProcessingStage::Failed
        && !e.system_metadata.error_info.is_empty())
    .then(|| spellcheck_error_detail(&agg.root.batch_id, &essay_id, e, ctx));
    let candidate = SpellcheckOutcome {
        stage,
        status: e.status.as_str().to_string(),
        corrections_made: e.corrections_made,
        corrected_text_storage_id: e
            .corrected_text_storage_id
            .clone()
            .filter(|s| !s.is_empty()),
        metrics: e.correction_metrics.clone(),
        processing_duration_ms: e.processing_duration_ms,
        error_detail,
        correlation_id: ctx.correlation_id,
        provenance: ctx.provenance(),
    };
    let is_new = !agg.essays.contains_key(&essay_id);
    let essay = essay_entry(agg, &essay_id, ctx);
    essay.updated_at = essay.updated_at.max(ctx.occurred_at);
    let rank = |s: &SpellcheckOutcome| (s.stage.is_terminal(), s.provenance.clone());
    merge(&mut essay.spellcheck, candidate, |c, cur| {
        rank(c) > rank(cur)
    }) || is_new
}

/// SPEC §3.11: the error detail is structured JSON — `message` is the JSON text of the
/// producer's `error_info` and the object itself is kept under `details.error_info`.
fn spellcheck_error_detail(
    batch_id: &str,
    essay_id: &str,
    e: &SpellcheckResultV1,
    ctx: &RecordContext,
) -> ErrorDetail {
    let error_info = Value::Object(e.system_metadata.error_info.clone());
    let mut details = Map::new();
    details.insert("essay_id".into(), json!(essay_id));
    details.insert("batch_id".into(), json!(batch_id));
    details.insert("status".into(), json!(e.status.as_str()));
    details.insert("error_info".into(), error_info.clone());
    ErrorDetail {
        error_code: "SPELLCHECK_SERVICE_ERROR".into(),
        message: error_info.to_string(),
        correlation_id: ctx.correlation_id,
        timestamp: ctx.occurred_at,
        service: SOURCE_SERVICE.into(),
        operation: "process_spellcheck_result".into(),
        details,
        stack_trace: None,
        trace_id: None,
        span_id: None,
    }
}

/// The whole CJ result is kept (SPEC §3.9); a re-published job with other content: latest wins.
fn record_assessment(agg: &mut Draft<'_>, e: &AssessmentResultV1, ctx: &RecordContext) -> bool {
    let existing = agg.cj_jobs.get(&e.cj_assessment_job_id).cloned();
    let emitted = existing
        .as_ref()
        .and_then(|j| j.assessment_completed.clone());
    let candidate = CjJobRecord {
        job_id: e.cj_assessment_job_id.clone(),
        batch_id: agg.root.batch_id.clone(),
        result: e.clone(),
        correlation_id: ctx.correlation_id,
        provenance: ctx.provenance(),
        assessment_completed: emitted,
    };
    let mut slot = existing;
    let changed = merge(&mut slot, candidate, |c, cur| c.provenance > cur.provenance);
    if let (true, Some(job)) = (changed, slot) {
        agg.cj_jobs.insert(job.job_id.clone(), job);
    }
    changed
}

/// BOS is authoritative about the pipeline; its latest report wins.
fn record_pipeline_completed(
    agg: &mut Draft<'_>,
    e: &BatchPipelineCompletedV1,
    ctx: &RecordContext,
) -> bool {
    let candidate = PipelineCompletion {
        final_status: e.final_status,
        completed_phases: e.completed_phases.clone(),
        successful_essay_count: e.successful_essay_count,
        failed_essay_count: e.failed_essay_count,
        processing_duration_seconds: e.processing_duration_seconds,
        correlation_id: ctx.correlation_id,
        provenance: ctx.provenance(),
    };
    merge(&mut agg.root.pipeline_completion, candidate, |c, cur| {
        c.provenance > cur.provenance
    })
}

/// Events that became due with this change, each recorded on the aggregate so it is never
/// emitted again. Nothing is emitted before registration (the owner is unknown until then).
fn emit_due_events(
    agg: &mut Draft<'_>,
    ctx: &RecordContext,
) -> Result<Vec<OutboxMessage>, RuleError> {
    let Some(registration) = agg.root.registration.clone() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let batch_id = agg.root.batch_id.clone();
    let job_ids: Vec<String> = agg
        .cj_jobs
        .iter()
        .filter(|(_, j)| j.assessment_completed.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for job_id in job_ids {
        let Some(job) = agg.cj_jobs.get(&job_id) else {
            continue;
        };
        let event_id = ids::assessment_completed_event_id(&batch_id, &job_id);
        let event = assessment_completed_event(&batch_id, &registration.user_id, job, ctx.now);
        let payload =
            NotificationPayload::BatchAssessmentCompleted(assessment_completed_payload(&event));
        let correlation = job.correlation_id;
        push_with_notification(
            &mut out,
            PublishedTopic::BatchAssessmentCompleted,
            event_id,
            &batch_id,
            &registration.user_id,
            correlation,
            &event,
            payload,
            NotificationPriority::Standard,
            "batch_assessment_completed",
            ctx.now,
        )?;
        if let Some(job) = agg.cj_jobs.get_mut(&job_id) {
            job.assessment_completed = Some(Emission {
                event_id,
                emitted_at: ctx.now,
            });
        }
    }
    if agg.root.results_ready.is_none() {
        if projection::results_ready_due(agg) {
            emit_results_ready(agg, &registration, ctx.now, &mut out)?;
        } else if projection::is_complete(agg) {
            // Reported complete (by BOS, or by the every-phase rule while BOS's report is still
            // on its way), but facts the event's figures depend on are missing: wait for them,
            // at most the grace period (the facts timer, `emit_overdue_results`).
            agg.root.awaiting_facts_since.get_or_insert(ctx.now);
        } else {
            agg.root.awaiting_facts_since = None;
        }
    }
    Ok(out)
}

/// Emit the results-ready event (and its notification) from the facts as they are, and record
/// it on the root so it is never emitted again.
fn emit_results_ready(
    agg: &mut Draft<'_>,
    registration: &Registration,
    now: Timestamp,
    out: &mut Vec<OutboxMessage>,
) -> Result<(), RuleError> {
    let batch_id = agg.root.batch_id.clone();
    let event_id = ids::results_ready_event_id(&batch_id);
    let figures = projection::results_ready_figures(agg);
    let correlation_id =
        projection::results_ready_correlation(agg).unwrap_or(registration.correlation_id);
    let event = results_ready_event(&batch_id, &registration.user_id, &figures, now);
    let payload = NotificationPayload::BatchResultsReady(projection::results_ready_payload(
        &batch_id, &figures,
    ));
    push_with_notification(
        out,
        PublishedTopic::BatchResultsReady,
        event_id,
        &batch_id,
        &registration.user_id,
        correlation_id,
        &event,
        payload,
        NotificationPriority::High,
        "batch_results_ready",
        now,
    )?;
    agg.root.results_ready = Some(Emission {
        event_id,
        emitted_at: now,
    });
    agg.root.awaiting_facts_since = None;
    Ok(())
}

/// The facts timer: a batch reported complete whose facts have not all arrived within `grace`
/// of it being seen complete gets its results-ready event now, with what is known; what was
/// missing is recorded on the root (`results_ready_missing`). Nothing happens when the batch
/// is not awaiting facts (any more), its wait is younger than `grace`, or the event is out.
/// Facts arriving later are stored and served as usual; the event is not emitted again.
pub fn emit_overdue_results(
    agg: &BatchAggregate,
    now: Timestamp,
    grace_seconds: u64,
) -> Result<Plan, RuleError> {
    let (Some(since), None, Some(registration)) = (
        agg.root.awaiting_facts_since,
        &agg.root.results_ready,
        &agg.root.registration,
    ) else {
        return Ok(Plan::default());
    };
    if now.seconds_since(&since) < grace_seconds as f64 || !projection::is_complete(agg) {
        return Ok(Plan::default());
    }
    let mut next = Draft::new(agg);
    let missing = projection::missing_facts(&next);
    let mut out = Vec::new();
    emit_results_ready(&mut next, registration, now, &mut out)?;
    next.root.results_ready_missing = Some(missing);
    next.root.essay_counters = projection::essay_counters(&next);
    next.root.derived = projection::derive_batch(&next);
    Ok(next.into_plan(out))
}

/// The domain event, then — as the reference's projector does right after it — the teacher
/// notification. Notification envelopes carry the originating correlation id (the reference
/// mints a random one, §11.2 item 13).
#[allow(clippy::too_many_arguments)]
fn push_with_notification<T: Serialize>(
    out: &mut Vec<OutboxMessage>,
    topic: PublishedTopic,
    event_id: Uuid,
    batch_id: &str,
    teacher_id: &str,
    correlation_id: Uuid,
    data: &T,
    payload: NotificationPayload,
    priority: NotificationPriority,
    notification_type: &str,
    now: Timestamp,
) -> Result<(), RuleError> {
    let envelope = OutboundEnvelope::new(
        topic.name(),
        event_id,
        now,
        correlation_id,
        data,
        Some(Map::new()),
    );
    out.push(outbox_message(out.len(), topic, batch_id, &envelope)?);
    let notification = TeacherNotificationRequestedV1 {
        teacher_id: teacher_id.to_string(),
        notification_type: notification_type.to_string(),
        category: WebSocketEventCategory::ProcessingResults,
        priority,
        payload,
        action_required: false,
        deadline_timestamp: None,
        correlation_id: correlation_id.to_string(),
        batch_id: Some(batch_id.to_string()),
        class_id: None,
        timestamp: now,
    };
    let topic = PublishedTopic::TeacherNotificationRequested;
    let envelope = OutboundEnvelope::new(
        topic.name(),
        ids::notification_event_id(event_id),
        now,
        correlation_id,
        &notification,
        None,
    );
    out.push(outbox_message(out.len(), topic, teacher_id, &envelope)?);
    Ok(())
}

fn outbox_message<T: Serialize>(
    sequence: usize,
    topic: PublishedTopic,
    ordering_key: &str,
    envelope: &OutboundEnvelope<T>,
) -> Result<OutboxMessage, RuleError> {
    let body = crate::contracts::to_python_json(envelope)?;
    Ok(OutboxMessage {
        event_id: envelope.event_id,
        topic,
        ordering_key: ordering_key.to_string(),
        correlation_id: envelope.correlation_id,
        created_at: envelope.event_timestamp,
        sequence: sequence as u32,
        // The Python-style serialiser escapes every non-ASCII character, so this is ASCII.
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `BatchResultsReadyV1` (§5.1).
pub fn results_ready_event(
    batch_id: &str,
    user_id: &str,
    figures: &projection::ResultsReadyFigures,
    now: Timestamp,
) -> BatchResultsReadyV1 {
    BatchResultsReadyV1 {
        event_name: "batch.results.ready".into(),
        entity_id: None,
        entity_type: None,
        parent_id: None,
        timestamp: now,
        status: figures.overall_status,
        system_metadata: SystemProcessingMetadata::for_batch_event(batch_id, now, "results_ready"),
        batch_id: batch_id.to_string(),
        user_id: user_id.to_string(),
        total_essays: figures.total_essays,
        completed_essays: figures.completed_essays,
        phase_results: figures.phase_results.clone(),
        overall_status: figures.overall_status,
        processing_duration_seconds: figures.processing_duration_seconds,
    }
}

/// `BatchAssessmentCompletedV1` (§5.2): student essays in input order, anchors left out.
pub fn assessment_completed_event(
    batch_id: &str,
    user_id: &str,
    job: &CjJobRecord,
    now: Timestamp,
) -> BatchAssessmentCompletedV1 {
    BatchAssessmentCompletedV1 {
        event_name: "batch.assessment.completed".into(),
        entity_id: None,
        entity_type: None,
        parent_id: None,
        timestamp: now,
        status: BatchStatus::CompletedSuccessfully,
        system_metadata: SystemProcessingMetadata::for_batch_event(
            batch_id,
            now,
            "assessment_completed",
        ),
        batch_id: batch_id.to_string(),
        user_id: user_id.to_string(),
        assessment_job_id: job.job_id.clone(),
        rankings_summary: job
            .result
            .essay_results
            .iter()
            .filter(|r| !r.is_anchor)
            .map(|r| RankingSummaryEntry {
                essay_id: r.essay_id.clone(),
                rank: r.rank,
                score: r.bt_score,
                letter_grade: r.letter_grade.clone(),
                confidence_score: r.confidence_score,
                confidence_label: r.confidence_label,
            })
            .collect(),
    }
}

/// `batch_assessment_completed` notification payload (§5.3).
pub fn assessment_completed_payload(
    event: &BatchAssessmentCompletedV1,
) -> BatchAssessmentCompletedPayload {
    let count = event.rankings_summary.len() as i64;
    BatchAssessmentCompletedPayload {
        batch_id: event.batch_id.clone(),
        assessment_job_id: event.assessment_job_id.clone(),
        rankings_available: count > 0,
        rankings_count: count,
        message: format!(
            "Comparative judgment assessment completed for batch {}",
            event.batch_id
        ),
    }
}
