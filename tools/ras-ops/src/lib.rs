//! Operations on the Result Aggregator (`docs/operations.md`):
//!
//! * [`republish`] — send outbox items again (by event id or `created_at` window), same bytes,
//!   same ids: idempotent for SQS (deduplication id) and for consumers (`event_id`).
//! * [`redrive`] — feed the ingest dead-letter queue back through the ingest path
//!   (`process_record` on the DynamoDB store): idempotent through the idempotency markers.
//!
//! The `ras-ops` binary is a thin command line over these functions.

pub mod redrive;
pub mod republish;

use ras_domain::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Usage(String),
    #[error("AWS request failed: {0}")]
    Aws(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("configuration: {0}")]
    Config(String),
}
