//! Lambda bootstrap of the facts timer: configuration, the DynamoDB client and the runtime
//! loop. Invoked by an EventBridge Scheduler schedule (`template.yaml`, `TimerFunction`); the
//! event's content is only logged. The work is done by [`timer::handle_event`].

use lambda_runtime::{service_fn, Error, LambdaEvent};
use ras_aws::dynamo::DynamoStore;
use ras_domain::contracts::Timestamp;
use std::sync::Arc;
use timer::config::TimerConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ras_aws::telemetry::init_tracing();
    let config = match TimerConfig::from_env() {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(error = %err, "invalid configuration");
            return Err(format!("timer: invalid configuration: {err}").into());
        }
    };
    // Explicit SDK retries (standard, 3 attempts): the timer has no retry loop of its own and
    // the next run retries what failed (timer::sdk).
    let sdk = timer::sdk::load_config().await;
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
            .await?;
            report.metrics().flush();
            if report.failed.is_empty() {
                Ok(serde_json::json!({
                    "overdue": report.overdue,
                    "emitted": report.emitted.len(),
                    "deferred": report.deferred,
                }))
            } else {
                // Reported as a function error (the Errors alarm); the next run retries them.
                Err(Error::from(format!(
                    "{} overdue batches failed: {:?}",
                    report.failed.len(),
                    report.failed
                )))
            }
        }
    }))
    .await
}
