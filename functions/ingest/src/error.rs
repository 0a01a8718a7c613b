//! The error the function returns to the Lambda runtime, as a [`Diagnostic`] whose
//! `error_type` names what went wrong (Lambda shows it as `errorType`). Failures of records
//! are not errors of the invocation: they are dead-lettered or reported in the partial-batch
//! response.

use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload is not an MSK event: the invocation fails and Lambda retries it, nothing
    /// is dropped.
    #[error("not an MSK event: {0}")]
    NotAnMskEvent(#[source] serde_json::Error),
}

impl IngestError {
    /// Stable, for `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            IngestError::NotAnMskEvent(_) => "Ingest.NotAnMskEvent",
        }
    }
}

impl From<IngestError> for Diagnostic {
    fn from(error: IngestError) -> Diagnostic {
        ras_aws::runtime::diagnostic(error.error_type(), &error)
    }
}
