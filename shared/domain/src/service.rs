//! The ingest use case, generic over the store port: one consumed record → decoded event →
//! plan → one atomic commit with the record's idempotency marker. The Lambda function adds the
//! Kafka adaptation, retries with backoff, dead-lettering and metrics around it.

use crate::contracts::{decode_record, DecodeError, Timestamp};
use crate::ids;
use crate::model::BatchAggregate;
use crate::ports::{AggregateStore, CommitOutcome, IdempotencyMarker, StoreError};
use crate::rules::{self, RecordContext, RuleError};

/// Re-plans allowed when concurrent writers keep changing the batch under us.
pub const MAX_VERSION_CONFLICTS: u32 = 16;

/// A record as consumed, whatever the transport.
#[derive(Clone, Copy, Debug)]
pub struct ConsumedRecord<'a> {
    pub topic: &'a str,
    pub value: &'a [u8],
    /// The broker's record timestamp: the event time of last resort.
    pub record_time: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// Committed: state changes (possibly none) and `published` outbox messages.
    Applied {
        event_key: String,
        batch_id: String,
        state_changes: usize,
        published: usize,
    },
    /// Applied before (same key, same payload): nothing written.
    Duplicate { event_key: String, batch_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(
        "event key `{event_key}` was already applied with another payload (hash {existing_hash})"
    )]
    PayloadConflict {
        event_key: String,
        existing_hash: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(
        "batch `{batch_id}` kept changing: {attempts} optimistic-concurrency conflicts in a row"
    )]
    Contention { batch_id: String, attempts: u32 },
}

impl ProcessError {
    /// Transient failures are retried (and finally reported to Lambda); the rest dead-letter.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProcessError::Store(e) => e.is_retryable(),
            ProcessError::Contention { .. } => true,
            _ => false,
        }
    }

    /// Stable kind for dead letters and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ProcessError::Decode(e) => e.kind(),
            ProcessError::PayloadConflict { .. } => "payload_conflict",
            ProcessError::Store(StoreError::Permanent { kind, .. }) => kind,
            ProcessError::Store(StoreError::Transient(_)) => "store_unavailable",
            ProcessError::Rule(_) => "rule_error",
            ProcessError::Contention { .. } => "contention",
        }
    }
}

/// Apply one record exactly once in effect.
pub async fn process_record<S: AggregateStore>(
    store: &S,
    record: ConsumedRecord<'_>,
    now: Timestamp,
) -> Result<RecordOutcome, ProcessError> {
    let event = decode_record(record.topic, record.value)?;
    let event_key = ids::event_key(event.event_id, record.topic, record.value);
    let batch_id = event.batch_id().to_string();
    let marker = IdempotencyMarker::new(
        event_key.clone(),
        ids::payload_hash(record.value),
        record.topic,
        &batch_id,
        now,
    );
    let ctx = RecordContext::for_event(&event, event_key.clone(), record.record_time, now);
    for _ in 0..MAX_VERSION_CONFLICTS {
        let aggregate: BatchAggregate = store.load(&batch_id).await?;
        let plan = rules::apply(&aggregate, &event.payload, &ctx)?;
        match store.commit(&marker, &plan).await? {
            CommitOutcome::Committed => {
                return Ok(RecordOutcome::Applied {
                    event_key,
                    batch_id,
                    state_changes: plan.changes.len(),
                    published: plan.outbox.len(),
                })
            }
            CommitOutcome::Duplicate => {
                return Ok(RecordOutcome::Duplicate {
                    event_key,
                    batch_id,
                })
            }
            CommitOutcome::PayloadConflict { existing_hash } => {
                return Err(ProcessError::PayloadConflict {
                    event_key,
                    existing_hash,
                })
            }
            CommitOutcome::VersionConflict => continue,
        }
    }
    Err(ProcessError::Contention {
        batch_id,
        attempts: MAX_VERSION_CONFLICTS,
    })
}

/// What the facts timer did with one batch.
#[derive(Clone, Debug, PartialEq)]
pub enum OverdueOutcome {
    /// The results-ready event was emitted without the facts listed.
    Emitted {
        batch_id: String,
        missing: crate::model::MissingFacts,
        published: usize,
    },
    /// Nothing to do: the event is out, the facts arrived, or the wait is younger than the
    /// grace period (the index lags the store, or another timer run was first).
    NotDue { batch_id: String },
}

/// The idempotency key of a timed emission: one per batch and wait.
pub fn overdue_event_key(batch_id: &str, since: Timestamp) -> String {
    format!("facts-deadline:{}:{batch_id}", since.unix_micros())
}

/// The facts timer's use case for one batch: load it, [`rules::emit_overdue_results`], and
/// commit the plan with a marker in one transaction — the same path as a consumed record, so
/// the version condition serialises it with ingest and a concurrent timer run.
pub async fn emit_overdue<S: AggregateStore>(
    store: &S,
    batch_id: &str,
    now: Timestamp,
    grace_seconds: u64,
) -> Result<OverdueOutcome, ProcessError> {
    for _ in 0..MAX_VERSION_CONFLICTS {
        let aggregate: BatchAggregate = store.load(batch_id).await?;
        let Some(since) = aggregate.root.awaiting_facts_since else {
            return Ok(OverdueOutcome::NotDue {
                batch_id: batch_id.to_string(),
            });
        };
        let plan = rules::emit_overdue_results(&aggregate, now, grace_seconds)?;
        if plan.is_noop() {
            return Ok(OverdueOutcome::NotDue {
                batch_id: batch_id.to_string(),
            });
        }
        let event_key = overdue_event_key(batch_id, since);
        let marker = IdempotencyMarker::new(
            event_key.clone(),
            ids::payload_hash(event_key.as_bytes()),
            FACTS_TIMER_SOURCE,
            batch_id,
            now,
        );
        match store.commit(&marker, &plan).await? {
            CommitOutcome::Committed => {
                let missing = plan
                    .changes
                    .iter()
                    .find_map(|c| match c {
                        crate::plan::StateChange::Root(root) => root.results_ready_missing.clone(),
                        _ => None,
                    })
                    .unwrap_or_default();
                return Ok(OverdueOutcome::Emitted {
                    batch_id: batch_id.to_string(),
                    missing,
                    published: plan.outbox.len(),
                });
            }
            CommitOutcome::Duplicate | CommitOutcome::PayloadConflict { .. } => {
                return Ok(OverdueOutcome::NotDue {
                    batch_id: batch_id.to_string(),
                })
            }
            CommitOutcome::VersionConflict => continue,
        }
    }
    Err(ProcessError::Contention {
        batch_id: batch_id.to_string(),
        attempts: MAX_VERSION_CONFLICTS,
    })
}

/// The `topic` recorded on the facts timer's markers.
pub const FACTS_TIMER_SOURCE: &str = "ras.facts-timer";
