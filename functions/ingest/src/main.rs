//! Lambda bootstrap of the ingest function: configuration, AWS clients and the runtime loop.
//! The work is done by [`ingest::handle_until`].

use ingest::config::IngestConfig;
use ingest::kafka::parse_event;
use ingest::{handle_until, Deps, KafkaBatchResponse};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use ras_aws::dead_letter::SqsDeadLetterQueue;
use ras_aws::dynamo::DynamoStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ras_aws::telemetry::init_tracing();
    let config = match IngestConfig::from_env() {
        Ok(config) => config,
        Err(err) => return Err(ras_aws::runtime::init_failed("ingest", err).await.into()),
    };
    // Explicit SDK retries: none (one HTTP attempt per call); the handler's loop owns
    // transient failures (ingest::sdk, docs/ingest.md "Retries").
    let sdk = ingest::sdk::settings().load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.store.clone());
    let dead_letters = SqsDeadLetterQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        config.dead_letter_queue_url.clone(),
    )
    .with_max_message_bytes(config.dead_letter_max_message_bytes);
    let deps = Arc::new(Deps::new(store, dead_letters).with_settings(config.settings.clone()));
    tracing::info!(
        state_table = %config.store.state_table,
        outbox_table = %config.store.outbox_table,
        dead_letter_queue = %config.dead_letter_queue_url,
        partition_concurrency = config.settings.partition_concurrency,
        "ingest ready"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = Arc::clone(&deps);
        async move {
            let deadline = ras_aws::runtime::deadline_of(event.context.deadline());
            // Not a Kafka event at all: fail the invocation (Lambda retries it), drop nothing.
            let kafka = parse_event(event.payload).map_err(NotAnMskEvent)?;
            Ok::<KafkaBatchResponse, NotAnMskEvent>(handle_until(&deps, kafka, deadline).await)
        }
    }))
    .await
}

/// An invocation whose payload is not an MSK event at all: it fails whole, nothing is dropped.
#[derive(Debug, thiserror::Error)]
#[error("not an MSK event: {0}")]
struct NotAnMskEvent(serde_json::Error);

impl From<NotAnMskEvent> for Diagnostic {
    fn from(error: NotAnMskEvent) -> Diagnostic {
        ras_aws::runtime::diagnostic("Ingest.NotAnMskEvent", &error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_that_is_not_an_msk_event_has_its_own_error_type() {
        let error = parse_event(serde_json::json!({"records": 7}))
            .map_err(NotAnMskEvent)
            .unwrap_err();
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "Ingest.NotAnMskEvent");
        assert!(
            diagnostic.error_message.starts_with("not an MSK event: "),
            "{}",
            diagnostic.error_message
        );
    }
}
