//! The query side ([`BatchReader`]) over the state table and its indexes.

use super::errors::classify_sdk_error;
use super::items::{
    self, assemble_cj_job, batch_pk, cj_header_sk, decode_state_item, s, user_key, user_status_key,
    Item, StateItem, INDEX_BY_CJ_JOB, INDEX_BY_USER, INDEX_BY_USER_STATUS,
};
use super::store::{batch_id_of, DynamoStore};
use futures::{StreamExt, TryStreamExt};
use ras_domain::contracts::BatchStatus;
use ras_domain::contracts::Timestamp;
use ras_domain::model::{BatchAggregate, CjJobRecord};
use ras_domain::ports::{AwaitingFactsIndex, BatchPage, BatchReader, StoreError};
use tracing::{debug, warn};

/// Aggregates of one page loaded at the same time.
const LOAD_CONCURRENCY: usize = 8;
/// Largest page asked for while reading the facts-wait index.
const MAX_PAGE: usize = 1_000;
/// What a `Query` of the keys-only user and CJ job indexes asks for: the table's partition key
/// (`BATCH#{id}`, [`batch_id_of`]). A `Query` of a global secondary index can only request
/// attributes the index projects (DynamoDB answers a `ValidationException` otherwise, see
/// `docs/data-model.md`, "Indexes"); the test below holds this list to `capacity::STATE_TABLE`.
const INDEX_READ_ATTRIBUTES: [&str; 1] = [items::PK];

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

/// The batch ids `offset .. offset + limit` of a user's index entries (newest first) and the
/// number of entries.
#[derive(Debug, Default, PartialEq)]
struct UserPage {
    ids: Vec<String>,
    total: u64,
}

impl UserPage {
    /// Takes in the entries of one `Query` page (`total` counts the entries before it).
    fn take(
        &mut self,
        index: &str,
        entries: &[Item],
        limit: usize,
        offset: usize,
    ) -> Result<(), StoreError> {
        for entry in entries {
            let position = usize::try_from(self.total).unwrap_or(usize::MAX);
            if position >= offset && self.ids.len() < limit {
                let id = batch_id_of(entry).ok_or_else(|| StoreError::Permanent {
                    kind: "corrupt_item",
                    message: format!("index {index} returned an entry without batch id"),
                })?;
                self.ids.push(id);
            }
            self.total += 1;
        }
        Ok(())
    }
}

impl DynamoStore {
    /// One pass over the user's entries of the index, newest first, in pages of up to 1 MB
    /// (keys-only entries of ~150 B: ~7,000 per request): the count and the requested page
    /// together. Its cost is that of reading the user's keys-only entries once — at any
    /// `offset` and `limit` (docs/benchmarks.md, "Issue 15 — the user list at 1,000 batches").
    async fn user_page(
        &self,
        index: &UserIndex,
        limit: usize,
        offset: usize,
    ) -> Result<UserPage, StoreError> {
        let mut page = UserPage::default();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(&self.config().state_table)
                .index_name(index.name)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", index.key_attribute)
                .expression_attribute_values(":k", s(&index.key))
                .scan_index_forward(false)
                .projection_expression("#pk")
                .expression_attribute_names("#pk", INDEX_READ_ATTRIBUTES[0])
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify_sdk_error("Query", &e))?;
            page.take(index.name, out.items(), limit, offset)?;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(page),
            }
        }
    }
}

impl BatchReader for DynamoStore {
    async fn get_batch(&self, batch_id: &str) -> Result<Option<BatchAggregate>, StoreError> {
        let (agg, _) = self.read_batch(batch_id).await?;
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
        let UserPage { ids, total } = self
            .user_page(&index, limit as usize, offset as usize)
            .await?;
        let batches: Vec<BatchAggregate> = futures::stream::iter(ids)
            .map(|id| async move { Ok::<_, StoreError>(self.read_batch(&id).await?.0) })
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

    /// The `by_cj_job_keys` index (keys only; CJ headers only, chunks carry no `cj_job_id`)
    /// finds the batch of the job; header and chunks are then read from the base table,
    /// strongly consistent, so they always match.
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
            .projection_expression("#pk")
            .expression_attribute_names("#pk", INDEX_READ_ATTRIBUTES[0])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::capacity::STATE_TABLE;

    /// The keys-only indexes the reader queries with a projection expression project every
    /// attribute it names (`STATE_TABLE` is checked against template.yaml), so real DynamoDB
    /// accepts the `Query` (moto does not check this).
    #[test]
    fn index_queries_ask_only_for_projected_attributes() {
        for name in [INDEX_BY_USER, INDEX_BY_USER_STATUS, INDEX_BY_CJ_JOB] {
            let index = STATE_TABLE
                .index(name)
                .unwrap_or_else(|| panic!("{name} is not an index of the state table"));
            for attribute in INDEX_READ_ATTRIBUTES {
                assert!(
                    index.projects(&STATE_TABLE, attribute),
                    "{name} does not project {attribute}"
                );
            }
            assert!(!index.projects(&STATE_TABLE, items::BATCH_ID), "{name}");
        }
    }

    fn entries(ids: std::ops::Range<usize>) -> Vec<Item> {
        ids.map(|i| Item::from([(items::PK.to_string(), s(batch_pk(&format!("b-{i}"))))]))
            .collect()
    }

    fn ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("b-{i}")).collect()
    }

    #[test]
    fn one_pass_gives_the_page_and_the_count_across_query_pages() {
        // 25 entries in Query pages of 7, 7, 7 and 4.
        let pages = [
            entries(0..7),
            entries(7..14),
            entries(14..21),
            entries(21..25),
        ];
        let read = |limit, offset| {
            let mut page = UserPage::default();
            for entries in &pages {
                page.take("i", entries, limit, offset).unwrap();
            }
            page
        };
        assert_eq!(
            read(20, 0),
            UserPage {
                ids: ids(0..20),
                total: 25
            }
        );
        assert_eq!(
            read(5, 5),
            UserPage {
                ids: ids(5..10),
                total: 25
            }
        );
        assert_eq!(
            read(10, 20),
            UserPage {
                ids: ids(20..25),
                total: 25
            }
        );
        assert_eq!(
            read(10, 25),
            UserPage {
                ids: vec![],
                total: 25
            }
        );
        assert_eq!(
            read(10, 1_000),
            UserPage {
                ids: vec![],
                total: 25
            }
        );
        assert_eq!(
            read(0, 0),
            UserPage {
                ids: vec![],
                total: 25
            }
        );
        let mut empty = UserPage::default();
        empty.take("i", &[], 20, 0).unwrap();
        assert_eq!(empty, UserPage::default());
    }

    #[test]
    fn an_entry_without_batch_id_is_corrupt_only_when_listed() {
        let mut bad = entries(0..3);
        bad[1] = Item::from([(items::PK.to_string(), s("EVENT#x"))]);
        let mut page = UserPage::default();
        page.take("i", &bad, 1, 2).unwrap();
        assert_eq!(
            page,
            UserPage {
                ids: ids(2..3),
                total: 3
            }
        );
        let err = UserPage::default().take("i", &bad, 3, 0).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Permanent {
                    kind: "corrupt_item",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
