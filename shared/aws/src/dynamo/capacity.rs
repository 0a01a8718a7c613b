//! What DynamoDB charges for the requests the store makes: item sizes, read and write capacity
//! units, index writes — computed from the items themselves with DynamoDB's documented rules,
//! without a network (issue 15, "measure first"; the benchmark `cargo bench -p ras-aws --bench
//! cost` replays whole batches through the store's request building and costs every request).
//!
//! # The rules, and where they are documented
//!
//! * **Item size** ([`item_size`]): the sum of the attribute names' and values' sizes. A
//!   string is its UTF-8 length; a number about one byte per two significant digits plus one
//!   (leading and trailing zeroes trimmed); a binary value its raw length; null and boolean one
//!   byte; a list or map 3 bytes of overhead plus its elements, plus one byte per element (a map
//!   element also counts its name). Sets are not on that page: counted here as the sum of their
//!   elements (the store writes none).
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>
//! * **Reads** ([`read_units`]): a `Query` treats all items it returns as one read — their total
//!   size rounded up to the next 4 KB; one unit per 4 KB strongly consistent, half eventually
//!   consistent, two transactional. A read that finds nothing still costs one unit (half when
//!   eventually consistent). A `Query` returns at most 1 MB per request ([`QUERY_PAGE_BYTES`]);
//!   the rest takes more requests.
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>,
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html>
//! * **Writes** ([`write_units`]): one unit per 1 KB, rounded up per item; a put that replaces
//!   an item, or an update, is charged for the larger of the item before and after; a delete
//!   for the deleted item. Same page as the reads.
//! * **Transactions**: DynamoDB performs two underlying writes of *every item* in a
//!   `TransactWriteItems` (prepare and commit), so each action — condition checks included —
//!   costs twice its standard write units ([`TRANSACTIONAL_WRITE_FACTOR`]).
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling>
//! * **Global secondary indexes** ([`IndexSchema::write`]): a write that puts an item into an
//!   index costs one index write; one that changes the index key costs two (delete the old
//!   entry, put the new one); one that removes the key costs one (delete); one that changes only
//!   projected attributes costs one; an item in the index neither before nor after costs
//!   nothing. Each index write is charged by the size of the index entry (the index and table
//!   keys plus the projected attributes: the whole item for `ALL`), 1 KB per unit. The changes
//!   of a transaction reach the indexes after it committed, so index writes are standard
//!   writes (not doubled).
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes>
//!
//! Two readings where the pages leave room, both stated where they are used: an index update
//! whose entry does not change at all (a `KEYS_ONLY` index of an item whose keys stay) costs
//! nothing ("if a write to a table does not require a global secondary index update, then no
//! write capacity is consumed from the index"); the 100 bytes of overhead per index entry are
//! storage, not write size.
//!
//! [`MemoryTable`] keeps items by key, like a table, so a replay can cost each request against
//! the items it replaces (and their index entries) and each `Query` against what it returns.

use super::items::Item;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::{BTreeMap, HashMap};

/// Read capacity units are counted per 4 KB.
pub const READ_UNIT_BYTES: u64 = 4 * 1024;
/// Write capacity units are counted per 1 KB.
pub const WRITE_UNIT_BYTES: u64 = 1024;
/// Most data one `Query` request returns.
pub const QUERY_PAGE_BYTES: u64 = 1024 * 1024;
/// A transactional write costs two standard writes (prepare, commit).
pub const TRANSACTIONAL_WRITE_FACTOR: u64 = 2;

// ------------------------------------------------------------------------------ item size

/// DynamoDB's size of an item: attribute names plus values (module docs).
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// Size of one attribute value (without its name).
pub fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(text) => text.len() as u64,
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(blob) => blob.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() as u64 + value_size(v))
                .sum::<u64>()
        }
        AttributeValue::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len() as u64).sum(),
        // The SDK's catch-all for types it does not know: nothing the store writes.
        _ => 0,
    }
}

/// A number: one byte per two significant digits (leading and trailing zeroes trimmed, sign,
/// point and exponent not digits), plus one byte.
pub fn number_size(text: &str) -> u64 {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.max(1).div_ceil(2) + 1
}

// --------------------------------------------------------------------------------- units

/// How a read is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    Eventual,
    Strong,
    Transactional,
}

/// Read capacity units of one read request returning `bytes` (one `GetItem`, or one `Query`
/// page: all its items together): the bytes rounded up to 4 KB, at least one 4 KB unit.
pub fn read_units(bytes: u64, consistency: Consistency) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    match consistency {
        Consistency::Eventual => units / 2.0,
        Consistency::Strong => units,
        Consistency::Transactional => units * 2.0,
    }
}

/// Standard write capacity units of writing (or deleting) an item of `bytes`: rounded up to
/// 1 KB, at least one.
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
}

// ------------------------------------------------------------------------ tables, indexes

/// Which attributes an index copies besides its keys and the table's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(&'static [&'static str]),
}

/// A global secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSchema {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    pub projection: Projection,
}

/// A table: its key and its global secondary indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// The logical name (`template.yaml`'s resource), not the deployed one.
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    pub indexes: &'static [IndexSchema],
}

/// `ras-state` as `template.yaml` defines it (`StateTable`; checked against the template by
/// `tests/tests/template_matches_code.rs`). Issue 15: the user and CJ job indexes are keys only
/// (their readers ask for the table key and counts), under new names (a projection cannot be
/// changed in place: docs/operations.md, "Index migration"); `by_essay` is gone (no reader);
/// CJ chunks carry no `cj_job_id`, so `by_cj_job_keys` holds CJ headers only.
pub const STATE_TABLE: TableSchema = TableSchema {
    name: "StateTable",
    partition_key: "pk",
    sort_key: Some("sk"),
    indexes: &[
        IndexSchema {
            name: "by_user_keys",
            partition_key: "gsi1pk",
            sort_key: Some("gsi1sk"),
            projection: Projection::KeysOnly,
        },
        IndexSchema {
            name: "by_user_status_keys",
            partition_key: "gsi2pk",
            sort_key: Some("gsi2sk"),
            projection: Projection::KeysOnly,
        },
        IndexSchema {
            name: "by_cj_job_keys",
            partition_key: "cj_job_id",
            sort_key: Some("sk"),
            projection: Projection::KeysOnly,
        },
        IndexSchema {
            name: "by_facts_wait",
            partition_key: "gsi3pk",
            sort_key: Some("gsi3sk"),
            projection: Projection::KeysOnly,
        },
    ],
};

/// `ras-state`'s indexes before issue 15 (every index `ALL`, `by_essay` present): what the
/// "before" figures of docs/benchmarks.md were measured with, and what a stack deployed before
/// issue 15 still has until it migrates (docs/operations.md, "Index migration").
pub const STATE_TABLE_BEFORE_ISSUE_15: TableSchema = TableSchema {
    name: "StateTable",
    partition_key: "pk",
    sort_key: Some("sk"),
    indexes: &[
        IndexSchema {
            name: "by_user",
            partition_key: "gsi1pk",
            sort_key: Some("gsi1sk"),
            projection: Projection::All,
        },
        IndexSchema {
            name: "by_user_status",
            partition_key: "gsi2pk",
            sort_key: Some("gsi2sk"),
            projection: Projection::All,
        },
        IndexSchema {
            name: "by_essay",
            partition_key: "essay_id",
            sort_key: Some("pk"),
            projection: Projection::All,
        },
        IndexSchema {
            name: "by_cj_job",
            partition_key: "cj_job_id",
            sort_key: Some("sk"),
            projection: Projection::All,
        },
        IndexSchema {
            name: "by_facts_wait",
            partition_key: "gsi3pk",
            sort_key: Some("gsi3sk"),
            projection: Projection::KeysOnly,
        },
    ],
};

/// `ras-outbox` as `template.yaml` defines it (`OutboxTable`).
pub const OUTBOX_TABLE: TableSchema = TableSchema {
    name: "OutboxTable",
    partition_key: "ordering_key",
    sort_key: Some("position"),
    indexes: &[
        IndexSchema {
            name: "by_event_id",
            partition_key: "event_id",
            sort_key: None,
            projection: Projection::KeysOnly,
        },
        IndexSchema {
            name: "by_created_day",
            partition_key: "created_day",
            sort_key: Some("created_at"),
            projection: Projection::All,
        },
    ],
};

impl TableSchema {
    /// The primary key of an item (`None` when it lacks a key attribute).
    pub fn key_of(&self, item: &Item) -> Option<ItemKey> {
        ItemKey::of(item, self.partition_key, self.sort_key)
    }

    fn key_attributes(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.partition_key).chain(self.sort_key)
    }

    /// The index of that name.
    pub fn index(&self, name: &str) -> Option<&'static IndexSchema> {
        self.indexes.iter().find(|index| index.name == name)
    }
}

/// A primary key (or an index key): partition value and, if the schema has one, sort value.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemKey {
    pub partition: AttributeValue,
    pub sort: Option<AttributeValue>,
}

impl ItemKey {
    /// The values of the key attributes `partition` and `sort` of `item`; `None` when one is
    /// missing.
    fn of(item: &Item, partition: &str, sort: Option<&str>) -> Option<ItemKey> {
        Some(ItemKey {
            partition: item.get(partition)?.clone(),
            sort: match sort {
                Some(name) => Some(item.get(name)?.clone()),
                None => None,
            },
        })
    }
}

/// What one table write costs on one index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexWrite {
    /// Entries put into the index (new, or updated in place).
    pub puts: u32,
    /// Entries deleted from it.
    pub deletes: u32,
    /// Bytes of the entries written or deleted.
    pub bytes: u64,
    /// Write capacity units (standard writes).
    pub units: u64,
}

impl IndexWrite {
    pub fn writes(&self) -> u32 {
        self.puts + self.deletes
    }

    fn add(&mut self, other: IndexWrite) {
        self.puts += other.puts;
        self.deletes += other.deletes;
        self.bytes += other.bytes;
        self.units += other.units;
    }
}

impl IndexSchema {
    /// The item's key in this index, if it has every key attribute (otherwise it is not in
    /// the index: indexes are sparse).
    pub fn key_of(&self, item: &Item) -> Option<ItemKey> {
        ItemKey::of(item, self.partition_key, self.sort_key)
    }

    /// Whether a `Query` of this index may name `attribute` (index and table keys, and the
    /// projected attributes). A global secondary index cannot fetch others from the table.
    pub fn projects(&self, table: &TableSchema, attribute: &str) -> bool {
        let included: &[&str] = match self.projection {
            Projection::All => return true,
            Projection::KeysOnly => &[],
            Projection::Include(names) => names,
        };
        [self.partition_key]
            .into_iter()
            .chain(self.sort_key)
            .chain(table.key_attributes())
            .chain(included.iter().copied())
            .any(|name| name == attribute)
    }

    /// The item's entry in this index (`None` when it is not in it): the index keys, the table
    /// keys and the projected attributes.
    pub fn entry(&self, table: &TableSchema, item: &Item) -> Option<Item> {
        self.key_of(item)?;
        if self.projection == Projection::All {
            return Some(item.clone());
        }
        let included: &[&str] = match self.projection {
            Projection::Include(names) => names,
            _ => &[],
        };
        let names = [self.partition_key]
            .into_iter()
            .chain(self.sort_key)
            .chain(table.key_attributes())
            .chain(included.iter().copied());
        Some(
            names
                .filter_map(|name| Some((name.to_string(), item.get(name)?.clone())))
                .collect(),
        )
    }

    /// What replacing `old` by `new` in the table costs on this index (either may be absent:
    /// a new item, a deleted one). Module docs, "Global secondary indexes".
    pub fn write(&self, table: &TableSchema, old: Option<&Item>, new: Option<&Item>) -> IndexWrite {
        let old = old.and_then(|item| self.entry(table, item));
        let new = new.and_then(|item| self.entry(table, item));
        let put = |entry: &Item| {
            let bytes = item_size(entry);
            IndexWrite {
                puts: 1,
                deletes: 0,
                bytes,
                units: write_units(bytes),
            }
        };
        let delete = |entry: &Item| {
            let bytes = item_size(entry);
            IndexWrite {
                puts: 0,
                deletes: 1,
                bytes,
                units: write_units(bytes),
            }
        };
        match (old, new) {
            (None, None) => IndexWrite::default(),
            (None, Some(new)) => put(&new),
            (Some(old), None) => delete(&old),
            (Some(old), Some(new)) if self.key_of(&old) != self.key_of(&new) => {
                let mut cost = delete(&old);
                cost.add(put(&new));
                cost
            }
            (Some(old), Some(new)) if old == new => IndexWrite::default(),
            (Some(old), Some(new)) => {
                // Updated in place: charged like an update, by the larger entry.
                let bytes = item_size(&old).max(item_size(&new));
                IndexWrite {
                    puts: 1,
                    deletes: 0,
                    bytes,
                    units: write_units(bytes),
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------- costs

/// What a set of reads cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadCost {
    /// Read requests (`Query` pages, `GetItem`s).
    pub requests: u32,
    pub items: u64,
    pub bytes: u64,
    pub units: f64,
}

impl ReadCost {
    pub fn add(&mut self, other: &ReadCost) {
        self.requests += other.requests;
        self.items += other.items;
        self.bytes += other.bytes;
        self.units += other.units;
    }
}

/// What a set of writes cost, on a table and on each of its indexes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteCost {
    /// Items written to (or deleted from, or checked in) the table.
    pub items: u32,
    /// Bytes charged on the table (per item the larger of before and after).
    pub bytes: u64,
    /// Write capacity units on the table (transactional ones doubled).
    pub units: u64,
    /// Per index (by name): its writes.
    pub indexes: BTreeMap<&'static str, IndexWrite>,
}

impl WriteCost {
    pub fn add(&mut self, other: &WriteCost) {
        self.items += other.items;
        self.bytes += other.bytes;
        self.units += other.units;
        for (name, write) in &other.indexes {
            self.indexes.entry(name).or_default().add(*write);
        }
    }

    /// Write units of every index together.
    pub fn index_units(&self) -> u64 {
        self.indexes.values().map(|w| w.units).sum()
    }

    /// Table and index write units.
    pub fn total_units(&self) -> u64 {
        self.units + self.index_units()
    }
}

// -------------------------------------------------------------------------- the tables

/// A table's items by key, in key order within a partition (string keys: the store's), with
/// their sizes: what a replay costs its requests against.
#[derive(Clone, Debug)]
pub struct MemoryTable {
    schema: &'static TableSchema,
    /// partition value → sort value → (item, size).
    partitions: HashMap<String, BTreeMap<String, (Item, u64)>>,
}

/// Why a request could not be costed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CostError {
    #[error("item lacks the key attributes of table {table}")]
    MissingKey { table: &'static str },
    #[error("no table named `{0}`")]
    UnknownTable(String),
    #[error("unsupported transaction action: {0}")]
    Unsupported(&'static str),
}

fn key_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.clone(),
        AttributeValue::B(blob) => hex::encode(blob.as_ref()),
        other => format!("{other:?}"),
    }
}

impl MemoryTable {
    pub fn new(schema: &'static TableSchema) -> Self {
        MemoryTable {
            schema,
            partitions: HashMap::new(),
        }
    }

    pub fn schema(&self) -> &'static TableSchema {
        self.schema
    }

    fn locate(&self, item: &Item) -> Result<(String, String), CostError> {
        let key = self.schema.key_of(item).ok_or(CostError::MissingKey {
            table: self.schema.name,
        })?;
        Ok((
            key_text(&key.partition),
            key.sort.as_ref().map(key_text).unwrap_or_default(),
        ))
    }

    /// The stored item with the key of `item` (which may be just a key).
    pub fn get(&self, item: &Item) -> Result<Option<&Item>, CostError> {
        let (partition, sort) = self.locate(item)?;
        Ok(self
            .partitions
            .get(&partition)
            .and_then(|p| p.get(&sort))
            .map(|(item, _)| item))
    }

    /// Number of items stored.
    pub fn len(&self) -> usize {
        self.partitions.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a `Query` of one whole partition reads: its requests (1 MB pages), items, bytes
    /// and read units.
    pub fn query_cost(&self, partition: &str, consistency: Consistency) -> ReadCost {
        let mut cost = ReadCost::default();
        let mut page = 0u64;
        let mut page_open = false;
        for (_, size) in self
            .partitions
            .get(partition)
            .into_iter()
            .flat_map(|p| p.values())
        {
            page += size;
            page_open = true;
            cost.items += 1;
            cost.bytes += size;
            if page >= QUERY_PAGE_BYTES {
                cost.requests += 1;
                cost.units += read_units(page, consistency);
                page = 0;
                page_open = false;
            }
        }
        if page_open || cost.requests == 0 {
            cost.requests += 1;
            cost.units += read_units(page, consistency);
        }
        cost
    }

    /// What a `BatchGetItem` of `keys` reads (one request): "DynamoDB processes each item in
    /// the batch as an individual `GetItem` request", each item's size rounded up to 4 KB on
    /// its own (read-write-operations.html, BatchGetItem) — at least one unit per key, found
    /// or not (`read_units`).
    pub fn get_cost(&self, keys: &[Item], consistency: Consistency) -> Result<ReadCost, CostError> {
        let mut cost = ReadCost {
            requests: 1,
            ..ReadCost::default()
        };
        for key in keys {
            let size = self.get(key)?.map(item_size).unwrap_or(0);
            cost.items += u64::from(size > 0);
            cost.bytes += size;
            cost.units += read_units(size, consistency);
        }
        Ok(cost)
    }

    /// The items of one partition in sort-key order, as a `Query` returns them.
    pub fn query_items(&self, partition: &str) -> Vec<Item> {
        self.partitions
            .get(partition)
            .into_iter()
            .flat_map(|p| p.values().map(|(item, _)| item.clone()))
            .collect()
    }

    /// Cost of writing `new` in place of what is stored under its key (without storing it).
    fn write_cost(&self, old: Option<&Item>, new: Option<&Item>, factor: u64) -> WriteCost {
        let bytes = old
            .map(item_size)
            .unwrap_or(0)
            .max(new.map(item_size).unwrap_or(0));
        WriteCost {
            items: 1,
            bytes,
            units: write_units(bytes) * factor,
            indexes: self
                .schema
                .indexes
                .iter()
                .map(|index| (index.name, index.write(self.schema, old, new)))
                .collect(),
        }
    }

    /// Put `item` (replacing any item with its key) and return what the put costs; `factor`
    /// is 1 for a standard write, [`TRANSACTIONAL_WRITE_FACTOR`] in a transaction.
    pub fn put(&mut self, item: Item, factor: u64) -> Result<WriteCost, CostError> {
        let (partition, sort) = self.locate(&item)?;
        let old = self.partitions.get(&partition).and_then(|p| p.get(&sort));
        let cost = self.write_cost(old.map(|(item, _)| item), Some(&item), factor);
        let size = item_size(&item);
        self.partitions
            .entry(partition)
            .or_default()
            .insert(sort, (item, size));
        Ok(cost)
    }

    /// Delete the item with the key of `key` and return what the delete costs.
    pub fn delete(&mut self, key: &Item, factor: u64) -> Result<WriteCost, CostError> {
        let (partition, sort) = self.locate(key)?;
        let old = self
            .partitions
            .get_mut(&partition)
            .and_then(|p| p.remove(&sort));
        // Deleting nothing still costs one write unit on the table, and no index write.
        Ok(self.write_cost(old.as_ref().map(|(item, _)| item), None, factor))
    }

    /// What a condition check of the item with the key of `key` costs: a write of the item's
    /// size (module docs, "Transactions"), no index write.
    pub fn check_cost(&self, key: &Item, factor: u64) -> Result<WriteCost, CostError> {
        let old = self.get(key)?;
        let bytes = old.map(item_size).unwrap_or(0);
        Ok(WriteCost {
            items: 1,
            bytes,
            units: write_units(bytes) * factor,
            indexes: BTreeMap::new(),
        })
    }
}

/// Several tables by their (deployed) names: where a replay applies and costs requests.
#[derive(Clone, Debug, Default)]
pub struct MemoryDatabase {
    tables: BTreeMap<String, MemoryTable>,
}

/// What one `TransactWriteItems` cost, per table (by name).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactionCost {
    pub actions: u32,
    pub tables: BTreeMap<String, WriteCost>,
}

impl MemoryDatabase {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an empty table named `name` with `schema`.
    pub fn with_table(mut self, name: &str, schema: &'static TableSchema) -> Self {
        self.tables
            .insert(name.to_string(), MemoryTable::new(schema));
        self
    }

    pub fn table(&self, name: &str) -> Result<&MemoryTable, CostError> {
        self.tables
            .get(name)
            .ok_or_else(|| CostError::UnknownTable(name.to_string()))
    }

    pub fn table_mut(&mut self, name: &str) -> Result<&mut MemoryTable, CostError> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| CostError::UnknownTable(name.to_string()))
    }

    /// Apply a `TransactWriteItems` request's actions (puts, deletes, condition checks; its
    /// conditions are not evaluated: the caller decides whether it commits) and return what it
    /// cost. Every action is costed against the items as they were before the transaction
    /// (no two actions of a transaction may touch one item).
    pub fn transact_write(
        &mut self,
        actions: &[TransactWriteItem],
    ) -> Result<TransactionCost, CostError> {
        let factor = TRANSACTIONAL_WRITE_FACTOR;
        let mut cost = TransactionCost::default();
        for action in actions {
            cost.actions += 1;
            let (table, write) = if let Some(put) = action.put() {
                let table = put.table_name();
                (
                    table,
                    self.table_mut(table)?.put(put.item().clone(), factor)?,
                )
            } else if let Some(delete) = action.delete() {
                let table = delete.table_name();
                (table, self.table_mut(table)?.delete(delete.key(), factor)?)
            } else if let Some(check) = action.condition_check() {
                let table = check.table_name();
                (table, self.table(table)?.check_cost(check.key(), factor)?)
            } else {
                // An update's result depends on its expression, which this model does not
                // evaluate; the store sends none.
                return Err(CostError::Unsupported("Update"));
            };
            cost.tables
                .entry(table.to_string())
                .or_default()
                .add(&write);
        }
        Ok(cost)
    }

    /// Apply standard puts (a `BatchWriteItem`'s) to table `name` and return what they cost.
    pub fn batch_put(&mut self, name: &str, items: Vec<Item>) -> Result<WriteCost, CostError> {
        let table = self.table_mut(name)?;
        let mut cost = WriteCost::default();
        for item in items {
            cost.add(&table.put(item, 1)?);
        }
        Ok(cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put};

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.into())
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn strings_binaries_booleans_and_nulls() {
        // Name bytes + value bytes, UTF-8 both.
        assert_eq!(item_size(&item(&[("pk", s("BATCH#b-1"))])), 2 + 9);
        assert_eq!(item_size(&item(&[("namn", s("Åsa"))])), 4 + 4);
        assert_eq!(item_size(&item(&[("ä", s(""))])), 2);
        let blob = AttributeValue::B(Blob::new(vec![0u8; 100]));
        assert_eq!(item_size(&item(&[("body_gzip", blob)])), 9 + 100);
        assert_eq!(
            item_size(&item(&[
                ("ok", AttributeValue::Bool(true)),
                ("x", AttributeValue::Null(true))
            ])),
            2 + 1 + 1 + 1
        );
    }

    #[test]
    fn numbers_by_significant_digits() {
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("7"), 2);
        assert_eq!(number_size("12"), 2);
        assert_eq!(number_size("123"), 3);
        assert_eq!(number_size("1000"), 2, "trailing zeroes trimmed");
        assert_eq!(number_size("0.0025"), 2, "leading zeroes trimmed");
        assert_eq!(number_size("-1.25"), 3, "sign and point are not digits");
        assert_eq!(number_size("1764237600"), 5);
        assert_eq!(number_size("2.5E+10"), 2, "exponent is not a digit");
        assert_eq!(item_size(&item(&[("version", n("42"))])), 7 + 2);
    }

    #[test]
    fn lists_and_maps_have_three_bytes_plus_one_per_element() {
        assert_eq!(value_size(&AttributeValue::L(vec![])), 3);
        assert_eq!(value_size(&AttributeValue::M(HashMap::new())), 3);
        // ["ab", "c"]: 3 + (1 + 2) + (1 + 1)
        assert_eq!(value_size(&AttributeValue::L(vec![s("ab"), s("c")])), 8);
        // {"k": "vv", "n": 5}: 3 + (1 + 1 + 2) + (1 + 1 + 2)
        let map = item(&[("k", s("vv")), ("n", n("5"))]);
        assert_eq!(value_size(&AttributeValue::M(map.clone())), 11);
        // Nested: a list of that map.
        assert_eq!(
            value_size(&AttributeValue::L(vec![AttributeValue::M(map)])),
            3 + 1 + 11
        );
        assert_eq!(
            value_size(&AttributeValue::Ss(vec!["a".into(), "bcd".into()])),
            4
        );
    }

    #[test]
    fn read_units_round_whole_requests_up_to_4_kb() {
        assert_eq!(read_units(0, Consistency::Strong), 1.0);
        assert_eq!(read_units(1, Consistency::Strong), 1.0);
        assert_eq!(read_units(4096, Consistency::Strong), 1.0);
        assert_eq!(read_units(4097, Consistency::Strong), 2.0);
        // The documented example: 40.8 KB → 44 KB → 11 units strongly consistent.
        assert_eq!(read_units(41_779, Consistency::Strong), 11.0);
        assert_eq!(read_units(41_779, Consistency::Eventual), 5.5);
        assert_eq!(read_units(41_779, Consistency::Transactional), 22.0);
    }

    #[test]
    fn write_units_round_each_item_up_to_1_kb() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(500), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(write_units(1_638), 2, "1.6 KB → 2 KB");
    }

    fn essay_item(id: &str, padding: usize) -> Item {
        item(&[
            ("pk", s("BATCH#b")),
            ("sk", s(&format!("ESSAY#{id}"))),
            ("essay_id", s(id)),
            ("text", s(&"x".repeat(padding))),
        ])
    }

    fn root_item(status: &str, padding: usize) -> Item {
        item(&[
            ("pk", s("BATCH#b")),
            ("sk", s("#ROOT")),
            ("gsi1pk", s("USER#t")),
            ("gsi1sk", s("2025#b")),
            ("gsi2pk", s(&format!("USER#t#STATUS#{status}"))),
            ("gsi2sk", s("2025#b")),
            ("text", s(&"x".repeat(padding))),
        ])
    }

    #[test]
    fn index_writes_follow_the_documented_cases() {
        // The indexes before issue 15: projection ALL.
        let table = &STATE_TABLE_BEFORE_ISSUE_15;
        let by_user = table.index("by_user").unwrap();
        let by_user_status = table.index("by_user_status").unwrap();
        let by_essay = table.index("by_essay").unwrap();
        let by_facts_wait = table.index("by_facts_wait").unwrap();
        let old = root_item("a", 1_500);
        let same_status = root_item("a", 2_500);
        let new_status = root_item("b", 2_500);
        // New item with the key: one put, sized by the entry (projection ALL: the item).
        let put = by_user.write(table, None, Some(&old));
        assert_eq!((put.puts, put.deletes), (1, 0));
        assert_eq!(put.bytes, item_size(&old));
        assert_eq!(put.units, 2);
        // Key unchanged, projected attributes changed: one write, the larger entry.
        let update = by_user_status.write(table, Some(&old), Some(&same_status));
        assert_eq!((update.puts, update.deletes), (1, 0));
        assert_eq!(update.units, 3);
        // Key changed: delete the old entry and put the new one.
        let moved = by_user_status.write(table, Some(&old), Some(&new_status));
        assert_eq!((moved.puts, moved.deletes), (1, 1));
        assert_eq!(moved.units, 2 + 3);
        // Not in the index before or after: free.
        assert_eq!(
            by_essay.write(table, Some(&old), Some(&new_status)),
            IndexWrite::default()
        );
        assert_eq!(
            by_facts_wait.write(table, Some(&old), Some(&new_status)),
            IndexWrite::default()
        );
        // Key removed: one delete.
        let mut left = new_status.clone();
        left.remove("gsi2pk");
        let removed = by_user_status.write(table, Some(&new_status), Some(&left));
        assert_eq!((removed.puts, removed.deletes), (0, 1));
        // An index needs every key attribute: half a key is no entry.
        assert!(by_user_status.entry(table, &left).is_none());
    }

    #[test]
    fn keys_only_entries_hold_the_index_and_table_keys() {
        let by_facts_wait = STATE_TABLE.index("by_facts_wait").unwrap();
        let mut root = root_item("a", 3_000);
        root.insert("gsi3pk".into(), s("AWAITING_FACTS"));
        root.insert("gsi3sk".into(), s("2025-11-27T10:40:00.000000Z#b"));
        let entry = by_facts_wait.entry(&STATE_TABLE, &root).unwrap();
        let mut names: Vec<_> = entry.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["gsi3pk", "gsi3sk", "pk", "sk"]);
        let put = by_facts_wait.write(&STATE_TABLE, None, Some(&root));
        assert_eq!(put.units, 1, "a small entry of a 3 KB item");
        // The root rewritten with the same keys: the keys-only entry does not change.
        let mut bigger = root.clone();
        bigger.insert("text".into(), s(&"y".repeat(5_000)));
        assert_eq!(
            by_facts_wait.write(&STATE_TABLE, Some(&root), Some(&bigger)),
            IndexWrite::default()
        );
        let include = IndexSchema {
            name: "i",
            partition_key: "gsi1pk",
            sort_key: None,
            projection: Projection::Include(&["gsi2pk"]),
        };
        let entry = include.entry(&STATE_TABLE, &root).unwrap();
        let mut names: Vec<_> = entry.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["gsi1pk", "gsi2pk", "pk", "sk"]);
    }

    #[test]
    fn keys_only_user_indexes_cost_nothing_while_the_keys_stay() {
        let by_user = STATE_TABLE.index("by_user_keys").unwrap();
        let by_user_status = STATE_TABLE.index("by_user_status_keys").unwrap();
        let old = root_item("a", 1_500);
        let bigger = root_item("a", 90_000);
        let new_status = root_item("b", 90_000);
        // A root rewrite that keeps its keys: no index write at all, whatever its size.
        for index in [by_user, by_user_status] {
            assert_eq!(
                index.write(&STATE_TABLE, Some(&old), Some(&bigger)),
                IndexWrite::default(),
                "{}",
                index.name
            );
        }
        // A status change moves a small entry: a delete and a put of 1 unit each.
        let moved = by_user_status.write(&STATE_TABLE, Some(&old), Some(&new_status));
        assert_eq!((moved.puts, moved.deletes, moved.units), (1, 1, 2));
        assert!(moved.bytes < 2 * 200, "{} bytes", moved.bytes);
        // What a Query of each index may ask for.
        assert!(by_user.projects(&STATE_TABLE, "pk"));
        assert!(by_user.projects(&STATE_TABLE, "gsi1sk"));
        assert!(!by_user.projects(&STATE_TABLE, "gsi2pk"));
        assert!(!by_user.projects(&STATE_TABLE, "batch_id"));
        let by_cj_job = STATE_TABLE.index("by_cj_job_keys").unwrap();
        assert!(by_cj_job.projects(&STATE_TABLE, "cj_job_id"));
        assert!(by_cj_job.projects(&STATE_TABLE, "sk"));
        assert!(!by_cj_job.projects(&STATE_TABLE, "chunk_count"));
        assert!(STATE_TABLE.index("by_essay").is_none());
        let before = STATE_TABLE_BEFORE_ISSUE_15.index("by_user").unwrap();
        assert!(before.projects(&STATE_TABLE_BEFORE_ISSUE_15, "batch_id"));
        let include = IndexSchema {
            name: "i",
            partition_key: "gsi1pk",
            sort_key: None,
            projection: Projection::Include(&["gsi2pk"]),
        };
        assert!(include.projects(&STATE_TABLE, "gsi2pk"));
        assert!(!include.projects(&STATE_TABLE, "gsi1sk"));
    }

    #[test]
    fn puts_cost_the_larger_of_before_and_after() {
        let mut table = MemoryTable::new(&STATE_TABLE_BEFORE_ISSUE_15);
        let first = table.put(essay_item("e1", 3_000), 1).unwrap();
        assert_eq!(first.units, 3);
        assert_eq!(first.indexes["by_essay"].units, 3);
        assert_eq!(first.indexes["by_user"], IndexWrite::default());
        // Replaced by a smaller item: still charged for the larger one.
        let second = table.put(essay_item("e1", 10), 2).unwrap();
        assert_eq!(second.units, 3 * 2, "transactional: doubled");
        assert_eq!(
            second.indexes["by_essay"].units, 3,
            "index writes are not doubled"
        );
        assert_eq!(table.len(), 1);
        let deleted = table.delete(&essay_item("e1", 0), 1).unwrap();
        assert_eq!(deleted.units, 1);
        assert_eq!(deleted.indexes["by_essay"].deletes, 1);
        assert!(table.is_empty());
    }

    #[test]
    fn a_query_is_one_read_of_everything_it_returns_per_1_mb_page() {
        let mut table = MemoryTable::new(&STATE_TABLE);
        assert_eq!(
            table.query_cost("BATCH#b", Consistency::Strong),
            ReadCost {
                requests: 1,
                items: 0,
                bytes: 0,
                units: 1.0
            }
        );
        for i in 0..10 {
            table.put(essay_item(&format!("e{i}"), 1_000), 1).unwrap();
        }
        let each = item_size(&essay_item("e0", 1_000));
        let cost = table.query_cost("BATCH#b", Consistency::Strong);
        assert_eq!(cost.items, 10);
        assert_eq!(cost.bytes, 10 * each);
        // Ten ~1 KB items together: 3 units, not ten.
        assert_eq!(cost.units, (10 * each).div_ceil(4096) as f64);
        assert_eq!(cost.units, 3.0);
        assert_eq!(table.query_items("BATCH#b").len(), 10);
        assert!(table.query_items("BATCH#other").is_empty());
        // Past 1 MB: a second request.
        for i in 0..4 {
            table
                .put(essay_item(&format!("big{i}"), 300_000), 1)
                .unwrap();
        }
        let cost = table.query_cost("BATCH#b", Consistency::Strong);
        assert_eq!(cost.requests, 2);
        assert_eq!(cost.items, 14);
        assert!(cost.units >= (cost.bytes.div_ceil(4096)) as f64);
    }

    #[test]
    fn a_transaction_costs_twice_per_item_and_its_index_writes_once() {
        let mut db = MemoryDatabase::new()
            .with_table("state", &STATE_TABLE_BEFORE_ISSUE_15)
            .with_table("outbox", &OUTBOX_TABLE);
        let put = |table: &str, item: Item| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item))
                        .build()
                        .unwrap(),
                )
                .build()
        };
        let outbox = item(&[
            ("ordering_key", s("b")),
            ("position", s("2025#0001#id")),
            ("event_id", s("id")),
            ("created_day", s("2025-11-27")),
            ("created_at", s("2025-11-27T10:00:00.000000Z")),
            ("body", s(&"x".repeat(2_000))),
        ]);
        let cost = db
            .transact_write(&[
                put("state", root_item("a", 1_500)),
                put("state", essay_item("e1", 100)),
                put("outbox", outbox.clone()),
            ])
            .unwrap();
        assert_eq!(cost.actions, 3);
        let state = &cost.tables["state"];
        assert_eq!(state.items, 2);
        assert_eq!(state.units, 2 * 2 + 2);
        assert_eq!(state.indexes["by_user"].units, 2);
        assert_eq!(state.indexes["by_user_status"].units, 2);
        assert_eq!(state.indexes["by_essay"].units, 1);
        assert_eq!(state.index_units(), 5);
        assert_eq!(state.total_units(), 11);
        let outbox_cost = &cost.tables["outbox"];
        assert_eq!(outbox_cost.units, 2 * 3);
        assert_eq!(outbox_cost.indexes["by_event_id"].units, 1);
        assert_eq!(outbox_cost.indexes["by_created_day"].units, 3);
        // A condition check: a write of the item checked, doubled; a delete of the root.
        let key = item(&[("pk", s("BATCH#b")), ("sk", s("#ROOT"))]);
        let check = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name("state")
                    .set_key(Some(key.clone()))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .unwrap(),
            )
            .build();
        let cost = db.transact_write(&[check]).unwrap();
        assert_eq!(cost.tables["state"].units, 2 * 2);
        assert_eq!(cost.tables["state"].index_units(), 0);
        let delete = TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name("state")
                    .set_key(Some(key))
                    .build()
                    .unwrap(),
            )
            .build();
        let cost = db.transact_write(&[delete]).unwrap();
        assert_eq!(cost.tables["state"].indexes["by_user"].deletes, 1);
        assert_eq!(db.table("state").unwrap().len(), 1);
        assert!(matches!(
            db.transact_write(&[put("nope", outbox)]),
            Err(CostError::UnknownTable(_))
        ));
    }

    #[test]
    fn batch_puts_are_standard_writes() {
        let mut db = MemoryDatabase::new().with_table("state", &STATE_TABLE_BEFORE_ISSUE_15);
        let cost = db
            .batch_put("state", vec![essay_item("a", 2_000), essay_item("b", 10)])
            .unwrap();
        assert_eq!(cost.items, 2);
        assert_eq!(cost.units, 2 + 1);
        assert_eq!(cost.indexes["by_essay"].puts, 2);
    }
}
