//! A run: the real ingest and relay handlers over fault-injected ports, fed by the simulated
//! event sources until the scenario drains.

use super::scenario::{Knobs, RecordId, Scenario};
use crate::event_source::{
    deployed_ingest_source_config, deployed_relay_source_config, kafka_outcome, stream_outcome,
    Batch, EventSource, EventSourceConfig, Outcome, SourceRecord,
};
use crate::faults::RefusingPublisher;
use crate::faults::{Chaos, FlakyDeadLetters, FlakyPublisher, FlakyStore};
use crate::ingest_support::fixed_clock;
use crate::msk::{msk_event, MskRecord};
use ingest::handler::BatchReport;
use ingest::retry::RetryPolicy;
use ingest::{Deps, HandlerSettings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ras_aws::dynamo::OutboxItem;
use ras_domain::ports::{AggregateStore, DeadLetterSink, MessagePublisher};
use ras_domain::testing::{
    Committed, InMemoryParking, InMemoryPublisher, InMemoryStore, MemoryDeadLetters, RecordingStore,
};
use relay::breaker::CircuitBreaker;
use relay::clock::ManualClock;
use relay::testing::{event_from_records, insert_record};
use relay::Relay;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long the handler waits for one processing attempt, and how long a timed-out call hangs
/// (virtual time).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
pub const HANG: Duration = Duration::from_secs(2);

/// Rounds after which a run that has not drained fails.
pub const MAX_ROUNDS: usize = 5_000;

/// The outbox item the DynamoDB store writes for a committed message.
pub fn outbox_item(committed: &Committed) -> OutboxItem {
    OutboxItem::from_message(&committed.message, &committed.batch_id)
        .in_commit(committed.commit_version)
}

/// Everything a run produced, for the checks. By default over the in-memory ports.
pub struct Run<S = InMemoryStore, D = MemoryDeadLetters, P = InMemoryPublisher> {
    pub deps: Deps<FlakyStore<RecordingStore<S>>, FlakyDeadLetters<D>>,
    pub relay: Relay<FlakyPublisher<RefusingPublisher<P>>, Arc<ManualClock>, InMemoryParking>,
    pub chaos: Arc<Chaos>,
    /// Every ingest invocation's report.
    pub reports: Vec<BatchReport>,
    /// Deliveries of each record to the ingest handler.
    pub deliveries: BTreeMap<RecordId, u32>,
    pub stats: Stats,
    /// Problems of the run itself (not drained, a response naming a record not delivered…).
    pub problems: Vec<String>,
    /// What the event sources skipped (gave up on, or saw expire): must stay empty.
    pub skipped: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rounds: usize,
    pub ingest_invocations: usize,
    pub record_deliveries: usize,
    pub relay_invocations: usize,
    pub stream_deliveries: usize,
    pub whole_retries: usize,
    pub rewinds: usize,
    /// Rounds in a storm.
    pub storm_rounds: usize,
    /// Invocations started with no time left.
    pub pressured: usize,
    /// Invocations that ran longer than the function's timeout (failed as a whole).
    pub timeouts: usize,
    /// Batches the event sources split after a function error.
    pub bisects: usize,
}

/// The ports a run wraps with fault injection, and its timing.
pub struct Ports<S, D, P> {
    pub store: S,
    pub dead_letters: D,
    pub publisher: P,
    /// The handler's attempt timeout.
    pub attempt_timeout: Duration,
    /// How long a timed-out call hangs (longer than `attempt_timeout`).
    pub hang: Duration,
}

impl Ports<InMemoryStore, MemoryDeadLetters, InMemoryPublisher> {
    /// In-memory ports, timing for virtual time.
    pub fn in_memory() -> Self {
        Ports {
            store: InMemoryStore::new(),
            dead_letters: MemoryDeadLetters::default(),
            publisher: InMemoryPublisher::new(),
            attempt_timeout: ATTEMPT_TIMEOUT,
            hang: HANG,
        }
    }
}

/// The settings the suite gives the ingest handler: the scenario's concurrency and attempts,
/// no backoff (virtual time makes it free anyway; none keeps the interleaving reproducible).
pub fn settings(knobs: &Knobs, attempt_timeout: Duration) -> HandlerSettings {
    HandlerSettings {
        partition_concurrency: knobs.partition_concurrency,
        retry: RetryPolicy {
            max_attempts: knobs.max_attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            budget: Duration::from_secs(60),
        },
        attempt_timeout,
        deadline_reserve: Duration::ZERO,
    }
}

/// Run a scenario to the end over the in-memory ports (call it in a paused, single-threaded
/// runtime for the run to be reproducible).
pub async fn run(scenario: &Scenario) -> Run {
    run_with(scenario, Ports::in_memory()).await
}

/// The ingest's MSK event source in the suite: exactly the template's (batch size, partial
/// batch responses, function timeout, truly infinite retries, no on-failure destination). The
/// suite checks that nothing is ever skipped; its storms are longer than the 10 retries Lambda
/// would allow if a destination came back (`tests/tests/event_source.rs` shows that case
/// skipping records).
pub fn ingest_source_config() -> EventSourceConfig {
    deployed_ingest_source_config()
}

/// The outbox stream's event source in the suite: the template's, as deployed.
pub fn relay_source_config() -> EventSourceConfig {
    deployed_relay_source_config()
}

/// The shard of the simulated outbox stream.
const SHARD: &str = "shardId-00000001764237600000-0a1b2c3d";

/// Run a scenario to the end over `ports`, each wrapped with the fault injector.
pub async fn run_with<S, D, P>(scenario: &Scenario, ports: Ports<S, D, P>) -> Run<S, D, P>
where
    S: AggregateStore,
    D: DeadLetterSink,
    P: MessagePublisher,
{
    let knobs = &scenario.knobs;
    let chaos = Arc::new(Chaos::new(
        scenario.seed ^ 0x5eed_c4a0_5000_0001,
        knobs.rates,
        ports.hang,
    ));
    let store = FlakyStore::new(RecordingStore::new(ports.store)).with_chaos(Arc::clone(&chaos));
    let dead_letters = FlakyDeadLetters::new(ports.dead_letters).with_chaos(Arc::clone(&chaos));
    let deps = Deps::new(store, dead_letters)
        .with_clock(fixed_clock())
        .with_settings(settings(knobs, ports.attempt_timeout));
    let clock = Arc::new(ManualClock::new());
    let publisher = RefusingPublisher::new(
        ports.publisher,
        scenario.seed ^ 0x0ff1_ce00_0000_0003,
        knobs.unsendable,
    );
    let relay = Relay::new(
        FlakyPublisher::new(publisher, Arc::clone(&chaos)),
        Arc::new(CircuitBreaker::default()),
        Arc::clone(&clock),
    )
    .with_parking(InMemoryParking::new());
    let mut rng = StdRng::seed_from_u64(scenario.seed ^ 0xe5e5_0000_0000_0002);

    // The event sources (`crate::event_source`): Lambda's semantics over the scenario's
    // partitions and the commit log.
    let mut msk: EventSource<MskRecord> = EventSource::new(ingest_source_config());
    for (key, records) in &scenario.partitions {
        for r in records {
            msk.append(
                key,
                SourceRecord {
                    id: r.record.offset,
                    appended_at: Duration::ZERO,
                    payload: r.record.clone(),
                },
            );
        }
    }
    let mut outbox: EventSource<usize> = EventSource::new(relay_source_config());
    let mut streamed = 0usize;
    let mut now = Duration::ZERO;

    let mut reports = Vec::new();
    let mut deliveries: BTreeMap<RecordId, u32> = BTreeMap::new();
    let mut stats = Stats::default();
    let mut problems = Vec::new();
    let mut drained = false;

    for round in 0..MAX_ROUNDS {
        let healed = round >= knobs.heal_after;
        if healed {
            chaos.heal();
        }
        let storm = knobs
            .storm
            .filter(|s| s.covers(round))
            .map(|s| (s.fault, s.calls));
        chaos.set_storm(storm);
        // The outbox stream: what was committed since the last round, in commit order.
        let stream = deps.store.inner().committed();
        for i in streamed..stream.len() {
            outbox.append(
                SHARD,
                SourceRecord {
                    id: i as i64,
                    appended_at: now,
                    payload: i,
                },
            );
        }
        streamed = stream.len();
        if msk.is_drained() && outbox.is_drained() {
            drained = true;
            break;
        }
        stats.rounds += 1;
        if storm.is_some() {
            stats.storm_rounds += 1;
        }

        // Rebalance: a partition is read again from an earlier, already committed offset.
        if !healed && rng.random_bool(knobs.rewind) {
            let keys: Vec<&String> = scenario.partitions.keys().collect();
            let key = keys[rng.random_range(0..keys.len())];
            if let Some((position, _)) = msk.position(key).filter(|(p, _)| *p > 0) {
                msk.rewind(key, rng.random_range(0..position));
                stats.rewinds += 1;
            }
        }

        // The MSK event source: some partitions, a batch of each, in one or two invocations.
        let pending = msk.pending();
        let mut invocations: Vec<Vec<Batch<MskRecord>>> = vec![Vec::new(), Vec::new()];
        for key in &pending {
            if pending.len() > 1 && rng.random_bool(0.3) {
                continue; // not in this round's batches
            }
            let Some(batch) = msk.poll(key, rng.random_range(1..=knobs.max_chunk), now) else {
                continue;
            };
            for r in &batch.records {
                let r = &r.payload;
                *deliveries
                    .entry((r.topic.clone(), r.partition, r.offset))
                    .or_default() += 1;
            }
            stats.record_deliveries += batch.len();
            invocations[rng.random_range(0..2)].push(batch);
        }
        invocations.retain(|inv| !inv.is_empty());
        let whole_retry: Vec<bool> = invocations
            .iter()
            .map(|_| !healed && rng.random_bool(knobs.whole_retry))
            .collect();
        let pressured: Vec<bool> = invocations
            .iter()
            .map(|_| !healed && rng.random_bool(knobs.deadline_pressure))
            .collect();

        // The outbox stream: the next batch of committed records, in commit order.
        let stream_batch = outbox.poll(SHARD, rng.random_range(1..=knobs.max_stream_chunk), now);
        let stream_retry = !healed && rng.random_bool(knobs.whole_retry);
        let stream_pressured = !healed && rng.random_bool(knobs.deadline_pressure);

        // Deadline pressure: the invocation starts with no time left before its deadline (the
        // handlers read the deadline on the wall clock, which virtual time does not move: "no
        // time left" is the pressure that replays exactly).
        let deadline = |pressed: bool| pressed.then(std::time::Instant::now);
        let ingest_runs =
            futures::future::join_all(invocations.iter().zip(&pressured).map(|(inv, pressed)| {
                let records: Vec<MskRecord> = inv
                    .iter()
                    .flat_map(|b| b.records.iter().map(|r| r.payload.clone()))
                    .collect();
                let deps = &deps;
                let deadline = deadline(*pressed);
                async move {
                    let started = tokio::time::Instant::now();
                    let report =
                        ingest::handler::process_event(deps, msk_event(&records), deadline).await;
                    (report, started.elapsed())
                }
            }));
        let relay_run = async {
            let batch = stream_batch.as_ref()?;
            let records = batch
                .records
                .iter()
                .map(|r| {
                    insert_record(
                        &outbox_item(&stream[r.payload]),
                        &sequence_number(r.payload),
                    )
                })
                .collect();
            let started = tokio::time::Instant::now();
            let outcome = relay
                .handle_event(event_from_records(records), deadline(stream_pressured))
                .await;
            Some((outcome, started.elapsed()))
        };
        let (ingest_reports, relay_outcome) = futures::future::join(ingest_runs, relay_run).await;

        // Lambda's side of the responses.
        for (((inv, (report, took)), retry), pressed) in invocations
            .iter()
            .zip(ingest_reports)
            .zip(whole_retry)
            .zip(pressured)
        {
            stats.ingest_invocations += 1;
            stats.pressured += usize::from(pressed);
            let timed_out = msk.config().timed_out(took);
            stats.timeouts += usize::from(timed_out);
            let outcomes = if retry || timed_out {
                // The response is lost, or the function ran out of time: the invocation failed.
                stats.whole_retries += usize::from(retry);
                vec![Outcome::FunctionError; inv.len()]
            } else {
                let failures = report
                    .response()
                    .batch_item_failures
                    .into_iter()
                    .map(|f| (f.item_identifier.partition, f.item_identifier.offset));
                let (outcomes, wrong) = kafka_outcome(&inv.iter().collect::<Vec<_>>(), failures);
                problems.extend(
                    wrong
                        .into_iter()
                        .map(|w| format!("round {round}: ingest {w}")),
                );
                outcomes
            };
            for (batch, outcome) in inv.iter().zip(outcomes) {
                msk.complete(batch, outcome);
            }
            reports.push(report);
        }
        if let (Some(batch), Some((outcome, took))) = (&stream_batch, relay_outcome) {
            stats.relay_invocations += 1;
            stats.stream_deliveries += batch.len();
            stats.pressured += usize::from(stream_pressured);
            let timed_out = outbox.config().timed_out(took);
            stats.timeouts += usize::from(timed_out);
            let seq = |r: &SourceRecord<usize>| sequence_number(r.payload);
            let outcome = match outcome {
                _ if stream_retry || timed_out => {
                    stats.whole_retries += usize::from(stream_retry);
                    Outcome::FunctionError
                }
                Err(e) => {
                    problems.push(format!("round {round}: relay failed the batch: {e}"));
                    Outcome::FunctionError
                }
                Ok(outcome) => {
                    if let Some(checkpoint) = &outcome.checkpoint {
                        if !batch.records.iter().any(|r| seq(r) == *checkpoint) {
                            problems.push(format!(
                                "round {round}: relay reported {checkpoint}, not in its batch"
                            ));
                        }
                    }
                    stream_outcome(
                        batch,
                        seq,
                        outcome
                            .response
                            .batch_item_failures
                            .into_iter()
                            .map(|f| f.item_identifier),
                    )
                }
            };
            outbox.complete(batch, outcome);
        }
        // Time passes between invocations (the breaker half-opens after 30 s).
        let step = if healed {
            Duration::from_secs(31)
        } else {
            Duration::from_secs(rng.random_range(0..=40))
        };
        clock.advance(step);
        now += step;
    }
    chaos.set_storm(None);
    if !drained {
        problems.push(format!(
            "not drained after {MAX_ROUNDS} rounds: ingest partitions {:?}, stream at {:?} of {}",
            msk.pending()
                .iter()
                .map(|k| (k.clone(), msk.position(k)))
                .collect::<Vec<_>>(),
            outbox.position(SHARD),
            deps.store.inner().committed_len()
        ));
    }
    stats.bisects = msk.stats().bisects + outbox.stats().bisects;
    let skipped = msk
        .discarded()
        .iter()
        .map(|d| format!("ingest event source: {d:?}"))
        .chain(
            outbox
                .discarded()
                .iter()
                .map(|d| format!("outbox event source: {d:?}")),
        )
        .collect();
    Run {
        deps,
        relay,
        chaos,
        reports,
        deliveries,
        stats,
        problems,
        skipped,
    }
}

/// Stream sequence numbers: decimal, increasing, as long as real ones.
pub fn sequence_number(index: usize) -> String {
    format!("4421584500000000{:012}", index * 7 + 100)
}
