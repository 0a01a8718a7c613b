//! The route handlers, generic over the read port. Each turns path/query input into one or two
//! `BatchReader` calls and the result into a response; errors become [`ApiError`] bodies.

use crate::assessments::{
    assessment_detail, batch_assessments, AssessmentDetailResponse, BatchAssessmentsResponse,
};
use crate::auth::ServiceAuth;
use crate::batch_status::{batch_status, BatchStatusResponse, Pagination, UserBatchesResponse};
use crate::errors::{bytes_response, json_response, ApiError, ErrorBody, JsonStyle};
use crate::list_query::parse_list_query;
use crate::observe::MetricsSink;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use ras_domain::model::BatchAggregate;
use ras_domain::ports::BatchReader;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tracing::warn;
use utoipa::ToSchema;

/// Longest id that can exist: ids become keys of the reference's `varchar(255)` columns and of
/// our table; the ingest path dead-letters longer ones.
pub const MAX_ID_BYTES: usize = 255;

/// `SERVICE_NAME` of the reference, reported by `/healthz`.
pub const SERVICE_NAME: &str = "result_aggregator_service";

/// Everything the handlers share. Cheap to clone.
pub struct ApiState<R> {
    pub reader: Arc<R>,
    pub auth: Arc<ServiceAuth>,
    pub metrics: MetricsSink,
    pub environment: Arc<str>,
    /// The OpenAPI document, rendered once.
    pub openapi: Arc<[u8]>,
}

impl<R> Clone for ApiState<R> {
    fn clone(&self) -> Self {
        ApiState {
            reader: self.reader.clone(),
            auth: self.auth.clone(),
            metrics: self.metrics.clone(),
            environment: self.environment.clone(),
            openapi: self.openapi.clone(),
        }
    }
}

/// An id that could exist: non-empty, at most 255 bytes, no control characters.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES && !id.chars().any(char::is_control)
}

fn path_id(
    path: Result<Path<String>, PathRejection>,
    invalid: ApiError,
) -> Result<String, ApiError> {
    match path {
        Ok(Path(id)) if is_valid_id(&id) => Ok(id),
        _ => Err(invalid),
    }
}

/// The batch named by the path, or the reference's 400 / 404.
async fn load_batch<R: BatchReader + 'static>(
    state: &ApiState<R>,
    batch_id: Result<Path<String>, PathRejection>,
) -> Result<BatchAggregate, ApiError> {
    let batch_id = path_id(batch_id, ApiError::InvalidBatchId)?;
    state
        .reader
        .get_batch(&batch_id)
        .await?
        .ok_or(ApiError::BatchNotFound)
}

/// Status of one batch with its essays (ras-behaviour §8.3/§8.4).
#[utoipa::path(
    get,
    path = "/internal/v1/batches/{batch_id}/status",
    tag = "batches",
    params(("batch_id" = String, Path, description = "BOS batch id")),
    responses(
        (status = 200, description = "The batch (compact JSON, raw UTF-8, naive UTC timestamps)", body = BatchStatusResponse),
        (status = 400, description = "`Invalid batch ID`: empty, longer than 255 bytes or with control characters", body = ErrorBody),
        (status = 401, description = "`Missing authentication` or `Invalid credentials`", body = ErrorBody),
        (status = 404, description = "`Batch not found` (unknown or not registered yet)", body = ErrorBody),
        (status = 500, description = "`Internal server error`", body = ErrorBody),
        (status = 503, description = "`Service unavailable`: the internal API key cannot be read from SSM and no usable copy is cached", body = ErrorBody),
    ),
    security(("internal_api_key" = [], "service_id" = []))
)]
pub async fn get_batch_status<R: BatchReader + 'static>(
    State(state): State<ApiState<R>>,
    batch_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let aggregate = load_batch(&state, batch_id).await?;
    let body = batch_status(&aggregate).ok_or(ApiError::BatchNotFound)?;
    Ok(json_response(StatusCode::OK, &body, JsonStyle::Compact))
}

/// A user's batches, newest first, paginated (ras-behaviour §8.6, with the SPEC §3.10 fixes).
#[utoipa::path(
    get,
    path = "/internal/v1/batches/user/{user_id}",
    tag = "batches",
    params(
        ("user_id" = String, Path, description = "Owner (teacher) id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, default 20"),
        ("offset" = Option<u32>, Query, minimum = 0, description = "Batches to skip, default 0"),
        ("status" = Option<ras_domain::contracts::BatchStatus>, Query, description = "Only batches with this internal status"),
    ),
    responses(
        (status = 200, description = "The page (Python `json.dumps` style: `\", \"`/`\": \"` separators, `\\u` escapes)", body = UserBatchesResponse),
        (status = 400, description = "`Invalid limit`, `Invalid offset`, `Invalid status` or `Invalid user ID`", body = ErrorBody),
        (status = 401, description = "`Missing authentication` or `Invalid credentials`", body = ErrorBody),
        (status = 500, description = "`Internal server error`", body = ErrorBody),
        (status = 503, description = "`Service unavailable`: the internal API key cannot be read from SSM and no usable copy is cached", body = ErrorBody),
    ),
    security(("internal_api_key" = [], "service_id" = []))
)]
pub async fn get_user_batches<R: BatchReader + 'static>(
    State(state): State<ApiState<R>>,
    user_id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let user_id = path_id(user_id, ApiError::InvalidUserId)?;
    let query = parse_list_query(query.as_deref())?;
    let page = state
        .reader
        .list_user_batches(&user_id, query.status, query.limit, query.offset)
        .await?;
    let batches = page
        .batches
        .iter()
        .filter_map(|agg| {
            let status = batch_status(agg);
            if status.is_none() {
                warn!(
                    batch_id = agg.batch_id(),
                    "listed batch is not registered; skipped"
                );
            }
            status
        })
        .collect();
    let body = UserBatchesResponse {
        batches,
        pagination: Pagination {
            limit: query.limit,
            offset: query.offset,
            total: page.total,
        },
    };
    Ok(json_response(StatusCode::OK, &body, JsonStyle::Python))
}

/// The detailed result of one CJ assessment job: every essay incl. anchors (new, SPEC §4).
#[utoipa::path(
    get,
    path = "/internal/v1/assessments/{cj_assessment_job_id}",
    tag = "assessments",
    params(("cj_assessment_job_id" = String, Path, description = "CJ job id (`cj_assessment_job_id` of `AssessmentResultV1`)")),
    responses(
        (status = 200, description = "The job's full result (UTC timestamps with `Z`)", body = AssessmentDetailResponse),
        (status = 400, description = "`Invalid assessment ID`", body = ErrorBody),
        (status = 401, description = "`Missing authentication` or `Invalid credentials`", body = ErrorBody),
        (status = 404, description = "`Assessment not found` (unknown job, or its batch is not registered yet)", body = ErrorBody),
        (status = 500, description = "`Internal server error`", body = ErrorBody),
        (status = 503, description = "`Service unavailable`: the internal API key cannot be read from SSM and no usable copy is cached", body = ErrorBody),
    ),
    security(("internal_api_key" = [], "service_id" = []))
)]
pub async fn get_assessment<R: BatchReader + 'static>(
    State(state): State<ApiState<R>>,
    job_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let job_id = path_id(job_id, ApiError::InvalidAssessmentId)?;
    let job = state
        .reader
        .get_cj_job(&job_id)
        .await?
        .ok_or(ApiError::AssessmentNotFound)?;
    // The owner is needed for the gateway's ownership check; an unregistered batch has none.
    let batch = state
        .reader
        .get_batch(&job.batch_id)
        .await?
        .ok_or(ApiError::AssessmentNotFound)?;
    let owner = batch.root.user_id().ok_or(ApiError::AssessmentNotFound)?;
    // The batch read is strongly consistent: prefer its copy of the job when it has one.
    let job = batch.cj_jobs.get(&job_id).unwrap_or(&job);
    Ok(json_response(
        StatusCode::OK,
        &assessment_detail(job, owner),
        JsonStyle::Compact,
    ))
}

/// Assessment summary of a batch: one entry per CJ job, newest first (new, SPEC §4).
#[utoipa::path(
    get,
    path = "/internal/v1/batches/{batch_id}/assessments",
    tag = "assessments",
    params(("batch_id" = String, Path, description = "BOS batch id")),
    responses(
        (status = 200, description = "The batch's CJ jobs (UTC timestamps with `Z`)", body = BatchAssessmentsResponse),
        (status = 400, description = "`Invalid batch ID`", body = ErrorBody),
        (status = 401, description = "`Missing authentication` or `Invalid credentials`", body = ErrorBody),
        (status = 404, description = "`Batch not found`", body = ErrorBody),
        (status = 500, description = "`Internal server error`", body = ErrorBody),
        (status = 503, description = "`Service unavailable`: the internal API key cannot be read from SSM and no usable copy is cached", body = ErrorBody),
    ),
    security(("internal_api_key" = [], "service_id" = []))
)]
pub async fn get_batch_assessments<R: BatchReader + 'static>(
    State(state): State<ApiState<R>>,
    batch_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let aggregate = load_batch(&state, batch_id).await?;
    let body = batch_assessments(&aggregate).ok_or(ApiError::BatchNotFound)?;
    Ok(json_response(StatusCode::OK, &body, JsonStyle::Compact))
}

/// `/healthz` body (ras-behaviour §8.8, with DynamoDB as the one dependency).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "result_aggregator_service")]
    pub service: String,
    #[schema(example = "healthy")]
    pub status: String,
    pub message: String,
    pub version: String,
    pub checks: HealthChecks,
    /// `{"dynamodb": {"status": "healthy" | "unhealthy"}}`
    #[schema(value_type = Object)]
    pub dependencies: Map<String, Value>,
    pub environment: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HealthChecks {
    pub service_responsive: bool,
    pub dependencies_available: bool,
}

/// Liveness and dependency check: the state table answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = HealthResponse),
        (status = 503, description = "The state table is unreachable", body = HealthResponse),
    )
)]
pub async fn healthz<R: BatchReader + 'static>(State(state): State<ApiState<R>>) -> Response {
    let ping = state.reader.ping().await;
    let healthy = ping.is_ok();
    let status = if healthy { "healthy" } else { "unhealthy" };
    let mut dynamodb = Map::new();
    dynamodb.insert("status".into(), json!(status));
    if !healthy {
        dynamodb.insert("error".into(), json!("state table unreachable"));
    }
    let mut dependencies = Map::new();
    dependencies.insert("dynamodb".into(), Value::Object(dynamodb));
    let body = HealthResponse {
        service: SERVICE_NAME.into(),
        status: status.into(),
        message: format!("Result Aggregator Service is {status}"),
        version: env!("CARGO_PKG_VERSION").into(),
        checks: HealthChecks {
            service_responsive: true,
            dependencies_available: healthy,
        },
        dependencies,
        environment: state.environment.to_string(),
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = json_response(code, &body, JsonStyle::Python);
    if let Err(e) = ping {
        response
            .extensions_mut()
            .insert(crate::errors::InternalDetail(format!("health check: {e}")));
    }
    response
}

/// This API's OpenAPI 3 document.
#[utoipa::path(
    get,
    path = "/internal/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document (also checked in as `docs/openapi.json`)", content_type = "application/json"))
)]
pub async fn openapi_json<R: BatchReader + 'static>(State(state): State<ApiState<R>>) -> Response {
    bytes_response(StatusCode::OK, state.openapi.to_vec())
}

/// No route matched. Under `/internal/v1` the caller must authenticate first (so unknown
/// paths reveal nothing to strangers); paths with an empty id are a 400, everything else 404.
pub async fn fallback<R: BatchReader + 'static>(
    State(state): State<ApiState<R>>,
    req: Request,
) -> ApiError {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/internal/v1/") else {
        return ApiError::NotFound;
    };
    let correlation_id = crate::auth::correlation_id(&req);
    if let Err(e) = state
        .auth
        .check_headers(req.headers(), &correlation_id)
        .await
    {
        return e;
    }
    match rest {
        "batches//status" | "batches//assessments" => ApiError::InvalidBatchId,
        "batches/user/" => ApiError::InvalidUserId,
        "assessments/" => ApiError::InvalidAssessmentId,
        _ => ApiError::NotFound,
    }
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
