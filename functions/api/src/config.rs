//! The API function's configuration, read once at start-up and validated (fail fast).
//!
//! | variable | meaning |
//! |---|---|
//! | `RAS_INTERNAL_API_KEY` | the shared internal API key (alias: the reference's `HULEEDU_INTERNAL_API_KEY`) |
//! | `RAS_INTERNAL_API_KEY_SSM_PARAMETER` | or: name of an SSM parameter (`SecureString`) holding it (one key, or the current and the previous key separated by a comma or a newline), read with decryption on first use and cached |
//! | `RAS_INTERNAL_API_KEY_CACHE_SECONDS` | how long a key read from SSM is used before it is read again (default 60, 1–3600) |
//! | `RAS_INTERNAL_API_KEY_MAX_STALE_SECONDS` | how long past that the last key read keeps being accepted while SSM cannot be read (default 3600, 0–86400; 0 = never) |
//! | `ALLOWED_SERVICE_IDS` | `X-Service-ID` values allowed in: JSON list or comma-separated; default `api-gateway-service`, `admin-dashboard-service`, `bff-teacher-service` |
//! | `ENVIRONMENT` | reported by `/healthz` (default `development`) |
//! | `RAS_API_LOCAL_ADDR` | serve plain HTTP on this address instead of running as a Lambda function |
//! | `RAS_STATE_TABLE` | the state table (required; the api reads nothing else) |
//!
//! A variable missing or malformed is a [`ConfigError`] naming it (`ras_aws::config`, shared
//! by the four functions): the function stops before its first request.

pub use ras_aws::config::ConfigError;
use ras_aws::config::{Env, StoreConfig};
use std::fmt;
use std::time::Duration;

pub const API_KEY_ENV: &str = "RAS_INTERNAL_API_KEY";
/// The reference's variable, accepted as an alias.
pub const LEGACY_API_KEY_ENV: &str = "HULEEDU_INTERNAL_API_KEY";
pub const API_KEY_SSM_PARAMETER_ENV: &str = "RAS_INTERNAL_API_KEY_SSM_PARAMETER";
pub const API_KEY_CACHE_SECONDS_ENV: &str = "RAS_INTERNAL_API_KEY_CACHE_SECONDS";
pub const API_KEY_MAX_STALE_SECONDS_ENV: &str = "RAS_INTERNAL_API_KEY_MAX_STALE_SECONDS";
pub const ALLOWED_SERVICE_IDS_ENV: &str = "ALLOWED_SERVICE_IDS";
pub const ENVIRONMENT_ENV: &str = "ENVIRONMENT";
pub const LOCAL_ADDR_ENV: &str = "RAS_API_LOCAL_ADDR";

/// The reference's default plus the BFF, which its deployment adds.
pub const DEFAULT_ALLOWED_SERVICE_IDS: [&str; 3] = [
    "api-gateway-service",
    "admin-dashboard-service",
    "bff-teacher-service",
];

/// Default time a key read from SSM is used before it is read again. Powertools' parameters
/// utility caches for 5 s by default; the API key changes only on a rotation, and 60 s bounds how
/// long a removed key is still accepted while keeping the `GetParameter` rate at one call per
/// sandbox per minute (the account's default Parameter Store throughput, 40 TPS, is shared with
/// every other application of the account and region).
pub const DEFAULT_KEY_CACHE_SECONDS: u64 = 60;
pub const MAX_KEY_CACHE_SECONDS: u64 = 3600;
/// Default time past the cache period during which the last key read is still accepted when SSM
/// cannot be read (an SSM incident should not take the API down at once).
pub const DEFAULT_KEY_MAX_STALE_SECONDS: u64 = 3600;
pub const MAX_KEY_MAX_STALE_SECONDS: u64 = 86_400;
/// After a failed read, SSM is not asked again for this long (at most the cache period):
/// requests meanwhile are answered from the stale key, or 503 without one.
pub const KEY_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How a key read from SSM is cached (see `crate::auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCachePolicy {
    /// A key younger than this is used as is.
    pub max_age: Duration,
    /// An older key is read again; while that fails it stays accepted until it is
    /// `max_age + max_stale` old. After that (or with no key read yet) requests get 503.
    pub max_stale: Duration,
    /// Minimum time between two reads after a failed one.
    pub retry_after: Duration,
}

impl KeyCachePolicy {
    pub fn new(max_age: Duration, max_stale: Duration) -> Self {
        KeyCachePolicy {
            max_age,
            max_stale,
            retry_after: KEY_RETRY_AFTER.min(max_age),
        }
    }
}

impl Default for KeyCachePolicy {
    fn default() -> Self {
        KeyCachePolicy::new(
            Duration::from_secs(DEFAULT_KEY_CACHE_SECONDS),
            Duration::from_secs(DEFAULT_KEY_MAX_STALE_SECONDS),
        )
    }
}

/// A secret string whose `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the internal API key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Value(Secret),
    /// Name (or ARN) of an SSM parameter, fetched with decryption on first use so that the cold
    /// start does not wait for SSM, then cached per [`ApiConfig::key_cache`].
    SsmParameter(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub key_source: KeySource,
    /// Caching of a key read from SSM (unused with a fixed key).
    pub key_cache: KeyCachePolicy,
    pub allowed_service_ids: Vec<String>,
    pub environment: String,
    /// The table the routes read (`RAS_STATE_TABLE`; no outbox: [`StoreConfig::reader`]).
    pub tables: StoreConfig,
}

/// The variables of the internal API key, one of which is required.
const KEY_SOURCES: &[&str] = &[API_KEY_ENV, API_KEY_SSM_PARAMETER_ENV];
/// Exclusive: a fixed key (or its alias) and an SSM parameter.
const EXCLUSIVE_KEY_SOURCES: &[&str] =
    &[API_KEY_ENV, LEGACY_API_KEY_ENV, API_KEY_SSM_PARAMETER_ENV];

impl ApiConfig {
    /// A configuration with a fixed key, the default allowed services and the local table
    /// names (tests, benchmarks; never from the environment).
    pub fn with_key(key: &str) -> Self {
        ApiConfig {
            key_source: KeySource::Value(Secret::new(key)),
            key_cache: KeyCachePolicy::default(),
            allowed_service_ids: DEFAULT_ALLOWED_SERVICE_IDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            environment: "development".to_string(),
            tables: StoreConfig::default(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ApiConfig::from_env`] with an explicit lookup. Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let key = env.get(API_KEY_ENV).or_else(|| env.get(LEGACY_API_KEY_ENV));
        let key_source = match (key, env.get(API_KEY_SSM_PARAMETER_ENV)) {
            (Some(_), Some(_)) => return Err(ConfigError::Conflicting(EXCLUSIVE_KEY_SOURCES)),
            (Some(key), None) => KeySource::Value(Secret::new(key)),
            (None, Some(parameter)) => KeySource::SsmParameter(parameter),
            (None, None) => return Err(ConfigError::MissingOneOf(KEY_SOURCES)),
        };
        let seconds =
            |name, default, min, max| env.number(name, default, min, max).map(Duration::from_secs);
        let key_cache = KeyCachePolicy::new(
            seconds(
                API_KEY_CACHE_SECONDS_ENV,
                DEFAULT_KEY_CACHE_SECONDS,
                1,
                MAX_KEY_CACHE_SECONDS,
            )?,
            seconds(
                API_KEY_MAX_STALE_SECONDS_ENV,
                DEFAULT_KEY_MAX_STALE_SECONDS,
                0,
                MAX_KEY_MAX_STALE_SECONDS,
            )?,
        );
        let allowed_service_ids = match env.get(ALLOWED_SERVICE_IDS_ENV) {
            Some(text) => parse_service_ids(&text).map_err(|reason| ConfigError::Invalid {
                name: ALLOWED_SERVICE_IDS_ENV,
                value: text,
                reason,
            })?,
            None => DEFAULT_ALLOWED_SERVICE_IDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Ok(ApiConfig {
            key_source,
            key_cache,
            allowed_service_ids,
            environment: env
                .get(ENVIRONMENT_ENV)
                .unwrap_or_else(|| "development".to_string()),
            tables: env.reader_store()?,
        })
    }
}

/// A JSON list of strings (the reference's format) or a comma-separated list; `Err` says why not.
fn parse_service_ids(text: &str) -> Result<Vec<String>, String> {
    let ids: Vec<String> = if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text)
            .map_err(|e| format!("not a JSON list of strings: {e}"))?
    } else {
        text.split(',').map(str::to_string).collect()
    };
    let ids: Vec<String> = ids
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        return Err("no service id listed".into());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_aws::config::STATE_TABLE_ENV;
    use std::collections::HashMap;

    /// `vars` and the state table.
    fn config(vars: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry(STATE_TABLE_ENV.to_string())
            .or_insert_with(|| "stack-ras-state".to_string());
        ApiConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn key_from_variable_or_alias_or_ssm() {
        let c = config(&[(API_KEY_ENV, "k1")]).unwrap();
        assert_eq!(c.key_source, KeySource::Value(Secret::new("k1")));
        assert_eq!(c.allowed_service_ids, DEFAULT_ALLOWED_SERVICE_IDS);
        assert_eq!(c.environment, "development");
        assert_eq!(c.tables, StoreConfig::reader("stack-ras-state"));
        let c = config(&[(LEGACY_API_KEY_ENV, "k2")]).unwrap();
        assert_eq!(c.key_source, KeySource::Value(Secret::new("k2")));
        let c = config(&[(API_KEY_SSM_PARAMETER_ENV, " /ras/api-key ")]).unwrap();
        assert_eq!(c.key_source, KeySource::SsmParameter("/ras/api-key".into()));
    }

    #[test]
    fn missing_or_conflicting_key_fails_fast() {
        let missing = config(&[]).unwrap_err();
        assert_eq!(missing, ConfigError::MissingOneOf(KEY_SOURCES));
        assert_eq!(
            missing.to_string(),
            "one of the environment variables RAS_INTERNAL_API_KEY, \
             RAS_INTERNAL_API_KEY_SSM_PARAMETER is required, none is set"
        );
        assert_eq!(config(&[(API_KEY_ENV, "  ")]), Err(missing));
        for key in [API_KEY_ENV, LEGACY_API_KEY_ENV] {
            let conflict = config(&[(key, "k"), (API_KEY_SSM_PARAMETER_ENV, "/p")]).unwrap_err();
            assert_eq!(conflict, ConfigError::Conflicting(EXCLUSIVE_KEY_SOURCES));
            assert!(conflict.to_string().contains(key), "{conflict}");
        }
    }

    #[test]
    fn the_state_table_is_required_and_named() {
        let err = ApiConfig::from_lookup(|name| (name == API_KEY_ENV).then(|| "k".to_string()))
            .unwrap_err();
        assert_eq!(err, ConfigError::Missing(STATE_TABLE_ENV));
        assert_eq!(
            err.to_string(),
            "environment variable RAS_STATE_TABLE is required but not set"
        );
    }

    #[test]
    fn service_ids_as_json_or_comma_list() {
        let c = config(&[
            (API_KEY_ENV, "k"),
            (ALLOWED_SERVICE_IDS_ENV, r#"["a", "b"]"#),
        ])
        .unwrap();
        assert_eq!(c.allowed_service_ids, ["a", "b"]);
        let c = config(&[(API_KEY_ENV, "k"), (ALLOWED_SERVICE_IDS_ENV, " a , b,, c ")]).unwrap();
        assert_eq!(c.allowed_service_ids, ["a", "b", "c"]);
        for bad in ["[1]", "[]"] {
            assert!(matches!(
                config(&[(API_KEY_ENV, "k"), (ALLOWED_SERVICE_IDS_ENV, bad)]),
                Err(ConfigError::Invalid {
                    name: ALLOWED_SERVICE_IDS_ENV,
                    ..
                })
            ));
        }
    }

    #[test]
    fn key_cache_defaults_and_bounds() {
        let c = config(&[(API_KEY_SSM_PARAMETER_ENV, "/p")]).unwrap();
        assert_eq!(c.key_cache.max_age, Duration::from_secs(60));
        assert_eq!(c.key_cache.max_stale, Duration::from_secs(3600));
        assert_eq!(c.key_cache.retry_after, Duration::from_secs(5));
        let c = config(&[
            (API_KEY_SSM_PARAMETER_ENV, "/p"),
            (API_KEY_CACHE_SECONDS_ENV, " 2 "),
            (API_KEY_MAX_STALE_SECONDS_ENV, "0"),
        ])
        .unwrap();
        assert_eq!(c.key_cache.max_age, Duration::from_secs(2));
        assert_eq!(c.key_cache.max_stale, Duration::ZERO);
        // Never retried more often than the cache period.
        assert_eq!(c.key_cache.retry_after, Duration::from_secs(2));
        for (name, value) in [
            (API_KEY_CACHE_SECONDS_ENV, "0"),
            (API_KEY_CACHE_SECONDS_ENV, "3601"),
            (API_KEY_CACHE_SECONDS_ENV, "1.5"),
            (API_KEY_CACHE_SECONDS_ENV, "-1"),
            (API_KEY_MAX_STALE_SECONDS_ENV, "86401"),
            (API_KEY_MAX_STALE_SECONDS_ENV, "soon"),
        ] {
            let err = config(&[(API_KEY_SSM_PARAMETER_ENV, "/p"), (name, value)]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { name: n, .. } if *n == name),
                "{name}={value}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let c = ApiConfig::with_key("super-secret");
        assert!(!format!("{c:?}").contains("super-secret"));
    }
}
