//! The AWS SDK retry configuration of every function is explicit, and ingest's SDK clients do
//! not retry underneath the handler's own loop (issue 11, item 3: retries were stacked SDK ×
//! handler loop × version re-plans). Each client is pointed at a fake endpoint that answers
//! every request with HTTP 500 (a transient error every SDK retry mode retries), and the HTTP
//! requests one call makes are counted.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Answers every request with `500 InternalServerError` and counts the requests.
struct FailingEndpoint {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl FailingEndpoint {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"__type":"InternalServerError","message":"injected"}"#;
                let out = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(out.as_bytes());
            }
        });
        FailingEndpoint { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// `loader` (a function's settings) pointed at this endpoint with test credentials.
    async fn config(&self, loader: ConfigLoader) -> SdkConfig {
        loader
            .endpoint_url(&self.url)
            .region(Region::new("eu-north-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "fake"))
            .load()
            .await
    }
}

/// HTTP requests of one DynamoDB `GetItem` with the client of `sdk`.
async fn dynamodb_requests(sdk: &SdkConfig, endpoint: &FailingEndpoint) -> usize {
    let before = endpoint.requests();
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let result = client
        .get_item()
        .table_name("ras-state")
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("BATCH#x".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("#ROOT".into()),
        )
        .send()
        .await;
    assert!(result.is_err(), "the fake endpoint answers 500");
    endpoint.requests() - before
}

/// HTTP requests of one SQS `SendMessage` with `client`.
async fn sqs_requests(client: &aws_sdk_sqs::Client, endpoint: &FailingEndpoint) -> usize {
    let before = endpoint.requests();
    let result = client
        .send_message()
        .queue_url(format!("{}/123456789012/ras-ingest-dlq", endpoint.url))
        .message_body("{}")
        .send()
        .await;
    assert!(result.is_err(), "the fake endpoint answers 500");
    endpoint.requests() - before
}

#[tokio::test]
async fn ingest_clients_make_one_http_attempt_per_call() {
    let endpoint = FailingEndpoint::start();
    let sdk = endpoint.config(ingest::sdk::settings().loader()).await;
    assert_eq!(dynamodb_requests(&sdk, &endpoint).await, 1);
    assert_eq!(
        sqs_requests(&aws_sdk_sqs::Client::new(&sdk), &endpoint).await,
        1
    );

    // What ingest's main configured before: the SDK's default (standard mode) retried every
    // call three times underneath each attempt of the handler's loop.
    let default = endpoint
        .config(
            aws_config::defaults(BehaviorVersion::latest()).timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(2))
                    .operation_attempt_timeout(std::time::Duration::from_secs(5))
                    .build(),
            ),
        )
        .await;
    assert_eq!(dynamodb_requests(&default, &endpoint).await, 3);
}

#[tokio::test]
async fn relay_sqs_client_retries_a_stated_number_of_times() {
    let endpoint = FailingEndpoint::start();
    // As relay's main builds it: the function's settings, the default SQS timeout.
    let sdk = endpoint
        .config(relay::sdk::settings(relay::config::DEFAULT_SQS_TIMEOUT).loader())
        .await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    assert_eq!(
        sqs_requests(&client, &endpoint).await,
        relay::sdk::MAX_ATTEMPTS as usize
    );
}

#[tokio::test]
async fn api_clients_retry_a_stated_number_of_times() {
    let endpoint = FailingEndpoint::start();
    let sdk = endpoint.config(api::sdk::settings().loader()).await;
    assert_eq!(
        dynamodb_requests(&sdk, &endpoint).await,
        api::sdk::DYNAMODB_MAX_ATTEMPTS as usize
    );
    let ssm = api::sdk::ssm_client(&sdk);
    let before = endpoint.requests();
    assert!(ssm
        .get_parameter()
        .name("/ras/key")
        .with_decryption(true)
        .send()
        .await
        .is_err());
    assert_eq!(
        endpoint.requests() - before,
        api::sdk::SSM_MAX_ATTEMPTS as usize
    );
}

#[tokio::test]
async fn timer_client_retries_a_stated_number_of_times() {
    let endpoint = FailingEndpoint::start();
    let sdk = endpoint.config(timer::sdk::settings().loader()).await;
    assert_eq!(
        dynamodb_requests(&sdk, &endpoint).await,
        timer::sdk::MAX_ATTEMPTS as usize
    );
}

#[test]
fn the_stated_retry_settings() {
    assert_eq!(ingest::sdk::retry_config().max_attempts(), 1);
    assert_eq!(relay::sdk::retry_config().max_attempts(), 3);
    assert_eq!(api::sdk::retry_config().max_attempts(), 3);
    assert_eq!(api::sdk::ssm_retry_config().max_attempts(), 2);
    assert_eq!(timer::sdk::retry_config().max_attempts(), 3);
    assert_eq!(ras_aws::config::tool_retry_config().max_attempts(), 3);
}
