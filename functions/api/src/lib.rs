//! The Result Aggregator's query API (SPEC §5): an axum router that runs on AWS Lambda behind an
//! API Gateway HTTP API (`lambda_http`) or as a plain HTTP server on localhost.
//!
//! * [`routes`] — the handlers, generic over the read port [`BatchReader`].
//! * [`batch_status`] / [`assessments`] — response shapes (field order = wire order) and their
//!   projection from the batch aggregate.
//! * [`auth`] — `X-Internal-API-Key` + `X-Service-ID`; [`config`] — the function's settings.
//! * [`observe`] — correlation ids, JSON access logs, EMF metrics.
//! * [`openapi`] — the generated OpenAPI document; [`lambda`] — invoking like the runtime does.
//! * [`sdk`] — the AWS SDK clients' retry and timeout settings.

pub mod assessments;
pub mod auth;
pub mod batch_status;
pub mod config;
pub mod errors;
pub mod lambda;
pub mod list_query;
pub mod observe;
pub mod openapi;
pub mod routes;
pub mod sdk;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use axum::Router;
use ras_domain::ports::BatchReader;
use std::sync::Arc;

pub use auth::ServiceAuth;
pub use config::{ApiConfig, ConfigError, KeySource};
pub use observe::MetricsSink;
pub use routes::ApiState;

impl<R: BatchReader + 'static> ApiState<R> {
    /// State with a fixed key or an SSM parameter (`ssm` client needed for the latter).
    pub fn new(
        reader: Arc<R>,
        config: &ApiConfig,
        ssm: Option<aws_sdk_ssm::Client>,
        metrics: MetricsSink,
    ) -> Result<Self, ConfigError> {
        Ok(Self::with_auth(
            reader,
            config,
            ServiceAuth::new(config, ssm)?,
            metrics,
        ))
    }

    /// State with an authentication built by the caller (e.g. [`ServiceAuth::with_clock`]).
    pub fn with_auth(
        reader: Arc<R>,
        config: &ApiConfig,
        auth: ServiceAuth,
        metrics: MetricsSink,
    ) -> Self {
        ApiState {
            reader,
            auth: Arc::new(auth),
            metrics,
            environment: config.environment.as_str().into(),
            openapi: openapi::document_json().into_bytes().into(),
        }
    }
}

/// The whole API: open routes (`/healthz`, the OpenAPI document), authenticated `/internal/v1`
/// routes, JSON 404/405 fallbacks, and the observability layer around everything.
pub fn router<R: BatchReader + 'static>(state: ApiState<R>) -> Router {
    let authenticated = Router::new()
        .route(
            "/internal/v1/batches/{batch_id}/status",
            get(routes::get_batch_status::<R>),
        )
        .route(
            "/internal/v1/batches/user/{user_id}",
            get(routes::get_user_batches::<R>),
        )
        .route(
            "/internal/v1/batches/{batch_id}/assessments",
            get(routes::get_batch_assessments::<R>),
        )
        .route(
            "/internal/v1/assessments/{cj_assessment_job_id}",
            get(routes::get_assessment::<R>),
        )
        .route_layer(from_fn_with_state(
            state.auth.clone(),
            auth::require_service_auth,
        ));
    Router::new()
        .route("/healthz", get(routes::healthz::<R>))
        .route("/internal/v1/openapi.json", get(routes::openapi_json::<R>))
        .merge(authenticated)
        .route_layer(from_fn(observe::tag_route))
        .fallback(routes::fallback::<R>)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(from_fn_with_state(state.metrics.clone(), observe::observe))
        .with_state(state)
}
