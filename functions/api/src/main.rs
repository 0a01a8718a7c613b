//! The API function: wiring only. Builds the DynamoDB store and the router once, then either
//! serves Lambda invocations (`api::lambda::handle` on `lambda_runtime`) or — with `RAS_API_LOCAL_ADDR` or
//! `--serve <addr>` — plain HTTP on that address (the local pipeline).
//!
//! `--print-openapi` prints the OpenAPI document (`docs/openapi.json`) and exits.

use api::config::LOCAL_ADDR_ENV;
use api::{router, ApiConfig, ApiState, KeySource, MetricsSink};
use ras_aws::dynamo::DynamoStore;
use ras_aws::runtime::init_failed;
use std::sync::Arc;
use tracing::info;

type Error = Box<dyn std::error::Error + Send + Sync>;

enum Mode {
    Lambda,
    Serve(String),
    PrintOpenApi,
}

fn mode() -> Result<Mode, Error> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--print-openapi") => Ok(Mode::PrintOpenApi),
        Some("--serve") => args
            .next()
            .map(Mode::Serve)
            .ok_or_else(|| "--serve needs an address, e.g. 127.0.0.1:4003".into()),
        Some(other) => Err(format!(
            "unknown argument `{other}` (expected --serve <addr> or --print-openapi)"
        )
        .into()),
        None => Ok(
            match std::env::var(LOCAL_ADDR_ENV)
                .ok()
                .filter(|a| !a.trim().is_empty())
            {
                Some(addr) => Mode::Serve(addr.trim().to_string()),
                None => Mode::Lambda,
            },
        ),
    }
}

/// mimalloc rather than glibc's malloc: the hot paths build and drop many small maps and
/// strings (DynamoDB items, JSON); see docs/benchmarks.md, "Issue 15 — CPU per record".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mode = mode()?;
    if let Mode::PrintOpenApi = mode {
        print!("{}", api::openapi::document_json());
        return Ok(());
    }
    ras_aws::telemetry::init_tracing();
    let config = match ApiConfig::from_env() {
        Ok(config) => config,
        Err(err) => return Err(init_failed("api", err).await.into()),
    };

    // API Gateway gives up after 30 s: fail a stuck DynamoDB call well before that. Explicit
    // SDK retries (standard, 3 attempts within the 10 s operation timeout): the api has no
    // retry loop of its own (api::sdk).
    let sdk = api::sdk::settings().load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables.clone());
    // The key read blocks the request that finds the cached key expired: an unreachable SSM
    // costs it at most ~2 s, after which the stale key (or a 503) answers (api::auth).
    let ssm =
        matches!(config.key_source, KeySource::SsmParameter(_)).then(|| api::sdk::ssm_client(&sdk));
    let state = match ApiState::new(Arc::new(store), &config, ssm, MetricsSink::Stdout) {
        Ok(state) => state,
        Err(err) => return Err(init_failed("api", err).await.into()),
    };
    let app = router(state);

    match mode {
        Mode::Serve(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            info!(address = %listener.local_addr()?, "serving the query API over plain HTTP");
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
        _ => {
            // An event that is no HTTP request fails with `Api.InvalidEvent` (api::lambda).
            lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event| {
                api::lambda::handle_event(app.clone(), event)
            }))
            .await
        }
    }
}
