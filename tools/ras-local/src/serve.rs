//! The query API (`api::router`, the function's own router) over the pipeline's tables, as a
//! plain HTTP server on localhost, and `curl` lines for every route with the run's real ids.

use crate::pipeline::PipelineReport;
use api::{router, ApiConfig, ApiState, MetricsSink};
use aws_config::SdkConfig;
use ras_aws::config::StoreConfig;
use ras_aws::dynamo::DynamoStore;
use std::sync::Arc;

/// The internal API key of the local API (never a deployed one).
pub const LOCAL_API_KEY: &str = "local-internal-api-key";
/// An `X-Service-ID` the API allows by default.
pub const LOCAL_SERVICE_ID: &str = "api-gateway-service";
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:4003";

/// The API's router over `tables` with `api_key` (request metrics discarded).
pub fn api_router(
    sdk: &SdkConfig,
    tables: &StoreConfig,
    api_key: &str,
) -> Result<axum::Router, api::ConfigError> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables.clone());
    let mut config = ApiConfig::with_key(api_key);
    config.environment = "local".to_string();
    let state = ApiState::new(Arc::new(store), &config, None, MetricsSink::Discard)?;
    Ok(router(state))
}

/// One example request.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub what: String,
    /// Path and query, e.g. `/internal/v1/batches/<id>/status`.
    pub path: String,
    pub authenticated: bool,
}

impl Example {
    pub fn curl(&self, base_url: &str, api_key: &str, service_id: &str) -> String {
        if self.authenticated {
            format!(
                "curl -s -H 'X-Internal-API-Key: {api_key}' -H 'X-Service-ID: {service_id}' '{base_url}{}'",
                self.path
            )
        } else {
            format!("curl -s '{base_url}{}'", self.path)
        }
    }
}

/// Requests for every route, with the ids of the run: each registered batch's status, each
/// teacher's batches, the assessments of each batch with CJ results and each CJ job, health,
/// the OpenAPI document.
pub fn examples(report: &PipelineReport) -> Vec<Example> {
    let mut out = Vec::new();
    let mut users: Vec<&str> = Vec::new();
    for batch in report.batches.iter().filter(|b| b.registered) {
        out.push(Example {
            what: format!(
                "status of batch {} ({})",
                batch.batch_id,
                batch.overall_status.as_deref().unwrap_or("?")
            ),
            path: format!("/internal/v1/batches/{}/status", batch.batch_id),
            authenticated: true,
        });
        if let Some(user) = batch.user_id.as_deref() {
            if !users.contains(&user) {
                users.push(user);
            }
        }
    }
    for user in users {
        out.push(Example {
            what: format!("batches of {user}, newest first"),
            path: format!("/internal/v1/batches/user/{user}?limit=20&offset=0"),
            authenticated: true,
        });
    }
    for batch in report.batches.iter().filter(|b| !b.cj_jobs.is_empty()) {
        out.push(Example {
            what: format!("CJ assessments of batch {}", batch.batch_id),
            path: format!("/internal/v1/batches/{}/assessments", batch.batch_id),
            authenticated: true,
        });
        for job in &batch.cj_jobs {
            out.push(Example {
                what: format!("CJ job {job}, every essay"),
                path: format!("/internal/v1/assessments/{job}"),
                authenticated: true,
            });
        }
    }
    out.push(Example {
        what: "health (no authentication)".into(),
        path: "/healthz".into(),
        authenticated: false,
    });
    out.push(Example {
        what: "the OpenAPI document (no authentication)".into(),
        path: "/internal/v1/openapi.json".into(),
        authenticated: false,
    });
    out
}
