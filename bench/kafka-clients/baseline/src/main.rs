//! The smallest `lambda_runtime` function: returns its event. The baseline the functions'
//! cold start, package size and peak RSS are compared with (`scripts/bench-startup.sh`).

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<serde_json::Value, Error>(event.payload)
        },
    ))
    .await
}
