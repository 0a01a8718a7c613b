//! Service authentication of `/internal/v1` (ras-behaviour §8.2): headers `X-Internal-API-Key`
//! and `X-Service-ID`. Either missing or empty → 401 `Missing authentication`; a wrong key or a
//! service not allowed → 401 `Invalid credentials` (one answer for both, no 403).
//!
//! The key is compared in constant time: both sides are hashed with SHA-256 first, so neither
//! the content nor the length of the configured key leaks through timing.

use crate::config::{ApiConfig, ConfigError, KeySource};
use crate::errors::ApiError;
use crate::observe::CorrelationId;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;
use tracing::{debug, warn};

pub const API_KEY_HEADER: &str = "x-internal-api-key";
pub const SERVICE_ID_HEADER: &str = "x-service-id";

type KeyDigest = [u8; 32];

fn digest(bytes: &[u8]) -> KeyDigest {
    Sha256::digest(bytes).into()
}

enum ExpectedKey {
    Ready(KeyDigest),
    /// Read from SSM on first use; a failed read is retried by the next request.
    Ssm {
        client: aws_sdk_ssm::Client,
        parameter: String,
        digest: OnceCell<KeyDigest>,
    },
}

/// Checks the two headers against the configuration.
pub struct ServiceAuth {
    expected: ExpectedKey,
    allowed_service_ids: Vec<String>,
}

impl ServiceAuth {
    /// `ssm` is needed only when the key comes from an SSM parameter.
    pub fn new(config: &ApiConfig, ssm: Option<aws_sdk_ssm::Client>) -> Result<Self, ConfigError> {
        let expected = match (&config.key_source, ssm) {
            (KeySource::Value(key), _) => ExpectedKey::Ready(digest(key.expose().as_bytes())),
            (KeySource::SsmParameter(parameter), Some(client)) => ExpectedKey::Ssm {
                client,
                parameter: parameter.clone(),
                digest: OnceCell::new(),
            },
            (KeySource::SsmParameter(_), None) => return Err(ConfigError::MissingKey),
        };
        Ok(ServiceAuth {
            expected,
            allowed_service_ids: config.allowed_service_ids.clone(),
        })
    }

    async fn expected_digest(&self) -> Result<KeyDigest, ApiError> {
        match &self.expected {
            ExpectedKey::Ready(d) => Ok(*d),
            ExpectedKey::Ssm {
                client,
                parameter,
                digest: cell,
            } => cell
                .get_or_try_init(|| async {
                    let out = client
                        .get_parameter()
                        .name(parameter)
                        .with_decryption(true)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::Internal(format!(
                                "reading the API key from SSM parameter `{parameter}`: {}",
                                aws_sdk_ssm::error::DisplayErrorContext(&e)
                            ))
                        })?;
                    let value = out
                        .parameter
                        .and_then(|p| p.value)
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| {
                            ApiError::Internal(format!("SSM parameter `{parameter}` has no value"))
                        })?;
                    Ok(digest(value.as_bytes()))
                })
                .await
                .copied(),
        }
    }

    /// `Ok` when both headers are present and valid.
    pub async fn check(
        &self,
        api_key: Option<&[u8]>,
        service_id: Option<&[u8]>,
        correlation_id: &str,
    ) -> Result<(), ApiError> {
        let (Some(api_key), Some(service_id)) = (
            api_key.filter(|k| !k.is_empty()),
            service_id.filter(|s| !s.is_empty()),
        ) else {
            return Err(ApiError::MissingAuthentication);
        };
        let expected = self.expected_digest().await?;
        let key_ok: bool = digest(api_key).ct_eq(&expected).into();
        let service_ok = self
            .allowed_service_ids
            .iter()
            .any(|s| s.as_bytes() == service_id);
        let service = String::from_utf8_lossy(service_id);
        match (key_ok, service_ok) {
            (true, true) => {
                debug!(correlation_id, service_id = %service, "service authenticated");
                Ok(())
            }
            (false, _) => {
                warn!(correlation_id, service_id = %service, "Invalid API key provided");
                Err(ApiError::InvalidCredentials)
            }
            (true, false) => {
                warn!(correlation_id, service_id = %service, allowed_services = ?self.allowed_service_ids, "Service not allowed");
                Err(ApiError::InvalidCredentials)
            }
        }
    }

    /// Check a request's headers. (Takes the parts, not the request: a request body is not
    /// `Sync`, and the future must be `Send`.)
    pub async fn check_headers(
        &self,
        headers: &HeaderMap,
        correlation_id: &str,
    ) -> Result<(), ApiError> {
        self.check(
            headers.get(API_KEY_HEADER).map(|v| v.as_bytes()),
            headers.get(SERVICE_ID_HEADER).map(|v| v.as_bytes()),
            correlation_id,
        )
        .await
    }
}

/// The correlation id [`crate::observe::observe`] put on the request.
pub fn correlation_id(req: &Request) -> String {
    req.extensions()
        .get::<CorrelationId>()
        .map(|c| c.0.clone())
        .unwrap_or_default()
}

/// Middleware of the authenticated routes.
pub async fn require_service_auth(
    State(auth): State<Arc<ServiceAuth>>,
    req: Request,
    next: Next,
) -> Response {
    let correlation_id = correlation_id(&req);
    match auth.check_headers(req.headers(), &correlation_id).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> ServiceAuth {
        ServiceAuth::new(&ApiConfig::with_key("the-key"), None).unwrap()
    }

    async fn check(key: Option<&str>, service: Option<&str>) -> Result<(), String> {
        auth()
            .check(key.map(str::as_bytes), service.map(str::as_bytes), "c")
            .await
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn reference_auth_semantics() {
        assert_eq!(
            check(Some("the-key"), Some("api-gateway-service")).await,
            Ok(())
        );
        assert_eq!(
            check(Some("the-key"), Some("bff-teacher-service")).await,
            Ok(())
        );
        assert_eq!(
            check(Some("the-key"), Some("admin-dashboard-service")).await,
            Ok(())
        );
        let missing = Err("Missing authentication".to_string());
        let invalid = Err("Invalid credentials".to_string());
        assert_eq!(check(None, Some("api-gateway-service")).await, missing);
        assert_eq!(check(Some("the-key"), None).await, missing);
        assert_eq!(check(Some(""), Some("api-gateway-service")).await, missing);
        assert_eq!(check(Some("the-key"), Some("")).await, missing);
        assert_eq!(check(None, None).await, missing);
        assert_eq!(
            check(Some("wrong"), Some("api-gateway-service")).await,
            invalid
        );
        assert_eq!(
            check(Some("the-key"), Some("unknown-service")).await,
            invalid
        );
        assert_eq!(check(Some("wrong"), Some("unknown-service")).await, invalid);
        // Case-sensitive, like the reference.
        assert_eq!(
            check(Some("THE-KEY"), Some("api-gateway-service")).await,
            invalid
        );
        assert_eq!(
            check(Some("the-key"), Some("API-GATEWAY-SERVICE")).await,
            invalid
        );
        // A prefix or extension of the key is not the key.
        assert_eq!(
            check(Some("the-ke"), Some("api-gateway-service")).await,
            invalid
        );
        assert_eq!(
            check(Some("the-key "), Some("api-gateway-service")).await,
            invalid
        );
    }

    #[test]
    fn ssm_source_needs_a_client() {
        let config = ApiConfig {
            key_source: KeySource::SsmParameter("/p".into()),
            ..ApiConfig::with_key("x")
        };
        assert!(ServiceAuth::new(&config, None).is_err());
    }
}
