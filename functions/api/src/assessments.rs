//! The CJ results routes (SPEC §4, new): the detailed result of one CJ assessment job, and the
//! assessment summary of a batch — served from the whole `AssessmentResultV1` we keep
//! (SPEC §3.9). Timestamps here are aware UTC with `Z`, like the events we publish: no legacy
//! client depends on these routes, so they do not inherit the reference's naive form.

use ras_domain::contracts::EssayResultV1;
use ras_domain::model::{BatchAggregate, CjJobRecord};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `GET /internal/v1/assessments/{cj_assessment_job_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AssessmentDetailResponse {
    pub cj_assessment_job_id: String,
    pub batch_id: String,
    /// The batch owner; the API gateway compares it with the caller's user.
    pub user_id: String,
    pub assignment_id: Option<String>,
    #[schema(example = "cj_assessment")]
    pub assessment_method: String,
    #[schema(example = "claude-3-5-haiku")]
    pub model_used: String,
    #[schema(example = "anthropic")]
    pub model_provider: String,
    pub model_version: Option<String>,
    /// UTC with `Z`.
    #[schema(example = "2025-11-27T10:20:30Z")]
    pub assessed_at: String,
    /// `assessment_metadata.comparison_count` (CJ's estimate n(n−1)/2 over students and anchors).
    pub comparison_count: Option<i64>,
    pub student_essay_count: usize,
    pub anchor_essay_count: usize,
    /// Letter grade → number of student essays (anchors excluded), best grade first.
    #[schema(value_type = std::collections::HashMap<String, u32>)]
    pub grade_distribution: Map<String, Value>,
    /// Every ranked essay, anchors included, by rank.
    pub essays: Vec<AssessedEssay>,
    /// The producer's `assessment_metadata`, verbatim.
    #[schema(value_type = Object)]
    pub assessment_metadata: Map<String, Value>,
}

/// One ranked essay of a CJ job (the fields of CJ's `EssayResultV1`, in its order).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AssessedEssay {
    pub essay_id: String,
    /// 0.0 ..= 1.0, looked up from the letter grade.
    pub normalized_score: f64,
    #[schema(example = "B")]
    pub letter_grade: String,
    pub confidence_score: f64,
    #[schema(value_type = ras_domain::contracts::ConfidenceLabel)]
    pub confidence_label: String,
    /// Bradley–Terry log-strength, mean-centred over the job's essays.
    pub bt_score: f64,
    /// 1-based over students and anchors together.
    pub rank: i64,
    pub is_anchor: bool,
    pub feedback_uri: Option<String>,
    pub metrics_uri: Option<String>,
    /// `ANCHOR GRADE {grade}` for anchors, null for students.
    pub display_name: Option<String>,
}

/// `GET /internal/v1/batches/{batch_id}/assessments`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct BatchAssessmentsResponse {
    pub batch_id: String,
    pub user_id: String,
    /// One entry per CJ job of the batch, newest first.
    pub assessments: Vec<AssessmentSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AssessmentSummary {
    pub cj_assessment_job_id: String,
    /// UTC with `Z`.
    #[schema(example = "2025-11-27T10:20:30Z")]
    pub assessed_at: String,
    pub student_essay_count: usize,
    pub anchor_essay_count: usize,
    /// Letter grade → number of student essays (anchors excluded), best grade first.
    #[schema(value_type = std::collections::HashMap<String, u32>)]
    pub grade_distribution: Map<String, Value>,
    pub comparison_count: Option<i64>,
    pub model_used: String,
    pub model_provider: String,
}

fn assessed_essay(r: &EssayResultV1) -> AssessedEssay {
    AssessedEssay {
        essay_id: r.essay_id.clone(),
        normalized_score: r.normalized_score,
        letter_grade: r.letter_grade.clone(),
        confidence_score: r.confidence_score,
        confidence_label: r.confidence_label.as_str().to_string(),
        bt_score: r.bt_score,
        rank: r.rank,
        is_anchor: r.is_anchor,
        feedback_uri: r.feedback_uri.clone(),
        metrics_uri: r.metrics_uri.clone(),
        display_name: r.display_name.clone(),
    }
}

/// Position of a letter grade, best first: A, A-, B+, B, B-, …, F+, F, F-, then U, then
/// anything else alphabetically.
fn grade_order(grade: &str) -> (u8, u8, String) {
    let mut chars = grade.chars();
    match (chars.next(), chars.as_str()) {
        (Some(letter @ 'A'..='F'), modifier) if matches!(modifier, "" | "+" | "-") => {
            let step = match modifier {
                "+" => 0,
                "" => 1,
                _ => 2,
            };
            (letter as u8 - b'A', step, String::new())
        }
        (Some('U'), "") => (6, 0, String::new()),
        _ => (7, 0, grade.to_string()),
    }
}

fn grade_distribution(job: &CjJobRecord) -> Map<String, Value> {
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for r in job.result.essay_results.iter().filter(|r| !r.is_anchor) {
        match counts.iter_mut().find(|(g, _)| *g == r.letter_grade) {
            Some((_, n)) => *n += 1,
            None => counts.push((&r.letter_grade, 1)),
        }
    }
    counts.sort_by_key(|(g, _)| grade_order(g));
    counts
        .into_iter()
        .map(|(g, n)| (g.to_string(), Value::from(n)))
        .collect()
}

fn comparison_count(job: &CjJobRecord) -> Option<i64> {
    let value = job.result.assessment_metadata.get("comparison_count")?;
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

fn essay_counts(job: &CjJobRecord) -> (usize, usize) {
    let anchors = job
        .result
        .essay_results
        .iter()
        .filter(|r| r.is_anchor)
        .count();
    (job.result.essay_results.len() - anchors, anchors)
}

/// The detailed result of `job`, a job of the registered batch owned by `user_id`.
pub fn assessment_detail(job: &CjJobRecord, user_id: &str) -> AssessmentDetailResponse {
    let mut essays: Vec<AssessedEssay> = job
        .result
        .essay_results
        .iter()
        .map(assessed_essay)
        .collect();
    essays.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then_with(|| a.essay_id.cmp(&b.essay_id))
    });
    let (students, anchors) = essay_counts(job);
    AssessmentDetailResponse {
        cj_assessment_job_id: job.job_id.clone(),
        batch_id: job.batch_id.clone(),
        user_id: user_id.to_string(),
        assignment_id: job.result.assignment_id.clone(),
        assessment_method: job.result.assessment_method.clone(),
        model_used: job.result.model_used.clone(),
        model_provider: job.result.model_provider.clone(),
        model_version: job.result.model_version.clone(),
        assessed_at: job.assessed_at().to_wire(),
        comparison_count: comparison_count(job),
        student_essay_count: students,
        anchor_essay_count: anchors,
        grade_distribution: grade_distribution(job),
        essays,
        assessment_metadata: job.result.assessment_metadata.clone(),
    }
}

/// The assessment summary of a registered batch; `None` when it is not registered.
pub fn batch_assessments(agg: &BatchAggregate) -> Option<BatchAssessmentsResponse> {
    let registration = agg.root.registration.as_ref()?;
    let mut jobs: Vec<&CjJobRecord> = agg.cj_jobs.values().collect();
    jobs.sort_by(|a, b| (b.assessed_at(), &b.job_id).cmp(&(a.assessed_at(), &a.job_id)));
    let assessments = jobs
        .into_iter()
        .map(|job| {
            let (students, anchors) = essay_counts(job);
            AssessmentSummary {
                cj_assessment_job_id: job.job_id.clone(),
                assessed_at: job.assessed_at().to_wire(),
                student_essay_count: students,
                anchor_essay_count: anchors,
                grade_distribution: grade_distribution(job),
                comparison_count: comparison_count(job),
                model_used: job.result.model_used.clone(),
                model_provider: job.result.model_provider.clone(),
            }
        })
        .collect();
    Some(BatchAssessmentsResponse {
        batch_id: agg.batch_id().to_string(),
        user_id: registration.user_id.clone(),
        assessments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_sort_best_first() {
        let mut grades = vec!["U", "C", "A-", "B+", "F", "A", "B", "E+", "X", "B-", "D"];
        grades.sort_by_key(|g| grade_order(g));
        assert_eq!(
            grades,
            ["A", "A-", "B+", "B", "B-", "C", "D", "E+", "F", "U", "X"]
        );
    }
}
