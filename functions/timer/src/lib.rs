//! The facts timer (`docs/architecture.md`, "The facts timer"): a scheduled function that emits
//! the results-ready event of batches reported complete whose facts did not all arrive within
//! the grace period, with what is known, and records what was missing on the batch.
//!
//! * [`sweep`] — the handler, generic over the store ports: one query of the batches awaiting
//!   facts since before `now − grace`, then [`ras_domain::service::emit_overdue`] for each (the
//!   same single transaction as ingest: marker + version-conditioned root + outbox items).
//! * [`config`] — configuration from the environment.
//! * [`errors`] — a failed run as the Lambda runtime reports it.
//! * [`sdk`] — the DynamoDB client's retry and timeout settings.

pub mod config;
pub mod errors;
pub mod sdk;

pub use errors::TimerError;

use ras_aws::telemetry::{MetricSet, Unit};
use ras_domain::contracts::Timestamp;
use ras_domain::model::MissingFacts;
use ras_domain::ports::{AggregateStore, AwaitingFactsIndex, StoreError};
use ras_domain::service::{emit_overdue, OverdueOutcome};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Default grace period: 15 minutes (docs/deviations.md, "When facts never complete").
pub const DEFAULT_GRACE_SECONDS: u64 = 900;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerSettings {
    /// How long a batch reported complete waits for its missing facts.
    pub grace_seconds: u64,
    /// Batches handled per run at most (the next run, a minute later, takes the rest).
    pub max_batches: usize,
    /// Kept free at the end of the invocation: no batch's emission runs past the deadline
    /// minus this (it is cut and left for the next run), and none starts after it.
    pub deadline_reserve: Duration,
}

impl Default for TimerSettings {
    fn default() -> Self {
        TimerSettings {
            grace_seconds: DEFAULT_GRACE_SECONDS,
            max_batches: 100,
            deadline_reserve: Duration::from_secs(5),
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepReport {
    /// Batches the index listed as overdue.
    pub overdue: usize,
    /// Results-ready events emitted on the timer, with what each was missing.
    pub emitted: Vec<(String, MissingFacts)>,
    /// Outbox items written (each event and its teacher notification).
    pub published: usize,
    /// Listed, but no longer waiting or not overdue on a consistent read (the index lags).
    pub not_due: usize,
    /// Batches that failed (retried on the next run), with the reason.
    pub failed: Vec<(String, String)>,
    /// Left for the next run: the invocation deadline was near.
    pub deferred: usize,
}

impl SweepReport {
    /// CloudWatch EMF metrics of the run (namespace `HuleEdu/ResultAggregator`).
    pub fn metrics(&self) -> MetricSet {
        let mut set = MetricSet::new(&[("Function", "timer")]);
        set.count("BatchesOverdue", self.overdue as u64)
            .count("ResultsReadyTimedOut", self.emitted.len() as u64)
            .count("TimerFailures", self.failed.len() as u64)
            .count("TimerDeferred", self.deferred as u64);
        for (_, missing) in &self.emitted {
            set.record(
                "MissingPhaseOutcomes",
                Unit::Count,
                missing.phases.len() as f64,
            )
            .record(
                "MissingEssayResults",
                Unit::Count,
                missing.essays.len() as f64,
            );
        }
        set
    }
}

/// The Lambda entry point: a scheduled invocation (EventBridge Scheduler's event, or any JSON:
/// its content is only logged) runs [`sweep`] at `now`.
pub async fn handle_event<S>(
    store: &S,
    event: &serde_json::Value,
    now: Timestamp,
    settings: &TimerSettings,
    deadline: Option<Instant>,
) -> Result<SweepReport, StoreError>
where
    S: AggregateStore + AwaitingFactsIndex,
{
    let text = |key: &str| event.get(key).and_then(|v| v.as_str()).unwrap_or("");
    info!(
        schedule_event_id = text("id"),
        scheduled_time = text("time"),
        now = %now,
        "facts timer run"
    );
    sweep(store, now, settings, deadline).await
}

/// One run of the timer at `now`: every batch awaiting facts since `now − grace` or earlier
/// (at most `max_batches`, longest waiting first) gets its results-ready event. A batch that
/// fails is logged and left for the next run; the others go on. `Err` only when the index
/// itself cannot be read.
pub async fn sweep<S>(
    store: &S,
    now: Timestamp,
    settings: &TimerSettings,
    deadline: Option<Instant>,
) -> Result<SweepReport, StoreError>
where
    S: AggregateStore + AwaitingFactsIndex,
{
    let grace_micros = i64::try_from(settings.grace_seconds)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000);
    let cutoff =
        Timestamp::from_unix_micros(now.unix_micros().saturating_sub(grace_micros)).unwrap_or(now);
    let overdue = store.awaiting_since(cutoff, settings.max_batches).await?;
    let mut report = SweepReport {
        overdue: overdue.len(),
        ..SweepReport::default()
    };
    let stop_at = deadline.map(|d| {
        d.checked_sub(settings.deadline_reserve)
            .unwrap_or_else(Instant::now)
    });
    for (index, batch_id) in overdue.iter().enumerate() {
        let emission = emit_overdue(store, batch_id, now, settings.grace_seconds);
        // Limited to the time left before the deadline minus the reserve (its DynamoDB calls
        // and conflict re-plans together), so the run answers before Lambda's timeout.
        let result = match stop_at.map(|stop| stop.saturating_duration_since(Instant::now())) {
            None => emission.await,
            Some(left) if left.is_zero() => {
                report.deferred = overdue.len() - index;
                warn!(
                    deferred = report.deferred,
                    "invocation deadline near: leaving the other overdue batches to the next run"
                );
                break;
            }
            Some(left) => match tokio::time::timeout(left, emission).await {
                Ok(result) => result,
                Err(_) => {
                    report.deferred = overdue.len() - index;
                    warn!(
                        batch_id = %batch_id,
                        deferred = report.deferred,
                        "invocation deadline near: emission cut, it and the other overdue batches are left to the next run"
                    );
                    break;
                }
            },
        };
        match result {
            Ok(OverdueOutcome::Emitted {
                batch_id,
                missing,
                published,
            }) => {
                warn!(
                    batch_id = %batch_id,
                    missing = %missing,
                    missing_pipeline_completion = missing.pipeline_completion,
                    missing_phases = missing.phases.len(),
                    missing_essay_results = missing.essays.len(),
                    grace_seconds = settings.grace_seconds,
                    published,
                    "results ready emitted after the grace period without all its facts"
                );
                report.emitted.push((batch_id, missing));
                report.published += published;
            }
            Ok(OverdueOutcome::NotDue { .. }) => report.not_due += 1,
            Err(err) => {
                error!(batch_id = %batch_id, error = %err, kind = err.kind(), "timed emission failed; the next run retries it");
                report.failed.push((batch_id.clone(), err.to_string()));
            }
        }
    }
    info!(
        overdue = report.overdue,
        emitted = report.emitted.len(),
        not_due = report.not_due,
        failed = report.failed.len(),
        deferred = report.deferred,
        "facts timer run done"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::service::{process_record, ConsumedRecord};
    use ras_domain::testing::events::*;
    use ras_domain::testing::{block_on, InMemoryStore};

    fn feed(store: &InMemoryStore, record: &TestRecord, now: Timestamp) {
        block_on(process_record(
            store,
            ConsumedRecord {
                topic: record.topic,
                value: &record.value,
                record_time: now,
            },
            now,
        ))
        .unwrap();
    }

    fn plus(ts: Timestamp, seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(ts.unix_micros() + seconds * 1_000_000).unwrap()
    }

    /// Two batches BOS reported complete: one gets its last fact, the other never does.
    fn store_with_two_waiting_batches(now: Timestamp) -> InMemoryStore {
        let store = InMemoryStore::new();
        for (n, batch) in [(0u64, "b-late"), (100, "b-lost")] {
            feed(
                &store,
                &registration(event_id(n + 1), batch, "t", &["e1"], at_minute(0.0)),
                now,
            );
            feed(
                &store,
                &pipeline_completed(
                    event_id(n + 2),
                    batch,
                    "completed_successfully",
                    &["spellcheck"],
                    1,
                    0,
                    at_minute(9.0),
                ),
                now,
            );
            feed(
                &store,
                &phase_outcome(
                    event_id(n + 3),
                    batch,
                    "spellcheck",
                    "completed_successfully",
                    &["e1"],
                    &[],
                    at_minute(5.0),
                ),
                now,
            );
        }
        // b-late's spellcheck result arrives within the grace period: emitted by ingest.
        feed(
            &store,
            &spellcheck_result(
                event_id(4),
                "b-late",
                "e1",
                "spellchecked_success",
                at_minute(2.0),
            ),
            plus(now, 60),
        );
        store
    }

    #[test]
    fn emits_only_overdue_batches_once_and_reports_what_was_missing() {
        let now = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
        let store = store_with_two_waiting_batches(now);
        let settings = TimerSettings::default();
        let early = block_on(sweep(&store, plus(now, 899), &settings, None)).unwrap();
        assert_eq!(early, SweepReport::default(), "nothing is overdue yet");

        let report = block_on(sweep(&store, plus(now, 900), &settings, None)).unwrap();
        assert_eq!(report.overdue, 1);
        assert_eq!(report.emitted.len(), 1);
        let (batch, missing) = &report.emitted[0];
        assert_eq!(batch, "b-lost");
        assert_eq!(missing.essays.len(), 1);
        assert_eq!(missing.essays[0].essay_id, "e1");
        let metrics = report.metrics().to_json();
        assert_eq!(metrics["ResultsReadyTimedOut"], 1.0);
        assert_eq!(metrics["MissingEssayResults"], 1.0);

        let ready = |batch: &str| {
            store
                .outbox()
                .iter()
                .filter(|m| {
                    m.ordering_key == batch
                        && m.topic.name() == "huleedu.ras.batch.results.ready.v1"
                })
                .count()
        };
        assert_eq!((ready("b-late"), ready("b-lost")), (1, 1));
        // The next run finds nothing; a late fact changes the state, not the outbox.
        let again = block_on(sweep(&store, plus(now, 960), &settings, None)).unwrap();
        assert_eq!(again.overdue, 0);
        feed(
            &store,
            &spellcheck_result(
                event_id(104),
                "b-lost",
                "e1",
                "spellchecked_success",
                at_minute(2.0),
            ),
            plus(now, 1000),
        );
        assert_eq!(ready("b-lost"), 1);
        let stored = store.aggregate("b-lost").unwrap();
        assert!(stored.essays["e1"].spellcheck.is_some());
        assert_eq!(stored.root.results_ready_missing.as_ref(), Some(missing));
    }

    #[test]
    fn a_near_deadline_defers_the_rest() {
        let now = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
        let store = store_with_two_waiting_batches(now);
        let settings = TimerSettings::default();
        let report = block_on(sweep(
            &store,
            plus(now, 3600),
            &settings,
            Some(Instant::now()),
        ))
        .unwrap();
        assert_eq!(
            (report.overdue, report.deferred, report.emitted.len()),
            (1, 1, 0)
        );
    }

    /// The in-memory store whose batch loads hang (a DynamoDB call that never answers).
    struct HangingLoads(InMemoryStore);

    impl AggregateStore for HangingLoads {
        async fn load(
            &self,
            batch_id: &str,
        ) -> Result<ras_domain::model::BatchAggregate, StoreError> {
            tokio::time::sleep(Duration::from_secs(30)).await;
            self.0.load(batch_id).await
        }

        async fn commit(
            &self,
            marker: &ras_domain::ports::IdempotencyMarker,
            plan: &ras_domain::plan::Plan,
        ) -> Result<ras_domain::ports::CommitOutcome, StoreError> {
            self.0.commit(marker, plan).await
        }
    }

    impl AwaitingFactsIndex for HangingLoads {
        async fn awaiting_since(
            &self,
            cutoff: Timestamp,
            limit: usize,
        ) -> Result<Vec<String>, StoreError> {
            self.0.awaiting_since(cutoff, limit).await
        }
    }

    #[tokio::test]
    async fn an_emission_near_the_deadline_is_cut_before_deadline_minus_reserve() {
        let now = Timestamp::parse("2025-11-27T11:00:00Z").unwrap();
        let store = HangingLoads(store_with_two_waiting_batches(now));
        let settings = TimerSettings {
            deadline_reserve: Duration::from_millis(300),
            ..TimerSettings::default()
        };
        // 500 ms left, reserve 300 ms: the emission may start but only has 200 ms (before the
        // fix it ran as long as its DynamoDB calls, here 30 s, past the deadline).
        let started = Instant::now();
        let deadline = started + Duration::from_millis(500);
        let report = sweep(&store, plus(now, 3600), &settings, Some(deadline))
            .await
            .unwrap();
        let done = Instant::now();
        assert!(
            done + Duration::from_millis(300) <= deadline + Duration::from_millis(60),
            "the run answered {:?} after the start; the deadline was at 500 ms (reserve 300 ms)",
            done - started
        );
        assert_eq!(
            (report.overdue, report.deferred, report.emitted.len()),
            (1, 1, 0)
        );
        assert!(report.failed.is_empty());
    }
}
