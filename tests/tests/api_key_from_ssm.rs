//! The internal API key read from an SSM `SecureString` parameter (with decryption, on first
//! use, then cached) on the local AWS-API server: reading, rotation after the cache period (with
//! the current and previous key accepted side by side), and what happens when SSM cannot be
//! read — the last key stays accepted for a bounded time, without any key the answer is 503.
//!
//! Time is a `ManualClock` except in one test, which uses a 1 s cache period the way a
//! deployment configures it.

use api::auth::ManualClock;
use api::{router, ApiConfig, ApiState, KeySource, MetricsSink, ServiceAuth};
use aws_config::retry::RetryConfig;
use aws_sdk_ssm::types::ParameterType;
use axum::Router;
use ras_tests::local_aws::{endpoint_url, unique};
use ras_tests::query_api::*;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PATH: &str = "/internal/v1/batches/no-such-batch/status";
const UNAVAILABLE: &str = r#"{"error": "Service unavailable"}"#;
const INVALID: &str = r#"{"error": "Invalid credentials"}"#;

async fn put_key(ssm: &aws_sdk_ssm::Client, parameter: &str, value: &str) {
    ssm.put_parameter()
        .name(parameter)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");
}

/// A request with this key and an allowed service: 404 = authenticated (the batch does not
/// exist), 401 = rejected, 503 = no usable key.
async fn status(app: &Router, key: &str) -> u16 {
    get(
        app,
        PATH,
        Auth::Headers {
            key: Some(key),
            service: Some(TEST_SERVICE_ID),
        },
    )
    .await
    .status
    .as_u16()
}

fn ssm_config(parameter: &str) -> ApiConfig {
    ApiConfig {
        key_source: KeySource::SsmParameter(parameter.to_string()),
        ..ApiConfig::with_key("unused")
    }
}

/// The router with the key from `parameter`, cached per `config.key_cache` on `clock`.
fn app_on_clock(
    store: ras_aws::dynamo::DynamoStore,
    config: &ApiConfig,
    ssm: aws_sdk_ssm::Client,
    clock: &ManualClock,
    metrics: MetricsSink,
) -> Router {
    let auth = ServiceAuth::with_clock(config, Some(ssm), Arc::new(clock.clone())).expect("auth");
    router(ApiState::with_auth(Arc::new(store), config, auth, metrics))
}

#[tokio::test]
async fn key_from_ssm_parameter() {
    let (local, store) = local_store().await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let parameter = format!("/ras-tests/{}", unique("api-key"));
    put_key(&ssm, &parameter, "key-from-ssm").await;

    let state = ApiState::new(
        Arc::new(store.clone()),
        &ssm_config(&parameter),
        Some(ssm.clone()),
        MetricsSink::Discard,
    )
    .expect("state");
    let app = router(state);
    assert_eq!(status(&app, "key-from-ssm").await, 404);
    assert_eq!(status(&app, "key-from-ssm").await, 404);
    let r = get(
        &app,
        PATH,
        Auth::Headers {
            key: Some("unused"),
            service: Some(TEST_SERVICE_ID),
        },
    )
    .await;
    assert_eq!((r.status.as_u16(), r.text()), (401, INVALID.to_string()));

    // A parameter that does not exist: 503 without details (and no SSM call without headers).
    let config = ssm_config(&format!("/ras-tests/{}", unique("missing")));
    let app = router(
        ApiState::new(Arc::new(store), &config, Some(ssm), MetricsSink::Discard).expect("state"),
    );
    let r = get(
        &app,
        PATH,
        Auth::Headers {
            key: Some("key-from-ssm"),
            service: Some(TEST_SERVICE_ID),
        },
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (503, UNAVAILABLE.to_string())
    );
    assert_eq!(get(&app, PATH, Auth::None).await.status, 401);
}

/// The key is read again once its cache period is over: after a rotation in SSM the new key is
/// accepted and the old one rejected. (Before issue 11 item 4 the key was read once per
/// sandbox and the old key stayed valid for the sandbox's life.) Uses only the configuration a
/// deployment sets: a 1 s cache period through `RAS_INTERNAL_API_KEY_CACHE_SECONDS`.
#[tokio::test]
async fn a_rotated_key_is_used_once_the_cache_period_is_over() {
    let (local, store) = local_store().await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let parameter = format!("/ras-tests/{}", unique("rotated-key"));
    put_key(&ssm, &parameter, "key-before-rotation").await;
    let config = ApiConfig::from_lookup(|name| match name {
        "RAS_INTERNAL_API_KEY_SSM_PARAMETER" => Some(parameter.clone()),
        "RAS_INTERNAL_API_KEY_CACHE_SECONDS" => Some("1".into()),
        "RAS_STATE_TABLE" => Some(store.config().state_table.clone()),
        _ => None,
    })
    .expect("config");
    let app = router(
        ApiState::new(
            Arc::new(store),
            &config,
            Some(ssm.clone()),
            MetricsSink::Discard,
        )
        .expect("state"),
    );
    assert_eq!(status(&app, "key-before-rotation").await, 404);

    put_key(&ssm, &parameter, "key-after-rotation").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(status(&app, "key-after-rotation").await, 404);
    assert_eq!(status(&app, "key-before-rotation").await, 401);
}

/// The rotation procedure of docs/operations.md, step by step, on a manual clock with the
/// default cache period (60 s): add the new key next to the old one, wait a cache period,
/// switch the callers, remove the old key, wait a cache period.
#[tokio::test]
async fn rotation_with_both_keys_in_the_parameter() {
    let (local, store) = local_store().await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let parameter = format!("/ras-tests/{}", unique("overlap"));
    put_key(&ssm, &parameter, "key-a").await;
    let clock = ManualClock::new();
    let config = ssm_config(&parameter);
    assert_eq!(config.key_cache.max_age, Duration::from_secs(60));
    let app = app_on_clock(store, &config, ssm.clone(), &clock, MetricsSink::Discard);
    let period = config.key_cache.max_age;

    assert_eq!(status(&app, "key-a").await, 404);
    assert_eq!(status(&app, "key-b").await, 401);

    // 1. The new key goes first, the old one stays (newline-separated like a multi-line value;
    //    a comma works too).
    put_key(&ssm, &parameter, "key-b\nkey-a").await;
    clock.advance(period - Duration::from_secs(1));
    assert_eq!(status(&app, "key-b").await, 401, "still the cached value");
    clock.advance(Duration::from_secs(1));
    assert_eq!(status(&app, "key-b").await, 404, "read again after 60 s");
    assert_eq!(status(&app, "key-a").await, 404, "the old key still works");

    // 2. Callers switched; the old key is removed.
    put_key(&ssm, &parameter, "key-b").await;
    clock.advance(period);
    assert_eq!(status(&app, "key-a").await, 401);
    assert_eq!(status(&app, "key-b").await, 404);
    // A prefix, a suffix or the separator-joined value is none of the keys.
    put_key(&ssm, &parameter, " key-c , key-b ").await;
    clock.advance(period);
    for wrong in ["key-c , key-b", "key-c,key-b", "key-", "key-c "] {
        assert_eq!(status(&app, wrong).await, 401, "{wrong:?}");
    }
    assert_eq!(status(&app, "key-c").await, 404);
}

/// A TCP forwarder to the local AWS-API server that can be cut: while down it refuses new
/// connections and drops the open ones (SSM "unreachable"). Counts the connections it forwards.
struct Switch {
    up: watch::Sender<bool>,
    forwarded: Arc<AtomicUsize>,
    url: String,
}

impl Switch {
    async fn start() -> Self {
        let upstream = endpoint_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (up, watch_up) = watch::channel(true);
        let forwarded = Arc::new(AtomicUsize::new(0));
        let count = forwarded.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*watch_up.borrow() {
                    drop(client);
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let mut down = watch_up.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Switch { up, forwarded, url }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// An SSM client through the switch, without retries (one attempt per read).
    fn ssm(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(sdk)
                .endpoint_url(&self.url)
                .retry_config(RetryConfig::disabled())
                .build(),
        )
    }
}

/// `ApiKeyStale` of every EMF document so far (0 where absent).
fn stale_counts(metrics: &Arc<Mutex<Vec<Value>>>) -> Vec<u64> {
    metrics
        .lock()
        .expect("metrics")
        .iter()
        .map(|doc| doc["ApiKeyStale"].as_f64().map_or(0, |v| v as u64))
        .collect()
}

/// SSM unreachable after a key was read: the key stays accepted (and only it) for
/// `max_stale` past its cache period, each such request counted as `ApiKeyStale`; SSM is asked
/// at most once per `retry_after`; past the bound the answer is 503; when SSM is back the key
/// is read again and fresh.
#[tokio::test]
async fn ssm_unreachable_serves_the_last_key_for_a_bounded_time() {
    let (local, store) = local_store().await;
    let parameter = format!("/ras-tests/{}", unique("unreachable"));
    put_key(&aws_sdk_ssm::Client::new(&local.sdk), &parameter, "the-key").await;
    let switch = Switch::start().await;
    let clock = ManualClock::new();
    let mut config = ssm_config(&parameter);
    config.key_cache =
        api::config::KeyCachePolicy::new(Duration::from_secs(60), Duration::from_secs(300));
    let (sink, metrics) = MetricsSink::memory();
    let app = app_on_clock(store, &config, switch.ssm(&local.sdk), &clock, sink);

    assert_eq!(status(&app, "the-key").await, 404);
    assert_eq!(stale_counts(&metrics), [0]);

    switch.set(false);
    clock.advance(Duration::from_secs(61));
    let before = switch.forwarded.load(Ordering::SeqCst);
    assert_eq!(status(&app, "the-key").await, 404, "stale key accepted");
    assert_eq!(status(&app, "another-key").await, 401, "and only it");
    assert_eq!(stale_counts(&metrics), [0, 1, 0]);
    // Within retry_after (5 s) SSM is not asked again; after it, it is (and still fails).
    clock.advance(Duration::from_secs(4));
    assert_eq!(status(&app, "the-key").await, 404);
    clock.advance(Duration::from_secs(2));
    assert_eq!(status(&app, "the-key").await, 404);
    assert_eq!(
        switch.forwarded.load(Ordering::SeqCst),
        before,
        "nothing got through"
    );

    // 60 s cache + 300 s stale after the read: no key is accepted any more.
    clock.advance(Duration::from_secs(300 - 6));
    let r = get(
        &app,
        PATH,
        Auth::Headers {
            key: Some("the-key"),
            service: Some(TEST_SERVICE_ID),
        },
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (503, UNAVAILABLE.to_string())
    );
    assert_eq!(status(&app, "another-key").await, 503);

    // SSM back: after the pause the key is read again and fresh.
    switch.set(true);
    clock.advance(Duration::from_secs(5));
    assert_eq!(status(&app, "the-key").await, 404);
    assert!(switch.forwarded.load(Ordering::SeqCst) > before);
    assert_eq!(stale_counts(&metrics).last(), Some(&0));
}

/// SSM unreachable before any key was read (a cold sandbox): 503 with a JSON body, never an
/// accepted request; requests without the headers are still 401 without an SSM call.
#[tokio::test]
async fn without_any_key_read_the_answer_is_503() {
    let (local, store) = local_store().await;
    let parameter = format!("/ras-tests/{}", unique("never-read"));
    put_key(&aws_sdk_ssm::Client::new(&local.sdk), &parameter, "the-key").await;
    let switch = Switch::start().await;
    switch.set(false);
    let clock = ManualClock::new();
    let config = ssm_config(&parameter);
    let app = app_on_clock(
        store,
        &config,
        switch.ssm(&local.sdk),
        &clock,
        MetricsSink::Discard,
    );

    for key in ["the-key", "anything"] {
        let r = get(
            &app,
            PATH,
            Auth::Headers {
                key: Some(key),
                service: Some(TEST_SERVICE_ID),
            },
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.text()),
            (503, UNAVAILABLE.to_string())
        );
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
    assert_eq!(get(&app, PATH, Auth::None).await.status, 401);
    assert_eq!(switch.forwarded.load(Ordering::SeqCst), 0);

    switch.set(true);
    clock.advance(Duration::from_secs(5));
    assert_eq!(status(&app, "the-key").await, 404);
    assert_eq!(status(&app, "anything").await, 401);
}
