//! Views derived from the aggregate's facts: per-essay phase status, the phases that ran,
//! phase summaries, completion (SPEC §3.6), batch status (SPEC §3.8), counts and timings
//! (SPEC §3.7), and the payloads of the events we publish (ras-behaviour §5).

use crate::contracts::{
    BatchResultsReadyPayload, BatchStatus, EssayResultV1, NotificationPhaseResult, PhaseName,
    PhaseResultSummary, PhaseResults, ProcessingStage, Timestamp,
};
use crate::facts::BatchFacts;
use crate::model::{CjJobRecord, DerivedBatch, EssayCounters, MissingFacts, MissingResult};
use std::cell::OnceCell;
use std::collections::BTreeSet;

/// Phases that have per-essay results of their own (and therefore a result we wait for).
const RESULT_PHASES: [PhaseName; 2] = [PhaseName::Spellcheck, PhaseName::CjAssessment];

/// What most views start from — the attached essays, the phases that ran and whether the
/// essays are complete — computed once per derivation instead of once per view.
struct Shape<'a> {
    essays: BTreeSet<&'a str>,
    phases: BTreeSet<PhaseName>,
    complete: OnceCell<bool>,
}

impl<'a> Shape<'a> {
    fn of<F: BatchFacts>(agg: &'a F) -> Self {
        Shape {
            essays: attached_essays(agg),
            phases: phases_ran(agg),
            complete: OnceCell::new(),
        }
    }

    /// [`essays_complete`], computed at most once.
    fn essays_complete(&self, agg: &impl BatchFacts) -> bool {
        *self
            .complete
            .get_or_init(|| essays_complete_in(agg, &self.essays, &self.phases))
    }
}

/// The latest CJ result of one essay, with the job it came from.
#[derive(Clone, Copy, Debug)]
pub struct EssayCjResult<'a> {
    pub job: &'a CjJobRecord,
    pub result: &'a EssayResultV1,
}

/// Essays attached to the batch: named by a slot assignment, a spellcheck result, a phase
/// outcome or (non-anchor) in a CJ result for this batch. Sorted by id.
pub fn attached_essays(agg: &impl BatchFacts) -> BTreeSet<&str> {
    let mut ids: BTreeSet<&str> = agg.essays().map(|(id, _)| id).collect();
    for (_, outcome) in agg.phases() {
        ids.extend(outcome.processed_essay_ids.iter().map(String::as_str));
        ids.extend(outcome.failed_essay_ids.iter().map(String::as_str));
    }
    for (_, job) in agg.cj_jobs() {
        ids.extend(
            job.result
                .essay_results
                .iter()
                .filter(|r| !r.is_anchor)
                .map(|r| r.essay_id.as_str()),
        );
    }
    ids
}

/// The student result of `essay_id` in the most recent CJ job (by assessed_at, then job id).
pub fn cj_result_of<'a>(agg: &'a impl BatchFacts, essay_id: &str) -> Option<EssayCjResult<'a>> {
    agg.cj_jobs()
        .filter_map(|(_, job)| {
            job.result
                .essay_results
                .iter()
                .find(|r| !r.is_anchor && r.essay_id == essay_id)
                .map(|result| EssayCjResult { job, result })
        })
        .max_by(|a, b| {
            (a.job.assessed_at(), &a.job.job_id).cmp(&(b.job.assessed_at(), &b.job.job_id))
        })
}

/// An essay's status in one phase, merging its own result with ELS's phase outcome.
pub fn essay_phase_stage(
    agg: &impl BatchFacts,
    essay_id: &str,
    phase: PhaseName,
) -> Option<ProcessingStage> {
    let outcome_stage = agg.phase(phase).and_then(|o| o.stage_of(essay_id));
    match phase {
        PhaseName::Spellcheck => {
            let own = agg
                .essay(essay_id)
                .and_then(|e| e.spellcheck.as_ref())
                .map(|s| s.stage);
            match own {
                Some(stage) if stage.is_terminal() => Some(stage),
                _ => outcome_stage.or(own),
            }
        }
        PhaseName::CjAssessment => {
            if cj_result_of(agg, essay_id).is_some() {
                Some(ProcessingStage::Completed)
            } else {
                outcome_stage
            }
        }
        _ => outcome_stage,
    }
}

/// Phases that ran for the batch: reported by ELS, evidenced by results, or listed by BOS.
pub fn phases_ran(agg: &impl BatchFacts) -> BTreeSet<PhaseName> {
    let mut phases: BTreeSet<PhaseName> = agg.phases().map(|(p, _)| p).collect();
    if agg.essays().any(|(_, e)| e.spellcheck.is_some()) {
        phases.insert(PhaseName::Spellcheck);
    }
    if agg.has_cj_jobs() {
        phases.insert(PhaseName::CjAssessment);
    }
    if let Some(pc) = &agg.root().pipeline_completion {
        phases.extend(
            pc.completed_phases
                .iter()
                .filter_map(|p| PhaseName::parse(p)),
        );
    }
    phases
}

/// When a phase finished: ELS's outcome time, else the latest result time of the phase.
pub fn phase_completed_at(agg: &impl BatchFacts, phase: PhaseName) -> Option<Timestamp> {
    if let Some(outcome) = agg.phase(phase) {
        return Some(outcome.provenance.occurred_at);
    }
    match phase {
        PhaseName::Spellcheck => agg
            .essays()
            .filter_map(|(_, e)| e.spellcheck.as_ref())
            .filter(|s| s.stage.is_terminal())
            .map(|s| s.provenance.occurred_at)
            .max(),
        PhaseName::CjAssessment => agg.cj_jobs().map(|(_, j)| j.assessed_at()).max(),
        _ => None,
    }
}

fn essay_failed_somewhere(
    agg: &impl BatchFacts,
    essay_id: &str,
    phases: &BTreeSet<PhaseName>,
) -> bool {
    phases
        .iter()
        .any(|p| essay_phase_stage(agg, essay_id, *p) == Some(ProcessingStage::Failed))
}

/// Per-phase counts over the attached essays, for the phases that ran, in pipeline order.
pub fn phase_summaries(agg: &impl BatchFacts) -> PhaseResults {
    phase_summaries_in(agg, &Shape::of(agg), agg.root().processing_started_at)
}

fn phase_summaries_in(
    agg: &impl BatchFacts,
    shape: &Shape<'_>,
    started: Option<Timestamp>,
) -> PhaseResults {
    summaries_over(
        agg,
        &shape.essays,
        &shape.phases,
        started,
        essay_phase_stage,
    )
}

/// Per-phase counts over `essays`, for `phases`, with an essay's stage in a phase from `stage`.
fn summaries_over<F: BatchFacts>(
    agg: &F,
    essays: &BTreeSet<&str>,
    phases: &BTreeSet<PhaseName>,
    started: Option<Timestamp>,
    stage: impl Fn(&F, &str, PhaseName) -> Option<ProcessingStage>,
) -> PhaseResults {
    let summaries = phases
        .iter()
        .map(|&phase| {
            let (mut completed, mut failed) = (0i64, 0i64);
            for id in essays {
                match stage(agg, id, phase) {
                    Some(ProcessingStage::Completed) => completed += 1,
                    Some(ProcessingStage::Failed) => failed += 1,
                    _ => {}
                }
            }
            let processing_time_seconds = match (phase_completed_at(agg, phase), started) {
                (Some(done), Some(start)) => Some(done.seconds_since(&start).max(0.0)),
                _ => None,
            };
            PhaseResultSummary {
                phase_name: phase,
                status: if failed == 0 {
                    "completed"
                } else {
                    "completed_with_failures"
                }
                .to_string(),
                completed_count: completed,
                failed_count: failed,
                processing_time_seconds,
            }
        })
        .collect();
    PhaseResults(summaries)
}

/// Completion by the essays (SPEC §3.6, second clause), read strictly so that it can never fire
/// early: every phase that ran was reported finished by ELS; every attached essay is terminal in
/// each of them (an essay that failed a phase does not go on to later ones); every essay ELS
/// reports as processed by spellcheck or CJ has its result stored; and CJ assessment — the last
/// phase of every results pipeline — ran. Spellcheck-only pipelines complete by BOS's
/// pipeline-completed (first clause). See docs/deviations.md.
pub fn essays_complete(agg: &impl BatchFacts) -> bool {
    Shape::of(agg).essays_complete(agg)
}

fn essays_complete_in(
    agg: &impl BatchFacts,
    essays: &BTreeSet<&str>,
    phases: &BTreeSet<PhaseName>,
) -> bool {
    if essays.is_empty() || !phases.contains(&PhaseName::CjAssessment) {
        return false;
    }
    // CJ is the last phase that produces results: phases reported after it (NLP, student
    // matching) neither hold back nor undo the rule, whichever order their outcomes arrive in.
    for phase in phases.range(..=PhaseName::CjAssessment) {
        let Some(outcome) = agg.phase(*phase) else {
            return false;
        };
        if RESULT_PHASES.contains(phase) {
            let result_missing = outcome.processed_essay_ids.iter().any(|id| match phase {
                PhaseName::Spellcheck => agg
                    .essay(id)
                    .and_then(|e| e.spellcheck.as_ref())
                    .is_none_or(|s| !s.stage.is_terminal()),
                _ => cj_result_of(agg, id).is_none(),
            });
            if result_missing {
                return false;
            }
        }
        for id in essays {
            let terminal = essay_phase_stage(agg, id, *phase).is_some_and(|s| s.is_terminal());
            if !terminal && !essay_failed_somewhere(agg, id, phases) {
                return false;
            }
        }
    }
    true
}

/// The batch is reported complete: BOS reported its pipeline completed, or [`essays_complete`].
/// Its results-ready event still waits for [`missing_facts`] (see [`results_ready_due`]).
pub fn is_complete(agg: &impl BatchFacts) -> bool {
    agg.root().pipeline_completion.is_some() || essays_complete(agg)
}

/// The facts a results-ready event is computed from and that are not stored yet (SPEC §3.6):
/// BOS's pipeline completion (the authority that the pipeline is over, and whose final status
/// the event carries); for every phase BOS lists or that ran, ELS's phase outcome; for every
/// essay an outcome lists as processed, its own result — its spellcheck result, or for CJ a job
/// result ranking it. Essays an outcome lists as failed need no result of their own, and phases
/// without per-essay results (AI feedback, NLP, student matching) wait for ELS alone.
///
/// Once this is empty, every figure of the event is a function of facts that are all present:
/// whichever order the records arrived in, the event carries the same data (docs/deviations.md).
pub fn missing_facts(agg: &impl BatchFacts) -> MissingFacts {
    let mut missing = MissingFacts {
        pipeline_completion: agg.root().pipeline_completion.is_none(),
        ..MissingFacts::default()
    };
    let mut cj_ranked: Option<BTreeSet<&str>> = None;
    for phase in phases_ran(agg) {
        let Some(outcome) = agg.phase(phase) else {
            missing.phases.push(phase);
            continue;
        };
        let mut has_result = |id: &str| match phase {
            PhaseName::Spellcheck => agg
                .essay(id)
                .and_then(|e| e.spellcheck.as_ref())
                .is_some_and(|s| s.stage.is_terminal()),
            PhaseName::CjAssessment => cj_ranked
                .get_or_insert_with(|| {
                    agg.cj_jobs()
                        .flat_map(|(_, job)| job.result.essay_results.iter())
                        .filter(|r| !r.is_anchor)
                        .map(|r| r.essay_id.as_str())
                        .collect()
                })
                .contains(id),
            _ => true,
        };
        for id in &outcome.processed_essay_ids {
            if !has_result(id) {
                missing.essays.push(MissingResult {
                    phase,
                    essay_id: id.clone(),
                });
            }
        }
    }
    missing.essays.sort();
    missing.essays.dedup();
    missing
}

/// The results-ready event is due: the batch is registered (its owner is known) and no fact is
/// missing ([`missing_facts`]; BOS's pipeline completion among them).
pub fn results_ready_due(agg: &impl BatchFacts) -> bool {
    // BOS's report first: until it arrives nothing is due, and the per-essay scan is skipped
    // (the steady state of every record before a batch completes).
    agg.root().registration.is_some()
        && agg.root().pipeline_completion.is_some()
        && missing_facts(agg).is_empty()
}

/// The correlation id of the results-ready event and its notification, chosen among the facts
/// (not by which record happened to complete the batch): BOS's pipeline completion, else ELS's
/// outcome of the last phase that ran, else the registration's.
pub fn results_ready_correlation(agg: &impl BatchFacts) -> Option<uuid::Uuid> {
    if let Some(pc) = &agg.root().pipeline_completion {
        return Some(pc.correlation_id);
    }
    if let Some((_, outcome)) = agg.phases().last() {
        return Some(outcome.correlation_id);
    }
    agg.root().registration.as_ref().map(|r| r.correlation_id)
}

/// When the batch finished: BOS's completion time, else the last phase's completion time.
pub fn completion_time(agg: &impl BatchFacts) -> Option<Timestamp> {
    if let Some(pc) = &agg.root().pipeline_completion {
        return Some(pc.provenance.occurred_at);
    }
    completion_time_in(agg, &Shape::of(agg))
}

fn completion_time_in(agg: &impl BatchFacts, shape: &Shape<'_>) -> Option<Timestamp> {
    if let Some(pc) = &agg.root().pipeline_completion {
        return Some(pc.provenance.occurred_at);
    }
    if agg.root().results_ready.is_none() && !shape.essays_complete(agg) {
        return None;
    }
    // As the every-phase rule: up to and including CJ assessment.
    shape
        .phases
        .range(..=PhaseName::CjAssessment)
        .filter_map(|p| phase_completed_at(agg, *p))
        .max()
}

fn status_from_counts(summaries: &PhaseResults) -> BatchStatus {
    if summaries.0.iter().any(|s| s.failed_count > 0) {
        BatchStatus::CompletedWithFailures
    } else {
        BatchStatus::CompletedSuccessfully
    }
}

/// The batch status as a function of the facts (SPEC §3.8): BOS's final status is
/// authoritative; otherwise the first terminal state by event time (critical phase failure or
/// completion) holds; otherwise processing once any phase signal arrived; otherwise awaiting
/// content validation. `None` for a batch not registered yet.
pub fn overall_status(agg: &impl BatchFacts) -> Option<BatchStatus> {
    agg.root().registration.as_ref()?;
    if let Some(pc) = &agg.root().pipeline_completion {
        return Some(pc.final_status);
    }
    overall_status_in(agg, &Shape::of(agg))
}

fn overall_status_in(agg: &impl BatchFacts, shape: &Shape<'_>) -> Option<BatchStatus> {
    agg.root().registration.as_ref()?;
    if let Some(pc) = &agg.root().pipeline_completion {
        return Some(pc.final_status);
    }
    let completed_at = if agg.root().results_ready.is_some() || shape.essays_complete(agg) {
        completion_time_in(agg, shape)
    } else {
        None
    };
    let failure_at = agg
        .root()
        .critical_failure
        .as_ref()
        .map(|f| f.provenance.occurred_at);
    match (completed_at, failure_at) {
        (Some(done), Some(failed)) if failed < done => Some(BatchStatus::FailedCritically),
        (Some(_), _) => Some(status_from_counts(&phase_summaries_in(
            agg,
            shape,
            agg.root().processing_started_at,
        ))),
        (None, Some(_)) => Some(BatchStatus::FailedCritically),
        (None, None) if agg.root().processing_started_at.is_some() => {
            Some(BatchStatus::ProcessingPipelines)
        }
        (None, None) => Some(BatchStatus::AwaitingContentValidation),
    }
}

/// The values stored on the batch root for queries.
pub fn derive_batch(agg: &impl BatchFacts) -> DerivedBatch {
    let shape = Shape::of(agg);
    let (completed, failed) = match &agg.root().pipeline_completion {
        Some(pc) => (pc.successful_essay_count, pc.failed_essay_count),
        None => {
            let (mut completed, mut failed) = (0, 0);
            for id in &shape.essays {
                // Failed in any phase that ran; else completed when completed in all of them.
                let (mut any_failed, mut all_completed) = (false, !shape.phases.is_empty());
                for phase in &shape.phases {
                    match essay_phase_stage(agg, id, *phase) {
                        Some(ProcessingStage::Failed) => {
                            any_failed = true;
                            break;
                        }
                        Some(ProcessingStage::Completed) => {}
                        _ => all_completed = false,
                    }
                }
                if any_failed {
                    failed += 1;
                } else if all_completed {
                    completed += 1;
                }
            }
            (completed, failed)
        }
    };
    // First assignment id by assessment time wins (the reference keeps the first write).
    let assignment_id = agg
        .cj_jobs()
        .map(|(_, j)| j)
        .filter(|j| j.result.assignment_id.is_some())
        .min_by(|a, b| (a.assessed_at(), &a.job_id).cmp(&(b.assessed_at(), &b.job_id)))
        .and_then(|j| j.result.assignment_id.clone());
    DerivedBatch {
        overall_status: overall_status_in(agg, &shape),
        completed_essay_count: completed,
        failed_essay_count: failed,
        assignment_id,
        processing_completed_at: completion_time_in(agg, &shape),
    }
}

/// The root's [`EssayCounters`]: the sums over the batch's essays while no phase outcome or CJ
/// job is stored, `None` after (see [`crate::model::BatchRoot::essay_counters`]).
pub fn essay_counters(agg: &impl BatchFacts) -> Option<EssayCounters> {
    if agg.phases().next().is_some() || agg.has_cj_jobs() {
        return None;
    }
    Some(EssayCounters::sum(agg.essays().map(|(_, e)| e)))
}

/// [`derive_batch`] of a batch that has neither a phase outcome, a CJ job nor BOS's report,
/// from its root and `counters` (the sums over all of its essays) instead of its essays:
/// `agg` may hold only some of them ([`crate::rules::apply_to_essay`]). Without those facts
/// the only phase that can have run is spellcheck, so an essay is completed or failed as its
/// spellcheck result is, no CJ job gives an assignment id, and the batch is not complete.
pub fn derive_with_counters(agg: &impl BatchFacts, counters: EssayCounters) -> DerivedBatch {
    let root = agg.root();
    debug_assert!(root.pipeline_completion.is_none() && agg.phases().next().is_none());
    let status = root.registration.as_ref().map(|_| {
        if root.critical_failure.is_some() {
            BatchStatus::FailedCritically
        } else if root.processing_started_at.is_some() {
            BatchStatus::ProcessingPipelines
        } else {
            BatchStatus::AwaitingContentValidation
        }
    });
    DerivedBatch {
        overall_status: status,
        completed_essay_count: counters.spellcheck_completed,
        failed_essay_count: counters.spellcheck_failed,
        assignment_id: None,
        processing_completed_at: None,
    }
}

/// `current_phase` of the status API: while processing, the first phase (pipeline order) in
/// which some attached essay is not terminal yet.
pub fn current_phase(agg: &impl BatchFacts) -> Option<PhaseName> {
    if agg.root().derived.overall_status != Some(BatchStatus::ProcessingPipelines) {
        return None;
    }
    let essays = attached_essays(agg);
    let phases = phases_ran(agg);
    phases.iter().copied().find(|phase| {
        essays.iter().any(|id| {
            !essay_phase_stage(agg, id, *phase).is_some_and(|s| s.is_terminal())
                && !essay_failed_somewhere(agg, id, &phases)
        })
    })
}

/// The figures of `BatchResultsReadyV1` (§5.1) at this moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultsReadyFigures {
    pub total_essays: i64,
    pub completed_essays: i64,
    pub phase_results: PhaseResults,
    pub overall_status: BatchStatus,
    pub processing_duration_seconds: f64,
}

/// The figures of the results-ready event. Each is computed from the facts the event waits
/// for ([`missing_facts`]), so that records arriving after it (a failed essay's own result, an
/// in-progress result, a slot assignment) cannot make two runs of the same batch differ:
/// the essays are those ELS's outcomes name (all attached essays while no outcome is stored),
/// an essay's stage in a phase is ELS's where the phase outcome names it, and the start of
/// processing is [`figures_start`].
pub fn results_ready_figures(agg: &impl BatchFacts) -> ResultsReadyFigures {
    let shape = Shape::of(agg);
    let mut essays: BTreeSet<&str> = BTreeSet::new();
    for (_, outcome) in agg.phases() {
        essays.extend(outcome.processed_essay_ids.iter().map(String::as_str));
        essays.extend(outcome.failed_essay_ids.iter().map(String::as_str));
    }
    if essays.is_empty() {
        essays = shape.essays.clone();
    }
    let stage = |agg: &_, id: &str, phase: PhaseName| {
        agg_phase_stage_of(agg, id, phase).or_else(|| essay_phase_stage(agg, id, phase))
    };
    let completed_essays = essays
        .iter()
        .filter(|id| {
            shape
                .phases
                .iter()
                .any(|p| stage(agg, id, *p) == Some(ProcessingStage::Completed))
        })
        .count() as i64;
    let started = figures_start(agg);
    let phase_results = summaries_over(agg, &essays, &shape.phases, started, stage);
    let completed_at = completion_time_in(agg, &shape);
    let overall_status = match &agg.root().pipeline_completion {
        Some(pc) => pc.final_status,
        None => match (&agg.root().critical_failure, completed_at) {
            (Some(f), Some(done)) if f.provenance.occurred_at < done => {
                BatchStatus::FailedCritically
            }
            _ => status_from_counts(&phase_results),
        },
    };
    let processing_duration_seconds = match (started, completed_at) {
        (Some(start), Some(done)) => done.seconds_since(&start).max(0.0),
        _ => 0.0,
    };
    ResultsReadyFigures {
        total_essays: essays.len() as i64,
        completed_essays,
        phase_results,
        overall_status,
        processing_duration_seconds,
    }
}

/// ELS's word on an essay in a phase, when the phase outcome names it.
fn agg_phase_stage_of(
    agg: &impl BatchFacts,
    essay_id: &str,
    phase: PhaseName,
) -> Option<ProcessingStage> {
    agg.phase(phase).and_then(|o| o.stage_of(essay_id))
}

/// The start of processing as the results-ready figures count it: the earliest of the facts the
/// event waits for ([`missing_facts`]) — ELS's phase outcomes and the results of the essays
/// they list as processed (spellcheck results, CJ jobs ranking them). Results the event does not
/// wait for (a failed essay's, an in-progress one) may arrive after it went out, so they do not
/// count here; the stored `processing_started_at` (the API's) takes every phase signal.
fn figures_start(agg: &impl BatchFacts) -> Option<Timestamp> {
    let mut start: Option<Timestamp> = None;
    let mut take = |t: Timestamp| start = Some(start.map_or(t, |s| s.min(t)));
    for (phase, outcome) in agg.phases() {
        take(outcome.provenance.occurred_at);
        match phase {
            PhaseName::Spellcheck => {
                for id in &outcome.processed_essay_ids {
                    if let Some(result) = agg.essay(id).and_then(|e| e.spellcheck.as_ref()) {
                        take(result.provenance.occurred_at);
                    }
                }
            }
            PhaseName::CjAssessment => {
                for (_, job) in agg.cj_jobs() {
                    let ranks_a_processed_essay =
                        job.result.essay_results.iter().any(|r| {
                            !r.is_anchor && outcome.processed_essay_ids.contains(&r.essay_id)
                        });
                    if ranks_a_processed_essay {
                        take(job.provenance.occurred_at);
                    }
                }
            }
            _ => {}
        }
    }
    start
}

/// `batch_results_ready` notification payload (§5.3), projected from the domain event's figures.
pub fn results_ready_payload(
    batch_id: &str,
    figures: &ResultsReadyFigures,
) -> BatchResultsReadyPayload {
    let mut phase_results = serde_json::Map::new();
    for s in &figures.phase_results.0 {
        let brief = NotificationPhaseResult {
            status: s.status.clone(),
            completed_count: s.completed_count,
            failed_count: s.failed_count,
            processing_time_seconds: s.processing_time_seconds,
        };
        phase_results.insert(
            s.phase_name.as_str().to_string(),
            serde_json::to_value(brief).unwrap_or(serde_json::Value::Null),
        );
    }
    BatchResultsReadyPayload {
        batch_id: batch_id.to_string(),
        total_essays: figures.total_essays,
        completed_essays: figures.completed_essays,
        overall_status: figures.overall_status,
        processing_duration_seconds: figures.processing_duration_seconds,
        phase_results,
        message: format!(
            "Batch {batch_id} processing completed with {}/{} essays",
            figures.completed_essays, figures.total_essays
        ),
    }
}
