//! The ingest function: HuleEdu Kafka records (MSK event source) → batch state, idempotency
//! marker and outbox items in one DynamoDB transaction per record. See `docs/ingest.md`.
//!
//! * [`handler`] — the generic handler over the ports (`AggregateStore`, `DeadLetterSink`):
//!   scheduling (partitions, waves, the deadline) and the reports ([`report`]).
//! * [`record`] — one record: decoded once, applied with retries, or dead-lettered
//!   ([`dead_letter`]).
//! * [`error`] — the invocation's error for the Lambda runtime (`Diagnostic`).
//! * [`kafka`] — the MSK event's records and the partial-batch response.
//! * [`retry`] — jittered exponential backoff.
//! * [`metrics`] — per-topic CloudWatch EMF metrics.
//! * [`config`] — configuration from the environment.
//! * [`sdk`] — the AWS SDK clients' retry and timeout settings (one HTTP attempt per call).

pub mod config;
pub mod dead_letter;
pub mod error;
pub mod handler;
pub mod kafka;
pub mod metrics;
pub mod record;
pub mod report;
pub mod retry;
pub mod sdk;

pub use error::IngestError;
pub use handler::{handle, handle_payload, handle_until, process_event, Deps, HandlerSettings};
pub use kafka::KafkaBatchResponse;
