//! How a failed run reaches the Lambda runtime: [`TimerError`] → `lambda_runtime::Diagnostic`
//! with a `Timer.*` `errorType` (the function's Errors alarm counts them; the next run, a
//! minute later, retries what failed).

use crate::SweepReport;
use lambda_runtime::Diagnostic;
use ras_domain::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// The index of the batches awaiting facts could not be read: nothing was done.
    #[error(transparent)]
    Index(#[from] StoreError),
    /// Some overdue batches failed (the others were handled), with the reason of each.
    #[error("{} overdue batches failed: {:?}", .failed.len(), .failed)]
    BatchesFailed { failed: Vec<(String, String)> },
}

impl TimerError {
    /// The `errorType` Lambda records for the failed run.
    pub fn error_type(&self) -> &'static str {
        match self {
            TimerError::Index(StoreError::Transient(_)) => "Timer.IndexUnavailable",
            TimerError::Index(StoreError::Permanent { .. }) => "Timer.IndexFailed",
            TimerError::BatchesFailed { .. } => "Timer.BatchesFailed",
        }
    }
}

impl From<TimerError> for Diagnostic {
    fn from(error: TimerError) -> Diagnostic {
        ras_aws::runtime::diagnostic(error.error_type(), &error)
    }
}

impl SweepReport {
    /// What the invocation returns: the counts of a run in which no batch failed, else
    /// [`TimerError::BatchesFailed`] (reported as a function error; the next run retries them).
    pub fn into_response(self) -> Result<serde_json::Value, TimerError> {
        if self.failed.is_empty() {
            Ok(serde_json::json!({
                "overdue": self.overdue,
                "emitted": self.emitted.len(),
                "deferred": self.deferred,
            }))
        } else {
            Err(TimerError::BatchesFailed {
                failed: self.failed,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_failed_batches_is_a_batches_failed_error() {
        let report = SweepReport {
            overdue: 2,
            failed: vec![("batch-1".into(), "transient store failure: slow".into())],
            ..SweepReport::default()
        };
        let diagnostic = Diagnostic::from(report.into_response().unwrap_err());
        assert_eq!(diagnostic.error_type, "Timer.BatchesFailed");
        assert_eq!(
            diagnostic.error_message,
            r#"1 overdue batches failed: [("batch-1", "transient store failure: slow")]"#
        );
        let ok = SweepReport {
            overdue: 1,
            deferred: 1,
            ..SweepReport::default()
        };
        assert_eq!(
            ok.into_response().unwrap(),
            serde_json::json!({"overdue": 1, "emitted": 0, "deferred": 1})
        );
    }

    #[test]
    fn an_unreadable_index_says_whether_it_was_transient() {
        let transient =
            Diagnostic::from(TimerError::from(StoreError::Transient("throttled".into())));
        assert_eq!(transient.error_type, "Timer.IndexUnavailable");
        assert_eq!(
            transient.error_message,
            "transient store failure: throttled"
        );
        let permanent = Diagnostic::from(TimerError::from(StoreError::Permanent {
            kind: "access_denied",
            message: "no".into(),
        }));
        assert_eq!(permanent.error_type, "Timer.IndexFailed");
        assert_eq!(
            permanent.error_message,
            "permanent store failure (access_denied): no"
        );
    }
}
