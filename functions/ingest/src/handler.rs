//! The handler: a Kafka event in, a partial-batch response out.
//!
//! * Partitions are processed concurrently (at most `partition_concurrency` at a time), the
//!   records of one partition strictly one after the other, in offset order.
//! * Each record goes through [`process_record`] (decode → plan → one transaction with its
//!   idempotency marker). A duplicate (marker present, same payload) counts as success.
//!   Records of one batch from different partitions take turns (a per-batch lock).
//! * Permanent failures (undecodable, invalid, unknown topic, payload conflict, item too
//!   large, …) are sent to the dead-letter sink with the raw value, and the partition moves on.
//! * Transient failures (throttling, timeouts, 5xx, version contention, a failed dead-letter
//!   send) are retried with jittered backoff; when retries are exhausted — or the invocation
//!   deadline is near — the partition stops and its first unfinished record is reported in
//!   `batchItemFailures`. Nothing later in that partition is processed in this invocation, so
//!   Lambda redelivers from there, in order.
//!
//! Generic over the ports: the tests drive it with DynamoDB and SQS on the local AWS-API
//! server, or with wrappers that inject failures.

use crate::kafka::{partitions, InboundRecord, KafkaBatchResponse, PartitionBatch};
use crate::metrics::{IngestMetrics, TopicStats};
use crate::retry::{retry, Failure, Limits, RetryPolicy};
use aws_lambda_events::event::kafka::KafkaEvent;
use futures::stream::{self, StreamExt};
use ras_domain::contracts::{ConsumedTopic, Timestamp};
use ras_domain::ids;
use ras_domain::ports::{AggregateStore, DeadLetter, DeadLetterSink, PublishError};
use ras_domain::service::{process_record, ConsumedRecord, ProcessError, RecordOutcome};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// The wall clock, injectable so tests are reproducible.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// Tuning of the handler (from the environment in production, see [`crate::config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerSettings {
    /// Partitions processed at the same time.
    pub partition_concurrency: usize,
    /// Retries of a record's processing and of a dead-letter send.
    pub retry: RetryPolicy,
    /// One processing attempt (or dead-letter send) taking longer than this counts as a
    /// transient failure.
    pub attempt_timeout: Duration,
    /// Kept free at the end of the invocation (the response, the metrics): no attempt runs
    /// past `deadline − deadline_reserve`, and no record starts after it.
    pub deadline_reserve: Duration,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        HandlerSettings {
            partition_concurrency: 4,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(10),
            deadline_reserve: Duration::from_secs(3),
        }
    }
}

/// Everything the handler works with.
pub struct Deps<S, D> {
    pub store: S,
    pub dead_letters: D,
    pub clock: Clock,
    pub settings: HandlerSettings,
}

impl HandlerSettings {
    /// The instant no attempt may run past: the invocation deadline minus the reserve.
    pub fn stop_at(&self, deadline: Option<Instant>) -> Option<Instant> {
        deadline.map(|d| {
            d.checked_sub(self.deadline_reserve)
                .unwrap_or_else(Instant::now)
        })
    }

    /// The limits of one record's attempts (or one dead-letter send's).
    fn limits(&self, deadline: Option<Instant>) -> Limits {
        Limits {
            attempt_timeout: self.attempt_timeout,
            stop_at: self.stop_at(deadline),
        }
    }
}

impl<S, D> Deps<S, D> {
    pub fn new(store: S, dead_letters: D) -> Self {
        Deps {
            store,
            dead_letters,
            clock: system_clock(),
            settings: HandlerSettings::default(),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_settings(mut self, settings: HandlerSettings) -> Self {
        self.settings = settings;
        self
    }
}

/// What became of one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Disposition {
    /// Committed with its marker.
    Applied {
        event_key: String,
        batch_id: String,
        state_changes: usize,
        published: usize,
    },
    /// Applied before: acknowledged without writing.
    Duplicate { event_key: String, batch_id: String },
    /// Sent to the dead-letter queue; acknowledged.
    DeadLettered { error_kind: String },
    /// Not finished: reported to Lambda, the partition stops here.
    Failed { reason: String },
}

/// One record's result, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordReport {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub disposition: Disposition,
    pub attempts: u32,
}

/// One partition's result.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionReport {
    pub key: String,
    /// The records handled, in offset order (those that failed are `Failed`).
    pub records: Vec<RecordReport>,
    /// The first record not finished, reported in `batchItemFailures`.
    pub failed_offset: Option<i64>,
    /// Records not started, left for the next delivery.
    pub not_started: usize,
}

impl PartitionReport {
    fn empty(key: String) -> Self {
        PartitionReport {
            key,
            records: Vec::new(),
            failed_offset: None,
            not_started: 0,
        }
    }

    /// Merge the report of the partition's second wave into this one: records in offset
    /// order, the lowest failed offset.
    fn absorb(&mut self, later: PartitionReport) {
        self.records.extend(later.records);
        self.records.sort_by_key(|r| r.offset);
        self.failed_offset = match (self.failed_offset, later.failed_offset) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.not_started += later.not_started;
    }
}

/// One lock per batch within an invocation: records of one batch from different partitions
/// take turns (FIFO) instead of racing. Optimistic concurrency alone stays correct but lets
/// the writer that just committed win again and again — its next read starts while the
/// loser is still learning that its commit was cancelled — so a partition could starve
/// behind a busy one. Writers in other invocations are still serialised by the version
/// condition alone.
#[derive(Default)]
struct BatchLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl BatchLocks {
    fn of(&self, batch_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(locks.entry(batch_id.to_string()).or_default())
    }
}

/// Everything an invocation did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchReport {
    pub partitions: Vec<PartitionReport>,
    pub metrics: IngestMetrics,
}

impl BatchReport {
    /// The response for Lambda: one item per partition that did not finish.
    pub fn response(&self) -> KafkaBatchResponse {
        let mut response = KafkaBatchResponse::default();
        for partition in &self.partitions {
            if let Some(offset) = partition.failed_offset {
                response.fail(&partition.key, offset);
            }
        }
        response
    }

    pub fn records(&self) -> impl Iterator<Item = &RecordReport> {
        self.partitions.iter().flat_map(|p| p.records.iter())
    }
}

/// The Lambda entry point: process the event, emit its metrics, answer with the partial-batch
/// response.
pub async fn handle<S, D>(deps: &Deps<S, D>, event: KafkaEvent) -> KafkaBatchResponse
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    handle_until(deps, event, None).await
}

/// [`handle`] with the invocation's deadline: no attempt (processing or dead-letter send)
/// runs past `deadline − deadline_reserve` — each is limited to the attempt timeout or the
/// time left before that instant, whichever is shorter — and no record starts after it.
pub async fn handle_until<S, D>(
    deps: &Deps<S, D>,
    event: KafkaEvent,
    deadline: Option<Instant>,
) -> KafkaBatchResponse
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let report = process_event(deps, event, deadline).await;
    report.metrics.emit();
    let response = report.response();
    let total = report.metrics.total();
    info!(
        partitions = report.partitions.len(),
        processed = total.processed,
        duplicate = total.duplicate,
        dead_lettered = total.dead_lettered,
        retried = total.retried,
        failed_partitions = response.batch_item_failures.len(),
        "batch done"
    );
    response
}

/// Process an event and report in detail (what [`handle`] does, minus emitting metrics).
///
/// Two waves: first every partition's records except BOS's pipeline-completed ones, then
/// those. Within one invocation a batch's results and phase outcomes are therefore stored
/// before BOS's report completes it — a cheap first defence only: what is published does not
/// depend on it (the results-ready event waits for its facts, `docs/deviations.md`), since the
/// same records also arrive in different invocations. Deferring a record past later offsets
/// of its partition is safe because the facts merge commutatively; a failure is still
/// reported at the lowest unfinished offset, and a deferred record after a partition's
/// failure is left for the redelivery.
pub async fn process_event<S, D>(
    deps: &Deps<S, D>,
    event: KafkaEvent,
    deadline: Option<Instant>,
) -> BatchReport
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let concurrency = deps.settings.partition_concurrency.max(1);
    let locks = BatchLocks::default();
    let mut waves: Vec<(PartitionBatch, Vec<InboundRecord>)> = partitions(event)
        .into_iter()
        .map(|batch| {
            let (later, now): (Vec<_>, Vec<_>) = batch
                .records
                .into_iter()
                .partition(|r| r.topic == ConsumedTopic::BatchPipelineCompleted.name());
            (
                PartitionBatch {
                    key: batch.key,
                    records: now,
                },
                later,
            )
        })
        .collect();
    let first: Vec<PartitionBatch> = waves
        .iter_mut()
        .map(|(batch, _)| PartitionBatch {
            key: batch.key.clone(),
            records: std::mem::take(&mut batch.records),
        })
        .collect();
    let mut first_reports: HashMap<String, (PartitionReport, IngestMetrics)> = stream::iter(first)
        .map(|batch| process_partition(deps, &locks, batch, deadline))
        .buffer_unordered(concurrency)
        .map(|(report, metrics)| (report.key.clone(), (report, metrics)))
        .collect()
        .await;
    let mut second = Vec::with_capacity(waves.len());
    for (batch, deferred) in waves {
        // Only what lies before the partition's first failure: the rest is redelivered.
        let stop = first_reports
            .get(&batch.key)
            .and_then(|(r, _)| r.failed_offset)
            .unwrap_or(i64::MAX);
        let (records, left): (Vec<_>, Vec<_>) = deferred.into_iter().partition(|r| r.offset < stop);
        if let Some((first, _)) = first_reports.get_mut(&batch.key) {
            first.not_started += left.len();
        }
        second.push(PartitionBatch {
            key: batch.key,
            records,
        });
    }
    let second_reports: Vec<(PartitionReport, IngestMetrics)> = stream::iter(second)
        .map(|batch| process_partition(deps, &locks, batch, deadline))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut report = BatchReport::default();
    for (later, later_metrics) in second_reports {
        let (mut partition, mut metrics) = first_reports.remove(&later.key).unwrap_or_else(|| {
            (
                PartitionReport::empty(later.key.clone()),
                IngestMetrics::default(),
            )
        });
        partition.absorb(later);
        metrics.merge(&later_metrics);
        report.metrics.merge(&metrics);
        report.partitions.push(partition);
    }
    report.partitions.sort_by(|a, b| a.key.cmp(&b.key));
    report
}

async fn process_partition<S, D>(
    deps: &Deps<S, D>,
    locks: &BatchLocks,
    batch: PartitionBatch,
    deadline: Option<Instant>,
) -> (PartitionReport, IngestMetrics)
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let PartitionBatch { key, records } = batch;
    let total = records.len();
    let mut metrics = IngestMetrics::default();
    let mut report = PartitionReport {
        key,
        records: Vec::with_capacity(total),
        failed_offset: None,
        not_started: 0,
    };
    for (index, record) in records.into_iter().enumerate() {
        let out_of_time = deps
            .settings
            .stop_at(deadline)
            .is_some_and(|stop| Instant::now() >= stop);
        if out_of_time {
            warn!(
                partition_key = %report.key, topic = %record.topic, partition = record.partition,
                offset = record.offset, "invocation deadline near: leaving the rest of the partition for the next delivery"
            );
            metrics.topic(&record.topic).failed += 1;
            report.failed_offset = Some(record.offset);
            report.not_started = total - index - 1;
            break;
        }
        let started = Instant::now();
        let outcome = process_one(deps, locks, &record, deadline).await;
        let stats = metrics.topic(&record.topic);
        count(stats, &outcome.disposition, outcome.attempts);
        stats
            .latencies_ms
            .push(started.elapsed().as_secs_f64() * 1_000.0);
        let failed = matches!(outcome.disposition, Disposition::Failed { .. });
        report.records.push(outcome);
        if failed {
            report.failed_offset = Some(record.offset);
            report.not_started = total - index - 1;
            break;
        }
    }
    (report, metrics)
}

fn count(stats: &mut TopicStats, disposition: &Disposition, attempts: u32) {
    match disposition {
        Disposition::Applied { .. } => stats.processed += 1,
        Disposition::Duplicate { .. } => stats.duplicate += 1,
        Disposition::DeadLettered { .. } => stats.dead_lettered += 1,
        Disposition::Failed { .. } => stats.failed += 1,
    }
    let retries = u64::from(attempts.saturating_sub(1));
    if retries > 0 {
        stats.retried += 1;
        stats.retry_attempts += retries;
    }
}

/// Envelope ids for logs and dead letters, read without the full decode (which may fail).
#[derive(Default, Deserialize)]
struct EnvelopeIds {
    #[serde(default)]
    event_id: Option<serde_json::Value>,
    #[serde(default)]
    correlation_id: Option<serde_json::Value>,
    #[serde(default)]
    data: Option<DataIds>,
}

/// The batch a record is about: `data.entity_id` of a registration, `data.batch_id` otherwise.
#[derive(Default, Deserialize)]
struct DataIds {
    #[serde(default)]
    batch_id: Option<serde_json::Value>,
    #[serde(default)]
    entity_id: Option<serde_json::Value>,
}

impl EnvelopeIds {
    fn peek(value: &[u8]) -> Self {
        serde_json::from_slice(value).unwrap_or_default()
    }

    /// The batch id as far as it can be read without decoding (a scheduling hint only).
    fn batch_id(&self, topic: &str) -> Option<&str> {
        let data = self.data.as_ref()?;
        let field = if topic == ConsumedTopic::BatchEssaysRegistered.name() {
            &data.entity_id
        } else {
            &data.batch_id
        };
        field.as_ref()?.as_str()
    }

    fn event_id(&self) -> &str {
        self.event_id
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }

    fn correlation_id(&self) -> &str {
        self.correlation_id
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }

    /// The idempotency key the record has (or would have), when its event id is readable.
    fn event_key(&self, topic: &str, value: &[u8]) -> Option<String> {
        match &self.event_id {
            None | Some(serde_json::Value::Null) => Some(ids::event_key(None, topic, value)),
            Some(serde_json::Value::String(id)) => uuid::Uuid::parse_str(id.trim())
                .ok()
                .map(|id| format!("event:{id}")),
            Some(_) => None,
        }
    }
}

/// Log context of one record.
struct RecordLog<'a> {
    record: &'a InboundRecord,
    ids: EnvelopeIds,
}

async fn process_one<S, D>(
    deps: &Deps<S, D>,
    locks: &BatchLocks,
    record: &InboundRecord,
    deadline: Option<Instant>,
) -> RecordReport
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let now = (deps.clock)();
    let report = |disposition, attempts| RecordReport {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        disposition,
        attempts,
    };
    let value = match record.value_bytes() {
        Ok(value) => value,
        Err(err) => {
            let log = RecordLog {
                record,
                ids: EnvelopeIds::default(),
            };
            let (disposition, attempts) =
                dead_letter(deps, &log, None, err.kind(), err.to_string(), now, deadline).await;
            return report(disposition, attempts);
        }
    };
    let log = RecordLog {
        record,
        ids: EnvelopeIds::peek(&value),
    };
    let consumed = ConsumedRecord {
        topic: &record.topic,
        value: &value,
        record_time: record.timestamp.unwrap_or(now),
    };
    let batch_lock = log.ids.batch_id(&record.topic).map(|id| locks.of(id));
    // Each attempt (waiting for the batch's turn included) is limited to the attempt timeout
    // and never runs past the deadline minus the reserve.
    let outcome = retry(
        &deps.settings.retry,
        deps.settings.limits(deadline),
        || async {
            // Per attempt, so other partitions' records of the batch go between retries.
            let _turn = match &batch_lock {
                Some(lock) => Some(lock.lock().await),
                None => None,
            };
            process_record(&deps.store, consumed, now).await
        },
        ProcessError::is_retryable,
        |retry, err, delay| {
            warn!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                retry, backoff_ms = delay.as_millis() as u64, error = %err,
                "transient failure, retrying"
            );
        },
    )
    .await;
    let attempts = outcome.attempts;
    match outcome.result {
        Ok(RecordOutcome::Applied {
            event_key,
            batch_id,
            state_changes,
            published,
        }) => {
            info!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                %event_key, %batch_id, state_changes, published, attempts, "record applied"
            );
            report(
                Disposition::Applied {
                    event_key,
                    batch_id,
                    state_changes,
                    published,
                },
                attempts,
            )
        }
        Ok(RecordOutcome::Duplicate {
            event_key,
            batch_id,
        }) => {
            info!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                %event_key, %batch_id, attempts, "duplicate record: applied before"
            );
            report(
                Disposition::Duplicate {
                    event_key,
                    batch_id,
                },
                attempts,
            )
        }
        Err(err) if err.is_retryable(ProcessError::is_retryable) => {
            error!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                attempts, error = %err,
                "transient failure persists: reporting the record as a batch item failure"
            );
            report(
                Disposition::Failed {
                    reason: err.to_string(),
                },
                attempts,
            )
        }
        Err(err) => {
            let (kind, event_key) = match &err {
                Failure::Error(ProcessError::PayloadConflict { event_key, .. }) => {
                    ("payload_conflict", Some(event_key.clone()))
                }
                Failure::Error(e) => (e.kind(), log.ids.event_key(&record.topic, &value)),
                // Timeouts are transient (handled above); listed for completeness.
                Failure::TimedOut(_) | Failure::NoTimeLeft => ("timeout", None),
            };
            let (disposition, dl_attempts) =
                dead_letter(deps, &log, event_key, kind, err.to_string(), now, deadline).await;
            report(disposition, attempts + dl_attempts.saturating_sub(1))
        }
    }
}

/// Send a record to the dead-letter sink, retrying transient failures. Returns the record's
/// disposition: dead-lettered, or failed when the sink would not take it.
async fn dead_letter<S, D>(
    deps: &Deps<S, D>,
    log: &RecordLog<'_>,
    event_key: Option<String>,
    error_kind: &str,
    error_message: String,
    now: Timestamp,
    deadline: Option<Instant>,
) -> (Disposition, u32)
where
    D: DeadLetterSink,
{
    let record = log.record;
    let letter = DeadLetter {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key_base64: record.key_base64.clone(),
        value_base64: record.value_base64.clone().unwrap_or_default(),
        error_kind: error_kind.to_string(),
        error_message,
        event_key,
        dead_lettered_at: now,
    };
    let sent = retry(
        &deps.settings.retry,
        deps.settings.limits(deadline),
        || deps.dead_letters.send(&letter),
        PublishError::is_retryable,
        |retry, err, delay| {
            warn!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                retry, backoff_ms = delay.as_millis() as u64, error = %err,
                "dead-letter send failed, retrying"
            );
        },
    )
    .await;
    match sent.result {
        Ok(()) => {
            warn!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                event_key = letter.event_key.as_deref().unwrap_or(""),
                error_kind = %letter.error_kind, error = %letter.error_message,
                "record dead-lettered"
            );
            (
                Disposition::DeadLettered {
                    error_kind: letter.error_kind,
                },
                sent.attempts,
            )
        }
        Err(err) => {
            error!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                event_id = log.ids.event_id(), correlation_id = log.ids.correlation_id(),
                error_kind = %letter.error_kind, error = %err,
                "could not dead-letter the record: reporting it as a batch item failure"
            );
            (
                Disposition::Failed {
                    reason: format!("dead-letter send failed ({}): {err}", letter.error_kind),
                },
                sent.attempts,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_ids_are_read_without_decoding() {
        let value =
            br#"{"event_id": "AAAAAAAA-0000-4000-8000-000000000001", "correlation_id": "c-1",
            "data": {"entity_id": "b-1", "batch_id": "b-2"}, "metadata": null}"#;
        let ids = EnvelopeIds::peek(value);
        assert_eq!(ids.correlation_id(), "c-1");
        assert_eq!(
            ids.batch_id(ConsumedTopic::BatchEssaysRegistered.name()),
            Some("b-1")
        );
        assert_eq!(
            ids.batch_id(ConsumedTopic::EssaySlotAssigned.name()),
            Some("b-2")
        );
        assert_eq!(
            ids.event_key("t", value).as_deref(),
            Some("event:aaaaaaaa-0000-4000-8000-000000000001")
        );

        let no_id = br#"{"data": {"batch_id": 7}}"#;
        let ids = EnvelopeIds::peek(no_id);
        assert_eq!(ids.batch_id(ConsumedTopic::EssaySlotAssigned.name()), None);
        assert_eq!(
            ids.event_key("t", no_id),
            Some(ids::event_key(None, "t", no_id))
        );
        let junk = EnvelopeIds::peek(b"\xff not json");
        assert_eq!(junk.event_id(), "");
        assert!(junk.batch_id("t").is_none());
        assert!(EnvelopeIds::peek(br#"{"event_id": 42}"#)
            .event_key("t", b"")
            .is_none());
    }

    #[test]
    fn batch_locks_are_shared_per_batch() {
        let locks = BatchLocks::default();
        assert!(Arc::ptr_eq(&locks.of("a"), &locks.of("a")));
        assert!(!Arc::ptr_eq(&locks.of("a"), &locks.of("b")));
    }

    #[test]
    fn the_response_names_the_first_failed_record_of_each_stopped_partition() {
        let report = BatchReport {
            partitions: vec![
                PartitionReport {
                    key: "t-0".into(),
                    records: vec![],
                    failed_offset: Some(7),
                    not_started: 3,
                },
                PartitionReport {
                    key: "t-1".into(),
                    records: vec![],
                    failed_offset: None,
                    not_started: 0,
                },
            ],
            metrics: IngestMetrics::default(),
        };
        let response = serde_json::to_value(report.response()).unwrap();
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": {"partition": "t-0", "offset": 7}}]})
        );
    }
}
