//! Running the ingest handler against the local AWS-API server: the real DynamoDB store, a
//! dead-letter queue of the test's own, a fixed clock and fast retries.

use crate::local_aws::{LocalAws, SerializedCommits};
use aws_sdk_sqs::types::Message;
use ingest::handler::{BatchReport, Clock, Disposition};
use ingest::retry::RetryPolicy;
use ingest::{Deps, HandlerSettings};
use ras_aws::dead_letter::SqsDeadLetterQueue;
use ras_aws::dynamo::DynamoStore;
use ras_domain::contracts::Timestamp;
use ras_domain::ports::DeadLetter;
use ras_domain::service::RecordOutcome;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The wall clock of every test: published events get this `event_timestamp`.
pub const NOW: &str = "2025-11-27T11:00:00Z";

pub fn now() -> Timestamp {
    Timestamp::parse(NOW).unwrap_or_else(Timestamp::now)
}

pub fn fixed_clock() -> Clock {
    let now = now();
    Arc::new(move || now)
}

/// Production settings with millisecond backoffs.
pub fn fast_settings() -> HandlerSettings {
    HandlerSettings {
        partition_concurrency: 4,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(10),
            budget: Duration::from_secs(5),
        },
        attempt_timeout: Duration::from_secs(60),
        deadline_reserve: Duration::ZERO,
    }
}

/// A dead letter as received from the queue.
#[derive(Clone, Debug)]
pub struct ReceivedLetter {
    pub letter: DeadLetter,
    pub body: Value,
    pub error_kind_attribute: Option<String>,
    pub topic_attribute: Option<String>,
}

impl ReceivedLetter {
    pub fn of(message: &Message) -> Self {
        let text = message.body().unwrap_or("");
        let body: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("dead letter body is not JSON ({e}): {text}"));
        let letter: DeadLetter = serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("dead letter body is not a DeadLetter ({e}): {text}"));
        let attribute = |name: &str| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .map(str::to_string)
        };
        ReceivedLetter {
            letter,
            body,
            error_kind_attribute: attribute("error_kind"),
            topic_attribute: attribute("topic"),
        }
    }
}

/// Local AWS with tables and a dead-letter queue of this test.
pub struct IngestEnv {
    pub aws: LocalAws,
    pub dlq_url: String,
    private_tables: bool,
}

impl IngestEnv {
    /// Private tables (see [`LocalAws::create_private_tables`]) and a private queue.
    pub async fn new() -> Self {
        let mut aws = LocalAws::connect().await;
        aws.tables = aws.create_private_tables().await;
        let dlq_url = aws.create_queue("ingest-dlq-test").await;
        IngestEnv {
            aws,
            dlq_url,
            private_tables: true,
        }
    }

    /// The tables of the environment (`RAS_STATE_TABLE`, `RAS_OUTBOX_TABLE`: those of
    /// `template.yaml` created by the local setup) and a private queue.
    pub async fn with_environment_tables() -> Self {
        let aws = LocalAws::connect().await;
        let dlq_url = aws.create_queue("ingest-dlq-test").await;
        IngestEnv {
            aws,
            dlq_url,
            private_tables: false,
        }
    }

    pub fn store(&self) -> DynamoStore {
        self.aws.store()
    }

    pub fn dead_letter_queue(&self) -> SqsDeadLetterQueue {
        SqsDeadLetterQueue::new(self.aws.sqs.clone(), self.dlq_url.clone())
    }

    /// The DynamoDB store with commits serialised (see [`SerializedCommits`]: moto does not
    /// isolate concurrent transactions).
    pub fn isolated_store(&self) -> SerializedCommits<DynamoStore> {
        SerializedCommits::new(self.store())
    }

    /// The handler's dependencies over DynamoDB (commits serialised) and this test's queue.
    pub fn deps(&self) -> Deps<SerializedCommits<DynamoStore>, SqsDeadLetterQueue> {
        deps(self.isolated_store(), self.dead_letter_queue())
    }

    /// Every dead letter in this test's queue (received and deleted), sorted by topic, partition
    /// and offset.
    pub async fn dead_letters(&self) -> Vec<ReceivedLetter> {
        let mut letters: Vec<ReceivedLetter> = self
            .aws
            .drain_queue(&self.dlq_url)
            .await
            .iter()
            .map(ReceivedLetter::of)
            .collect();
        letters.sort_by(|a, b| {
            (&a.letter.topic, a.letter.partition, a.letter.offset).cmp(&(
                &b.letter.topic,
                b.letter.partition,
                b.letter.offset,
            ))
        });
        letters
    }

    /// Delete the private queue and tables (tests call it at their end; a failed test leaves
    /// them behind, which harms nobody).
    pub async fn cleanup(&self) {
        self.aws.delete_queue(&self.dlq_url).await;
        if self.private_tables {
            self.aws.delete_tables(&self.aws.tables).await;
        }
    }
}

/// Dependencies with the fixed clock and fast settings.
pub fn deps<S, D>(store: S, dead_letters: D) -> Deps<S, D> {
    Deps::new(store, dead_letters)
        .with_clock(fixed_clock())
        .with_settings(fast_settings())
}

/// The dispositions of a report, as `(partition key, offset, kind)` for readable assertions.
pub fn dispositions(report: &BatchReport) -> Vec<(String, i64, String)> {
    report
        .partitions
        .iter()
        .flat_map(|p| {
            p.records.iter().map(move |r| {
                let kind = match &r.disposition {
                    Disposition::Done(RecordOutcome::Applied { .. }) => "applied".to_string(),
                    Disposition::Done(RecordOutcome::Duplicate { .. }) => "duplicate".to_string(),
                    Disposition::DeadLettered { error_kind } => {
                        format!("dead_lettered:{error_kind}")
                    }
                    Disposition::Failed { reason } => format!("failed: {reason}"),
                };
                (p.key.clone(), r.offset, kind)
            })
        })
        .collect()
}
