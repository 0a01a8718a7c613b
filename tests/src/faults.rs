//! Failure injection around the ports: stores and dead-letter sinks that fail, lose responses
//! or hang for their first N calls, then behave like the wrapped adapter.
//!
//! Besides those fixed budgets, every wrapper here can draw its faults from a shared, seeded
//! [`Chaos`] injector (the reliability suite, `tests/tests/reliability.rs`): on each call,
//! with the configured probabilities, an error, a timeout or a lost response.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ras_domain::model::BatchAggregate;
use ras_domain::plan::OutboxMessage;
use ras_domain::plan::Plan;
use ras_domain::ports::{
    AggregateStore, CommitOutcome, DeadLetter, DeadLetterSink, IdempotencyMarker, PublishError,
    StoreError,
};
use ras_domain::ports::{Destination, MessagePublisher, SendResult};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Take one from a budget of faults; true when a fault is due.
fn take(budget: &AtomicU32) -> bool {
    budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// One kind of external call the functions make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    /// `AggregateStore::load` (DynamoDB `Query`).
    Load,
    /// `AggregateStore::commit` (DynamoDB `TransactWriteItems`).
    Commit,
    /// `DeadLetterSink::send` (SQS `SendMessage` to the ingest dead-letter queue).
    DeadLetter,
    /// `MessagePublisher::send_batch` (SQS `SendMessageBatch` to a FIFO queue).
    Publish,
}

/// What goes wrong with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The request fails before the service acts (throttling, 5xx, connection refused).
    Error,
    /// No answer within the caller's time: the call hangs for [`Chaos::hang`], then fails
    /// with the transient error the adapters report for a timeout. Whether the service acted
    /// before the answer got lost is drawn per call (never, for a `Load`).
    Timeout,
    /// The service acted, then the response was lost: the caller gets a transient error.
    LostResponse,
    /// `Publish` only: HTTP 200 with some entries failed (retryably), the others sent.
    PartialFailure,
    /// Store calls during a throttle storm ([`Chaos::set_storm`]): DynamoDB's
    /// `ProvisionedThroughputExceededException`, classified as the adapter classifies it.
    Throttled,
    /// Store calls during a stretch after a deploy whose IAM changes have not propagated:
    /// `AccessDeniedException`, classified as the adapter classifies it (not the record's fault).
    AccessDenied,
}

impl Fault {
    /// The store error the DynamoDB adapter reports for a storm fault (its own classification,
    /// `ras_aws::dynamo::errors::classify`), so the suite follows the adapter.
    pub fn store_error(self, operation: &str, what: &str) -> StoreError {
        use ras_aws::dynamo::errors::{classify, ErrorFacts, FailureKind};
        let (code, status, message) = match self {
            Fault::AccessDenied => (
                "AccessDeniedException",
                400,
                "injected: not authorized to perform this action (IAM change not propagated yet)",
            ),
            Fault::Throttled => (
                "ProvisionedThroughputExceededException",
                400,
                "injected: the level of configured provisioned throughput was exceeded",
            ),
            _ => (
                "InternalServerError",
                500,
                "injected: internal server error",
            ),
        };
        let facts = ErrorFacts {
            failure: FailureKind::Service,
            code: Some(code),
            message: Some(message),
            http_status: Some(status),
        };
        match classify(operation, &facts) {
            StoreError::Transient(m) => StoreError::Transient(format!("{m} ({what})")),
            other => other,
        }
    }
}

/// Which store calls a storm hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StormCalls {
    /// `Load` and `Commit` (the first fails, so the second is rarely reached).
    ReadsAndWrites,
    /// `Commit` only: write capacity exhausted, or a deploy that lost the write permission.
    Writes,
}

/// Probability of each fault per call (what is left up to 1 is success). `lost_response`
/// does not apply to loads, `partial_failure` only to publishes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRates {
    pub error: f64,
    pub timeout: f64,
    pub lost_response: f64,
    pub partial_failure: f64,
}

impl FaultRates {
    pub const NONE: FaultRates = FaultRates {
        error: 0.0,
        timeout: 0.0,
        lost_response: 0.0,
        partial_failure: 0.0,
    };
}

/// A seeded source of faults shared by the wrappers of one run: each call draws its fate
/// from one random sequence, so a run on a single-threaded runtime is reproducible from the
/// seed. [`Chaos::heal`] stops all faults (a run must drain once the faults stop).
pub struct Chaos {
    rng: Mutex<StdRng>,
    rates: FaultRates,
    hang: Duration,
    enabled: AtomicBool,
    /// A storm in progress: the store calls it hits fail with this fault.
    storm: Mutex<Option<(Fault, StormCalls)>>,
    injected: Mutex<BTreeMap<(Call, Fault), u32>>,
}

impl Chaos {
    /// `hang`: how long a timed-out call takes; longer than any caller waits for one.
    pub fn new(seed: u64, rates: FaultRates, hang: Duration) -> Self {
        Chaos {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates,
            hang,
            enabled: AtomicBool::new(true),
            storm: Mutex::new(None),
            injected: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn rates(&self) -> FaultRates {
        self.rates
    }

    pub fn hang(&self) -> Duration {
        self.hang
    }

    /// Stop injecting faults.
    pub fn heal(&self) {
        self.enabled.store(false, Ordering::SeqCst);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Start (`Some((Fault::Throttled | Fault::AccessDenied, calls))`) or end (`None`) a storm:
    /// while it lasts every store call it hits fails with that fault, whatever the rates. A
    /// storm draws nothing from the random sequence.
    pub fn set_storm(&self, storm: Option<(Fault, StormCalls)>) {
        *self.storm.lock().unwrap_or_else(|p| p.into_inner()) = storm;
    }

    fn note(&self, call: Call, fault: Fault) {
        *self
            .injected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((call, fault))
            .or_default() += 1;
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fate of one call: `None` = it succeeds.
    pub fn draw(&self, call: Call) -> Option<Fault> {
        let storm = *self.storm.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((fault, calls)) = storm {
            let hit = match calls {
                StormCalls::ReadsAndWrites => matches!(call, Call::Load | Call::Commit),
                StormCalls::Writes => call == Call::Commit,
            };
            if hit {
                self.note(call, fault);
                return Some(fault);
            }
        }
        if !self.is_enabled() {
            return None;
        }
        let r = &self.rates;
        let lost = if call == Call::Load {
            0.0
        } else {
            r.lost_response
        };
        let partial = if call == Call::Publish {
            r.partial_failure
        } else {
            0.0
        };
        let x: f64 = self.rng().random();
        let fault = [
            (Fault::Error, r.error),
            (Fault::Timeout, r.timeout),
            (Fault::LostResponse, lost),
            (Fault::PartialFailure, partial),
        ]
        .into_iter()
        .scan(0.0, |acc, (fault, p)| {
            *acc += p;
            Some((fault, *acc))
        })
        .find(|(_, upto)| x < *upto)
        .map(|(fault, _)| fault);
        if let Some(fault) = fault {
            self.note(call, fault);
        }
        fault
    }

    /// A fair coin from the same sequence (e.g. did a timed-out request take effect?).
    pub fn coin(&self) -> bool {
        self.rng().random_bool(0.5)
    }

    /// Which of `n` entries fail in a partial failure: at least one, and when `n > 1` not all.
    pub fn failing_entries(&self, n: usize) -> Vec<bool> {
        let mut rng = self.rng();
        if n <= 1 {
            return vec![true; n];
        }
        let failing = rng.random_range(1..n);
        let mut flags = vec![false; n];
        for i in rand::seq::index::sample(&mut *rng, n, failing) {
            flags[i] = true;
        }
        flags
    }

    /// Faults injected so far, per call and kind.
    pub fn injected(&self) -> BTreeMap<(Call, Fault), u32> {
        self.injected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn total_injected(&self) -> u32 {
        self.injected().values().sum()
    }
}

/// Wraps an [`AggregateStore`]; each kind of fault hits the first N matching calls.
///
/// * `fail_loads(n)` / `fail_commits(n)`: the call returns `StoreError::Transient` without
///   touching the store (throttling, 5xx);
/// * `lose_commit_responses(n)`: the commit *is* written, then `StoreError::Transient` is
///   returned, as when the response of a successful `TransactWriteItems` is lost;
/// * `hang_loads(n, d)`: the load sleeps `d` before doing its work (a slow or stuck request).
///
/// `only_batch` restricts the faults to the calls for one batch. With [`FlakyStore::with_chaos`]
/// every call also draws a fault from a [`Chaos`] injector.
pub struct FlakyStore<S> {
    inner: S,
    only_batch: Option<String>,
    failing_loads: AtomicU32,
    failing_commits: AtomicU32,
    lost_commits: AtomicU32,
    hanging_loads: AtomicU32,
    hang_for: Duration,
    chaos: Option<Arc<Chaos>>,
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
            chaos: None,
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

    /// Also draw a fault for every call from `chaos` (after the fixed budgets).
    pub fn with_chaos(mut self, chaos: Arc<Chaos>) -> Self {
        self.chaos = Some(chaos);
        self
    }

    /// Stop injecting faults (all budgets to zero; a [`Chaos`] injector is healed on its own).
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

    /// The fault the chaos injector draws for this call, if any.
    fn chaos_fault(&self, call: Call, batch_id: &str) -> Option<(Fault, &Chaos)> {
        let chaos = self.chaos.as_deref()?;
        if !self.applies_to(batch_id) {
            return None;
        }
        let fault = chaos.draw(call)?;
        self.injected.fetch_add(1, Ordering::SeqCst);
        Some((fault, chaos))
    }
}

impl<S> FlakyStore<S> {
    /// The faults of a read (`operation`: the request it stands for), before the inner store
    /// is asked: a read of the whole batch and a read of its root and one essay fail alike.
    async fn before_read(&self, batch_id: &str, operation: &str) -> Result<(), StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.inject(&self.failing_loads, batch_id) {
            return Err(StoreError::Transient(format!(
                "injected: {operation} throttled for batch {batch_id}"
            )));
        }
        if self.inject(&self.hanging_loads, batch_id) {
            tokio::time::sleep(self.hang_for).await;
        }
        if let Some((fault, chaos)) = self.chaos_fault(Call::Load, batch_id) {
            return Err(match fault {
                Fault::Timeout => {
                    tokio::time::sleep(chaos.hang()).await;
                    StoreError::Transient(format!(
                        "injected: {operation} for batch {batch_id} timed out"
                    ))
                }
                Fault::Throttled | Fault::AccessDenied => {
                    fault.store_error(operation, &format!("batch {batch_id}"))
                }
                _ => StoreError::Transient(format!(
                    "injected: {operation} throttled for batch {batch_id}"
                )),
            });
        }
        Ok(())
    }
}

impl<S: AggregateStore> AggregateStore for FlakyStore<S> {
    async fn load(&self, batch_id: &str) -> Result<BatchAggregate, StoreError> {
        self.before_read(batch_id, "Query").await?;
        self.inner.load(batch_id).await
    }

    async fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> Result<BatchAggregate, StoreError> {
        self.before_read(batch_id, "BatchGetItem").await?;
        self.inner.load_essay(batch_id, essay_id).await
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
        if let Some((fault, chaos)) = self.chaos_fault(Call::Commit, &marker.batch_id) {
            let key = &marker.event_key;
            return Err(match fault {
                Fault::Timeout => {
                    let outcome = if chaos.coin() {
                        Some(self.inner.commit(marker, plan).await?)
                    } else {
                        None
                    };
                    tokio::time::sleep(chaos.hang()).await;
                    StoreError::Transient(format!(
                        "injected: TransactWriteItems for {key} timed out (outcome was {outcome:?})"
                    ))
                }
                Fault::LostResponse => {
                    let outcome = self.inner.commit(marker, plan).await?;
                    StoreError::Transient(format!(
                        "injected: response of TransactWriteItems for {key} lost (outcome was {outcome:?})"
                    ))
                }
                Fault::Throttled | Fault::AccessDenied => {
                    fault.store_error("TransactWriteItems", key)
                }
                Fault::Error | Fault::PartialFailure => {
                    StoreError::Transient(format!("injected: TransactWriteItems 500 for {key}"))
                }
            });
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
/// reaching it; with [`FlakyDeadLetters::with_chaos`] every send also draws a fault from a
/// [`Chaos`] injector. Every letter that got through (its response lost or not) is also kept
/// in memory.
pub struct FlakyDeadLetters<D> {
    inner: D,
    failing: AtomicU32,
    permanent: bool,
    chaos: Option<Arc<Chaos>>,
    attempts: AtomicU32,
    sent: Mutex<Vec<DeadLetter>>,
    lost: Mutex<Vec<DeadLetter>>,
}

impl<D> FlakyDeadLetters<D> {
    pub fn new(inner: D) -> Self {
        FlakyDeadLetters {
            inner,
            failing: AtomicU32::new(0),
            permanent: false,
            chaos: None,
            attempts: AtomicU32::new(0),
            sent: Mutex::new(Vec::new()),
            lost: Mutex::new(Vec::new()),
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

    /// Also draw a fault for every send from `chaos` (after the fixed budget).
    pub fn with_chaos(mut self, chaos: Arc<Chaos>) -> Self {
        self.chaos = Some(chaos);
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

    /// Letters that reached the sink although the send reported a failure (response lost, or
    /// a timeout after the send): the sender will send them again.
    pub fn lost_responses(&self) -> Vec<DeadLetter> {
        self.lost
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn note_lost(&self, letter: &DeadLetter) {
        self.lost
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(letter.clone());
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
        let fault = self
            .chaos
            .as_deref()
            .and_then(|c| Some((c.draw(Call::DeadLetter)?, c)));
        let (delivered, error) = match fault {
            None => (true, None),
            Some((
                Fault::Error | Fault::PartialFailure | Fault::Throttled | Fault::AccessDenied,
                _,
            )) => (
                false,
                Some(PublishError::Transient("injected: SendMessage 503".into())),
            ),
            Some((Fault::Timeout, chaos)) => {
                let delivered = chaos.coin();
                if delivered {
                    self.deliver(letter).await?;
                    self.note_lost(letter);
                }
                tokio::time::sleep(chaos.hang()).await;
                return Err(PublishError::Transient(
                    "injected: SendMessage timed out".into(),
                ));
            }
            Some((Fault::LostResponse, _)) => (
                true,
                Some(PublishError::Transient(
                    "injected: response of SendMessage lost".into(),
                )),
            ),
        };
        if delivered {
            self.deliver(letter).await?;
            if error.is_some() {
                self.note_lost(letter);
            }
        }
        match error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl<D: DeadLetterSink> FlakyDeadLetters<D> {
    async fn deliver(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        self.inner.send(letter).await?;
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(letter.clone());
        Ok(())
    }
}

/// Wraps a [`MessagePublisher`] and draws a fault for every `send_batch` from a [`Chaos`]
/// injector: the whole request fails (nothing sent), times out (sent or not), is sent but its
/// response lost, or some entries fail (the others are sent). Every request is counted.
pub struct FlakyPublisher<P> {
    inner: P,
    chaos: Arc<Chaos>,
    requests: AtomicU32,
}

impl<P> FlakyPublisher<P> {
    pub fn new(inner: P, chaos: Arc<Chaos>) -> Self {
        FlakyPublisher {
            inner,
            chaos,
            requests: AtomicU32::new(0),
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// `send_batch` calls seen.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl<P: MessagePublisher> MessagePublisher for FlakyPublisher<P> {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let queue = destination.as_str();
        match self.chaos.draw(Call::Publish) {
            None => self.inner.send_batch(destination, messages).await,
            Some(Fault::Error | Fault::Throttled | Fault::AccessDenied) => {
                Err(PublishError::Transient(format!(
                    "injected: SendMessageBatch to {queue} failed (HTTP 503)"
                )))
            }
            Some(Fault::Timeout) => {
                if self.chaos.coin() {
                    self.inner.send_batch(destination, messages).await?;
                }
                tokio::time::sleep(self.chaos.hang()).await;
                Err(PublishError::Transient(format!(
                    "injected: SendMessageBatch to {queue} timed out"
                )))
            }
            Some(Fault::LostResponse) => {
                self.inner.send_batch(destination, messages).await?;
                Err(PublishError::Transient(format!(
                    "injected: response of SendMessageBatch to {queue} lost"
                )))
            }
            Some(Fault::PartialFailure) => {
                let failing = self.chaos.failing_entries(messages.len());
                relay::testing::send_failing_entries(&self.inner, destination, messages, &failing)
                    .await
            }
        }
    }
}

/// Wraps a [`MessagePublisher`]: some messages are unsendable — SQS refuses them for good
/// (`SendResult::Failed { retryable: false }`, as for an invalid message) on every attempt;
/// the others go through. Which ones is a pure function of the event id and the seed, so the
/// checks know. Every refused event id is remembered.
pub struct RefusingPublisher<P> {
    inner: P,
    seed: u64,
    rate: f64,
    refused: Mutex<std::collections::BTreeSet<String>>,
}

impl<P> RefusingPublisher<P> {
    /// Refuse about `rate` of the messages (0: none).
    pub fn new(inner: P, seed: u64, rate: f64) -> Self {
        RefusingPublisher {
            inner,
            seed,
            rate,
            refused: Mutex::new(Default::default()),
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Whether the message with `event_id` is unsendable.
    pub fn refuses(&self, event_id: &str) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        // FNV-1a over the seed and the id: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.seed.to_le_bytes().iter().chain(event_id.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.rate
    }

    /// The event ids refused so far.
    pub fn refused(&self) -> std::collections::BTreeSet<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl<P: MessagePublisher> MessagePublisher for RefusingPublisher<P> {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        let refused: Vec<bool> = messages
            .iter()
            .map(|m| self.refuses(&m.event_id.to_string()))
            .collect();
        if !refused.contains(&true) {
            return self.inner.send_batch(destination, messages).await;
        }
        let mut results =
            relay::testing::send_failing_entries(&self.inner, destination, messages, &refused)
                .await?;
        let mut seen = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        for ((result, refused), m) in results.iter_mut().zip(refused).zip(messages) {
            if refused {
                seen.insert(m.event_id.to_string());
                *result = SendResult::Failed {
                    retryable: false,
                    code: "InvalidParameterValue".into(),
                    message: "injected: the message contains characters outside the allowed set"
                        .into(),
                };
            }
        }
        Ok(results)
    }
}
