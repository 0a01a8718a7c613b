//! How the api's AWS SDK clients retry and time out (used by `main`; pinned by
//! `tests/tests/sdk_retries.rs`).
//!
//! The api has no retry loop of its own: a query route makes its DynamoDB calls once, each
//! retried by the SDK's standard mode within the operation timeout, and a request that still
//! fails answers 500 (the caller may retry). API Gateway gives up after 30 s, so every call is
//! bounded well before that.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use ras_aws::config::SdkSettings;
use std::time::Duration;

/// SDK attempts per DynamoDB call, the first included.
pub const DYNAMODB_MAX_ATTEMPTS: u32 = 3;
/// SDK attempts per SSM `GetParameter` (the key read blocks one request: ~2 s at most).
pub const SSM_MAX_ATTEMPTS: u32 = 2;

/// DynamoDB: the SDK's standard mode, [`DYNAMODB_MAX_ATTEMPTS`] attempts, stated explicitly.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(DYNAMODB_MAX_ATTEMPTS)
}

/// DynamoDB: connect 2 s, one attempt 4 s, one call (attempts and backoffs) 10 s.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// SSM: the SDK's standard mode, [`SSM_MAX_ATTEMPTS`] attempts.
pub fn ssm_retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(SSM_MAX_ATTEMPTS)
}

/// SSM: connect 0.5 s, one attempt 1 s, the read 2 s in all.
pub fn ssm_timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .operation_attempt_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_secs(2))
        .build()
}

/// The settings of the api's DynamoDB client: the SDK configuration `main` loads.
pub fn settings() -> SdkSettings {
    SdkSettings::new(retry_config(), timeout_config())
}

/// The settings of the api's SSM client, applied to the loaded configuration
/// ([`SdkSettings::apply`]).
pub fn ssm_settings() -> SdkSettings {
    SdkSettings::new(ssm_retry_config(), ssm_timeout_config())
}

/// The SSM client of the api, from the configuration `main` loaded with [`settings`].
pub fn ssm_client(sdk: &aws_config::SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&ssm_settings().apply(sdk))
}
