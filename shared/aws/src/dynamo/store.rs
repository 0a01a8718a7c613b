//! [`DynamoStore`]: the aggregate store over the state and outbox tables.

use super::commit::{commit_writes, layout};
use super::errors::{classify_cancellation, classify_sdk_error, CancellationVerdict};
use super::items::{
    self, batch_pk, decode_aggregate, decode_marker, marker_pk, s, Item, MARKER_SK, PK, SK,
};
use super::outbox::{OutboxItem, EVENT_ID, INDEX_BY_EVENT_ID, ORDERING_KEY, POSITION};
use crate::config::{load_sdk_config, StoreConfig};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use ras_domain::model::BatchAggregate;
use ras_domain::plan::Plan;
use ras_domain::ports::{AggregateStore, CommitOutcome, IdempotencyMarker, StoreError};
use std::time::Duration;
use tracing::{debug, info, warn};

/// `BatchWriteItem` takes at most 25 puts.
const BATCH_WRITE_MAX: usize = 25;
/// Attempts to get unprocessed items of a `BatchWriteItem` written (or unprocessed keys of a
/// `BatchGetItem` read).
const BATCH_WRITE_ATTEMPTS: u32 = 8;

/// The DynamoDB adapter of [`AggregateStore`] and [`ras_domain::ports::BatchReader`]. Cheap
/// to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    config: StoreConfig,
}

impl DynamoStore {
    pub fn new(client: Client, config: StoreConfig) -> Self {
        DynamoStore { client, config }
    }

    /// Client and table names from the environment (see [`crate::config`]; both table names
    /// are required).
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let tables = StoreConfig::from_env()?;
        let sdk = load_sdk_config().await;
        Ok(DynamoStore::new(Client::new(&sdk), tables))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// All items of one partition of the state table, strongly consistent, every page.
    pub(crate) async fn query_partition(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.config.state_table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start);
            query = match sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let page = query
                .send()
                .await
                .map_err(|e| classify_sdk_error("Query", &e))?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The idempotency marker of `event_key`, if recorded.
    pub async fn get_marker(
        &self,
        event_key: &str,
    ) -> Result<Option<IdempotencyMarker>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.config.state_table)
            .key(PK, s(marker_pk(event_key)))
            .key(SK, s(MARKER_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify_sdk_error("GetItem", &e))?;
        Ok(out.item.map(decode_marker).transpose()?)
    }

    /// An outbox item by event id (operations and tests; the relay reads the stream): the key
    /// from the `by_event_id` index, then a consistent read of the item.
    pub async fn get_outbox_item(
        &self,
        event_id: uuid::Uuid,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let found = self
            .client
            .query()
            .table_name(&self.config.outbox_table)
            .index_name(INDEX_BY_EVENT_ID)
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", EVENT_ID)
            .expression_attribute_values(":id", s(event_id.to_string()))
            .limit(1)
            .send()
            .await
            .map_err(|e| classify_sdk_error("Query", &e))?;
        let Some(keys) = found.items.and_then(|items| items.into_iter().next()) else {
            return Ok(None);
        };
        let (Some(ordering_key), Some(position)) = (keys.get(ORDERING_KEY), keys.get(POSITION))
        else {
            return Err(StoreError::Permanent {
                kind: "corrupt_item",
                message: format!("outbox index entry of {event_id} lacks the table key"),
            });
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.config.outbox_table)
            .key(ORDERING_KEY, ordering_key.clone())
            .key(POSITION, position.clone())
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify_sdk_error("GetItem", &e))?;
        Ok(out.item.map(OutboxItem::from_item).transpose()?)
    }

    /// Write CJ chunk items ahead of a transaction (see [`super::commit`]), or the roster
    /// of a root stored before it existed ([`AggregateStore::load`]). Idempotent.
    async fn prewrite(&self, chunks: Vec<Item>) -> Result<(), StoreError> {
        let total = chunks.len();
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(total);
        for item in chunks {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Permanent {
                    kind: "invalid_request",
                    message: e.to_string(),
                })?;
            pending.push(WriteRequest::builder().put_request(put).build());
        }
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(BATCH_WRITE_MAX));
            self.batch_write(std::mem::replace(&mut pending, rest))
                .await?;
        }
        debug!(chunks = total, "pre-wrote CJ chunks");
        Ok(())
    }

    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..BATCH_WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.config.state_table, requests)
                .send()
                .await
                .map_err(|e| classify_sdk_error("BatchWriteItem", &e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.config.state_table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Transient(format!(
            "BatchWriteItem: {} items still unprocessed",
            requests.len()
        )))
    }
}

impl DynamoStore {
    /// Items of the state table by key, strongly consistent, in one `BatchGetItem`. Absent
    /// items are absent. "If DynamoDB returns any unprocessed items, you should retry the batch
    /// operation on those items … we strongly recommend that you use an exponential backoff
    /// algorithm" (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>):
    /// `UnprocessedKeys` are asked for again, with backoff, up to [`BATCH_WRITE_ATTEMPTS`].
    async fn get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let table = &self.config.state_table;
        let mut keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Permanent {
                kind: "invalid_request",
                message: e.to_string(),
            })?;
        let mut found = Vec::new();
        for attempt in 0..BATCH_WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(table, keys)
                .send()
                .await
                .map_err(|e| classify_sdk_error("BatchGetItem", &e))?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default(),
            );
            match out.unprocessed_keys.and_then(|mut u| u.remove(table)) {
                Some(rest) if !rest.keys.is_empty() => keys = rest,
                _ => return Ok(found),
            }
        }
        Err(StoreError::Transient(
            "BatchGetItem: keys still unprocessed".into(),
        ))
    }
}

impl DynamoStore {
    /// A batch's whole partition (a consistent `Query`, every page), decoded; and whether its
    /// root still carries the registration's essay ids inline, without roster items
    /// ([`items::roster_inline`]). Reads only: the query API's path.
    pub(crate) async fn read_batch(
        &self,
        batch_id: &str,
    ) -> Result<(BatchAggregate, bool), StoreError> {
        let items = self.query_partition(&batch_pk(batch_id), None).await?;
        let count = items.len();
        let unmigrated = items::roster_inline(&items);
        let agg = decode_aggregate(batch_id, items)?;
        debug!(
            batch_id,
            items = count,
            version = agg.root.version,
            "loaded batch"
        );
        Ok((agg, unmigrated))
    }
}

impl AggregateStore for DynamoStore {
    /// The root and the essay item, in one consistent `BatchGetItem`: two items whose size
    /// does not depend on the batch (the registration's essay ids are roster items, not read
    /// here). No root: a new aggregate.
    async fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> Result<BatchAggregate, StoreError> {
        let items = self
            .get_items(items::root_and_essay_keys(batch_id, essay_id))
            .await?;
        let view = decode_aggregate(batch_id, items)?;
        debug!(
            batch_id,
            essay_id,
            version = view.root.version,
            "loaded root and essay"
        );
        Ok(view)
    }

    /// The whole partition ([`Self::read_batch`]) for a plan. A root stored before the roster
    /// existed (its essay ids inline) gets its roster items written here, before any plan is made from it: its next commit
    /// writes the root without the ids, which then stay readable from the roster. The chunks
    /// name the registration they belong to, so writing them outside a transaction is safe
    /// (as the CJ chunks' pre-writes, [`super::commit`]); repeating it is harmless.
    async fn load(&self, batch_id: &str) -> Result<BatchAggregate, StoreError> {
        let (agg, unmigrated) = self.read_batch(batch_id).await?;
        if let (true, Some(registration)) = (unmigrated, &agg.root.registration) {
            let roster = items::encode_roster(
                batch_id,
                &registration.provenance.event_key,
                &registration.essay_ids,
            )?;
            info!(
                batch_id,
                chunks = roster.len(),
                "moving the root's essay ids to roster items"
            );
            self.prewrite(roster).await?;
        }
        Ok(agg)
    }

    /// See [`super::commit`] for the transaction layout and the big-plan scheme.
    async fn commit(
        &self,
        marker: &IdempotencyMarker,
        plan: &Plan,
    ) -> Result<CommitOutcome, StoreError> {
        let layout = layout(commit_writes(marker, plan)?)?;
        let prewritten = layout.prewrite.len();
        if prewritten > 0 {
            info!(batch_id = %marker.batch_id, chunks = prewritten, "plan too big for one transaction: pre-writing CJ chunks");
            self.prewrite(layout.prewrite).await?;
        }
        let roles: Vec<_> = layout.transaction.iter().map(|w| w.role).collect();
        let actions = layout
            .transaction
            .into_iter()
            .map(|w| w.into_transact_item(&self.config))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        let err = match result {
            Ok(_) => {
                debug!(batch_id = %marker.batch_id, event_key = %marker.event_key, actions = roles.len(), prewritten, "committed");
                return Ok(CommitOutcome::Committed);
            }
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        else {
            return Err(classify_sdk_error("TransactWriteItems", &err));
        };
        let outcome = match classify_cancellation(&roles, cancelled.cancellation_reasons()) {
            CancellationVerdict::MarkerExists { existing_hash } => {
                let existing_hash = match existing_hash {
                    Some(hash) => hash,
                    None => match self.get_marker(&marker.event_key).await? {
                        Some(existing) => existing.payload_hash,
                        None => {
                            return Err(StoreError::Transient(format!(
                                "marker `{}` reported as existing but not found",
                                marker.event_key
                            )))
                        }
                    },
                };
                if existing_hash == marker.payload_hash {
                    CommitOutcome::Duplicate
                } else {
                    warn!(event_key = %marker.event_key, %existing_hash, payload_hash = %marker.payload_hash, "idempotency key reused with another payload");
                    CommitOutcome::PayloadConflict { existing_hash }
                }
            }
            CancellationVerdict::VersionConflict => CommitOutcome::VersionConflict,
            CancellationVerdict::Failed(error) => return Err(error),
        };
        debug!(batch_id = %marker.batch_id, event_key = %marker.event_key, ?outcome, "commit cancelled");
        Ok(outcome)
    }
}

/// The batch id of a root item (its `batch_id`, else from `pk`).
pub(crate) fn batch_id_of(item: &Item) -> Option<String> {
    items::get_s(item, items::BATCH_ID)
        .map(str::to_string)
        .or_else(|| {
            items::get_s(item, PK)
                .and_then(|pk| pk.strip_prefix("BATCH#"))
                .map(str::to_string)
        })
}
