//! Startup and memory benchmarks of the Lambda binaries (SPEC §6), against a local stub of the
//! Lambda Runtime API (`/2018-06-01/runtime/...` on 127.0.0.1, a fresh random port per run).
//!
//! ```text
//! ras-bench startup [--runs N] [--timeout-ms MS] NAME=BINARY...
//! ras-bench invoke --event FILE [--timeout-ms MS] NAME=BINARY
//! ```
//!
//! * `startup`: spawns each binary `N` times (round robin over the binaries, so load from other
//!   processes spreads evenly) and measures process start (just before `spawn`) → arrival of
//!   its first `GET …/invocation/next`, i.e. the function's whole init phase. The `next` call is
//!   left pending and the process killed. `AWS_ENDPOINT_URL` points at a local trap port during
//!   these runs: a connection to it before `next` means the function does network I/O during
//!   init, and is reported. Prints one Markdown table row per binary (median, p90, min, max).
//! * `invoke`: hands the binary one event (the file's bytes) on its first `next`, waits for its
//!   response (or error), then reads the process's peak resident set size (`VmHWM` of
//!   `/proc/<pid>/status`) while it waits on its second `next`. Prints one JSON line.
//!
//! The binaries inherit this process's environment (configuration of the functions, AWS
//! endpoint and credentials); `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME` and the other
//! variables Lambda sets are added per binary. Run through `scripts/bench-startup.sh`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage:
  ras-bench startup [--runs N] [--timeout-ms MS] NAME=BINARY...
  ras-bench invoke --event FILE [--timeout-ms MS] NAME=BINARY";

/// What the stub saw, in order.
#[derive(Debug)]
enum Seen {
    Next(Instant),
    Response(Bytes),
    InvocationError(Bytes),
    InitError(Bytes),
    TrapConnection,
}

struct Stub {
    /// The event handed on the first `next`; later `next` calls stay pending.
    event: Mutex<Option<Vec<u8>>>,
    function_name: String,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn next(State(stub): State<Arc<Stub>>) -> Response {
    let _ = stub.seen.send(Seen::Next(Instant::now()));
    let event = stub.event.lock().map(|mut e| e.take()).unwrap_or(None);
    let Some(event) = event else {
        // Like the real Runtime API between invocations: the call blocks.
        return std::future::pending().await;
    };
    // Lambda's longest timeout (15 min): the functions stop early near their deadline, and the
    // local server is much slower than DynamoDB.
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + 900_000)
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static("ras-bench-1"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&deadline_ms.to_string()) {
        headers.insert("lambda-runtime-deadline-ms", v);
    }
    let arn = format!(
        "arn:aws:lambda:eu-north-1:000000000000:function:{}",
        stub.function_name
    );
    if let Ok(v) = HeaderValue::from_str(&arn) {
        headers.insert("lambda-runtime-invoked-function-arn", v);
    }
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000;Sampled=0"),
    );
    (StatusCode::OK, headers, event).into_response()
}

async fn response(
    State(stub): State<Arc<Stub>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = stub.seen.send(Seen::Response(body));
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(stub): State<Arc<Stub>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = stub.seen.send(Seen::InvocationError(body));
    StatusCode::ACCEPTED
}

async fn init_error(State(stub): State<Arc<Stub>>, body: Bytes) -> StatusCode {
    let _ = stub.seen.send(Seen::InitError(body));
    StatusCode::ACCEPTED
}

/// A stub Runtime API and a trap port, both listening, and the binary running against them.
struct Run {
    child: Child,
    started: Instant,
    seen: mpsc::UnboundedReceiver<Seen>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Run {
    async fn start(
        name: &str,
        binary: &str,
        event: Option<Vec<u8>>,
        trap_aws: bool,
    ) -> Result<Run, Error> {
        let (tx, seen) = mpsc::unbounded_channel();
        let stub = Arc::new(Stub {
            event: Mutex::new(event),
            function_name: name.to_string(),
            seen: tx.clone(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(stub);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?;
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })];

        let mut command = Command::new(binary);
        if trap_aws {
            let trap = TcpListener::bind("127.0.0.1:0").await?;
            command.env("AWS_ENDPOINT_URL", format!("http://{}", trap.local_addr()?));
            tasks.push(tokio::spawn(async move {
                while let Ok((_socket, _)) = trap.accept().await {
                    let _ = tx.send(Seen::TrapConnection);
                }
            }));
        }
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "ras-bench")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_rust")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        Ok(Run {
            child,
            started,
            seen,
            tasks,
        })
    }

    async fn until(&mut self, timeout: Duration) -> Result<Seen, Error> {
        match tokio::time::timeout(timeout, self.seen.recv()).await {
            Ok(Some(seen)) => Ok(seen),
            Ok(None) => Err("stub stopped".into()),
            Err(_) => {
                let status = self.child.try_wait()?;
                Err(
                    format!("nothing from the binary within {timeout:?} (exit status: {status:?})")
                        .into(),
                )
            }
        }
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Time from process start to the first `next`, and connections to the trap before it.
async fn one_start(name: &str, binary: &str, timeout: Duration) -> Result<(Duration, u32), Error> {
    let mut run = Run::start(name, binary, None, true).await?;
    let mut network = 0;
    let result = loop {
        match run.until(timeout).await {
            Ok(Seen::Next(at)) => break Ok((at - run.started, network)),
            Ok(Seen::TrapConnection) => network += 1,
            Ok(Seen::InitError(body)) => {
                break Err(format!("{name}: init error: {}", String::from_utf8_lossy(&body)).into())
            }
            Ok(other) => break Err(format!("{name}: unexpected {other:?} before next").into()),
            Err(e) => break Err(format!("{name}: {e}").into()),
        }
    };
    run.stop().await;
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

async fn startup(args: Args) -> Result<(), Error> {
    if args.binaries.is_empty() {
        return Err(USAGE.into());
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); args.binaries.len()];
    let mut network = vec![0u32; args.binaries.len()];
    // One run of every binary first, discarded: pages the binaries into the page cache.
    for (name, binary) in &args.binaries {
        one_start(name, binary, args.timeout).await?;
    }
    for _ in 0..args.runs {
        for (i, (name, binary)) in args.binaries.iter().enumerate() {
            let (elapsed, connections) = one_start(name, binary, args.timeout).await?;
            samples[i].push(elapsed);
            network[i] += connections;
        }
    }
    println!("| binary | starts | median | p90 | min | max | connections to AWS before `next` |");
    println!("|---|---|---|---|---|---|---|");
    for (i, (name, _)) in args.binaries.iter().enumerate() {
        let s = &mut samples[i];
        s.sort();
        println!(
            "| {name} | {} | {} ms | {} ms | {} ms | {} ms | {} |",
            s.len(),
            ms(percentile(s, 50.0)),
            ms(percentile(s, 90.0)),
            ms(s[0]),
            ms(s[s.len() - 1]),
            network[i]
        );
    }
    Ok(())
}

/// `VmHWM` and `VmRSS` of `/proc/<pid>/status`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64), Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

async fn invoke(args: Args) -> Result<(), Error> {
    let [(name, binary)] = args.binaries.as_slice() else {
        return Err(USAGE.into());
    };
    let Some(event_file) = &args.event else {
        return Err(USAGE.into());
    };
    let event = std::fs::read(event_file).map_err(|e| format!("{event_file}: {e}"))?;
    let event_bytes = event.len();
    let mut run = Run::start(name, binary, Some(event), false).await?;
    let pid = run.child.id().ok_or("the binary exited at once")?;
    let mut init = None;
    let mut handed = None;
    let outcome = loop {
        match run.until(args.timeout).await {
            Ok(Seen::Next(at)) if init.is_none() => {
                init = Some(at - run.started);
                handed = Some(at);
            }
            Ok(Seen::Next(_)) | Ok(Seen::TrapConnection) => {}
            Ok(Seen::Response(body)) => break Ok(("response", body)),
            Ok(Seen::InvocationError(body)) => break Ok(("error", body)),
            Ok(Seen::InitError(body)) => break Ok(("init_error", body)),
            Err(e) => break Err(e),
        }
    };
    let done = Instant::now();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            run.stop().await;
            return Err(format!("{name}: {e}").into());
        }
    };
    // The runtime posts the response, then calls `next` again: wait for that call so the
    // figures are read while the process idles between invocations.
    let _ = run.until(Duration::from_secs(2)).await;
    let memory = memory_kib(pid);
    run.stop().await;
    let (hwm, rss) = memory?;
    let (kind, body) = outcome;
    let body_text = String::from_utf8_lossy(&body);
    let body_json = serde_json::from_slice::<serde_json::Value>(&body)
        .unwrap_or_else(|_| serde_json::Value::String(body_text.chars().take(2000).collect()));
    let line = serde_json::json!({
        "function": name,
        "event_bytes": event_bytes,
        "outcome": kind,
        "init_ms": init.map(|d| d.as_secs_f64() * 1e3),
        "invocation_ms": handed.map(|h| (done - h).as_secs_f64() * 1e3),
        "peak_rss_kib": hwm,
        "rss_after_kib": rss,
        "body": body_json,
    });
    println!("{line}");
    if kind != "response" {
        return Err(format!("{name}: the invocation ended with {kind}").into());
    }
    Ok(())
}

struct Args {
    runs: usize,
    timeout: Duration,
    event: Option<String>,
    binaries: Vec<(String, String)>,
}

fn parse_args(mut rest: impl Iterator<Item = String>) -> Result<Args, Error> {
    let mut args = Args {
        runs: 21,
        timeout: Duration::from_secs(10),
        event: None,
        binaries: Vec::new(),
    };
    while let Some(arg) = rest.next() {
        let mut value = |flag: &str| rest.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--runs" => args.runs = value("--runs")?.parse()?,
            "--timeout-ms" => args.timeout = Duration::from_millis(value("--timeout-ms")?.parse()?),
            "--event" => args.event = Some(value("--event")?),
            other => match other.split_once('=') {
                Some((name, binary)) if !name.is_empty() && !binary.is_empty() => {
                    args.binaries.push((name.to_string(), binary.to_string()))
                }
                _ => return Err(format!("unexpected argument `{other}`\n{USAGE}").into()),
            },
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut argv = std::env::args().skip(1);
    let command = argv.next();
    let args = parse_args(argv)?;
    match command.as_deref() {
        Some("startup") => startup(args).await,
        Some("invoke") => invoke(args).await,
        _ => Err(USAGE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(10));
        assert_eq!(percentile(&sorted, 90.0), Duration::from_millis(18));
        assert_eq!(percentile(&sorted[..1], 90.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn parses_binaries_and_flags() {
        let args = parse_args(
            ["--runs", "5", "ingest=target/ingest", "--event", "e.json"]
                .into_iter()
                .map(String::from),
        )
        .expect("parses");
        assert_eq!(args.runs, 5);
        assert_eq!(args.event.as_deref(), Some("e.json"));
        assert_eq!(
            args.binaries,
            vec![("ingest".to_string(), "target/ingest".to_string())]
        );
        assert!(parse_args(["oops"].into_iter().map(String::from)).is_err());
    }
}
