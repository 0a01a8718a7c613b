//! Service authentication of `/internal/v1` (ras-behaviour §8.2): headers `X-Internal-API-Key`
//! and `X-Service-ID`. Either missing or empty → 401 `Missing authentication`; a wrong key or a
//! service not allowed → 401 `Invalid credentials` (one answer for both, no 403).
//!
//! The key is compared in constant time: both sides are hashed with SHA-256 first, so neither
//! the content nor the length of the configured key leaks through timing.
//!
//! **A key from SSM** is read on the first authenticated request (not at start-up: the cold
//! start makes no SSM call) and cached like Powertools' parameters utility does (a value is
//! reused until it is `max_age` old, then fetched again on the next use), with
//! [`KeyCachePolicy::max_age`] defaulting to 60 s instead of Powertools' 5 s:
//!
//! * The parameter holds one key, or several separated by commas or newlines (the current and
//!   the previous key during a rotation); any of them is accepted.
//! * Expired: the request that notices it reads SSM again (the SDK call has its own short
//!   timeouts, `main.rs`). Requests running meanwhile in the same process (local HTTP mode)
//!   keep using the expired key rather than waiting; without any key they wait for that read.
//! * SSM cannot be read (unreachable, throttled, parameter gone or empty): the last key read
//!   stays accepted until it is `max_age + max_stale` old ("stale"; such requests are marked
//!   with [`StaleApiKey`] and counted as `ApiKeyStale` in the request metrics, and every failed
//!   read is logged as an error). SSM is not asked again for `retry_after`. Without a usable key
//!   the answer is 503 `{"error": "Service unavailable"}`: nothing is accepted.

use crate::config::{ApiConfig, ConfigError, KeyCachePolicy, KeySource, API_KEY_SSM_PARAMETER_ENV};
use crate::errors::ApiError;
use crate::observe::CorrelationId;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use subtle::{Choice, ConstantTimeEq};
use tracing::{debug, error, info, warn};

pub const API_KEY_HEADER: &str = "x-internal-api-key";
pub const SERVICE_ID_HEADER: &str = "x-service-id";

type KeyDigest = [u8; 32];

fn digest(bytes: &[u8]) -> KeyDigest {
    Sha256::digest(bytes).into()
}

/// The keys a parameter value holds: split at commas and newlines, trimmed, empty parts
/// dropped. `None` when nothing is left.
fn parse_keys(value: &str) -> Option<Arc<[KeyDigest]>> {
    let keys: Vec<KeyDigest> = value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| digest(k.as_bytes()))
        .collect();
    (!keys.is_empty()).then(|| keys.into())
}

/// Time as the key cache sees it (injectable so that tests step over the cache period).
pub trait KeyClock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl KeyClock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    pub fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(later) = now.checked_add(by) {
            *now = later;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyClock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Response extension: the request was authenticated with a key past its cache period because
/// SSM could not be read (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleApiKey;

/// The keys to accept, and whether they are stale.
struct Keys {
    digests: Arc<[KeyDigest]>,
    stale: bool,
}

#[derive(Clone)]
struct Loaded {
    digests: Arc<[KeyDigest]>,
    fetched_at: Instant,
}

#[derive(Default)]
struct KeyCache {
    loaded: Option<Loaded>,
    /// No SSM read before this instant (set by a failed read).
    retry_at: Option<Instant>,
    /// Why the last read failed.
    last_error: Option<String>,
}

/// A key held in an SSM parameter, cached per [`KeyCachePolicy`].
struct SsmKey {
    client: aws_sdk_ssm::Client,
    parameter: String,
    policy: KeyCachePolicy,
    clock: Arc<dyn KeyClock>,
    cache: Mutex<KeyCache>,
    /// Held while SSM is read: one read at a time.
    reading: tokio::sync::Mutex<()>,
}

impl SsmKey {
    fn cache(&self) -> MutexGuard<'_, KeyCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn keys(&self) -> Result<Keys, ApiError> {
        if let Some(answer) = self.cached(self.clock.now()) {
            return answer;
        }
        let _reading = match self.reading.try_lock() {
            Ok(guard) => guard,
            // Another request is reading SSM: use the expired key meanwhile if it is still
            // within its stale period, otherwise wait for that read.
            Err(_) => {
                if let Ok(keys) = self.stale_or_unavailable(&self.cache(), self.clock.now()) {
                    return Ok(keys);
                }
                self.reading.lock().await
            }
        };
        // The read we waited for may have settled it.
        if let Some(answer) = self.cached(self.clock.now()) {
            return answer;
        }
        let read = self.read().await;
        let now = self.clock.now();
        let mut cache = self.cache();
        match read {
            Ok(digests) => {
                let rotated = cache
                    .loaded
                    .as_ref()
                    .is_some_and(|old| old.digests != digests);
                info!(
                    parameter = %self.parameter,
                    keys = digests.len(),
                    changed = rotated,
                    "internal API key read from SSM"
                );
                cache.loaded = Some(Loaded {
                    digests: digests.clone(),
                    fetched_at: now,
                });
                cache.retry_at = None;
                cache.last_error = None;
                Ok(Keys {
                    digests,
                    stale: false,
                })
            }
            Err(detail) => {
                cache.retry_at = now.checked_add(self.policy.retry_after);
                let answer = self.stale_or_unavailable(&cache, now);
                error!(
                    parameter = %self.parameter,
                    error = %detail,
                    serving_stale_key = answer.is_ok(),
                    retry_after_s = self.policy.retry_after.as_secs_f64(),
                    "cannot read the internal API key from SSM"
                );
                cache.last_error = Some(detail);
                answer
            }
        }
    }

    /// The answer without reading SSM: the key while fresh, and during the pause after a
    /// failed read the stale key or 503. `None`: SSM must be read.
    fn cached(&self, now: Instant) -> Option<Result<Keys, ApiError>> {
        let cache = self.cache();
        if let Some(loaded) = &cache.loaded {
            if now.saturating_duration_since(loaded.fetched_at) < self.policy.max_age {
                return Some(Ok(Keys {
                    digests: loaded.digests.clone(),
                    stale: false,
                }));
            }
        }
        if cache.retry_at.is_some_and(|at| now < at) {
            return Some(self.stale_or_unavailable(&cache, now));
        }
        None
    }

    fn stale_or_unavailable(&self, cache: &KeyCache, now: Instant) -> Result<Keys, ApiError> {
        let usable_for = self.policy.max_age.saturating_add(self.policy.max_stale);
        match &cache.loaded {
            Some(loaded) if now.saturating_duration_since(loaded.fetched_at) < usable_for => {
                Ok(Keys {
                    digests: loaded.digests.clone(),
                    stale: true,
                })
            }
            Some(loaded) => Err(ApiError::Unavailable(format!(
                "the internal API key read from SSM parameter `{}` {:.0} s ago is past its stale period and SSM cannot be read: {}",
                self.parameter,
                now.saturating_duration_since(loaded.fetched_at).as_secs_f64(),
                cache.last_error.as_deref().unwrap_or("a read is in progress")
            ))),
            None => Err(ApiError::Unavailable(format!(
                "no internal API key: SSM parameter `{}` cannot be read: {}",
                self.parameter,
                cache.last_error.as_deref().unwrap_or("a read is in progress")
            ))),
        }
    }

    async fn read(&self) -> Result<Arc<[KeyDigest]>, String> {
        let out = self
            .client
            .get_parameter()
            .name(&self.parameter)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading SSM parameter `{}`: {}",
                    self.parameter,
                    aws_sdk_ssm::error::DisplayErrorContext(&e)
                )
            })?;
        out.parameter
            .and_then(|p| p.value)
            .as_deref()
            .and_then(parse_keys)
            .ok_or_else(|| format!("SSM parameter `{}` holds no key", self.parameter))
    }
}

enum ExpectedKey {
    Ready(Arc<[KeyDigest]>),
    Ssm(SsmKey),
}

/// A successful authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The key matched a stale copy (SSM could not be read; see the module documentation).
    pub stale_key: bool,
}

/// Checks the two headers against the configuration.
pub struct ServiceAuth {
    expected: ExpectedKey,
    allowed_service_ids: Vec<String>,
}

impl ServiceAuth {
    /// `ssm` is needed only when the key comes from an SSM parameter.
    pub fn new(config: &ApiConfig, ssm: Option<aws_sdk_ssm::Client>) -> Result<Self, ConfigError> {
        Self::with_clock(config, ssm, Arc::new(SystemClock))
    }

    /// Like [`ServiceAuth::new`], with the clock of the SSM key cache.
    pub fn with_clock(
        config: &ApiConfig,
        ssm: Option<aws_sdk_ssm::Client>,
        clock: Arc<dyn KeyClock>,
    ) -> Result<Self, ConfigError> {
        let expected = match (&config.key_source, ssm) {
            (KeySource::Value(key), _) => {
                ExpectedKey::Ready(Arc::new([digest(key.expose().as_bytes())]))
            }
            (KeySource::SsmParameter(parameter), Some(client)) => ExpectedKey::Ssm(SsmKey {
                client,
                parameter: parameter.clone(),
                policy: config.key_cache,
                clock,
                cache: Mutex::new(KeyCache::default()),
                reading: tokio::sync::Mutex::new(()),
            }),
            (KeySource::SsmParameter(parameter), None) => {
                return Err(ConfigError::Invalid {
                    name: API_KEY_SSM_PARAMETER_ENV,
                    value: parameter.clone(),
                    reason: "no SSM client to read it with".into(),
                })
            }
        };
        Ok(ServiceAuth {
            expected,
            allowed_service_ids: config.allowed_service_ids.clone(),
        })
    }

    async fn expected_keys(&self) -> Result<Keys, ApiError> {
        match &self.expected {
            ExpectedKey::Ready(digests) => Ok(Keys {
                digests: digests.clone(),
                stale: false,
            }),
            ExpectedKey::Ssm(key) => key.keys().await,
        }
    }

    /// `Ok` when both headers are present and valid.
    pub async fn check(
        &self,
        api_key: Option<&[u8]>,
        service_id: Option<&[u8]>,
        correlation_id: &str,
    ) -> Result<Authenticated, ApiError> {
        let (Some(api_key), Some(service_id)) = (
            api_key.filter(|k| !k.is_empty()),
            service_id.filter(|s| !s.is_empty()),
        ) else {
            return Err(ApiError::MissingAuthentication);
        };
        let expected = self.expected_keys().await?;
        let presented = digest(api_key);
        // Every configured key is compared (no early exit).
        let key_ok: bool = expected
            .digests
            .iter()
            .fold(Choice::from(0), |any, k| any | presented.ct_eq(k))
            .into();
        let service_ok = self
            .allowed_service_ids
            .iter()
            .any(|s| s.as_bytes() == service_id);
        let service = String::from_utf8_lossy(service_id);
        match (key_ok, service_ok) {
            (true, true) => {
                debug!(correlation_id, service_id = %service, stale_key = expected.stale, "service authenticated");
                Ok(Authenticated {
                    stale_key: expected.stale,
                })
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
    ) -> Result<Authenticated, ApiError> {
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
        Ok(authenticated) => {
            let mut response = next.run(req).await;
            if authenticated.stale_key {
                response.extensions_mut().insert(StaleApiKey);
            }
            response
        }
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
            .map(|a| assert!(!a.stale_key))
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
    fn a_parameter_holds_one_key_or_several() {
        let keys = |v: &str| parse_keys(v).map(|k| k.to_vec());
        assert_eq!(keys("k1"), Some(vec![digest(b"k1")]));
        assert_eq!(
            keys(" new-key ,old-key"),
            Some(vec![digest(b"new-key"), digest(b"old-key")])
        );
        assert_eq!(
            keys("new-key\r\nold-key\n"),
            Some(vec![digest(b"new-key"), digest(b"old-key")])
        );
        assert_eq!(keys(""), None);
        assert_eq!(keys(" , \n "), None);
    }

    #[test]
    fn the_manual_clock_moves_when_told() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(61));
        assert_eq!(clock.now() - t0, Duration::from_secs(61));
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
