//! `ras-local`: run the whole pipeline on the local AWS-API server, print what happened, then
//! serve the query API until Ctrl-C. Usually started by `scripts/run-local.sh`, which starts
//! the server and exports its environment first. See `docs/local.md`.

use clap::Parser;
use ras_local::esm::StartingPosition;
use ras_local::pipeline::{
    DEFAULT_CONSUMER_GROUP, DEFAULT_INGEST_BATCH_SIZE, DEFAULT_MAX_DELIVERIES,
    DEFAULT_RELAY_BATCH_SIZE,
};
use ras_local::serve::{api_router, examples, DEFAULT_API_ADDR, LOCAL_API_KEY, LOCAL_SERVICE_ID};
use ras_local::{run_pipeline, summary, PipelineConfig, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ras-local",
    version,
    about = "Produce a scenario to the local Kafka broker, consume it through the MSK event-source emulator into the real ingest handler, relay the outbox through the real relay handler on the local AWS-API server, print a summary, serve the query API"
)]
struct Cli {
    /// Scenario file (default: the built-in events/scenarios/demo.json; format: docs/local.md).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Address of the query API.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_API_ADDR)]
    api_addr: String,
    /// Exit after the summary instead of serving the API.
    #[arg(long)]
    no_serve: bool,
    /// Records per MSK event (Lambda's BatchSize).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_INGEST_BATCH_SIZE as u16,
          value_parser = clap::value_parser!(u16).range(1..=10000))]
    batch_size: u16,
    /// How long the MSK event source gathers records before invoking with a batch that is not
    /// full (Lambda's MaximumBatchingWindowInSeconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(0..=300))]
    batching_window: u16,
    /// The ingest event source's consumer group (its committed offsets are resumed from).
    #[arg(long, value_name = "ID", default_value = DEFAULT_CONSUMER_GROUP)]
    consumer_group: String,
    /// Where partitions without a committed offset start: the log start (trim-horizon, the
    /// template's) or its end when the event source starts (latest).
    #[arg(long, value_name = "POSITION", default_value = "trim-horizon",
          value_parser = ["trim-horizon", "latest"])]
    starting_position: String,
    /// Records per outbox stream event.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RELAY_BATCH_SIZE as u16,
          value_parser = clap::value_parser!(u16).range(1..=10000))]
    relay_batch_size: u16,
    /// Deliveries of a failing record / stream position before giving up.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_DELIVERIES,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    max_deliveries: u32,
    /// The facts timer's grace period; the timer stage runs this long after the ingest clock.
    #[arg(long, value_name = "SECONDS", default_value_t = timer::DEFAULT_GRACE_SECONDS,
          value_parser = clap::value_parser!(u64).range(60..=86400))]
    facts_grace: u64,
    /// Skip the facts timer stage (batches whose facts are incomplete keep waiting).
    #[arg(long)]
    no_facts_timer: bool,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs (the handlers' warnings, e.g. dead letters) go to stderr; the summary to stdout.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ras-local: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let scenario = match &cli.scenario {
        Some(path) => Scenario::from_file(path),
        None => Scenario::demo(),
    }
    .map_err(|e| e.to_string())?;
    let mut config = PipelineConfig::from_env(scenario)
        .await
        .map_err(|e| e.to_string())?;
    config.ingest_batch_size = usize::from(cli.batch_size);
    config.batching_window = std::time::Duration::from_secs(u64::from(cli.batching_window));
    config.consumer_group = cli.consumer_group.clone();
    config.starting_position = if cli.starting_position == "latest" {
        StartingPosition::Latest
    } else {
        StartingPosition::TrimHorizon
    };
    config.relay_batch_size = usize::from(cli.relay_batch_size);
    config.max_deliveries = cli.max_deliveries;
    config.timer_settings.grace_seconds = cli.facts_grace;
    config.facts_timer_after =
        (!cli.no_facts_timer).then(|| std::time::Duration::from_secs(cli.facts_grace));

    let report = run_pipeline(&config).await.map_err(|e| e.to_string())?;
    if cli.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", summary::render(&report));
    }
    let incomplete = !report.ingest.gave_up.is_empty() || !report.relay.gave_up.is_empty();
    if cli.no_serve {
        return Ok(if incomplete {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    let app = api_router(&config.sdk, &config.tables, LOCAL_API_KEY).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&cli.api_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.api_addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    // With --json, stdout is the report alone.
    let out = |line: String| {
        if cli.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    out(format!("\n10. Query API on {base} (Ctrl-C to stop)"));
    out(format!(
        "  headers: X-Internal-API-Key: {LOCAL_API_KEY}   X-Service-ID: {LOCAL_SERVICE_ID}"
    ));
    for example in examples(&report) {
        out(format!("  # {}", example.what));
        out(format!(
            "  {}",
            example.curl(&base, LOCAL_API_KEY, LOCAL_SERVICE_ID)
        ));
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("serving the API: {e}"))?;
    out("ras-local: stopped".to_string());
    Ok(if incomplete {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
