//! The internal API key read from an SSM `SecureString` parameter (with decryption, on first
//! use) on the local AWS-API server.

use api::{router, ApiConfig, ApiState, KeySource, MetricsSink};
use aws_sdk_ssm::types::ParameterType;
use ras_tests::local_aws::unique;
use ras_tests::query_api::*;
use std::sync::Arc;

#[tokio::test]
async fn key_from_ssm_parameter() {
    let (local, store) = local_store().await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let parameter = format!("/ras-tests/{}", unique("api-key"));
    ssm.put_parameter()
        .name(&parameter)
        .value("key-from-ssm")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .expect("PutParameter");

    let config = ApiConfig {
        key_source: KeySource::SsmParameter(parameter),
        ..ApiConfig::with_key("unused")
    };
    let state = ApiState::new(
        Arc::new(store.clone()),
        &config,
        Some(ssm.clone()),
        MetricsSink::Discard,
    )
    .expect("state");
    let app = router(state);
    let path = "/internal/v1/batches/no-such-batch/status";
    let with_key = |key: &'static str| Auth::Headers {
        key: Some(key),
        service: Some(TEST_SERVICE_ID),
    };
    assert_eq!(get(&app, path, with_key("key-from-ssm")).await.status, 404);
    assert_eq!(get(&app, path, with_key("key-from-ssm")).await.status, 404);
    let r = get(&app, path, with_key("unused")).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (401, r#"{"error": "Invalid credentials"}"#.to_string())
    );

    // A parameter that cannot be read: 500 without details (and no SSM call without headers).
    let config = ApiConfig {
        key_source: KeySource::SsmParameter(format!("/ras-tests/{}", unique("missing"))),
        ..ApiConfig::with_key("unused")
    };
    let app = router(
        ApiState::new(Arc::new(store), &config, Some(ssm), MetricsSink::Discard).expect("state"),
    );
    let r = get(&app, path, with_key("key-from-ssm")).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (500, r#"{"error": "Internal server error"}"#.to_string())
    );
    assert_eq!(get(&app, path, Auth::None).await.status, 401);
}
