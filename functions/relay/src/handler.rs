//! The relay handler: a DynamoDB stream event of the outbox table → SQS, and the partial
//! batch response that makes Lambda retry exactly from the first unsent record.

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::clock::Clock;
use crate::dispatch::{dispatch, Delivery, HoldReason, Outbound};
use crate::stream::{decode_event, lowest_unsent, response, EntryKind};
use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use ras_aws::telemetry::{MetricSet, Unit};
use ras_domain::ports::{MessageParking, MessagePublisher, ParkedMessage, PublishError};
use std::sync::Arc;
use std::time::Instant;
use tracing::{error, info, warn};

/// The relay: a publisher, the sandbox-wide circuit breaker, a clock, and where to park what
/// SQS refuses for good ([`Relay::with_parking`]; without it such messages stay unsent, as
/// for `ras-ops republish`). Build it once per sandbox; it holds no messages between
/// invocations.
pub struct Relay<P, C, K = NoParking> {
    publisher: P,
    breaker: Arc<CircuitBreaker>,
    clock: C,
    parking: Option<K>,
}

/// The parking type of a relay that parks nothing (never called: the relay's parking is
/// `None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoParking;

impl MessageParking for NoParking {
    async fn park(&self, _parked: &ParkedMessage) -> Result<(), PublishError> {
        Err(PublishError::Permanent {
            kind: "parking_disabled",
            message: "no parking queue".into(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Only failing the whole batch is safe: Lambda retries all of it.
    #[error("record {position} of the batch is unsent and has no SequenceNumber to report")]
    MissingSequenceNumber { position: usize },
}

impl RelayError {
    /// The `errorType` Lambda records for a failed invocation.
    pub fn error_type(&self) -> &'static str {
        match self {
            RelayError::MissingSequenceNumber { .. } => "Relay.MissingSequenceNumber",
        }
    }
}

/// The failed invocation as the Lambda runtime reports it (`errorType` `Relay.*`).
impl From<RelayError> for lambda_runtime::Diagnostic {
    fn from(error: RelayError) -> Self {
        ras_aws::runtime::diagnostic(error.error_type(), &error)
    }
}

/// What one invocation did.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayOutcome {
    /// What Lambda gets back.
    pub response: DynamoDbEventResponse,
    /// The checkpoint reported (lowest unsent sequence number), if any.
    pub checkpoint: Option<String>,
    pub records: usize,
    /// Non-insert records.
    pub ignored: usize,
    /// Inserts that cannot be decoded or routed (handed back, see `docs/relay.md`).
    pub poison: usize,
    /// Event ids acknowledged by SQS, in send order.
    pub published: Vec<String>,
    /// Messages SQS refuses for good, recorded in the parking queue (acknowledged).
    pub parked: usize,
    /// Messages SQS refuses for good that could not be parked (unsent).
    pub parking_failures: u32,
    /// Messages SQS failed (per entry or with the whole request), parking failures included.
    pub failed: usize,
    /// Messages not attempted (key stopped, breaker open, deadline).
    pub held: usize,
    pub breaker_rejected: bool,
    pub sqs_requests: u32,
    /// Outbox write → SQS acknowledgement, per published message.
    pub latencies_ms: Vec<f64>,
    pub breaker_state: BreakerState,
}

impl RelayOutcome {
    /// The invocation's EMF metrics (dimension `Function=relay`).
    pub fn metrics(&self) -> MetricSet {
        let mut m = MetricSet::new(&[("Function", "relay")]);
        m.count("RecordsReceived", self.records as u64)
            .count("MessagesPublished", self.published.len() as u64)
            .count("MessagesFailed", self.failed as u64)
            .count("MessagesParked", self.parked as u64)
            .count("ParkingFailures", u64::from(self.parking_failures))
            .count("MessagesHeld", self.held as u64)
            .count("PoisonRecords", self.poison as u64)
            .count("SqsRequests", u64::from(self.sqs_requests))
            .count("BreakerRejections", u64::from(self.breaker_rejected))
            .record(
                "CircuitState",
                Unit::None,
                self.breaker_state.metric_value() as f64,
            );
        for latency in &self.latencies_ms {
            m.record("PublishLatencyMs", Unit::Milliseconds, *latency);
        }
        m
    }

    /// Records handed back to Lambda (everything not acknowledged and not ignored).
    pub fn unsent(&self) -> usize {
        self.failed + self.held + self.poison
    }
}

impl<P: MessagePublisher, C: Clock> Relay<P, C, NoParking> {
    /// A relay that parks nothing: see [`Relay::with_parking`].
    pub fn new(publisher: P, breaker: Arc<CircuitBreaker>, clock: C) -> Self {
        Relay {
            publisher,
            breaker,
            clock,
            parking: None,
        }
    }

    /// Park messages SQS refuses for good in `parking` and acknowledge them, so that one such
    /// message does not hold its shard (`docs/relay.md`, "Parking").
    pub fn with_parking<K: MessageParking>(self, parking: K) -> Relay<P, C, K> {
        Relay {
            publisher: self.publisher,
            breaker: self.breaker,
            clock: self.clock,
            parking: Some(parking),
        }
    }
}

impl<P: MessagePublisher, C: Clock, K: MessageParking> Relay<P, C, K> {
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    pub fn parking(&self) -> Option<&K> {
        self.parking.as_ref()
    }

    /// Relay one stream event. `deadline`: no SQS request starts after it (the remaining
    /// records are handed back). `Err` fails the whole batch.
    pub async fn handle(
        &self,
        event: &Event,
        deadline: Option<Instant>,
    ) -> Result<RelayOutcome, RelayError> {
        self.handle_event(event.clone(), deadline).await
    }

    /// [`Relay::handle`] consuming the event (what the function does: no copy of the images).
    pub async fn handle_event(
        &self,
        event: Event,
        deadline: Option<Instant>,
    ) -> Result<RelayOutcome, RelayError> {
        let entries = decode_event(event);
        let records = entries.len();
        let mut outbound: Vec<Outbound> = Vec::with_capacity(records);
        // (position, sequence number) of each outbound message, and of every unsent record.
        let mut outbound_at: Vec<(usize, Option<String>)> = Vec::with_capacity(records);
        let mut unsent: Vec<(usize, Option<String>)> = Vec::new();
        let (mut ignored, mut poison) = (0, 0);
        for entry in entries {
            match entry.kind {
                EntryKind::Outbox(out) => {
                    outbound.push(*out);
                    outbound_at.push((entry.position, entry.sequence_number));
                }
                EntryKind::Ignored { .. } => ignored += 1,
                EntryKind::Poison { event_id, reason } => {
                    error!(position = entry.position, sequence_number = ?entry.sequence_number, event_id = ?event_id,
                        %reason, "outbox record cannot be published; handing it back to Lambda");
                    poison += 1;
                    unsent.push((entry.position, entry.sequence_number));
                }
            }
        }

        let report = dispatch(
            &self.publisher,
            self.parking.as_ref(),
            &self.breaker,
            &self.clock,
            &mut outbound,
            deadline,
        )
        .await;

        let now = self.clock.wall();
        let mut published = Vec::new();
        let mut latencies_ms = Vec::new();
        let (mut failed, mut held, mut deadline_held, mut parked) = (0, 0, 0, 0);
        for ((delivery, item), at) in report.deliveries.iter().zip(&outbound).zip(outbound_at) {
            match delivery {
                Delivery::Sent => {
                    published.push(item.message.event_id.to_string());
                    let created = item.message.created_at;
                    latencies_ms
                        .push((now.unix_micros() - created.unix_micros()).max(0) as f64 / 1e3);
                    continue;
                }
                Delivery::Parked { .. } => {
                    parked += 1;
                    continue;
                }
                Delivery::Failed { .. } => failed += 1,
                Delivery::Held(reason) => {
                    held += 1;
                    if *reason == HoldReason::Deadline {
                        deadline_held += 1;
                    }
                }
            }
            unsent.push(at);
        }
        if deadline_held > 0 {
            warn!(
                held = deadline_held,
                "invocation deadline near: remaining records handed back to Lambda"
            );
        }

        let checkpoint =
            lowest_unsent(unsent.iter().map(|(p, s)| (*p, s.as_deref()))).map_err(|position| {
                error!(
                    position,
                    "unsent record without SequenceNumber: failing the whole batch"
                );
                RelayError::MissingSequenceNumber { position }
            })?;
        let outcome = RelayOutcome {
            response: response(checkpoint.clone()),
            checkpoint,
            records,
            ignored,
            poison,
            published,
            parked,
            parking_failures: report.parking_failures,
            failed,
            held,
            breaker_rejected: report.breaker_rejected,
            sqs_requests: report.requests,
            latencies_ms,
            breaker_state: self.breaker.state(self.clock.instant()),
        };
        info!(
            records = outcome.records,
            published = outcome.published.len(),
            failed = outcome.failed,
            parked = outcome.parked,
            parking_failures = outcome.parking_failures,
            held = outcome.held,
            poison = outcome.poison,
            ignored = outcome.ignored,
            sqs_requests = outcome.sqs_requests,
            circuit = outcome.breaker_state.as_str(),
            checkpoint = outcome.checkpoint.as_deref().unwrap_or("none"),
            "relayed stream batch"
        );
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_invocation_has_a_relay_error_type() {
        let diagnostic =
            lambda_runtime::Diagnostic::from(RelayError::MissingSequenceNumber { position: 3 });
        assert_eq!(diagnostic.error_type, "Relay.MissingSequenceNumber");
        assert_eq!(
            diagnostic.error_message,
            "record 3 of the batch is unsent and has no SequenceNumber to report"
        );
    }
}
