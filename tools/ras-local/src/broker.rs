//! The local Kafka broker (tansu, `infra/local/kafka-start.sh`): topics, the scenario's
//! producer, the fetcher and the consumer group of the MSK event-source emulator
//! ([`BrokerSource`]), and a reader of the published topics.
//!
//! Client: `rskafka` 0.6 (pure Rust) for metadata, topic creation, produce (`acks=all`, no
//! compression) and fetch; the group's committed offsets with [`crate::group`]. tansu quirks
//! (`/work`'s tooling notes): topics are not created on produce; `ListOffsets(Latest)` is
//! wrong, so the end of a partition is read from a fetch's high watermark.

use crate::esm::{KafkaSource, SourceError};
use crate::group::GroupClient;
use crate::msk::{MskRecord, MskValue};
use crate::scenario::Scenario;
use chrono::{DateTime, Utc};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::{Record, RecordAndOffset};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Environment variable with the broker's `host:port` (`.local/kafka.env`).
pub const BOOTSTRAP_ENV: &str = "RAS_KAFKA_BOOTSTRAP";
/// Partitions of the topics ras-local creates when they are missing (as `kafka-start.sh`).
pub const DEFAULT_PARTITIONS: i32 = 3;
/// Bytes per fetch request.
const FETCH_BYTES: i32 = 4 << 20;

#[derive(Debug, thiserror::Error)]
#[error("Kafka broker {bootstrap}: {message}")]
pub struct BrokerError {
    pub bootstrap: String,
    pub message: String,
}

impl From<BrokerError> for SourceError {
    fn from(e: BrokerError) -> Self {
        SourceError(e.to_string())
    }
}

/// A connection to the broker.
pub struct Broker {
    client: Client,
    bootstrap: String,
    partitions: HashMap<(String, i32), Arc<PartitionClient>>,
    timeout: Duration,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Connect to `bootstrap` (`host:port`), bounded by `timeout`.
    pub async fn connect(bootstrap: &str, timeout: Duration) -> Result<Self, BrokerError> {
        let error = |message: String| BrokerError {
            bootstrap: bootstrap.to_string(),
            message,
        };
        let client = tokio::time::timeout(
            timeout,
            ClientBuilder::new(vec![bootstrap.to_string()])
                .client_id("ras-local")
                .build(),
        )
        .await
        .map_err(|_| {
            error(format!(
                "no answer within {timeout:?} (is it running? infra/local/kafka-start.sh)"
            ))
        })?
        .map_err(|e| error(format!("{e} (is it running? infra/local/kafka-start.sh)")))?;
        Ok(Broker {
            client,
            bootstrap: bootstrap.to_string(),
            partitions: HashMap::new(),
            timeout,
        })
    }

    /// `RAS_KAFKA_BOOTSTRAP`, required.
    pub fn bootstrap_from_env() -> Result<String, String> {
        std::env::var(BOOTSTRAP_ENV)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "{BOOTSTRAP_ENV} is not set: start the local Kafka broker and load its environment \
                     (infra/local/kafka-start.sh && source .local/kafka.env), or use scripts/run-local.sh"
                )
            })
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn error(&self, message: impl std::fmt::Display) -> BrokerError {
        BrokerError {
            bootstrap: self.bootstrap.clone(),
            message: message.to_string(),
        }
    }

    /// Topic → number of partitions.
    pub async fn topics(&self) -> Result<BTreeMap<String, i32>, BrokerError> {
        let topics = tokio::time::timeout(self.timeout, self.client.list_topics())
            .await
            .map_err(|_| self.error("listing topics timed out"))?
            .map_err(|e| self.error(format!("listing topics: {e}")))?;
        Ok(topics
            .into_iter()
            .map(|t| (t.name, t.partitions.len() as i32))
            .collect())
    }

    /// Create those of `topics` that do not exist, with `partitions` partitions; returns the
    /// partition count of each.
    pub async fn ensure_topics(
        &self,
        topics: &[&str],
        partitions: i32,
    ) -> Result<BTreeMap<String, i32>, BrokerError> {
        let existing = self.topics().await?;
        let controller = self
            .client
            .controller_client()
            .map_err(|e| self.error(format!("controller: {e}")))?;
        let mut created = false;
        for topic in topics {
            if existing.contains_key(*topic) {
                continue;
            }
            controller
                .create_topic(*topic, partitions, 1, 5_000)
                .await
                .map_err(|e| self.error(format!("creating topic {topic}: {e}")))?;
            created = true;
        }
        let all = if created {
            self.topics().await?
        } else {
            existing
        };
        topics
            .iter()
            .map(|t| {
                all.get(*t)
                    .map(|n| (t.to_string(), *n))
                    .ok_or_else(|| self.error(format!("topic {t} missing after creating it")))
            })
            .collect()
    }

    async fn partition(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, BrokerError> {
        let key = (topic.to_string(), partition);
        if let Some(client) = self.partitions.get(&key) {
            return Ok(Arc::clone(client));
        }
        let client = tokio::time::timeout(
            self.timeout,
            self.client
                .partition_client(topic, partition, UnknownTopicHandling::Error),
        )
        .await
        .map_err(|_| self.error(format!("{topic}-{partition}: timed out")))?
        .map_err(|e| self.error(format!("{topic}-{partition}: {e}")))?;
        let client = Arc::new(client);
        self.partitions.insert(key, Arc::clone(&client));
        Ok(client)
    }

    /// Produce one record (`acks=all`); returns its offset.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        record: Record,
    ) -> Result<i64, BrokerError> {
        let client = self.partition(topic, partition).await?;
        let offsets = tokio::time::timeout(
            self.timeout,
            client.produce(vec![record], Compression::NoCompression),
        )
        .await
        .map_err(|_| self.error(format!("producing to {topic}-{partition}: timed out")))?
        .map_err(|e| self.error(format!("producing to {topic}-{partition}: {e}")))?;
        offsets
            .first()
            .copied()
            .ok_or_else(|| self.error(format!("producing to {topic}-{partition}: no offset")))
    }

    /// Records from `offset` on (one fetch request) and the high watermark.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> Result<(Vec<RecordAndOffset>, i64), BrokerError> {
        let client = self.partition(topic, partition).await?;
        tokio::time::timeout(
            self.timeout,
            client.fetch_records(offset, 1..FETCH_BYTES, max_wait_ms),
        )
        .await
        .map_err(|_| self.error(format!("fetching {topic}-{partition}@{offset}: timed out")))?
        .map_err(|e| self.error(format!("fetching {topic}-{partition}@{offset}: {e}")))
    }

    /// The first offset in the log.
    pub async fn log_start(&mut self, topic: &str, partition: i32) -> Result<i64, BrokerError> {
        let client = self.partition(topic, partition).await?;
        tokio::time::timeout(self.timeout, client.get_offset(OffsetAt::Earliest))
            .await
            .map_err(|_| self.error(format!("{topic}-{partition}: log start timed out")))?
            .map_err(|e| self.error(format!("{topic}-{partition}: log start: {e}")))
    }

    /// The high watermark (the offset the next record gets), from a fetch response: tansu's
    /// `ListOffsets(Latest)` is not the log end.
    pub async fn high_watermark(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<i64, BrokerError> {
        let start = self.log_start(topic, partition).await?;
        let (_, high) = self.fetch(topic, partition, start, 0).await?;
        Ok(high)
    }

    /// Every record of a partition from `from` up to its high watermark.
    pub async fn read_to_end(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<Vec<RecordAndOffset>, BrokerError> {
        let mut out = Vec::new();
        let mut next = from;
        loop {
            let (records, high) = self.fetch(topic, partition, next, 0).await?;
            if next >= high {
                break;
            }
            let before = out.len();
            for r in records {
                if r.offset >= next && r.offset < high {
                    next = r.offset + 1;
                    out.push(r);
                }
            }
            if out.len() == before {
                return Err(self.error(format!(
                    "{topic}-{partition}: fetch at {next} returned nothing below the high watermark {high}"
                )));
            }
        }
        Ok(out)
    }
}

/// A fetched record as the MSK event carries it (headers in name order: rskafka keeps them in
/// a map).
pub fn to_msk_record(topic: &str, partition: i32, r: RecordAndOffset) -> MskRecord {
    MskRecord {
        topic: topic.to_string(),
        partition: i64::from(partition),
        offset: r.offset,
        timestamp_ms: r.record.timestamp.timestamp_millis(),
        key: r.record.key,
        value: match r.record.value {
            Some(bytes) => MskValue::Bytes(bytes),
            None => MskValue::Null,
        },
        headers: r.record.headers.into_iter().collect(),
    }
}

/// Where a scenario record went.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Produced {
    /// The record's position in the scenario file.
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Produce the scenario's records in file order, one at a time (each acknowledged before the
/// next is sent), to the partition the scenario resolved (explicit, or Kafka's default
/// partitioner on the key), without headers (as HuleEdu's producers), with CreateTime
/// timestamps one millisecond apart from `start`. A record that repeats an earlier offset is
/// produced again: a duplicate on the topic, as a producer retry after a lost acknowledgement
/// leaves one.
pub async fn produce_scenario(
    broker: &mut Broker,
    scenario: &Scenario,
    start: DateTime<Utc>,
) -> Result<Vec<Produced>, BrokerError> {
    let topics = broker.topics().await?;
    let mut produced = Vec::with_capacity(scenario.records.len());
    for r in &scenario.records {
        let partition = i32::try_from(r.partition).unwrap_or(i32::MAX);
        let count = topics.get(&r.topic).copied().unwrap_or(0);
        if partition >= count {
            return Err(broker.error(format!(
                "scenario record {}: partition {partition} of topic {} does not exist (the topic has {count})",
                r.index, r.topic
            )));
        }
        let record = Record {
            key: r.key.clone(),
            value: match &r.value {
                MskValue::Bytes(bytes) => Some(bytes.clone()),
                MskValue::Raw(text) => Some(text.clone().into_bytes()),
                MskValue::Null => None,
            },
            headers: BTreeMap::new(),
            timestamp: start + chrono::Duration::milliseconds(r.index as i64),
        };
        let offset = broker.produce(&r.topic, partition, record).await?;
        produced.push(Produced {
            index: r.index,
            topic: r.topic.clone(),
            partition,
            offset,
        });
    }
    Ok(produced)
}

/// The broker as the MSK event source reads it: rskafka fetches, the group's offsets through
/// [`GroupClient`].
#[derive(Debug)]
pub struct BrokerSource {
    pub broker: Broker,
    pub group: GroupClient,
}

impl BrokerSource {
    /// Connect to `bootstrap` and find the coordinator of `group_id`.
    pub async fn connect(
        bootstrap: &str,
        group_id: &str,
        timeout: Duration,
    ) -> Result<Self, BrokerError> {
        let broker = Broker::connect(bootstrap, timeout).await?;
        let group = GroupClient::connect(bootstrap, group_id, timeout)
            .await
            .map_err(|e| broker.error(e))?;
        Ok(BrokerSource { broker, group })
    }
}

impl KafkaSource for BrokerSource {
    async fn partitions(&mut self, topics: &[String]) -> Result<Vec<(String, i32)>, SourceError> {
        let all = self.broker.topics().await?;
        let missing: Vec<&String> = topics.iter().filter(|t| !all.contains_key(*t)).collect();
        if !missing.is_empty() {
            return Err(SourceError(format!(
                "Kafka broker {}: topic(s) {missing:?} do not exist",
                self.broker.bootstrap
            )));
        }
        Ok(topics
            .iter()
            .flat_map(|t| (0..all[t]).map(move |p| (t.clone(), p)))
            .collect())
    }

    async fn committed(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>, SourceError> {
        let fetched = self
            .group
            .fetch(partitions)
            .await
            .map_err(|e| SourceError(e.to_string()))?;
        let by_partition: HashMap<(String, i32), Option<i64>> = fetched.into_iter().collect();
        Ok(partitions
            .iter()
            .map(|p| by_partition.get(p).copied().flatten())
            .collect())
    }

    async fn log_start(&mut self, topic: &str, partition: i32) -> Result<i64, SourceError> {
        Ok(self.broker.log_start(topic, partition).await?)
    }

    async fn high_watermark(&mut self, topic: &str, partition: i32) -> Result<i64, SourceError> {
        Ok(self.broker.high_watermark(topic, partition).await?)
    }

    async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Vec<MskRecord>, SourceError> {
        let (records, _) = self.broker.fetch(topic, partition, offset, 0).await?;
        Ok(records
            .into_iter()
            .map(|r| to_msk_record(topic, partition, r))
            .collect())
    }

    async fn commit(&mut self, offsets: &[((String, i32), i64)]) -> Result<(), SourceError> {
        self.group
            .commit(offsets)
            .await
            .map_err(|e| SourceError(e.to_string()))
    }
}

/// A message a consumer reads back from a published topic.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KafkaMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's key as text (the ordering key: batch id / teacher id).
    pub key: Option<String>,
    pub timestamp_ms: i64,
    /// Number of record headers (HuleEdu's producers send none).
    pub headers: usize,
    /// The value (the envelope JSON; a string if it is not JSON).
    pub body: serde_json::Value,
}

/// Where each partition of `topics` ends now (its high watermark); topics the broker does not
/// have are left out.
pub async fn topic_ends(
    broker: &mut Broker,
    topics: &[&str],
) -> Result<BTreeMap<(String, i32), i64>, BrokerError> {
    let all = broker.topics().await?;
    let mut ends = BTreeMap::new();
    for topic in topics {
        let Some(partitions) = all.get(*topic) else {
            continue;
        };
        for partition in 0..*partitions {
            let end = broker.high_watermark(topic, partition).await?;
            ends.insert((topic.to_string(), partition), end);
        }
    }
    Ok(ends)
}

/// What a consumer reads from each partition of `from` (from that offset to the partition's
/// end), in partition order.
pub async fn read_from(
    broker: &mut Broker,
    from: &BTreeMap<(String, i32), i64>,
) -> Result<Vec<KafkaMessage>, BrokerError> {
    let mut messages = Vec::new();
    for ((topic, partition), offset) in from {
        for r in broker.read_to_end(topic, *partition, *offset).await? {
            let value = r.record.value.unwrap_or_default();
            let body = serde_json::from_slice(&value).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&value).into_owned())
            });
            messages.push(KafkaMessage {
                topic: topic.clone(),
                partition: *partition,
                offset: r.offset,
                key: r
                    .record
                    .key
                    .map(|k| String::from_utf8_lossy(&k).into_owned()),
                timestamp_ms: r.record.timestamp.timestamp_millis(),
                headers: r.record.headers.len(),
                body,
            });
        }
    }
    Ok(messages)
}
