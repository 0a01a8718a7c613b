//! How the timer's DynamoDB client retries and times out (used by `main`; pinned by
//! `tests/tests/sdk_retries.rs`).
//!
//! The timer has no retry loop of its own for AWS errors: a throttled or failed call is
//! retried by the SDK's standard mode (at most [`MAX_ATTEMPTS`] attempts of 5 s), and a batch
//! still failing is reported and retried by the next run a minute later. Optimistic-concurrency
//! conflicts are re-planned by the domain service (bounded), which is not an error retry.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use ras_aws::config::SdkSettings;
use std::time::Duration;

/// SDK attempts per DynamoDB call, the first included.
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK's standard mode with [`MAX_ATTEMPTS`] attempts, stated explicitly.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Connect 2 s, one attempt 5 s, one call (all its attempts and backoffs) 12 s.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build()
}

/// The settings of the timer's DynamoDB client.
pub fn settings() -> SdkSettings {
    SdkSettings::new(retry_config(), timeout_config())
}
