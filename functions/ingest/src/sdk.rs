//! How ingest's AWS SDK clients retry and time out (used by `main`; pinned by
//! `tests/tests/sdk_retries.rs`).
//!
//! **One owner per failure kind** (issue 11, item 3; `docs/ingest.md`, "Retries"):
//!
//! * transient AWS errors (throttling, 5xx, timeouts, connection failures) of DynamoDB and SQS
//!   are retried by the handler's own loop ([`crate::retry`]: jittered, bounded by attempts, a
//!   time budget and the invocation deadline), so the SDK makes **one** HTTP attempt per call —
//!   with the SDK's standard mode underneath, every handler attempt would have been up to three
//!   SDK attempts;
//! * optimistic-concurrency conflicts are re-planned by the domain service
//!   (`ras_domain::service::MAX_VERSION_CONFLICTS` per attempt), which is not an error retry:
//!   each round re-reads the batch and commits a different plan;
//! * DynamoDB's `UnprocessedItems` of the CJ chunk pre-write are re-sent by the adapter
//!   (`ras_aws::dynamo`, a bounded partial-success loop), within one handler attempt.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use ras_aws::config::SdkSettings;
use std::time::Duration;

/// One HTTP attempt per SDK call: the handler's retry loop owns transient failures.
pub fn retry_config() -> RetryConfig {
    RetryConfig::disabled()
}

/// Connect 2 s; one SDK attempt (= the whole call, as there is one) 5 s. A processing attempt
/// (several calls) is limited by `RAS_INGEST_ATTEMPT_TIMEOUT_MS` and the invocation deadline.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .build()
}

/// The settings of ingest's DynamoDB and SQS clients.
pub fn settings() -> SdkSettings {
    SdkSettings::new(retry_config(), timeout_config())
}
