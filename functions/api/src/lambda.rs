//! Invoking the router the way the Lambda runtime does: an API Gateway (HTTP API, payload 2.0)
//! event → `lambda_http`'s adapter → the router → the API Gateway response. `main` hands the
//! router to `lambda_http::run`, which uses the same adapter; this entry point lets tests and
//! tools replay the request files of `events/api/` without the Runtime API.

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("not an API Gateway / ALB request event: {0}")]
    InvalidEvent(#[from] serde_json::Error),
}

/// Handle one Lambda event (JSON text) and return the response event as JSON.
pub async fn invoke(router: Router, event: &str) -> Result<Value, InvokeError> {
    let request: LambdaRequest = serde_json::from_str(event)?;
    let mut adapter = Adapter::from(router);
    // The router is always ready and never fails (its error type is `Infallible`).
    let ready = std::future::poll_fn(|cx| adapter.poll_ready(cx)).await;
    let response = match ready {
        Ok(()) => {
            adapter
                .call(LambdaEvent::new(request, Context::default()))
                .await
        }
        Err(never) => match never {},
    };
    match response {
        Ok(response) => Ok(serde_json::to_value(response)?),
        Err(never) => match never {},
    }
}
