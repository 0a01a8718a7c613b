//! Re-publish outbox items, by event id or by a window of `created_at`, with the exact bytes,
//! group id, deduplication id and attributes the relay sends.
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
use ras_domain::ports::MessagePublisher;
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::dispatch::{dispatch, Delivery, Outbound};
use relay::stream::outbound_from_item;
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
    let sent = dispatch(publisher, &breaker, &SystemClock, &mut outbound, None).await;
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
            Delivery::Held(reason) => {
                report.failed += 1;
                ("held", Some(format!("{reason:?}")))
            }
        };
        report.items.push(result(item, status, error));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
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
