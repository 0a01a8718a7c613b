//! How the relay's SQS client retries (used by `main`; pinned by `tests/tests/sdk_retries.rs`).
//!
//! One owner per failure kind (`docs/relay.md`, "Retries"):
//!
//! * a throttled or failed `SendMessageBatch` *request* (throttling, 5xx, timeout) is retried by
//!   the SDK's standard mode, at most [`MAX_ATTEMPTS`] attempts, all within the operation
//!   timeout `RAS_RELAY_SQS_TIMEOUT_MS` — the relay has no request retry loop of its own, and
//!   no request starts later than that timeout (plus a spare) before the invocation deadline;
//! * a failed *entry* or a request still failing stops its ordering key and the records are
//!   handed back to Lambda, which redelivers them (the stream event source's retries); the
//!   circuit breaker stops sending while SQS keeps failing;
//! * a message SQS refuses for good is parked, never retried.

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use ras_aws::config::SdkSettings;
use std::time::Duration;

/// SDK attempts per SQS request, the first included.
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK's standard mode with [`MAX_ATTEMPTS`] attempts, stated explicitly.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The operation timeout `sqs_timeout` (`RAS_RELAY_SQS_TIMEOUT_MS`: all SDK attempts of one
/// request), nothing else.
pub fn timeout_config(sqs_timeout: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(sqs_timeout)
        .build()
}

/// The settings of the relay's SQS client.
pub fn settings(sqs_timeout: Duration) -> SdkSettings {
    SdkSettings::new(retry_config(), timeout_config(sqs_timeout))
}
