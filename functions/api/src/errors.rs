//! Error responses: `{"error": "<text>"}` with the reference's texts (ras-behaviour §8),
//! serialised like the reference (Python `json.dumps` separators). Internal details never reach
//! the body: they travel in a response extension to the request log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ras_domain::contracts::to_python_json;
use ras_domain::ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Batch not found")]
    pub error: String,
}

/// Why a request failed, as far as the caller may know.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Missing authentication")]
    MissingAuthentication,
    #[error("Invalid credentials")]
    InvalidCredentials,
    #[error("Invalid batch ID")]
    InvalidBatchId,
    #[error("Invalid user ID")]
    InvalidUserId,
    #[error("Invalid assessment ID")]
    InvalidAssessmentId,
    #[error("Invalid limit")]
    InvalidLimit,
    #[error("Invalid offset")]
    InvalidOffset,
    #[error("Invalid status")]
    InvalidStatus,
    /// A Lambda event that does not form an HTTP request (see [`crate::lambda::handle`]).
    #[error("Invalid request")]
    InvalidRequest,
    #[error("Batch not found")]
    BatchNotFound,
    #[error("Assessment not found")]
    AssessmentNotFound,
    #[error("Not found")]
    NotFound,
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Anything the caller cannot fix; the detail is logged, never sent.
    #[error("Internal server error")]
    Internal(String),
    /// A dependency the request cannot do without is unavailable (the API key cannot be read
    /// from SSM and no usable copy is cached); the detail is logged, never sent.
    #[error("Service unavailable")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingAuthentication | ApiError::InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::InvalidBatchId
            | ApiError::InvalidUserId
            | ApiError::InvalidAssessmentId
            | ApiError::InvalidLimit
            | ApiError::InvalidOffset
            | ApiError::InvalidStatus
            | ApiError::InvalidRequest => StatusCode::BAD_REQUEST,
            ApiError::BatchNotFound | ApiError::AssessmentNotFound | ApiError::NotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// The internal cause of a 5xx, for the request log (see [`crate::observe`]).
#[derive(Clone, Debug)]
pub struct InternalDetail(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
        };
        let mut response = json_response(self.status(), &body, JsonStyle::Python);
        if let ApiError::Internal(detail) | ApiError::Unavailable(detail) = self {
            response.extensions_mut().insert(InternalDetail(detail));
        }
        response
    }
}

/// How a body is serialised: the reference serves a batch status as pydantic's compact JSON
/// (raw UTF-8) and everything else through Python's `json.dumps` (`", "`/`": "`, `\u` escapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonStyle {
    Compact,
    Python,
}

pub fn to_json_bytes<T: Serialize + ?Sized>(
    value: &T,
    style: JsonStyle,
) -> Result<Vec<u8>, serde_json::Error> {
    match style {
        JsonStyle::Compact => serde_json::to_vec(value),
        JsonStyle::Python => to_python_json(value),
    }
}

/// An `application/json` response; a value that cannot be serialised is a 500.
pub fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
    style: JsonStyle,
) -> Response {
    match to_json_bytes(value, style) {
        Ok(bytes) => bytes_response(status, bytes),
        Err(e) => {
            // Plain error body: serialising it again could fail the same way.
            let mut response = bytes_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error": "Internal server error"}"#.to_vec(),
            );
            response
                .extensions_mut()
                .insert(InternalDetail(format!("serialising the response: {e}")));
            response
        }
    }
}

pub fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}
