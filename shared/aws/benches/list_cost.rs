//! Issue 15, item 5: what `GET /internal/v1/batches/user/{user_id}` (`list_user_batches`) costs
//! in DynamoDB reads for a user with 1,000 batches, at offsets 0, 500 and 990 (limits 20 and
//! 100), the count (`total`) included — with the user index as it was (projection `ALL`, the
//! id pages and a `Select=COUNT` pass) and as it is (`by_user_keys`, keys only, one pass that
//! counts and picks the page).
//!
//! The index entries are built with the store's own encoder: one batch is replayed through the
//! ingest use case (`ras_domain::testing::batches::batch_records` into the domain's in-memory
//! store: registration, slots, spellcheck, both phase outcomes, the CJ result, BOS's
//! completion), its final root is encoded with `items::encode_root` under 1,000 batch ids and
//! registration times (same-length ids: same sizes), and each root's entry in the index is what
//! `capacity::IndexSchema::entry` says the projection keeps. Each `Query` page is then costed
//! with DynamoDB's rules (`ras_aws::dynamo::capacity`): a page reads entries until its `Limit`
//! or 1 MB, and is charged for the entries' total size rounded up to 4 KB, half a unit per 4 KB
//! (index reads are eventually consistent). A projection expression does not lower the charge:
//! it is the size of the entries read, not of the attributes returned; `COUNT` reads the same.
//!
//! The listed batches are then each read from their partition (strongly consistent `Query`, as
//! `GetBatch`): the same before and after, shown apart. Their items are encoded with the item
//! encoders and checked to decode to the replayed aggregate.
//!
//! ```sh
//! cargo bench -p ras-aws --bench list_cost                  # 30- and 500-essay batches
//! RAS_LIST_ESSAYS=3,30 cargo bench -p ras-aws --bench list_cost
//! ```

use ras_aws::dynamo::capacity::{
    item_size, read_units, Consistency, IndexSchema, MemoryTable, TableSchema, QUERY_PAGE_BYTES,
    STATE_TABLE, STATE_TABLE_BEFORE_ISSUE_15,
};
use ras_aws::dynamo::items::{self, batch_pk, decode_aggregate, Item};
use ras_domain::model::BatchAggregate;
use ras_domain::testing::batches::{batch_records, replay_in_memory, ticking_clock, BatchShape};
use ras_domain::testing::events as ev;

mod support;
use support::{kb, units};
const TEACHER: &str = "teacher-7f3a9c";
/// Batches of the user.
const BATCHES: usize = 1_000;
/// The reader's largest `Limit` while skipping to the offset, before issue 15.
const OLD_MAX_PAGE: usize = 1_000;

/// A UUID-shaped batch id (36 characters, like the service's).
fn batch_id(i: usize) -> String {
    format!("{:08x}-8d7a-4e3b-9c10-{:012x}", 0x5b1f_4c2e_u32, i)
}

/// One whole batch through the ingest use case: its final aggregate.
fn replay(essays: usize) -> BatchAggregate {
    let id = batch_id(0);
    let records = batch_records(&id, TEACHER, &BatchShape::all_succeed(essays), 0);
    let memory = replay_in_memory(&records, ticking_clock(ev::at_minute(30.0)));
    let aggregate = memory.aggregate(&id).expect("aggregate");
    assert!(aggregate.is_registered() && aggregate.root.results_ready.is_some());
    aggregate
}

/// The batch's partition as the store writes it (root, roster, essays, phase outcomes, CJ
/// header and chunks), checked to decode back to the aggregate.
fn partition(aggregate: &BatchAggregate) -> MemoryTable {
    let mut table = MemoryTable::new(&STATE_TABLE);
    let mut put = |item: Item| {
        table.put(item, 1).expect("keyed item");
    };
    put(items::encode_root(&aggregate.root).expect("root"));
    if let Some(registration) = &aggregate.root.registration {
        let key = &registration.provenance.event_key;
        items::encode_roster(&aggregate.root.batch_id, key, &registration.essay_ids)
            .expect("roster")
            .into_iter()
            .for_each(&mut put);
    }
    for essay in aggregate.essays.values() {
        put(items::encode_essay(essay).expect("essay"));
    }
    for phase in aggregate.phases.values() {
        put(items::encode_phase(&aggregate.root.batch_id, phase).expect("phase"));
    }
    for job in aggregate.cj_jobs.values() {
        let job = items::encode_cj_job(job).expect("CJ job");
        put(job.header);
        job.chunks.into_iter().for_each(&mut put);
    }
    let pk = batch_pk(&aggregate.root.batch_id);
    let decoded = decode_aggregate(&aggregate.root.batch_id, table.query_items(&pk))
        .expect("the partition decodes");
    assert_eq!(
        &decoded, aggregate,
        "the partition holds the whole aggregate"
    );
    table
}

/// The user's 1,000 roots: the replayed root under other ids, registered a minute apart.
fn roots(aggregate: &BatchAggregate, batches: usize) -> Vec<Item> {
    (0..batches)
        .map(|i| {
            let mut root = aggregate.root.clone();
            root.batch_id = batch_id(i);
            let registration = root.registration.as_mut().expect("registered");
            registration.provenance.occurred_at = ev::at_minute(i as f64);
            items::encode_root(&root).expect("root")
        })
        .collect()
}

/// The sizes of the user's entries in `index`, in `Query` order (newest first).
fn entry_sizes(table: &TableSchema, index: &IndexSchema, roots: &[Item]) -> Vec<u64> {
    let mut entries: Vec<(String, u64)> = roots
        .iter()
        .map(|root| {
            let entry = index
                .entry(table, root)
                .expect("a registered root is indexed");
            let sort = items::get_s(&entry, items::GSI1SK)
                .expect("sort key")
                .to_string();
            (sort, item_size(&entry))
        })
        .collect();
    entries.sort_by(|a, b| b.0.cmp(&a.0));
    entries.into_iter().map(|(_, size)| size).collect()
}

/// Requests and read units of some `Query` pages.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Reads {
    requests: u32,
    units: f64,
    bytes: u64,
}

impl Reads {
    fn plus(self, other: Reads) -> Reads {
        Reads {
            requests: self.requests + other.requests,
            units: self.units + other.units,
            bytes: self.bytes + other.bytes,
        }
    }
}

/// One `Query` page from entry `start`: up to `limit` entries, ending once 1 MB is read (as
/// `capacity::MemoryTable::query_cost` pages). The entry after the page, and its cost.
fn query_page(sizes: &[u64], start: usize, limit: Option<usize>) -> (usize, Reads) {
    let mut end = start;
    let mut bytes = 0;
    while end < sizes.len() && limit.is_none_or(|l| end - start < l) {
        bytes += sizes[end];
        end += 1;
        if bytes >= QUERY_PAGE_BYTES {
            break;
        }
    }
    let reads = Reads {
        requests: 1,
        units: read_units(bytes, Consistency::Eventual),
        bytes,
    };
    (end, reads)
}

/// Every page to the end (`Select=COUNT`, or the one-pass read).
fn read_all(sizes: &[u64]) -> Reads {
    let mut reads = Reads::default();
    let mut at = 0;
    loop {
        let (end, page) = query_page(sizes, at, None);
        reads = reads.plus(page);
        at = end;
        if at >= sizes.len() {
            return reads;
        }
    }
}

/// Before issue 15 (`reader.rs` then): id pages of `Limit = offset + limit - seen` (at most
/// 1,000) until the page is full, and, concurrently, a `Select=COUNT` pass over every entry.
fn before(sizes: &[u64], limit: usize, offset: usize) -> (Reads, usize) {
    let mut reads = Reads::default();
    let (mut seen, mut listed) = (0, 0);
    loop {
        let wanted = (offset + limit - seen).clamp(1, OLD_MAX_PAGE);
        let (end, page) = query_page(sizes, seen, Some(wanted));
        reads = reads.plus(page);
        listed += end.saturating_sub(offset.max(seen)).min(limit - listed);
        seen = end;
        if listed == limit || seen >= sizes.len() {
            break;
        }
    }
    (reads.plus(read_all(sizes)), listed)
}

/// Now (`reader.rs`, `user_page`): one pass over the keys-only entries, counting them and
/// taking the page on the way.
fn after(sizes: &[u64], limit: usize, offset: usize) -> (Reads, usize) {
    let listed = sizes.len().saturating_sub(offset).min(limit);
    (read_all(sizes), listed)
}

fn report(essays: usize) {
    let aggregate = replay(essays);
    let table = partition(&aggregate);
    let load = table.query_cost(&batch_pk(&aggregate.root.batch_id), Consistency::Strong);
    let roots = roots(&aggregate, BATCHES);
    let old_index = STATE_TABLE_BEFORE_ISSUE_15
        .index("by_user")
        .expect("by_user");
    let new_index = STATE_TABLE
        .index(items::INDEX_BY_USER)
        .expect("by_user_keys");
    let old_sizes = entry_sizes(&STATE_TABLE_BEFORE_ISSUE_15, old_index, &roots);
    let new_sizes = entry_sizes(&STATE_TABLE, new_index, &roots);
    let total = |sizes: &[u64]| sizes.iter().sum::<u64>();
    println!(
        "### {BATCHES} batches of {essays} essays per user\n\n\
         Index entries: `{}` ({:?}) {} each, {} in all; `{}` ({:?}) {} each, {} in all. \
         A listed batch's partition read (consistent `Query`, as `GetBatch`): {} request(s), \
         {} items, {}, {} RCU.\n",
        old_index.name,
        old_index.projection,
        kb(old_sizes[0]),
        kb(total(&old_sizes)),
        new_index.name,
        new_index.projection,
        kb(new_sizes[0]),
        kb(total(&new_sizes)),
        load.requests,
        load.items,
        kb(load.bytes),
        units(load.units),
    );
    println!(
        "| offset | limit | listed | before: index `Query` requests | before: index RCU | \
         after: index `Query` requests | after: index RCU | + batch reads (requests / RCU) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for limit in [20, 100] {
        for offset in [0, 500, 990] {
            let (old, listed) = before(&old_sizes, limit, offset);
            let (new, listed_now) = after(&new_sizes, limit, offset);
            assert_eq!(listed, listed_now, "both list the same page");
            println!(
                "| {offset} | {limit} | {listed} | {} | {} | {} | {} | {} / {} |",
                old.requests,
                units(old.units),
                new.requests,
                units(new.units),
                listed as u32 * load.requests,
                units(listed as f64 * load.units),
            );
        }
    }
    println!();
}

/// The bound: the keys-only pass at other list lengths (any offset, any limit).
fn report_bound(essays: usize) {
    let aggregate = replay(essays);
    println!(
        "### The bound: one keys-only pass, at any offset and limit\n\n\
         | batches of the user | entries | `Query` requests | RCU |\n|---|---|---|---|"
    );
    for batches in [20, 100, 1_000, 10_000, 100_000] {
        let roots = roots(&aggregate, batches);
        let index = STATE_TABLE
            .index(items::INDEX_BY_USER)
            .expect("by_user_keys");
        let sizes = entry_sizes(&STATE_TABLE, index, &roots);
        let reads = read_all(&sizes);
        println!(
            "| {batches} | {} | {} | {} |",
            kb(reads.bytes),
            reads.requests,
            units(reads.units)
        );
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it:
    // one small batch size then.
    let sizes = support::sizes("RAS_LIST_ESSAYS", &[30, 500], &[3]);
    println!("## The user list at {BATCHES} batches (capacity model: ras_aws::dynamo::capacity)\n");
    for &essays in &sizes {
        report(essays);
    }
    report_bound(sizes[0]);
}
