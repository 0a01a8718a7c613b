//! The scenarios: batches, duplicates and poison records spread over the topics' partitions
//! in a random order, with the knobs of a run (faults, storms, concurrency).

use crate::faults::{Fault, FaultRates, StormCalls};
use crate::msk::{MskRecord, MskValue};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ras_domain::contracts::to_python_json;
use ras_domain::testing::events::{self as ev, at_minute, StudentResult, TestRecord};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// A topic no function subscribes to (its records are poison).
pub const UNKNOWN_TOPIC: &str = "huleedu.unknown.events.v1";

/// Why a poison record can never be applied, and the `error_kind` its dead letter must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Poison {
    InvalidJson,
    InvalidUtf8,
    SchemaViolation,
    ConstraintViolation,
    UnknownTopic,
    Tombstone,
    InvalidBase64,
    /// An event id already applied, with other bytes.
    PayloadConflict,
}

impl Poison {
    pub const ALL: [Poison; 8] = [
        Poison::InvalidJson,
        Poison::InvalidUtf8,
        Poison::SchemaViolation,
        Poison::ConstraintViolation,
        Poison::UnknownTopic,
        Poison::Tombstone,
        Poison::InvalidBase64,
        Poison::PayloadConflict,
    ];

    pub fn error_kind(&self) -> &'static str {
        match self {
            Poison::InvalidJson => "invalid_json",
            Poison::InvalidUtf8 => "invalid_utf8",
            Poison::SchemaViolation => "schema_violation",
            Poison::ConstraintViolation => "constraint_violation",
            Poison::UnknownTopic => "unknown_topic",
            Poison::Tombstone => "missing_value",
            Poison::InvalidBase64 => "invalid_base64",
            Poison::PayloadConflict => "payload_conflict",
        }
    }
}

/// One Kafka record of a scenario.
#[derive(Clone, Debug)]
pub struct ScenarioRecord {
    pub record: MskRecord,
    /// `None`: a valid record (to be applied once in effect).
    pub poison: Option<Poison>,
}

impl ScenarioRecord {
    /// `(topic, partition, offset)`: what identifies a record in dead letters and reports.
    pub fn id(&self) -> RecordId {
        (
            self.record.topic.clone(),
            self.record.partition,
            self.record.offset,
        )
    }
}

pub type RecordId = (String, i64, i64);

/// How a run's event sources and faults behave (drawn per scenario).
#[derive(Clone, Debug)]
pub struct Knobs {
    pub rates: FaultRates,
    /// From this round on, no more faults, whole-batch retries or rewinds.
    pub heal_after: usize,
    pub partition_concurrency: usize,
    pub max_attempts: u32,
    /// Records per partition per invocation, at most.
    pub max_chunk: usize,
    /// Stream records per relay invocation, at most.
    pub max_stream_chunk: usize,
    /// Chance that an invocation fails as a whole (its response is lost: everything redelivered).
    pub whole_retry: f64,
    /// Chance per round that a partition rewinds to an earlier, committed offset (rebalance).
    pub rewind: f64,
    /// A stretch of rounds in which every store call fails (issue 11).
    pub storm: Option<Storm>,
    /// Chance that an invocation starts with no time left before its deadline (issue 11).
    pub deadline_pressure: f64,
    /// Share of the published messages SQS refuses for good (issue 11).
    pub unsendable: f64,
}

/// A storm: from round `from`, for `rounds` rounds, every `AggregateStore` call fails with
/// `fault` (`Fault::Throttled`: a throttle storm; `Fault::AccessDenied`: a deploy whose IAM
/// changes have not propagated). Longer than the 10-retry cap Lambda applies to a Kafka source
/// with infinite retries and an on-failure destination, and than the handler's own attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Storm {
    pub fault: Fault,
    pub calls: StormCalls,
    pub from: usize,
    pub rounds: usize,
}

impl Storm {
    pub fn covers(&self, round: usize) -> bool {
        round >= self.from && round < self.from + self.rounds
    }
}

/// What the records are and in which order they are produced.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub batches: Vec<String>,
    /// Every record, by partition key (`<topic>-<partition>`), in offset order.
    pub partitions: BTreeMap<String, Vec<ScenarioRecord>>,
    /// The valid records in their logical (production) order: the model applies these.
    pub in_order: Vec<MskRecord>,
    pub knobs: Knobs,
}

struct Gen {
    rng: StdRng,
    prefix: String,
}

impl Gen {
    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    /// The records of one batch, in production order.
    fn batch(&mut self, index: usize, teacher: &str) -> (String, Vec<TestRecord>) {
        let batch = format!("{}-b{index}", self.prefix);
        let essays: Vec<String> = (0..self.rng.random_range(1..=6))
            .map(|j| format!("{batch}-e{j}"))
            .collect();
        let essay_refs: Vec<&str> = essays.iter().map(String::as_str).collect();
        let full = self.rng.random_bool(0.6);
        let t0 = self.rng.random_range(0.0..60.0);
        let mut out = vec![ev::registration(
            self.uuid(),
            &batch,
            teacher,
            &essay_refs,
            at_minute(t0),
        )];
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for (j, essay) in essays.iter().enumerate() {
            let at = t0 + 1.0 + j as f64 * 0.1;
            if self.rng.random_bool(0.85) {
                out.push(ev::slot_assigned(self.uuid(), &batch, essay, at_minute(at)));
            }
            let success = self.rng.random_bool(0.8);
            let status = if success {
                "spellchecked_success"
            } else {
                "spellcheck_failed"
            };
            out.push(ev::spellcheck_result(
                self.uuid(),
                &batch,
                essay,
                status,
                at_minute(at + 1.0),
            ));
            if success {
                ok.push(essay.as_str());
            } else {
                failed.push(essay.as_str());
            }
        }
        let outcome = |failed: &[&str]| {
            if failed.is_empty() {
                "completed_successfully"
            } else {
                "completed_with_failures"
            }
        };
        out.push(ev::phase_outcome(
            self.uuid(),
            &batch,
            "spellcheck",
            outcome(&failed),
            &ok,
            &failed,
            at_minute(t0 + 5.0),
        ));
        let mut phases = vec!["spellcheck"];
        // CJ ranks most of the essays that passed spellcheck; ELS fails the others in CJ.
        let (mut ranked, mut cj_failed) = (Vec::new(), Vec::new());
        if full {
            phases.push("cj_assessment");
            for essay in &ok {
                if self.rng.random_bool(0.85) {
                    ranked.push(*essay);
                } else {
                    cj_failed.push(*essay);
                }
            }
            if !ranked.is_empty() {
                let students: Vec<StudentResult> = ranked
                    .iter()
                    .enumerate()
                    .map(|(rank, id)| (*id, rank as i64 + 1, 1.0 - rank as f64 * 0.3, "B"))
                    .collect();
                let with_anchor = self.rng.random_bool(0.5);
                out.push(ev::assessment_result(
                    self.uuid(),
                    &batch,
                    &format!("{batch}-cj"),
                    &students,
                    with_anchor,
                    at_minute(t0 + 20.0),
                ));
            }
            out.push(ev::phase_outcome(
                self.uuid(),
                &batch,
                "cj_assessment",
                outcome(&cj_failed),
                &ranked,
                &cj_failed,
                at_minute(t0 + 21.0),
            ));
        }
        if self.rng.random_bool(0.7) {
            let all_failed: Vec<&str> = failed.iter().chain(&cj_failed).copied().collect();
            let successful = if full { ranked.len() } else { ok.len() };
            out.push(ev::pipeline_completed(
                self.uuid(),
                &batch,
                outcome(&all_failed),
                &phases,
                successful as i64,
                all_failed.len() as i64,
                at_minute(t0 + 25.0),
            ));
        }
        (batch, out)
    }
}

/// A record of the scenario before it has a partition and offset.
struct Pending {
    topic: String,
    value: MskValue,
    poison: Option<Poison>,
    /// Logical position of a valid record (its place in the model).
    logical: Option<usize>,
    /// A payload conflict goes into the partition of this (logical) record, after it.
    after: Option<usize>,
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    to_python_json(v).unwrap_or_default()
}

impl Scenario {
    pub fn generate(seed: u64) -> Scenario {
        let mut g = Gen {
            rng: StdRng::seed_from_u64(seed),
            prefix: format!("rel-{seed:x}"),
        };
        let rng = &mut g.rng;
        let knobs = Knobs {
            rates: FaultRates {
                error: rng.random_range(0.0..0.15),
                timeout: rng.random_range(0.0..0.1),
                lost_response: rng.random_range(0.0..0.15),
                partial_failure: rng.random_range(0.0..0.15),
            },
            heal_after: rng.random_range(5..60),
            partition_concurrency: rng.random_range(1..=4),
            max_attempts: rng.random_range(1..=4),
            max_chunk: rng.random_range(1..=12),
            max_stream_chunk: rng.random_range(1..=25),
            whole_retry: rng.random_range(0.0..0.2),
            rewind: rng.random_range(0.0..0.1),
            storm: None,
            deadline_pressure: 0.0,
            unsendable: 0.0,
        };
        // The faults of issue 11 come from a sequence of their own: the scenarios (records,
        // partitions, poison) stay what they were for every seed.
        let mut knobs = knobs;
        let mut extra = StdRng::seed_from_u64(seed ^ 0x1111_5eed_0000_0011);
        // Half of the seeds have a storm, every kind in any 8 consecutive seeds.
        let storm = match seed % 8 {
            0 => Some((Fault::Throttled, StormCalls::ReadsAndWrites)),
            1 => Some((Fault::AccessDenied, StormCalls::Writes)),
            2 => Some((Fault::Throttled, StormCalls::Writes)),
            3 => Some((Fault::AccessDenied, StormCalls::ReadsAndWrites)),
            _ => None,
        };
        knobs.storm = storm.map(|(fault, calls)| Storm {
            fault,
            calls,
            // Early, while the backlog is there (a run drains in a few dozen rounds).
            from: extra.random_range(0..=5),
            rounds: extra.random_range(12..=30),
        });
        if let Some(storm) = knobs.storm {
            knobs.heal_after = knobs.heal_after.max(storm.from + storm.rounds);
        }
        if extra.random_bool(0.4) {
            knobs.deadline_pressure = extra.random_range(0.05..0.3);
        }
        if extra.random_bool(0.3) {
            knobs.unsendable = extra.random_range(0.05..0.25);
        }
        let teachers: Vec<String> = (0..g.rng.random_range(1..=3))
            .map(|t| format!("{}-t{t}", g.prefix))
            .collect();
        let mut batches = Vec::new();
        let mut logical: Vec<TestRecord> = Vec::new();
        let dup_rate = g.rng.random_range(0.0..0.25);
        for i in 0..g.rng.random_range(1..=4) {
            let teacher = teachers[g.rng.random_range(0..teachers.len())].clone();
            let (batch, records) = g.batch(i, &teacher);
            batches.push(batch);
            for r in records {
                logical.push(r.clone());
                if g.rng.random_bool(dup_rate) {
                    // The same record produced twice, or the same event re-published.
                    let dup = if g.rng.random_bool(0.5) {
                        r.clone()
                    } else {
                        let id = g.uuid();
                        r.republished(id)
                    };
                    logical.push(dup);
                }
            }
        }
        let mut pending: Vec<Pending> = logical
            .iter()
            .enumerate()
            .map(|(i, r)| Pending {
                topic: r.topic.to_string(),
                value: MskValue::Bytes(r.value.clone()),
                poison: None,
                logical: Some(i),
                after: None,
            })
            .collect();
        // Reordering: production order is not consumption order.
        pending.shuffle(&mut g.rng);
        for _ in 0..g.rng.random_range(0..=6) {
            let kind = Poison::ALL[g.rng.random_range(0..Poison::ALL.len())];
            let base_index = g.rng.random_range(0..logical.len());
            let base = &logical[base_index];
            let mut json = base.json();
            let new_id = g.uuid();
            json["event_id"] = serde_json::json!(new_id.to_string());
            let (topic, value, after) = match kind {
                Poison::InvalidJson => (
                    base.topic.to_string(),
                    MskValue::Bytes(br#"{"event_id": "truncated"#.to_vec()),
                    None,
                ),
                Poison::InvalidUtf8 => (
                    base.topic.to_string(),
                    MskValue::Bytes(vec![b'{', 0xff, 0xfe, b'}']),
                    None,
                ),
                Poison::SchemaViolation => {
                    json["data"] = serde_json::json!("not an object");
                    (
                        base.topic.to_string(),
                        MskValue::Bytes(json_bytes(&json)),
                        None,
                    )
                }
                Poison::ConstraintViolation => {
                    let field = if base.topic == crate::huleedu::REGISTERED {
                        "entity_id"
                    } else {
                        "batch_id"
                    };
                    json["data"][field] = serde_json::json!("  ");
                    (
                        base.topic.to_string(),
                        MskValue::Bytes(json_bytes(&json)),
                        None,
                    )
                }
                Poison::UnknownTopic => (
                    UNKNOWN_TOPIC.to_string(),
                    MskValue::Bytes(json_bytes(&json)),
                    None,
                ),
                Poison::Tombstone => (base.topic.to_string(), MskValue::Null, None),
                Poison::InvalidBase64 => (
                    base.topic.to_string(),
                    MskValue::Raw("%%% not base64 %%%".into()),
                    None,
                ),
                Poison::PayloadConflict => {
                    let mut conflicting = base.json();
                    conflicting["data"]["reliability_conflict"] =
                        serde_json::json!(g.rng.random::<u32>());
                    (
                        base.topic.to_string(),
                        MskValue::Bytes(json_bytes(&conflicting)),
                        Some(base_index),
                    )
                }
            };
            let at = g.rng.random_range(0..=pending.len());
            pending.insert(
                at,
                Pending {
                    topic,
                    value,
                    poison: Some(kind),
                    logical: None,
                    after,
                },
            );
        }
        // Partitions: 1–3 per topic; a record goes to any partition of its topic, a payload
        // conflict to its original's partition, after it.
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for p in &pending {
            counts
                .entry(p.topic.clone())
                .or_insert_with(|| g.rng.random_range(1..=3));
        }
        let mut partition_of_logical: HashMap<usize, i64> = HashMap::new();
        let mut placed: Vec<(String, i64, Pending)> = Vec::new();
        let mut deferred: Vec<Pending> = Vec::new();
        for p in pending {
            if p.after.is_some() {
                deferred.push(p);
                continue;
            }
            let partition = g.rng.random_range(0..counts[&p.topic]);
            if let Some(i) = p.logical {
                partition_of_logical.insert(i, partition);
            }
            placed.push((p.topic.clone(), partition, p));
        }
        for p in deferred {
            let Some(original) = p.after else { continue };
            let position = placed
                .iter()
                .position(|(_, _, q)| q.logical == Some(original))
                .unwrap_or(0);
            let partition = partition_of_logical.get(&original).copied().unwrap_or(0);
            let at = g.rng.random_range(position + 1..=placed.len());
            placed.insert(at, (p.topic.clone(), partition, p));
        }
        let mut partitions: BTreeMap<String, Vec<ScenarioRecord>> = BTreeMap::new();
        let mut next_offset: BTreeMap<String, i64> = BTreeMap::new();
        let mut logical_records: Vec<Option<MskRecord>> = vec![None; logical.len()];
        for (topic, partition, p) in placed {
            let key = crate::msk::partition_key(&topic, partition);
            let offset = next_offset
                .entry(key.clone())
                .or_insert_with(|| g.rng.random_range(0..1_000));
            let record = MskRecord::new(&topic, partition, *offset, Vec::new()).with_value(p.value);
            *offset += 1;
            if let Some(i) = p.logical {
                logical_records[i] = Some(record.clone());
            }
            partitions.entry(key).or_default().push(ScenarioRecord {
                record,
                poison: p.poison,
            });
        }
        Scenario {
            seed,
            batches,
            partitions,
            in_order: logical_records.into_iter().flatten().collect(),
            knobs,
        }
    }

    pub fn records(&self) -> impl Iterator<Item = &ScenarioRecord> {
        self.partitions.values().flatten()
    }

    pub fn poison(&self) -> BTreeMap<RecordId, (Poison, String)> {
        self.records()
            .filter_map(|r| {
                let kind = r.poison?;
                Some((r.id(), (kind, r.record.value_base64().unwrap_or_default())))
            })
            .collect()
    }
}
