//! The whole pipeline on the local AWS-API server and the local Kafka broker, with the
//! functions' real handlers:
//!
//! 1. **ingest** — the scenario's records are produced to the six consumed topics of the broker
//!    (keyed, each on the partition Kafka's default partitioner gives its key); the MSK
//!    event-source emulator ([`crate::esm`], the test kit's simulator over the broker) polls
//!    them as the consumer group, hands `ingest::handler::process_event` (on the DynamoDB store
//!    and the SQS dead-letter queue) the event JSON Lambda builds, and commits the group's
//!    offsets from the partial batch responses, retrying failed partitions like Lambda
//!    (bounded by `max_deliveries`);
//! 2. **timer** — the facts timer (`functions/timer`) once, on a clock `facts_timer_after`
//!    past the ingest clock (default: the grace period, as if the scheduled timer ran when the
//!    wait of every batch still waiting was over): batches reported complete whose facts did not
//!    all arrive get their results-ready event, flagged;
//! 3. **relay** — the outbox table's stream read with the DynamoDB Streams API, `INSERT`s only
//!    (the template's filter), per shard in events of at most `relay_batch_size` records,
//!    through `relay::Relay` with the relay's routed publisher (`ras_aws::routing`: the SQS
//!    queues and/or the broker's published topics, per `routes`); a reported checkpoint is
//!    re-sent from that sequence number (bounded);
//! 4. **summary** — each batch's status from the store (the API's projection), the messages on
//!    the events and notifications queues and the dead letters (received and deleted, like a
//!    consumer), what a Kafka consumer reads from the published topics, and the requests
//!    counted on the wire.

use crate::broker::{
    produce_scenario, read_from, topic_ends, Broker, BrokerSource, Produced, DEFAULT_PARTITIONS,
};
use crate::counter::RequestCounter;
use crate::esm::{
    EmulatorSettings, EmulatorStats, InvokeResult, KafkaSource, MskEmulator, StartingPosition,
};
use crate::msk::{partition_key, try_kafka_event};
use crate::resources::INGEST_DLQ_URL_ENV;
use crate::scenario::Scenario;
use crate::stream::{
    is_insert, sequence_number, try_lambda_event, OutboxStream, ShardRecords, StreamError,
};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use ingest::handler::{process_event, Deps, Disposition, HandlerSettings};
use ras_aws::config::{process_env, ConfigError, StoreConfig};
use ras_aws::dead_letter::SqsDeadLetterQueue;
use ras_aws::dynamo::DynamoStore;
use ras_aws::kafka_publisher::{KafkaPublisher, KafkaSettings};
use ras_aws::parking::{SqsParking, PARKED_QUEUE_URL_ENV};
use ras_aws::routing::{RoutedPublisher, Routes, Transport};
use ras_aws::sqs_publisher::{QueueUrls, SqsPublisher};
use ras_domain::contracts::{ConsumedTopic, PublishedTopic, Timestamp};
use ras_domain::ports::{
    AggregateStore, BatchReader, DeadLetter, DeadLetterSink, MessagePublisher,
};
use ras_domain::service::RecordOutcome;
use ras_test_kit::event_source::{
    deployed_ingest_source_config, EventSourceConfig, Outcome as KitOutcome,
};
use relay::breaker::{BreakerSettings, CircuitBreaker};
use relay::clock::SystemClock;
use relay::Relay;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timer::TimerSettings;

pub const ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL";

/// Records per MSK event (the template's `BatchSize` is 100; smaller events show the
/// per-invocation behaviour on a small scenario).
pub const DEFAULT_INGEST_BATCH_SIZE: usize = 10;
/// Records per stream event (the template's `BatchSize`).
pub const DEFAULT_RELAY_BATCH_SIZE: usize = 100;
/// Deliveries of one record or stream position before giving up (the first included).
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// `MaximumBatchingWindowInSeconds` of the template's MSK event source.
pub const DEFAULT_BATCHING_WINDOW: Duration = Duration::from_secs(1);
/// The template's `KafkaConsumerGroupId` default.
pub const DEFAULT_CONSUMER_GROUP: &str = "result_aggregator_group";
/// The local cluster's ARN in the events (`eventSourceArn`).
pub const LOCAL_CLUSTER_ARN: &str =
    "arn:aws:kafka:us-east-1:000000000000:cluster/ras-local/00000000-0000-0000-0000-000000000000-1";
/// How long the ingest stage waits for the produced records to be committed.
pub const INGEST_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Config(String),
    #[error("building the MSK event: {0}")]
    Event(String),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("outbox stream: {0}")]
    Stream(#[from] StreamError),
    #[error("relay: {0}")]
    Relay(String),
    #[error("{operation}: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
}

fn aws(operation: &'static str, err: impl std::error::Error) -> PipelineError {
    PipelineError::Aws {
        operation,
        message: format!("{}", aws_sdk_sqs::error::DisplayErrorContext(err)),
    }
}

/// SDK configuration for the local AWS-API server of `AWS_ENDPOINT_URL` (required: this tool
/// never talks to real AWS): static test credentials, region `AWS_REGION` (default
/// `us-east-1`), the functions' timeouts.
pub async fn local_sdk_config() -> Result<SdkConfig, PipelineError> {
    let endpoint = std::env::var(ENDPOINT_ENV)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            PipelineError::Config(format!(
                "{ENDPOINT_ENV} is not set: start the local AWS-API server and load its environment \
                 (infra/local/start.sh && source infra/local/env.sh), or use scripts/run-local.sh"
            ))
        })?;
    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "us-east-1".to_string());
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "ras-local",
        ))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await)
}

/// What to run, and where.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub sdk: SdkConfig,
    pub tables: StoreConfig,
    pub queues: QueueUrls,
    pub ingest_dead_letter_queue: String,
    /// The relay's parking queue (`RAS_RELAY_PARKED_QUEUE_URL`); `None`: the relay parks
    /// nothing (a message SQS refuses stays unsent, as without the parking queue).
    pub parked_queue: Option<String>,
    pub scenario: Scenario,
    /// Where the relay publishes events and notifications (SQS, Kafka or both).
    pub routes: Routes,
    /// The local broker (`RAS_KAFKA_BOOTSTRAP`).
    pub kafka_bootstrap: String,
    /// The ingest event source's consumer group (committed offsets).
    pub consumer_group: String,
    /// Where partitions without a committed offset start.
    pub starting_position: StartingPosition,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// Partitions of consumed topics created because they were missing.
    pub topic_partitions: i32,
    pub ingest_batch_size: usize,
    pub relay_batch_size: usize,
    pub max_deliveries: u32,
    pub ingest_settings: HandlerSettings,
    /// A fixed wall clock for the ingest handler (published `event_timestamp`s); `None`: now.
    pub clock: Option<Timestamp>,
    /// The facts timer's settings (its grace period).
    pub timer_settings: TimerSettings,
    /// Run the facts timer this long after the ingest clock; `None`: not at all.
    pub facts_timer_after: Option<Duration>,
}

impl PipelineConfig {
    pub fn new(
        sdk: SdkConfig,
        tables: StoreConfig,
        queues: QueueUrls,
        ingest_dead_letter_queue: String,
        scenario: Scenario,
        kafka_bootstrap: String,
    ) -> Self {
        PipelineConfig {
            sdk,
            tables,
            queues,
            ingest_dead_letter_queue,
            parked_queue: None,
            scenario,
            routes: Routes {
                events: Transport::Both,
                notifications: Transport::Both,
            },
            kafka_bootstrap,
            consumer_group: DEFAULT_CONSUMER_GROUP.to_string(),
            starting_position: StartingPosition::TrimHorizon,
            batching_window: DEFAULT_BATCHING_WINDOW,
            topic_partitions: DEFAULT_PARTITIONS,
            ingest_batch_size: DEFAULT_INGEST_BATCH_SIZE,
            relay_batch_size: DEFAULT_RELAY_BATCH_SIZE,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            ingest_settings: HandlerSettings::default(),
            clock: None,
            timer_settings: TimerSettings::default(),
            facts_timer_after: Some(Duration::from_secs(timer::DEFAULT_GRACE_SECONDS)),
        }
    }

    /// Tables and queues from the environment `infra/local/env.sh` exports (`RAS_STATE_TABLE`,
    /// `RAS_OUTBOX_TABLE`, `RAS_EVENTS_QUEUE_URL`, `RAS_NOTIFICATIONS_QUEUE_URL`,
    /// `RAS_INGEST_DLQ_URL`), the broker `infra/local/kafka-start.sh` exports
    /// (`RAS_KAFKA_BOOTSTRAP`) and the local SDK configuration.
    pub async fn from_env(scenario: Scenario) -> Result<Self, PipelineError> {
        let sdk = local_sdk_config().await?;
        let env = process_env();
        let config_error = |e: ConfigError| {
            PipelineError::Config(format!("{e} (source infra/local/env.sh first)"))
        };
        let queues = QueueUrls::from_config(&env).map_err(config_error)?;
        let dead_letters = env.required(INGEST_DLQ_URL_ENV).map_err(config_error)?;
        let tables = env.store().map_err(config_error)?;
        let bootstrap = Broker::bootstrap_from_env().map_err(PipelineError::Config)?;
        let mut config = Self::new(sdk, tables, queues, dead_letters, scenario, bootstrap);
        config.parked_queue = env.get(PARKED_QUEUE_URL_ENV);
        // The relay's routes, as the function reads them (infra/local/env.sh: SQS; the broker's
        // kafka.env: both).
        config.routes = Routes::from_config(&env).map_err(config_error)?;
        Ok(config)
    }

    /// The emulator's settings: the template's MSK event source with this run's batch size,
    /// batching window and delivery bound (`max_deliveries` − 1 retries; the template retries
    /// forever, a local run must end).
    pub fn emulator_settings(&self) -> EmulatorSettings {
        let source = EventSourceConfig {
            batch_size: self.ingest_batch_size,
            maximum_retry_attempts: i64::from(self.max_deliveries.saturating_sub(1)),
            ..deployed_ingest_source_config()
        };
        EmulatorSettings {
            source,
            batching_window: self.batching_window,
            starting_position: self.starting_position,
            topics: ConsumedTopic::ALL
                .iter()
                .map(|t| t.name().to_string())
                .collect(),
            event_source_arn: LOCAL_CLUSTER_ARN.to_string(),
            bootstrap_servers: self.kafka_bootstrap.clone(),
            retry_delay: Duration::from_millis(200),
            idle_poll: Duration::from_millis(50),
        }
    }
}

// ------------------------------------------------------------------ the report

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PipelineReport {
    pub scenario: ScenarioInfo,
    pub ingest: IngestStage,
    pub timer: TimerStage,
    pub relay: RelayStage,
    pub batches: Vec<BatchSummary>,
    /// Received from the events queue (`ras-events.fifo`), per group in order.
    pub events: Vec<DeliveredMessage>,
    /// Received from the notifications queue (`ras-notifications.fifo`), per group in order.
    pub notifications: Vec<DeliveredMessage>,
    /// Read back from the published Kafka topics.
    pub kafka: KafkaStage,
    /// Received from the ingest dead-letter queue, by topic, partition, offset.
    pub dead_letters: Vec<DeadLetterSummary>,
    pub requests: RequestReport,
}

/// What a Kafka consumer reads from the three published topics after the relay stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KafkaStage {
    /// Where it started reading: each partition's end before this run (`<topic>-<partition>`).
    pub read_from: BTreeMap<String, i64>,
    /// The messages, per key (ordering key) in production order.
    pub messages: Vec<KafkaDelivered>,
}

/// A message read from a published topic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KafkaDelivered {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record key: the ordering key (batch id / teacher id).
    pub key: String,
    /// The record's CreateTime.
    pub timestamp_ms: i64,
    /// The envelope's `event_id` and `event_type`.
    pub event_id: String,
    pub event_type: String,
    /// Record headers (none expected).
    pub headers: usize,
    /// The notification's `payload.message`, or a one-line description of a domain event.
    pub text: String,
    pub body: Value,
}

/// What the facts timer did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimerStage {
    /// The clock it ran on; `None`: it did not run.
    pub ran_at: Option<String>,
    pub grace_seconds: u64,
    /// Batches emitted on the timer, with what was missing (as the log line says it).
    pub emitted: Vec<(String, String)>,
    /// Outbox items it wrote (results ready + notification per batch).
    pub outbox_items: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioInfo {
    pub origin: String,
    pub description: Option<String>,
    pub records: usize,
    pub redeliveries: usize,
    pub partitions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IngestStage {
    /// The broker and the consumer group.
    pub bootstrap: String,
    pub consumer_group: String,
    /// Where each scenario record was produced (topic, partition, offset the broker gave).
    pub produced: Vec<Produced>,
    /// The emulator's counters (fetches, invocations, OffsetCommit requests, partitions
    /// resumed from committed offsets).
    pub emulator: EmulatorStats,
    /// The group's committed offsets at the end, of the partitions this run produced to.
    pub committed: BTreeMap<String, i64>,
    /// Responses the emulator could not apply (items naming no record of the batch, …).
    pub problems: Vec<String>,
    pub invocations: Vec<IngestInvocation>,
    /// Records left unfinished after `max_deliveries` (Lambda would hand them to the
    /// on-failure destination): `<topic>-<partition>@<offset>`.
    pub gave_up: Vec<String>,
}

impl IngestStage {
    /// Every record result of every invocation.
    pub fn records(&self) -> impl Iterator<Item = &RecordResult> {
        self.invocations.iter().flat_map(|i| i.records.iter())
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.records().filter(|r| r.outcome == outcome).count()
    }

    /// Outbox items written (the messages the relay should publish).
    pub fn outbox_items(&self) -> usize {
        self.records().map(|r| r.published).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IngestInvocation {
    /// 1-based number of the invocation.
    pub number: usize,
    /// 1 for the first delivery of these records, 2.. for redeliveries after a failure.
    pub delivery: u32,
    /// `<topic>-<partition>` keys of the event.
    pub partitions: Vec<String>,
    pub records: Vec<RecordResult>,
    /// `batchItemFailures`: `<topic>-<partition>@<offset>`.
    pub batch_item_failures: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Duplicate,
    DeadLettered,
    Failed,
    /// Not processed: after an earlier failure in its partition.
    NotStarted,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::DeadLettered => "dead-lettered",
            Outcome::Failed => "failed",
            Outcome::NotStarted => "not started",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordResult {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub outcome: Outcome,
    pub batch_id: Option<String>,
    /// Outbox items the record's commit wrote.
    pub published: usize,
    /// Error kind (dead letter) or reason (failure).
    pub detail: Option<String>,
    pub attempts: u32,
    /// The record's position in the scenario file (`None`: not produced by this run).
    pub scenario_index: Option<usize>,
    /// The scenario's `note` on the record.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RelayStage {
    /// Where events and notifications went: `sqs`, `kafka` or `both` each.
    pub events_to: String,
    pub notifications_to: String,
    pub invocations: Vec<RelayInvocation>,
    /// `INSERT` records read from the stream (what the event filter lets through).
    pub inserts: usize,
    /// Other records the filter drops (`MODIFY`, `REMOVE`).
    pub filtered_out: usize,
    /// Event ids acknowledged (by SQS and/or Kafka, per route), in send order.
    pub published: Vec<String>,
    /// Sequence numbers left unsent after `max_deliveries`.
    pub gave_up: Vec<String>,
    /// Messages SQS refused for good, parked (and acknowledged) by the relay.
    pub parked: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelayInvocation {
    pub number: usize,
    pub delivery: u32,
    pub shard_id: String,
    pub records: usize,
    pub published: usize,
    /// The reported checkpoint (lowest unsent sequence number), if any.
    pub checkpoint: Option<String>,
    pub sqs_requests: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchSummary {
    pub batch_id: String,
    /// `false`: records arrived but no registration (yet); the API answers 404.
    pub registered: bool,
    pub user_id: Option<String>,
    /// The API's `overall_status` (client status).
    pub overall_status: Option<String>,
    pub essay_count: i64,
    pub completed_essay_count: i64,
    pub failed_essay_count: i64,
    pub current_phase: Option<String>,
    pub cj_jobs: Vec<String>,
    /// Reported complete, results ready waiting for facts (the facts timer's index).
    pub awaiting_facts: bool,
    /// Results ready went out on the facts timer without these facts.
    pub results_ready_missing: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveredMessage {
    pub topic: String,
    pub event_type: String,
    /// `MessageGroupId`: the ordering key (batch id / teacher id).
    pub group_id: String,
    /// `MessageDeduplicationId` = the envelope's `event_id`.
    pub event_id: String,
    /// The notification's `payload.message`, or a one-line description of a domain event.
    pub text: String,
    pub body: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetterSummary {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub error_kind: String,
    pub error_message: String,
    pub event_key: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RequestReport {
    /// Records handed to the ingest handler (redeliveries included).
    pub consumed_records: usize,
    /// DynamoDB requests of the ingest handler, per operation.
    pub ingest_dynamodb: BTreeMap<String, u64>,
    /// SQS requests of the ingest handler (dead letters), per operation.
    pub ingest_sqs: BTreeMap<String, u64>,
    /// Messages SQS acknowledged to the relay.
    pub published_events: usize,
    /// SQS requests of the relay, per operation.
    pub relay_sqs: BTreeMap<String, u64>,
}

impl RequestReport {
    pub fn dynamodb_per_record(&self) -> f64 {
        ratio(self.ingest_dynamodb.values().sum(), self.consumed_records)
    }

    pub fn sqs_per_event(&self) -> f64 {
        ratio(self.relay_sqs.values().sum(), self.published_events)
    }
}

fn ratio(n: u64, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

// ------------------------------------------------------------------ the run

/// Run the whole pipeline once; see the module documentation.
pub async fn run_pipeline(config: &PipelineConfig) -> Result<PipelineReport, PipelineError> {
    let dynamo = aws_sdk_dynamodb::Client::new(&config.sdk);
    let sqs = aws_sdk_sqs::Client::new(&config.sdk);

    // Opened first: only what this run writes is relayed.
    let mut stream = OutboxStream::open(
        &dynamo,
        aws_sdk_dynamodbstreams::Client::new(&config.sdk),
        &config.tables.outbox_table,
    )
    .await?;

    // Where the published topics end now: the summary's consumer reads what this run adds.
    let kafka = |e: crate::broker::BrokerError| PipelineError::Kafka(e.to_string());
    let mut reader = Broker::connect(&config.kafka_bootstrap, Duration::from_secs(10))
        .await
        .map_err(kafka)?;
    let all_topics: Vec<&str> = ConsumedTopic::ALL
        .iter()
        .map(|t| t.name())
        .chain(PublishedTopic::ALL.iter().map(|t| t.name()))
        .collect();
    reader
        .ensure_topics(&all_topics, config.topic_partitions)
        .await
        .map_err(kafka)?;
    let published: Vec<&str> = PublishedTopic::ALL.iter().map(|t| t.name()).collect();
    let published_from = topic_ends(&mut reader, &published).await.map_err(kafka)?;

    let ingest_dynamo = RequestCounter::default();
    let ingest_sqs = RequestCounter::default();
    let ingest = run_ingest(config, &ingest_dynamo, &ingest_sqs).await?;
    let timer = run_timer(config, &dynamo).await?;

    let relay_sqs = RequestCounter::default();
    let expected_inserts = ingest.outbox_items() + timer.outbox_items;
    let relay = run_relay(config, &mut stream, expected_inserts, &relay_sqs).await?;

    let batches = summarise_batches(config, &dynamo, &ingest).await?;
    let events = receive_messages(&sqs, &config.queues.events).await?;
    let notifications = receive_messages(&sqs, &config.queues.notifications).await?;
    let dead_letters = receive_dead_letters(&sqs, &config.ingest_dead_letter_queue).await?;
    let kafka_stage = read_published(&mut reader, &published_from).await?;

    let requests = RequestReport {
        consumed_records: ingest
            .records()
            .filter(|r| r.outcome != Outcome::NotStarted)
            .count(),
        ingest_dynamodb: ingest_dynamo.snapshot(),
        ingest_sqs: ingest_sqs.snapshot(),
        published_events: relay.published.len(),
        relay_sqs: relay_sqs.snapshot(),
    };
    let scenario = &config.scenario;
    Ok(PipelineReport {
        scenario: ScenarioInfo {
            origin: scenario.origin.clone(),
            description: scenario.description.clone(),
            records: scenario.records.len(),
            redeliveries: scenario.records.iter().filter(|r| r.redelivery).count(),
            partitions: scenario.partitions(),
        },
        ingest,
        timer,
        relay,
        batches,
        events,
        notifications,
        kafka: kafka_stage,
        dead_letters,
        requests,
    })
}

/// The summary's Kafka consumer: everything on the published topics from `from` on.
async fn read_published(
    reader: &mut Broker,
    from: &BTreeMap<(String, i32), i64>,
) -> Result<KafkaStage, PipelineError> {
    let records = read_from(reader, from)
        .await
        .map_err(|e| PipelineError::Kafka(e.to_string()))?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut messages: Vec<KafkaDelivered> = records
        .into_iter()
        .map(|r| KafkaDelivered {
            event_id: text(&r.body["event_id"]),
            event_type: text(&r.body["event_type"]),
            text: describe(&r.body),
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key.unwrap_or_default(),
            timestamp_ms: r.timestamp_ms,
            headers: r.headers,
            body: r.body,
        })
        .collect();
    // Per key; within a key in production order (offsets order each partition; a key's two
    // topics are ordered by the produce timestamps).
    messages.sort_by(|a, b| {
        (&a.key, a.timestamp_ms, &a.topic, a.offset).cmp(&(
            &b.key,
            b.timestamp_ms,
            &b.topic,
            b.offset,
        ))
    });
    Ok(KafkaStage {
        read_from: from
            .iter()
            .map(|((t, p), o)| (partition_key(t, i64::from(*p)), *o))
            .collect(),
        messages,
    })
}

async fn run_ingest(
    config: &PipelineConfig,
    dynamo_counter: &RequestCounter,
    sqs_counter: &RequestCounter,
) -> Result<IngestStage, PipelineError> {
    let store = DynamoStore::new(
        dynamo_counter.dynamo_client(&config.sdk),
        config.tables.clone(),
    );
    let dead_letters = SqsDeadLetterQueue::new(
        sqs_counter.sqs_client(&config.sdk),
        config.ingest_dead_letter_queue.clone(),
    );
    let mut deps = Deps::new(store, dead_letters).with_settings(config.ingest_settings.clone());
    if let Some(now) = config.clock {
        deps = deps.with_clock(Arc::new(move || now));
    }
    let kafka = |e: crate::broker::BrokerError| PipelineError::Kafka(e.to_string());
    let timeout = Duration::from_secs(10);
    let mut broker = Broker::connect(&config.kafka_bootstrap, timeout)
        .await
        .map_err(kafka)?;
    let consumed: Vec<&str> = ConsumedTopic::ALL.iter().map(|t| t.name()).collect();
    broker
        .ensure_topics(&consumed, config.topic_partitions)
        .await
        .map_err(kafka)?;
    // The event source joins first (committed offsets or the starting position), then the
    // producers write: with LATEST nothing produced here is missed.
    let source = BrokerSource::connect(&config.kafka_bootstrap, &config.consumer_group, timeout)
        .await
        .map_err(kafka)?;
    let mut emulator = MskEmulator::start(source, config.emulator_settings())
        .await
        .map_err(|e| PipelineError::Kafka(e.to_string()))?;
    let produced = produce_scenario(&mut broker, &config.scenario, chrono::Utc::now())
        .await
        .map_err(kafka)?;
    let mut stage = ingest_through(
        &deps,
        &mut emulator,
        &config.scenario,
        &produced,
        INGEST_WAIT,
    )
    .await?;
    stage.bootstrap = config.kafka_bootstrap.clone();
    stage.consumer_group = config.consumer_group.clone();
    Ok(stage)
}

/// Stage 2: the facts timer once, `facts_timer_after` past the ingest clock.
async fn run_timer(
    config: &PipelineConfig,
    dynamo: &aws_sdk_dynamodb::Client,
) -> Result<TimerStage, PipelineError> {
    let grace_seconds = config.timer_settings.grace_seconds;
    let Some(after) = config.facts_timer_after else {
        return Ok(TimerStage {
            grace_seconds,
            ..TimerStage::default()
        });
    };
    let start = config.clock.unwrap_or_else(Timestamp::now);
    let micros = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    let now =
        Timestamp::from_unix_micros(start.unix_micros().saturating_add(micros)).unwrap_or(start);
    let store = DynamoStore::new(dynamo.clone(), config.tables.clone());
    let report = timer::sweep(&store, now, &config.timer_settings, None)
        .await
        .map_err(|e| PipelineError::Aws {
            operation: "facts timer",
            message: e.to_string(),
        })?;
    if let Some((batch_id, reason)) = report.failed.first() {
        return Err(PipelineError::Aws {
            operation: "facts timer",
            message: format!("batch {batch_id}: {reason}"),
        });
    }
    Ok(TimerStage {
        ran_at: Some(now.to_wire()),
        grace_seconds,
        outbox_items: report.published,
        emitted: report
            .emitted
            .into_iter()
            .map(|(batch_id, missing)| (batch_id, missing.to_string()))
            .collect(),
    })
}

/// How records are delivered to a handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Records per event.
    pub batch_size: usize,
    /// Deliveries of a failing partition, the first included.
    pub max_deliveries: u32,
    /// Pause before the n-th redelivery: n × this.
    pub redelivery_delay: Duration,
}

/// Stage 1 over any Kafka source, store and dead-letter sink: the emulator delivers what was
/// `produced` (and whatever else arrives meanwhile) to `ingest::handler::process_event` until
/// the group has committed past every produced record (or given it up), within `wait`.
pub async fn ingest_through<K, S, D>(
    deps: &Deps<S, D>,
    emulator: &mut MskEmulator<K>,
    scenario: &Scenario,
    produced: &[Produced],
    wait: Duration,
) -> Result<IngestStage, PipelineError>
where
    K: KafkaSource,
    S: AggregateStore,
    D: DeadLetterSink,
{
    let kafka = |e: crate::esm::SourceError| PipelineError::Kafka(e.to_string());
    let mut targets: BTreeMap<String, i64> = BTreeMap::new();
    let mut index_of: HashMap<(String, i64), usize> = HashMap::new();
    for p in produced {
        let lane = partition_key(&p.topic, i64::from(p.partition));
        let target = targets.entry(lane.clone()).or_insert(0);
        *target = (*target).max(p.offset + 1);
        index_of.insert((lane, p.offset), p.index);
    }
    let note = |lane: &str, offset: i64| -> (Option<usize>, Option<String>) {
        let index = index_of.get(&(lane.to_string(), offset)).copied();
        let note = index.and_then(|i| scenario.records.get(i).and_then(|r| r.note.clone()));
        (index, note)
    };
    let mut stage = IngestStage {
        produced: produced.to_vec(),
        ..IngestStage::default()
    };
    let deadline = Instant::now() + wait;
    while !emulator.reached(&targets) {
        if Instant::now() >= deadline {
            return Err(PipelineError::Kafka(format!(
                "the produced records were not all consumed within {wait:?}: committed {:?}, produced up to {targets:?}",
                emulator.committed()
            )));
        }
        let Some(invocation) = emulator.next_invocation().await.map_err(kafka)? else {
            continue;
        };
        let sent = invocation.records.clone();
        let (result, mut records) = match try_kafka_event(&invocation.event) {
            Ok(event) => {
                let report = process_event(deps, event, None).await;
                let response = serde_json::to_value(report.response())
                    .map_err(|e| PipelineError::Event(e.to_string()))?;
                let records: Vec<RecordResult> = report
                    .records()
                    .map(|r| {
                        let (outcome, batch_id, published, detail) = match &r.disposition {
                            Disposition::Done(RecordOutcome::Applied {
                                batch_id,
                                published,
                                ..
                            }) => (Outcome::Applied, Some(batch_id.clone()), *published, None),
                            Disposition::Done(RecordOutcome::Duplicate { batch_id, .. }) => {
                                (Outcome::Duplicate, Some(batch_id.clone()), 0, None)
                            }
                            Disposition::DeadLettered { error_kind } => {
                                (Outcome::DeadLettered, None, 0, Some(error_kind.clone()))
                            }
                            Disposition::Failed { reason } => {
                                (Outcome::Failed, None, 0, Some(reason.clone()))
                            }
                        };
                        let (scenario_index, note) =
                            note(&partition_key(&r.topic, r.partition), r.offset);
                        RecordResult {
                            topic: r.topic.clone(),
                            partition: r.partition,
                            offset: r.offset,
                            outcome,
                            batch_id,
                            published,
                            detail,
                            attempts: r.attempts,
                            scenario_index,
                            note,
                        }
                    })
                    .collect();
                (InvokeResult::Response(response), records)
            }
            // What the function's bootstrap does with an event it cannot read: fail.
            Err(e) => (InvokeResult::FunctionError(e.to_string()), Vec::new()),
        };
        let done = emulator.complete(invocation, result).await.map_err(kafka)?;
        let failures: Vec<String> = done
            .outcomes
            .iter()
            .filter_map(|(lane, outcome)| match outcome {
                KitOutcome::Success => None,
                KitOutcome::FailedFrom(i) => sent
                    .iter()
                    .filter(|r| r.partition_key() == *lane)
                    .nth(*i)
                    .map(|r| format!("{lane}@{}", r.offset)),
                KitOutcome::FunctionError => Some(format!("{lane} (the invocation failed)")),
            })
            .collect();
        // Records of a failed partition after its failure were never started.
        let handled: std::collections::HashSet<(String, i64)> = records
            .iter()
            .map(|r| (partition_key(&r.topic, r.partition), r.offset))
            .collect();
        for r in &sent {
            if !handled.contains(&(r.partition_key(), r.offset)) {
                let (scenario_index, note) = note(&r.partition_key(), r.offset);
                records.push(RecordResult {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                    outcome: Outcome::NotStarted,
                    batch_id: None,
                    published: 0,
                    detail: None,
                    attempts: 0,
                    scenario_index,
                    note,
                });
            }
        }
        for discarded in &done.gave_up {
            stage.gave_up.extend(
                sent.iter()
                    .filter(|r| {
                        r.partition_key() == discarded.lane
                            && (discarded.first_id..=discarded.last_id).contains(&r.offset)
                    })
                    .map(|r| format!("{}@{}", discarded.lane, r.offset)),
            );
        }
        stage.problems.extend(
            done.problems
                .iter()
                .map(|p| format!("invocation {}: {p}", done.number)),
        );
        let mut partitions = done.lanes.clone();
        partitions.sort();
        stage.invocations.push(IngestInvocation {
            number: done.number,
            delivery: done.delivery,
            partitions,
            records,
            batch_item_failures: failures,
        });
    }
    stage.emulator = emulator.stats().clone();
    stage.committed = emulator
        .committed()
        .iter()
        .filter(|(lane, _)| targets.contains_key(*lane))
        .map(|(lane, offset)| (lane.clone(), *offset))
        .collect();
    Ok(stage)
}

async fn run_relay(
    config: &PipelineConfig,
    stream: &mut OutboxStream,
    expected_inserts: usize,
    sqs_counter: &RequestCounter,
) -> Result<RelayStage, PipelineError> {
    let sqs = SqsPublisher::new(sqs_counter.sqs_client(&config.sdk), config.queues.clone());
    // As the function builds it (plaintext: the local broker has no TLS or IAM); the connection
    // is opened by the first publish.
    let kafka = config
        .routes
        .uses_kafka()
        .then(|| KafkaPublisher::new(KafkaSettings::new(vec![config.kafka_bootstrap.clone()])));
    let publisher = RoutedPublisher::new(config.routes, sqs, kafka)
        .map_err(|e| PipelineError::Config(e.to_string()))?;
    let relay = Relay::new(
        publisher,
        Arc::new(CircuitBreaker::new(BreakerSettings::default())),
        SystemClock,
    );
    let mut stage = RelayStage {
        events_to: config.routes.events.as_str().to_string(),
        notifications_to: config.routes.notifications.as_str().to_string(),
        ..RelayStage::default()
    };
    // The stream shows a commit at once on the local server; poll a little while for the
    // inserts the ingest stage wrote, then relay whatever arrived.
    let mut shards: Vec<(String, Vec<aws_sdk_dynamodbstreams::types::Record>)> = Vec::new();
    for poll in 0..50 {
        for shard in stream.read_new_by_shard().await? {
            let (inserts, others): (Vec<_>, Vec<_>) =
                shard.records.into_iter().partition(is_insert);
            stage.filtered_out += others.len();
            stage.inserts += inserts.len();
            match shards.iter_mut().find(|(id, _)| *id == shard.shard_id) {
                Some((_, records)) => records.extend(inserts),
                None => shards.push((shard.shard_id, inserts)),
            }
        }
        if stage.inserts >= expected_inserts && poll > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let delivery = Delivery {
        batch_size: config.relay_batch_size,
        max_deliveries: config.max_deliveries,
        redelivery_delay: Duration::from_millis(200),
    };
    let shards = shards
        .into_iter()
        .map(|(shard_id, records)| ShardRecords { shard_id, records })
        .collect();
    match &config.parked_queue {
        Some(url) => {
            // Parking requests are not counted with the publishing ones.
            let parking = SqsParking::new(aws_sdk_sqs::Client::new(&config.sdk), url.clone());
            let relay = relay.with_parking(parking);
            relay_shards(&relay, shards, &stream.stream_arn, &delivery, &mut stage).await?;
        }
        None => relay_shards(&relay, shards, &stream.stream_arn, &delivery, &mut stage).await?,
    }
    Ok(stage)
}

/// Stage 2 over any publisher: the `INSERT` records of each shard, in stream events of at most
/// `batch_size` records, through the relay; a reported checkpoint is re-sent from that
/// sequence number, up to `max_deliveries` times.
pub async fn relay_shards<P, C, K>(
    relay: &Relay<P, C, K>,
    shards: Vec<ShardRecords>,
    stream_arn: &str,
    delivery: &Delivery,
    stage: &mut RelayStage,
) -> Result<(), PipelineError>
where
    P: MessagePublisher,
    C: relay::clock::Clock,
    K: ras_domain::ports::MessageParking,
{
    for ShardRecords { shard_id, records } in shards {
        for chunk in records.chunks(delivery.batch_size.max(1)) {
            let mut pending: Vec<_> = chunk.to_vec();
            let mut attempt = 1;
            loop {
                let event = try_lambda_event(&pending, stream_arn)?;
                let outcome = relay
                    .handle_event(event, None)
                    .await
                    .map_err(|e| PipelineError::Relay(e.to_string()))?;
                stage.published.extend(outcome.published.iter().cloned());
                stage.parked += outcome.parked;
                stage.invocations.push(RelayInvocation {
                    number: stage.invocations.len() + 1,
                    delivery: attempt,
                    shard_id: shard_id.clone(),
                    records: pending.len(),
                    published: outcome.published.len(),
                    checkpoint: outcome.checkpoint.clone(),
                    sqs_requests: outcome.sqs_requests,
                });
                let Some(checkpoint) = outcome.checkpoint else {
                    break;
                };
                // Lambda checkpoints before the reported record and retries from it.
                let from = pending
                    .iter()
                    .position(|r| sequence_number(r) == checkpoint)
                    .ok_or_else(|| {
                        PipelineError::Relay(format!(
                            "checkpoint {checkpoint} is not a record of the event"
                        ))
                    })?;
                pending.drain(..from);
                if attempt >= delivery.max_deliveries {
                    stage.gave_up.extend(pending.iter().map(sequence_number));
                    break;
                }
                attempt += 1;
                tokio::time::sleep(delivery.redelivery_delay * attempt).await;
            }
        }
    }
    Ok(())
}

async fn summarise_batches(
    config: &PipelineConfig,
    dynamo: &aws_sdk_dynamodb::Client,
    ingest: &IngestStage,
) -> Result<Vec<BatchSummary>, PipelineError> {
    let store = DynamoStore::new(dynamo.clone(), config.tables.clone());
    let mut ids: Vec<String> = Vec::new();
    for id in ingest.records().filter_map(|r| r.batch_id.as_ref()) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let mut batches = Vec::with_capacity(ids.len());
    for batch_id in ids {
        let aggregate = store
            .get_batch(&batch_id)
            .await
            .map_err(|e| PipelineError::Aws {
                operation: "get_batch",
                message: e.to_string(),
            })?;
        let summary = match aggregate
            .as_ref()
            .and_then(|agg| api::batch_status::batch_status(agg).map(|s| (agg, s)))
        {
            Some((agg, status)) => BatchSummary {
                batch_id,
                registered: true,
                user_id: Some(status.user_id),
                overall_status: Some(status.overall_status),
                essay_count: status.essay_count,
                completed_essay_count: status.completed_essay_count,
                failed_essay_count: status.failed_essay_count,
                current_phase: status.current_phase,
                cj_jobs: agg.cj_jobs.keys().cloned().collect(),
                awaiting_facts: agg.root.awaiting_facts_since.is_some(),
                results_ready_missing: agg
                    .root
                    .results_ready_missing
                    .as_ref()
                    .map(ToString::to_string),
            },
            None => BatchSummary {
                batch_id,
                registered: false,
                user_id: None,
                overall_status: None,
                essay_count: 0,
                completed_essay_count: 0,
                failed_essay_count: 0,
                current_phase: None,
                cj_jobs: Vec::new(),
                awaiting_facts: false,
                results_ready_missing: None,
            },
        };
        batches.push(summary);
    }
    Ok(batches)
}

/// Receive and delete every message of a queue, with all message attributes (two empty
/// polls end it).
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<Message>, PipelineError> {
    let mut messages = Vec::new();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| aws("ReceiveMessage", e))?;
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            empty_polls += 1;
            continue;
        }
        for m in &batch {
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| aws("DeleteMessage", e))?;
            }
        }
        messages.extend(batch);
    }
    Ok(messages)
}

fn attribute(m: &Message, name: &str) -> String {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_default()
        .to_string()
}

fn system_attribute(m: &Message, name: MessageSystemAttributeName) -> String {
    m.attributes()
        .and_then(|a| a.get(&name))
        .cloned()
        .unwrap_or_default()
}

/// A line for a message: the notification's text, or what a domain event says.
fn describe(body: &Value) -> String {
    let data = &body["data"];
    if let Some(message) = data["payload"]["message"].as_str() {
        return message.to_string();
    }
    let text = |v: &Value| v.as_str().map(str::to_string);
    let name = text(&data["event_name"]).unwrap_or_else(|| "event".into());
    let batch = text(&data["batch_id"]).unwrap_or_default();
    match text(&data["assessment_job_id"]) {
        Some(job) => format!(
            "{name}: batch {batch}, CJ job {job}, {} ranked essays",
            data["rankings_summary"].as_array().map_or(0, Vec::len)
        ),
        None => {
            let phases: Vec<String> = data["phase_results"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(phase, r)| {
                            format!(
                                "{phase} {} completed/{} failed",
                                r["completed_count"], r["failed_count"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{name}: batch {batch}, {}, {}/{} essays; {}; {} s",
                text(&data["overall_status"]).unwrap_or_default(),
                data["completed_essays"],
                data["total_essays"],
                phases.join(", "),
                data["processing_duration_seconds"]
            )
        }
    }
}

async fn receive_messages(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<Vec<DeliveredMessage>, PipelineError> {
    let mut messages: Vec<DeliveredMessage> = drain(sqs, url)
        .await?
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default())
                .unwrap_or_else(|_| Value::String(m.body().unwrap_or_default().to_string()));
            DeliveredMessage {
                topic: attribute(m, ras_aws::sqs_publisher::ATTR_TOPIC),
                event_type: attribute(m, ras_aws::sqs_publisher::ATTR_EVENT_TYPE),
                group_id: system_attribute(m, MessageSystemAttributeName::MessageGroupId),
                event_id: system_attribute(m, MessageSystemAttributeName::MessageDeduplicationId),
                text: describe(&body),
                body,
            }
        })
        .collect();
    // Stable: each group keeps its FIFO order.
    messages.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(messages)
}

async fn receive_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<Vec<DeadLetterSummary>, PipelineError> {
    let mut letters: Vec<DeadLetterSummary> = drain(sqs, url)
        .await?
        .iter()
        .map(|m| {
            let text = m.body().unwrap_or_default();
            match serde_json::from_str::<DeadLetter>(text) {
                Ok(letter) => DeadLetterSummary {
                    topic: letter.topic,
                    partition: letter.partition,
                    offset: letter.offset,
                    error_kind: letter.error_kind,
                    error_message: letter.error_message,
                    event_key: letter.event_key,
                },
                Err(e) => DeadLetterSummary {
                    topic: attribute(m, "topic"),
                    partition: -1,
                    offset: -1,
                    error_kind: attribute(m, "error_kind"),
                    error_message: format!("unreadable dead letter ({e}): {text}"),
                    event_key: None,
                },
            }
        })
        .collect();
    letters
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esm::MemorySource;
    use ingest::retry::RetryPolicy;
    use ras_domain::testing::events::{at_minute, event_id, registration, slot_assigned};
    use ras_domain::testing::{MemoryDeadLetters, RecordingStore};
    use serde_json::json;

    const REG: &str = "huleedu.batch.essays.registered.v1";
    const SLOT: &str = "huleedu.els.essay.slot.assigned.v1";

    /// A registration and three slot assignments, two of them on slot partition 0.
    fn scenario() -> Scenario {
        let at = at_minute(0.0);
        let records = json!([
            {"topic": REG, "value": registration(event_id(1), "b1", "t1", &["e1", "e2", "e3"], at).json()},
            {"topic": SLOT, "partition": 0, "value": slot_assigned(event_id(2), "b1", "e1", at).json()},
            {"topic": SLOT, "partition": 0, "value": slot_assigned(event_id(3), "b1", "e2", at).json()},
            {"topic": SLOT, "partition": 1, "value": slot_assigned(event_id(4), "b1", "e3", at).json()},
        ]);
        Scenario::parse(&records.to_string(), "test").unwrap()
    }

    /// Commits numbered `fail` (0-based) fail transiently.
    fn deps(fail: std::ops::Range<u32>) -> Deps<RecordingStore, MemoryDeadLetters> {
        let settings = HandlerSettings {
            // One partition at a time, in key order: which commit fails is fixed.
            partition_concurrency: 1,
            retry: RetryPolicy {
                max_attempts: 1,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
                budget: Duration::ZERO,
            },
            attempt_timeout: Duration::from_secs(5),
            deadline_reserve: Duration::ZERO,
        };
        let store = RecordingStore::default().failing_commits(fail);
        Deps::new(store, MemoryDeadLetters::new()).with_settings(settings)
    }

    fn delivery(max_deliveries: u32) -> Delivery {
        Delivery {
            batch_size: 10,
            max_deliveries,
            redelivery_delay: Duration::from_millis(1),
        }
    }

    /// The scenario produced to in-memory topics (2 partitions each) and an emulator over them
    /// with the template's source, `max_deliveries` and no batching window.
    async fn emulated(
        scenario: &Scenario,
        max_deliveries: u32,
    ) -> (MskEmulator<MemorySource>, Vec<Produced>) {
        let mut source = MemorySource::new();
        for topic in ConsumedTopic::ALL {
            source.create_topic(topic.name(), 2);
        }
        let mut produced = Vec::new();
        for r in &scenario.records {
            let offset = source.produce(r.msk_record()).unwrap();
            produced.push(Produced {
                index: r.index,
                topic: r.topic.clone(),
                partition: r.partition as i32,
                offset,
            });
        }
        let config = PipelineConfig::new(
            aws_config::SdkConfig::builder().build(),
            StoreConfig {
                state_table: "s".into(),
                outbox_table: "o".into(),
            },
            QueueUrls {
                events: "e".into(),
                notifications: "n".into(),
            },
            "dlq".into(),
            scenario.clone(),
            "127.0.0.1:1".into(),
        );
        let mut config = PipelineConfig {
            max_deliveries,
            batching_window: Duration::ZERO,
            ..config
        };
        config.ingest_batch_size = 10;
        let mut settings = config.emulator_settings();
        settings.retry_delay = Duration::from_millis(1);
        settings.idle_poll = Duration::from_millis(1);
        (
            MskEmulator::start(source, settings).await.unwrap(),
            produced,
        )
    }

    fn outcomes(inv: &IngestInvocation) -> Vec<(String, i64, Outcome)> {
        let mut got: Vec<(String, i64, Outcome)> = inv
            .records
            .iter()
            .map(|r| (format!("{}-{}", r.topic, r.partition), r.offset, r.outcome))
            .collect();
        got.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        got
    }

    #[tokio::test]
    async fn a_failed_partition_is_redelivered_from_the_failed_offset_and_committed_after() {
        // Commit 1 (0-based) is the first slot of partition 0.
        let deps = deps(1..2);
        let scenario = scenario();
        let (mut emulator, produced) = emulated(&scenario, 5).await;
        let stage = ingest_through(
            &deps,
            &mut emulator,
            &scenario,
            &produced,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(stage.invocations.len(), 2, "{stage:?}");
        let first = &stage.invocations[0];
        let slot0 = format!("{SLOT}-0");
        let slot1 = format!("{SLOT}-1");
        assert_eq!(first.batch_item_failures, vec![format!("{slot0}@0")]);
        assert_eq!(
            outcomes(first),
            vec![
                (format!("{REG}-0"), 0, Outcome::Applied),
                (slot0.clone(), 0, Outcome::Failed),
                (slot0.clone(), 1, Outcome::NotStarted),
                (slot1.clone(), 0, Outcome::Applied),
            ]
        );
        let second = &stage.invocations[1];
        assert_eq!(second.delivery, 2);
        assert_eq!(second.partitions, vec![slot0.clone()]);
        assert_eq!(
            outcomes(second),
            vec![
                (slot0.clone(), 0, Outcome::Applied),
                (slot0.clone(), 1, Outcome::Applied)
            ]
        );
        assert!(second.batch_item_failures.is_empty());
        assert!(stage.gave_up.is_empty());
        assert_eq!(stage.count(Outcome::Applied), 4);
        let essays = deps.store.inner().aggregate("b1").unwrap().essays.len();
        assert_eq!(essays, 3);
        // The group's offsets: the first commit stopped at the failed record.
        let commits = &emulator.source().commits;
        let slot_0 = (SLOT.to_string(), 0);
        let first_commit: Vec<i64> = commits[1]
            .iter()
            .filter(|(p, _)| *p == slot_0)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(first_commit, Vec::<i64>::new(), "nothing past offset 0");
        assert_eq!(emulator.source().committed_offset(SLOT, 0), Some(2));
        assert_eq!(stage.committed[&slot0], 2);
        assert_eq!(stage.committed[&slot1], 1);
        assert_eq!(
            stage.invocations[0]
                .records
                .iter()
                .find(|r| r.offset == 0 && r.topic == REG)
                .unwrap()
                .scenario_index,
            Some(0)
        );
    }

    #[tokio::test]
    async fn deliveries_are_bounded_and_given_up_records_are_reported() {
        let deps = deps(0..u32::MAX);
        let scenario = scenario();
        let (mut emulator, produced) = emulated(&scenario, 3).await;
        let stage = ingest_through(
            &deps,
            &mut emulator,
            &scenario,
            &produced,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(stage.invocations.len(), 3);
        assert_eq!(
            stage
                .invocations
                .iter()
                .map(|i| i.delivery)
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let mut gave_up = stage.gave_up.clone();
        gave_up.sort();
        assert_eq!(
            gave_up,
            vec![
                format!("{REG}-0@0"),
                format!("{SLOT}-0@0"),
                format!("{SLOT}-0@1"),
                format!("{SLOT}-1@0"),
            ]
        );
        assert_eq!(stage.count(Outcome::Applied), 0);
        // Lambda moves on after giving up: so do the committed offsets.
        assert_eq!(emulator.source().committed_offset(SLOT, 0), Some(2));
    }

    fn stream_record(
        item: &ras_aws::dynamo::OutboxItem,
        seq: u64,
    ) -> aws_sdk_dynamodbstreams::types::Record {
        use aws_sdk_dynamodbstreams::types::{OperationType, Record, StreamRecord, StreamViewType};
        let image = serde_dynamo::Item::from(item.to_item().unwrap());
        Record::builder()
            .event_id(format!("e{seq}"))
            .event_name(OperationType::Insert)
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(
                StreamRecord::builder()
                    .sequence_number(seq.to_string())
                    .size_bytes(100)
                    .stream_view_type(StreamViewType::NewImage)
                    .set_new_image(Some(image.into()))
                    .build(),
            )
            .build()
    }

    /// Four outbox items (two ordering keys) as one shard's stream records, 100..=103.
    fn shard() -> (ShardRecords, Vec<String>) {
        use ras_domain::contracts::{PublishedTopic, Timestamp};
        use ras_domain::plan::OutboxMessage;
        let created = Timestamp::parse("2025-11-27T10:00:00Z").unwrap();
        let mut ids = Vec::new();
        let mut records = Vec::new();
        for n in 0..4u64 {
            let id = uuid::Uuid::from_u128(0x1000 + u128::from(n));
            let (topic, key) = if n % 2 == 0 {
                (PublishedTopic::BatchResultsReady, "b1")
            } else {
                (PublishedTopic::TeacherNotificationRequested, "t1")
            };
            let message = OutboxMessage {
                event_id: id,
                topic,
                ordering_key: key.to_string(),
                correlation_id: id,
                created_at: created,
                sequence: n as u32,
                body: format!(r#"{{"event_id": "{id}"}}"#),
            };
            let item = ras_aws::dynamo::OutboxItem::from_message(&message, "b1");
            records.push(stream_record(&item, 100 + n));
            ids.push(id.to_string());
        }
        let shard = ShardRecords {
            shard_id: "shard-1".into(),
            records,
        };
        (shard, ids)
    }

    fn relay_with(
        faults: relay::testing::Faults,
    ) -> Relay<relay::testing::FaultyPublisher<ras_domain::testing::InMemoryPublisher>, SystemClock>
    {
        Relay::new(
            relay::testing::FaultyPublisher::new(
                ras_domain::testing::InMemoryPublisher::new(),
                faults,
            ),
            Arc::new(CircuitBreaker::new(BreakerSettings::default())),
            SystemClock,
        )
    }

    #[tokio::test]
    async fn a_relay_checkpoint_is_redelivered_from_that_sequence_number() {
        let (shard, ids) = shard();
        let relay = relay_with(relay::testing::Faults {
            fail_first_calls: 1,
            ..Default::default()
        });
        let mut stage = RelayStage::default();
        relay_shards(&relay, vec![shard], "arn:stream", &delivery(5), &mut stage)
            .await
            .unwrap();
        assert_eq!(stage.invocations.len(), 2, "{stage:?}");
        let first = &stage.invocations[0];
        let checkpoint = first.checkpoint.clone().unwrap();
        assert!(first.published < 4);
        let second = &stage.invocations[1];
        assert_eq!(second.delivery, 2);
        assert_eq!(
            second.records,
            (104 - checkpoint.parse::<usize>().unwrap()),
            "re-sent from the checkpoint"
        );
        assert!(second.checkpoint.is_none());
        let published: std::collections::BTreeSet<&String> = stage.published.iter().collect();
        assert_eq!(published, ids.iter().collect());
        let received: std::collections::BTreeSet<String> = relay
            .publisher()
            .inner()
            .received()
            .into_iter()
            .map(|(_, m)| m.event_id.to_string())
            .collect();
        assert_eq!(received, ids.into_iter().collect());
        assert!(stage.gave_up.is_empty());
    }

    #[tokio::test]
    async fn relay_deliveries_are_bounded() {
        let (shard, _) = shard();
        let relay = relay_with(relay::testing::Faults {
            fail_all_calls: true,
            ..Default::default()
        });
        let mut stage = RelayStage::default();
        relay_shards(&relay, vec![shard], "arn:stream", &delivery(3), &mut stage)
            .await
            .unwrap();
        assert_eq!(stage.invocations.len(), 3);
        assert!(stage.published.is_empty());
        assert_eq!(stage.gave_up, vec!["100", "101", "102", "103"]);
    }
}
