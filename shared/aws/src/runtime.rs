//! Helpers for the Lambda Runtime API shared by the function binaries: the invocation
//! deadline, and init errors ([`init_failed`]).

use lambda_runtime::Diagnostic;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The address (`host:port`) of the Lambda Runtime API, set by Lambda (and by
/// `cargo lambda watch`) for the function's process.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";
/// The Runtime API's path for an error before the first event ("Initialization error",
/// <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror>:
/// the body carries `errorMessage` and `errorType`).
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// Smallest `Lambda-Runtime-Deadline-Ms` taken as a wall-clock time (2001-09-09). Lambda sends
/// milliseconds since the epoch; local emulators may send 0 or a relative timeout instead
/// (`cargo lambda watch` sends `600000`), which would otherwise read as a deadline long past
/// and make every invocation hand its work back at once.
const MIN_WALL_CLOCK_DEADLINE_MS: u64 = 1_000_000_000_000;

/// The invocation deadline as an `Instant`, or `None` when the runtime gave no usable
/// wall-clock deadline.
pub fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms < MIN_WALL_CLOCK_DEADLINE_MS {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// [`deadline_instant`] of the deadline `lambda_runtime` hands over (`Context::deadline()`).
pub fn deadline_of(deadline: SystemTime) -> Option<Instant> {
    let ms = deadline.duration_since(UNIX_EPOCH).ok()?.as_millis();
    deadline_instant(u64::try_from(ms).ok()?)
}

/// The [`Diagnostic`] of `error` under `error_type`: the body of each function's
/// `impl From<E> for Diagnostic` (`errorType` = what failed, `errorMessage` = the error's text).
pub fn diagnostic(error_type: &str, error: &impl fmt::Display) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: error.to_string(),
    }
}

/// An error that stopped a function before its first event, as [`init_failed`] reported it.
#[derive(Debug)]
pub struct InitError {
    pub function: &'static str,
    pub diagnostic: Diagnostic,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.function, self.diagnostic.error_type, self.diagnostic.error_message
        )
    }
}

impl std::error::Error for InitError {}

/// The end of a function whose initialisation failed (configuration, clients): the error as a
/// [`Diagnostic`] (its `errorType` says what failed, e.g. `Config.MissingVariable`), logged,
/// reported to the Runtime API's `/runtime/init/error` when running under one (so Lambda
/// records that `errorType` and message rather than a bare `Runtime.ExitError`), and returned
/// for `main` to exit with.
pub async fn init_failed(function: &'static str, error: impl Into<Diagnostic>) -> InitError {
    let diagnostic = error.into();
    tracing::error!(
        function,
        error_type = %diagnostic.error_type,
        error = %diagnostic.error_message,
        "initialisation failed"
    );
    let runtime_api = std::env::var(RUNTIME_API_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    if let Some(address) = runtime_api {
        if let Err(e) = report_init_error(address.trim(), &diagnostic).await {
            tracing::error!(error = %e, "cannot report the init error to the Lambda Runtime API");
        }
    }
    InitError {
        function,
        diagnostic,
    }
}

/// `POST /runtime/init/error` of the Runtime API at `address` (`host:port`) with `diagnostic`
/// as the body and its `errorType` as `Lambda-Runtime-Function-Error-Type`.
pub async fn report_init_error(
    address: &str,
    diagnostic: &Diagnostic,
) -> Result<(), lambda_runtime::Error> {
    use lambda_runtime_api_client::{body::Body, build_request, PooledClient};
    let base: http::Uri = format!("http://{address}").parse()?;
    let client = PooledClient::builder().with_endpoint(base).build();
    let request = build_request()
        .method(http::Method::POST)
        .uri(INIT_ERROR_PATH)
        .header("lambda-runtime-function-error-type", &diagnostic.error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(diagnostic)?))?;
    let status = client.call(request).await?.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{INIT_ERROR_PATH} answered {status}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    /// A one-request Runtime API: answers 202 and hands back the request's head and body.
    fn one_request_server() -> (String, std::sync::mpsc::Receiver<(String, String)>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut head, mut length) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .unwrap();
            tx.send((head, String::from_utf8(body).unwrap())).unwrap();
        });
        (address, rx)
    }

    #[tokio::test]
    async fn an_init_error_is_posted_with_its_error_type() {
        let (address, requests) = one_request_server();
        let diagnostic = Diagnostic {
            error_type: "Config.MissingVariable".into(),
            error_message: "environment variable RAS_STATE_TABLE is required but not set".into(),
        };
        report_init_error(&address, &diagnostic).await.unwrap();
        let (head, body) = requests.recv().unwrap();
        assert!(
            head.starts_with("POST /2018-06-01/runtime/init/error HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("lambda-runtime-function-error-type: config.missingvariable"),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "errorType": "Config.MissingVariable",
                "errorMessage": "environment variable RAS_STATE_TABLE is required but not set",
            })
        );
        let error = InitError {
            function: "api",
            diagnostic,
        };
        assert_eq!(
            error.to_string(),
            "api: Config.MissingVariable: environment variable RAS_STATE_TABLE is required but not set"
        );
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn a_wall_clock_deadline_becomes_an_instant() {
        let d = deadline_instant(now_ms() + 30_000).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
        // A deadline already past is "now", not "none".
        let past = deadline_instant(now_ms() - 5_000).unwrap();
        assert!(past <= Instant::now());
    }

    #[test]
    fn zero_or_relative_values_are_no_deadline() {
        assert_eq!(deadline_instant(0), None);
        assert_eq!(deadline_instant(600_000), None);
    }
}
