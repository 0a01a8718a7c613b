//! Configuration from the environment: the AWS SDK configuration of every function
//! ([`SdkSettings`]), the one environment reader ([`Env`]) and the table names
//! ([`StoreConfig`]).
//!
//! `AWS_ENDPOINT_URL` (the local AWS-API server), `AWS_REGION` and the credential variables
//! are honoured by the SDK's default chain; the table names come from `RAS_STATE_TABLE` and
//! `RAS_OUTBOX_TABLE`, both required (no local default: a function started without them stops
//! before its first event, naming the variable).

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use lambda_runtime::Diagnostic;

/// Base name of the state table in `infra/resources.json` (the local setup's name).
pub const DEFAULT_STATE_TABLE: &str = "ras-state";
/// Base name of the outbox table in `infra/resources.json` (the local setup's name).
pub const DEFAULT_OUTBOX_TABLE: &str = "ras-outbox";

pub const STATE_TABLE_ENV: &str = "RAS_STATE_TABLE";
pub const OUTBOX_TABLE_ENV: &str = "RAS_OUTBOX_TABLE";

/// How one function's AWS SDK clients retry and time out, and the one way every function loads
/// its SDK configuration: region, credentials and `AWS_ENDPOINT_URL` from the environment, with
/// the retry and timeout settings given **explicitly**, so the SDK's retries are a decision of
/// each function, not a default (issue 11: one owner per failure kind). Each function's `sdk`
/// module states its settings; its `main` calls [`SdkSettings::load`] (and [`SdkSettings::apply`]
/// for a client that needs other settings than the first, like the api's SSM client).
#[derive(Clone, Debug)]
pub struct SdkSettings {
    retry: RetryConfig,
    timeouts: TimeoutConfig,
}

impl SdkSettings {
    pub fn new(retry: RetryConfig, timeouts: TimeoutConfig) -> Self {
        SdkSettings { retry, timeouts }
    }

    /// The operator tool (`ras-ops`), the local pipeline and the tests: the SDK's standard mode
    /// with its usual 3 attempts, stated rather than implied, and the SDK's default timeouts.
    /// They have no retry loop of their own around single calls.
    pub fn tool() -> Self {
        SdkSettings::new(tool_retry_config(), TimeoutConfig::builder().build())
    }

    pub fn retry(&self) -> &RetryConfig {
        &self.retry
    }

    pub fn timeouts(&self) -> &TimeoutConfig {
        &self.timeouts
    }

    /// The loader from the environment with these settings (tests point it elsewhere with
    /// `.endpoint_url(..)` before loading).
    pub fn loader(&self) -> ConfigLoader {
        aws_config::defaults(BehaviorVersion::latest())
            .retry_config(self.retry.clone())
            .timeout_config(self.timeouts.clone())
    }

    /// The SDK configuration from the environment with these settings.
    pub async fn load(&self) -> SdkConfig {
        self.loader().load().await
    }

    /// `sdk` (region, credentials, endpoint as loaded) with these retry and timeout settings
    /// instead of its own: for a second client of a function with settings of its own.
    pub fn apply(&self, sdk: &SdkConfig) -> SdkConfig {
        sdk.to_builder()
            .retry_config(self.retry.clone())
            .timeout_config(self.timeouts.clone())
            .build()
    }
}

/// The retry configuration of [`SdkSettings::tool`]: the SDK's standard mode, 3 attempts.
pub fn tool_retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The AWS SDK configuration from the environment with [`SdkSettings::tool`] (the operator
/// tool, the local pipeline, the tests). The Lambda functions load settings of their own.
pub async fn load_sdk_config() -> SdkConfig {
    SdkSettings::tool().load().await
}

/// A configuration variable that is missing or malformed: the function stops before its first
/// event, with the variable's name in the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("one of the environment variables {} is required, none is set", .0.join(", "))]
    MissingOneOf(&'static [&'static str]),
    #[error("set only one of the environment variables {}", .0.join(", "))]
    Conflicting(&'static [&'static str]),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// The `errorType` Lambda records for this error (see the `Diagnostic` conversion).
    pub fn error_type(&self) -> &'static str {
        match self {
            ConfigError::Missing(_) | ConfigError::MissingOneOf(_) => "Config.MissingVariable",
            ConfigError::Conflicting(_) => "Config.ConflictingVariables",
            ConfigError::Invalid { .. } => "Config.InvalidVariable",
        }
    }
}

/// A configuration error as the Lambda runtime reports it (`errorType` `Config.*`, the message
/// naming the variable): the init error of every function (`crate::runtime::init_failed`).
impl From<ConfigError> for Diagnostic {
    fn from(error: ConfigError) -> Diagnostic {
        crate::runtime::diagnostic(error.error_type(), &error)
    }
}

/// The environment as the functions read it: values trimmed, blank ones count as unset.
pub struct Env<F> {
    lookup: F,
}

/// The process environment as an [`Env`].
pub fn process_env() -> Env<fn(&str) -> Option<String>> {
    Env::new(|name| std::env::var(name).ok())
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Over an explicit lookup ([`process_env`] in production, a map in tests).
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

    /// A required queue URL (`http://` or `https://`; the local server's are `http://`).
    pub fn queue_url(&self, name: &'static str) -> Result<String, ConfigError> {
        let value = self.required(name)?;
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                name,
                value,
                reason: "expected a queue URL (http:// or https://)".into(),
            })
        }
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

    /// `RAS_STATE_TABLE`, required: the tables of a reader (the api), which never writes the
    /// outbox ([`StoreConfig::reader`]).
    pub fn reader_store(&self) -> Result<StoreConfig, ConfigError> {
        Ok(StoreConfig::reader(self.required(STATE_TABLE_ENV)?))
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

    /// The tables of a store that only reads the state table (the api, whose function has no
    /// `RAS_OUTBOX_TABLE` and no access to the outbox): the outbox table name is empty, so a
    /// write would be refused by DynamoDB's validation rather than go to a guessed table.
    pub fn reader(state_table: impl Into<String>) -> Self {
        StoreConfig::new(state_table, "")
    }

    /// `RAS_STATE_TABLE` / `RAS_OUTBOX_TABLE`, both required ([`Env::store`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        process_env().store()
    }
}

impl Default for StoreConfig {
    /// The local setup's table names (in-memory tests; never read from the environment).
    fn default() -> Self {
        StoreConfig::new(DEFAULT_STATE_TABLE, DEFAULT_OUTBOX_TABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Env::new(move |name| map.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn table_names_are_required_and_named_when_missing() {
        let both = env(&[(STATE_TABLE_ENV, " stack-state "), (OUTBOX_TABLE_ENV, "o")]);
        assert_eq!(both.store(), Ok(StoreConfig::new("stack-state", "o")));
        let err = env(&[(STATE_TABLE_ENV, "s"), (OUTBOX_TABLE_ENV, " ")])
            .store()
            .unwrap_err();
        assert_eq!(err, ConfigError::Missing(OUTBOX_TABLE_ENV));
        assert!(err.to_string().contains("RAS_OUTBOX_TABLE"), "{err}");
        assert_eq!(
            env(&[(OUTBOX_TABLE_ENV, "o")]).store(),
            Err(ConfigError::Missing(STATE_TABLE_ENV))
        );
        // A reader needs the state table only.
        assert_eq!(
            env(&[(STATE_TABLE_ENV, "s")]).reader_store(),
            Ok(StoreConfig::reader("s"))
        );
        let err = env(&[(OUTBOX_TABLE_ENV, "o")]).reader_store().unwrap_err();
        assert!(err.to_string().contains("RAS_STATE_TABLE"), "{err}");
    }

    #[test]
    fn queue_urls_and_numbers_name_the_variable() {
        let e = env(&[("Q", "ras-queue"), ("N", "7"), ("M", "x")]);
        let err = e.queue_url("Q").unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { name: "Q", .. }),
            "{err}"
        );
        assert_eq!(e.queue_url("MISSING"), Err(ConfigError::Missing("MISSING")));
        assert_eq!(e.number("N", 1, 1, 10), Ok(7));
        assert_eq!(e.number("UNSET", 3, 1, 10), Ok(3));
        assert!(e
            .number("N", 1, 1, 5)
            .unwrap_err()
            .to_string()
            .contains('N'));
        assert!(e
            .number("M", 1, 1, 5)
            .unwrap_err()
            .to_string()
            .contains("M=\"x\""));
    }

    #[test]
    fn config_errors_become_diagnostics_with_a_config_error_type() {
        let cases = [
            (
                ConfigError::Missing("RAS_X"),
                "Config.MissingVariable",
                "RAS_X",
            ),
            (
                ConfigError::MissingOneOf(&["RAS_A", "RAS_B"]),
                "Config.MissingVariable",
                "RAS_A, RAS_B",
            ),
            (
                ConfigError::Conflicting(&["RAS_A", "RAS_B"]),
                "Config.ConflictingVariables",
                "RAS_A, RAS_B",
            ),
            (
                ConfigError::Invalid {
                    name: "RAS_Y",
                    value: "v".into(),
                    reason: "bad".into(),
                },
                "Config.InvalidVariable",
                "RAS_Y=\"v\" is invalid: bad",
            ),
        ];
        for (error, error_type, named) in cases {
            let diagnostic = Diagnostic::from(error);
            assert_eq!(diagnostic.error_type, error_type);
            assert!(
                diagnostic.error_message.contains(named),
                "{}",
                diagnostic.error_message
            );
        }
    }
}
