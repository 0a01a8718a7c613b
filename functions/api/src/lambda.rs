//! Invoking the router the way the Lambda runtime does: an API Gateway (HTTP API, payload 2.0)
//! event → `lambda_http`'s adapter → the router → the API Gateway response. `main` runs
//! [`handle_event`] on `lambda_runtime`; [`invoke`] lets tests and tools replay the request
//! files of `events/api/` without the Runtime API.
//!
//! An invocation fails only when its event is no HTTP request at all ([`InvokeError`], reported
//! to the runtime as a `Diagnostic` with an `Api.*` `errorType`); every request, even a
//! malformed one, gets an HTTP response.

use crate::errors::ApiError;
use axum::response::IntoResponse as _;
use axum::Router;
use lambda_http::lambda_runtime::Diagnostic;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, IntoResponse, LambdaEvent, RequestExt, Service, TransformResponse};
use serde_json::Value;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("not an API Gateway / ALB request event: {0}")]
    InvalidEvent(#[source] serde_json::Error),
    #[error("cannot serialise the response event: {0}")]
    Response(#[source] serde_json::Error),
}

impl InvokeError {
    /// The `errorType` Lambda records for the failed invocation.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvokeError::InvalidEvent(_) => "Api.InvalidEvent",
            InvokeError::Response(_) => "Api.InvalidResponse",
        }
    }
}

impl From<InvokeError> for Diagnostic {
    fn from(error: InvokeError) -> Diagnostic {
        ras_aws::runtime::diagnostic(error.error_type(), &error)
    }
}

/// One invocation of the Lambda runtime: the event as JSON → [`handle`], or
/// [`InvokeError::InvalidEvent`] when it is not a request event.
pub async fn handle_event(
    router: Router,
    event: LambdaEvent<Value>,
) -> Result<impl serde::Serialize + Send, InvokeError> {
    let LambdaEvent { payload, context } = event;
    let request: LambdaRequest =
        serde_json::from_value(payload).map_err(InvokeError::InvalidEvent)?;
    match handle(router, LambdaEvent::new(request, context)).await {
        Ok(response) => Ok(response),
        Err(never) => match never {},
    }
}

/// Handle one Lambda event (JSON text) and return the response event as JSON.
pub async fn invoke(router: Router, event: &str) -> Result<Value, InvokeError> {
    let event: Value = serde_json::from_str(event).map_err(InvokeError::InvalidEvent)?;
    let response = handle_event(router, LambdaEvent::new(event, Context::default())).await?;
    serde_json::to_value(response).map_err(InvokeError::Response)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_that_is_no_request_fails_with_an_api_error_type() {
        let error = invoke(Router::new(), "42").await.unwrap_err();
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "Api.InvalidEvent");
        assert!(
            diagnostic
                .error_message
                .starts_with("not an API Gateway / ALB request event: "),
            "{}",
            diagnostic.error_message
        );
    }
}
