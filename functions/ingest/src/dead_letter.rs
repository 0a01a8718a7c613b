//! Dead-lettering a record that failed for good: its [`DeadLetter`] (the value exactly as
//! Lambda delivered it, why it failed) and the send, retried like a processing attempt
//! ([`crate::retry`]). Logged within the record's span (`crate::record`).

use crate::handler::HandlerSettings;
use crate::kafka::InboundRecord;
use crate::report::Disposition;
use crate::retry::{retry, warn_on_retry};
use ras_domain::contracts::Timestamp;
use ras_domain::ports::{DeadLetter, DeadLetterSink, PublishError};
use std::time::Instant;
use tracing::{error, warn};

/// Why a record is dead-lettered.
pub struct Reason {
    /// Stable kind: `invalid_json`, `schema_violation`, `payload_conflict`, …
    pub kind: &'static str,
    pub message: String,
    /// The record's idempotency key, when it is known.
    pub event_key: Option<String>,
}

/// The dead letter of `record`.
pub fn letter(record: &InboundRecord, reason: Reason, now: Timestamp) -> DeadLetter {
    DeadLetter {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key_base64: record.key_base64.clone(),
        value_base64: record.value_base64.clone().unwrap_or_default(),
        error_kind: reason.kind.to_string(),
        error_message: reason.message,
        event_key: reason.event_key,
        dead_lettered_at: now,
    }
}

/// Send a dead letter, retrying transient failures. Returns the record's disposition —
/// dead-lettered, or failed when the sink would not take it — and the send attempts.
pub async fn send<D: DeadLetterSink>(
    sink: &D,
    settings: &HandlerSettings,
    letter: DeadLetter,
    deadline: Option<Instant>,
) -> (Disposition, u32) {
    let sent = retry(
        &settings.retry,
        settings.limits(deadline),
        || sink.send(&letter),
        PublishError::is_retryable,
        warn_on_retry("dead-letter send failed, retrying"),
    )
    .await;
    let disposition = match sent.result {
        Ok(()) => {
            warn!(
                error_kind = %letter.error_kind, error = %letter.error_message,
                "record dead-lettered"
            );
            Disposition::DeadLettered {
                error_kind: letter.error_kind,
            }
        }
        Err(err) => {
            error!(
                error_kind = %letter.error_kind, error = %err,
                "could not dead-letter the record: reporting it as a batch item failure"
            );
            Disposition::Failed {
                reason: format!("dead-letter send failed ({}): {err}", letter.error_kind),
            }
        }
    };
    (disposition, sent.attempts)
}
