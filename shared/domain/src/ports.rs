//! The ports the functions are written against. Adapters (DynamoDB, SQS) live in `ras-aws`;
//! in-memory fakes in [`crate::testing`] (feature `test-util`).

use crate::contracts::{BatchStatus, Timestamp};
use crate::model::{BatchAggregate, CjJobRecord};
use crate::plan::{OutboxMessage, Plan};
use std::future::Future;

/// Markers outlive any plausible redelivery: Kafka retention is 7 days by default.
pub const MARKER_TTL_SECONDS: i64 = 8 * 24 * 3600;

/// Written in the same transaction as the plan: "this record has been applied".
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotencyMarker {
    pub event_key: String,
    /// SHA-256 of the record value; a second record with this key but another hash is a conflict.
    pub payload_hash: String,
    pub topic: String,
    pub batch_id: String,
    pub recorded_at: Timestamp,
    /// Unix seconds after which DynamoDB TTL may delete the marker.
    pub expires_at: i64,
}

impl IdempotencyMarker {
    pub fn new(
        event_key: String,
        payload_hash: String,
        topic: &str,
        batch_id: &str,
        now: Timestamp,
    ) -> Self {
        IdempotencyMarker {
            event_key,
            payload_hash,
            topic: topic.to_string(),
            batch_id: batch_id.to_string(),
            recorded_at: now,
            expires_at: now.unix_micros() / 1_000_000 + MARKER_TTL_SECONDS,
        }
    }
}

/// How a commit ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Marker, state and outbox written together.
    Committed,
    /// The marker already existed with the same payload: the record was applied before.
    Duplicate,
    /// The marker already existed with a different payload: an id collision, never applied.
    PayloadConflict { existing_hash: String },
    /// The aggregate changed since it was read; reload and re-plan.
    VersionConflict,
}

/// Store failures, classified for the edges: transient ones are retried, permanent ones
/// dead-letter the record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("transient store failure: {0}")]
    Transient(String),
    #[error("permanent store failure ({kind}): {message}")]
    Permanent { kind: &'static str, message: String },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// Write side: load a batch aggregate, commit a plan with its marker atomically.
pub trait AggregateStore: Send + Sync {
    fn load(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<BatchAggregate, StoreError>> + Send;

    /// The root of a batch and one of its essays: what a per-essay record is applied from
    /// ([`crate::rules::apply_to_essay`]). The aggregate holds the root and the essay if
    /// stored; the store may leave everything else out, the registration's essay ids
    /// included, so that the read does not grow with the batch. By default: [`Self::load`],
    /// the other essays dropped.
    fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> impl Future<Output = Result<BatchAggregate, StoreError>> + Send {
        async move {
            let mut agg = self.load(batch_id).await?;
            agg.essays.retain(|id, _| id == essay_id);
            Ok(agg)
        }
    }

    /// Commit marker + plan in one transaction. The plan's root (if any) is written only if
    /// the stored version still equals the root's `version`, each of its essays only if the
    /// stored essay's version still equals the essay's `version` (0: not stored).
    fn commit(
        &self,
        marker: &IdempotencyMarker,
        plan: &Plan,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;
}

/// The batches whose results-ready event waits for facts (`BatchRoot::awaiting_facts_since`),
/// for the facts timer.
pub trait AwaitingFactsIndex: Send + Sync {
    /// Ids of batches awaiting facts since `cutoff` or earlier, longest waiting first, at most
    /// `limit`. The index may lag the store (DynamoDB GSIs are eventually consistent): callers
    /// re-check each batch against its consistently read aggregate.
    fn awaiting_since(
        &self,
        cutoff: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// One page of a user's batches, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPage {
    pub batches: Vec<BatchAggregate>,
    pub total: u64,
}

/// Read side used by the query API.
pub trait BatchReader: Send + Sync {
    /// A registered batch with everything attached; `None` when unknown or not registered.
    fn get_batch(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<Option<BatchAggregate>, StoreError>> + Send;

    fn list_user_batches(
        &self,
        user_id: &str,
        status: Option<BatchStatus>,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = Result<BatchPage, StoreError>> + Send;

    fn get_cj_job(
        &self,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<CjJobRecord>, StoreError>> + Send;

    /// Dependency check for `/healthz`.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Failures of a message transport (SQS), classified like [`StoreError`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PublishError {
    #[error("transient publish failure: {0}")]
    Transient(String),
    #[error("permanent publish failure ({kind}): {message}")]
    Permanent { kind: &'static str, message: String },
}

impl PublishError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishError::Transient(_))
    }
}

/// A consumed record that can never be applied, with everything needed to inspect or re-drive
/// it: the raw bytes, where it came from, and why it failed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    /// Kafka record timestamp.
    pub timestamp: Option<Timestamp>,
    pub key_base64: Option<String>,
    /// The record value exactly as received (base64 of the bytes).
    pub value_base64: String,
    /// Stable kind: `invalid_json`, `schema_violation`, `payload_conflict`, `item_too_large`, …
    pub error_kind: String,
    pub error_message: String,
    /// The idempotency key, when the record could be decoded far enough to have one.
    pub event_key: Option<String>,
    pub dead_lettered_at: Timestamp,
}

/// Where undeliverable consumed records go (the ingest dead-letter queue).
pub trait DeadLetterSink: Send + Sync {
    fn send(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// An outbox message SQS refuses for good (a body over the queue's maximum size, characters
/// SQS does not accept, an entry failed for the sender's fault): the relay records it here and
/// acknowledges its stream record, so the messages behind it on the shard move on. The outbox
/// item itself stays in the outbox table (30-day TTL); `ras-ops republish --parked` sends it
/// again once the cause is fixed. No body: only what identifies and explains the message.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParkedMessage {
    pub event_id: String,
    /// The raw ordering key (outbox partition key).
    pub ordering_key: String,
    /// Outbox sort key: `created_at#sequence#event_id`.
    pub position: String,
    /// Its queue (`events` or `notifications`).
    pub destination: Destination,
    pub topic: String,
    pub batch_id: String,
    pub created_at: String,
    /// Error code (`InvalidMessage`, `MessageTooLarge`, SQS's code of a failed entry).
    pub code: String,
    pub reason: String,
    /// Body length in bytes.
    pub body_bytes: usize,
    pub parked_at: Timestamp,
}

/// Where the relay parks messages SQS refuses for good (`ras-relay-parked`).
pub trait MessageParking: Send + Sync {
    /// `Ok` only when the record is stored: only then may the message be acknowledged.
    fn park(&self, parked: &ParkedMessage)
        -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Which queue a published message goes to. Stored on outbox items in its lowercase form
/// (`events`, `notifications`), which is also how parking records name it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// Domain events (`huleedu.ras.*`).
    Events,
    /// Teacher notifications.
    Notifications,
}

impl Destination {
    pub fn of(topic: crate::contracts::PublishedTopic) -> Self {
        if topic.is_notification() {
            Destination::Notifications
        } else {
            Destination::Events
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Destination::Events => "events",
            Destination::Notifications => "notifications",
        }
    }
}

/// Per-message result of a batch send: an HTTP 200 can still carry failed entries.
#[derive(Clone, Debug, PartialEq)]
pub enum SendResult {
    Sent,
    Failed {
        retryable: bool,
        code: String,
        message: String,
    },
}

/// The transport of published messages (SQS FIFO queues).
pub trait MessagePublisher: Send + Sync {
    /// Send up to 10 messages (≤ 1 MiB in total) in one request, each with its body byte for
    /// byte; one result per message, in order. `Err` means the whole call failed and nothing
    /// can be assumed sent.
    fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> impl Future<Output = Result<Vec<SendResult>, PublishError>> + Send;
}
