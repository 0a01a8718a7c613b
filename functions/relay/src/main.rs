//! The relay Lambda: configuration and clients built once per sandbox, then the runtime loop.

// The handler future over the routed publisher (SQS + Kafka) nests deeper than the default 128.
#![recursion_limit = "256"]

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use ras_aws::kafka_publisher::KafkaPublisher;
use ras_aws::parking::SqsParking;
use ras_aws::routing::RoutedPublisher;
use ras_aws::sqs_publisher::SqsPublisher;
use ras_aws::telemetry;
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::config::RelayConfig;
use relay::{Relay, RelayError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spare time after the last request may have started: serialising the response.
const DEADLINE_SPARE: Duration = Duration::from_millis(500);

/// mimalloc rather than glibc's malloc: the hot paths build and drop many small maps and
/// strings (DynamoDB items, JSON); see docs/benchmarks.md, "Issue 15 — CPU per record".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let config = match RelayConfig::from_env() {
        Ok(config) => config,
        Err(err) => return Err(ras_aws::runtime::init_failed("relay", err).await.into()),
    };
    // Explicit SDK retries (standard, 3 attempts) inside the operation timeout: the relay has
    // no request retry loop of its own; Lambda redelivers what is handed back (relay::sdk).
    let sdk = relay::sdk::settings(config.sqs_timeout).load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sqs_publisher = SqsPublisher::new(sqs.clone(), config.queues.clone());
    // No I/O here: the Kafka connection is opened by the first publish and then reused.
    // Signed with the same credentials provider (and cache) as the SDK clients.
    let kafka = config
        .kafka
        .clone()
        .map(|settings| match sdk.credentials_provider() {
            Some(credentials) => KafkaPublisher::with_credentials(settings, credentials),
            None => KafkaPublisher::new(settings),
        });
    let publisher = match RoutedPublisher::new(config.routes, sqs_publisher, kafka) {
        Ok(publisher) => publisher,
        Err(err) => return Err(ras_aws::runtime::init_failed("relay", err).await.into()),
    };
    let parking = SqsParking::new(sqs, config.parked_queue_url.clone());
    // One breaker per sandbox: it outlives invocations, it never holds messages.
    let breaker = Arc::new(CircuitBreaker::new(config.breaker));
    let relay = Arc::new(Relay::new(publisher, breaker, SystemClock).with_parking(parking));
    let margin = config.request_timeout() + DEADLINE_SPARE;
    tracing::info!(
        events_to = config.routes.events.as_str(),
        notifications_to = config.routes.notifications.as_str(),
        kafka_bootstrap = ?config.kafka.as_ref().map(|k| &k.bootstrap),
        events_queue = %config.queues.events,
        notifications_queue = %config.queues.notifications,
        parked_queue = %config.parked_queue_url,
        breaker_failures = config.breaker.failure_threshold,
        breaker_open_seconds = config.breaker.open_for.as_secs(),
        "relay initialised"
    );

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let relay = Arc::clone(&relay);
        async move {
            let deadline = request_deadline(event.context.deadline, margin);
            // A failure is reported with a `Relay.*` errorType (RelayError → Diagnostic).
            let outcome = relay.handle_event(event.payload, deadline).await?;
            outcome.metrics().flush();
            Ok::<DynamoDbEventResponse, RelayError>(outcome.response)
        }
    }))
    .await
}

/// The last instant a request may start: the invocation deadline minus `margin`.
fn request_deadline(deadline_ms: u64, margin: Duration) -> Option<Instant> {
    let deadline = ras_aws::runtime::deadline_instant(deadline_ms)?;
    let now = Instant::now();
    Some(
        now + deadline
            .saturating_duration_since(now)
            .saturating_sub(margin),
    )
}
