//! The MSK event-source emulator: Lambda's event source mapping for Kafka, reading a real
//! broker. It is the test kit's simulator ([`ras_test_kit::event_source::EventSource`], every
//! rule there cited from AWS's documentation) with a Kafka source: its lanes are the
//! topic-partitions, filled by fetching from the broker; the invocation's partial batch
//! response goes through the kit's [`kafka_outcome`] and [`EventSource::complete`] (resume,
//! retry, give up), and what the kit says is the next record to deliver is committed as the
//! consumer group's offset. So the retry / resume / commit rules live in one place, the kit.
//!
//! What the emulator adds, per [AWS's MSK event source](https://docs.aws.amazon.com/lambda/latest/dg/with-msk.html):
//!
//! * **Starting position** for partitions the group has no committed offset for:
//!   `TRIM_HORIZON` (the log start, the template's) or `LATEST` (the high watermark when the
//!   emulator starts). Committed offsets win. The resolved start is committed at once, so a
//!   restart resumes there.
//! * **Batching**: an invocation holds at most `BatchSize` records (the kit's) and 6 MB of
//!   event; it is sent when it is full or when `MaximumBatchingWindowInSeconds` has passed
//!   since records were first waiting. Records of several partitions share an invocation;
//!   across partitions they are taken in timestamp order (a k-way merge of the partitions,
//!   each in offset order) — AWS documents no order across partitions; this one makes runs
//!   repeatable.
//! * **The event JSON** Lambda builds: `eventSource` `aws:kafka`, `eventSourceArn`,
//!   `bootstrapServers`, `records` keyed `"<topic>-<partition>"`, each record with topic,
//!   partition, offset, timestamp, `timestampType`, base64 key and value, headers
//!   ([`crate::msk`]).
//! * **Commits** after each invocation, for its partitions: the offset of the first record not
//!   yet processed ([`EventSource::commit_offset`]): never past a record the function reported
//!   failed, unless the kit gave it up (retries exhausted: Lambda moves on and the record goes
//!   to the on-failure destination).
//! * A function error (or a response that is not a partial batch response, or an invocation
//!   longer than the function's timeout) fails the invocation as a whole.
//!
//! The broker side is a [`KafkaSource`]: [`crate::broker::BrokerSource`] (rskafka + the
//! group requests of [`crate::group`]), or [`MemorySource`] for tests without a broker.

use crate::msk::{msk_event_json_from, partition_key, MskRecord, MskValue};
use ras_test_kit::event_source::{
    kafka_outcome, Batch, Discarded, EventSource, EventSourceConfig, Outcome, SourceRecord,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Lambda's limit on an invocation payload; events are cut below it.
pub const MAX_EVENT_BYTES: usize = 6_000_000;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where a partition without a committed offset starts (`StartingPosition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    /// The oldest record still in the log (the template's).
    TrimHorizon,
    /// The end of the log when the emulator starts.
    Latest,
}

/// The broker as the event source sees it.
#[allow(async_fn_in_trait)]
pub trait KafkaSource {
    /// The partitions of `topics` (each must exist).
    async fn partitions(&mut self, topics: &[String]) -> Result<Vec<(String, i32)>, SourceError>;
    /// The group's committed offsets of `partitions` (`None`: nothing committed).
    async fn committed(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>, SourceError>;
    /// The first offset still in the log.
    async fn log_start(&mut self, topic: &str, partition: i32) -> Result<i64, SourceError>;
    /// The offset the next produced record gets.
    async fn high_watermark(&mut self, topic: &str, partition: i32) -> Result<i64, SourceError>;
    /// Records from `offset` on (possibly none, possibly not all).
    async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Vec<MskRecord>, SourceError>;
    /// Commit the group's offsets (the next record to read per partition).
    async fn commit(&mut self, offsets: &[((String, i32), i64)]) -> Result<(), SourceError>;
}

/// The emulator's settings.
#[derive(Clone, Debug)]
pub struct EmulatorSettings {
    /// The event source mapping (the kit's: batch size, retries, destination, timeout).
    pub source: EventSourceConfig,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    pub starting_position: StartingPosition,
    pub topics: Vec<String>,
    /// The event's `eventSourceArn` and `bootstrapServers`.
    pub event_source_arn: String,
    pub bootstrap_servers: String,
    /// Pause before a failed partition is delivered again.
    pub retry_delay: Duration,
    /// Pause between fetches while nothing new arrives.
    pub idle_poll: Duration,
}

/// An invocation the emulator built: hand `event` to the function, then give its answer to
/// [`MskEmulator::complete`].
#[derive(Debug)]
pub struct PendingInvocation {
    pub number: usize,
    /// The event JSON.
    pub event: Value,
    /// Its records, as in the event.
    pub records: Vec<MskRecord>,
    /// `<topic>-<partition>` of its batches.
    pub lanes: Vec<String>,
    /// 1 for a first delivery; n when some record of it is delivered for the n-th time.
    pub delivery: u32,
    batches: Vec<Batch<MskRecord>>,
    started: Instant,
}

/// What the function answered.
#[derive(Clone, Debug)]
pub enum InvokeResult {
    /// The response JSON (a partial batch response, or `null`/`{}`: everything processed).
    Response(Value),
    /// The function failed (error, crash, timeout).
    FunctionError(String),
}

/// What the emulator did with an invocation's answer.
#[derive(Clone, Debug)]
pub struct CompletedInvocation {
    pub number: usize,
    pub delivery: u32,
    pub lanes: Vec<String>,
    /// Per lane, the kit's outcome.
    pub outcomes: Vec<(String, Outcome)>,
    /// Reported items that named no record of the batch, an unreadable response, a timeout.
    pub problems: Vec<String>,
    /// Offsets committed after it: `(lane, offset)`.
    pub committed: Vec<(String, i64)>,
    /// Records given up on (retries exhausted) after it.
    pub gave_up: Vec<Discarded<MskRecord>>,
}

#[derive(Clone, Debug)]
struct LaneState {
    topic: String,
    partition: i32,
    next_fetch: i64,
}

/// Counters for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmulatorStats {
    pub fetched_records: usize,
    pub invocations: usize,
    /// OffsetCommit requests.
    pub commit_requests: usize,
    /// Partitions that started from a committed offset / from the starting position.
    pub resumed_partitions: usize,
    pub new_partitions: usize,
}

/// The event source mapping over a [`KafkaSource`]; see the module documentation.
pub struct MskEmulator<S> {
    source: S,
    settings: EmulatorSettings,
    events: EventSource<MskRecord>,
    lanes: BTreeMap<String, LaneState>,
    committed: BTreeMap<String, i64>,
    deliveries: HashMap<(String, i64), u32>,
    started: Instant,
    hold_until: Option<Instant>,
    stats: EmulatorStats,
}

impl<S: KafkaSource> MskEmulator<S> {
    /// Join: read the partitions of the topics and the group's committed offsets; partitions
    /// without one start at the starting position, which is committed.
    pub async fn start(mut source: S, settings: EmulatorSettings) -> Result<Self, SourceError> {
        let partitions = source.partitions(&settings.topics).await?;
        let committed = source.committed(&partitions).await?;
        let mut lanes = BTreeMap::new();
        let mut committed_lanes = BTreeMap::new();
        let mut initial = Vec::new();
        let mut stats = EmulatorStats::default();
        for ((topic, partition), offset) in partitions.into_iter().zip(committed) {
            let start = match offset {
                Some(offset) => {
                    stats.resumed_partitions += 1;
                    offset
                }
                None => {
                    stats.new_partitions += 1;
                    let start = match settings.starting_position {
                        StartingPosition::TrimHorizon => {
                            source.log_start(&topic, partition).await?
                        }
                        StartingPosition::Latest => {
                            source.high_watermark(&topic, partition).await?
                        }
                    };
                    initial.push(((topic.clone(), partition), start));
                    start
                }
            };
            let lane = partition_key(&topic, i64::from(partition));
            committed_lanes.insert(lane.clone(), start);
            lanes.insert(
                lane,
                LaneState {
                    topic,
                    partition,
                    next_fetch: start,
                },
            );
        }
        if !initial.is_empty() {
            source.commit(&initial).await?;
            stats.commit_requests += 1;
        }
        Ok(MskEmulator {
            source,
            events: EventSource::new(settings.source.clone()),
            settings,
            lanes,
            committed: committed_lanes,
            deliveries: HashMap::new(),
            started: Instant::now(),
            hold_until: None,
            stats,
        })
    }

    pub fn settings(&self) -> &EmulatorSettings {
        &self.settings
    }

    pub fn stats(&self) -> &EmulatorStats {
        &self.stats
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The kit's event source (what was skipped, its counters).
    pub fn event_source(&self) -> &EventSource<MskRecord> {
        &self.events
    }

    /// The committed offset of each `<topic>-<partition>`.
    pub fn committed(&self) -> &BTreeMap<String, i64> {
        &self.committed
    }

    /// Whether every lane of `targets` has committed at least its target offset.
    pub fn reached(&self, targets: &BTreeMap<String, i64>) -> bool {
        targets
            .iter()
            .all(|(lane, target)| self.committed.get(lane).is_some_and(|c| c >= target))
    }

    /// Fetch what is new on every partition into the kit's lanes.
    pub async fn refill(&mut self) -> Result<usize, SourceError> {
        let mut fetched = 0;
        let now = self.started.elapsed();
        for (lane, state) in self.lanes.iter_mut() {
            let records = self
                .source
                .fetch(&state.topic, state.partition, state.next_fetch)
                .await?;
            for record in records {
                if record.offset < state.next_fetch {
                    continue;
                }
                state.next_fetch = record.offset + 1;
                fetched += 1;
                self.events.append(
                    lane,
                    SourceRecord {
                        id: record.offset,
                        appended_at: now,
                        payload: record,
                    },
                );
            }
        }
        self.stats.fetched_records += fetched;
        Ok(fetched)
    }

    fn waiting(&self) -> usize {
        self.lanes
            .keys()
            .map(|lane| self.events.undelivered(lane).len())
            .sum()
    }

    /// The next invocation: waits for a full batch or the batching window. `None`: nothing to
    /// deliver after one idle poll (the caller decides whether to wait longer).
    pub async fn next_invocation(&mut self) -> Result<Option<PendingInvocation>, SourceError> {
        if let Some(until) = self.hold_until.take() {
            tokio::time::sleep_until(until.into()).await;
        }
        self.refill().await?;
        let batch_size = self.settings.source.batch_size.max(1);
        let window_start = Instant::now();
        loop {
            let waiting = self.waiting();
            if waiting == 0 {
                tokio::time::sleep(self.settings.idle_poll).await;
                self.refill().await?;
                if self.waiting() == 0 {
                    return Ok(None);
                }
                continue;
            }
            let elapsed = window_start.elapsed();
            if waiting >= batch_size || elapsed >= self.settings.batching_window {
                break;
            }
            let left = self.settings.batching_window - elapsed;
            tokio::time::sleep(left.min(self.settings.idle_poll)).await;
            self.refill().await?;
        }
        Ok(Some(self.build(batch_size)))
    }

    /// Take up to `batch_size` records (and 6 MB) across the lanes in timestamp order.
    fn build(&mut self, batch_size: usize) -> PendingInvocation {
        let lanes: Vec<&String> = self.lanes.keys().collect();
        let mut heads: Vec<usize> = vec![0; lanes.len()];
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut bytes = 0;
        let mut taken = 0;
        while taken < batch_size {
            let next = lanes
                .iter()
                .enumerate()
                .filter_map(|(i, lane)| {
                    self.events
                        .undelivered(lane)
                        .get(heads[i])
                        .map(|r| (r.payload.timestamp_ms, *lane, i, event_bytes(&r.payload)))
                })
                .min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            let Some((_, lane, i, size)) = next else {
                break;
            };
            if taken > 0 && bytes + size > MAX_EVENT_BYTES {
                break;
            }
            bytes += size;
            taken += 1;
            heads[i] += 1;
            *counts.entry(lane.clone()).or_default() += 1;
        }
        let now = self.started.elapsed();
        let mut batches = Vec::new();
        for (lane, count) in &counts {
            if let Some(batch) = self.events.poll(lane, *count, now) {
                batches.push(batch);
            }
        }
        // The event's records in the order they were taken (partitions by first appearance).
        let mut records: Vec<MskRecord> = batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.payload.clone()))
            .collect();
        records.sort_by(|a, b| {
            (a.timestamp_ms, a.partition_key(), a.offset).cmp(&(
                b.timestamp_ms,
                b.partition_key(),
                b.offset,
            ))
        });
        let mut delivery = 1;
        for r in &records {
            let n = self
                .deliveries
                .entry((r.partition_key(), r.offset))
                .or_default();
            *n += 1;
            delivery = delivery.max(*n);
        }
        self.stats.invocations += 1;
        let event = msk_event_json_from(
            &records,
            &self.settings.event_source_arn,
            &self.settings.bootstrap_servers,
        );
        PendingInvocation {
            number: self.stats.invocations,
            event,
            records,
            lanes: batches.iter().map(|b| b.lane.clone()).collect(),
            delivery,
            batches,
            started: Instant::now(),
        }
    }

    /// Apply the function's answer the way Lambda does (the kit), then commit.
    pub async fn complete(
        &mut self,
        invocation: PendingInvocation,
        result: InvokeResult,
    ) -> Result<CompletedInvocation, SourceError> {
        let took = invocation.started.elapsed();
        let batches: Vec<&Batch<MskRecord>> = invocation.batches.iter().collect();
        let mut problems = Vec::new();
        let mut outcomes = match result {
            InvokeResult::Response(response) => match batch_item_failures(&response) {
                Ok(failures) => {
                    let (outcomes, wrong) = kafka_outcome(&batches, failures);
                    problems.extend(wrong);
                    outcomes
                }
                Err(e) => {
                    problems.push(e);
                    vec![Outcome::FunctionError; batches.len()]
                }
            },
            InvokeResult::FunctionError(e) => {
                problems.push(format!("function error: {e}"));
                vec![Outcome::FunctionError; batches.len()]
            }
        };
        if self.settings.source.timed_out(took) {
            problems.push(format!(
                "ran {took:?}, past the function timeout {:?}",
                self.settings.source.function_timeout
            ));
            outcomes = vec![Outcome::FunctionError; batches.len()];
        }
        let before = self.events.discarded().len();
        for (batch, outcome) in invocation.batches.iter().zip(&outcomes) {
            self.events.complete(batch, *outcome);
        }
        let gave_up = self.events.discarded()[before..].to_vec();

        let mut commits = Vec::new();
        for lane in &invocation.lanes {
            let Some(offset) = self.events.commit_offset(lane) else {
                continue;
            };
            if self.committed.get(lane) != Some(&offset) {
                let state = &self.lanes[lane];
                commits.push(((state.topic.clone(), state.partition), offset, lane.clone()));
            }
        }
        if !commits.is_empty() {
            let offsets: Vec<((String, i32), i64)> =
                commits.iter().map(|(p, o, _)| (p.clone(), *o)).collect();
            self.source.commit(&offsets).await?;
            self.stats.commit_requests += 1;
            for (_, offset, lane) in &commits {
                self.committed.insert(lane.clone(), *offset);
            }
        }
        if outcomes.iter().any(|o| *o != Outcome::Success) {
            self.hold_until = Some(Instant::now() + self.settings.retry_delay);
        }
        Ok(CompletedInvocation {
            number: invocation.number,
            delivery: invocation.delivery,
            outcomes: invocation.lanes.iter().cloned().zip(outcomes).collect(),
            lanes: invocation.lanes,
            problems,
            committed: commits.into_iter().map(|(_, o, lane)| (lane, o)).collect(),
            gave_up,
        })
    }
}

/// Bytes a record adds to the event JSON (base64 key and value, plus framing).
fn event_bytes(record: &MskRecord) -> usize {
    let b64 = |n: usize| n.div_ceil(3) * 4;
    let value = match &record.value {
        MskValue::Bytes(bytes) => b64(bytes.len()),
        MskValue::Raw(text) => text.len(),
        MskValue::Null => 4,
    };
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() * 5 + 8)
        .sum();
    value + record.key.as_ref().map_or(4, |k| b64(k.len())) + record.topic.len() + headers + 200
}

/// The `(partition, offset)` items of a Kafka partial batch response. `null`, `{}` and an
/// empty list mean success; anything else that is not one is an error (a failed invocation).
pub fn batch_item_failures(response: &Value) -> Result<Vec<(String, i64)>, String> {
    let items = match response {
        Value::Null => return Ok(Vec::new()),
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
        },
        other => return Err(format!("not a partial batch response: {other}")),
    };
    items
        .iter()
        .map(|item| {
            let id = &item["itemIdentifier"];
            match (id["partition"].as_str(), id["offset"].as_i64()) {
                (Some(p), Some(o)) => Ok((p.to_string(), o)),
                _ => Err(format!("unreadable batch item failure: {item}")),
            }
        })
        .collect()
}

/// Topics held in memory, with a consumer group's offsets: the [`KafkaSource`] of tests that
/// run without a broker.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    topics: BTreeMap<String, Vec<Vec<MskRecord>>>,
    committed: BTreeMap<(String, i32), i64>,
    /// Every OffsetCommit, in order.
    pub commits: Vec<Vec<((String, i32), i64)>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn create_topic(&mut self, topic: &str, partitions: i32) {
        self.topics.insert(
            topic.to_string(),
            vec![Vec::new(); partitions.max(1) as usize],
        );
    }

    /// Append a record (its offset is the partition's next); returns the offset.
    pub fn produce(&mut self, mut record: MskRecord) -> Result<i64, SourceError> {
        let log = self
            .topics
            .get_mut(&record.topic)
            .and_then(|t| t.get_mut(record.partition as usize))
            .ok_or_else(|| SourceError(format!("no partition {}", record.partition_key())))?;
        record.offset = log.len() as i64;
        let offset = record.offset;
        log.push(record);
        Ok(offset)
    }

    pub fn committed_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.committed.get(&(topic.to_string(), partition)).copied()
    }
}

impl KafkaSource for MemorySource {
    async fn partitions(&mut self, topics: &[String]) -> Result<Vec<(String, i32)>, SourceError> {
        let mut out = Vec::new();
        for topic in topics {
            let n = self
                .topics
                .get(topic)
                .ok_or_else(|| SourceError(format!("no topic {topic}")))?
                .len();
            out.extend((0..n as i32).map(|p| (topic.clone(), p)));
        }
        Ok(out)
    }

    async fn committed(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>, SourceError> {
        Ok(partitions
            .iter()
            .map(|p| self.committed.get(p).copied())
            .collect())
    }

    async fn log_start(&mut self, _topic: &str, _partition: i32) -> Result<i64, SourceError> {
        Ok(0)
    }

    async fn high_watermark(&mut self, topic: &str, partition: i32) -> Result<i64, SourceError> {
        Ok(self
            .topics
            .get(topic)
            .and_then(|t| t.get(partition as usize))
            .map_or(0, |log| log.len() as i64))
    }

    async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Vec<MskRecord>, SourceError> {
        let log = self
            .topics
            .get(topic)
            .and_then(|t| t.get(partition as usize))
            .ok_or_else(|| SourceError(format!("no partition {topic}-{partition}")))?;
        Ok(log
            .iter()
            .skip(usize::try_from(offset).unwrap_or(0))
            .cloned()
            .collect())
    }

    async fn commit(&mut self, offsets: &[((String, i32), i64)]) -> Result<(), SourceError> {
        for (p, o) in offsets {
            self.committed.insert(p.clone(), *o);
        }
        self.commits.push(offsets.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_test_kit::event_source::SourceKind;
    use serde_json::json;

    fn settings(batch_size: usize, retries: i64) -> EmulatorSettings {
        EmulatorSettings {
            source: EventSourceConfig {
                kind: SourceKind::Kafka,
                batch_size,
                maximum_retry_attempts: retries,
                maximum_record_age: None,
                bisect_batch_on_function_error: false,
                report_batch_item_failures: true,
                on_failure: None,
                function_timeout: Duration::from_secs(60),
            },
            batching_window: Duration::ZERO,
            starting_position: StartingPosition::TrimHorizon,
            topics: vec!["a".into(), "b".into()],
            event_source_arn: "arn:aws:kafka:local:0:cluster/test/1".into(),
            bootstrap_servers: "127.0.0.1:1".into(),
            retry_delay: Duration::ZERO,
            idle_poll: Duration::from_millis(1),
        }
    }

    /// Topics a (2 partitions) and b (1); records at timestamps 0..n in the given lanes.
    fn source(lanes: &[(&str, i32)]) -> MemorySource {
        let mut s = MemorySource::new();
        s.create_topic("a", 2);
        s.create_topic("b", 1);
        for (i, (topic, partition)) in lanes.iter().enumerate() {
            let r = MskRecord::new(topic, i64::from(*partition), 0, format!("{i}").into_bytes())
                .with_timestamp_ms(i as i64);
            s.produce(r).unwrap();
        }
        s
    }

    fn failure(lane: &str, offset: i64) -> Value {
        json!({"batchItemFailures": [{"itemIdentifier": {"partition": lane, "offset": offset}}]})
    }

    #[tokio::test]
    async fn events_take_records_in_timestamp_order_grouped_by_partition() {
        let src = source(&[("a", 0), ("b", 0), ("a", 1), ("a", 0), ("b", 0)]);
        let mut emu = MskEmulator::start(src, settings(3, -1)).await.unwrap();
        let inv = emu.next_invocation().await.unwrap().unwrap();
        assert_eq!(inv.records.len(), 3);
        assert_eq!(inv.event["eventSource"], "aws:kafka");
        assert_eq!(inv.event["bootstrapServers"], "127.0.0.1:1");
        let keys: Vec<&String> = inv.event["records"].as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["a-0", "b-0", "a-1"]);
        let done = emu
            .complete(
                inv,
                InvokeResult::Response(json!({"batchItemFailures": []})),
            )
            .await
            .unwrap();
        assert_eq!(
            done.committed,
            vec![("a-0".into(), 1), ("a-1".into(), 1), ("b-0".into(), 1)]
        );
        let inv = emu.next_invocation().await.unwrap().unwrap();
        let got: Vec<(String, i64)> = inv
            .records
            .iter()
            .map(|r| (r.partition_key(), r.offset))
            .collect();
        assert_eq!(got, vec![("a-0".into(), 1), ("b-0".into(), 1)]);
        emu.complete(inv, InvokeResult::Response(Value::Null))
            .await
            .unwrap();
        assert!(emu.next_invocation().await.unwrap().is_none());
        let targets: BTreeMap<String, i64> = [("a-0".into(), 2), ("a-1".into(), 1)].into();
        assert!(emu.reached(&targets));
    }

    #[tokio::test]
    async fn a_failed_record_is_never_committed_past_and_is_redelivered_with_what_follows() {
        let src = source(&[("a", 0), ("a", 0), ("a", 0), ("b", 0)]);
        let mut emu = MskEmulator::start(src, settings(10, -1)).await.unwrap();
        let inv = emu.next_invocation().await.unwrap().unwrap();
        assert_eq!(inv.records.len(), 4);
        let done = emu
            .complete(inv, InvokeResult::Response(failure("a-0", 1)))
            .await
            .unwrap();
        assert_eq!(
            done.outcomes,
            vec![
                ("a-0".into(), Outcome::FailedFrom(1)),
                ("b-0".into(), Outcome::Success)
            ]
        );
        assert_eq!(done.committed, vec![("a-0".into(), 1), ("b-0".into(), 1)]);
        assert_eq!(emu.source().committed_offset("a", 0), Some(1));
        let inv = emu.next_invocation().await.unwrap().unwrap();
        assert_eq!(inv.delivery, 2);
        let offsets: Vec<i64> = inv.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1, 2], "from the failed offset on");
        // A whole failure commits nothing.
        let done = emu
            .complete(inv, InvokeResult::FunctionError("boom".into()))
            .await
            .unwrap();
        assert!(done.committed.is_empty());
        assert_eq!(emu.source().committed_offset("a", 0), Some(1));
        let inv = emu.next_invocation().await.unwrap().unwrap();
        assert_eq!(inv.delivery, 3);
        let done = emu
            .complete(inv, InvokeResult::Response(json!({})))
            .await
            .unwrap();
        assert_eq!(done.committed, vec![("a-0".into(), 3)]);
        assert!(done.gave_up.is_empty());
    }

    #[tokio::test]
    async fn a_restart_resumes_from_the_committed_offsets() {
        let src = source(&[("a", 0), ("a", 0), ("a", 0)]);
        let mut emu = MskEmulator::start(src, settings(10, -1)).await.unwrap();
        let inv = emu.next_invocation().await.unwrap().unwrap();
        emu.complete(inv, InvokeResult::Response(failure("a-0", 2)))
            .await
            .unwrap();
        // The emulator stops; a new one over the same group starts at the failed record.
        let mut src = emu.source().clone();
        src.produce(MskRecord::new("a", 0, 0, b"new".to_vec()))
            .unwrap();
        let mut emu = MskEmulator::start(src, settings(10, -1)).await.unwrap();
        assert_eq!(emu.stats().resumed_partitions, 3);
        let inv = emu.next_invocation().await.unwrap().unwrap();
        let offsets: Vec<i64> = inv.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![2, 3]);
    }

    #[tokio::test]
    async fn latest_starts_at_the_end_and_retries_are_capped_by_the_source_config() {
        let src = source(&[("a", 0), ("a", 0)]);
        let mut set = settings(10, 1);
        set.starting_position = StartingPosition::Latest;
        let mut emu = MskEmulator::start(src, set).await.unwrap();
        assert_eq!(emu.committed()["a-0"], 2);
        assert!(emu.next_invocation().await.unwrap().is_none());
        emu.source_mut()
            .produce(MskRecord::new("a", 0, 0, b"x".to_vec()))
            .unwrap();
        for expected_gave_up in [false, true] {
            let inv = emu.next_invocation().await.unwrap().unwrap();
            assert_eq!(inv.records[0].offset, 2);
            let done = emu
                .complete(inv, InvokeResult::Response(failure("a-0", 2)))
                .await
                .unwrap();
            assert_eq!(!done.gave_up.is_empty(), expected_gave_up);
        }
        // Given up: Lambda moves on, and so does the committed offset.
        assert_eq!(emu.committed()["a-0"], 3);
    }

    #[tokio::test]
    async fn unreadable_responses_fail_the_invocation() {
        assert!(batch_item_failures(&json!("ok")).is_err());
        assert!(batch_item_failures(&json!({"batchItemFailures": [{"x": 1}]})).is_err());
        let src = source(&[("a", 0)]);
        let mut emu = MskEmulator::start(src, settings(10, -1)).await.unwrap();
        let inv = emu.next_invocation().await.unwrap().unwrap();
        let done = emu
            .complete(inv, InvokeResult::Response(json!([1])))
            .await
            .unwrap();
        assert_eq!(done.outcomes, vec![("a-0".into(), Outcome::FunctionError)]);
        assert!(done.committed.is_empty());
    }
}
