//! The commit transaction: marker + plan as one `TransactWriteItems`.
//!
//! # Layout
//!
//! | action | condition |
//! |---|---|
//! | marker `EVENT#{key}` / `#MARKER` (always index 0) | `attribute_not_exists(pk)`, `ALL_OLD` on failure |
//! | batch root | `attribute_not_exists(pk)` when the plan read version 0, else `#v = :expected` |
//! | essay | `attribute_not_exists(#v)` when the plan read version 0 (or no essay), else `#v = :expected` |
//! | roster chunks / phase / CJ header / CJ chunks | none: the root's condition guards them |
//! | outbox items (outbox table) | `attribute_not_exists(event_id)` |
//!
//! A cancelled transaction writes nothing; its per-action cancellation reasons tell a
//! duplicate (marker exists, same hash) from a payload conflict (marker exists, other hash)
//! from a version conflict (root, essay or outbox condition failed), see
//! [`super::errors::classify_cancellation`].
//!
//! # Plans too big for one transaction
//!
//! A transaction holds at most 100 actions and 4 MB. Only CJ results and the essay ids of a
//! registration can get near that (a job's `essay_results` and a registration's essay ids are
//! split into chunk items of ≤ 300 KB; a Kafka record of MSK's default 1 MB maximum makes at
//! most 4 roster chunks, a larger configured maximum more). When a plan has more than
//! [`PREWRITE_ACTION_THRESHOLD`] actions or an estimated size over
//! [`PREWRITE_SIZE_THRESHOLD`], the chunk items are written *first*, with plain
//! `BatchWriteItem` requests, and the transaction carries the rest (marker, root, CJ header,
//! other records, outbox). This keeps every guarantee:
//!
//! * chunks are content-addressed: a CJ chunk's sort key names the `chunk_set` (a hash of the
//!   results), a roster chunk's the registration it belongs to (a hash of its event key,
//!   [`items::roster_sk`]), so a pre-written chunk never overwrites anything a reader follows —
//!   readers only read the chunk set named by a committed header, the roster of the committed
//!   root's registration;
//! * until the transaction that writes the header naming that set (the root naming that
//!   registration) commits, the chunks are invisible;
//! * if the transaction fails (conflict, crash, duplicate), the chunks stay unreferenced and
//!   harmless; a retry of the same record writes the very same items again;
//! * marker, root, header and outbox still commit atomically, so idempotency, optimistic
//!   concurrency and exactly-once emission are unaffected.

use super::errors::ActionRole;
use super::items::{
    self, encode_cj_job, encode_essay, encode_marker, encode_phase, encode_root, encode_roster, n,
    Item,
};
use super::outbox::{OutboxItem, ORDERING_KEY};
use crate::config::StoreConfig;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use ras_domain::plan::{Plan, StateChange};
use ras_domain::ports::{IdempotencyMarker, StoreError};

/// DynamoDB's limit of actions per transaction.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// Pre-write the chunks when the plan has more actions than this (headroom below 100).
pub const PREWRITE_ACTION_THRESHOLD: usize = 90;
/// Pre-write the chunks when the plan's estimated size is larger than this (limit: 4 MB).
pub const PREWRITE_SIZE_THRESHOLD: usize = 3_500_000;

/// Which table an action writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    State,
    Outbox,
}

/// The condition of a put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    None,
    /// `attribute_not_exists(<attribute>)`: the item must be new.
    NotExists(&'static str),
    /// `version = <expected>`.
    Version(u64),
    /// `attribute_not_exists(version)`: a new item, or one written before it had a version.
    Unversioned,
}

/// One put of the commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub role: ActionRole,
    pub table: Table,
    pub condition: Condition,
    pub item: Item,
}

impl Write {
    pub fn into_transact_item(self, tables: &StoreConfig) -> Result<TransactWriteItem, StoreError> {
        let table = match self.table {
            Table::State => &tables.state_table,
            Table::Outbox => &tables.outbox_table,
        };
        let mut put = Put::builder().table_name(table).set_item(Some(self.item));
        put = match self.condition {
            Condition::None => put,
            Condition::NotExists(attribute) => {
                put.condition_expression(format!("attribute_not_exists({attribute})"))
            }
            Condition::Version(expected) => put
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", items::VERSION)
                .expression_attribute_values(":expected", n(expected)),
            Condition::Unversioned => put
                .condition_expression("attribute_not_exists(#v)")
                .expression_attribute_names("#v", items::VERSION),
        };
        if self.role == ActionRole::Marker {
            put = put.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        let put = put.build().map_err(|e| StoreError::Permanent {
            kind: "invalid_request",
            message: e.to_string(),
        })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// Every write of one commit: the transactional ones and the CJ chunks, which may go either
/// into the transaction or ahead of it.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitWrites {
    pub transaction: Vec<Write>,
    pub chunks: Vec<Item>,
}

/// How a commit is executed.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitLayout {
    /// Written before the transaction, outside of it (CJ chunks of a big plan).
    pub prewrite: Vec<Item>,
    /// The transaction; the marker first.
    pub transaction: Vec<Write>,
}

fn wrong_batch(what: &str, found: &str, expected: &str) -> StoreError {
    StoreError::Permanent {
        kind: "invalid_request",
        message: format!(
            "plan writes {what} of batch `{found}` with a marker for batch `{expected}`"
        ),
    }
}

/// The put of a versioned record (root, essay) read at version `read` (0: not stored): stored
/// with `read + 1` (the item's `version` replaced, rather than the record copied to encode it),
/// on condition that the stored one is still at `read` — or, for a new record, `when_new`.
fn versioned(role: ActionRole, read: u64, when_new: Condition, mut item: Item) -> Write {
    item.insert(items::VERSION.to_string(), n(read + 1));
    Write {
        role,
        table: Table::State,
        condition: match read {
            0 => when_new,
            expected => Condition::Version(expected),
        },
        item,
    }
}

/// The items of a commit (module docs, "Layout").
pub fn commit_writes(marker: &IdempotencyMarker, plan: &Plan) -> Result<CommitWrites, StoreError> {
    let batch_id = marker.batch_id.as_str();
    let mut transaction = vec![Write {
        role: ActionRole::Marker,
        table: Table::State,
        condition: Condition::NotExists(items::PK),
        item: encode_marker(marker)?,
    }];
    let mut chunks = Vec::new();
    let record = |item| Write {
        role: ActionRole::Record,
        table: Table::State,
        condition: Condition::None,
        item,
    };
    for change in &plan.changes {
        match change {
            StateChange::Root(root) => {
                if root.batch_id != batch_id {
                    return Err(wrong_batch("the root", &root.batch_id, batch_id));
                }
                transaction.push(versioned(
                    ActionRole::Root,
                    root.version,
                    Condition::NotExists(items::PK),
                    encode_root(root)?,
                ));
            }
            StateChange::Essay(essay) => {
                if essay.batch_id != batch_id {
                    return Err(wrong_batch("an essay", &essay.batch_id, batch_id));
                }
                transaction.push(versioned(
                    ActionRole::Essay,
                    essay.version,
                    Condition::Unversioned,
                    encode_essay(essay)?,
                ));
            }
            StateChange::Roster(essay_ids) => {
                let registration_key = plan
                    .changes
                    .iter()
                    .find_map(|c| match c {
                        StateChange::Root(root) => root.registration.as_ref(),
                        _ => None,
                    })
                    .map(|r| r.provenance.event_key.as_str())
                    .ok_or_else(|| StoreError::Permanent {
                        kind: "invalid_request",
                        message: "plan writes a roster without a registered root".into(),
                    })?;
                // Like CJ chunks: in the transaction, or ahead of it when the plan is too big.
                chunks.extend(encode_roster(batch_id, registration_key, essay_ids)?);
            }
            StateChange::Phase(phase) => transaction.push(record(encode_phase(batch_id, phase)?)),
            StateChange::CjJob(job) => {
                if job.batch_id != batch_id {
                    return Err(wrong_batch("a CJ job", &job.batch_id, batch_id));
                }
                let job_items = encode_cj_job(job)?;
                transaction.push(record(job_items.header));
                chunks.extend(job_items.chunks);
            }
        }
    }
    for message in &plan.outbox {
        transaction.push(Write {
            role: ActionRole::Outbox,
            table: Table::Outbox,
            condition: Condition::NotExists(ORDERING_KEY),
            item: OutboxItem::from_message(message, batch_id)
                .in_commit(plan.expected_version())
                .to_item()?,
        });
    }
    Ok(CommitWrites {
        transaction,
        chunks,
    })
}

/// Whether a plan of `actions` actions and about `estimated_bytes` must pre-write its chunks.
pub fn needs_prewrite(actions: usize, estimated_bytes: usize) -> bool {
    actions > PREWRITE_ACTION_THRESHOLD || estimated_bytes > PREWRITE_SIZE_THRESHOLD
}

/// Decide what goes into the transaction (module docs, "Plans too big for one transaction").
pub fn layout(writes: CommitWrites) -> Result<CommitLayout, StoreError> {
    let CommitWrites {
        mut transaction,
        chunks,
    } = writes;
    let actions = transaction.len() + chunks.len();
    // Without chunks there is nothing to pre-write, whatever the size (the per-essay records:
    // their items are not walked to be measured).
    let too_big = !chunks.is_empty() && {
        let bytes: usize = transaction
            .iter()
            .map(|w| items::estimated_item_size(&w.item))
            .sum::<usize>()
            + chunks.iter().map(items::estimated_item_size).sum::<usize>();
        needs_prewrite(actions, bytes)
    };
    let prewrite = if too_big {
        chunks
    } else {
        transaction.extend(chunks.into_iter().map(|item| Write {
            role: ActionRole::Record,
            table: Table::State,
            condition: Condition::None,
            item,
        }));
        Vec::new()
    };
    if transaction.len() > MAX_TRANSACTION_ACTIONS {
        return Err(StoreError::Permanent {
            kind: "transaction_too_large",
            message: format!(
                "{} actions besides CJ chunks (limit {MAX_TRANSACTION_ACTIONS})",
                transaction.len()
            ),
        });
    }
    Ok(CommitLayout {
        prewrite,
        transaction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::items::get_s;
    use crate::dynamo::testdata;
    use aws_sdk_dynamodb::types::AttributeValue;
    use ras_domain::contracts::{PublishedTopic, Timestamp};
    use ras_domain::model::BatchRoot;
    use ras_domain::plan::OutboxMessage;
    use uuid::Uuid;

    fn outbox_message(i: u32) -> OutboxMessage {
        OutboxMessage {
            event_id: Uuid::from_u128(100 + i as u128),
            topic: [
                PublishedTopic::BatchResultsReady,
                PublishedTopic::TeacherNotificationRequested,
            ][i as usize % 2],
            ordering_key: "b-1".into(),
            correlation_id: Uuid::from_u128(1),
            created_at: Timestamp::parse("2025-11-27T10:00:00Z").unwrap(),
            sequence: i,
            body: "{}".into(),
        }
    }

    fn plan_with_cj(essays: usize, name_len: usize) -> Plan {
        let mut root = testdata::registered_root("b-1");
        root.version = 4;
        Plan {
            changes: vec![
                StateChange::Root(root),
                StateChange::Essay(testdata::essay("b-1", "e-1", true)),
                StateChange::Phase(testdata::phase()),
                StateChange::CjJob(testdata::cj_job("b-1", "417", essays, name_len)),
            ],
            outbox: vec![outbox_message(0), outbox_message(1)],
        }
    }

    fn marker() -> IdempotencyMarker {
        testdata::marker("b-1", "event:1", "h")
    }

    #[test]
    fn a_new_essay_must_be_new_and_a_registration_writes_its_roster() {
        let mut root = testdata::registered_root("b-1");
        root.version = 0;
        let ids = root.registration.as_ref().unwrap().essay_ids.clone();
        let plan = Plan {
            changes: vec![
                StateChange::Root(root),
                StateChange::Roster(ids.clone()),
                StateChange::Essay(testdata::essay("b-1", "e-9", false)),
            ],
            outbox: vec![],
        };
        let writes = commit_writes(&marker(), &plan).unwrap();
        let roles: Vec<_> = writes.transaction.iter().map(|w| w.role).collect();
        use ActionRole::*;
        assert_eq!(roles, [Marker, Root, Essay]);
        assert_eq!(writes.transaction[2].condition, Condition::Unversioned);
        // The roster is a chunk: in the transaction of a small plan, ahead of a big one.
        assert_eq!(writes.chunks.len(), 1);
        let roster = &writes.chunks[0];
        assert_eq!(
            get_s(roster, items::SK),
            Some(items::roster_sk("event:reg", 0).as_str())
        );
        assert_eq!(
            get_s(roster, items::REGISTRATION),
            Some("event:reg"),
            "names its registration"
        );
        let layout = layout(writes).unwrap();
        assert!(layout.prewrite.is_empty());
        assert_eq!(layout.transaction.len(), 4);
        // A roster without a registered root is a bug in the plan, not something to write.
        let orphan = Plan {
            changes: vec![StateChange::Roster(ids)],
            outbox: vec![],
        };
        assert!(commit_writes(&marker(), &orphan).is_err());
    }

    #[test]
    fn a_registration_too_big_for_one_transaction_pre_writes_its_roster() {
        let mut root = testdata::registered_root("b-1");
        root.version = 0;
        // 16,000 ids of the longest length the decoder accepts: ~4.1 MB, over the 4 MB limit.
        let ids: Vec<String> = (0..16_000).map(|i| format!("{i:0255}")).collect();
        let plan = Plan {
            changes: vec![StateChange::Root(root), StateChange::Roster(ids)],
            outbox: vec![],
        };
        let layout = layout(commit_writes(&marker(), &plan).unwrap()).unwrap();
        assert_eq!(layout.prewrite.len(), 14, "chunks of ≤ 300 KB");
        let roles: Vec<_> = layout.transaction.iter().map(|w| w.role).collect();
        assert_eq!(roles, [ActionRole::Marker, ActionRole::Root]);
        let sizes: usize = layout
            .transaction
            .iter()
            .map(|w| items::estimated_item_size(&w.item))
            .sum();
        assert!(sizes < 10_000, "{sizes}");
    }

    #[test]
    fn small_plan_is_one_transaction_with_conditions() {
        let layout = layout(commit_writes(&marker(), &plan_with_cj(20, 10)).unwrap()).unwrap();
        assert!(layout.prewrite.is_empty());
        let roles: Vec<_> = layout.transaction.iter().map(|w| w.role).collect();
        use ActionRole::*;
        assert_eq!(
            roles,
            [Marker, Root, Essay, Record, Record, Outbox, Outbox, Record]
        );
        // The essay was read at version 1 (a stored essay): written only if still at 1.
        assert_eq!(layout.transaction[2].condition, Condition::Version(1));
        assert_eq!(
            layout.transaction[2].item.get(items::VERSION),
            Some(&items::n(2))
        );
        assert_eq!(layout.transaction[0].condition, Condition::NotExists("pk"));
        assert_eq!(layout.transaction[1].condition, Condition::Version(4));
        assert_eq!(
            layout.transaction[1].item.get("version"),
            Some(&AttributeValue::N("5".into()))
        );
        assert_eq!(
            layout.transaction[5].condition,
            Condition::NotExists("ordering_key")
        );
        assert_eq!(layout.transaction[5].table, Table::Outbox);
        // The outbox items name their commit by the root version it was planned on.
        for outbox in &layout.transaction[5..7] {
            assert_eq!(
                outbox.item.get("commit_version"),
                Some(&AttributeValue::N("4".into()))
            );
        }
        assert_eq!(
            get_s(&layout.transaction[7].item, "item_type"),
            Some("cj_chunk")
        );
        let tables = StoreConfig::default();
        for write in layout.transaction {
            write.into_transact_item(&tables).unwrap();
        }
    }

    #[test]
    fn new_batch_root_must_not_exist() {
        let plan = Plan {
            changes: vec![StateChange::Root(BatchRoot::new("b-1"))],
            outbox: vec![],
        };
        let writes = commit_writes(&marker(), &plan).unwrap();
        assert_eq!(writes.transaction[1].condition, Condition::NotExists("pk"));
        assert_eq!(
            writes.transaction[1].item.get("version"),
            Some(&AttributeValue::N("1".into()))
        );
    }

    #[test]
    fn noop_plan_writes_only_the_marker() {
        let layout = layout(commit_writes(&marker(), &Plan::default()).unwrap()).unwrap();
        assert_eq!(layout.transaction.len(), 1);
        assert_eq!(layout.transaction[0].role, ActionRole::Marker);
    }

    #[test]
    fn big_cj_results_pre_write_their_chunks() {
        // ~4.8 MB of results: more than one transaction can carry.
        let writes = commit_writes(&marker(), &plan_with_cj(1_600, 3_000)).unwrap();
        let chunk_count = writes.chunks.len();
        assert!(chunk_count >= 14, "{chunk_count} chunks");
        let layout = layout(writes).unwrap();
        assert_eq!(layout.prewrite.len(), chunk_count);
        assert_eq!(layout.transaction.len(), 7);
        assert!(layout
            .transaction
            .iter()
            .all(|w| get_s(&w.item, "item_type") != Some("cj_chunk")));
    }

    #[test]
    fn thresholds() {
        assert!(!needs_prewrite(90, 3_500_000));
        assert!(needs_prewrite(91, 10));
        assert!(needs_prewrite(3, 3_500_001));
    }

    #[test]
    fn too_many_actions_besides_chunks_are_rejected() {
        let mut plan = plan_with_cj(1, 0);
        plan.outbox = (0..120).map(outbox_message).collect();
        let err = layout(commit_writes(&marker(), &plan).unwrap()).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Permanent {
                kind: "transaction_too_large",
                ..
            }
        ));
    }

    #[test]
    fn records_of_another_batch_are_rejected() {
        let plan = Plan {
            changes: vec![StateChange::Essay(testdata::essay("b-2", "e", false))],
            outbox: vec![],
        };
        assert!(matches!(
            commit_writes(&marker(), &plan),
            Err(StoreError::Permanent {
                kind: "invalid_request",
                ..
            })
        ));
    }
}
