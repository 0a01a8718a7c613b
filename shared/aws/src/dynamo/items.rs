//! Item encoding of the state table (`docs/data-model.md`): keys, promoted attributes, and the
//! domain records as DynamoDB attribute maps.
//!
//! Records are written and read with [`attr`] (`serde_dynamo`'s mapping), field by field (so
//! they stay readable in the console and usable in expressions), in their serde form: free-form
//! JSON the domain keeps verbatim (`student_prompt_ref`, `ErrorDetail.details`,
//! `assessment_metadata`) is JSON *text* there (an `S` attribute,
//! `ras_domain::model::json_text`). An item is its keys and `item_type`, the record's attributes
//! beside them, and the item type's promoted attributes ([`Stored`]). Everything round-trips exactly: `decode(encode(x)) == x` for every
//! item type (see the tests below).

use super::attr;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::SecondsFormat;
use ras_domain::contracts::{EssayResultV1, PhaseName, Timestamp};
use ras_domain::model::{BatchAggregate, BatchRoot, CjJobRecord, EssayRecord, PhaseOutcomeRecord};
use ras_domain::ports::{IdempotencyMarker, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// One DynamoDB item as the SDK represents it.
pub type Item = HashMap<String, AttributeValue>;

// Attribute names.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const ITEM_TYPE: &str = "item_type";
pub const VERSION: &str = "version";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const GSI2PK: &str = "gsi2pk";
pub const GSI2SK: &str = "gsi2sk";
pub const GSI3PK: &str = "gsi3pk";
pub const GSI3SK: &str = "gsi3sk";
pub const ESSAY_ID: &str = "essay_id";
pub const BATCH_ID: &str = "batch_id";
pub const CJ_JOB_ID: &str = "cj_job_id";
pub const CHUNK_SET: &str = "chunk_set";
pub const CHUNK_COUNT: &str = "chunk_count";
pub const CHUNK_INDEX: &str = "chunk_index";
pub const PAYLOAD_HASH: &str = "payload_hash";

// Sort keys and index names.
pub const ROOT_SK: &str = "#ROOT";
/// Sort-key prefix of the roster chunks (the registration's essay ids).
pub const ROSTER_PREFIX: &str = "ROSTER#";
/// The registration a roster chunk belongs to (its provenance's event key).
pub const REGISTRATION: &str = "registration";
pub const ESSAY_IDS: &str = "essay_ids";
pub const MARKER_SK: &str = "#MARKER";
// The user and CJ job indexes are keys only (issue 15): new names, because a projection cannot
// be changed in place (docs/operations.md, "Index migration").
pub const INDEX_BY_USER: &str = "by_user_keys";
pub const INDEX_BY_USER_STATUS: &str = "by_user_status_keys";
pub const INDEX_BY_CJ_JOB: &str = "by_cj_job_keys";
pub const INDEX_BY_FACTS_WAIT: &str = "by_facts_wait";
/// `gsi3pk` of every root awaiting facts: the facts timer reads them all from one index
/// partition, oldest wait first. A batch enters and leaves it once (two index writes).
pub const FACTS_WAIT_KEY: &str = "AWAITING_FACTS";

/// Upper bound of one CJ chunk, measured as the JSON size of its essay results (a slight
/// over-estimate of the DynamoDB item size), well below the 400 KB item limit.
pub const MAX_CHUNK_BYTES: usize = 300_000;
/// Hex digits of the SHA-256 of the essay results that name a chunk set.
pub const CHUNK_SET_LEN: usize = 16;

/// `item_type` of every item of the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemType {
    Batch,
    Essay,
    Phase,
    CjJob,
    CjChunk,
    Marker,
    Roster,
}

impl ItemType {
    pub const ALL: [ItemType; 7] = [
        ItemType::Batch,
        ItemType::Essay,
        ItemType::Phase,
        ItemType::CjJob,
        ItemType::CjChunk,
        ItemType::Marker,
        ItemType::Roster,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ItemType::Batch => "batch",
            ItemType::Essay => "essay",
            ItemType::Phase => "phase",
            ItemType::CjJob => "cj_job",
            ItemType::CjChunk => "cj_chunk",
            ItemType::Marker => "marker",
            ItemType::Roster => "roster",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl Serialize for ItemType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An item could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ItemError {
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
    #[error("malformed {what} item: {message}")]
    Decode { what: &'static str, message: String },
}

impl ItemError {
    fn encode(what: &'static str, message: impl ToString) -> Self {
        ItemError::Encode {
            what,
            message: message.to_string(),
        }
    }

    fn decode(what: &'static str, message: impl ToString) -> Self {
        ItemError::Decode {
            what,
            message: message.to_string(),
        }
    }
}

impl From<ItemError> for StoreError {
    fn from(err: ItemError) -> Self {
        match err {
            ItemError::Encode { .. } => StoreError::Permanent {
                kind: "invalid_request",
                message: err.to_string(),
            },
            ItemError::Decode { .. } => StoreError::Permanent {
                kind: "corrupt_item",
                message: err.to_string(),
            },
        }
    }
}

// ------------------------------------------------------------------------------------ keys

pub fn batch_pk(batch_id: &str) -> String {
    format!("BATCH#{batch_id}")
}

pub fn essay_sk(essay_id: &str) -> String {
    format!("ESSAY#{essay_id}")
}

/// Sort key of chunk `index` of the essay ids of the registration recorded by
/// `registration_key` (its provenance's event key): `ROSTER#{16 hex of its SHA-256}#{index:04}`.
/// Each registration has its own keys, so a chunk is never overwritten by another
/// registration's: it may be written ahead of the transaction that makes its registration the
/// root's (as CJ chunks, [`super::commit`]).
pub fn roster_sk(registration_key: &str, index: u32) -> String {
    let mut digest = hex::encode(Sha256::digest(registration_key.as_bytes()));
    digest.truncate(CHUNK_SET_LEN);
    format!("{ROSTER_PREFIX}{digest}#{index:04}")
}

pub fn phase_sk(phase: PhaseName) -> String {
    format!("PHASE#{}", phase.as_str())
}

pub fn cj_header_sk(job_id: &str) -> String {
    format!("CJ#{job_id}")
}

/// Prefix of the sort keys of one chunk set of a CJ job.
pub fn cj_chunk_prefix(job_id: &str, chunk_set: &str) -> String {
    format!("CJ#{job_id}#CHUNK#{chunk_set}#")
}

pub fn cj_chunk_sk(job_id: &str, chunk_set: &str, index: u32) -> String {
    format!("{}{index:04}", cj_chunk_prefix(job_id, chunk_set))
}

/// The primary keys of a batch's root and one of its essays: what a per-essay record reads
/// (`AggregateStore::load_essay`).
pub fn root_and_essay_keys(batch_id: &str, essay_id: &str) -> Vec<Item> {
    let pk = batch_pk(batch_id);
    [ROOT_SK.to_string(), essay_sk(essay_id)]
        .into_iter()
        .map(|sk| Item::from([(PK.to_string(), s(&pk)), (SK.to_string(), s(sk))]))
        .collect()
}

pub fn marker_pk(event_key: &str) -> String {
    format!("EVENT#{event_key}")
}

/// `gsi1pk` of a registered root.
pub fn user_key(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// `gsi2pk` of a registered root.
pub fn user_status_key(user_id: &str, status: &str) -> String {
    format!("USER#{user_id}#STATUS#{status}")
}

/// `gsi1sk` / `gsi2sk`: creation time (fixed width, so it sorts) then the batch id.
pub fn user_sort_key(created_at: Timestamp, batch_id: &str) -> String {
    format!("{}#{batch_id}", sortable_time(created_at))
}

/// `2025-11-27T10:00:00.000000Z`: always six fractional digits, so strings sort as instants.
pub fn sortable_time(ts: Timestamp) -> String {
    ts.as_datetime()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

// ----------------------------------------------------------------------- attribute helpers

/// A string attribute value (key conditions and expression values).
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value (expression values).
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute of an item, if present and of type `S`.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// One item of the state table as written: its keys and type, the record's attributes (one
/// attribute per field) and the item type's promoted attributes (`extra`: the fields of a
/// struct, or `()` for none). Readers decode the record alone: keys and promoted attributes
/// are not fields of it, and serde ignores them.
struct Stored<'a, R: ?Sized, X> {
    pk: String,
    sk: String,
    item_type: ItemType,
    record: &'a R,
    extra: X,
}

/// Besides the record's fields: `pk`, `sk`, `item_type`.
const KEY_ATTRIBUTES: usize = 3;

impl<R: Serialize + ?Sized, X: Serialize> Stored<'_, R, X> {
    /// The item, written with [`attr`] (`serde_dynamo`'s mapping, straight into the SDK's
    /// types); the map is sized for the keys and promoted attributes up front.
    fn encode(self, what: &'static str, extra_attributes: usize) -> Result<Item, ItemError> {
        let mut item = attr::to_map_reserving(self.record, KEY_ATTRIBUTES + extra_attributes)
            .map_err(|e| ItemError::encode(what, e))?;
        match attr::to_attribute_value(&self.extra).map_err(|e| ItemError::encode(what, e))? {
            AttributeValue::M(extra) => item.extend(extra),
            AttributeValue::Null(_) => {}
            _ => {
                return Err(ItemError::encode(
                    what,
                    "promoted attributes are not a struct",
                ))
            }
        }
        item.insert(PK.to_string(), AttributeValue::S(self.pk));
        item.insert(SK.to_string(), AttributeValue::S(self.sk));
        item.insert(
            ITEM_TYPE.to_string(),
            AttributeValue::S(self.item_type.as_str().to_string()),
        );
        Ok(item)
    }
}

fn decode<T: DeserializeOwned>(what: &'static str, item: Item) -> Result<T, ItemError> {
    attr::from_map(item).map_err(|e| ItemError::decode(what, e))
}

// ------------------------------------------------------------------------------ batch root

/// The root's index keys (absent when not indexed): `by_user_keys` / `by_user_status_keys` for registered
/// batches, `by_facts_wait` while awaiting facts.
#[derive(Default, Serialize)]
struct RootIndexKeys {
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi3pk: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi3sk: Option<String>,
}

/// The root item: the record without the registration's essay ids (they are the roster
/// items, [`encode_roster`]: the root stays small however large the batch), `version`
/// (top-level `N`), and for registered batches the `by_user_keys` / `by_user_status_keys` index keys.
pub fn encode_root(root: &BatchRoot) -> Result<Item, ItemError> {
    let mut keys = RootIndexKeys::default();
    if let Some(registration) = &root.registration {
        let sort_key = user_sort_key(registration.provenance.occurred_at, &root.batch_id);
        keys.gsi1pk = Some(user_key(&registration.user_id));
        if let Some(status) = root.derived.overall_status {
            keys.gsi2pk = Some(user_status_key(&registration.user_id, status.as_str()));
            keys.gsi2sk = Some(sort_key.clone());
        }
        keys.gsi1sk = Some(sort_key);
    }
    if let Some(since) = root.awaiting_facts_since {
        keys.gsi3pk = Some(FACTS_WAIT_KEY);
        keys.gsi3sk = Some(format!("{}#{}", sortable_time(since), root.batch_id));
    }
    let mut item = Stored {
        pk: batch_pk(&root.batch_id),
        sk: ROOT_SK.into(),
        item_type: ItemType::Batch,
        record: root,
        extra: keys,
    }
    .encode("batch root", 6)?;
    if let Some(AttributeValue::M(registration)) = item.get_mut(REGISTRATION) {
        registration.remove(ESSAY_IDS);
    }
    Ok(item)
}

/// One roster item: chunk `index` of `count` of the essay ids of the registration recorded by
/// `registration_key` (its provenance's event key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RosterChunk {
    pub registration: String,
    pub chunk_index: u32,
    pub chunk_count: u32,
    pub essay_ids: Vec<String>,
}

/// The roster items of a registration: its essay ids in chunks of at most [`MAX_CHUNK_BYTES`]
/// (at least one, possibly empty). They are written when the registration changes; each names
/// its registration (attribute and sort key, [`roster_sk`]), so chunks of a registration
/// replaced by an earlier one are ignored ([`decode_aggregate`]).
pub fn encode_roster(
    batch_id: &str,
    registration_key: &str,
    essay_ids: &[String],
) -> Result<Vec<Item>, ItemError> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, id) in essay_ids.iter().enumerate() {
        // The attribute's size: the string plus a little list overhead per element.
        let size = id.len() + 3;
        if i > start && bytes + size > MAX_CHUNK_BYTES {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    ranges.push(start..essay_ids.len());
    let count =
        u32::try_from(ranges.len()).map_err(|_| ItemError::encode("roster", "too many chunks"))?;
    ranges
        .into_iter()
        .zip(0u32..)
        .map(|(range, index)| {
            Stored {
                pk: batch_pk(batch_id),
                sk: roster_sk(registration_key, index),
                item_type: ItemType::Roster,
                record: &RosterChunk {
                    registration: registration_key.to_string(),
                    chunk_index: index,
                    chunk_count: count,
                    essay_ids: essay_ids[range].to_vec(),
                },
                extra: (),
            }
            .encode("roster", 0)
        })
        .collect()
}

/// Whether these items of a partition hold a root that carries its registration's essay ids
/// itself (written before the roster existed) and no roster item.
pub fn roster_inline(items: &[Item]) -> bool {
    let mut inline = false;
    for item in items {
        match get_s(item, ITEM_TYPE) {
            Some("roster") => return false,
            Some("batch") => {
                inline = matches!(
                    item.get(REGISTRATION),
                    Some(AttributeValue::M(registration)) if registration.contains_key(ESSAY_IDS)
                )
            }
            _ => {}
        }
    }
    inline
}

pub fn decode_roster(item: Item) -> Result<RosterChunk, ItemError> {
    decode("roster", item)
}

/// The essay ids of `registration_key` from the roster chunks found (any order); `None` when
/// none of them belongs to it. Error when some of its chunks are missing.
fn assemble_roster(
    registration_key: &str,
    chunks: Vec<RosterChunk>,
) -> Result<Option<Vec<String>>, ItemError> {
    let mut mine: Vec<RosterChunk> = chunks
        .into_iter()
        .filter(|c| c.registration == registration_key)
        .collect();
    let Some(count) = mine.first().map(|c| c.chunk_count) else {
        return Ok(None);
    };
    mine.sort_by_key(|c| c.chunk_index);
    let complete = mine.len() == count as usize
        && mine
            .iter()
            .zip(0u32..)
            .all(|(c, i)| c.chunk_index == i && c.chunk_count == count);
    if !complete {
        return Err(ItemError::decode(
            "roster",
            format!(
                "registration `{registration_key}`: chunks {:?} of {count}",
                mine.iter().map(|c| c.chunk_index).collect::<Vec<_>>()
            ),
        ));
    }
    Ok(Some(mine.into_iter().flat_map(|c| c.essay_ids).collect()))
}

/// The `gsi3sk` bound of roots awaiting facts since `cutoff` or earlier (`<=` it: every sort
/// key at `cutoff` continues with `#`, which sorts below this bound's `~`).
pub fn facts_wait_bound(cutoff: Timestamp) -> String {
    format!("{}#~", sortable_time(cutoff))
}

pub fn decode_root(item: Item) -> Result<BatchRoot, ItemError> {
    decode("batch root", item)
}

// ----------------------------------------------------------------------------------- essay

/// The essay item: the record without `batch_id` and `essay_id` (the keys carry both; an
/// essay item stays under 1 KB, one write unit, with them left out — docs/data-model.md).
pub fn encode_essay(essay: &EssayRecord) -> Result<Item, ItemError> {
    let mut item = Stored {
        pk: batch_pk(&essay.batch_id),
        sk: essay_sk(&essay.essay_id),
        item_type: ItemType::Essay,
        record: essay,
        extra: (),
    }
    .encode("essay", 0)?;
    item.remove(BATCH_ID);
    item.remove(ESSAY_ID);
    Ok(item)
}

/// An essay item, with `batch_id` and `essay_id` from its keys when the item does not carry
/// them (items written before they were left out do).
pub fn decode_essay(mut item: Item) -> Result<EssayRecord, ItemError> {
    for (attribute, key, prefix) in [(BATCH_ID, PK, "BATCH#"), (ESSAY_ID, SK, "ESSAY#")] {
        if item.contains_key(attribute) {
            continue;
        }
        let id = get_s(&item, key)
            .and_then(|k| k.strip_prefix(prefix))
            .ok_or_else(|| ItemError::decode("essay", format!("`{key}` is not `{prefix}…`")))?
            .to_string();
        item.insert(attribute.to_string(), s(id));
    }
    decode("essay", item)
}

// ----------------------------------------------------------------------------------- phase

/// The phase record does not name its batch; the item carries `batch_id` besides the key.
pub fn encode_phase(batch_id: &str, phase: &PhaseOutcomeRecord) -> Result<Item, ItemError> {
    #[derive(Serialize)]
    struct BatchId<'a> {
        batch_id: &'a str,
    }
    Stored {
        pk: batch_pk(batch_id),
        sk: phase_sk(phase.phase),
        item_type: ItemType::Phase,
        record: phase,
        extra: BatchId { batch_id },
    }
    .encode("phase outcome", 1)
}

pub fn decode_phase(item: Item) -> Result<PhaseOutcomeRecord, ItemError> {
    decode("phase outcome", item)
}

// ------------------------------------------------------------------------------------- CJ

/// A CJ job as items: the header (the record without `essay_results`) and its chunks.
#[derive(Clone, Debug, PartialEq)]
pub struct CjJobItems {
    pub chunk_set: String,
    pub header: Item,
    pub chunks: Vec<Item>,
}

/// A decoded CJ header: the record with empty `essay_results`, and where they are.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CjHeader {
    #[serde(flatten)]
    pub record: CjJobRecord,
    pub chunk_set: String,
    pub chunk_count: u32,
}

/// The attributes of a CJ header besides its record.
#[derive(Serialize)]
struct CjHeaderAttributes<'a> {
    cj_job_id: &'a str,
    chunk_set: &'a str,
    chunk_count: u32,
}

/// A decoded CJ chunk: one slice of a job's `essay_results`. Its job id comes from its sort key
/// (`CJ#{job}#CHUNK#{set}#{index}`): chunks carry no `cj_job_id` attribute, so they stay out of
/// the `by_cj_job_keys` index (only headers are in it). Chunks written before that change carry
/// the attribute and decode the same.
#[derive(Clone, Debug, PartialEq)]
pub struct CjChunk {
    pub job_id: String,
    pub batch_id: String,
    pub chunk_set: String,
    pub index: u32,
    pub essay_results: Vec<EssayResultV1>,
}

/// A chunk item's attributes as read (`cj_job_id` only on chunks of earlier versions).
#[derive(Deserialize)]
struct ChunkAttributes {
    sk: String,
    #[serde(default)]
    cj_job_id: Option<String>,
    batch_id: String,
    chunk_set: String,
    chunk_index: u32,
    essay_results: Vec<EssayResultV1>,
}

/// The job id in a chunk's sort key `CJ#{job}#CHUNK#{set}#{index}` (the job id may itself
/// contain `#`: the set and index are taken from the end).
pub fn cj_job_of_chunk_sk(sk: &str) -> Option<&str> {
    let rest = sk.strip_prefix("CJ#")?;
    let (rest, index) = rest.rsplit_once('#')?;
    let (rest, set) = rest.rsplit_once('#')?;
    let job = rest.strip_suffix("#CHUNK")?;
    let well_formed = !job.is_empty()
        && !set.is_empty()
        && !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit());
    well_formed.then_some(job)
}

#[derive(Serialize)]
struct ChunkRef<'a> {
    batch_id: &'a str,
    chunk_set: &'a str,
    chunk_index: u32,
    essay_results: &'a [EssayResultV1],
}

/// Content address of a job's results: hex SHA-256 prefix of their JSON.
pub fn chunk_set_of(results: &[EssayResultV1]) -> Result<String, ItemError> {
    let json = serde_json::to_vec(results).map_err(|e| ItemError::encode("CJ essay results", e))?;
    let mut digest = hex::encode(Sha256::digest(&json));
    digest.truncate(CHUNK_SET_LEN);
    Ok(digest)
}

/// Consecutive slices of `results` whose JSON stays within `max_bytes` each (a single result
/// larger than that gets a slice of its own). No slices for no results.
pub fn chunk_ranges(
    results: &[EssayResultV1],
    max_bytes: usize,
) -> Result<Vec<Range<usize>>, ItemError> {
    let mut ranges = Vec::new();
    let (mut start, mut size) = (0, 2); // the enclosing `[]`
    for (i, result) in results.iter().enumerate() {
        let len = serde_json::to_vec(result)
            .map_err(|e| ItemError::encode("CJ essay result", e))?
            .len()
            + 1;
        if i > start && size + len > max_bytes {
            ranges.push(start..i);
            start = i;
            size = 2;
        }
        size += len;
    }
    if start < results.len() {
        ranges.push(start..results.len());
    }
    Ok(ranges)
}

pub fn encode_cj_job(job: &CjJobRecord) -> Result<CjJobItems, ItemError> {
    encode_cj_job_with(job, MAX_CHUNK_BYTES)
}

/// [`encode_cj_job`] with an explicit chunk size (tests).
pub fn encode_cj_job_with(
    job: &CjJobRecord,
    max_chunk_bytes: usize,
) -> Result<CjJobItems, ItemError> {
    let results = &job.result.essay_results;
    let chunk_set = chunk_set_of(results)?;
    let ranges = chunk_ranges(results, max_chunk_bytes)?;
    let pk = batch_pk(&job.batch_id);
    let mut chunks = Vec::with_capacity(ranges.len());
    for (index, range) in ranges.iter().enumerate() {
        let index = u32::try_from(index).map_err(|e| ItemError::encode("CJ chunk", e))?;
        let chunk = ChunkRef {
            batch_id: &job.batch_id,
            chunk_set: &chunk_set,
            chunk_index: index,
            essay_results: &results[range.clone()],
        };
        chunks.push(
            Stored {
                pk: pk.clone(),
                sk: cj_chunk_sk(&job.job_id, &chunk_set, index),
                item_type: ItemType::CjChunk,
                record: &chunk,
                extra: (),
            }
            .encode("CJ chunk", 0)?,
        );
    }
    let mut header = job.clone();
    header.result.essay_results = Vec::new();
    let chunk_count =
        u32::try_from(chunks.len()).map_err(|e| ItemError::encode("CJ job header", e))?;
    let header = Stored {
        pk,
        sk: cj_header_sk(&job.job_id),
        item_type: ItemType::CjJob,
        record: &header,
        extra: CjHeaderAttributes {
            cj_job_id: &job.job_id,
            chunk_set: &chunk_set,
            chunk_count,
        },
    }
    .encode("CJ job header", 3)?;
    Ok(CjJobItems {
        chunk_set,
        header,
        chunks,
    })
}

pub fn decode_cj_header(item: Item) -> Result<CjHeader, ItemError> {
    decode("CJ job header", item)
}

pub fn decode_cj_chunk(item: Item) -> Result<CjChunk, ItemError> {
    let chunk: ChunkAttributes = decode("CJ chunk", item)?;
    let from_key = cj_job_of_chunk_sk(&chunk.sk);
    let job_id = match (chunk.cj_job_id, from_key) {
        (Some(attribute), Some(key)) if attribute != key => {
            return Err(ItemError::decode(
                "CJ chunk",
                format!("`cj_job_id` {attribute} differs from sort key {}", chunk.sk),
            ))
        }
        (_, Some(key)) => key.to_string(),
        (Some(attribute), None) => attribute,
        (None, None) => {
            return Err(ItemError::decode(
                "CJ chunk",
                format!("sort key `{}` names no CJ job", chunk.sk),
            ))
        }
    };
    Ok(CjChunk {
        job_id,
        batch_id: chunk.batch_id,
        chunk_set: chunk.chunk_set,
        index: chunk.chunk_index,
        essay_results: chunk.essay_results,
    })
}

/// The full record from its header and chunks. Chunks of other jobs or other chunk sets
/// (left by an earlier version of the job) are ignored; the header's set must be complete.
pub fn assemble_cj_job(
    header: CjHeader,
    chunks: impl IntoIterator<Item = CjChunk>,
) -> Result<CjJobRecord, ItemError> {
    let CjHeader {
        mut record,
        chunk_set,
        chunk_count,
    } = header;
    let mut parts: BTreeMap<u32, Vec<EssayResultV1>> = BTreeMap::new();
    for chunk in chunks {
        if chunk.job_id == record.job_id && chunk.chunk_set == chunk_set {
            parts.insert(chunk.index, chunk.essay_results);
        }
    }
    let complete = parts.len() == chunk_count as usize && parts.keys().copied().eq(0..chunk_count);
    if !complete {
        return Err(ItemError::decode(
            "CJ job",
            format!(
                "job `{}` names {chunk_count} chunks of set {chunk_set}, found indexes {:?}",
                record.job_id,
                parts.keys().collect::<Vec<_>>()
            ),
        ));
    }
    record.result.essay_results = parts.into_values().flatten().collect();
    Ok(record)
}

// ---------------------------------------------------------------------------------- marker

/// The stored form of [`IdempotencyMarker`]: its fields, `recorded_at` fixed width
/// ([`sortable_time`]).
#[derive(Serialize, Deserialize)]
#[serde(remote = "IdempotencyMarker")]
struct MarkerAttributes {
    event_key: String,
    payload_hash: String,
    topic: String,
    batch_id: String,
    #[serde(with = "sortable")]
    recorded_at: Timestamp,
    expires_at: i64,
}

/// A marker, serialised as [`MarkerAttributes`] (read back through [`ReadMarker`]).
struct WriteMarker<'a>(&'a IdempotencyMarker);

impl Serialize for WriteMarker<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MarkerAttributes::serialize(self.0, serializer)
    }
}

#[derive(Deserialize)]
struct ReadMarker(#[serde(with = "MarkerAttributes")] IdempotencyMarker);

/// A timestamp as [`sortable_time`] text.
mod sortable {
    use super::sortable_time;
    use ras_domain::contracts::Timestamp;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&sortable_time(*ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| D::Error::custom(format!("invalid time `{text}`")))
    }
}

pub fn encode_marker(marker: &IdempotencyMarker) -> Result<Item, ItemError> {
    Stored {
        pk: marker_pk(&marker.event_key),
        sk: MARKER_SK.into(),
        item_type: ItemType::Marker,
        record: &WriteMarker(marker),
        extra: (),
    }
    .encode("idempotency marker", 0)
}

pub fn decode_marker(item: Item) -> Result<IdempotencyMarker, ItemError> {
    decode::<ReadMarker>("idempotency marker", item).map(|m| m.0)
}

// -------------------------------------------------------------------------------- aggregate

/// Any item of the state table, decoded by its `item_type`. (Decoded one at a time and moved
/// into the aggregate at once: the root's size is not worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum StateItem {
    Root(BatchRoot),
    Essay(EssayRecord),
    Phase(PhaseOutcomeRecord),
    CjHeader(CjHeader),
    CjChunk(CjChunk),
    Marker(IdempotencyMarker),
    Roster(RosterChunk),
}

pub fn decode_state_item(item: Item) -> Result<StateItem, ItemError> {
    let type_name = get_s(&item, ITEM_TYPE).ok_or_else(|| {
        ItemError::decode("state", format!("missing string attribute `{ITEM_TYPE}`"))
    })?;
    let item_type = ItemType::parse(type_name)
        .ok_or_else(|| ItemError::decode("state", format!("unknown item_type `{type_name}`")))?;
    Ok(match item_type {
        ItemType::Batch => StateItem::Root(decode_root(item)?),
        ItemType::Essay => StateItem::Essay(decode_essay(item)?),
        ItemType::Phase => StateItem::Phase(decode_phase(item)?),
        ItemType::CjJob => StateItem::CjHeader(decode_cj_header(item)?),
        ItemType::CjChunk => StateItem::CjChunk(decode_cj_chunk(item)?),
        ItemType::Marker => StateItem::Marker(decode_marker(item)?),
        ItemType::Roster => StateItem::Roster(decode_roster(item)?),
    })
}

/// The aggregate from the items of its partition (in any order). No items: a new aggregate.
/// Items of an unknown `item_type` are skipped; malformed known items are an error.
pub fn decode_aggregate(
    batch_id: &str,
    items: impl IntoIterator<Item = Item>,
) -> Result<BatchAggregate, ItemError> {
    let mut agg = BatchAggregate::new(batch_id);
    let mut headers = Vec::new();
    let mut chunks: HashMap<String, Vec<CjChunk>> = HashMap::new();
    let mut roster = Vec::new();
    for item in items {
        // Item types added by a later version are not this version's business.
        let item_type = get_s(&item, ITEM_TYPE);
        if item_type.and_then(ItemType::parse).is_none() {
            tracing::warn!(
                batch_id,
                item_type,
                sk = get_s(&item, SK),
                "skipping unknown item in batch partition"
            );
            continue;
        }
        match decode_state_item(item)? {
            StateItem::Root(root) => agg.root = root,
            StateItem::Essay(essay) => {
                agg.essays.insert(essay.essay_id.clone(), essay);
            }
            StateItem::Phase(phase) => {
                agg.phases.insert(phase.phase, phase);
            }
            StateItem::CjHeader(header) => headers.push(header),
            StateItem::CjChunk(chunk) => {
                chunks.entry(chunk.job_id.clone()).or_default().push(chunk)
            }
            StateItem::Marker(_) => {}
            StateItem::Roster(chunk) => roster.push(chunk),
        }
    }
    if let Some(registration) = agg.root.registration.as_mut() {
        // Roots written before the roster existed carry their essay ids themselves.
        if let Some(ids) = assemble_roster(&registration.provenance.event_key, roster)? {
            registration.essay_ids = ids;
        }
    }
    for header in headers {
        let job_chunks = chunks.remove(&header.record.job_id).unwrap_or_default();
        let job = assemble_cj_job(header, job_chunks)?;
        agg.cj_jobs.insert(job.job_id.clone(), job);
    }
    if agg.root.batch_id != batch_id {
        return Err(ItemError::decode(
            "batch root",
            format!(
                "partition of batch `{batch_id}` holds the root of `{}`",
                agg.root.batch_id
            ),
        ));
    }
    Ok(agg)
}

// ------------------------------------------------------------------------------------ sizes

/// Approximate DynamoDB size of an item (attribute names plus values, as DynamoDB bills it;
/// numbers counted by their text, which over-estimates slightly).
pub fn estimated_item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + attribute_size(value))
        .sum()
}

fn attribute_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + attribute_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + attribute_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) | AttributeValue::Ns(set) => set.iter().map(String::len).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::testdata;

    #[test]
    fn root_round_trips_and_promotes_index_keys() {
        let root = testdata::registered_root("b-1");
        let item = encode_root(&root).unwrap();
        assert_eq!(get_s(&item, PK), Some("BATCH#b-1"));
        assert_eq!(get_s(&item, SK), Some("#ROOT"));
        assert_eq!(get_s(&item, ITEM_TYPE), Some("batch"));
        assert_eq!(item.get(VERSION), Some(&AttributeValue::N("3".into())));
        assert_eq!(get_s(&item, GSI1PK), Some("USER#teacher-1"));
        assert_eq!(
            get_s(&item, GSI1SK),
            Some("2025-11-27T10:00:00.000000Z#b-1")
        );
        assert_eq!(
            get_s(&item, GSI2PK),
            Some("USER#teacher-1#STATUS#processing_pipelines")
        );
        assert_eq!(get_s(&item, GSI2SK), get_s(&item, GSI1SK));
        // Free-form JSON is kept as text, key order included.
        let registration = item["registration"].as_m().unwrap();
        assert_eq!(
            registration["student_prompt_ref"].as_s().unwrap(),
            r#"{"references":{"student_prompt_text":{"storage_id":"p-1","path":""}},"a_float":2.0}"#
        );
        // The essay ids are the roster's, not the root's.
        assert!(!registration.contains_key(ESSAY_IDS));
        assert_eq!(decode_root(item).unwrap(), without_essay_ids(root));
    }

    /// The encoding before [`attr`]: `serde_dynamo` over the record and the promoted attributes
    /// flattened beside the keys. Items stored by earlier versions were written this way.
    #[derive(Serialize)]
    struct SerdeDynamoStored<'a, R: ?Sized, X> {
        pk: &'a str,
        sk: &'a str,
        item_type: &'a str,
        #[serde(flatten)]
        record: &'a R,
        #[serde(flatten)]
        extra: X,
    }

    fn serde_dynamo_item<R: Serialize + ?Sized, X: Serialize>(
        like: &Item,
        record: &R,
        extra: X,
    ) -> Item {
        serde_dynamo::to_item(SerdeDynamoStored {
            pk: get_s(like, PK).unwrap(),
            sk: get_s(like, SK).unwrap(),
            item_type: get_s(like, ITEM_TYPE).unwrap(),
            record,
            extra,
        })
        .unwrap()
    }

    /// Every item type is written attribute for attribute as `serde_dynamo` wrote it, so items of
    /// both kinds sit side by side in a table, and what `serde_dynamo` wrote decodes the same.
    #[test]
    fn items_are_what_serde_dynamo_wrote() {
        // Root: registered, awaiting facts (all six index keys), with every optional part.
        let mut root = testdata::registered_root("b-1");
        root.awaiting_facts_since = Some(testdata::ts("2025-11-27T11:00:00Z"));
        let ours = encode_root(&root).unwrap();
        let mut theirs = serde_dynamo_item(&ours, &root, ());
        for key in [GSI1PK, GSI1SK, GSI2PK, GSI2SK, GSI3PK, GSI3SK] {
            theirs.insert(key.to_string(), ours[key].clone());
        }
        if let Some(AttributeValue::M(registration)) = theirs.get_mut(REGISTRATION) {
            registration.remove(ESSAY_IDS);
        }
        assert_eq!(ours, theirs);
        assert_eq!(decode_root(theirs).unwrap(), without_essay_ids(root));

        for full in [false, true] {
            let essay = testdata::essay("b-1", "e-1", full);
            let ours = encode_essay(&essay).unwrap();
            let mut theirs = serde_dynamo_item(&ours, &essay, ());
            theirs.remove(BATCH_ID);
            theirs.remove(ESSAY_ID);
            assert_eq!(ours, theirs);
            assert_eq!(decode_essay(theirs).unwrap(), essay);
        }

        let phase = testdata::phase();
        let ours = encode_phase("b-1", &phase).unwrap();
        let theirs = serde_dynamo_item(&ours, &phase, BTreeMap::from([(BATCH_ID, "b-1")]));
        assert_eq!(ours, theirs);
        assert_eq!(decode_phase(theirs).unwrap(), phase);

        let job = testdata::cj_job("b-1", "417", 40, 30);
        let ours = encode_cj_job_with(&job, 2_000).unwrap();
        assert!(ours.chunks.len() > 1);
        let mut header = job.clone();
        header.result.essay_results.clear();
        let extra = CjHeaderAttributes {
            cj_job_id: "417",
            chunk_set: &ours.chunk_set,
            chunk_count: ours.chunks.len() as u32,
        };
        assert_eq!(ours.header, serde_dynamo_item(&ours.header, &header, extra));
        for chunk in &ours.chunks {
            let decoded = decode_cj_chunk(chunk.clone()).unwrap();
            let record = ChunkRef {
                batch_id: "b-1",
                chunk_set: &ours.chunk_set,
                chunk_index: decoded.index,
                essay_results: &decoded.essay_results,
            };
            assert_eq!(chunk, &serde_dynamo_item(chunk, &record, ()));
        }

        let roster_ids: Vec<String> = (0..5).map(|i| format!("e-{i}")).collect();
        for chunk in encode_roster("b-1", "event:1", &roster_ids).unwrap() {
            let decoded = decode_roster(chunk.clone()).unwrap();
            assert_eq!(chunk, serde_dynamo_item(&chunk, &decoded, ()));
        }

        let marker = testdata::marker("b-1", "event:1", "h");
        let ours = encode_marker(&marker).unwrap();
        let theirs = serde_dynamo_item(&ours, &WriteMarker(&marker), ());
        assert_eq!(ours, theirs);
        assert_eq!(decode_marker(theirs).unwrap(), marker);
    }

    fn without_essay_ids(mut root: BatchRoot) -> BatchRoot {
        if let Some(r) = root.registration.as_mut() {
            r.essay_ids.clear();
        }
        root
    }

    #[test]
    fn the_roster_holds_the_essay_ids_in_chunks_of_its_registration() {
        let mut root = testdata::registered_root("b-1");
        let key = root
            .registration
            .as_ref()
            .unwrap()
            .provenance
            .event_key
            .clone();
        // 9,000 ids of 64 characters: ~600 KB, three chunks.
        let ids: Vec<String> = (0..9_000).map(|i| format!("{i:064}")).collect();
        root.registration.as_mut().unwrap().essay_ids = ids.clone();
        let roster = encode_roster("b-1", &key, &ids).unwrap();
        assert_eq!(roster.len(), 3);
        for (i, item) in roster.iter().enumerate() {
            assert_eq!(get_s(item, SK), Some(roster_sk(&key, i as u32).as_str()));
            assert_eq!(get_s(item, ITEM_TYPE), Some("roster"));
            assert!(estimated_item_size(item) < 400_000);
        }
        let mut items = vec![encode_root(&root).unwrap()];
        items.extend(roster.iter().rev().cloned());
        // A chunk of a replaced registration is ignored.
        items.extend(encode_roster("b-1", "event:other", &["x".to_string()]).unwrap());
        let agg = decode_aggregate("b-1", items.clone()).unwrap();
        assert_eq!(agg.root, root);
        // A missing chunk is corruption, not a shorter list.
        items.retain(|i| get_s(i, SK) != Some(roster_sk(&key, 1).as_str()));
        assert!(decode_aggregate("b-1", items).is_err());
        // A root stored with its essay ids (before the roster) keeps them.
        let mut old = encode_root(&testdata::registered_root("b-1")).unwrap();
        let Some(AttributeValue::M(registration)) = old.get_mut(REGISTRATION) else {
            panic!("registration map")
        };
        registration.insert(
            ESSAY_IDS.into(),
            AttributeValue::L(vec![s("e-1"), s("e-2")]),
        );
        assert!(roster_inline(std::slice::from_ref(&old)));
        assert!(!roster_inline(&roster));
        assert_eq!(
            decode_aggregate("b-1", [old]).unwrap().root,
            testdata::registered_root("b-1")
        );
        // No essay ids at all: one empty chunk, read back as none.
        assert_eq!(encode_roster("b-1", &key, &[]).unwrap().len(), 1);
    }

    #[test]
    fn a_root_awaiting_facts_is_in_the_facts_wait_index_until_it_stops_waiting() {
        let mut root = testdata::registered_root("b-1");
        assert!(!encode_root(&root).unwrap().contains_key(GSI3PK));
        let since = Timestamp::parse("2025-11-27T10:40:00Z").unwrap();
        root.awaiting_facts_since = Some(since);
        let item = encode_root(&root).unwrap();
        assert_eq!(get_s(&item, GSI3PK), Some(FACTS_WAIT_KEY));
        let sort_key = get_s(&item, GSI3SK).unwrap().to_string();
        assert_eq!(sort_key, "2025-11-27T10:40:00.000000Z#b-1");
        // Within the bound of its own instant and later ones, outside earlier ones.
        assert!(sort_key.as_str() <= facts_wait_bound(since).as_str());
        let earlier = Timestamp::from_unix_micros(since.unix_micros() - 1).unwrap();
        assert!(sort_key.as_str() > facts_wait_bound(earlier).as_str());
        assert_eq!(decode_root(item).unwrap(), without_essay_ids(root));
    }

    #[test]
    fn unregistered_root_has_no_index_keys() {
        let root = BatchRoot::new("b-2");
        let item = encode_root(&root).unwrap();
        for name in [GSI1PK, GSI1SK, GSI2PK, GSI2SK] {
            assert!(!item.contains_key(name), "{name}");
        }
        assert_eq!(decode_root(item).unwrap(), root);
    }

    #[test]
    fn essay_round_trips() {
        for essay in [
            testdata::essay("b-1", "e-1", true),
            testdata::essay("b-1", "e-2", false),
        ] {
            let item = encode_essay(&essay).unwrap();
            assert_eq!(get_s(&item, PK), Some("BATCH#b-1"));
            assert_eq!(
                get_s(&item, SK),
                Some(format!("ESSAY#{}", essay.essay_id).as_str())
            );
            // The keys name batch and essay; the item does not repeat them.
            assert!(!item.contains_key(ESSAY_ID) && !item.contains_key(BATCH_ID));
            assert_eq!(get_s(&item, ITEM_TYPE), Some("essay"));
            assert_eq!(decode_essay(item.clone()).unwrap(), essay);
            // Items written before carry both, and read the same.
            let mut old = item;
            old.insert(ESSAY_ID.into(), s(&essay.essay_id));
            old.insert(BATCH_ID.into(), s("b-1"));
            assert_eq!(decode_essay(old).unwrap(), essay);
        }
    }

    #[test]
    fn phase_round_trips() {
        let phase = testdata::phase();
        let item = encode_phase("b-1", &phase).unwrap();
        assert_eq!(get_s(&item, SK), Some("PHASE#cj_assessment"));
        assert_eq!(get_s(&item, BATCH_ID), Some("b-1"));
        assert_eq!(get_s(&item, ITEM_TYPE), Some("phase"));
        assert_eq!(decode_phase(item).unwrap(), phase);
    }

    #[test]
    fn cj_job_round_trips_through_header_and_chunks() {
        let job = testdata::cj_job("b-1", "417", 40, 300);
        let items = encode_cj_job_with(&job, 4_000).unwrap();
        assert!(items.chunks.len() > 3, "{} chunks", items.chunks.len());
        assert_eq!(items.chunk_set.len(), CHUNK_SET_LEN);
        assert_eq!(get_s(&items.header, SK), Some("CJ#417"));
        assert_eq!(get_s(&items.header, CJ_JOB_ID), Some("417"));
        assert_eq!(
            items.header.get(CHUNK_COUNT),
            Some(&AttributeValue::N(items.chunks.len().to_string()))
        );
        let header_results = items.header["result"].as_m().unwrap()["essay_results"]
            .as_l()
            .unwrap();
        assert!(header_results.is_empty());
        for (i, chunk) in items.chunks.iter().enumerate() {
            assert_eq!(
                get_s(chunk, SK),
                Some(cj_chunk_sk("417", &items.chunk_set, i as u32).as_str())
            );
            assert_eq!(
                get_s(chunk, CJ_JOB_ID),
                None,
                "chunks stay out of by_cj_job_keys"
            );
            assert_eq!(get_s(chunk, ITEM_TYPE), Some("cj_chunk"));
            assert!(
                estimated_item_size(chunk) <= 4_000,
                "chunk {i}: {}",
                estimated_item_size(chunk)
            );
        }
        let header = decode_cj_header(items.header.clone()).unwrap();
        assert_eq!(header.chunk_set, items.chunk_set);
        let chunks: Vec<CjChunk> = items
            .chunks
            .iter()
            .rev()
            .map(|c| decode_cj_chunk(c.clone()).unwrap())
            .collect();
        assert_eq!(assemble_cj_job(header, chunks).unwrap(), job);
    }

    #[test]
    fn cj_job_without_results_has_no_chunks() {
        let job = testdata::cj_job("b-1", "9", 0, 0);
        let items = encode_cj_job(&job).unwrap();
        assert!(items.chunks.is_empty());
        assert_eq!(
            assemble_cj_job(decode_cj_header(items.header).unwrap(), []).unwrap(),
            job
        );
    }

    #[test]
    fn chunk_set_is_content_addressed() {
        let job = testdata::cj_job("b-1", "417", 10, 10);
        let mut other = job.clone();
        other.result.essay_results[3].rank += 1;
        assert_eq!(encode_cj_job(&job).unwrap(), encode_cj_job(&job).unwrap());
        assert_ne!(
            encode_cj_job(&job).unwrap().chunk_set,
            encode_cj_job(&other).unwrap().chunk_set
        );
    }

    #[test]
    fn chunk_job_id_comes_from_the_sort_key() {
        assert_eq!(
            cj_job_of_chunk_sk("CJ#417#CHUNK#0123abcd#0002"),
            Some("417")
        );
        assert_eq!(
            cj_job_of_chunk_sk("CJ#a#CHUNK#b#CHUNK#0123abcd#10000"),
            Some("a#CHUNK#b")
        );
        for not_a_chunk in [
            "CJ#417",
            "CJ#417#CHUNK#0123abcd#",
            "CJ#417#CHUNK##0001",
            "CJ##CHUNK#0123abcd#0001",
            "CJ#417#PART#0123abcd#0001",
            "CJ#417#CHUNK#0123abcd#00x1",
            "ESSAY#e-1",
        ] {
            assert_eq!(cj_job_of_chunk_sk(not_a_chunk), None, "{not_a_chunk}");
        }
        // A job id with `#` round-trips through the chunk's key.
        let job = testdata::cj_job("b-1", "j#CHUNK#7", 5, 100);
        let items = encode_cj_job_with(&job, 1_000).unwrap();
        let chunks = items
            .chunks
            .iter()
            .map(|c| decode_cj_chunk(c.clone()).unwrap());
        let header = decode_cj_header(items.header.clone()).unwrap();
        assert_eq!(assemble_cj_job(header, chunks).unwrap(), job);
    }

    #[test]
    fn chunks_written_with_the_job_id_attribute_still_decode() {
        let job = testdata::cj_job("b-1", "417", 20, 300);
        let items = encode_cj_job_with(&job, 3_000).unwrap();
        let with_attribute = |chunk: &Item, job_id: &str| {
            let mut old = chunk.clone();
            old.insert(CJ_JOB_ID.into(), s(job_id));
            old
        };
        let old: Vec<CjChunk> = items
            .chunks
            .iter()
            .map(|c| decode_cj_chunk(with_attribute(c, "417")).unwrap())
            .collect();
        let new: Vec<CjChunk> = items
            .chunks
            .iter()
            .map(|c| decode_cj_chunk(c.clone()).unwrap())
            .collect();
        assert_eq!(old, new);
        let header = decode_cj_header(items.header.clone()).unwrap();
        assert_eq!(assemble_cj_job(header, old).unwrap(), job);
        // An attribute that contradicts the key is corruption, not a choice.
        let err = decode_cj_chunk(with_attribute(&items.chunks[0], "418")).unwrap_err();
        assert!(matches!(err, ItemError::Decode { .. }), "{err}");
        // So is a chunk whose key names no job, with no attribute to fall back on.
        let mut keyless = items.chunks[0].clone();
        keyless.insert(SK.into(), s("CJ#417"));
        let err = decode_cj_chunk(keyless.clone()).unwrap_err();
        assert!(matches!(err, ItemError::Decode { .. }), "{err}");
        keyless.insert(CJ_JOB_ID.into(), s("417"));
        assert_eq!(decode_cj_chunk(keyless).unwrap().job_id, "417");
    }

    #[test]
    fn assembly_ignores_stale_sets_and_rejects_missing_chunks() {
        let job = testdata::cj_job("b-1", "417", 30, 300);
        let items = encode_cj_job_with(&job, 3_000).unwrap();
        let mut stale = job.clone();
        stale.result.essay_results.truncate(5);
        let stale_items = encode_cj_job_with(&stale, 3_000).unwrap();
        let decode_all = |items: &[Item]| {
            items
                .iter()
                .map(|c| decode_cj_chunk(c.clone()).unwrap())
                .collect::<Vec<_>>()
        };
        let mut chunks = decode_all(&items.chunks);
        chunks.extend(decode_all(&stale_items.chunks));
        let header = decode_cj_header(items.header.clone()).unwrap();
        assert_eq!(assemble_cj_job(header.clone(), chunks).unwrap(), job);
        let mut missing = decode_all(&items.chunks);
        missing.remove(1);
        let err = assemble_cj_job(header, missing).unwrap_err();
        assert!(matches!(err, ItemError::Decode { .. }), "{err}");
    }

    #[test]
    fn chunk_ranges_respect_the_bound() {
        let job = testdata::cj_job("b", "j", 100, 50);
        let results = &job.result.essay_results;
        let ranges = chunk_ranges(results, 2_000).unwrap();
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(100));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for range in &ranges {
            assert!(serde_json::to_vec(&results[range.clone()]).unwrap().len() <= 2_000);
        }
        // A result larger than the bound gets a chunk of its own.
        assert_eq!(
            chunk_ranges(&results[..3], 10).unwrap(),
            vec![0..1, 1..2, 2..3]
        );
        assert!(chunk_ranges(&[], 10).unwrap().is_empty());
    }

    #[test]
    fn marker_round_trips() {
        let marker = testdata::marker("b-1", "event:abc", "hash-1");
        let item = encode_marker(&marker).unwrap();
        assert_eq!(get_s(&item, PK), Some("EVENT#event:abc"));
        assert_eq!(get_s(&item, SK), Some("#MARKER"));
        assert_eq!(get_s(&item, ITEM_TYPE), Some("marker"));
        assert_eq!(get_s(&item, PAYLOAD_HASH), Some("hash-1"));
        assert_eq!(
            get_s(&item, "recorded_at"),
            Some("2025-11-27T10:00:00.500000Z")
        );
        assert_eq!(
            item.get("expires_at"),
            Some(&AttributeValue::N(marker.expires_at.to_string()))
        );
        assert_eq!(decode_marker(item).unwrap(), marker);
    }

    #[test]
    fn aggregate_round_trips_from_its_items() {
        let agg = testdata::aggregate("b-1");
        let mut items = vec![encode_root(&agg.root).unwrap()];
        let registration = agg.root.registration.as_ref().unwrap();
        items.extend(
            encode_roster(
                "b-1",
                &registration.provenance.event_key,
                &registration.essay_ids,
            )
            .unwrap(),
        );
        items.extend(agg.essays.values().map(|e| encode_essay(e).unwrap()));
        items.extend(agg.phases.values().map(|p| encode_phase("b-1", p).unwrap()));
        for job in agg.cj_jobs.values() {
            let job_items = encode_cj_job_with(job, 2_000).unwrap();
            items.extend(job_items.chunks);
            items.push(job_items.header);
        }
        items.reverse();
        assert_eq!(decode_aggregate("b-1", items).unwrap(), agg);
        assert_eq!(
            decode_aggregate("b-9", Vec::new()).unwrap(),
            BatchAggregate::new("b-9")
        );
    }

    #[test]
    fn unknown_item_types_are_skipped_malformed_items_rejected() {
        let mut item = encode_root(&BatchRoot::new("b")).unwrap();
        item.insert(ITEM_TYPE.into(), s("mystery"));
        assert!(matches!(
            decode_state_item(item.clone()),
            Err(ItemError::Decode { .. })
        ));
        let root = testdata::registered_root("b");
        let mut expected = BatchAggregate::new("b");
        expected.root = without_essay_ids(root.clone());
        let items = [item, encode_root(&root).unwrap()];
        assert_eq!(decode_aggregate("b", items).unwrap(), expected);
        let mut broken = encode_essay(&testdata::essay("b", "e", false)).unwrap();
        broken.remove("updated_at");
        assert!(decode_aggregate("b", [broken]).is_err());
        let err: StoreError = ItemError::decode("x", "y").into();
        assert!(matches!(
            err,
            StoreError::Permanent {
                kind: "corrupt_item",
                ..
            }
        ));
    }

    #[test]
    fn sortable_time_is_fixed_width() {
        let ts = |t: &str| sortable_time(Timestamp::parse(t).unwrap());
        assert_eq!(ts("2025-11-27T10:00:00Z"), "2025-11-27T10:00:00.000000Z");
        assert_eq!(ts("2025-11-27T10:00:00.5Z"), "2025-11-27T10:00:00.500000Z");
        assert_eq!(
            ts("2025-11-27T12:00:00.123456+02:00"),
            "2025-11-27T10:00:00.123456Z"
        );
    }
}
