//! Failure injection around the ports: stores and dead-letter sinks that fail, lose responses
//! or hang for their first N calls, then behave like the wrapped adapter.

use ras_domain::model::BatchAggregate;
use ras_domain::plan::Plan;
use ras_domain::ports::{
    AggregateStore, CommitOutcome, DeadLetter, DeadLetterSink, IdempotencyMarker, PublishError,
    StoreError,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Take one from a budget of faults; true when a fault is due.
fn take(budget: &AtomicU32) -> bool {
    budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Wraps an [`AggregateStore`]; each kind of fault hits the first N matching calls.
///
/// * `fail_loads(n)` / `fail_commits(n)`: the call returns `StoreError::Transient` without
///   touching the store (throttling, 5xx);
/// * `lose_commit_responses(n)`: the commit *is* written, then `StoreError::Transient` is
///   returned, as when the response of a successful `TransactWriteItems` is lost;
/// * `hang_loads(n, d)`: the load sleeps `d` before doing its work (a slow or stuck request).
///
/// `only_batch` restricts the faults to the calls for one batch.
pub struct FlakyStore<S> {
    inner: S,
    only_batch: Option<String>,
    failing_loads: AtomicU32,
    failing_commits: AtomicU32,
    lost_commits: AtomicU32,
    hanging_loads: AtomicU32,
    hang_for: Duration,
    loads: AtomicU32,
    commits: AtomicU32,
    injected: AtomicU32,
}

impl<S> FlakyStore<S> {
    pub fn new(inner: S) -> Self {
        FlakyStore {
            inner,
            only_batch: None,
            failing_loads: AtomicU32::new(0),
            failing_commits: AtomicU32::new(0),
            lost_commits: AtomicU32::new(0),
            hanging_loads: AtomicU32::new(0),
            hang_for: Duration::ZERO,
            loads: AtomicU32::new(0),
            commits: AtomicU32::new(0),
            injected: AtomicU32::new(0),
        }
    }

    pub fn only_batch(mut self, batch_id: &str) -> Self {
        self.only_batch = Some(batch_id.to_string());
        self
    }

    pub fn fail_loads(self, n: u32) -> Self {
        self.failing_loads.store(n, Ordering::SeqCst);
        self
    }

    pub fn fail_commits(self, n: u32) -> Self {
        self.failing_commits.store(n, Ordering::SeqCst);
        self
    }

    pub fn lose_commit_responses(self, n: u32) -> Self {
        self.lost_commits.store(n, Ordering::SeqCst);
        self
    }

    pub fn hang_loads(mut self, n: u32, duration: Duration) -> Self {
        self.hanging_loads.store(n, Ordering::SeqCst);
        self.hang_for = duration;
        self
    }

    /// Stop injecting faults (all budgets to zero).
    pub fn heal(&self) {
        for budget in [
            &self.failing_loads,
            &self.failing_commits,
            &self.lost_commits,
            &self.hanging_loads,
        ] {
            budget.store(0, Ordering::SeqCst);
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Calls of `load` / `commit` seen, and faults injected so far.
    pub fn loads(&self) -> u32 {
        self.loads.load(Ordering::SeqCst)
    }

    pub fn commits(&self) -> u32 {
        self.commits.load(Ordering::SeqCst)
    }

    pub fn injected(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }

    fn applies_to(&self, batch_id: &str) -> bool {
        self.only_batch.as_deref().is_none_or(|b| b == batch_id)
    }

    fn inject(&self, budget: &AtomicU32, batch_id: &str) -> bool {
        let due = self.applies_to(batch_id) && take(budget);
        if due {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        due
    }
}

impl<S: AggregateStore> AggregateStore for FlakyStore<S> {
    async fn load(&self, batch_id: &str) -> Result<BatchAggregate, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.inject(&self.failing_loads, batch_id) {
            return Err(StoreError::Transient(format!(
                "injected: Query throttled for batch {batch_id}"
            )));
        }
        if self.inject(&self.hanging_loads, batch_id) {
            tokio::time::sleep(self.hang_for).await;
        }
        self.inner.load(batch_id).await
    }

    async fn commit(
        &self,
        marker: &IdempotencyMarker,
        plan: &Plan,
    ) -> Result<CommitOutcome, StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if self.inject(&self.failing_commits, &marker.batch_id) {
            return Err(StoreError::Transient(format!(
                "injected: TransactWriteItems 500 for {}",
                marker.event_key
            )));
        }
        let outcome = self.inner.commit(marker, plan).await?;
        if self.inject(&self.lost_commits, &marker.batch_id) {
            return Err(StoreError::Transient(format!(
                "injected: response of TransactWriteItems for {} lost (outcome was {outcome:?})",
                marker.event_key
            )));
        }
        Ok(outcome)
    }
}

/// Wraps a [`DeadLetterSink`]: the first N sends fail (transiently or permanently) without
/// reaching it. Every letter that got through is also kept in memory.
pub struct FlakyDeadLetters<D> {
    inner: D,
    failing: AtomicU32,
    permanent: bool,
    attempts: AtomicU32,
    sent: Mutex<Vec<DeadLetter>>,
}

impl<D> FlakyDeadLetters<D> {
    pub fn new(inner: D) -> Self {
        FlakyDeadLetters {
            inner,
            failing: AtomicU32::new(0),
            permanent: false,
            attempts: AtomicU32::new(0),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// The first `n` sends fail with `PublishError::Transient`.
    pub fn fail_first(self, n: u32) -> Self {
        self.failing.store(n, Ordering::SeqCst);
        self
    }

    /// Failures are `PublishError::Permanent` instead.
    pub fn permanently(mut self) -> Self {
        self.permanent = true;
        self
    }

    pub fn heal(&self) {
        self.failing.store(0, Ordering::SeqCst);
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    pub fn sent(&self) -> Vec<DeadLetter> {
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: DeadLetterSink> DeadLetterSink for FlakyDeadLetters<D> {
    async fn send(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if take(&self.failing) {
            return Err(if self.permanent {
                PublishError::Permanent {
                    kind: "access_denied",
                    message: "injected: SendMessage denied".into(),
                }
            } else {
                PublishError::Transient("injected: SendMessage 503".into())
            });
        }
        self.inner.send(letter).await?;
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(letter.clone());
        Ok(())
    }
}

/// A sink that keeps letters in memory (for tests that do not look at SQS).
#[derive(Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
}

impl MemoryDeadLetters {
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        self.letters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(letter.clone());
        Ok(())
    }
}
