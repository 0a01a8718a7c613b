//! In-memory fakes of the transport ports and a recording wrapper around any store: the one
//! place the function crates, the integration tests, the local pipeline's tests and the
//! benches take them from. Fault injection by seed lives with the reliability suite
//! (`tests/src/faults.rs`); scripted publisher faults with the relay (`relay::testing`).

use super::InMemoryStore;
use crate::model::BatchAggregate;
use crate::plan::{OutboxMessage, Plan};
use crate::ports::*;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One `send_batch` call as a publisher saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishCall {
    pub destination: Destination,
    pub messages: Vec<OutboxMessage>,
}

/// Accepts everything and remembers every call (a queue that never fails).
#[derive(Debug, Default)]
pub struct InMemoryPublisher {
    calls: Mutex<Vec<PublishCall>>,
}

impl InMemoryPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> Vec<PublishCall> {
        lock(&self.calls).clone()
    }

    pub fn call_count(&self) -> usize {
        lock(&self.calls).len()
    }

    /// Every message received, in order, with its destination.
    pub fn received(&self) -> Vec<(Destination, OutboxMessage)> {
        self.calls()
            .into_iter()
            .flat_map(|c| {
                let d = c.destination;
                c.messages.into_iter().map(move |m| (d, m))
            })
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.calls).clear();
    }
}

impl MessagePublisher for InMemoryPublisher {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        lock(&self.calls).push(PublishCall {
            destination,
            messages: messages.to_vec(),
        });
        Ok(vec![SendResult::Sent; messages.len()])
    }
}

/// A parking queue in memory: remembers what was parked; can be made to fail.
#[derive(Debug, Default)]
pub struct InMemoryParking {
    parked: Mutex<Vec<ParkedMessage>>,
    failing: AtomicBool,
}

impl InMemoryParking {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `park` fails (transiently) while set.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn parked(&self) -> Vec<ParkedMessage> {
        lock(&self.parked).clone()
    }
}

impl MessageParking for InMemoryParking {
    async fn park(&self, parked: &ParkedMessage) -> Result<(), PublishError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PublishError::Transient(
                "injected: parking queue unavailable".into(),
            ));
        }
        lock(&self.parked).push(parked.clone());
        Ok(())
    }
}

/// A dead-letter queue in memory: keeps every letter, counts the sends; a send can be made to
/// take a while first (an SQS call that does not answer in time).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    sends: AtomicU32,
    delay: Option<Duration>,
}

impl MemoryDeadLetters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every send sleeps `delay` (tokio time) before it is stored.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn letters(&self) -> Vec<DeadLetter> {
        lock(&self.letters).clone()
    }

    /// `send` calls seen, finished or not.
    pub fn sends(&self) -> u32 {
        self.sends.load(Ordering::SeqCst)
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        lock(&self.letters).push(letter.clone());
        Ok(())
    }
}

/// One outbox message as committed: what the outbox table's stream carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    pub batch_id: String,
    /// The root version the commit was planned on (what the DynamoDB store writes).
    pub commit_version: Option<u64>,
    pub message: OutboxMessage,
}

/// Transient failures a [`RecordingStore`] injects into commits.
#[derive(Clone, Debug, Default)]
enum FailCommits {
    #[default]
    Never,
    /// Commits of records of this topic.
    Topic(String),
    /// Commit calls with these numbers (0-based, counting every call).
    Calls(Range<u32>),
}

/// Wraps any store: counts loads and commits, logs the topic of every commit that reaches the
/// inner store and every outbox message committed (the outbox table's stream, in commit
/// order); can fail commits transiently and slow loads down, to test the handler's edges.
#[derive(Default)]
pub struct RecordingStore<S = InMemoryStore> {
    inner: S,
    loads: AtomicU32,
    commit_calls: AtomicU32,
    topics: Mutex<Vec<String>>,
    committed: Mutex<Vec<Committed>>,
    fail: FailCommits,
    load_delay: Option<Duration>,
}

impl<S> RecordingStore<S> {
    pub fn new(inner: S) -> Self {
        RecordingStore {
            inner,
            loads: AtomicU32::new(0),
            commit_calls: AtomicU32::new(0),
            topics: Mutex::new(Vec::new()),
            committed: Mutex::new(Vec::new()),
            fail: FailCommits::Never,
            load_delay: None,
        }
    }

    /// Commits of records of `topic` fail transiently, before reaching the inner store.
    pub fn failing_topic(mut self, topic: &str) -> Self {
        self.fail = FailCommits::Topic(topic.to_string());
        self
    }

    /// Commit calls numbered `calls` (0-based) fail transiently, before reaching the inner store.
    pub fn failing_commits(mut self, calls: Range<u32>) -> Self {
        self.fail = FailCommits::Calls(calls);
        self
    }

    /// Every load sleeps `delay` (tokio time) first: a DynamoDB call that does not answer.
    pub fn with_load_delay(mut self, delay: Duration) -> Self {
        self.load_delay = Some(delay);
        self
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `load` calls seen, finished or not.
    pub fn loads(&self) -> u32 {
        self.loads.load(Ordering::SeqCst)
    }

    /// `commit` calls seen, failed ones included.
    pub fn commit_calls(&self) -> u32 {
        self.commit_calls.load(Ordering::SeqCst)
    }

    /// The topic of every commit that reached the inner store, in call order.
    pub fn commit_topics(&self) -> Vec<String> {
        lock(&self.topics).clone()
    }

    /// Every outbox message committed so far, in commit order.
    pub fn committed(&self) -> Vec<Committed> {
        lock(&self.committed).clone()
    }

    pub fn committed_len(&self) -> usize {
        lock(&self.committed).len()
    }
}

impl<S: AggregateStore> AggregateStore for RecordingStore<S> {
    async fn load(&self, batch_id: &str) -> Result<BatchAggregate, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if let Some(delay) = self.load_delay {
            tokio::time::sleep(delay).await;
        }
        self.inner.load(batch_id).await
    }

    async fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> Result<BatchAggregate, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if let Some(delay) = self.load_delay {
            tokio::time::sleep(delay).await;
        }
        self.inner.load_essay(batch_id, essay_id).await
    }

    async fn commit(
        &self,
        marker: &IdempotencyMarker,
        plan: &Plan,
    ) -> Result<CommitOutcome, StoreError> {
        let call = self.commit_calls.fetch_add(1, Ordering::SeqCst);
        let fails = match &self.fail {
            FailCommits::Never => false,
            FailCommits::Topic(topic) => *topic == marker.topic,
            FailCommits::Calls(calls) => calls.contains(&call),
        };
        if fails {
            return Err(StoreError::Transient(format!(
                "injected: commit {call} ({}) failed",
                marker.topic
            )));
        }
        lock(&self.topics).push(marker.topic.clone());
        // The log is appended when the commit returns. Concurrent commits of one batch are
        // serialised by its version; across batches the log may order two commits that
        // overlapped either way, as a stream may.
        let outcome = self.inner.commit(marker, plan).await?;
        if outcome == CommitOutcome::Committed {
            lock(&self.committed).extend(plan.outbox.iter().map(|m| Committed {
                batch_id: marker.batch_id.clone(),
                commit_version: plan.expected_version(),
                message: m.clone(),
            }));
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::events as ev;

    fn marker(topic: &str, n: u128) -> IdempotencyMarker {
        IdempotencyMarker::new(
            format!("event:{n}"),
            "hash".into(),
            topic,
            "batch-1",
            ev::at_minute(0.0),
        )
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_recording_store_fails_what_it_is_told_to_and_logs_the_rest() {
        run(async {
            let store = RecordingStore::new(InMemoryStore::new()).failing_commits(1..2);
            let plan = Plan::default();
            assert!(store.commit(&marker("a", 1), &plan).await.is_ok());
            assert!(matches!(
                store.commit(&marker("b", 2), &plan).await,
                Err(StoreError::Transient(_))
            ));
            assert!(store.commit(&marker("c", 3), &plan).await.is_ok());
            assert_eq!(store.commit_calls(), 3);
            assert_eq!(store.commit_topics(), ["a", "c"]);

            let store = RecordingStore::new(InMemoryStore::new()).failing_topic("b");
            assert!(store.commit(&marker("b", 1), &plan).await.is_err());
            assert!(store.commit(&marker("a", 2), &plan).await.is_ok());
            assert_eq!(store.commit_topics(), ["a"]);
        });
    }

    #[test]
    fn a_memory_dead_letter_queue_keeps_and_counts_letters() {
        run(async {
            let sink = MemoryDeadLetters::new();
            let letter = DeadLetter {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                timestamp: None,
                key_base64: None,
                value_base64: String::new(),
                error_kind: "invalid_json".into(),
                error_message: "m".into(),
                event_key: None,
                dead_lettered_at: ev::at_minute(0.0),
            };
            sink.send(&letter).await.expect("send");
            assert_eq!(sink.sends(), 1);
            assert_eq!(sink.letters(), vec![letter]);
        });
    }
}
