//! The reliability suite (issue 7): the real ingest and relay handlers over in-memory ports,
//! with a seeded fault at any external call, fed by simulated Lambda event source mappings
//! that batch, retry, redeliver and reorder. The invariants are checked against a model: the
//! same valid records applied in order, without faults. See `docs/reliability.md`.
//!
//! * [`Scenario::generate`] — batches (spellcheck-only or full pipelines), duplicates (the same
//!   record again, or re-published with a new event id), poison records, spread over the
//!   topics' partitions in a random order.
//! * [`run`] — the MSK event source into `ingest::handler::process_event` and the outbox
//!   stream into `relay::Relay::handle_event`, concurrently, both simulated with Lambda's
//!   documented semantics by [`crate::event_source`] (per-partition / per-shard order, batches
//!   of random size, resumption from the lowest reported offset / sequence number, failed
//!   invocations — lost responses, function timeouts — retried or bisected, rewinds =
//!   redeliveries, two concurrent invocations on disjoint partitions), configured as
//!   `template.yaml` configures them. Faults come from a [`crate::faults::Chaos`] injector
//!   until the scenario's healing round (storms, deadline pressure and unsendable messages
//!   too); then the run must drain, and nothing may have been skipped.
//! * [`check`] — the invariants; every violation is reported.
//!
//! Modules: `scenario` (what is fed in), `model` (what it must come to), `simulation` (the
//! run), `invariants` (what is observed and checked).
//!
//! Everything runs on one thread in virtual time (`tokio::time::pause`): timeouts cost
//! nothing and a seed replays the same run.

mod invariants;
mod model;
mod scenario;
mod simulation;

pub use invariants::*;
pub use model::*;
pub use scenario::*;
pub use simulation::*;

use crate::faults::{Call, Fault};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One line about a run.
pub fn summary(scenario: &Scenario, run: &Run, seen: &Observed) -> String {
    let s = &run.stats;
    let mut line = format!(
        "seed {}: {} batches, {} records ({} poison) in {} partitions; {} rounds, {} ingest \
         invocations ({} record deliveries), {} relay invocations; {} committed messages, {} \
         deliveries, {} dead letters, {} parked; {} whole-batch retries, {} rewinds, {} bisects, \
         {} timed-out and {} deadline-pressed invocations, {} storm rounds ({:?}); faults:",
        scenario.seed,
        scenario.batches.len(),
        scenario.records().count(),
        scenario.poison().len(),
        scenario.partitions.len(),
        s.rounds,
        s.ingest_invocations,
        s.record_deliveries,
        s.relay_invocations,
        seen.committed.len(),
        seen.delivered.len(),
        seen.dead_letters.len(),
        seen.parked.len(),
        s.whole_retries,
        s.rewinds,
        s.bisects,
        s.timeouts,
        s.pressured,
        s.storm_rounds,
        scenario.knobs.storm.map(|s| (s.fault, s.calls)),
    );
    for ((call, fault), n) in run.chaos.injected() {
        let _ = write!(line, " {call:?}/{fault:?}={n}");
    }
    line
}

/// The outcome of one seed: the summary line, the faults injected, the violations.
pub struct SeedResult {
    pub seed: u64,
    pub summary: String,
    pub injected: BTreeMap<(Call, Fault), u32>,
    pub violations: Vec<String>,
    pub stats: Stats,
    /// Messages parked (unsendable).
    pub parked: usize,
}

/// Generate, model, run and check one seed. Call it in a paused single-threaded runtime
/// (`tokio::time::pause`) for the run to be reproducible.
pub async fn run_seed(seed: u64) -> SeedResult {
    let scenario = Scenario::generate(seed);
    let model = match model(&scenario).await {
        Ok(model) => model,
        Err(e) => {
            return SeedResult {
                seed,
                summary: format!("seed {seed}: bad scenario"),
                injected: BTreeMap::new(),
                violations: vec![e],
                stats: Stats::default(),
                parked: 0,
            }
        }
    };
    let run = run(&scenario).await;
    let seen = Observed::of(&scenario, &run);
    SeedResult {
        seed,
        summary: summary(&scenario, &run, &seen),
        injected: run.chaos.injected(),
        violations: check(&scenario, &model, &seen),
        stats: run.stats.clone(),
        parked: seen.parked.len(),
    }
}
