//! The query side ([`BatchReader`]) over the state table and its indexes.

use super::errors::classify_sdk_error;
use super::items::{
    self, assemble_cj_job, batch_pk, cj_header_sk, decode_state_item, s, user_key, user_status_key,
    StateItem, INDEX_BY_CJ_JOB, INDEX_BY_USER, INDEX_BY_USER_STATUS,
};
use super::store::{batch_id_of, DynamoStore};
use aws_sdk_dynamodb::types::Select;
use futures::{StreamExt, TryStreamExt};
use ras_domain::contracts::BatchStatus;
use ras_domain::contracts::Timestamp;
use ras_domain::model::{BatchAggregate, CjJobRecord};
use ras_domain::ports::{AggregateStore, AwaitingFactsIndex, BatchPage, BatchReader, StoreError};
use tracing::{debug, warn};

/// Aggregates of one page loaded at the same time.
const LOAD_CONCURRENCY: usize = 8;
/// Largest index page asked for while skipping to `offset`.
const MAX_PAGE: usize = 1_000;

/// One of the user indexes, with its partition key.
struct UserIndex {
    name: &'static str,
    key_attribute: &'static str,
    key: String,
}

impl UserIndex {
    fn new(user_id: &str, status: Option<BatchStatus>) -> Self {
        match status {
            None => UserIndex {
                name: INDEX_BY_USER,
                key_attribute: items::GSI1PK,
                key: user_key(user_id),
            },
            Some(status) => UserIndex {
                name: INDEX_BY_USER_STATUS,
                key_attribute: items::GSI2PK,
                key: user_status_key(user_id, status.as_str()),
            },
        }
    }
}

impl DynamoStore {
    fn user_query(
        &self,
        index: &UserIndex,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client()
            .query()
            .table_name(&self.config().state_table)
            .index_name(index.name)
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", index.key_attribute)
            .expression_attribute_values(":k", s(&index.key))
    }

    /// Batch ids `offset .. offset + limit` of the index, newest first.
    async fn user_batch_ids(
        &self,
        index: &UserIndex,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::with_capacity(limit);
        if limit == 0 {
            return Ok(ids);
        }
        let mut seen = 0usize;
        let mut start = None;
        loop {
            let wanted = (offset + limit - seen).clamp(1, MAX_PAGE);
            let page = self
                .user_query(index)
                .scan_index_forward(false)
                .projection_expression("#pk, #b")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_names("#b", items::BATCH_ID)
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify_sdk_error("Query", &e))?;
            for item in page.items.unwrap_or_default() {
                if seen >= offset {
                    let id = batch_id_of(&item).ok_or_else(|| StoreError::Permanent {
                        kind: "corrupt_item",
                        message: format!("index {} returned an item without batch id", index.name),
                    })?;
                    ids.push(id);
                }
                seen += 1;
                if ids.len() == limit {
                    return Ok(ids);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }

    /// Number of entries of the index for the user (`Select=COUNT`, every page).
    async fn user_batch_count(&self, index: &UserIndex) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let page = self
                .user_query(index)
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify_sdk_error("Query", &e))?;
            total += u64::try_from(page.count).unwrap_or(0);
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }
}

impl BatchReader for DynamoStore {
    async fn get_batch(&self, batch_id: &str) -> Result<Option<BatchAggregate>, StoreError> {
        let agg = self.load(batch_id).await?;
        Ok(agg.is_registered().then_some(agg))
    }

    async fn list_user_batches(
        &self,
        user_id: &str,
        status: Option<BatchStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<BatchPage, StoreError> {
        let index = UserIndex::new(user_id, status);
        let (ids, total) = futures::try_join!(
            self.user_batch_ids(&index, limit as usize, offset as usize),
            self.user_batch_count(&index)
        )?;
        let batches: Vec<BatchAggregate> = futures::stream::iter(ids)
            .map(|id| async move { self.load(&id).await })
            .buffered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        debug!(
            user_id,
            ?status,
            limit,
            offset,
            returned = batches.len(),
            total,
            "listed user batches"
        );
        Ok(BatchPage { batches, total })
    }

    /// The `by_cj_job` index finds the batch of the job (header items only); header and chunks
    /// are then read from the base table, strongly consistent, so they always match.
    async fn get_cj_job(&self, job_id: &str) -> Result<Option<CjJobRecord>, StoreError> {
        let header_sk = cj_header_sk(job_id);
        let out = self
            .client()
            .query()
            .table_name(&self.config().state_table)
            .index_name(INDEX_BY_CJ_JOB)
            .key_condition_expression("#j = :j AND #sk = :sk")
            .expression_attribute_names("#j", items::CJ_JOB_ID)
            .expression_attribute_names("#sk", items::SK)
            .expression_attribute_values(":j", s(job_id))
            .expression_attribute_values(":sk", s(&header_sk))
            .projection_expression("#pk, #b")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_names("#b", items::BATCH_ID)
            .send()
            .await
            .map_err(|e| classify_sdk_error("Query", &e))?;
        let mut batch_ids: Vec<String> = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(batch_id_of)
            .collect();
        batch_ids.sort();
        batch_ids.dedup();
        if batch_ids.len() > 1 {
            warn!(
                job_id,
                ?batch_ids,
                "CJ job id found in several batches; returning the latest result"
            );
        }
        let mut found: Option<CjJobRecord> = None;
        for batch_id in batch_ids {
            // `CJ#{job}` also prefixes the keys of jobs like `{job}0`: filter by job id.
            let items = self
                .query_partition(&batch_pk(&batch_id), Some(&header_sk))
                .await?;
            let mut header = None;
            let mut chunks = Vec::new();
            for item in items {
                match decode_state_item(item)? {
                    StateItem::CjHeader(h) if h.record.job_id == job_id => header = Some(h),
                    StateItem::CjChunk(c) if c.job_id == job_id => chunks.push(c),
                    _ => {}
                }
            }
            let Some(header) = header else { continue };
            let job = assemble_cj_job(header, chunks)?;
            if found.as_ref().is_none_or(|f| f.provenance < job.provenance) {
                found = Some(job);
            }
        }
        Ok(found)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .describe_table()
            .table_name(&self.config().state_table)
            .send()
            .await
            .map_err(|e| classify_sdk_error("DescribeTable", &e))?;
        Ok(())
    }
}

impl AwaitingFactsIndex for DynamoStore {
    /// One `Query` of the `by_facts_wait` index (keys only), oldest wait first, paged until
    /// `limit` ids or the end of the range.
    async fn awaiting_since(
        &self,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::with_capacity(limit.min(MAX_PAGE));
        let mut start = None;
        while ids.len() < limit {
            let wanted = (limit - ids.len()).clamp(1, MAX_PAGE);
            let page = self
                .client()
                .query()
                .table_name(&self.config().state_table)
                .index_name(items::INDEX_BY_FACTS_WAIT)
                .key_condition_expression("#k = :k AND #s <= :cutoff")
                .expression_attribute_names("#k", items::GSI3PK)
                .expression_attribute_names("#s", items::GSI3SK)
                .expression_attribute_values(":k", s(items::FACTS_WAIT_KEY))
                .expression_attribute_values(":cutoff", s(items::facts_wait_bound(cutoff)))
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify_sdk_error("Query by_facts_wait", &e))?;
            for item in page.items() {
                match batch_id_of(item) {
                    Some(id) => ids.push(id),
                    None => warn!("facts-wait index entry is not a batch root"),
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        ids.truncate(limit);
        debug!(count = ids.len(), "batches awaiting facts past the cutoff");
        Ok(ids)
    }
}
