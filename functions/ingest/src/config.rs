//! The function's configuration, read once at start-up from the environment. Anything missing
//! or malformed stops the function before it takes its first event, with a message naming the
//! variable.

use crate::handler::HandlerSettings;
use crate::retry::RetryPolicy;
pub use ras_aws::config::ConfigError;
use ras_aws::config::{Env, StoreConfig};
use std::time::Duration;

/// URL of the SQS queue receiving dead-lettered records (required).
pub const DLQ_URL_ENV: &str = "RAS_INGEST_DLQ_URL";
/// Partitions processed concurrently (default 4, 1..=64).
pub const CONCURRENCY_ENV: &str = "RAS_INGEST_PARTITION_CONCURRENCY";
/// Attempts per record and per dead-letter send, the first included (default 5, 1..=20).
pub const RETRY_ATTEMPTS_ENV: &str = "RAS_INGEST_RETRY_MAX_ATTEMPTS";
/// First backoff in milliseconds (default 50).
pub const RETRY_BASE_ENV: &str = "RAS_INGEST_RETRY_BASE_DELAY_MS";
/// Largest backoff in milliseconds (default 2000).
pub const RETRY_CAP_ENV: &str = "RAS_INGEST_RETRY_MAX_DELAY_MS";
/// Total retry time per record in milliseconds (default 10000).
pub const RETRY_BUDGET_ENV: &str = "RAS_INGEST_RETRY_BUDGET_MS";
/// Time limit of one processing attempt in milliseconds (default 10000).
pub const ATTEMPT_TIMEOUT_ENV: &str = "RAS_INGEST_ATTEMPT_TIMEOUT_MS";
/// Stop starting records this many milliseconds before the invocation deadline (default 3000).
pub const DEADLINE_RESERVE_ENV: &str = "RAS_INGEST_DEADLINE_RESERVE_MS";
/// The dead-letter queue's `MaximumMessageSize` (default 262144, up to 1048576): larger record
/// values are truncated in the dead letter (see `ras_aws::dead_letter`).
pub const DLQ_MAX_MESSAGE_BYTES_ENV: &str = "RAS_INGEST_DLQ_MAX_MESSAGE_BYTES";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    pub store: StoreConfig,
    pub dead_letter_queue_url: String,
    pub dead_letter_max_message_bytes: usize,
    pub settings: HandlerSettings,
}

impl IngestConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`IngestConfig::from_env`] with an explicit lookup. Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let required = |name: &'static str| env.required(name);
        let number = |name: &'static str, default: u64, min: u64, max: u64| {
            env.number(name, default, min, max)
        };
        let millis =
            |name, default, min, max| number(name, default, min, max).map(Duration::from_millis);

        let defaults = HandlerSettings::default();
        let dead_letter_queue_url = required(DLQ_URL_ENV)?;
        if !(dead_letter_queue_url.starts_with("https://")
            || dead_letter_queue_url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                name: DLQ_URL_ENV,
                value: dead_letter_queue_url,
                reason: "expected a queue URL (http:// or https://)".into(),
            });
        }
        let retry = RetryPolicy {
            max_attempts: number(RETRY_ATTEMPTS_ENV, 5, 1, 20)? as u32,
            base_delay: millis(RETRY_BASE_ENV, 50, 1, 60_000)?,
            max_delay: millis(RETRY_CAP_ENV, 2_000, 1, 60_000)?,
            budget: millis(RETRY_BUDGET_ENV, 10_000, 0, 900_000)?,
        };
        if retry.max_delay < retry.base_delay {
            return Err(ConfigError::Invalid {
                name: RETRY_CAP_ENV,
                value: retry.max_delay.as_millis().to_string(),
                reason: format!("smaller than {RETRY_BASE_ENV}"),
            });
        }
        Ok(IngestConfig {
            store: env.store()?,
            dead_letter_queue_url,
            dead_letter_max_message_bytes: number(
                DLQ_MAX_MESSAGE_BYTES_ENV,
                ras_aws::dead_letter::DEFAULT_MAX_MESSAGE_BYTES as u64,
                4_096,
                1_048_576,
            )? as usize,
            settings: HandlerSettings {
                partition_concurrency: number(CONCURRENCY_ENV, 4, 1, 64)? as usize,
                retry,
                attempt_timeout: millis(
                    ATTEMPT_TIMEOUT_ENV,
                    defaults.attempt_timeout.as_millis() as u64,
                    1,
                    900_000,
                )?,
                deadline_reserve: millis(
                    DEADLINE_RESERVE_ENV,
                    defaults.deadline_reserve.as_millis() as u64,
                    0,
                    900_000,
                )?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("RAS_STATE_TABLE", "stack-ras-state"),
        ("RAS_OUTBOX_TABLE", "stack-ras-outbox"),
        (
            "RAS_INGEST_DLQ_URL",
            "https://sqs.eu-north-1.amazonaws.com/1/ras-ingest-dlq",
        ),
    ];

    #[test]
    fn defaults() {
        let cfg = IngestConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(
            cfg.store,
            StoreConfig::new("stack-ras-state", "stack-ras-outbox")
        );
        assert_eq!(cfg.settings, HandlerSettings::default());
        assert_eq!(cfg.settings.partition_concurrency, 4);
        assert_eq!(cfg.settings.retry, RetryPolicy::default());
        assert_eq!(cfg.dead_letter_max_message_bytes, 262_144);
    }

    #[test]
    fn overrides() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("RAS_INGEST_PARTITION_CONCURRENCY", "8"),
            ("RAS_INGEST_RETRY_MAX_ATTEMPTS", " 3 "),
            ("RAS_INGEST_RETRY_BASE_DELAY_MS", "10"),
            ("RAS_INGEST_RETRY_MAX_DELAY_MS", "500"),
            ("RAS_INGEST_RETRY_BUDGET_MS", "2000"),
            ("RAS_INGEST_ATTEMPT_TIMEOUT_MS", "1500"),
            ("RAS_INGEST_DEADLINE_RESERVE_MS", "0"),
            ("RAS_INGEST_DLQ_MAX_MESSAGE_BYTES", "1048576"),
        ]);
        let cfg = IngestConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(cfg.dead_letter_max_message_bytes, 1_048_576);
        let s = cfg.settings;
        assert_eq!(s.partition_concurrency, 8);
        assert_eq!(s.retry.max_attempts, 3);
        assert_eq!(s.retry.base_delay, Duration::from_millis(10));
        assert_eq!(s.retry.max_delay, Duration::from_millis(500));
        assert_eq!(s.retry.budget, Duration::from_secs(2));
        assert_eq!(s.attempt_timeout, Duration::from_millis(1500));
        assert_eq!(s.deadline_reserve, Duration::ZERO);
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        let err = IngestConfig::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("RAS_INGEST_DLQ_URL"));
        assert!(err.to_string().contains("RAS_INGEST_DLQ_URL"));
        let err = IngestConfig::from_lookup(lookup(&BASE[1..])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("RAS_STATE_TABLE"));

        for (name, value) in [
            ("RAS_INGEST_PARTITION_CONCURRENCY", "0"),
            ("RAS_INGEST_PARTITION_CONCURRENCY", "four"),
            ("RAS_INGEST_RETRY_MAX_ATTEMPTS", "-1"),
            ("RAS_INGEST_RETRY_MAX_DELAY_MS", "10"),
            ("RAS_INGEST_DLQ_URL", "ras-ingest-dlq"),
            ("RAS_INGEST_DLQ_MAX_MESSAGE_BYTES", "2000000"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, value));
            let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name), "{text}");
            assert!(matches!(err, ConfigError::Invalid { .. }), "{text}");
        }
    }
}
