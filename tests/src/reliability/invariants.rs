//! What a run left behind ([`Observed`]) and the invariants checked on it ([`check`]).

use super::model::Model;
use super::scenario::{RecordId, Scenario};
use super::simulation::Run;
use ingest::handler::Disposition;
use ras_domain::model::BatchAggregate;
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, ParkedMessage};
use ras_domain::service::RecordOutcome;
use ras_domain::testing::batches::published_content;
use ras_domain::testing::Committed;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// What a run delivered where, gathered for the checks (so the checks can also be run on
/// tampered copies, to show they catch violations).
#[derive(Clone, Debug)]
pub struct Observed {
    pub aggregates: BTreeMap<String, Option<BatchAggregate>>,
    /// Idempotency markers stored (`None`: not counted, e.g. on DynamoDB).
    pub markers: Option<usize>,
    /// The committed outbox messages, in commit order.
    pub committed: Vec<Committed>,
    /// The store's own outbox, in commit order (`None`: not read).
    pub store_outbox: Option<Vec<Uuid>>,
    /// Every message the queues received (the inner publisher), in order.
    pub delivered: Vec<(Destination, OutboxMessage)>,
    pub dead_letters: Vec<ras_domain::ports::DeadLetter>,
    /// Per record: dead letters that reached the queue although the send reported a failure.
    pub dead_letters_lost: BTreeMap<RecordId, u32>,
    /// Per record: the handler's dispositions, in order.
    pub dispositions: BTreeMap<RecordId, Vec<Disposition>>,
    pub deliveries: BTreeMap<RecordId, u32>,
    pub problems: Vec<String>,
    /// Messages the relay parked (SQS refused them for good).
    pub parked: Vec<ParkedMessage>,
    /// The committed messages SQS refuses for good (unsendable).
    pub unsendable: BTreeSet<String>,
    /// What the event sources skipped.
    pub skipped: Vec<String>,
}

impl Observed {
    /// What a run over the in-memory ports left behind.
    pub fn of(scenario: &Scenario, run: &Run) -> Observed {
        let store = run.deps.store.inner().inner();
        Observed::gather(
            run,
            scenario
                .batches
                .iter()
                .map(|b| (b.clone(), store.aggregate(b)))
                .collect(),
            Some(store.marker_count()),
            Some(store.outbox().iter().map(|m| m.event_id).collect()),
            run.relay.publisher().inner().inner().received(),
            run.deps.dead_letters.inner().letters(),
        )
    }

    /// The run's own records (commit log, reports, deliveries, problems) with what was read
    /// from its ports.
    pub fn gather<S, D, P>(
        run: &Run<S, D, P>,
        aggregates: BTreeMap<String, Option<BatchAggregate>>,
        markers: Option<usize>,
        store_outbox: Option<Vec<Uuid>>,
        delivered: Vec<(Destination, OutboxMessage)>,
        dead_letters: Vec<ras_domain::ports::DeadLetter>,
    ) -> Observed
    where
        P: MessagePublisher,
    {
        let mut dispositions: BTreeMap<RecordId, Vec<Disposition>> = BTreeMap::new();
        for report in &run.reports {
            for r in report.records() {
                dispositions
                    .entry((r.topic.clone(), r.partition, r.offset))
                    .or_default()
                    .push(r.disposition.clone());
            }
        }
        let mut dead_letters_lost: BTreeMap<RecordId, u32> = BTreeMap::new();
        for l in run.deps.dead_letters.lost_responses() {
            *dead_letters_lost
                .entry((l.topic, l.partition, l.offset))
                .or_default() += 1;
        }
        let committed = run.deps.store.inner().committed();
        let refusing = run.relay.publisher().inner();
        let unsendable = committed
            .iter()
            .map(|c| c.message.event_id.to_string())
            .filter(|id| refusing.refuses(id))
            .collect();
        Observed {
            aggregates,
            markers,
            dead_letters_lost,
            committed,
            parked: run.relay.parking().map(|p| p.parked()).unwrap_or_default(),
            unsendable,
            skipped: run.skipped.clone(),
            store_outbox,
            delivered,
            dead_letters,
            dispositions,
            deliveries: run.deliveries.clone(),
            problems: run.problems.clone(),
        }
    }
}

/// Every invariant; the violations found (empty: all hold).
pub fn check(scenario: &Scenario, model: &Model, seen: &Observed) -> Vec<String> {
    let mut v: Vec<String> = seen.problems.clone();

    // 1. The final state of every batch is the model's.
    for batch in &scenario.batches {
        let actual = seen
            .aggregates
            .get(batch)
            .cloned()
            .flatten()
            .map(BatchAggregate::without_versions);
        if actual.as_ref() != model.aggregates.get(batch) {
            v.push(format!(
                "batch {batch}: final state differs from the in-order model\n  model: {:?}\n  run:   {:?}",
                model.aggregates.get(batch),
                actual
            ));
        }
    }
    if let Some(markers) = seen.markers.filter(|m| *m != model.markers) {
        v.push(format!(
            "{markers} idempotency markers, the model has {}",
            model.markers
        ));
    }

    // 2. Each outbox event committed once, the model's events exactly.
    let committed_ids: Vec<Uuid> = seen.committed.iter().map(|c| c.message.event_id).collect();
    let unique: BTreeSet<Uuid> = committed_ids.iter().copied().collect();
    if unique.len() != committed_ids.len() {
        v.push("an outbox event was committed twice".into());
    }
    if unique != model.outbox {
        v.push(format!(
            "committed outbox events differ from the model: missing {:?}, extra {:?}",
            model.outbox.difference(&unique).collect::<Vec<_>>(),
            unique.difference(&model.outbox).collect::<Vec<_>>()
        ));
    }
    // 2b. …with the model's content: every figure of a results-ready event and its
    //     notification (and of every other message) is what the in-order run published,
    //     whichever order the records arrived in (issue 10).
    let messages: Vec<OutboxMessage> = seen.committed.iter().map(|c| c.message.clone()).collect();
    for (id, content) in published_content(&messages) {
        if let Some(expected) = model.published.get(&id).filter(|e| **e != content) {
            v.push(format!(
                "published {id} ({}) differs from the in-order model\n  model: {}\n  run:   {}",
                content.1, expected.2, content.2
            ));
        }
    }
    if seen
        .store_outbox
        .as_ref()
        .is_some_and(|outbox| *outbox != committed_ids)
    {
        v.push("the commit log disagrees with the store's outbox".into());
    }

    // 3. Every committed event delivered at least once, byte-identical, with its group and
    //    deduplication ids; nothing delivered that was not committed; per key, first
    //    deliveries in commit order.
    let committed: HashMap<String, &OutboxMessage> = seen
        .committed
        .iter()
        .map(|c| (c.message.event_id.to_string(), &c.message))
        .collect();
    // 0. The event sources skipped nothing (no record given up on, none expired).
    v.extend(
        seen.skipped
            .iter()
            .map(|d| format!("the event source skipped records: {d}")),
    );

    let mut delivered_ids: BTreeSet<String> = BTreeSet::new();
    let mut first_order: BTreeMap<(Destination, &str), Vec<String>> = BTreeMap::new();
    for (destination, message) in &seen.delivered {
        let event_id = message.event_id.to_string();
        let Some(original) = committed.get(&event_id) else {
            v.push(format!("delivered {event_id} which was never committed"));
            continue;
        };
        if seen.unsendable.contains(&event_id) {
            v.push(format!("delivered {event_id}, which SQS refuses for good"));
        }
        if *destination != original.destination()
            || message.body != original.body
            || message.ordering_key != original.ordering_key
            || message.topic != original.topic
            || message.correlation_id != original.correlation_id
        {
            v.push(format!(
                "delivery of {event_id} differs from its outbox item: {destination:?} {message:?}"
            ));
        }
        if delivered_ids.insert(event_id.clone()) {
            first_order
                .entry((*destination, &message.ordering_key))
                .or_default()
                .push(event_id);
        }
    }
    // 3b. Unsendable messages are parked (and acknowledged: the stream drained), each with
    //     its committed identity; nothing else is parked.
    let by_id: HashMap<String, &Committed> = seen
        .committed
        .iter()
        .map(|c| (c.message.event_id.to_string(), c))
        .collect();
    let mut parked_ids: BTreeSet<&str> = BTreeSet::new();
    for p in &seen.parked {
        parked_ids.insert(&p.event_id);
        let Some(c) = by_id.get(&p.event_id) else {
            v.push(format!("parked {}, which was never committed", p.event_id));
            continue;
        };
        if !seen.unsendable.contains(&p.event_id) {
            v.push(format!("parked {}, which SQS accepts", p.event_id));
        }
        let m = &c.message;
        if p.ordering_key != m.ordering_key
            || p.destination != m.destination()
            || p.topic != m.topic.name()
            || p.batch_id != c.batch_id
            || p.body_bytes != m.body.len()
            || p.code.is_empty()
        {
            v.push(format!(
                "parked record of {} differs from its outbox item: {p:?}",
                p.event_id
            ));
        }
    }
    let mut commit_order: BTreeMap<(Destination, &str), Vec<String>> = BTreeMap::new();
    for m in seen.committed.iter().map(|c| &c.message) {
        let id = m.event_id.to_string();
        if seen.unsendable.contains(&id) {
            if !parked_ids.contains(id.as_str()) {
                v.push(format!(
                    "unsendable event {id} ({}) never parked",
                    m.topic.name()
                ));
            }
            continue;
        }
        if !delivered_ids.contains(&id) {
            v.push(format!(
                "committed event {} ({}) never delivered",
                m.event_id,
                m.topic.name()
            ));
        }
        commit_order
            .entry((Destination::of(m.topic), &m.ordering_key))
            .or_default()
            .push(m.event_id.to_string());
    }
    for (key, ids) in &first_order {
        let expected: Vec<&str> = commit_order
            .get(key)
            .map(|ids| ids.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if ids != &expected {
            v.push(format!(
                "key {key:?}: first deliveries {ids:?}, commit order {expected:?}"
            ));
        }
    }

    // 4. The dead-letter queue holds exactly the poison records (every copy identical, with
    //    its kind and a reason), and no valid record. Each copy is accounted for: one per
    //    delivery the handler dead-lettered the record in, plus one per send that reached the
    //    queue but reported a failure (so: exactly once, but for redeliveries and lost
    //    responses).
    let poison = scenario.poison();
    let mut letters: BTreeMap<RecordId, Vec<&ras_domain::ports::DeadLetter>> = BTreeMap::new();
    for letter in &seen.dead_letters {
        letters
            .entry((letter.topic.clone(), letter.partition, letter.offset))
            .or_default()
            .push(letter);
    }
    for (id, copies) in &letters {
        let Some((kind, value)) = poison.get(id) else {
            v.push(format!("dead-lettered {id:?}, which is not poison"));
            continue;
        };
        for letter in copies {
            if letter.error_kind != kind.error_kind()
                || &letter.value_base64 != value
                || letter.error_message.is_empty()
            {
                v.push(format!(
                    "dead letter of {id:?} ({kind:?}) is wrong: kind {}, message {:?}, value {}",
                    letter.error_kind, letter.error_message, letter.value_base64
                ));
            }
            if **letter != *copies[0] {
                v.push(format!("copies of the dead letter of {id:?} differ"));
            }
        }
    }
    for id in poison.keys() {
        if !letters.contains_key(id) {
            v.push(format!("poison record {id:?} never dead-lettered"));
        }
    }

    // 5. Per record: a valid one is never dead-lettered, a poison one never applied; a record
    //    is dead-lettered at most once per delivery; an event applied at most once in all.
    let mut applied: BTreeMap<&str, u32> = BTreeMap::new();
    for (id, dispositions) in &seen.dispositions {
        let is_poison = poison.contains_key(id);
        let mut dead_lettered = 0;
        for d in dispositions {
            match d {
                Disposition::Done(RecordOutcome::Applied { event_key, .. }) => {
                    *applied.entry(event_key).or_default() += 1;
                    if is_poison {
                        v.push(format!("poison record {id:?} was applied"));
                    }
                }
                Disposition::Done(RecordOutcome::Duplicate { .. }) if is_poison => {
                    v.push(format!("poison record {id:?} counted as a duplicate"))
                }
                Disposition::DeadLettered { error_kind } => {
                    dead_lettered += 1;
                    if !is_poison {
                        v.push(format!("valid record {id:?} dead-lettered ({error_kind})"));
                    }
                }
                _ => {}
            }
        }
        let delivered = seen.deliveries.get(id).copied().unwrap_or(0);
        if dead_lettered > delivered {
            v.push(format!(
                "{id:?} dead-lettered {dead_lettered} times in {delivered} deliveries"
            ));
        }
        let copies = letters.get(id).map_or(0, |c| c.len() as u32);
        let lost = seen.dead_letters_lost.get(id).copied().unwrap_or(0);
        if copies != dead_lettered + lost {
            v.push(format!(
                "{id:?}: {copies} dead letters, {dead_lettered} dead-letterings and {lost} lost                  responses"
            ));
        }
    }
    for (key, n) in applied {
        if n > 1 {
            v.push(format!("event {key} applied {n} times"));
        }
    }
    v
}
