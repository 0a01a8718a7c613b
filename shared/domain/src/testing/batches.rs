//! Whole HuleEdu batches as record lists, for order-independence properties, and the published
//! messages' content stripped of processing times, for comparing runs.
//!
//! A batch: registration, slot assignments, one spellcheck result per essay, ELS's spellcheck
//! outcome, a CJ result for the essays that passed spellcheck and were ranked, ELS's CJ outcome
//! (failing the essays CJ could not rank), optionally ELS's NLP outcome, and optionally BOS's
//! pipeline-completed with the figures ELS reported.

use super::events::*;
use crate::contracts::Timestamp;
use crate::plan::OutboxMessage;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One essay's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EssayShape {
    pub slot: bool,
    pub spellcheck_ok: bool,
    /// Ranked by CJ (only meaningful when spellcheck succeeded).
    pub cj_ok: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchShape {
    pub essays: Vec<EssayShape>,
    pub anchor: bool,
    /// ELS reports an NLP phase after CJ (a phase without per-essay results of its own).
    pub nlp: bool,
    pub bos_completion: bool,
}

impl BatchShape {
    /// `essays` essays that all pass spellcheck and are ranked by CJ, with an anchor and BOS's
    /// completion report: a full pipeline where everything succeeds (the benchmarks' batch).
    pub fn all_succeed(essays: usize) -> Self {
        BatchShape {
            essays: vec![
                EssayShape {
                    slot: true,
                    spellcheck_ok: true,
                    cj_ok: true,
                };
                essays
            ],
            anchor: true,
            nlp: false,
            bos_completion: true,
        }
    }
}

/// The records of one batch, in the order the producers emit them. Event ids are
/// `event_id(id_base + n)`, so batches built with different bases do not collide.
pub fn batch_records(
    batch_id: &str,
    teacher: &str,
    shape: &BatchShape,
    id_base: u64,
) -> Vec<TestRecord> {
    let ids: Vec<String> = (0..shape.essays.len())
        .map(|i| format!("{batch_id}-e{i}"))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut n = id_base;
    let mut next = || {
        n += 1;
        event_id(n)
    };
    let mut out = vec![registration(
        next(),
        batch_id,
        teacher,
        &id_refs,
        at_minute(0.0),
    )];
    let (mut spell_ok, mut spell_failed, mut ranked, mut cj_failed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, essay) in shape.essays.iter().enumerate() {
        let id = ids[i].as_str();
        if essay.slot {
            out.push(slot_assigned(
                next(),
                batch_id,
                id,
                at_minute(1.0 + i as f64 * 0.1),
            ));
        }
        let status = if essay.spellcheck_ok {
            "spellchecked_success"
        } else {
            "spellcheck_failed"
        };
        out.push(spellcheck_result(
            next(),
            batch_id,
            id,
            status,
            at_minute(2.0 + i as f64 * 0.1),
        ));
        match (essay.spellcheck_ok, essay.cj_ok) {
            (false, _) => spell_failed.push(id),
            (true, true) => {
                spell_ok.push(id);
                ranked.push(id);
            }
            (true, false) => {
                spell_ok.push(id);
                cj_failed.push(id);
            }
        }
    }
    let status_of = |failed: &[&str]| {
        if failed.is_empty() {
            "completed_successfully"
        } else {
            "completed_with_failures"
        }
    };
    out.push(phase_outcome(
        next(),
        batch_id,
        "spellcheck",
        status_of(&spell_failed),
        &spell_ok,
        &spell_failed,
        at_minute(5.0),
    ));
    if !ranked.is_empty() {
        let students: Vec<StudentResult> = ranked
            .iter()
            .enumerate()
            .map(|(rank, id)| (*id, rank as i64 + 1, 1.0 - rank as f64 * 0.3, "B"))
            .collect();
        out.push(assessment_result(
            next(),
            batch_id,
            &format!("{batch_id}-job"),
            &students,
            shape.anchor,
            at_minute(20.0),
        ));
    }
    out.push(phase_outcome(
        next(),
        batch_id,
        "cj_assessment",
        status_of(&cj_failed),
        &ranked,
        &cj_failed,
        at_minute(21.0),
    ));
    let mut phases = vec!["spellcheck", "cj_assessment"];
    if shape.nlp {
        out.push(phase_outcome(
            next(),
            batch_id,
            "nlp",
            "completed_successfully",
            &ranked,
            &[],
            at_minute(23.0),
        ));
        phases.push("nlp");
    }
    if shape.bos_completion {
        let failed = spell_failed.len() + cj_failed.len();
        out.push(pipeline_completed(
            next(),
            batch_id,
            if failed == 0 {
                "completed_successfully"
            } else {
                "completed_with_failures"
            },
            &phases,
            ranked.len() as i64,
            failed as i64,
            at_minute(25.0),
        ));
    }
    out
}

/// Keys of published envelopes whose values are processing times (the moment a record made the
/// event due), not facts: `event_timestamp`, `data.timestamp`, `data.system_metadata.timestamp`.
pub fn strip_processing_times(mut envelope: Value) -> Value {
    if let Some(map) = envelope.as_object_mut() {
        map.remove("event_timestamp");
    }
    if let Some(data) = envelope.get_mut("data").and_then(Value::as_object_mut) {
        data.remove("timestamp");
        if let Some(meta) = data
            .get_mut("system_metadata")
            .and_then(Value::as_object_mut)
        {
            meta.remove("timestamp");
        }
    }
    envelope
}

/// Every published message by event id: its ordering key, topic and envelope without
/// processing times.
pub fn published_content(
    outbox: &[OutboxMessage],
) -> BTreeMap<Uuid, (String, &'static str, Value)> {
    outbox
        .iter()
        .map(|m| {
            let envelope: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
            (
                m.event_id,
                (
                    m.ordering_key.clone(),
                    m.topic.name(),
                    strip_processing_times(envelope),
                ),
            )
        })
        .collect()
}

/// A clock for runs that should differ only in processing times: `start` plus one second per
/// call.
pub fn ticking_clock(start: Timestamp) -> impl FnMut() -> Timestamp {
    let mut tick = 0i64;
    move || {
        tick += 1;
        Timestamp::from_unix_micros(start.unix_micros() + tick * 1_000_000).unwrap_or(start)
    }
}

/// `records` applied one after the other through the ingest use case
/// (`service::process_record`) to a new in-memory store, each at the next instant of `clock`
/// (its processing time and its Kafka record time). Panics when a record does not apply.
pub fn replay_in_memory(
    records: &[TestRecord],
    mut clock: impl FnMut() -> Timestamp,
) -> super::InMemoryStore {
    let store = super::InMemoryStore::new();
    for record in records {
        let now = clock();
        let consumed = crate::service::ConsumedRecord {
            topic: record.topic,
            value: &record.value,
            record_time: now,
        };
        super::block_on(crate::service::process_record(&store, consumed, now))
            .unwrap_or_else(|e| panic!("{} applies: {e}", record.topic));
    }
    store
}
