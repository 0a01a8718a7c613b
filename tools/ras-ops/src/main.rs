//! `ras-ops`: operations on the Result Aggregator. See `docs/operations.md`.
//!
//! ```text
//! ras-ops republish --event-id <ID> [--event-id <ID>...] [--dry-run]
//! ras-ops republish --from <TIME> --to <TIME> [--dry-run]
//! ras-ops republish --parked [--max N] [--queue-url URL] [--dry-run]
//! ras-ops redrive-dlq [--max N] [--dry-run] [--queue-url URL]
//! ```
//!
//! Prints a JSON report on stdout; logs go to stderr. Exit status: 0 when everything selected
//! was done, 1 when something was left (failed, not found, kept on the queue), 2 on bad usage
//! or configuration, 3 when AWS could not be reached.

// The republish futures over the routed publisher (SQS + Kafka) nest deeper than the default 128.
#![recursion_limit = "256"]

use clap::{Args, Parser, Subcommand};
use ras_aws::config::{load_sdk_config, process_env, StoreConfig};
use ras_aws::dynamo::DynamoStore;
use ras_aws::kafka_publisher::{KafkaPublisher, KafkaSettings};
use ras_aws::parking::PARKED_QUEUE_URL_ENV;
use ras_aws::routing::{RoutedPublisher, Routes};
use ras_aws::sqs_publisher::{QueueUrls, SqsPublisher};
use ras_domain::contracts::Timestamp;
use ras_ops::redrive::{redrive, RedriveOptions};
use ras_ops::republish::{republish, republish_parked, select, ParkedOptions, Selection};
use ras_ops::OpsError;
use std::process::ExitCode;
use uuid::Uuid;

/// Environment variable of the ingest dead-letter queue URL.
const INGEST_DLQ_URL_ENV: &str = "RAS_INGEST_DLQ_URL";

#[derive(Debug, Parser)]
#[command(
    name = "ras-ops",
    version,
    about = "Result Aggregator operations: re-publish outbox items, re-drive the ingest dead-letter queue"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send outbox items to their queues again (same bytes, same deduplication id).
    Republish(RepublishArgs),
    /// Feed the ingest dead-letter queue back through the ingest path.
    RedriveDlq(RedriveArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["event_id", "from", "parked"])))]
struct RepublishArgs {
    /// Event id of an outbox item (repeatable).
    #[arg(long = "event-id", value_name = "ID", conflicts_with_all = ["from", "to", "parked"])]
    event_id: Vec<Uuid>,
    /// The messages the relay parked: read the parking queue, re-publish what its records
    /// name, delete each record whose message went out.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    parked: bool,
    /// With --parked: handle at most this many parking records (default 100).
    #[arg(long, conflicts_with_all = ["from", "to", "event_id"], value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max: Option<u32>,
    /// With --parked: the parking queue (default: $RAS_RELAY_PARKED_QUEUE_URL).
    #[arg(long, value_name = "URL", conflicts_with_all = ["from", "to", "event_id"])]
    queue_url: Option<String>,
    /// Start of a `created_at` window (inclusive): `2025-11-27T10:00:00Z`, an offset, or naive UTC.
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "to")]
    from: Option<Timestamp>,
    /// End of the window (inclusive).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "from")]
    to: Option<Timestamp>,
    /// List what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct RedriveArgs {
    /// Re-drive at most this many messages.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max: u32,
    /// Decode and report; write nothing, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// The dead-letter queue (default: $RAS_INGEST_DLQ_URL).
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text)
        .ok_or_else(|| format!("`{text}` is not a date-time (e.g. 2025-11-27T10:00:00Z)"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_init();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ras-ops: {e}");
            match e {
                OpsError::Usage(_) | OpsError::Config(_) => ExitCode::from(2),
                _ => ExitCode::from(3),
            }
        }
    }
}

/// Logs on stderr (stdout carries the report); level from `RUST_LOG`, default `warn`.
fn tracing_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

async fn run(cli: Cli) -> Result<bool, OpsError> {
    let sdk = load_sdk_config().await;
    match cli.command {
        Command::Republish(args) if args.parked => {
            let url = queue_url(args.queue_url, PARKED_QUEUE_URL_ENV)?;
            let store = store(&sdk)?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let publisher = publisher(sqs.clone())?;
            let options = ParkedOptions {
                max: args
                    .max
                    .map_or(ParkedOptions::default().max, |m| m as usize),
                dry_run: args.dry_run,
                ..ParkedOptions::default()
            };
            let report = republish_parked(&sqs, &url, &store, &publisher, &options).await?;
            print_json(&report);
            Ok(report.is_complete())
        }
        Command::Republish(args) => {
            let selection = match (args.from, args.to) {
                (Some(from), Some(to)) => Selection::Window { from, to },
                _ => Selection::EventIds(args.event_id),
            };
            let store = store(&sdk)?;
            let publisher = publisher(aws_sdk_sqs::Client::new(&sdk))?;
            let (items, not_found) = select(&store, &selection).await?;
            let report = republish(&publisher, &items, not_found, args.dry_run).await;
            print_json(&report);
            Ok(report.is_complete())
        }
        Command::RedriveDlq(args) => {
            let url = queue_url(args.queue_url, INGEST_DLQ_URL_ENV)?;
            let store = store(&sdk)?;
            let options = RedriveOptions {
                max: args.max as usize,
                dry_run: args.dry_run,
                ..RedriveOptions::default()
            };
            let report = redrive(&aws_sdk_sqs::Client::new(&sdk), &url, &store, &options).await?;
            print_json(&report);
            Ok(report.is_complete())
        }
    }
}

/// Where a re-published message goes: the relay's routes and Kafka settings, from the same
/// variables as the relay (`RAS_EVENTS_PUBLISH_TO`, `RAS_NOTIFICATIONS_PUBLISH_TO`,
/// `RAS_KAFKA_*`; docs/operations.md). Publishing to MSK needs a network path to the brokers.
fn publisher(
    sqs: aws_sdk_sqs::Client,
) -> Result<RoutedPublisher<SqsPublisher, KafkaPublisher>, OpsError> {
    let env = process_env();
    let config = |e: ras_aws::config::ConfigError| OpsError::Config(e.to_string());
    let queues = QueueUrls::from_config(&env).map_err(config)?;
    let routes = Routes::from_config(&env).map_err(config)?;
    let kafka = if routes.uses_kafka() {
        Some(KafkaPublisher::new(
            KafkaSettings::from_env(&env).map_err(config)?,
        ))
    } else {
        None
    };
    RoutedPublisher::new(routes, SqsPublisher::new(sqs, queues), kafka)
        .map_err(|e| OpsError::Config(e.to_string()))
}

/// `--queue-url`, else the environment variable `env`.
fn queue_url(arg: Option<String>, env: &'static str) -> Result<String, OpsError> {
    arg.map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .or_else(|| process_env().get(env))
        .ok_or_else(|| OpsError::Config(format!("no queue: pass --queue-url or set {env}")))
}

/// The store over `RAS_STATE_TABLE` / `RAS_OUTBOX_TABLE` (both required).
fn store(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, OpsError> {
    let tables = StoreConfig::from_env().map_err(|e| OpsError::Config(e.to_string()))?;
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables))
}

fn print_json<T: serde::Serialize>(report: &T) {
    match serde_json::to_string_pretty(report) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("ras-ops: cannot print the report: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn republish_by_ids_or_window() {
        let cli = Cli::try_parse_from([
            "ras-ops",
            "republish",
            "--event-id",
            "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41",
            "--event-id",
            "0b5b1a8c9a1e4f7e8f0d2f4c2c0d9e11",
        ])
        .unwrap();
        let Command::Republish(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.event_id.len(), 2);
        let cli = Cli::try_parse_from([
            "ras-ops",
            "republish",
            "--from",
            "2025-11-27T10:00:00Z",
            "--to",
            "2025-11-27T11:00:00+01:00",
            "--dry-run",
        ])
        .unwrap();
        let Command::Republish(args) = cli.command else {
            panic!()
        };
        assert!(args.dry_run && args.from.is_some() && args.to.is_some());
        // Neither, both kinds, half a window, a bad id: usage errors.
        assert!(Cli::try_parse_from(["ras-ops", "republish"]).is_err());
        assert!(
            Cli::try_parse_from(["ras-ops", "republish", "--from", "2025-11-27T10:00:00Z"])
                .is_err()
        );
        assert!(Cli::try_parse_from([
            "ras-ops",
            "republish",
            "--event-id",
            "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41",
            "--from",
            "2025-11-27T10:00:00Z",
            "--to",
            "2025-11-27T11:00:00Z",
        ])
        .is_err());
        assert!(Cli::try_parse_from(["ras-ops", "republish", "--event-id", "nope"]).is_err());
        // The parking queue: alone, with its own options only.
        let cli = Cli::try_parse_from(["ras-ops", "republish", "--parked", "--max", "5"]).unwrap();
        let Command::Republish(args) = cli.command else {
            panic!()
        };
        assert!(args.parked && args.max == Some(5) && args.event_id.is_empty());
        assert!(Cli::try_parse_from([
            "ras-ops",
            "republish",
            "--parked",
            "--event-id",
            "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41",
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "ras-ops",
            "republish",
            "--max",
            "5",
            "--from",
            "2025-11-27T10:00:00Z",
            "--to",
            "2025-11-27T11:00:00Z"
        ])
        .is_err());
    }

    #[test]
    fn redrive_options() {
        let cli =
            Cli::try_parse_from(["ras-ops", "redrive-dlq", "--max", "5", "--dry-run"]).unwrap();
        let Command::RedriveDlq(args) = cli.command else {
            panic!()
        };
        assert_eq!((args.max, args.dry_run), (5, true));
        assert!(Cli::try_parse_from(["ras-ops", "redrive-dlq", "--max", "0"]).is_err());
    }
}
