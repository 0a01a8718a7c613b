//! The OpenAPI 3 document, generated from the handlers' annotations and the response types
//! (utoipa). Served at `/internal/v1/openapi.json` and checked in as `docs/openapi.json`
//! (regenerate: `cargo run -p api -- --print-openapi > docs/openapi.json`).
//!
//! The enum schemas are the domain's own types (`ras_domain::contracts`, feature `openapi`), so
//! the documented values are the wire values by construction.

use crate::assessments::{
    AssessedEssay, AssessmentDetailResponse, AssessmentSummary, BatchAssessmentsResponse,
};
use crate::batch_status::{
    BatchStatusResponse, EssayResultResponse, Pagination, UserBatchesResponse,
};
use crate::errors::ErrorBody;
use crate::routes::{self, HealthChecks, HealthResponse};
use ras_domain::contracts::{
    BatchClientStatus, BatchStatus, ConfidenceLabel, PhaseName, ProcessingStage,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Security schemes: both headers are required together.
struct InternalAuth;

impl Modify for InternalAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "internal_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Internal-API-Key",
                "The shared internal API key",
            ))),
        );
        components.add_security_scheme(
            "service_id",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Service-ID",
                "The calling service; must be one of ALLOWED_SERVICE_IDS",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HuleEdu Result Aggregator — internal query API",
        description = "Batch status and user batch lists with the reference service's exact shapes (naive UTC timestamps, client statuses, pagination), and the CJ assessment results. Errors are `{\"error\": \"<text>\"}`. Callers may send `X-Correlation-ID`; it is logged and echoed.",
    ),
    paths(
        routes::get_batch_status,
        routes::get_user_batches,
        routes::get_assessment,
        routes::get_batch_assessments,
        routes::healthz,
        routes::openapi_json,
    ),
    components(schemas(
        BatchStatusResponse,
        EssayResultResponse,
        UserBatchesResponse,
        Pagination,
        AssessmentDetailResponse,
        AssessedEssay,
        BatchAssessmentsResponse,
        AssessmentSummary,
        HealthResponse,
        HealthChecks,
        ErrorBody,
        BatchClientStatus,
        BatchStatus,
        ProcessingStage,
        PhaseName,
        ConfidenceLabel,
    )),
    modifiers(&InternalAuth),
    tags(
        (name = "batches", description = "The reference's batch routes"),
        (name = "assessments", description = "CJ assessment results"),
        (name = "operations", description = "Health and API description"),
    )
)]
pub struct ApiDoc;

/// The document as served and checked in: pretty-printed, with a final newline.
pub fn document_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the OpenAPI document: {e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn enum_values(doc: &Value, schema: &str) -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("schema {schema} has an enum"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn schema_enums_match_the_domain() {
        use ras_domain::contracts as c;
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let domain = |values: Vec<&str>| values.into_iter().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            enum_values(&doc, "BatchStatus"),
            domain(c::BatchStatus::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(
            enum_values(&doc, "ProcessingStage"),
            domain(c::ProcessingStage::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(
            enum_values(&doc, "PhaseName"),
            domain(c::PhaseName::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(
            enum_values(&doc, "ConfidenceLabel"),
            domain(c::ConfidenceLabel::ALL.iter().map(|s| s.as_str()).collect())
        );
        let mut clients: Vec<&str> = c::BatchStatus::ALL
            .iter()
            .map(|s| s.client_status())
            .collect();
        clients.dedup();
        let mut documented = enum_values(&doc, "BatchClientStatus");
        documented.sort();
        clients.sort();
        clients.dedup();
        assert_eq!(documented, domain(clients));
    }

    #[test]
    fn is_openapi_3_with_every_route() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap_or_default().starts_with('3'));
        for path in [
            "/internal/v1/batches/{batch_id}/status",
            "/internal/v1/batches/user/{user_id}",
            "/internal/v1/assessments/{cj_assessment_job_id}",
            "/internal/v1/batches/{batch_id}/assessments",
            "/healthz",
            "/internal/v1/openapi.json",
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
        let keys: Vec<&str> = doc["components"]["schemas"]["BatchStatusResponse"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.first(), Some(&"batch_id"));
        assert_eq!(keys.last(), Some(&"student_prompt_ref"));
    }
}
