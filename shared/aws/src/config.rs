//! Configuration from the environment: the AWS SDK configuration and the table names.
//!
//! `AWS_ENDPOINT_URL` (the local AWS-API server), `AWS_REGION` and the credential variables
//! are honoured by the SDK's default chain; the table names come from `RAS_STATE_TABLE` and
//! `RAS_OUTBOX_TABLE`.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

/// Default name of the state table (local setup); deployed names come from the environment.
pub const DEFAULT_STATE_TABLE: &str = "ras-state";
/// Default name of the outbox table (local setup).
pub const DEFAULT_OUTBOX_TABLE: &str = "ras-outbox";

pub const STATE_TABLE_ENV: &str = "RAS_STATE_TABLE";
pub const OUTBOX_TABLE_ENV: &str = "RAS_OUTBOX_TABLE";

/// The SDK configuration loader of a function: region, credentials and `AWS_ENDPOINT_URL` from
/// the environment, with the retry and timeout settings given **explicitly**, so the SDK's
/// retries are a decision of each function, not a default (issue 11: one owner per failure
/// kind). The Lambda functions call this from their `main` with their crate's `sdk` settings.
pub fn sdk_loader(retry: RetryConfig, timeouts: TimeoutConfig) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
}

/// The retry configuration of [`load_sdk_config`]: the SDK's standard mode with its usual
/// 3 attempts, stated rather than implied. For the operator tool (`ras-ops`), the local
/// pipeline and the tests, which have no retry loop of their own around single calls.
pub fn tool_retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The AWS SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`)
/// with [`tool_retry_config`] and the SDK's default timeouts. The Lambda functions use
/// [`sdk_loader`] with settings of their own instead.
pub async fn load_sdk_config() -> SdkConfig {
    sdk_loader(tool_retry_config(), TimeoutConfig::builder().build())
        .load()
        .await
}

/// A configuration variable that is missing or malformed: the function stops before its first
/// event, with the variable's name in the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// The environment as the functions read it: values trimmed, blank ones count as unset.
pub struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Over an explicit lookup (`|name| std::env::var(name).ok()` in production, a map in tests).
    pub fn new(lookup: F) -> Self {
        Env { lookup }
    }

    pub fn get(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// An unsigned integer within `min..=max`, `default` when unset.
    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name,
            value: text.clone(),
            reason,
        };
        let value: u64 = text
            .parse()
            .map_err(|e: std::num::ParseIntError| invalid(e.to_string()))?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(invalid(format!("must be within {min}..={max}")))
        }
    }

    /// `RAS_STATE_TABLE` and `RAS_OUTBOX_TABLE`, both required.
    pub fn store(&self) -> Result<StoreConfig, ConfigError> {
        Ok(StoreConfig::new(
            self.required(STATE_TABLE_ENV)?,
            self.required(OUTBOX_TABLE_ENV)?,
        ))
    }
}

/// The DynamoDB tables the store works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub state_table: String,
    pub outbox_table: String,
}

impl StoreConfig {
    pub fn new(state_table: impl Into<String>, outbox_table: impl Into<String>) -> Self {
        StoreConfig {
            state_table: state_table.into(),
            outbox_table: outbox_table.into(),
        }
    }

    /// `RAS_STATE_TABLE` / `RAS_OUTBOX_TABLE`, defaulting to the local names.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`StoreConfig::from_env`] with an explicit variable lookup (for tests). Empty
    /// values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str, default: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        StoreConfig {
            state_table: get(STATE_TABLE_ENV, DEFAULT_STATE_TABLE),
            outbox_table: get(OUTBOX_TABLE_ENV, DEFAULT_OUTBOX_TABLE),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::new(DEFAULT_STATE_TABLE, DEFAULT_OUTBOX_TABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_default_and_override() {
        assert_eq!(
            StoreConfig::from_lookup(|_| None),
            StoreConfig::new("ras-state", "ras-outbox")
        );
        let cfg = StoreConfig::from_lookup(|name| match name {
            "RAS_STATE_TABLE" => Some("stack-state".into()),
            "RAS_OUTBOX_TABLE" => Some(" ".into()),
            _ => None,
        });
        assert_eq!(cfg, StoreConfig::new("stack-state", "ras-outbox"));
    }
}
