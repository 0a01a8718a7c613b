//! One record: decoded once, when the event is split into partitions
//! ([`ras_domain::service::DecodedRecord`]), then applied with retries — taking turns with the
//! other records of its batch — or dead-lettered. Everything it logs is within its span
//! (`record`: topic, partition, offset, event key, batch id, correlation id).

use crate::dead_letter::{self, Reason};
use crate::handler::Deps;
use crate::kafka::{InboundRecord, RecordError};
use crate::report::{Disposition, RecordReport};
use crate::retry::{retry, warn_on_retry, Failure};
use ras_domain::contracts::Timestamp;
use ras_domain::ports::{AggregateStore, DeadLetterSink};
use ras_domain::service::{process_decoded, DecodedRecord, ProcessError, RecordOutcome};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::{error, info, info_span, Span};

/// A record as delivered, and what decoding it found.
pub struct Record {
    pub inbound: InboundRecord,
    /// `Err` when the value is not even bytes to decode (a tombstone, invalid base64).
    pub decoded: Result<DecodedRecord, RecordError>,
}

impl Record {
    pub fn decode(inbound: InboundRecord) -> Self {
        let decoded = inbound
            .value_bytes()
            .map(|value| DecodedRecord::decode(&inbound.topic, &value));
        Record { inbound, decoded }
    }

    /// BOS's completion report: applied in the invocation's second wave.
    pub fn is_completion_report(&self) -> bool {
        self.decoded
            .as_ref()
            .is_ok_and(DecodedRecord::is_completion_report)
    }

    /// The span every log line about this record is written in.
    pub fn span(&self) -> Span {
        let decoded = self.decoded.as_ref().ok();
        info_span!(
            "record",
            topic = %self.inbound.topic,
            partition = self.inbound.partition,
            offset = self.inbound.offset,
            event_key = decoded.and_then(DecodedRecord::event_key),
            batch_id = decoded.and_then(DecodedRecord::batch_id),
            correlation_id = decoded.and_then(DecodedRecord::correlation_id),
        )
    }
}

/// One lock per batch within an invocation: records of one batch from different partitions
/// take turns (FIFO) instead of racing. Optimistic concurrency alone stays correct but lets
/// the writer that just committed win again and again — its next read starts while the
/// loser is still learning that its commit was cancelled — so a partition could starve
/// behind a busy one. Writers in other invocations are still serialised by the version
/// condition alone.
#[derive(Default)]
pub struct BatchLocks {
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

/// Apply a record, or dead-letter it when it fails for good. Run it within [`Record::span`].
pub async fn process<S, D>(
    deps: &Deps<S, D>,
    locks: &BatchLocks,
    record: &Record,
    deadline: Option<Instant>,
) -> RecordReport
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let now = (deps.clock)();
    let (disposition, attempts) = match &record.decoded {
        Err(err) => {
            let reason = Reason {
                kind: err.kind(),
                message: err.to_string(),
                event_key: None,
            };
            dead_letter(deps, &record.inbound, reason, now, deadline).await
        }
        Ok(DecodedRecord::Rejected {
            error, event_key, ..
        }) => {
            let reason = Reason {
                kind: error.kind(),
                message: error.to_string(),
                event_key: event_key.clone(),
            };
            dead_letter(deps, &record.inbound, reason, now, deadline).await
        }
        Ok(decoded) => apply(deps, locks, record, decoded, now, deadline).await,
    };
    let inbound = &record.inbound;
    RecordReport {
        topic: inbound.topic.clone(),
        partition: inbound.partition,
        offset: inbound.offset,
        disposition,
        attempts,
    }
}

/// Apply a decoded event with retries: transient failures are retried, then reported; a
/// permanent one dead-letters the record.
async fn apply<S, D>(
    deps: &Deps<S, D>,
    locks: &BatchLocks,
    record: &Record,
    decoded: &DecodedRecord,
    now: Timestamp,
    deadline: Option<Instant>,
) -> (Disposition, u32)
where
    S: AggregateStore,
    D: DeadLetterSink,
{
    let record_time = record.inbound.timestamp.unwrap_or(now);
    let batch_lock = decoded.batch_id().map(|id| locks.of(id));
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
            process_decoded(&deps.store, decoded, record_time, now).await
        },
        ProcessError::is_retryable,
        warn_on_retry("transient failure, retrying"),
    )
    .await;
    let attempts = outcome.attempts;
    match outcome.result {
        Ok(done) => {
            match &done {
                RecordOutcome::Applied {
                    state_changes,
                    published,
                    ..
                } => info!(state_changes, published, attempts, "record applied"),
                RecordOutcome::Duplicate { .. } => {
                    info!(attempts, "duplicate record: applied before")
                }
            }
            (Disposition::Done(done), attempts)
        }
        Err(Failure::Error(err)) if !err.is_retryable() => {
            let reason = Reason {
                kind: err.kind(),
                message: err.to_string(),
                event_key: decoded.event_key().map(str::to_string),
            };
            let (disposition, sends) =
                dead_letter(deps, &record.inbound, reason, now, deadline).await;
            (disposition, attempts + sends.saturating_sub(1))
        }
        Err(failure) => {
            error!(
                attempts, error = %failure,
                "transient failure persists: reporting the record as a batch item failure"
            );
            let reason = failure.to_string();
            (Disposition::Failed { reason }, attempts)
        }
    }
}

async fn dead_letter<S, D: DeadLetterSink>(
    deps: &Deps<S, D>,
    record: &InboundRecord,
    reason: Reason,
    now: Timestamp,
    deadline: Option<Instant>,
) -> (Disposition, u32) {
    let letter = dead_letter::letter(record, reason, now);
    dead_letter::send(&deps.dead_letters, &deps.settings, letter, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_locks_are_shared_per_batch() {
        let locks = BatchLocks::default();
        assert!(Arc::ptr_eq(&locks.of("a"), &locks.of("a")));
        assert!(!Arc::ptr_eq(&locks.of("a"), &locks.of("b")));
    }

    #[test]
    fn a_tombstone_is_not_decoded_and_not_deferred() {
        let record = Record::decode(InboundRecord {
            topic: ras_domain::contracts::ConsumedTopic::BatchPipelineCompleted
                .name()
                .into(),
            partition: 0,
            offset: 3,
            timestamp: None,
            key_base64: None,
            value_base64: None,
        });
        assert_eq!(
            record.decoded.as_ref().err(),
            Some(&RecordError::MissingValue)
        );
        assert!(!record.is_completion_report());
    }
}
