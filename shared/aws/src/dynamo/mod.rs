//! The DynamoDB adapter: [`DynamoStore`] implements the domain's [`AggregateStore`] (load a
//! batch aggregate, commit a plan with its idempotency marker) and [`BatchReader`] (the query
//! API's reads) on the tables of `docs/data-model.md`.
//!
//! * [`capacity`] — what DynamoDB charges for the store's requests (item sizes, capacity
//!   units, index writes), computed from the items (issue 15's cost benchmark).
//! * [`items`] — keys and item encoding of the state table (root, essays, phases, CJ header
//!   and chunks, markers).
//! * [`outbox`] — outbox items (the stored shape of a message to publish), also decoded by
//!   the relay from stream images.
//! * [`commit`] — the commit transaction and the scheme for plans too big for one.
//! * [`errors`] — SDK errors and transaction cancellations → outcomes and [`StoreError`]s.
//!
//! [`AggregateStore`]: ras_domain::ports::AggregateStore
//! [`BatchReader`]: ras_domain::ports::BatchReader
//! [`StoreError`]: ras_domain::ports::StoreError

pub mod attr;
pub mod capacity;
pub mod commit;
pub mod errors;
pub mod items;
pub mod outbox;
mod reader;
mod store;

#[cfg(test)]
mod testdata;

pub use outbox::OutboxItem;
pub use store::DynamoStore;

/// Every DynamoDB operation [`DynamoStore`]'s write path (`AggregateStore`: ingest and the facts
/// timer) sends to the state table: `BatchGetItem` (a per-essay record's root and essay),
/// `Query` (a whole batch), `GetItem` (a marker whose cancellation came without it),
/// `BatchWriteItem` (CJ chunks ahead of a big transaction, a roster moved out of an old root)
/// and `TransactWriteItems` (the commit; IAM authorizes each of its actions as `PutItem` /
/// `ConditionCheckItem`: "Permissions for Put, Update, Delete, and Get actions are governed by
/// the permissions used for the underlying PutItem, UpdateItem, DeleteItem, and GetItem
/// operations", <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>). `template.yaml` grants these to both roles
/// (`tests/tests/template_matches_code.rs`); `tests/tests/ingest_requests.rs` checks that
/// nothing else goes on the wire.
pub const WRITE_PATH_OPERATIONS: [&str; 5] = [
    "BatchGetItem",
    "Query",
    "GetItem",
    "BatchWriteItem",
    "TransactWriteItems",
];
