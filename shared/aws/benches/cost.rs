//! Issue 15, "measure first": what one consumed record costs in DynamoDB capacity and CPU, by
//! batch size (3, 30, 500, 2,000 essays).
//!
//! A whole HuleEdu batch (`ras_domain::testing::batches::batch_records`: the registration, per
//! essay its slot assignment and spellcheck result, ELS's spellcheck outcome, the CJ result with
//! an anchor, ELS's CJ outcome, BOS's pipeline completion) is replayed through the ingest use
//! case itself (`service::process_record`) over a store that does what `DynamoStore` does
//! without the network:
//!
//! * `load_essay` (a per-essay record): the root and essay items a consistent `BatchGetItem`
//!   returns; when the root and the essay are not enough (`rules::apply_to_essay`), `load`:
//!   the items a consistent `Query` of the batch partition returns — the items the earlier
//!   commits put, as they were encoded — both decoded by `items::decode_aggregate`;
//! * `commit`: `commit::commit_writes` + `commit::layout` and `Write::into_transact_item`, the
//!   `TransactWriteItems` request (and the chunk pre-writes) `DynamoStore::commit` sends; the
//!   conditions DynamoDB would check are checked, and the request is applied to in-memory
//!   tables.
//!
//! The final aggregate is checked equal to the one the domain's in-memory store holds after the
//! same records, and the outbox to hold every published message.
//!
//! Every request is costed with `ras_aws::dynamo::capacity` (DynamoDB's documented item-size
//! and rounding rules; index writes by `template.yaml`'s projections) against the items it
//! reads or replaces. The tables are printed first (Markdown); criterion then measures the CPU
//! of one record — `process_record` over a snapshot of the batch: load (the items read
//! decoded), decode of the record, plan, commit preparation (the request built) — for a
//! per-essay record in the middle and at the end of the batch. Not included: the SDK's
//! (de)serialisation of the requests and responses, and the network. The items a response
//! hands over are built right before each iteration, outside the measured time
//! (`iter_batched`, `PerIteration`: hot in cache, as the SDK leaves them): in the Lambda the
//! SDK builds them while parsing the response, which is not measured either; their decoding is.
//!
//! ```sh
//! cargo bench -p ras-aws --bench cost                       # tables + CPU
//! RAS_COST_REPORT_ONLY=1 cargo bench -p ras-aws --bench cost # tables only
//! RAS_COST_SIZES=3,30 cargo bench -p ras-aws --bench cost   # other batch sizes
//! ```
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it replays the 3- and 30-essay
//! batches only and runs each benchmark once.

use criterion::{black_box, BatchSize, Criterion};
use ras_aws::config::StoreConfig;
use ras_aws::dynamo::capacity::{
    self, item_size, Consistency, MemoryDatabase, ReadCost, WriteCost, OUTBOX_TABLE, STATE_TABLE,
};
use ras_aws::dynamo::commit::{commit_writes, layout, Condition};
use ras_aws::dynamo::errors::ActionRole;
use ras_aws::dynamo::items::{self, batch_pk, decode_aggregate, get_s, Item};
use ras_domain::contracts::Timestamp;
use ras_domain::model::BatchAggregate;
use ras_domain::plan::Plan;
use ras_domain::ports::{AggregateStore, CommitOutcome, IdempotencyMarker, StoreError};
use ras_domain::rules::{self, RecordContext};
use ras_domain::service::{process_record, ConsumedRecord, DecodedRecord, RecordOutcome};
use ras_domain::testing::batches::{batch_records, replay_in_memory, ticking_clock, BatchShape};
use ras_domain::testing::block_on;
use ras_domain::testing::events::{self as ev, TestRecord};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

mod support;
use support::{kb, units};
const BATCH: &str = "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01";
const TEACHER: &str = "teacher-7f3a9c";
/// `BatchWriteItem` takes 25 puts (the store's chunk pre-writes).
const BATCH_WRITE_MAX: usize = 25;

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent {
        kind: "bench",
        message: e.to_string(),
    }
}

/// What one record's store calls cost.
#[derive(Clone, Debug, Default)]
struct RecordCost {
    read: ReadCost,
    /// `TransactWriteItems` requests and their actions.
    transactions: u32,
    actions: u32,
    /// `BatchWriteItem` requests (CJ chunks pre-written).
    batch_writes: u32,
    /// Per table (logical name): the writes.
    writes: BTreeMap<&'static str, WriteCost>,
}

impl RecordCost {
    fn add(&mut self, other: &RecordCost) {
        self.read.add(&other.read);
        self.transactions += other.transactions;
        self.actions += other.actions;
        self.batch_writes += other.batch_writes;
        for (table, cost) in &other.writes {
            self.writes.entry(table).or_default().add(cost);
        }
    }

    fn write_bytes(&self) -> u64 {
        self.writes.values().map(|w| w.bytes).sum()
    }

    fn table_units(&self) -> u64 {
        self.writes.values().map(|w| w.units).sum()
    }

    fn index_units(&self) -> u64 {
        self.writes.values().map(WriteCost::index_units).sum()
    }

    fn total_write_units(&self) -> u64 {
        self.table_units() + self.index_units()
    }

    /// `index (puts+deletes): units`, the indexes written.
    fn index_breakdown(&self) -> String {
        let parts: Vec<String> = self
            .writes
            .values()
            .flat_map(|w| w.indexes.iter())
            .filter(|(_, w)| w.writes() > 0)
            .map(|(name, w)| format!("{name} {}", w.units))
            .collect();
        if parts.is_empty() {
            "—".into()
        } else {
            parts.join(", ")
        }
    }
}

/// `DynamoStore` without the network (module docs). `apply: false` builds the requests and
/// stops there (the CPU benchmark: the tables stay as they are).
struct SimulatedStore {
    config: StoreConfig,
    db: Mutex<MemoryDatabase>,
    apply: bool,
    current: Mutex<RecordCost>,
    /// The CPU benchmark's next `BatchGetItem` response: the items as the SDK hands them over,
    /// built outside the measured time (the SDK's deserialisation is not measured, module docs).
    staged: Mutex<Option<Vec<Item>>>,
}

impl SimulatedStore {
    fn new(apply: bool) -> Self {
        let config = StoreConfig::default();
        let db = MemoryDatabase::new()
            .with_table(&config.state_table, &STATE_TABLE)
            .with_table(&config.outbox_table, &OUTBOX_TABLE);
        SimulatedStore {
            config,
            db: Mutex::new(db),
            apply,
            current: Mutex::new(RecordCost::default()),
            staged: Mutex::new(None),
        }
    }

    fn with_db(db: MemoryDatabase, apply: bool) -> Self {
        let store = SimulatedStore::new(apply);
        *store.db.lock().expect("db") = db;
        store
    }

    /// The items of the next `load_essay` (taken by it).
    fn stage(&self, items: Vec<Item>) {
        *self.staged.lock().expect("staged") = Some(items);
    }

    fn take_cost(&self) -> RecordCost {
        std::mem::take(&mut *self.current.lock().expect("cost"))
    }

    fn snapshot(&self) -> MemoryDatabase {
        self.db.lock().expect("db").clone()
    }

    fn logical(&self, table: &str) -> &'static str {
        if table == self.config.state_table {
            STATE_TABLE.name
        } else {
            OUTBOX_TABLE.name
        }
    }

    /// What DynamoDB's condition checks of the transaction decide (`None`: it commits).
    fn check_conditions(
        &self,
        db: &MemoryDatabase,
        writes: &[ras_aws::dynamo::commit::Write],
        marker: &IdempotencyMarker,
    ) -> Result<Option<CommitOutcome>, StoreError> {
        for write in writes {
            let table = match write.table {
                ras_aws::dynamo::commit::Table::State => &self.config.state_table,
                ras_aws::dynamo::commit::Table::Outbox => &self.config.outbox_table,
            };
            let existing = db
                .table(table)
                .and_then(|t| t.get(&write.item))
                .map_err(store_error)?;
            let holds = match (&write.condition, existing) {
                (Condition::None, _) => true,
                (Condition::NotExists(_), existing) => existing.is_none(),
                (Condition::Version(expected), Some(item)) => {
                    item.get(items::VERSION) == Some(&items::n(expected))
                }
                (Condition::Version(_), None) => false,
                (Condition::Unversioned, existing) => {
                    existing.is_none_or(|item| !item.contains_key(items::VERSION))
                }
            };
            if holds {
                continue;
            }
            return Ok(Some(match write.role {
                ActionRole::Marker => {
                    let existing = existing
                        .and_then(|i| get_s(i, items::PAYLOAD_HASH))
                        .unwrap_or_default();
                    if existing == marker.payload_hash {
                        CommitOutcome::Duplicate
                    } else {
                        CommitOutcome::PayloadConflict {
                            existing_hash: existing.to_string(),
                        }
                    }
                }
                _ => CommitOutcome::VersionConflict,
            }));
        }
        Ok(None)
    }
}

impl AggregateStore for SimulatedStore {
    /// As `DynamoStore::load_essay`: one consistent `BatchGetItem` of the root and the essay.
    async fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> Result<BatchAggregate, StoreError> {
        if let Some(found) = self.staged.lock().expect("staged").take() {
            return Ok(decode_aggregate(batch_id, found)?);
        }
        let keys = items::root_and_essay_keys(batch_id, essay_id);
        let found = {
            let db = self.db.lock().expect("db");
            let table = db.table(&self.config.state_table).map_err(store_error)?;
            if self.apply {
                let read = table
                    .get_cost(&keys, Consistency::Strong)
                    .map_err(store_error)?;
                self.current.lock().expect("cost").read.add(&read);
            }
            keys.iter()
                .filter_map(|k| table.get(k).ok().flatten().cloned())
                .collect::<Vec<_>>()
        };
        Ok(decode_aggregate(batch_id, found)?)
    }

    async fn load(&self, batch_id: &str) -> Result<BatchAggregate, StoreError> {
        let pk = batch_pk(batch_id);
        let items = {
            let db = self.db.lock().expect("db");
            let table = db.table(&self.config.state_table).map_err(store_error)?;
            if self.apply {
                let read = table.query_cost(&pk, Consistency::Strong);
                self.current.lock().expect("cost").read.add(&read);
            }
            table.query_items(&pk)
        };
        Ok(decode_aggregate(batch_id, items)?)
    }

    async fn commit(
        &self,
        marker: &IdempotencyMarker,
        plan: &Plan,
    ) -> Result<CommitOutcome, StoreError> {
        let layout = layout(commit_writes(marker, plan)?)?;
        if self.apply {
            let db = self.db.lock().expect("db");
            if let Some(outcome) = self.check_conditions(&db, &layout.transaction, marker)? {
                return Ok(outcome);
            }
        }
        let prewrite = layout.prewrite;
        let actions = layout
            .transaction
            .into_iter()
            .map(|w| w.into_transact_item(&self.config))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.apply {
            black_box((&prewrite, &actions));
            return Ok(CommitOutcome::Committed);
        }
        let mut db = self.db.lock().expect("db");
        let mut cost = self.current.lock().expect("cost");
        if !prewrite.is_empty() {
            cost.batch_writes += prewrite.len().div_ceil(BATCH_WRITE_MAX) as u32;
            let written = db
                .batch_put(&self.config.state_table, prewrite)
                .map_err(store_error)?;
            cost.writes
                .entry(STATE_TABLE.name)
                .or_default()
                .add(&written);
        }
        let tx = db.transact_write(&actions).map_err(store_error)?;
        cost.transactions += 1;
        cost.actions += tx.actions;
        for (table, written) in &tx.tables {
            cost.writes
                .entry(self.logical(table))
                .or_default()
                .add(written);
        }
        Ok(CommitOutcome::Committed)
    }
}

/// What a record is, for the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Registration,
    Slot,
    Spellcheck,
    PhaseOutcome,
    CjResult,
    PipelineCompleted,
}

fn kind_of(record: &TestRecord) -> Kind {
    match record.topic {
        "huleedu.batch.essays.registered.v1" => Kind::Registration,
        "huleedu.els.essay.slot.assigned.v1" => Kind::Slot,
        "huleedu.essay.spellcheck.results.v1" => Kind::Spellcheck,
        "huleedu.els.batch.phase.outcome.v1" => Kind::PhaseOutcome,
        "huleedu.assessment.result.published.v1" => Kind::CjResult,
        "huleedu.batch.pipeline.completed.v1" => Kind::PipelineCompleted,
        other => panic!("unexpected topic {other}"),
    }
}

/// One record of the replay: what it is, what it cost, what it published.
struct Step {
    label: String,
    kind: Kind,
    cost: RecordCost,
    published: usize,
}

/// A replayed batch.
struct Replay {
    essays: usize,
    records: Vec<TestRecord>,
    steps: Vec<Step>,
    /// Tables before chosen records (for the CPU benchmark), by record index.
    snapshots: BTreeMap<usize, MemoryDatabase>,
    /// The tables at the end.
    end: MemoryDatabase,
    /// Record indexes of the per-essay records benchmarked: (label, index).
    cpu_points: Vec<(&'static str, usize)>,
}

fn now_start() -> Timestamp {
    ev::at_minute(30.0)
}

fn replay(essays: usize) -> Replay {
    let records = batch_records(BATCH, TEACHER, &BatchShape::all_succeed(essays), 0);
    let kinds: Vec<Kind> = records.iter().map(kind_of).collect();
    let spellchecks: Vec<usize> = (0..records.len())
        .filter(|&i| kinds[i] == Kind::Spellcheck)
        .collect();
    let slots: Vec<usize> = (0..records.len())
        .filter(|&i| kinds[i] == Kind::Slot)
        .collect();
    let middle = essays / 2;
    let cpu_points = vec![
        ("slot_middle", slots[middle]),
        ("spellcheck_middle", spellchecks[middle]),
        ("spellcheck_last", spellchecks[essays - 1]),
    ];
    let store = SimulatedStore::new(true);
    let mut clock = ticking_clock(now_start());
    let mut steps = Vec::with_capacity(records.len());
    let mut snapshots = BTreeMap::new();
    let mut phase_outcomes = 0;
    let mut essay_position = BTreeMap::new();
    for (i, &index) in slots.iter().enumerate() {
        essay_position.insert(index, i);
    }
    for (i, &index) in spellchecks.iter().enumerate() {
        essay_position.insert(index, i);
    }
    for (index, record) in records.iter().enumerate() {
        if cpu_points.iter().any(|(_, at)| *at == index) {
            snapshots.insert(index, store.snapshot());
        }
        let now = clock();
        let consumed = ConsumedRecord {
            topic: record.topic,
            value: &record.value,
            record_time: now,
        };
        let outcome = block_on(process_record(&store, consumed, now))
            .unwrap_or_else(|e| panic!("{essays} essays, record {index}: {e}"));
        let RecordOutcome::Applied { published, .. } = outcome else {
            panic!("{essays} essays, record {index}: {outcome:?}");
        };
        let kind = kinds[index];
        let label = match kind {
            Kind::Registration => "registration".to_string(),
            Kind::Slot => format!("slot assigned, essay {}", essay_position[&index] + 1),
            Kind::Spellcheck => format!("spellcheck result, essay {}", essay_position[&index] + 1),
            Kind::PhaseOutcome => {
                phase_outcomes += 1;
                match phase_outcomes {
                    1 => "ELS phase outcome (spellcheck)".to_string(),
                    _ => "ELS phase outcome (cj_assessment)".to_string(),
                }
            }
            Kind::CjResult => "CJ assessment result".to_string(),
            Kind::PipelineCompleted => "BOS pipeline completed".to_string(),
        };
        steps.push(Step {
            label,
            kind,
            cost: store.take_cost(),
            published,
        });
    }
    let end = store.snapshot();
    let state = end
        .table(&StoreConfig::default().state_table)
        .expect("state");
    let aggregate =
        decode_aggregate(BATCH, state.query_items(&batch_pk(BATCH))).expect("final aggregate");
    assert!(
        aggregate.root.results_ready.is_some(),
        "{essays} essays: the batch completed and published its results"
    );
    // The simulated tables hold what the domain's in-memory store holds after the same records
    // at the same times: the replay went through the store's encoding and back unchanged.
    let memory = replay_in_memory(&records, ticking_clock(now_start()));
    assert_eq!(Some(&aggregate), memory.aggregate(BATCH).as_ref());
    let published: usize = steps.iter().map(|s| s.published).sum();
    assert_eq!(published, memory.outbox().len());
    assert_eq!(
        end.table(&StoreConfig::default().outbox_table)
            .expect("outbox")
            .len(),
        published
    );
    Replay {
        essays,
        records,
        steps,
        snapshots,
        end,
        cpu_points,
    }
}

// ------------------------------------------------------------------------------- report

/// Size of a slot assignment's idempotency marker (`event_id(2)`: the first essay's slot).
/// Markers live in partitions of their own.
fn marker_size(state: &capacity::MemoryTable) -> u64 {
    state
        .query_items(&items::marker_pk(&format!("event:{}", ev::event_id(2))))
        .first()
        .map(item_size)
        .expect("the marker of the first slot assignment")
}

fn per_record_row(replay: &Replay, step: &Step) -> String {
    let c = &step.cost;
    let state = c.writes.get(STATE_TABLE.name).cloned().unwrap_or_default();
    let outbox = c.writes.get(OUTBOX_TABLE.name).cloned().unwrap_or_default();
    let label = match step.published {
        0 => step.label.clone(),
        n => format!("{} (publishes {n})", step.label),
    };
    format!(
        "| {} | {} | {} / {} | {} | {} | **{}** | {} + {} | {} | {} / {} | {} | **{}** |",
        replay.essays,
        label,
        c.read.requests,
        c.transactions + c.batch_writes,
        c.read.items,
        kb(c.read.bytes),
        units(c.read.units),
        state.items,
        outbox.items,
        kb(c.write_bytes()),
        state.units,
        outbox.units,
        c.index_breakdown(),
        c.total_write_units(),
    )
}

fn print_per_record(replays: &[Replay]) {
    println!("### Per record\n");
    println!(
        "| essays | record | read / write requests | items read | bytes read | RCU | items written (state + outbox) | bytes written | table WCU (state / outbox) | index WCU | WCU total |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for replay in replays {
        let n = replay.essays;
        let middle = n / 2 + 1;
        for step in &replay.steps {
            let essay_label = |what: &str, essay: usize| format!("{what}, essay {essay}");
            let shown = match step.kind {
                Kind::Slot => {
                    step.label == essay_label("slot assigned", middle)
                        || step.label == essay_label("slot assigned", n)
                }
                Kind::Spellcheck => {
                    step.label == essay_label("spellcheck result", middle)
                        || step.label == essay_label("spellcheck result", n)
                }
                _ => true,
            };
            if shown {
                println!("{}", per_record_row(replay, step));
            }
        }
    }
    println!();
}

fn print_per_batch(replays: &[Replay]) {
    println!("### Per batch\n");
    println!(
        "| essays | records | read requests (`Query` pages, `BatchGetItem`) | `TransactWriteItems` | `BatchWriteItem` | bytes read | RCU | bytes written | table WCU | index WCU (by index) | WCU total | per record: RCU / WCU | per-essay record: RCU / WCU (mean; max) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for replay in replays {
        let mut total = RecordCost::default();
        for step in &replay.steps {
            total.add(&step.cost);
        }
        let records = replay.steps.len() as f64;
        let per_essay: Vec<&Step> = replay
            .steps
            .iter()
            .filter(|s| matches!(s.kind, Kind::Slot | Kind::Spellcheck))
            .collect();
        let count = per_essay.len() as f64;
        let rcu_mean = per_essay.iter().map(|s| s.cost.read.units).sum::<f64>() / count;
        let wcu_mean = per_essay
            .iter()
            .map(|s| s.cost.total_write_units() as f64)
            .sum::<f64>()
            / count;
        let rcu_max = per_essay
            .iter()
            .map(|s| s.cost.read.units)
            .fold(0.0, f64::max);
        let wcu_max = per_essay
            .iter()
            .map(|s| s.cost.total_write_units())
            .max()
            .unwrap_or(0);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | **{}** | {:.1} / {:.1} | **{:.1} / {:.1}** ({} / {}) |",
            replay.essays,
            replay.steps.len(),
            total.read.requests,
            total.transactions,
            total.batch_writes,
            kb(total.read.bytes),
            units(total.read.units),
            kb(total.write_bytes()),
            total.table_units(),
            total.index_units(),
            total.index_breakdown(),
            total.total_write_units(),
            total.read.units / records,
            total.total_write_units() as f64 / records,
            rcu_mean,
            wcu_mean,
            units(rcu_max),
            wcu_max,
        );
    }
    println!();
}

/// Where the bytes are: sizes of the items stored at the end of the batch, by item type.
fn print_items(replays: &[Replay]) {
    println!("### Stored items at the end of the batch (size per item)\n");
    println!("| essays | root | roster | essay (slot + spellcheck) | phase outcome | CJ header | CJ chunks | marker | outbox items |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let config = StoreConfig::default();
    for replay in replays {
        let state = replay.end.table(&config.state_table).expect("state");
        let mut by_type: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for item in state.query_items(&batch_pk(BATCH)) {
            let ty = get_s(&item, items::ITEM_TYPE).unwrap_or("?").to_string();
            by_type.entry(ty).or_default().push(item_size(&item));
        }
        let marker = marker_size(state);
        let outbox = replay.end.table(&config.outbox_table).expect("outbox");
        let outbox_sizes: Vec<u64> = outbox
            .query_items(BATCH)
            .iter()
            .chain(outbox.query_items(TEACHER).iter())
            .map(item_size)
            .collect();
        let describe = |sizes: Option<&Vec<u64>>| match sizes {
            None => "—".to_string(),
            Some(sizes) if sizes.len() == 1 => kb(sizes[0]),
            Some(sizes) => format!(
                "{} × {}–{}",
                sizes.len(),
                kb(*sizes.iter().min().unwrap_or(&0)),
                kb(*sizes.iter().max().unwrap_or(&0))
            ),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            replay.essays,
            describe(by_type.get("batch")),
            describe(by_type.get("roster")),
            describe(by_type.get("essay")),
            describe(by_type.get("phase")),
            describe(by_type.get("cj_job")),
            describe(by_type.get("cj_chunk")),
            kb(marker),
            describe(Some(&outbox_sizes)),
        );
    }
    println!();
}

// ------------------------------------------------------------------------------ CPU

fn bench_cpu(c: &mut Criterion, replays: &[Replay]) {
    let mut group = c.benchmark_group("cost_cpu");
    for replay in replays {
        if replay.essays >= 500 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(5));
        } else {
            group.sample_size(50);
            group.measurement_time(Duration::from_secs(3));
        }
        for (name, index) in &replay.cpu_points {
            let record = &replay.records[*index];
            let store = SimulatedStore::with_db(replay.snapshots[index].clone(), false);
            let response = essay_response(record, &replay.snapshots[index]);
            let now = now_start();
            group.bench_function(format!("{}_essays/{name}", replay.essays), |b| {
                b.iter_batched(
                    || response.clone(),
                    |items| {
                        store.stage(items);
                        let consumed = ConsumedRecord {
                            topic: record.topic,
                            value: black_box(&record.value),
                            record_time: now,
                        };
                        block_on(process_record(&store, consumed, now)).expect("applies")
                    },
                    BatchSize::PerIteration,
                )
            });
            if *name == "spellcheck_last" {
                bench_parts(&mut group, replay, record, &replay.snapshots[index]);
            }
        }
    }
    group.finish();
}

/// What the `BatchGetItem` of a per-essay record returns from `tables`: its batch's root and
/// essay items.
fn essay_response(record: &TestRecord, tables: &MemoryDatabase) -> Vec<Item> {
    let state = tables
        .table(&StoreConfig::default().state_table)
        .expect("state");
    let DecodedRecord::Event { event, .. } = DecodedRecord::decode(record.topic, &record.value)
    else {
        panic!("the record decodes");
    };
    let essay_id = event.payload.essay_id().expect("a per-essay record");
    items::root_and_essay_keys(BATCH, essay_id)
        .iter()
        .filter_map(|key| state.get(key).expect("key").cloned())
        .collect()
}

/// The three parts of one record's CPU: `load` (the root and essay items as the SDK hands them
/// over, built before each iteration, decoded), `plan` (the record decoded, its context,
/// `rules::apply_to_essay`), `commit` (the items of the transaction encoded, laid out, the
/// request built).
fn bench_parts(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    replay: &Replay,
    record: &TestRecord,
    tables: &MemoryDatabase,
) {
    let config = StoreConfig::default();
    let now = now_start();
    // The path `process_record` takes: a per-essay record before ELS's first outcome reads the
    // root and its essay (`load_essay`: two items) and is planned from them.
    let items = essay_response(record, tables);
    let n = replay.essays;
    group.bench_function(format!("{n}_essays/spellcheck_last/load"), |b| {
        b.iter_batched(
            || items.clone(),
            |items| decode_aggregate(BATCH, black_box(items)).expect("decodes"),
            BatchSize::PerIteration,
        )
    });
    let view = decode_aggregate(BATCH, items.clone()).expect("decodes");
    let plan = |value: &[u8]| {
        let DecodedRecord::Event {
            event,
            event_key,
            payload_hash,
        } = DecodedRecord::decode(record.topic, value)
        else {
            panic!("the record decodes");
        };
        let ctx = RecordContext::for_event(&event, event_key.clone(), now, now);
        let plan = rules::apply_to_essay(&view, &event.payload, &ctx)
            .expect("plans")
            .expect("the root and its essay are enough");
        (plan, event_key, payload_hash)
    };
    group.bench_function(format!("{n}_essays/spellcheck_last/plan"), |b| {
        b.iter(|| plan(black_box(&record.value)).0)
    });
    let (plan, event_key, payload_hash) = plan(&record.value);
    let marker = IdempotencyMarker::new(event_key, payload_hash, record.topic, BATCH, now);
    group.bench_function(format!("{n}_essays/spellcheck_last/commit"), |b| {
        b.iter(|| {
            let layout =
                layout(commit_writes(&marker, black_box(&plan)).expect("writes")).expect("layout");
            let request: Vec<_> = layout
                .transaction
                .into_iter()
                .map(|w| w.into_transact_item(&config).expect("request"))
                .collect();
            black_box(request)
        })
    });
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it
    // (criterion's test mode: each benchmark once), where the small batches check the replay.
    let sizes = support::sizes("RAS_COST_SIZES", &[3, 30, 500, 2_000], &[3, 30]);
    let replays: Vec<Replay> = sizes.iter().map(|&n| replay(n)).collect();
    println!("## DynamoDB cost per record (capacity model: ras_aws::dynamo::capacity)\n");
    print_per_record(&replays);
    print_per_batch(&replays);
    print_items(&replays);
    if std::env::var_os("RAS_COST_REPORT_ONLY").is_some() {
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    bench_cpu(&mut criterion, &replays);
    criterion.final_summary();
}
