//! Lambda bootstrap of the ingest function: configuration, AWS clients and the runtime loop.
//! The work is done by [`ingest::handle_payload`].

use ingest::config::IngestConfig;
use ingest::{handle_payload, Deps};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use ras_aws::dead_letter::SqsDeadLetterQueue;
use ras_aws::dynamo::DynamoStore;
use std::sync::Arc;

/// mimalloc rather than glibc's malloc: the hot paths build and drop many small maps and
/// strings (DynamoDB items, JSON); see docs/benchmarks.md, "Issue 15 — CPU per record".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            handle_payload(&deps, event.payload, deadline).await
        }
    }))
    .await
}
