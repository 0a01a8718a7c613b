//! Every error of the query API, bodies compared byte for byte with the reference's golden
//! error bodies where it has one: both 401 texts, 404, each 400 (SPEC §3.10), 500 when the
//! store is unreachable (nothing internal leaks), and the JSON 404/405 fallbacks.

use ras_tests::huleedu::{Scope, REGISTERED, SPELLCHECK};
use ras_tests::query_api::*;
use serde_json::json;

const PROTECTED_ROUTES: [&str; 4] = [
    "/internal/v1/batches/some-batch/status",
    "/internal/v1/batches/user/some-user",
    "/internal/v1/assessments/some-job",
    "/internal/v1/batches/some-batch/assessments",
];

fn golden_text(file: &str) -> String {
    String::from_utf8(golden_bytes(file)).expect("UTF-8")
}

#[tokio::test]
async fn missing_authentication_is_401_with_the_reference_body() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let expected = golden_text("401_missing_headers.json");
    let cases = [
        Auth::None,
        Auth::Headers {
            key: Some(TEST_API_KEY),
            service: None,
        },
        Auth::Headers {
            key: None,
            service: Some(TEST_SERVICE_ID),
        },
        Auth::Headers {
            key: Some(""),
            service: Some(TEST_SERVICE_ID),
        },
        Auth::Headers {
            key: Some(TEST_API_KEY),
            service: Some(""),
        },
    ];
    for path in PROTECTED_ROUTES {
        for auth in cases {
            let r = get(&app, path, auth).await;
            assert_eq!(
                (r.status.as_u16(), r.text()),
                (401, expected.clone()),
                "{path} {auth:?}"
            );
        }
    }
}

#[tokio::test]
async fn invalid_credentials_is_401_with_the_reference_body() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let expected = golden_text("401_invalid_credentials.json");
    let cases = [
        Auth::Headers {
            key: Some("wrong-key"),
            service: Some(TEST_SERVICE_ID),
        },
        Auth::Headers {
            key: Some(TEST_API_KEY),
            service: Some("unknown-service"),
        },
        Auth::Headers {
            key: Some("wrong-key"),
            service: Some("unknown-service"),
        },
        Auth::Headers {
            key: Some(&TEST_API_KEY.to_uppercase()),
            service: Some(TEST_SERVICE_ID),
        },
    ];
    for path in PROTECTED_ROUTES {
        for auth in cases {
            let r = get(&app, path, auth).await;
            assert_eq!(
                (r.status.as_u16(), r.text()),
                (401, expected.clone()),
                "{path} {auth:?}"
            );
        }
    }
    // Every allowed service gets in.
    for service in [
        "api-gateway-service",
        "admin-dashboard-service",
        "bff-teacher-service",
    ] {
        let r = get(
            &app,
            PROTECTED_ROUTES[0],
            Auth::Headers {
                key: Some(TEST_API_KEY),
                service: Some(service),
            },
        )
        .await;
        assert_eq!(r.status, 404, "{service}");
    }
}

#[tokio::test]
async fn unknown_or_unregistered_batch_is_404_with_the_reference_body() {
    let (_local, store) = local_store().await;
    let scope = Scope::new();
    // A result for a batch that is not registered yet is kept but the batch is not served.
    ingest(&store, SPELLCHECK, &scope.fixture(SPELLCHECK)).await;
    let app = app(store.clone());
    let expected = golden_text("404_batch_not_found.json");
    for batch in [scope.batch.as_str(), "no-such-batch"] {
        for suffix in ["status", "assessments"] {
            let r = get(
                &app,
                &format!("/internal/v1/batches/{batch}/{suffix}"),
                Auth::Valid,
            )
            .await;
            assert_eq!(
                (r.status.as_u16(), r.text()),
                (404, expected.clone()),
                "{batch} {suffix}"
            );
        }
    }
    let r = get(&app, "/internal/v1/assessments/no-such-job", Auth::Valid).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (404, r#"{"error": "Assessment not found"}"#.to_string())
    );

    ingest(&store, REGISTERED, &scope.fixture(REGISTERED)).await;
    let r = get(
        &app,
        &format!("/internal/v1/batches/{}/status", scope.batch),
        Auth::Valid,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["essays"][0]["spellcheck_status"], "completed");
}

#[tokio::test]
async fn ids_that_cannot_exist_are_400() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let invalid_batch = golden_text("400_invalid_batch_id.json");
    let long = "b".repeat(256);
    let longest = "b".repeat(255);
    for id in [long.as_str(), "bad%01id", "bad%0Aid", ""] {
        for suffix in ["status", "assessments"] {
            let r = get(
                &app,
                &format!("/internal/v1/batches/{id}/{suffix}"),
                Auth::Valid,
            )
            .await;
            assert_eq!(
                (r.status.as_u16(), r.text()),
                (400, invalid_batch.clone()),
                "{id:?} {suffix}"
            );
        }
    }
    // 255 bytes can exist: looked up, not found.
    let r = get(
        &app,
        &format!("/internal/v1/batches/{longest}/status"),
        Auth::Valid,
    )
    .await;
    assert_eq!(r.status, 404);
    for id in [long.as_str(), "bad%01id", ""] {
        let r = get(
            &app,
            &format!("/internal/v1/batches/user/{id}"),
            Auth::Valid,
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.text()),
            (400, r#"{"error": "Invalid user ID"}"#.to_string()),
            "{id:?}"
        );
        let r = get(&app, &format!("/internal/v1/assessments/{id}"), Auth::Valid).await;
        assert_eq!(
            (r.status.as_u16(), r.text()),
            (400, r#"{"error": "Invalid assessment ID"}"#.to_string()),
            "{id:?}"
        );
    }
    // Authentication still comes first.
    let r = get(
        &app,
        &format!("/internal/v1/batches/{long}/status"),
        Auth::None,
    )
    .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let cases = [
        ("limit=0", "Invalid limit"),
        ("limit=101", "Invalid limit"),
        ("limit=-5", "Invalid limit"),
        ("limit=ten", "Invalid limit"),
        ("limit=", "Invalid limit"),
        ("offset=-1", "Invalid offset"),
        ("offset=abc", "Invalid offset"),
        ("status=processing", "Invalid status"),
        ("status=not_a_status", "Invalid status"),
        ("limit=5&status=bogus", "Invalid status"),
    ];
    for (query, error) in cases {
        let r = get(
            &app,
            &format!("/internal/v1/batches/user/some-user?{query}"),
            Auth::Valid,
        )
        .await;
        assert_eq!(r.status, 400, "{query}: {}", r.describe());
        assert_eq!(
            r.text(),
            serde_json::to_string(&json!({"error": error}))
                .expect("json")
                .replace(":", ": "),
            "{query}"
        );
    }
}

#[tokio::test]
async fn unreachable_store_is_500_without_details_and_health_is_503() {
    let app = app(unreachable_store().await);
    let expected = golden_text("500_internal.json");
    for path in PROTECTED_ROUTES {
        let r = get(&app, path, Auth::Valid).await;
        assert_eq!(
            (r.status.as_u16(), r.text()),
            (500, expected.clone()),
            "{path}"
        );
    }
    let r = get(&app, "/healthz", Auth::None).await;
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["dependencies_available"], false);
    assert_eq!(
        body["dependencies"]["dynamodb"],
        json!({"status": "unhealthy", "error": "state table unreachable"})
    );
    assert!(
        !r.text().contains("127.0.0.1"),
        "no internals in the body: {}",
        r.text()
    );
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (_local, store) = local_store().await;
    let app = app(store);
    let not_found = r#"{"error": "Not found"}"#;
    let r = get(&app, "/nowhere", Auth::None).await;
    assert_eq!((r.status.as_u16(), r.text()), (404, not_found.to_string()));
    // Under /internal/v1 a stranger learns nothing about which paths exist.
    let r = get(&app, "/internal/v1/nowhere", Auth::None).await;
    assert_eq!(r.status, 401);
    let r = get(&app, "/internal/v1/nowhere", Auth::Valid).await;
    assert_eq!((r.status.as_u16(), r.text()), (404, not_found.to_string()));
    let r = get(&app, "/internal/v1/batches/b/status/extra", Auth::Valid).await;
    assert_eq!(r.status, 404);
    let r = request(
        &app,
        "POST",
        "/internal/v1/batches/b/status",
        Auth::Valid,
        &[],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (405, r#"{"error": "Method not allowed"}"#.to_string())
    );
}
