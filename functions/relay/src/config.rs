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
//! | `RAS_EVENTS_PUBLISH_TO` | required | `sqs`, `kafka` or `both` ([`ras_aws::routing`]) |
//! | `RAS_NOTIFICATIONS_PUBLISH_TO` | required | `sqs`, `kafka` or `both` |
//! | `RAS_KAFKA_*` | required when a route uses Kafka | brokers and authentication ([`ras_aws::kafka_publisher`]) |
//!
//! The queue URLs are required whatever the routes: the queues exist in every deployment
//! (`template.yaml`), and `ras-ops republish` can be pointed at them.

use crate::breaker::BreakerSettings;
pub use ras_aws::config::ConfigError;
use ras_aws::config::Env;
use ras_aws::kafka_publisher::KafkaSettings;
use ras_aws::parking::PARKED_QUEUE_URL_ENV;
use ras_aws::routing::Routes;
use ras_aws::sqs_publisher::QueueUrls;
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
    /// Where each destination kind goes.
    pub routes: Routes,
    /// The brokers, when a route uses Kafka (`None` otherwise: nothing Kafka is read).
    pub kafka: Option<KafkaSettings>,
}

impl RelayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`RelayConfig::from_env`] with an explicit lookup. Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let queues = QueueUrls::from_config(&env)?;
        let parked_queue_url = env.queue_url(PARKED_QUEUE_URL_ENV)?;
        if parked_queue_url.ends_with(".fifo") {
            return Err(ConfigError::Invalid {
                name: PARKED_QUEUE_URL_ENV,
                value: parked_queue_url,
                reason: "expected the URL of a standard (not FIFO) SQS queue".into(),
            });
        }
        let defaults = BreakerSettings::default();
        let failures = env.number(
            BREAKER_FAILURES_ENV,
            u64::from(defaults.failure_threshold),
            1,
            1000,
        )?;
        let open_seconds = env.number(
            BREAKER_OPEN_SECONDS_ENV,
            defaults.open_for.as_secs(),
            1,
            3600,
        )?;
        let timeout_ms = env.number(
            SQS_TIMEOUT_MS_ENV,
            DEFAULT_SQS_TIMEOUT.as_millis() as u64,
            100,
            60_000,
        )?;
        let routes = Routes::from_config(&env)?;
        let kafka = if routes.uses_kafka() {
            Some(KafkaSettings::from_env(&env)?)
        } else {
            None
        };
        Ok(RelayConfig {
            queues,
            parked_queue_url,
            breaker: BreakerSettings {
                failure_threshold: u32::try_from(failures).unwrap_or(defaults.failure_threshold),
                open_for: Duration::from_secs(open_seconds),
            },
            sqs_timeout: Duration::from_millis(timeout_ms),
            routes,
            kafka,
        })
    }

    /// The longest one publish request may take: a request starts no later than this before
    /// the invocation's deadline.
    pub fn request_timeout(&self) -> Duration {
        let kafka = self.kafka.as_ref().map(|k| k.timeout).unwrap_or_default();
        self.sqs_timeout.max(kafka)
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
            ("RAS_EVENTS_PUBLISH_TO".to_string(), "sqs".to_string()),
            (
                "RAS_NOTIFICATIONS_PUBLISH_TO".to_string(),
                "sqs".to_string(),
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
        assert_eq!(c.kafka, None);
        assert_eq!(c.request_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn kafka_settings_are_read_only_when_a_route_uses_kafka() {
        // SQS only: Kafka variables are not looked at, even when invalid.
        let c = RelayConfig::from_lookup(lookup(&[("RAS_KAFKA_BOOTSTRAP", "")])).unwrap();
        assert_eq!(c.kafka, None);
        let err = RelayConfig::from_lookup(lookup(&[("RAS_NOTIFICATIONS_PUBLISH_TO", "kafka")]))
            .unwrap_err();
        assert_eq!(err, ConfigError::Missing("RAS_KAFKA_BOOTSTRAP"));
        let c = RelayConfig::from_lookup(lookup(&[
            ("RAS_EVENTS_PUBLISH_TO", "both"),
            ("RAS_KAFKA_BOOTSTRAP", "b-1.example:9098,b-2.example:9098"),
            ("RAS_KAFKA_SECURITY", "plaintext"),
        ]))
        .unwrap();
        assert!(c.routes.uses_kafka());
        let kafka = c.kafka.expect("kafka settings");
        assert_eq!(kafka.bootstrap, ["b-1.example:9098", "b-2.example:9098"]);
    }

    #[test]
    fn the_parking_queue_is_required_and_standard() {
        let err = RelayConfig::from_lookup(lookup(&[(PARKED_QUEUE_URL_ENV, " ")])).unwrap_err();
        assert_eq!(err, ConfigError::Missing(PARKED_QUEUE_URL_ENV));
        assert!(
            err.to_string().contains("RAS_RELAY_PARKED_QUEUE_URL"),
            "{err}"
        );
        for bad in ["http://h/1/ras-relay-parked.fifo", "ras-relay-parked"] {
            assert!(matches!(
                RelayConfig::from_lookup(lookup(&[(PARKED_QUEUE_URL_ENV, bad)])),
                Err(ConfigError::Invalid {
                    name: PARKED_QUEUE_URL_ENV,
                    ..
                })
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
            let err = RelayConfig::from_lookup(lookup(&[(name, bad)])).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { name: n, .. } if *n == name),
                "{err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        for name in ["RAS_EVENTS_QUEUE_URL", "RAS_NOTIFICATIONS_QUEUE_URL"] {
            let err = RelayConfig::from_lookup(lookup(&[(name, "")])).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
