//! Minimal relay-shaped Lambda with rdkafka: config at init, producer created on first
//! invocation, one keyed record per invocation to the topic named in the event.
use std::sync::Arc;

use fn_rdkafka::{connect, produce, settings, BoxError, MskContext};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Arc::new(settings());
    let producer: Arc<OnceCell<FutureProducer<MskContext>>> = Arc::new(OnceCell::new());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let config = Arc::clone(&config);
        let producer = Arc::clone(&producer);
        async move {
            let p = producer.get_or_try_init(|| async { connect(&config) }).await?;
            let e = &event.payload;
            let topic = e["topic"].as_str().ok_or("event.topic missing")?;
            let key = e["key"].as_str().unwrap_or("key");
            let value = e["value"].as_str().unwrap_or("{}");
            let (partition, offset) = produce(p, topic, key.as_bytes(), value.as_bytes()).await?;
            Ok::<Value, BoxError>(json!({"partition": partition, "offset": offset}))
        }
    }))
    .await
}
