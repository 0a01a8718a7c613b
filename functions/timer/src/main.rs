//! Lambda bootstrap of the facts timer: configuration, the DynamoDB client and the runtime
//! loop. Invoked by an EventBridge Scheduler schedule (`template.yaml`, `TimerFunction`); the
//! event's content is only logged. The work is done by [`timer::handle_event`].

use lambda_runtime::{service_fn, Error, LambdaEvent};
use ras_aws::dynamo::DynamoStore;
use ras_domain::contracts::Timestamp;
use std::sync::Arc;
use timer::config::TimerConfig;

/// mimalloc rather than glibc's malloc: the hot paths build and drop many small maps and
/// strings (DynamoDB items, JSON); see docs/benchmarks.md, "Issue 15 — CPU per record".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ras_aws::telemetry::init_tracing();
    let config = match TimerConfig::from_env() {
        Ok(config) => config,
        Err(err) => return Err(ras_aws::runtime::init_failed("timer", err).await.into()),
    };
    // Explicit SDK retries (standard, 3 attempts): the timer has no retry loop of its own and
    // the next run retries what failed (timer::sdk).
    let sdk = timer::sdk::settings().load().await;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.store.clone(),
    ));
    let settings = Arc::new(config.settings.clone());
    tracing::info!(
        state_table = %config.store.state_table,
        grace_seconds = settings.grace_seconds,
        "timer ready"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let store = Arc::clone(&store);
        let settings = Arc::clone(&settings);
        async move {
            let deadline = ras_aws::runtime::deadline_of(event.context.deadline());
            let report = timer::handle_event(
                store.as_ref(),
                &event.payload,
                Timestamp::now(),
                &settings,
                deadline,
            )
            .await
            .map_err(timer::TimerError::from)?; // `Timer.Index*`
            report.metrics().flush();
            // Failed batches are a function error (the Errors alarm), `Timer.BatchesFailed`;
            // the next run retries them.
            report.into_response()
        }
    }))
    .await
}
