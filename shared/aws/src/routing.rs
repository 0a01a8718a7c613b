//! Where published messages go: per destination kind (domain events, teacher notifications)
//! the SQS FIFO queue, the platform's Kafka topic, or both (issue 13, `docs/kafka.md`).
//!
//! | variable | values | meaning |
//! |---|---|---|
//! | `RAS_EVENTS_PUBLISH_TO` | `sqs`, `kafka`, `both` | where `huleedu.ras.batch.*` events go |
//! | `RAS_NOTIFICATIONS_PUBLISH_TO` | `sqs`, `kafka`, `both` | where teacher notifications go |
//!
//! Both are required: the template sets them (default `kafka`, where HuleEdu's services
//! listen), and a function started without them stops at init naming the variable.
//!
//! [`RoutedPublisher`] is the relay's publisher port over the two transports. With `both`, a
//! message counts as sent only when **both** transports acknowledged it: a retryable failure of
//! either holds its key (the relay hands the record back and Lambda re-delivers it, so the
//! message is sent again to both — SQS drops the copy within its 5-minute deduplication window,
//! Kafka keeps it and consumers deduplicate on the envelope's `event_id`); a permanent refusal
//! by either parks it (a re-publish from the parking queue goes to both again). Both transports
//! are called concurrently.

use crate::config::{ConfigError, Env};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};

pub const EVENTS_PUBLISH_TO_ENV: &str = "RAS_EVENTS_PUBLISH_TO";
pub const NOTIFICATIONS_PUBLISH_TO_ENV: &str = "RAS_NOTIFICATIONS_PUBLISH_TO";

/// The transport(s) of one destination kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Sqs,
    Kafka,
    Both,
}

impl Transport {
    pub const VALUES: [&'static str; 3] = ["sqs", "kafka", "both"];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sqs => "sqs",
            Transport::Kafka => "kafka",
            Transport::Both => "both",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "sqs" => Some(Transport::Sqs),
            "kafka" => Some(Transport::Kafka),
            "both" => Some(Transport::Both),
            _ => None,
        }
    }

    pub fn uses_sqs(self) -> bool {
        matches!(self, Transport::Sqs | Transport::Both)
    }

    pub fn uses_kafka(self) -> bool {
        matches!(self, Transport::Kafka | Transport::Both)
    }
}

/// The transport of each destination kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routes {
    pub events: Transport,
    pub notifications: Transport,
}

impl Routes {
    /// `RAS_EVENTS_PUBLISH_TO` and `RAS_NOTIFICATIONS_PUBLISH_TO`, both required.
    pub fn from_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let read = |name: &'static str| -> Result<Transport, ConfigError> {
            let value = env.required(name)?;
            Transport::parse(&value).ok_or_else(|| ConfigError::Invalid {
                name,
                value,
                reason: format!("expected one of {}", Transport::VALUES.join(", ")),
            })
        };
        Ok(Routes {
            events: read(EVENTS_PUBLISH_TO_ENV)?,
            notifications: read(NOTIFICATIONS_PUBLISH_TO_ENV)?,
        })
    }

    pub fn transport(&self, destination: Destination) -> Transport {
        match destination {
            Destination::Events => self.events,
            Destination::Notifications => self.notifications,
        }
    }

    /// Whether any destination goes to Kafka (the relay then needs the Kafka settings).
    pub fn uses_kafka(&self) -> bool {
        self.events.uses_kafka() || self.notifications.uses_kafka()
    }

    pub fn uses_sqs(&self) -> bool {
        self.events.uses_sqs() || self.notifications.uses_sqs()
    }
}

/// The publisher port over SQS and Kafka, routed per destination (module documentation).
#[derive(Debug)]
pub struct RoutedPublisher<S, K> {
    routes: Routes,
    sqs: S,
    kafka: Option<K>,
}

/// A route needs Kafka but no Kafka publisher was given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{destination} messages are routed to Kafka, but no Kafka publisher is configured")]
pub struct MissingKafka {
    pub destination: &'static str,
}

/// Reported at init like a missing variable (the Kafka settings are what is missing).
impl From<MissingKafka> for lambda_runtime::Diagnostic {
    fn from(error: MissingKafka) -> lambda_runtime::Diagnostic {
        crate::runtime::diagnostic("Config.MissingVariable", &error)
    }
}

impl<S, K> RoutedPublisher<S, K> {
    /// `kafka` must be given when a route uses Kafka.
    pub fn new(routes: Routes, sqs: S, kafka: Option<K>) -> Result<Self, MissingKafka> {
        if kafka.is_none() {
            for destination in [Destination::Events, Destination::Notifications] {
                if routes.transport(destination).uses_kafka() {
                    return Err(MissingKafka {
                        destination: destination.as_str(),
                    });
                }
            }
        }
        Ok(RoutedPublisher { routes, sqs, kafka })
    }

    pub fn routes(&self) -> Routes {
        self.routes
    }
}

impl<S: MessagePublisher, K: MessagePublisher> RoutedPublisher<S, K> {
    async fn kafka_send(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        match &self.kafka {
            Some(kafka) => kafka.send_batch(destination, messages).await,
            // `new` refuses a Kafka route without a Kafka publisher.
            None => Err(PublishError::Transient(
                MissingKafka {
                    destination: destination.as_str(),
                }
                .to_string(),
            )),
        }
    }
}

impl<S: MessagePublisher, K: MessagePublisher> MessagePublisher for RoutedPublisher<S, K> {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        match self.routes.transport(destination) {
            Transport::Sqs => self.sqs.send_batch(destination, messages).await,
            Transport::Kafka => self.kafka_send(destination, messages).await,
            Transport::Both => {
                let (sqs, kafka) = tokio::join!(
                    self.sqs.send_batch(destination, messages),
                    self.kafka_send(destination, messages)
                );
                combine(messages.len(), sqs, kafka)
            }
        }
    }
}

/// One result per message from the two transports' results: `Sent` only when both sent it.
/// A whole-call failure of either is the call's failure (nothing can be assumed sent there).
fn combine(
    count: usize,
    sqs: Result<Vec<SendResult>, PublishError>,
    kafka: Result<Vec<SendResult>, PublishError>,
) -> Result<Vec<SendResult>, PublishError> {
    let (sqs, kafka) = match (sqs, kafka) {
        (Ok(sqs), Ok(kafka)) => (sqs, kafka),
        (Err(e), Ok(_)) => return Err(labelled("sqs", e)),
        (Ok(_), Err(e)) => return Err(labelled("kafka", e)),
        // A permanent failure of either side wins: retrying would not help it.
        (Err(a), Err(b)) => {
            return Err(if b.is_retryable() {
                labelled("sqs", a)
            } else {
                labelled("kafka", b)
            })
        }
    };
    if sqs.len() != count || kafka.len() != count {
        return Err(PublishError::Transient(format!(
            "a transport answered {} (sqs) and {} (kafka) results for {count} messages",
            sqs.len(),
            kafka.len()
        )));
    }
    Ok(sqs.into_iter().zip(kafka).map(both).collect())
}

fn labelled(transport: &str, error: PublishError) -> PublishError {
    match error {
        PublishError::Transient(message) => {
            PublishError::Transient(format!("{transport}: {message}"))
        }
        PublishError::Permanent { kind, message } => PublishError::Permanent {
            kind,
            message: format!("{transport}: {message}"),
        },
    }
}

/// The result of one message sent to both transports. Retryable beats permanent: while one
/// side may still take it later, the record is handed back rather than parked (a parked
/// message is re-published to both, so either order ends with both having it).
fn both((sqs, kafka): (SendResult, SendResult)) -> SendResult {
    let tag = |transport: &str, result: SendResult| match result {
        SendResult::Sent => SendResult::Sent,
        SendResult::Failed {
            retryable,
            code,
            message,
        } => SendResult::Failed {
            retryable,
            code,
            message: format!("{transport}: {message}"),
        },
    };
    let (sqs, kafka) = (tag("sqs", sqs), tag("kafka", kafka));
    match (&sqs, &kafka) {
        (SendResult::Sent, SendResult::Sent) => SendResult::Sent,
        (
            SendResult::Failed {
                retryable: true, ..
            },
            _,
        ) => sqs,
        (
            _,
            SendResult::Failed {
                retryable: true, ..
            },
        ) => kafka,
        (SendResult::Failed { .. }, _) => sqs,
        (_, SendResult::Failed { .. }) => kafka,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::testing::InMemoryPublisher;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn env(pairs: &[(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Env::new(move |name: &str| map.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn routes_from_the_environment() {
        let routes = Routes::from_config(&env(&[
            (EVENTS_PUBLISH_TO_ENV, "kafka"),
            (NOTIFICATIONS_PUBLISH_TO_ENV, " BOTH "),
        ]))
        .unwrap();
        assert_eq!(routes.events, Transport::Kafka);
        assert_eq!(routes.notifications, Transport::Both);
        assert!(routes.uses_kafka() && routes.uses_sqs());
        let sqs_only = Routes::from_config(&env(&[
            (EVENTS_PUBLISH_TO_ENV, "sqs"),
            (NOTIFICATIONS_PUBLISH_TO_ENV, "sqs"),
        ]))
        .unwrap();
        assert!(!sqs_only.uses_kafka());
    }

    #[test]
    fn each_variable_is_required_and_checked() {
        for name in [EVENTS_PUBLISH_TO_ENV, NOTIFICATIONS_PUBLISH_TO_ENV] {
            let other = if name == EVENTS_PUBLISH_TO_ENV {
                NOTIFICATIONS_PUBLISH_TO_ENV
            } else {
                EVENTS_PUBLISH_TO_ENV
            };
            let missing = Routes::from_config(&env(&[(other, "sqs")])).unwrap_err();
            assert_eq!(missing, ConfigError::Missing(name));
            let invalid = Routes::from_config(&env(&[(other, "sqs"), (name, "sns")])).unwrap_err();
            assert!(
                matches!(&invalid, ConfigError::Invalid { name: n, .. } if *n == name),
                "{invalid}"
            );
            assert!(
                invalid.to_string().contains("sqs, kafka, both"),
                "{invalid}"
            );
        }
    }

    /// Answers each call with the next scripted answer (`Sent` for all once the script ends).
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<Vec<Result<Vec<SendResult>, PublishError>>>,
        calls: Mutex<usize>,
    }

    impl Scripted {
        fn answering(answers: Vec<Result<Vec<SendResult>, PublishError>>) -> Self {
            Scripted {
                answers: Mutex::new(answers),
                calls: Mutex::new(0),
            }
        }
        fn calls(&self) -> usize {
            *self.calls.lock().unwrap()
        }
    }

    impl MessagePublisher for Scripted {
        async fn send_batch(
            &self,
            _: Destination,
            messages: &[OutboxMessage],
        ) -> Result<Vec<SendResult>, PublishError> {
            *self.calls.lock().unwrap() += 1;
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                Ok(vec![SendResult::Sent; messages.len()])
            } else {
                answers.remove(0)
            }
        }
    }

    fn message(key: &str) -> OutboxMessage {
        OutboxMessage {
            event_id: uuid::Uuid::new_v4(),
            topic: ras_domain::contracts::PublishedTopic::BatchResultsReady,
            ordering_key: key.into(),
            correlation_id: uuid::Uuid::new_v4(),
            created_at: ras_domain::contracts::Timestamp::now(),
            sequence: 0,
            body: format!("{{\"key\":\"{key}\"}}"),
        }
    }

    fn failed(retryable: bool, code: &str) -> SendResult {
        SendResult::Failed {
            retryable,
            code: code.into(),
            message: "refused".into(),
        }
    }

    #[tokio::test]
    async fn each_destination_goes_where_its_route_says() {
        let routes = Routes {
            events: Transport::Kafka,
            notifications: Transport::Sqs,
        };
        let publisher = RoutedPublisher::new(
            routes,
            InMemoryPublisher::new(),
            Some(InMemoryPublisher::new()),
        )
        .unwrap();
        let m = [message("b1")];
        publisher.send_batch(Destination::Events, &m).await.unwrap();
        publisher
            .send_batch(Destination::Notifications, &m)
            .await
            .unwrap();
        assert_eq!(
            publisher.sqs.received(),
            vec![(Destination::Notifications, m[0].clone())]
        );
        assert_eq!(
            publisher.kafka.as_ref().unwrap().received(),
            vec![(Destination::Events, m[0].clone())]
        );
    }

    #[test]
    fn a_kafka_route_needs_a_kafka_publisher() {
        let routes = Routes {
            events: Transport::Sqs,
            notifications: Transport::Both,
        };
        let err =
            RoutedPublisher::<_, InMemoryPublisher>::new(routes, InMemoryPublisher::new(), None)
                .unwrap_err();
        assert_eq!(err.destination, "notifications");
        let sqs_only = Routes {
            events: Transport::Sqs,
            notifications: Transport::Sqs,
        };
        assert!(RoutedPublisher::<_, InMemoryPublisher>::new(
            sqs_only,
            InMemoryPublisher::new(),
            None
        )
        .is_ok());
    }

    #[tokio::test]
    async fn both_sends_to_both_and_counts_sent_only_when_both_sent() {
        let routes = Routes {
            events: Transport::Both,
            notifications: Transport::Both,
        };
        let m = [message("a"), message("b"), message("c"), message("d")];
        let sqs = Scripted::answering(vec![Ok(vec![
            SendResult::Sent,
            failed(true, "Throttled"),
            SendResult::Sent,
            failed(false, "InvalidMessageContents"),
        ])]);
        let kafka = Scripted::answering(vec![Ok(vec![
            SendResult::Sent,
            SendResult::Sent,
            failed(true, "Timeout"),
            failed(true, "NotLeader"),
        ])]);
        let publisher = RoutedPublisher::new(routes, sqs, Some(kafka)).unwrap();
        let results = publisher.send_batch(Destination::Events, &m).await.unwrap();
        assert_eq!(results[0], SendResult::Sent);
        assert!(
            matches!(&results[1], SendResult::Failed { retryable: true, code, message } if code == "Throttled" && message.starts_with("sqs: "))
        );
        assert!(
            matches!(&results[2], SendResult::Failed { retryable: true, code, message } if code == "Timeout" && message.starts_with("kafka: "))
        );
        // Retryable on one side beats permanent on the other: handed back, not parked.
        assert!(
            matches!(&results[3], SendResult::Failed { retryable: true, code, .. } if code == "NotLeader")
        );
        assert_eq!(publisher.sqs.calls(), 1);
        assert_eq!(publisher.kafka.as_ref().unwrap().calls(), 1);
    }

    #[tokio::test]
    async fn both_parks_what_one_side_refuses_for_good() {
        let routes = Routes {
            events: Transport::Both,
            notifications: Transport::Sqs,
        };
        let sqs = Scripted::default();
        let kafka = Scripted::answering(vec![Ok(vec![failed(false, "MessageTooLarge")])]);
        let publisher = RoutedPublisher::new(routes, sqs, Some(kafka)).unwrap();
        let results = publisher
            .send_batch(Destination::Events, &[message("a")])
            .await
            .unwrap();
        assert!(
            matches!(&results[0], SendResult::Failed { retryable: false, code, .. } if code == "MessageTooLarge")
        );
    }

    #[tokio::test]
    async fn both_fails_the_call_when_either_call_fails() {
        let routes = Routes {
            events: Transport::Both,
            notifications: Transport::Both,
        };
        let m = [message("a")];
        let publisher = RoutedPublisher::new(
            routes,
            Scripted::default(),
            Some(Scripted::answering(vec![Err(PublishError::Transient(
                "connection refused".into(),
            ))])),
        )
        .unwrap();
        let err = publisher
            .send_batch(Destination::Events, &m)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PublishError::Transient("kafka: connection refused".into())
        );

        let publisher = RoutedPublisher::new(
            routes,
            Scripted::answering(vec![Err(PublishError::Permanent {
                kind: "InvalidQueue",
                message: "no such queue".into(),
            })]),
            Some(Scripted::answering(vec![Err(PublishError::Transient(
                "down".into(),
            ))])),
        )
        .unwrap();
        let err = publisher
            .send_batch(Destination::Events, &m)
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{err}");

        let publisher = RoutedPublisher::new(
            routes,
            Scripted::answering(vec![Ok(vec![])]),
            Some(Scripted::default()),
        )
        .unwrap();
        let err = publisher
            .send_batch(Destination::Events, &m)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
