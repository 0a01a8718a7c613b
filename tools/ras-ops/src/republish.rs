//! Re-publish outbox items, by event id or by a window of `created_at`, with the exact bytes,
//! group id, deduplication id and attributes the relay sends.
//!
//! [`republish_parked`] does the same for the messages the relay parked (`ras-relay-parked`):
//! it reads the parking queue, re-publishes the outbox items it names, and deletes a parking
//! record only once its message is on its FIFO queue.
//!
//! Idempotent: within SQS's 5-minute deduplication window a re-sent event id is dropped by the
//! FIFO queue; after it, consumers deduplicate by `event_id` (the envelope's id, stable since
//! the outbox row was written). Sending goes through the relay's own dispatcher, so per-key
//! order, batching and stop-at-first-failure are the relay's.

use crate::OpsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ras_aws::dynamo::items::sortable_time;
use ras_aws::dynamo::outbox::INDEX_BY_CREATED_DAY;
use ras_aws::dynamo::{DynamoStore, OutboxItem};
use ras_domain::contracts::Timestamp;
use ras_domain::ports::{MessagePublisher, ParkedMessage};
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::dispatch::{dispatch, Delivery, Outbound};
use relay::stream::outbound_from_item;
use relay::NoParking;
use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Longest window one command may cover (a guard against a typo re-publishing months).
pub const MAX_WINDOW_DAYS: i64 = 31;

/// What to re-publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    EventIds(Vec<Uuid>),
    /// Items with `from <= created_at <= to` (both inclusive).
    Window {
        from: Timestamp,
        to: Timestamp,
    },
}

/// The outcome of one event id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemResult {
    pub event_id: String,
    pub topic: String,
    pub ordering_key: String,
    pub created_at: String,
    /// `published`, `would_publish` (dry run), `failed`, `held` (an earlier message of its
    /// key failed), `unroutable`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepublishReport {
    pub dry_run: bool,
    pub selected: usize,
    pub published: usize,
    pub failed: usize,
    /// Event ids asked for that are not in the outbox (expired or never written).
    pub not_found: Vec<String>,
    pub sqs_requests: u32,
    pub items: Vec<ItemResult>,
}

impl RepublishReport {
    /// Everything selected went out (or would, in a dry run) and every id was found.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.not_found.is_empty()
    }
}

/// The outbox items of a selection, in send order (`created_at`, then `sequence`), and the
/// event ids that were not found.
pub async fn select(
    store: &DynamoStore,
    selection: &Selection,
) -> Result<(Vec<OutboxItem>, Vec<String>), OpsError> {
    let mut items = Vec::new();
    let mut not_found = Vec::new();
    match selection {
        Selection::EventIds(ids) => {
            let unique: BTreeSet<&Uuid> = ids.iter().collect();
            for id in unique {
                match store.get_outbox_item(*id).await? {
                    Some(item) => items.push(item),
                    None => not_found.push(id.to_string()),
                }
            }
        }
        Selection::Window { from, to } => {
            for day in window_days(*from, *to)? {
                items.extend(query_day(store, &day, *from, *to).await?);
            }
        }
    }
    items.sort_by(|a, b| {
        (&a.created_at, a.sequence, a.event_id).cmp(&(&b.created_at, b.sequence, b.event_id))
    });
    Ok((items, not_found))
}

/// The `created_day` partitions a window touches.
pub fn window_days(from: Timestamp, to: Timestamp) -> Result<Vec<String>, OpsError> {
    if to < from {
        return Err(OpsError::Usage(format!(
            "--to ({}) is before --from ({})",
            to.to_wire(),
            from.to_wire()
        )));
    }
    let first = from.as_datetime().date_naive();
    let last = to.as_datetime().date_naive();
    let span = (last - first).num_days() + 1;
    if span > MAX_WINDOW_DAYS {
        return Err(OpsError::Usage(format!(
            "the window covers {span} days; at most {MAX_WINDOW_DAYS} per command"
        )));
    }
    Ok(first
        .iter_days()
        .take(span as usize)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect())
}

async fn query_day(
    store: &DynamoStore,
    day: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<OutboxItem>, OpsError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .query()
            .table_name(&store.config().outbox_table)
            .index_name(INDEX_BY_CREATED_DAY)
            .key_condition_expression("created_day = :day AND created_at BETWEEN :from AND :to")
            .expression_attribute_values(":day", AttributeValue::S(day.to_string()))
            .expression_attribute_values(":from", AttributeValue::S(sortable_time(from)))
            .expression_attribute_values(":to", AttributeValue::S(sortable_time(to)))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| OpsError::Aws(format!("Query {INDEX_BY_CREATED_DAY} {day}: {e}")))?;
        for item in page.items.unwrap_or_default() {
            items.push(
                OutboxItem::from_item(item)
                    .map_err(|e| OpsError::Aws(format!("outbox item of {day}: {e}")))?,
            );
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// Send `items` (in send order) with the relay's dispatcher. `dry_run`: report only.
pub async fn republish<P: MessagePublisher>(
    publisher: &P,
    items: &[OutboxItem],
    not_found: Vec<String>,
    dry_run: bool,
) -> RepublishReport {
    let mut report = RepublishReport {
        dry_run,
        selected: items.len(),
        not_found,
        ..RepublishReport::default()
    };
    let result = |item: &OutboxItem, status: &'static str, error: Option<String>| ItemResult {
        event_id: item.event_id.to_string(),
        topic: item.topic.clone(),
        ordering_key: item.ordering_key.clone(),
        created_at: item.created_at.clone(),
        status,
        error,
    };
    let mut outbound: Vec<Outbound> = Vec::new();
    let mut routed: Vec<&OutboxItem> = Vec::new();
    for item in items {
        match outbound_from_item(item.clone()) {
            Ok(out) => {
                outbound.push(out);
                routed.push(item);
            }
            Err(reason) => {
                report.failed += 1;
                report.items.push(result(item, "unroutable", Some(reason)));
            }
        }
    }
    if dry_run {
        report
            .items
            .extend(routed.iter().map(|i| result(i, "would_publish", None)));
        return report;
    }
    // A breaker of its own: a run fails fast when SQS is down instead of trying every batch.
    let breaker = CircuitBreaker::default();
    // No parking: a message SQS still refuses is reported `failed` (and, when it came from the
    // parking queue, stays parked).
    let sent = dispatch(
        publisher,
        None::<&NoParking>,
        &breaker,
        &SystemClock,
        &mut outbound,
        None,
    )
    .await;
    report.sqs_requests = sent.requests;
    for (item, delivery) in routed.iter().zip(&sent.deliveries) {
        let (status, error) = match delivery {
            Delivery::Sent => {
                report.published += 1;
                ("published", None)
            }
            Delivery::Failed { code, message, .. } => {
                report.failed += 1;
                ("failed", Some(format!("{code}: {message}")))
            }
            Delivery::Parked { code, reason } => {
                report.failed += 1;
                ("failed", Some(format!("{code}: {reason}")))
            }
            Delivery::Held(reason) => {
                report.failed += 1;
                ("held", Some(format!("{reason:?}")))
            }
        };
        report.items.push(result(item, status, error));
    }
    report
}

/// Options of [`republish_parked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedOptions {
    /// Handle at most this many parking records.
    pub max: usize,
    /// Report only: send nothing, delete nothing.
    pub dry_run: bool,
    /// How long received records stay invisible to others while the run works on them.
    pub visibility_timeout_seconds: i32,
    /// Long-poll wait of each receive (0–20 s); the run ends at the first empty receive.
    pub wait_seconds: i32,
}

impl Default for ParkedOptions {
    fn default() -> Self {
        ParkedOptions {
            max: 100,
            dry_run: false,
            visibility_timeout_seconds: 300,
            wait_seconds: 1,
        }
    }
}

/// One parking record and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParkedResult {
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Why the relay parked it (`code: reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked_for: Option<String>,
    /// `republished` (record deleted), `kept` (its message was not published: see the
    /// item's status), `invalid` (not a parking record: kept).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ParkedReport {
    pub received: usize,
    pub deleted: usize,
    pub kept: usize,
    pub invalid: usize,
    pub records: Vec<ParkedResult>,
    /// The re-publishing of the outbox items the records name.
    pub republish: RepublishReport,
}

impl ParkedReport {
    /// Every record was handled (in a dry run: everything would be sent).
    pub fn is_complete(&self) -> bool {
        self.republish.is_complete()
            && self.invalid == 0
            && (self.republish.dry_run || self.kept == 0)
    }
}

/// A parking record's body: the [`ParkedMessage`] and its event id.
pub fn parse_parked(body: &str) -> Result<(ParkedMessage, Uuid), String> {
    let parked: ParkedMessage =
        serde_json::from_str(body).map_err(|e| format!("not a parking record: {e}"))?;
    let id = Uuid::parse_str(&parked.event_id)
        .map_err(|e| format!("event id `{}` is not a UUID: {e}", parked.event_id))?;
    Ok((parked, id))
}

/// Read up to `options.max` records of the parking queue at `parked_url`, re-publish the
/// outbox items they name (as [`republish`] does, by event id), delete each record whose
/// message was published; the others stay on the queue (visible again at the end of the run).
pub async fn republish_parked<P: MessagePublisher>(
    sqs: &aws_sdk_sqs::Client,
    parked_url: &str,
    store: &DynamoStore,
    publisher: &P,
    options: &ParkedOptions,
) -> Result<ParkedReport, OpsError> {
    struct Received {
        message_id: String,
        receipt: String,
        parsed: Result<(ParkedMessage, Uuid), String>,
    }
    let mut received: Vec<Received> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut returned: Vec<String> = Vec::new();
    'receive: while received.len() < options.max {
        let want = (options.max - received.len()).min(10) as i32;
        let out = sqs
            .receive_message()
            .queue_url(parked_url)
            .max_number_of_messages(want)
            .visibility_timeout(options.visibility_timeout_seconds)
            .wait_time_seconds(options.wait_seconds)
            .send()
            .await
            .map_err(|e| OpsError::Aws(format!("ReceiveMessage {parked_url}: {e}")))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let mut wrapped = false;
        for message in messages {
            let message_id = message.message_id().unwrap_or_default().to_string();
            let Some(receipt) = message.receipt_handle().map(str::to_string) else {
                continue;
            };
            if !seen.insert(message_id.clone()) {
                // Came back after its visibility timeout: the whole queue was seen.
                returned.push(receipt);
                wrapped = true;
                continue;
            }
            received.push(Received {
                message_id,
                receipt,
                parsed: parse_parked(message.body().unwrap_or_default()),
            });
        }
        if wrapped {
            break 'receive;
        }
    }

    let ids: Vec<Uuid> = received
        .iter()
        .filter_map(|r| r.parsed.as_ref().ok().map(|(_, id)| *id))
        .collect();
    let (items, not_found) = select(store, &Selection::EventIds(ids)).await?;
    let report = republish(publisher, &items, not_found, options.dry_run).await;
    let published: BTreeSet<&str> = report
        .items
        .iter()
        .filter(|i| i.status == "published")
        .map(|i| i.event_id.as_str())
        .collect();

    let mut out = ParkedReport {
        received: received.len(),
        ..ParkedReport::default()
    };
    let mut kept = returned;
    for r in &received {
        let mut result = ParkedResult {
            message_id: r.message_id.clone(),
            event_id: None,
            parked_for: None,
            status: "kept",
            error: None,
            deleted: false,
        };
        match &r.parsed {
            Err(e) => {
                result.status = "invalid";
                result.error = Some(e.clone());
                out.invalid += 1;
            }
            Ok((parked, id)) => {
                let id = id.to_string();
                result.parked_for = Some(format!("{}: {}", parked.code, parked.reason));
                if published.contains(id.as_str()) {
                    sqs.delete_message()
                        .queue_url(parked_url)
                        .receipt_handle(&r.receipt)
                        .send()
                        .await
                        .map_err(|e| OpsError::Aws(format!("DeleteMessage {parked_url}: {e}")))?;
                    result.status = "republished";
                    result.deleted = true;
                    out.deleted += 1;
                } else {
                    out.kept += 1;
                    let item = report.items.iter().find(|i| i.event_id == id);
                    result.error = match item {
                        Some(i) => i.error.clone().or_else(|| Some(i.status.to_string())),
                        None if report.not_found.contains(&id) => {
                            Some("not in the outbox (expired after its 30-day TTL?)".into())
                        }
                        None => None,
                    };
                }
                result.event_id = Some(id);
            }
        }
        if !result.deleted {
            kept.push(r.receipt.clone());
        }
        out.records.push(result);
    }
    // What stays on the queue is visible again right away, for the next run or a look.
    for receipt in kept {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(parked_url)
            .receipt_handle(&receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(error = %e, "could not make a kept record visible again; it reappears after its visibility timeout");
        }
    }
    out.republish = report;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn parking_records_parse() {
        let body = r#"{"event_id": "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41", "ordering_key": "l\u00e4rare", "position": "p", "destination": "events", "topic": "t", "batch_id": "b", "created_at": "c", "code": "InvalidMessage", "reason": "too large", "body_bytes": 5, "parked_at": "2025-11-27T10:00:00Z"}"#;
        let (parked, id) = parse_parked(body).unwrap();
        assert_eq!(parked.ordering_key, "lärare");
        assert_eq!(id.to_string(), "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41");
        assert!(parse_parked("{}")
            .unwrap_err()
            .contains("not a parking record"));
        let bad_id = body.replace("6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41", "x");
        assert!(parse_parked(&bad_id).unwrap_err().contains("not a UUID"));
    }

    #[test]
    fn window_days_cover_both_ends() {
        assert_eq!(
            window_days(ts("2025-11-27T23:00:00Z"), ts("2025-11-29T00:10:00Z")).unwrap(),
            vec!["2025-11-27", "2025-11-28", "2025-11-29"]
        );
        assert_eq!(
            window_days(ts("2025-11-27T10:00:00Z"), ts("2025-11-27T10:00:00Z")).unwrap(),
            vec!["2025-11-27"]
        );
        assert!(window_days(ts("2025-11-28T00:00:00Z"), ts("2025-11-27T00:00:00Z")).is_err());
        assert!(window_days(ts("2025-01-01T00:00:00Z"), ts("2025-03-01T00:00:00Z")).is_err());
    }
}
