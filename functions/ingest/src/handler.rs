//! The handler: a Kafka event in, a partial-batch response out. This module schedules; one
//! record's processing is [`crate::record`]'s.
//!
//! * Every record is decoded once, first ([`crate::record::Record::decode`]): its batch, its
//!   idempotency key and whether it is BOS's completion report are known before it runs.
//! * Partitions are processed concurrently (at most `partition_concurrency` at a time), the
//!   records of one partition strictly one after the other, in offset order — in two waves:
//!   BOS's completion reports after everything else ([`process_event`]).
//! * Each record is applied by the domain service (load → plan → one transaction with its
//!   idempotency marker); a duplicate (marker present, same payload) counts as success.
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

use crate::error::IngestError;
use crate::kafka::{parse_event, partitions, KafkaBatchResponse, PartitionBatch};
use crate::metrics::IngestMetrics;
use crate::record::{self, BatchLocks, Record};
use crate::retry::{Limits, RetryPolicy};
use aws_lambda_events::event::kafka::KafkaEvent;
use futures::stream::{self, StreamExt};
use ras_domain::contracts::Timestamp;
use ras_domain::ports::{AggregateStore, DeadLetterSink};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn, Instrument};

pub use crate::report::{BatchReport, Disposition, PartitionReport, RecordReport};

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

    /// Whether the stop instant has passed: no record starts then.
    pub fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        self.stop_at(deadline)
            .is_some_and(|stop| Instant::now() >= stop)
    }

    /// The limits of one record's attempts (or one dead-letter send's).
    pub(crate) fn limits(&self, deadline: Option<Instant>) -> Limits {
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

/// The Lambda entry point: the invocation's payload in, the partial-batch response out (see
/// [`handle_until`] for `deadline`). A payload that is not an MSK event at all fails the
/// invocation (Lambda retries it; nothing is dropped).
pub async fn handle_payload<S, D>(
    deps: &Deps<S, D>,
    payload: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<KafkaBatchResponse, IngestError>
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let event = parse_event(payload).map_err(IngestError::NotAnMskEvent)?;
    Ok(handle_until(deps, event, deadline).await)
}

/// Process the event, emit its metrics, answer with the partial-batch response.
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

/// The records of one partition, decoded, in offset order.
struct Partition {
    key: String,
    records: Vec<Record>,
}

impl Partition {
    /// Decode the records and split them into the partition's two waves: everything but BOS's
    /// completion reports, then those.
    fn waves(batch: PartitionBatch) -> (Partition, Partition) {
        let (later, now): (Vec<Record>, Vec<Record>) = batch
            .records
            .into_iter()
            .map(Record::decode)
            .partition(Record::is_completion_report);
        let key = batch.key;
        let first = Partition {
            key: key.clone(),
            records: now,
        };
        (
            first,
            Partition {
                key,
                records: later,
            },
        )
    }
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
    let locks = BatchLocks::default();
    let (first, mut second): (Vec<Partition>, Vec<Partition>) =
        partitions(event).into_iter().map(Partition::waves).unzip();
    let mut first = run_wave(deps, &locks, first, deadline).await;
    // Both waves hold every partition, in key order.
    for ((report, _), later) in first.iter_mut().zip(&mut second) {
        if let Some(stop) = report.failed_offset {
            // Only what lies before the partition's first failure: the rest is redelivered.
            let deferred = later.records.len();
            later.records.retain(|r| r.inbound.offset < stop);
            report.not_started += deferred - later.records.len();
        }
    }
    let second = run_wave(deps, &locks, second, deadline).await;
    let mut report = BatchReport::default();
    for ((mut partition, metrics), (later, later_metrics)) in first.into_iter().zip(second) {
        partition.absorb(later);
        report.metrics.merge(&metrics);
        report.metrics.merge(&later_metrics);
        report.partitions.push(partition);
    }
    report
}

/// Process the partitions of a wave, at most `partition_concurrency` at a time; the reports
/// in key order.
async fn run_wave<S, D>(
    deps: &Deps<S, D>,
    locks: &BatchLocks,
    wave: Vec<Partition>,
    deadline: Option<Instant>,
) -> Vec<(PartitionReport, IngestMetrics)>
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let mut reports: Vec<(PartitionReport, IngestMetrics)> = stream::iter(wave)
        .map(|partition| process_partition(deps, locks, partition, deadline))
        .buffer_unordered(deps.settings.partition_concurrency.max(1))
        .collect()
        .await;
    reports.sort_by(|(a, _), (b, _)| a.key.cmp(&b.key));
    reports
}

/// The records of one partition, one after the other, until the first that does not finish.
async fn process_partition<S, D>(
    deps: &Deps<S, D>,
    locks: &BatchLocks,
    partition: Partition,
    deadline: Option<Instant>,
) -> (PartitionReport, IngestMetrics)
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let Partition { key, records } = partition;
    let total = records.len();
    let mut metrics = IngestMetrics::default();
    let mut report = PartitionReport::new(key);
    for (index, record) in records.iter().enumerate() {
        let span = record.span();
        let stats = metrics.topic(&record.inbound.topic);
        let finished = if deps.settings.out_of_time(deadline) {
            span.in_scope(|| {
                warn!(
                    partition_key = %report.key,
                    "invocation deadline near: leaving the rest of the partition for the next delivery"
                )
            });
            stats.failed += 1;
            false
        } else {
            let started = Instant::now();
            let outcome = record::process(deps, locks, record, deadline)
                .instrument(span)
                .await;
            outcome.count(stats);
            stats
                .latencies_ms
                .push(started.elapsed().as_secs_f64() * 1_000.0);
            let finished = !matches!(outcome.disposition, Disposition::Failed { .. });
            report.records.push(outcome);
            finished
        };
        if !finished {
            report.failed_offset = Some(record.inbound.offset);
            report.not_started = total - index - 1;
            break;
        }
    }
    (report, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Diagnostic;
    use ras_domain::ports::{DeadLetter, PublishError};
    use ras_domain::testing::InMemoryStore;

    struct Sink;

    impl DeadLetterSink for Sink {
        async fn send(&self, _letter: &DeadLetter) -> Result<(), PublishError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_payload_that_is_not_an_msk_event_fails_the_invocation_with_its_error_type() {
        let deps = Deps::new(InMemoryStore::default(), Sink);
        let empty = serde_json::json!({"eventSource": "aws:kafka", "records": {}});
        assert!(handle_payload(&deps, empty, None).await.is_ok());
        let err = handle_payload(&deps, serde_json::json!("hello"), None)
            .await
            .unwrap_err();
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "Ingest.NotAnMskEvent");
        assert!(
            diagnostic.error_message.starts_with("not an MSK event: "),
            "{diagnostic:?}"
        );
    }

    #[test]
    fn the_stop_instant_is_the_deadline_minus_the_reserve() {
        let settings = HandlerSettings::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            settings.stop_at(Some(deadline)),
            Some(deadline - settings.deadline_reserve)
        );
        assert_eq!(settings.stop_at(None), None);
        assert!(!settings.out_of_time(None));
        assert!(settings.out_of_time(Some(Instant::now())));
    }
}
