//! The ingest use case, generic over the store port: one consumed record → decoded event →
//! plan → one atomic commit with the record's idempotency marker. The Lambda function adds the
//! Kafka adaptation, retries with backoff, dead-lettering and metrics around it.
//!
//! A record is decoded once ([`DecodedRecord::decode`]): the function schedules and logs it
//! by what the decode found (its batch, its idempotency key, whether it is BOS's completion
//! report) and then applies it with [`process_decoded`]; [`process_record`] does both.

use crate::contracts::{
    decode_record, DecodeError, EnvelopeIds, InboundEvent, InboundPayload, Timestamp,
};
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

/// A consumed record, decoded once: the event to apply, or why the decoder rejected it — with
/// what the transport needs before applying it (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedRecord {
    Event {
        event: Box<InboundEvent>,
        /// The idempotency key ([`ids::event_key`]).
        event_key: String,
        /// [`ids::payload_hash`] of the value.
        payload_hash: String,
    },
    /// Permanently undecodable: to be dead-lettered with what its envelope still tells.
    Rejected {
        error: DecodeError,
        /// The key the record would have, when its envelope's `event_id` is readable
        /// ([`EnvelopeIds`]).
        event_key: Option<String>,
        correlation_id: Option<String>,
    },
}

impl DecodedRecord {
    /// Decode a value consumed from `topic` ([`decode_record`]); a rejected record's envelope
    /// is then read leniently for its identifiers.
    pub fn decode(topic: &str, value: &[u8]) -> Self {
        match decode_record(topic, value) {
            Ok(event) => DecodedRecord::Event {
                event_key: ids::event_key(event.event_id, topic, value),
                payload_hash: ids::payload_hash(value),
                event: Box::new(event),
            },
            Err(error) => {
                let envelope = EnvelopeIds::read(value);
                DecodedRecord::Rejected {
                    error,
                    event_key: envelope.event_id.map(|id| ids::event_key(id, topic, value)),
                    correlation_id: envelope.correlation_id,
                }
            }
        }
    }

    /// The idempotency key (for a rejected record: as far as it can be known).
    pub fn event_key(&self) -> Option<&str> {
        match self {
            DecodedRecord::Event { event_key, .. } => Some(event_key),
            DecodedRecord::Rejected { event_key, .. } => event_key.as_deref(),
        }
    }

    /// The batch the event is applied to (none for a rejected record: it touches no batch).
    pub fn batch_id(&self) -> Option<&str> {
        match self {
            DecodedRecord::Event { event, .. } => Some(event.batch_id()),
            DecodedRecord::Rejected { .. } => None,
        }
    }

    pub fn correlation_id(&self) -> Option<String> {
        match self {
            DecodedRecord::Event { event, .. } => event.correlation_id.map(|id| id.to_string()),
            DecodedRecord::Rejected { correlation_id, .. } => correlation_id.clone(),
        }
    }

    /// BOS's `BatchPipelineCompletedV1`: the report that makes a batch's results-ready event
    /// due once its facts are stored.
    pub fn is_completion_report(&self) -> bool {
        matches!(
            self,
            DecodedRecord::Event { event, .. } if matches!(event.payload, InboundPayload::PipelineCompleted(_))
        )
    }
}

/// Apply one record exactly once in effect: [`DecodedRecord::decode`], then
/// [`process_decoded`].
pub async fn process_record<S: AggregateStore>(
    store: &S,
    record: ConsumedRecord<'_>,
    now: Timestamp,
) -> Result<RecordOutcome, ProcessError> {
    let decoded = DecodedRecord::decode(record.topic, record.value);
    process_decoded(store, &decoded, record.record_time, now).await
}

/// Apply a decoded record exactly once in effect: load its batch, plan, commit the plan with
/// the record's idempotency marker; re-read and re-plan on a version conflict. A rejected
/// record fails with its [`DecodeError`]. `record_time` is the broker's timestamp: the event
/// time of last resort.
pub async fn process_decoded<S: AggregateStore>(
    store: &S,
    record: &DecodedRecord,
    record_time: Timestamp,
    now: Timestamp,
) -> Result<RecordOutcome, ProcessError> {
    let (event, event_key, payload_hash) = match record {
        DecodedRecord::Event {
            event,
            event_key,
            payload_hash,
        } => (event, event_key, payload_hash),
        DecodedRecord::Rejected { error, .. } => return Err(error.clone().into()),
    };
    let batch_id = event.batch_id();
    let topic = event.topic.name();
    let marker = IdempotencyMarker::new(
        event_key.clone(),
        payload_hash.clone(),
        topic,
        batch_id,
        now,
    );
    let ctx = RecordContext::for_event(event, event_key.clone(), record_time, now);
    for _ in 0..MAX_VERSION_CONFLICTS {
        let plan = plan_record(store, batch_id, &event.payload, &ctx).await?;
        match store.commit(&marker, &plan).await? {
            CommitOutcome::Committed => {
                return Ok(RecordOutcome::Applied {
                    event_key: event_key.clone(),
                    batch_id: batch_id.to_string(),
                    state_changes: plan.changes.len(),
                    published: plan.outbox.len(),
                })
            }
            CommitOutcome::Duplicate => {
                return Ok(RecordOutcome::Duplicate {
                    event_key: event_key.clone(),
                    batch_id: batch_id.to_string(),
                })
            }
            CommitOutcome::PayloadConflict { existing_hash } => {
                return Err(ProcessError::PayloadConflict {
                    event_key: event_key.clone(),
                    existing_hash,
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

/// The plan of one record: a per-essay record from its batch's root and its own essay when
/// they are enough ([`rules::apply_to_essay`]: one read of two small items), else from the
/// whole batch.
async fn plan_record<S: AggregateStore>(
    store: &S,
    batch_id: &str,
    payload: &InboundPayload,
    ctx: &RecordContext,
) -> Result<crate::plan::Plan, ProcessError> {
    if let Some(essay_id) = payload.essay_id() {
        let view = store.load_essay(batch_id, essay_id).await?;
        if let Some(plan) = rules::apply_to_essay(&view, payload, ctx)? {
            return Ok(plan);
        }
    }
    let aggregate: BatchAggregate = store.load(batch_id).await?;
    Ok(rules::apply(&aggregate, payload, ctx)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::events::*;
    use crate::testing::{block_on, InMemoryStore};

    #[test]
    fn a_record_is_decoded_once_with_what_scheduling_needs() {
        let registration = registration(event_id(1), "b-1", "t", &["e1"], at_minute(0.0));
        let decoded = DecodedRecord::decode(registration.topic, &registration.value);
        let key = format!("event:{}", event_id(1));
        assert_eq!(decoded.event_key(), Some(key.as_str()));
        assert_eq!(decoded.batch_id(), Some("b-1"));
        assert_eq!(decoded.correlation_id(), Some(event_id(1).to_string()));
        assert!(!decoded.is_completion_report());

        let bos = pipeline_completed(
            event_id(2),
            "b-1",
            "completed_successfully",
            &[],
            1,
            0,
            at_minute(1.0),
        );
        assert!(DecodedRecord::decode(bos.topic, &bos.value).is_completion_report());
    }

    #[test]
    fn a_rejected_record_keeps_what_its_envelope_tells_and_touches_no_batch() {
        let mut slot = slot_assigned(event_id(3), "b-1", "e1", at_minute(0.0)).json();
        slot["data"]["essay_id"] = serde_json::Value::from("");
        let value = serde_json::to_vec(&slot).unwrap();
        let rejected = DecodedRecord::decode(
            crate::contracts::ConsumedTopic::EssaySlotAssigned.name(),
            &value,
        );
        let key = format!("event:{}", event_id(3));
        assert_eq!(rejected.event_key(), Some(key.as_str()));
        assert_eq!(rejected.batch_id(), None);
        assert!(!rejected.is_completion_report());
        let store = InMemoryStore::default();
        let err = block_on(process_decoded(
            &store,
            &rejected,
            at_minute(0.0),
            at_minute(1.0),
        ))
        .unwrap_err();
        assert_eq!(err.kind(), "constraint_violation");

        // No event id: the key hashes topic and bytes, as for an accepted record.
        let junk = DecodedRecord::decode("t", b"not json");
        assert_eq!(
            junk.event_key(),
            Some(ids::event_key(None, "t", b"not json").as_str())
        );
        let numeric = DecodedRecord::decode("t", br#"{"event_id": 7}"#);
        assert_eq!(numeric.event_key(), None);
    }
}
