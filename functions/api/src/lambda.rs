//! Invoking the router the way the Lambda runtime does: an API Gateway (HTTP API, payload 2.0)
//! event → `lambda_http`'s adapter → the router → the API Gateway response. `main` hands the
//! router to `lambda_http::run`, which uses the same adapter; this entry point lets tests and
//! tools replay the request files of `events/api/` without the Runtime API.

use crate::errors::ApiError;
use axum::response::IntoResponse as _;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, IntoResponse, LambdaEvent, RequestExt, Service, TransformResponse};
use serde_json::Value;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("not an API Gateway / ALB request event: {0}")]
    InvalidEvent(#[from] serde_json::Error),
}

/// Handle one Lambda event (JSON text) and return the response event as JSON.
pub async fn invoke(router: Router, event: &str) -> Result<Value, InvokeError> {
    let request: LambdaRequest = serde_json::from_str(event)?;
    let response = match handle(router, LambdaEvent::new(request, Context::default())).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    Ok(serde_json::to_value(response)?)
}

/// One invocation, as `lambda_http`'s `Adapter` handles it (event → request → router →
/// response event), except that an event `lambda_http` cannot turn into a request is answered
/// 400 `Invalid request` instead of failing the invocation: `lambda_http` 1.3 panics when the
/// `Host` header (or, without one, `requestContext.domainName`) and the path do not form a URL,
/// e.g. a host `a:b` (found by the `api_lambda_event` fuzz target).
pub async fn handle(
    mut router: Router,
    event: LambdaEvent<LambdaRequest>,
) -> Result<impl serde::Serialize + Send, Infallible> {
    let LambdaEvent { payload, context } = event;
    let origin = payload.request_origin();
    let converted =
        std::panic::catch_unwind(AssertUnwindSafe(|| lambda_http::Request::from(payload)));
    let response = match converted {
        Ok(mut request) => {
            // As the adapter does: the X-Ray trace id of the invocation as a header.
            if let Some(trace) = context
                .xray_trace_id
                .as_deref()
                .and_then(|t| axum::http::HeaderValue::from_str(t).ok())
            {
                request.headers_mut().insert("x-amzn-trace-id", trace);
            }
            let request = request.with_lambda_context(context);
            match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        Err(_) => ApiError::InvalidRequest.into_response(),
    };
    TransformResponse::<'static, axum::response::Response, Infallible>::Response(
        origin,
        IntoResponse::into_response(response),
    )
    .await
}
