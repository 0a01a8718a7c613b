//! The relay's configuration, read and validated once at init (a bad value fails the init,
//! not every invocation).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `RAS_EVENTS_QUEUE_URL` | required | FIFO queue of domain events |
//! | `RAS_NOTIFICATIONS_QUEUE_URL` | required | FIFO queue of teacher notifications |
//! | `RAS_RELAY_PARKED_QUEUE_URL` | required | standard queue where messages SQS refuses for good are parked |
//! | `RAS_RELAY_BREAKER_FAILURES` | `5` | consecutive failed requests that open the breaker |
//! | `RAS_RELAY_BREAKER_OPEN_SECONDS` | `30` | how long the breaker stays open |
//! | `RAS_RELAY_SQS_TIMEOUT_MS` | `5000` | SQS operation timeout (all SDK attempts of one request) |

use crate::breaker::BreakerSettings;
use ras_aws::parking::PARKED_QUEUE_URL_ENV;
use ras_aws::sqs_publisher::{QueueConfigError, QueueUrls};
use std::time::Duration;

pub const BREAKER_FAILURES_ENV: &str = "RAS_RELAY_BREAKER_FAILURES";
pub const BREAKER_OPEN_SECONDS_ENV: &str = "RAS_RELAY_BREAKER_OPEN_SECONDS";
pub const SQS_TIMEOUT_MS_ENV: &str = "RAS_RELAY_SQS_TIMEOUT_MS";
pub const DEFAULT_SQS_TIMEOUT: Duration = Duration::from_millis(5000);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    pub queues: QueueUrls,
    /// The parking queue (`ras-relay-parked`, a standard queue).
    pub parked_queue_url: String,
    pub breaker: BreakerSettings,
    /// Upper bound of one `SendMessageBatch` (SDK retries included). No request starts later
    /// than this before the invocation's deadline.
    pub sqs_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Queue(#[from] QueueConfigError),
    #[error("{name} = `{value}`: expected the URL of a standard (not FIFO) SQS queue")]
    NotStandardQueue { name: &'static str, value: String },
    #[error("{name} = `{value}`: expected an integer in {min}..={max}")]
    OutOfRange {
        name: &'static str,
        value: String,
        min: u64,
        max: u64,
    },
}

impl RelayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let queues = QueueUrls::from_lookup(&lookup)?;
        let parked_queue_url = lookup(PARKED_QUEUE_URL_ENV)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or(QueueConfigError::Missing(PARKED_QUEUE_URL_ENV))?;
        let is_url =
            parked_queue_url.starts_with("https://") || parked_queue_url.starts_with("http://");
        if !is_url || parked_queue_url.ends_with(".fifo") {
            return Err(ConfigError::NotStandardQueue {
                name: PARKED_QUEUE_URL_ENV,
                value: parked_queue_url,
            });
        }
        let int = |name: &'static str, default: u64, min: u64, max: u64| match lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            None => Ok(default),
            Some(value) => value
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(ConfigError::OutOfRange {
                    name,
                    value,
                    min,
                    max,
                }),
        };
        let defaults = BreakerSettings::default();
        let failures = int(
            BREAKER_FAILURES_ENV,
            u64::from(defaults.failure_threshold),
            1,
            1000,
        )?;
        let open_seconds = int(
            BREAKER_OPEN_SECONDS_ENV,
            defaults.open_for.as_secs(),
            1,
            3600,
        )?;
        let timeout_ms = int(
            SQS_TIMEOUT_MS_ENV,
            DEFAULT_SQS_TIMEOUT.as_millis() as u64,
            100,
            60_000,
        )?;
        Ok(RelayConfig {
            queues,
            parked_queue_url,
            breaker: BreakerSettings {
                failure_threshold: u32::try_from(failures).unwrap_or(defaults.failure_threshold),
                open_for: Duration::from_secs(open_seconds),
            },
            sqs_timeout: Duration::from_millis(timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut map: HashMap<String, String> = HashMap::from([
            (
                "RAS_EVENTS_QUEUE_URL".to_string(),
                "http://127.0.0.1:4566/123456789012/ras-events.fifo".to_string(),
            ),
            (
                "RAS_NOTIFICATIONS_QUEUE_URL".to_string(),
                "http://127.0.0.1:4566/123456789012/ras-notifications.fifo".to_string(),
            ),
            (
                "RAS_RELAY_PARKED_QUEUE_URL".to_string(),
                "http://127.0.0.1:4566/123456789012/ras-relay-parked".to_string(),
            ),
        ]);
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults() {
        let c = RelayConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.breaker, BreakerSettings::default());
        assert_eq!(c.breaker.failure_threshold, 5);
        assert_eq!(c.breaker.open_for, Duration::from_secs(30));
        assert_eq!(c.sqs_timeout, Duration::from_secs(5));
        assert!(c.queues.events.ends_with("ras-events.fifo"));
        assert!(c.parked_queue_url.ends_with("/ras-relay-parked"));
    }

    #[test]
    fn the_parking_queue_is_required_and_standard() {
        assert!(matches!(
            RelayConfig::from_lookup(lookup(&[(PARKED_QUEUE_URL_ENV, " ")])),
            Err(ConfigError::Queue(QueueConfigError::Missing(
                PARKED_QUEUE_URL_ENV
            )))
        ));
        for bad in ["http://h/1/ras-relay-parked.fifo", "ras-relay-parked"] {
            assert!(matches!(
                RelayConfig::from_lookup(lookup(&[(PARKED_QUEUE_URL_ENV, bad)])),
                Err(ConfigError::NotStandardQueue { .. })
            ));
        }
    }

    #[test]
    fn overrides_and_validation() {
        let c = RelayConfig::from_lookup(lookup(&[
            (BREAKER_FAILURES_ENV, "3"),
            (BREAKER_OPEN_SECONDS_ENV, " 10 "),
        ]))
        .unwrap();
        assert_eq!(c.breaker.failure_threshold, 3);
        assert_eq!(c.breaker.open_for, Duration::from_secs(10));
        for (name, bad) in [
            (BREAKER_FAILURES_ENV, "0"),
            (BREAKER_FAILURES_ENV, "five"),
            (BREAKER_OPEN_SECONDS_ENV, "-1"),
            (SQS_TIMEOUT_MS_ENV, "10"),
        ] {
            assert!(matches!(
                RelayConfig::from_lookup(lookup(&[(name, bad)])),
                Err(ConfigError::OutOfRange { .. })
            ));
        }
        assert!(matches!(
            RelayConfig::from_lookup(lookup(&[("RAS_EVENTS_QUEUE_URL", "")])),
            Err(ConfigError::Queue(QueueConfigError::Missing(_)))
        ));
    }
}
