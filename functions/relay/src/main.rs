use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_target(false).without_time().init();
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Err::<Value, Error>("not implemented yet: this function's handler is built by a later issue".into())
    }))
    .await
}
