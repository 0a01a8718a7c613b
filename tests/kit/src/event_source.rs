//! A simulated Lambda event source mapping (issue 11): Amazon MSK and DynamoDB streams, with
//! AWS's documented semantics, each rule with its source. The reliability suite drives the real
//! handlers with it; tests pin the semantics (`tests/tests/event_source.rs`). See
//! `docs/reliability.md` ("Modelled event-source semantics"). Part of `ras-test-kit`, so that
//! the tests, the local pipeline and the benches can share it.
//!
//! The simulator knows nothing of the handlers: a *lane* is a Kafka partition or a stream shard,
//! an ordered list of records; [`EventSource::poll`] hands out the next batch of a lane and
//! [`EventSource::complete`] applies the invocation's outcome ([`Outcome`]) the way Lambda
//! does — resume, retry, bisect, give up and hand the destination what it documents.
//! [`kafka_outcome`] and [`stream_outcome`] turn a function's partial batch response into an
//! [`Outcome`] per lane.
//!
//! Sources (AWS Lambda Developer Guide):
//!
//! * [KAFKA_RETRY] — Kafka retry configurations: MaximumRetryAttempts does not count the first
//!   attempt, -1 = infinite; *"When you configure both infinite retries and an on-failure
//!   destination, Lambda automatically applies a maximum of 10 retry attempts"*; maximum record
//!   age (-1 = infinite); split batch on error; partial batch response (*"so Lambda can retry
//!   only the failed records"*).
//! * [KAFKA_ON_FAILURE] — Kafka on-failure destinations: *"Each record sent to the destination is
//!   a JSON document containing metadata about the failed invocation. For Amazon S3
//!   destinations, Lambda also sends the entire invocation record"*.
//! * [KAFKA_TOPIC_DESTINATION] — a Kafka topic as on-failure destination: *"Kafka destinations
//!   receive the actual failed records along with failure metadata"*; the 10-retry cap again.
//! * [DDB_PARTIAL] — DynamoDB partial batch response: *"If the batchItemFailures array contains
//!   multiple items, Lambda uses the record with the lowest sequence number as the checkpoint.
//!   Lambda then retries all records starting from that checkpoint"*; an empty or null
//!   `itemIdentifier`, or one naming no record of the batch, fails the whole batch; with
//!   BisectBatchOnFunctionError a failed invocation is split in two *"regardless of your
//!   ReportBatchItemFailures setting"*, a partial response is *"bisected at the returned
//!   sequence number and Lambda only retries the remaining records"*.
//! * [DDB_ERRORS] — DynamoDB error handling: a function error is retried *"until the records
//!   expire, exceed the maximum age … or reach the configured retry quota"*; *"Splitting a
//!   batch does not count towards the retry quota"*; then Lambda *"discards the records and
//!   continues processing batches from the stream"*; destinations get a JSON document with
//!   metadata about the failed invocation (shard, sequence-number range).
//! * [DDB_PARAMS] — DynamoDB event source parameters: MaximumRecordAgeInSeconds -1 means
//!   infinite, *"The data retention limit for DynamoDB Streams is 24 hours"*.
//! * [SAM_STREAMS] — SAM stream event properties: with a retry or age limit and no `OnFailure`
//!   destination *"the records will be bypassed"*.
//! * [ESM_AT_LEAST_ONCE] — event source mappings: *"Lambda event source mappings process each
//!   event at least once, and duplicate processing of records can occur"* (rebalances, lost
//!   responses).
//! * [TIMEOUT] — a function that times out returns an error to the event source (the
//!   invocation fails as a whole; DDB_ERRORS recommends bisecting *"to isolate bad records and
//!   work around timeout issues"*).
//!
//! [KAFKA_RETRY]: https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html
//! [KAFKA_ON_FAILURE]: https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html
//! [KAFKA_TOPIC_DESTINATION]: https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure-destination.html
//! [DDB_PARTIAL]: https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
//! [DDB_ERRORS]: https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
//! [DDB_PARAMS]: https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html
//! [SAM_STREAMS]: https://github.com/aws/serverless-application-model/blob/develop/versions/2016-10-31.md
//! [ESM_AT_LEAST_ONCE]: https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html
//! [TIMEOUT]: https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html

use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What the event source reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// Amazon MSK (or self-managed Kafka): lanes are partitions.
    Kafka,
    /// A DynamoDB stream: lanes are shards.
    DynamoDbStream,
}

/// The kind of an `OnFailure` destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    Sqs,
    Sns,
    S3,
    /// `kafka://<topic>` (Kafka sources only).
    KafkaTopic,
}

/// An event source mapping's configuration, as the template sets it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSourceConfig {
    pub kind: SourceKind,
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumRetryAttempts` (-1 = infinite). Retries do not count the first attempt
    /// [KAFKA_RETRY].
    pub maximum_retry_attempts: i64,
    /// `MaximumRecordAgeInSeconds` (`None` = -1, infinite).
    pub maximum_record_age: Option<Duration>,
    /// `BisectBatchOnFunctionError`.
    pub bisect_batch_on_function_error: bool,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// `DestinationConfig.OnFailure`.
    pub on_failure: Option<OnFailure>,
    /// The function's `Timeout`: an invocation running longer fails as a whole [TIMEOUT].
    pub function_timeout: Duration,
}

/// DynamoDB Streams keep records 24 hours [DDB_PARAMS].
pub const STREAM_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The retry cap Lambda applies to a Kafka source with infinite retries and an on-failure
/// destination [KAFKA_RETRY], [KAFKA_TOPIC_DESTINATION].
pub const KAFKA_CAP_WITH_DESTINATION: u32 = 10;

impl EventSourceConfig {
    /// The number of retries after which Lambda gives up on a record (`None`: never, until the
    /// record expires or exceeds the maximum age).
    pub fn retry_cap(&self) -> Option<u32> {
        match (self.kind, self.maximum_retry_attempts, self.on_failure) {
            // [KAFKA_RETRY]: infinite retries + an on-failure destination = at most 10.
            (SourceKind::Kafka, n, Some(_)) if n < 0 => Some(KAFKA_CAP_WITH_DESTINATION),
            (_, n, _) if n < 0 => None,
            (_, n, _) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }

    /// How long the source keeps a record at all (`None`: the suite's Kafka topics keep them).
    pub fn retention(&self) -> Option<Duration> {
        match self.kind {
            SourceKind::DynamoDbStream => Some(STREAM_RETENTION),
            SourceKind::Kafka => None,
        }
    }

    /// Whether an invocation that took `took` ran past the function's timeout: Lambda stops it
    /// and the invocation fails as a whole ([`Outcome::FunctionError`]) [TIMEOUT].
    pub fn timed_out(&self, took: Duration) -> bool {
        took > self.function_timeout
    }

    /// Whether the destination receives the records themselves or only metadata about them
    /// ([KAFKA_ON_FAILURE], [KAFKA_TOPIC_DESTINATION], [DDB_ERRORS]).
    pub fn destination_gets_records(&self) -> bool {
        matches!(self.on_failure, Some(OnFailure::KafkaTopic | OnFailure::S3))
    }

    /// Read the event source of `function`'s event `event` from a SAM template.
    pub fn from_template(template: &Value, function: &str, event: &str) -> Result<Self, String> {
        let resource = &template["Resources"][function];
        let properties = &resource["Properties"];
        let source = &properties["Events"][event];
        let p = &source["Properties"];
        let kind = match source["Type"].as_str() {
            Some("MSK") | Some("SelfManagedKafka") => SourceKind::Kafka,
            Some("DynamoDB") => SourceKind::DynamoDbStream,
            other => return Err(format!("{function}.{event}: unsupported type {other:?}")),
        };
        let number = |v: &Value, default: i64| -> Result<i64, String> {
            resolve(template, v)
                .map(|n| n.unwrap_or(default))
                .map_err(|e| format!("{function}.{event}: {e}"))
        };
        let timeout = match &properties["Timeout"] {
            Value::Null => &template["Globals"]["Function"]["Timeout"],
            t => t,
        };
        let on_failure = match &p["DestinationConfig"]["OnFailure"]["Destination"] {
            Value::Null => None,
            destination => Some(destination_kind(template, destination)?),
        };
        let batch_default = match kind {
            SourceKind::Kafka => 100,
            SourceKind::DynamoDbStream => 100,
        };
        Ok(EventSourceConfig {
            kind,
            batch_size: usize::try_from(number(&p["BatchSize"], batch_default)?)
                .map_err(|e| e.to_string())?,
            maximum_retry_attempts: number(&p["MaximumRetryAttempts"], -1)?,
            maximum_record_age: match number(&p["MaximumRecordAgeInSeconds"], -1)? {
                n if n < 0 => None,
                n => Some(Duration::from_secs(n.unsigned_abs())),
            },
            bisect_batch_on_function_error: p["BisectBatchOnFunctionError"]
                .as_bool()
                .unwrap_or(false),
            report_batch_item_failures: p["FunctionResponseTypes"].as_sequence().is_some_and(|s| {
                s.iter()
                    .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
            }),
            on_failure,
            // Lambda's default timeout is 3 s.
            function_timeout: Duration::from_secs(number(timeout, 3)?.unsigned_abs()),
        })
    }
}

/// A number, or a `!Ref` to a parameter with a default; `Ok(None)` when absent.
fn resolve(template: &Value, v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or(format!("not an integer: {n}")),
        Value::String(s) => s.parse().map(Some).map_err(|e| format!("{s:?}: {e}")),
        Value::Tagged(t) if t.tag == "!Ref" || t.tag == "Ref" => {
            let name = t.value.as_str().ok_or("!Ref of a non-string")?;
            let default = &template["Parameters"][name]["Default"];
            match default {
                Value::Null => Err(format!("parameter {name} has no default")),
                d => resolve(template, d),
            }
        }
        other => Err(format!("cannot resolve {other:?}")),
    }
}

/// The kind of resource an `OnFailure.Destination` names.
fn destination_kind(template: &Value, destination: &Value) -> Result<OnFailure, String> {
    let kind_of_type = |t: &str| match t {
        "AWS::SQS::Queue" => Ok(OnFailure::Sqs),
        "AWS::SNS::Topic" => Ok(OnFailure::Sns),
        "AWS::S3::Bucket" => Ok(OnFailure::S3),
        other => Err(format!("on-failure destination of type {other}")),
    };
    match destination {
        Value::String(s) if s.starts_with("kafka://") => Ok(OnFailure::KafkaTopic),
        Value::String(s) if s.contains(":sqs:") => Ok(OnFailure::Sqs),
        Value::String(s) if s.contains(":sns:") => Ok(OnFailure::Sns),
        Value::String(s) if s.contains(":s3:") => Ok(OnFailure::S3),
        Value::Tagged(t) if t.tag == "!GetAtt" || t.tag == "!Ref" => {
            let name = match &t.value {
                Value::String(s) => s.split('.').next().unwrap_or_default().to_string(),
                Value::Sequence(s) => s
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                other => return Err(format!("destination {other:?}")),
            };
            let resource_type = template["Resources"][name.as_str()]["Type"]
                .as_str()
                .ok_or(format!("destination {name} is not a resource"))?;
            kind_of_type(resource_type)
        }
        other => Err(format!("destination {other:?}")),
    }
}

/// The repository's `template.yaml`.
pub fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The ingest function's MSK event source as `template.yaml` deploys it (parameter defaults).
pub fn deployed_ingest_source_config() -> EventSourceConfig {
    EventSourceConfig::from_template(&template(), "IngestFunction", "HuleEduTopics")
        .unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

/// The relay function's outbox stream event source as `template.yaml` deploys it.
pub fn deployed_relay_source_config() -> EventSourceConfig {
    EventSourceConfig::from_template(&template(), "RelayFunction", "OutboxStream")
        .unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

/// One record of a lane.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord<T> {
    /// Kafka offset, or the stream record's position (increasing within the lane).
    pub id: i64,
    /// When the record was written (simulated time).
    pub appended_at: Duration,
    pub payload: T,
}

/// What the event source hands the function for one lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T> {
    pub lane: String,
    /// Positions `start..end` of the lane.
    pub start: usize,
    pub end: usize,
    pub records: Vec<SourceRecord<T>>,
}

impl<T> Batch<T> {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The index in the batch of the record with `id`.
    pub fn index_of(&self, id: i64) -> Option<usize> {
        self.records.iter().position(|r| r.id == id)
    }
}

/// How an invocation ended, for one lane of its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every record processed (no `batchItemFailures`).
    Success,
    /// A partial batch response: the first record to retry is the batch's `index`-th.
    FailedFrom(usize),
    /// The function returned an error or timed out (or its response is lost): the whole batch
    /// failed [TIMEOUT].
    FunctionError,
}

/// Why records were given up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// `MaximumRetryAttempts` (or the 10-retry cap) exhausted.
    Retries,
    /// Older than `MaximumRecordAgeInSeconds`.
    RecordAge,
    /// Trimmed by the stream's retention before they were processed: no destination sees them.
    Expired,
}

/// Records the event source skipped, as the on-failure destination receives them.
#[derive(Clone, Debug, PartialEq)]
pub struct Discarded<T> {
    pub lane: String,
    pub reason: GiveUp,
    /// Ids (offsets, stream positions) of the first and last record skipped, and how many:
    /// the metadata every destination receives.
    pub first_id: i64,
    pub last_id: i64,
    pub count: usize,
    /// The records themselves: only a Kafka-topic or S3 destination receives them.
    pub records: Option<Vec<T>>,
    /// Whether a destination received anything (none is configured, or the records expired).
    pub sent_to_destination: bool,
}

#[derive(Clone, Debug)]
struct Lane<T> {
    records: Vec<SourceRecord<T>>,
    /// Next position to deliver.
    position: usize,
    /// Failed attempts of the batch that starts at `failing_at`.
    failures: u32,
    failing_at: usize,
    /// After a bisect: batches hold at most `limit` records until `position` reaches `until`.
    bisect: Option<(usize, usize)>,
}

/// Counters of what the event source did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub batches: usize,
    pub records_delivered: usize,
    pub retries: usize,
    pub bisects: usize,
    pub rewinds: usize,
    pub skipped_records: usize,
}

/// One event source mapping over its lanes.
#[derive(Clone, Debug)]
pub struct EventSource<T> {
    config: EventSourceConfig,
    lanes: BTreeMap<String, Lane<T>>,
    discarded: Vec<Discarded<T>>,
    stats: SourceStats,
}

impl<T: Clone> EventSource<T> {
    pub fn new(config: EventSourceConfig) -> Self {
        EventSource {
            config,
            lanes: BTreeMap::new(),
            discarded: Vec::new(),
            stats: SourceStats::default(),
        }
    }

    pub fn config(&self) -> &EventSourceConfig {
        &self.config
    }

    /// Append a record to a lane (ids must increase within a lane).
    pub fn append(&mut self, lane: &str, record: SourceRecord<T>) {
        let lane = self.lanes.entry(lane.to_string()).or_insert_with(|| Lane {
            records: Vec::new(),
            position: 0,
            failures: 0,
            failing_at: 0,
            bisect: None,
        });
        debug_assert!(lane.records.last().is_none_or(|r| r.id < record.id));
        lane.records.push(record);
    }

    /// Lanes with records left to deliver.
    pub fn pending(&self) -> Vec<String> {
        self.lanes
            .iter()
            .filter(|(_, l)| l.position < l.records.len())
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn is_drained(&self) -> bool {
        self.pending().is_empty()
    }

    /// The next position to deliver of a lane, and its length.
    pub fn position(&self, lane: &str) -> Option<(usize, usize)> {
        self.lanes.get(lane).map(|l| (l.position, l.records.len()))
    }

    /// The records of `lane` not delivered yet (from its position on), in order: what the next
    /// batches will hold. Empty for an unknown lane.
    pub fn undelivered(&self, lane: &str) -> &[SourceRecord<T>] {
        self.lanes
            .get(lane)
            .map_or(&[][..], |l| &l.records[l.position.min(l.records.len())..])
    }

    /// The id of the last record appended to `lane`.
    pub fn last_id(&self, lane: &str) -> Option<i64> {
        self.lanes
            .get(lane)
            .and_then(|l| l.records.last())
            .map(|r| r.id)
    }

    /// Where a Kafka consumer of `lane` commits: the offset of the next record to deliver
    /// (the first not yet processed, i.e. a failed record stays uncommitted until it
    /// succeeds or is given up on), or one past the last appended record when everything was
    /// delivered. `None`: nothing appended to the lane.
    pub fn commit_offset(&self, lane: &str) -> Option<i64> {
        match self.undelivered(lane).first() {
            Some(next) => Some(next.id),
            None => self.last_id(lane).map(|id| id + 1),
        }
    }

    /// Everything skipped so far (what the on-failure destination got, and what expired).
    pub fn discarded(&self) -> &[Discarded<T>] {
        &self.discarded
    }

    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// The next batch of `lane` at time `now`, of at most `max` records (and `BatchSize`, and
    /// half the failed batch after a bisect), in the lane's order. Records past the stream's retention or the maximum record age are skipped
    /// first [DDB_PARAMS], [KAFKA_RETRY]. `None`: nothing to deliver.
    pub fn poll(&mut self, lane: &str, max: usize, now: Duration) -> Option<Batch<T>> {
        self.skip_old(lane, now);
        let config = self.config.clone();
        let l = self.lanes.get_mut(lane)?;
        if l.position >= l.records.len() {
            return None;
        }
        let mut size = max.max(1).min(config.batch_size.max(1));
        if let Some((limit, until)) = l.bisect {
            if l.position < until {
                size = size.min(limit).min(until - l.position);
            } else {
                l.bisect = None;
            }
        }
        let start = l.position;
        let end = (start + size).min(l.records.len());
        self.stats.batches += 1;
        self.stats.records_delivered += end - start;
        Some(Batch {
            lane: lane.to_string(),
            start,
            end,
            records: l.records[start..end].to_vec(),
        })
    }

    /// Skip the head records of `lane` that are too old to deliver.
    fn skip_old(&mut self, lane: &str, now: Duration) {
        let retention = self.config.retention();
        let max_age = self.config.maximum_record_age;
        for (limit, reason) in [(retention, GiveUp::Expired), (max_age, GiveUp::RecordAge)] {
            let Some(limit) = limit else { continue };
            let Some(l) = self.lanes.get(lane) else {
                return;
            };
            let start = l.position;
            let end = start
                + l.records[start..]
                    .iter()
                    .take_while(|r| now.saturating_sub(r.appended_at) > limit)
                    .count();
            if end > start {
                self.give_up(lane, start, end, reason);
            }
        }
    }

    /// Lambda's handling of an invocation's outcome for the lane of `batch`.
    pub fn complete(&mut self, batch: &Batch<T>, outcome: Outcome) {
        let config = self.config.clone();
        let Some(l) = self.lanes.get_mut(&batch.lane) else {
            return;
        };
        if l.position != batch.start {
            // A rewind (rebalance) moved the lane meanwhile: the outcome no longer applies.
            return;
        }
        let failed_from = match outcome {
            Outcome::Success => {
                l.position = batch.end;
                l.failures = 0;
                return;
            }
            // Without ReportBatchItemFailures a partial response is not read: a response that
            // lists failures is ignored and the batch counts as a success [DDB_PARTIAL] ("these
            // responses will not be processed by Lambda unless … turned on").
            Outcome::FailedFrom(_) if !config.report_batch_item_failures => {
                l.position = batch.end;
                l.failures = 0;
                return;
            }
            // [DDB_PARTIAL], [KAFKA_RETRY]: resume at the lowest failed record; on a stream with
            // bisect on, the batch is split there: the same.
            Outcome::FailedFrom(i) => batch.start + i.min(batch.len()),
            Outcome::FunctionError => {
                // [DDB_PARTIAL]: a failed invocation is split in two; [DDB_ERRORS]: splitting
                // does not count towards the retry quota.
                if config.bisect_batch_on_function_error && batch.len() > 1 {
                    let half = batch.len().div_ceil(2);
                    l.bisect = Some((half, batch.end));
                    self.stats.bisects += 1;
                    return;
                }
                batch.start
            }
        };
        if failed_from >= batch.end {
            l.position = batch.end;
            l.failures = 0;
            return;
        }
        // Retries are counted per failing batch, i.e. per its first record: progress past it
        // starts a new count (an assumption: the documentation counts "retries" of a batch).
        if failed_from != l.failing_at || l.failures == 0 {
            l.failing_at = failed_from;
            l.failures = 0;
        }
        l.failures += 1;
        l.position = failed_from;
        let retries_so_far = l.failures - 1;
        match config.retry_cap() {
            Some(cap) if retries_so_far >= cap => {
                // The initial attempt and `cap` retries failed: give up on the rest of the
                // batch [KAFKA_RETRY], [DDB_ERRORS].
                self.give_up(&batch.lane, failed_from, batch.end, GiveUp::Retries);
            }
            _ => self.stats.retries += 1,
        }
    }

    /// Skip `start..end` of `lane`: the destination gets what it documents, the lane moves on.
    fn give_up(&mut self, lane: &str, start: usize, end: usize, reason: GiveUp) {
        let records_too = self.config.destination_gets_records();
        let has_destination = self.config.on_failure.is_some() && reason != GiveUp::Expired;
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        let skipped = &l.records[start..end];
        self.discarded.push(Discarded {
            lane: lane.to_string(),
            reason,
            first_id: skipped[0].id,
            last_id: skipped[skipped.len() - 1].id,
            count: skipped.len(),
            records: (has_destination && records_too)
                .then(|| skipped.iter().map(|r| r.payload.clone()).collect()),
            sent_to_destination: has_destination,
        });
        self.stats.skipped_records += end - start;
        l.position = end;
        l.failures = 0;
        l.bisect = None;
    }

    /// A rebalance: the lane is read again from `position` (≤ the current one), the
    /// last committed offset [ESM_AT_LEAST_ONCE].
    pub fn rewind(&mut self, lane: &str, position: usize) {
        if let Some(l) = self.lanes.get_mut(lane) {
            if position < l.position {
                l.position = position;
                l.failures = 0;
                l.bisect = None;
                self.stats.rewinds += 1;
            }
        }
    }
}

/// The outcome per partition of a Kafka invocation over `batches` from its partial batch
/// response (`(partition key, offset)` per reported item). Lambda resumes each partition at its
/// lowest reported offset and everything after it is delivered again [KAFKA_RETRY]. A reported
/// item outside the batch is an error (returned, the partition's batch counts as failed).
pub fn kafka_outcome<T>(
    batches: &[&Batch<T>],
    failures: impl IntoIterator<Item = (String, i64)>,
) -> (Vec<Outcome>, Vec<String>) {
    let mut lowest: BTreeMap<String, i64> = BTreeMap::new();
    for (partition, offset) in failures {
        let e = lowest.entry(partition).or_insert(offset);
        *e = (*e).min(offset);
    }
    let mut problems = Vec::new();
    let outcomes = batches
        .iter()
        .map(|b| match lowest.remove(&b.lane) {
            None => Outcome::Success,
            Some(offset) => match b.index_of(offset) {
                Some(i) => Outcome::FailedFrom(i),
                None => {
                    problems.push(format!("reported {}@{offset}, not in its batch", b.lane));
                    Outcome::FunctionError
                }
            },
        })
        .collect();
    problems.extend(
        lowest
            .keys()
            .map(|p| format!("reported partition {p}, not in its batch")),
    );
    (outcomes, problems)
}

/// The outcome of a stream invocation over `batch` from its `batchItemFailures`' item
/// identifiers (`sequence_number(i)` is the sequence number of the batch's i-th record).
/// The lowest sequence number is the checkpoint; a null or empty identifier, or one not in
/// the batch, fails the whole batch [DDB_PARTIAL].
pub fn stream_outcome<T>(
    batch: &Batch<T>,
    sequence_number: impl Fn(&SourceRecord<T>) -> String,
    failures: impl IntoIterator<Item = Option<String>>,
) -> Outcome {
    let numbers: Vec<String> = batch.records.iter().map(&sequence_number).collect();
    let mut lowest: Option<usize> = None;
    let mut any = false;
    for id in failures {
        any = true;
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return Outcome::FunctionError;
        };
        let Some(i) = numbers.iter().position(|n| *n == id) else {
            return Outcome::FunctionError;
        };
        // Sequence numbers increase along the batch: the lowest is the earliest.
        lowest = Some(lowest.map_or(i, |l| l.min(i)));
    }
    match (any, lowest) {
        (false, _) => Outcome::Success,
        (true, Some(i)) => Outcome::FailedFrom(i),
        (true, None) => Outcome::FunctionError,
    }
}
