//! What applying one event produces: the records to write and the messages to publish. The
//! store commits a plan atomically together with the record's idempotency marker.

use crate::contracts::{PublishedTopic, Timestamp};
use crate::model::{BatchAggregate, BatchRoot, CjJobRecord, EssayRecord, PhaseOutcomeRecord};
use crate::ports::Destination;
use uuid::Uuid;

/// A record of the aggregate, written whole. The root carries the version the plan was
/// computed from; the store writes it only if that is still the stored version.
// One root per plan and a handful of records: boxing the root would add an allocation per
// record to save a few hundred bytes of a short-lived Vec.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum StateChange {
    Root(BatchRoot),
    Essay(EssayRecord),
    Phase(PhaseOutcomeRecord),
    CjJob(CjJobRecord),
    /// The registration's essay ids, in the plan only when the registration changed. They are
    /// part of the root's registration; a store may keep them apart from the root, whose size
    /// would otherwise grow with the batch (docs/data-model.md, "Roster").
    Roster(Vec<String>),
}

/// One message to publish, final in every byte: written to the outbox by the commit of its
/// plan, read back from the outbox stream by the relay, and handed to the transport
/// ([`crate::ports::MessagePublisher`]), which sends `body` as is.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    pub event_id: Uuid,
    pub topic: PublishedTopic,
    /// SQS `MessageGroupId` / the reference's Kafka key: batch_id, or teacher_id for notifications.
    pub ordering_key: String,
    pub correlation_id: Uuid,
    /// `event_timestamp` of the envelope.
    pub created_at: Timestamp,
    /// Position within the plan, to keep per-key order among messages of one commit.
    pub sequence: u32,
    /// The envelope JSON as published.
    pub body: String,
}

impl OutboxMessage {
    pub fn event_type(&self) -> &'static str {
        self.topic.name()
    }

    /// The queue it goes to (by topic).
    pub fn destination(&self) -> Destination {
        Destination::of(self.topic)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<StateChange>,
    pub outbox: Vec<OutboxMessage>,
}

impl Plan {
    /// Nothing to write but the idempotency marker.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty() && self.outbox.is_empty()
    }

    /// The version of the root this plan was computed from (`None` when the root is untouched).
    pub fn expected_version(&self) -> Option<u64> {
        self.changes.iter().find_map(|c| match c {
            StateChange::Root(root) => Some(root.version),
            _ => None,
        })
    }
}

impl BatchAggregate {
    /// Apply a committed plan to an in-memory aggregate (what the store does, minus I/O):
    /// records replaced whole with their version bumped; the registration's essay ids are the
    /// plan's [`StateChange::Roster`] if it has one, else they stay as stored.
    pub fn apply_plan(&mut self, plan: &Plan) {
        for change in &plan.changes {
            match change {
                StateChange::Root(root) => {
                    // The essay ids stay as stored unless the plan has a roster (a root read
                    // without them, `AggregateStore::load_essay`, does not erase them).
                    let roster = self
                        .root
                        .registration
                        .as_mut()
                        .map(|r| std::mem::take(&mut r.essay_ids));
                    self.root = root.clone();
                    self.root.version = root.version + 1;
                    if let (Some(registration), Some(ids)) =
                        (self.root.registration.as_mut(), roster)
                    {
                        registration.essay_ids = ids;
                    }
                }
                StateChange::Essay(essay) => {
                    let mut stored = essay.clone();
                    stored.version = essay.version + 1;
                    self.essays.insert(essay.essay_id.clone(), stored);
                }
                StateChange::Phase(phase) => {
                    self.phases.insert(phase.phase, phase.clone());
                }
                StateChange::CjJob(job) => {
                    self.cj_jobs.insert(job.job_id.clone(), job.clone());
                }
                StateChange::Roster(essay_ids) => {
                    if let Some(registration) = self.root.registration.as_mut() {
                        registration.essay_ids = essay_ids.clone();
                    }
                }
            }
        }
    }
}
