//! In-memory fakes of the ports and builders of HuleEdu events, for unit tests here and in the
//! function crates.

pub mod batches;
pub mod events;
mod fakes;

pub use fakes::{
    Committed, InMemoryParking, InMemoryPublisher, MemoryDeadLetters, PublishCall, RecordingStore,
};

use crate::contracts::BatchStatus;
use crate::model::{BatchAggregate, CjJobRecord};
use crate::plan::{OutboxMessage, Plan};
use crate::ports::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// Behaves like the DynamoDB store: markers are conditional puts, the root is versioned, and a
/// commit is all-or-nothing.
#[derive(Default)]
pub struct InMemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    aggregates: HashMap<String, BatchAggregate>,
    markers: HashMap<String, IdempotencyMarker>,
    outbox: Vec<OutboxMessage>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn aggregate(&self, batch_id: &str) -> Option<BatchAggregate> {
        self.lock().aggregates.get(batch_id).cloned()
    }

    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.lock().outbox.clone()
    }

    pub fn marker_count(&self) -> usize {
        self.lock().markers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn commit_now(&self, marker: &IdempotencyMarker, plan: &Plan) -> CommitOutcome {
        let mut inner = self.lock();
        if let Some(existing) = inner.markers.get(&marker.event_key) {
            return if existing.payload_hash == marker.payload_hash {
                CommitOutcome::Duplicate
            } else {
                CommitOutcome::PayloadConflict {
                    existing_hash: existing.payload_hash.clone(),
                }
            };
        }
        if let Some(expected) = plan.expected_version() {
            let stored = inner
                .aggregates
                .get(&marker.batch_id)
                .map_or(0, |a| a.root.version);
            if stored != expected {
                return CommitOutcome::VersionConflict;
            }
        }
        let stored_essay_version = |essay_id: &str| {
            inner
                .aggregates
                .get(&marker.batch_id)
                .and_then(|a| a.essays.get(essay_id))
                .map_or(0, |e| e.version)
        };
        let essay_moved = plan.changes.iter().any(|c| {
            matches!(c, crate::plan::StateChange::Essay(e) if stored_essay_version(&e.essay_id) != e.version)
        });
        if essay_moved {
            return CommitOutcome::VersionConflict;
        }
        if plan
            .outbox
            .iter()
            .any(|m| inner.outbox.iter().any(|o| o.event_id == m.event_id))
        {
            // The outbox key is the event id: a second copy cannot be written.
            return CommitOutcome::VersionConflict;
        }
        inner
            .markers
            .insert(marker.event_key.clone(), marker.clone());
        if !plan.changes.is_empty() {
            let agg = inner
                .aggregates
                .entry(marker.batch_id.clone())
                .or_insert_with(|| BatchAggregate::new(&marker.batch_id));
            agg.apply_plan(plan);
        }
        inner.outbox.extend(plan.outbox.iter().cloned());
        CommitOutcome::Committed
    }
}

impl AggregateStore for InMemoryStore {
    async fn load(&self, batch_id: &str) -> Result<BatchAggregate, StoreError> {
        Ok(self
            .aggregate(batch_id)
            .unwrap_or_else(|| BatchAggregate::new(batch_id)))
    }

    /// As the DynamoDB store reads it: the root without the registration's essay ids, and
    /// the one essay.
    async fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> Result<BatchAggregate, StoreError> {
        let inner = self.lock();
        let mut view = BatchAggregate::new(batch_id);
        if let Some(stored) = inner.aggregates.get(batch_id) {
            view.root = stored.root.clone();
            if let Some(registration) = view.root.registration.as_mut() {
                registration.essay_ids.clear();
            }
            if let Some(essay) = stored.essays.get(essay_id) {
                view.essays.insert(essay_id.to_string(), essay.clone());
            }
        }
        Ok(view)
    }

    async fn commit(
        &self,
        marker: &IdempotencyMarker,
        plan: &Plan,
    ) -> Result<CommitOutcome, StoreError> {
        Ok(self.commit_now(marker, plan))
    }
}

impl AwaitingFactsIndex for InMemoryStore {
    async fn awaiting_since(
        &self,
        cutoff: crate::contracts::Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut waiting: Vec<(crate::contracts::Timestamp, String)> = self
            .lock()
            .aggregates
            .values()
            .filter_map(|a| Some((a.root.awaiting_facts_since?, a.batch_id().to_string())))
            .filter(|(since, _)| *since <= cutoff)
            .collect();
        waiting.sort();
        Ok(waiting.into_iter().take(limit).map(|(_, id)| id).collect())
    }
}

impl BatchReader for InMemoryStore {
    async fn get_batch(&self, batch_id: &str) -> Result<Option<BatchAggregate>, StoreError> {
        Ok(self.aggregate(batch_id).filter(|a| a.is_registered()))
    }

    async fn list_user_batches(
        &self,
        user_id: &str,
        status: Option<BatchStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<BatchPage, StoreError> {
        let mut batches: Vec<BatchAggregate> = self
            .lock()
            .aggregates
            .values()
            .filter(|a| a.root.user_id() == Some(user_id))
            .filter(|a| status.is_none() || a.root.derived.overall_status == status)
            .cloned()
            .collect();
        let created = |a: &BatchAggregate| {
            a.root
                .registration
                .as_ref()
                .map(|r| r.provenance.occurred_at)
        };
        batches.sort_by(|a, b| {
            created(b)
                .cmp(&created(a))
                .then_with(|| b.batch_id().cmp(a.batch_id()))
        });
        let total = batches.len() as u64;
        let page = batches
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok(BatchPage {
            batches: page,
            total,
        })
    }

    async fn get_cj_job(&self, job_id: &str) -> Result<Option<CjJobRecord>, StoreError> {
        Ok(self
            .lock()
            .aggregates
            .values()
            .find_map(|a| a.cj_jobs.get(job_id).cloned()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Drive a future that never waits (the in-memory store's) to completion, without a runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}
