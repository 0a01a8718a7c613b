//! Minimal relay-shaped Lambda with rskafka: config at init, connect on first invocation,
//! one keyed record per invocation to the topic named in the event.
use std::sync::Arc;

use fn_rskafka::{BoxError, Publisher, Settings};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Started as `…-lazytls` (a symlink, for the cold-start bench): defer the CA bundle load.
    let lazy = std::env::args().next().is_some_and(|a| a.ends_with("-lazytls"));
    let settings = Arc::new(Settings::from_env(lazy)?);
    let publisher: Arc<OnceCell<Publisher>> = Arc::new(OnceCell::new());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let settings = Arc::clone(&settings);
        let publisher = Arc::clone(&publisher);
        async move {
            let p = publisher.get_or_try_init(|| Publisher::connect(&settings)).await?;
            let e = &event.payload;
            let topic = e["topic"].as_str().ok_or("event.topic missing")?;
            let key = e["key"].as_str().unwrap_or("key");
            let value = e["value"].as_str().unwrap_or("{}");
            let (partition, offset) = p.produce(topic, key.as_bytes(), value.as_bytes()).await?;
            Ok::<Value, BoxError>(json!({"partition": partition, "offset": offset}))
        }
    }))
    .await
}
