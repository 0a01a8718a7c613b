//! Re-drive the ingest dead-letter queue through the ingest path.
//!
//! Each message of the queue is a [`DeadLetter`] (JSON): the consumed record's topic, its
//! raw value (base64), where it came from and why it failed. Re-driving decodes the value and
//! runs it through `ras_domain::service::process_record` on the DynamoDB store — exactly what
//! the ingest function does — then:
//!
//! * applied, or already applied (duplicate marker) → the message is deleted;
//! * still failing (permanently or transiently), or not a readable dead letter → the message is
//!   left on the queue (made visible again at the end of the run) and reported.
//!
//! Idempotent: the record's idempotency marker commits with its state change, so a record
//! re-driven twice (or re-driven after it was also re-consumed from Kafka) applies once; the
//! second time it is a duplicate and its message is deleted.

use crate::OpsError;
use base64::Engine;
use ras_domain::contracts::{decode_record, Timestamp};
use ras_domain::ports::{AggregateStore, DeadLetter};
use ras_domain::service::{process_record, ConsumedRecord, RecordOutcome};
use serde::Serialize;
use std::collections::HashSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedriveOptions {
    /// Stop after this many messages.
    pub max: usize,
    /// Decode and report; change nothing (no state written, no message deleted).
    pub dry_run: bool,
    /// How long received messages stay invisible to others while the run works on them.
    pub visibility_timeout_seconds: i32,
    /// Long-poll wait of each receive (0–20 s); the run ends at the first empty receive.
    pub wait_seconds: i32,
}

impl Default for RedriveOptions {
    fn default() -> Self {
        RedriveOptions {
            max: 100,
            dry_run: false,
            visibility_timeout_seconds: 300,
            wait_seconds: 1,
        }
    }
}

/// The outcome of one dead-letter message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LetterResult {
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    /// `applied`, `duplicate` (both: message deleted), `would_apply` / `would_fail` (dry
    /// run), `failed` (still failing: message kept), `invalid` (not a re-drivable dead letter:
    /// message kept).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    pub dry_run: bool,
    pub received: usize,
    pub applied: usize,
    pub duplicates: usize,
    pub failed: usize,
    pub invalid: usize,
    pub deleted: usize,
    pub letters: Vec<LetterResult>,
}

impl RedriveReport {
    /// Nothing was left behind.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.invalid == 0
    }
}

/// What a dead-letter body says, checked for re-drivability.
#[derive(Debug)]
pub struct ParsedLetter {
    pub letter: DeadLetter,
    pub value: Vec<u8>,
}

/// Parse a dead-letter message body. A value truncated to fit the queue cannot be re-driven
/// from the queue: the full record is on Kafka at the named topic/partition/offset.
pub fn parse_letter(body: &str) -> Result<ParsedLetter, String> {
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let letter: DeadLetter =
        serde_json::from_value(doc.clone()).map_err(|e| format!("not a dead letter: {e}"))?;
    if doc.get("value_truncated").and_then(|v| v.as_bool()) == Some(true) {
        return Err(format!(
            "the value was truncated to fit the queue; re-read it from Kafka: topic {} partition {} offset {}",
            letter.topic, letter.partition, letter.offset
        ));
    }
    let value = base64::engine::general_purpose::STANDARD
        .decode(letter.value_base64.as_bytes())
        .map_err(|e| format!("value_base64 is not base64: {e}"))?;
    Ok(ParsedLetter { letter, value })
}

/// Re-drive up to `options.max` messages of the queue at `dlq_url` into `store`.
pub async fn redrive<S: AggregateStore>(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    store: &S,
    options: &RedriveOptions,
) -> Result<RedriveReport, OpsError> {
    let mut report = RedriveReport {
        dry_run: options.dry_run,
        ..RedriveReport::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept: Vec<String> = Vec::new();
    let mut wrapped = false;
    while !wrapped && report.received < options.max {
        let want = (options.max - report.received).min(10) as i32;
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(want)
            .visibility_timeout(options.visibility_timeout_seconds)
            .wait_time_seconds(options.wait_seconds)
            .send()
            .await
            .map_err(|e| OpsError::Aws(format!("ReceiveMessage {dlq_url}: {e}")))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let message_id = message.message_id().unwrap_or_default().to_string();
            let Some(receipt) = message.receipt_handle().map(str::to_string) else {
                continue;
            };
            if !seen.insert(message_id.clone()) {
                // Came back after its visibility timeout: this run has seen the whole queue.
                kept.push(receipt);
                wrapped = true;
                continue;
            }
            report.received += 1;
            let mut result = handle_letter(
                store,
                &message_id,
                message.body().unwrap_or_default(),
                options,
            )
            .await;
            match result.status {
                "applied" => report.applied += 1,
                "duplicate" => report.duplicates += 1,
                "invalid" => report.invalid += 1,
                "failed" | "would_fail" => report.failed += 1,
                _ => {}
            }
            if matches!(result.status, "applied" | "duplicate") {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(&receipt)
                    .send()
                    .await
                    .map_err(|e| OpsError::Aws(format!("DeleteMessage {dlq_url}: {e}")))?;
                result.deleted = true;
                report.deleted += 1;
            } else {
                kept.push(receipt);
            }
            report.letters.push(result);
        }
    }
    // What stays on the queue is visible again right away, for the next run or a look.
    for receipt in kept {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(&receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(error = %e, "could not make a kept message visible again; it reappears after its visibility timeout");
        }
    }
    Ok(report)
}

async fn handle_letter<S: AggregateStore>(
    store: &S,
    message_id: &str,
    body: &str,
    options: &RedriveOptions,
) -> LetterResult {
    let mut result = LetterResult {
        message_id: message_id.to_string(),
        topic: None,
        event_key: None,
        status: "invalid",
        error_kind: None,
        error: None,
        deleted: false,
    };
    let parsed = match parse_letter(body) {
        Ok(p) => p,
        Err(reason) => {
            result.error = Some(reason);
            return result;
        }
    };
    let letter = &parsed.letter;
    result.topic = Some(letter.topic.clone());
    result.event_key = letter.event_key.clone();
    if options.dry_run {
        match decode_record(&letter.topic, &parsed.value) {
            Ok(_) => result.status = "would_apply",
            Err(e) => {
                result.status = "would_fail";
                result.error_kind = Some(e.kind().to_string());
                result.error = Some(e.to_string());
            }
        }
        return result;
    }
    let record = ConsumedRecord {
        topic: &letter.topic,
        value: &parsed.value,
        record_time: letter.timestamp.unwrap_or(letter.dead_lettered_at),
    };
    match process_record(store, record, Timestamp::now()).await {
        Ok(RecordOutcome::Applied { event_key, .. }) => {
            result.status = "applied";
            result.event_key = Some(event_key);
        }
        Ok(RecordOutcome::Duplicate { event_key, .. }) => {
            result.status = "duplicate";
            result.event_key = Some(event_key);
        }
        Err(e) => {
            result.status = "failed";
            result.error_kind = Some(e.kind().to_string());
            result.error = Some(format!(
                "{e} ({})",
                if e.is_retryable() {
                    "transient: try again later"
                } else {
                    "permanent"
                }
            ));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(extra: serde_json::Value) -> String {
        let mut doc = json!({
            "topic": "huleedu.batch.essays.registered.v1", "partition": 0, "offset": 7,
            "timestamp": "2025-11-27T10:00:00Z", "key_base64": null,
            "value_base64": base64::engine::general_purpose::STANDARD.encode(b"{\"a\": 1}"),
            "error_kind": "store_unavailable", "error_message": "x", "event_key": null,
            "dead_lettered_at": "2025-11-27T10:00:01Z"
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        doc.to_string()
    }

    #[test]
    fn parses_a_dead_letter() {
        let p = parse_letter(&body(json!({}))).unwrap();
        assert_eq!(p.value, b"{\"a\": 1}");
        assert_eq!(p.letter.offset, 7);
    }

    #[test]
    fn refuses_what_cannot_be_redriven() {
        assert!(parse_letter("nope").unwrap_err().contains("not JSON"));
        assert!(parse_letter("{}")
            .unwrap_err()
            .contains("not a dead letter"));
        let truncated = body(json!({"value_truncated": true}));
        assert!(parse_letter(&truncated).unwrap_err().contains("offset 7"));
        let bad = body(json!({"value_base64": "***"}));
        assert!(parse_letter(&bad).unwrap_err().contains("base64"));
    }
}
