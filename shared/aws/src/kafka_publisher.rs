//! [`KafkaPublisher`]: a Kafka adapter of the domain's [`MessagePublisher`] port (issue 13,
//! groundwork; `docs/kafka.md`). Feature `kafka` of `ras-aws`.
//!
//! What it produces is what the reference service's producer produced (ras-behaviour §1.3, §5):
//!
//! * topic = the message's topic name (`huleedu.ras.batch.results.ready.v1`,
//!   `huleedu.ras.batch.assessment.completed.v1`, `huleedu.notification.teacher.requested.v1`);
//!   the [`Destination`] argument only exists for SQS and is not used,
//! * key = the ordering key's UTF-8 bytes (batch id for domain events, teacher id for
//!   notifications), value = the outbox body byte for byte, no headers, no compression,
//! * `acks=all` (rskafka always sends `acks = -1`),
//! * partition = Kafka's default partitioner for keyed records, [`partition_for`]:
//!   `toPositive(murmur2(key)) % partitions`, the mapping of the Java client and of aiokafka's
//!   default partitioner, so HuleEdu's consumers see each key on the partition they always did.
//!
//! **Per-key order.** The messages of one key are produced one after the other, each only after
//! the broker acknowledged the previous one; the key stops at its first failure and its later
//! messages in the call are reported `Failed { retryable: true, code: "KeyStopped" }` without
//! being produced. Different keys are produced concurrently.
//!
//! **Results.** One [`SendResult`] per message, in order:
//!
//! * refused for the message's content — larger than `max_message_bytes` (checked before
//!   sending) or the broker's `MessageTooLarge` / `RecordListTooLarge` / `InvalidRecord` /
//!   `CorruptMessage` — is `Failed { retryable: false }`: the relay parks it;
//! * the topic missing or access denied (`UnknownTopicOrPartition`, `InvalidTopicException`,
//!   `TopicAuthorizationFailed`, `ClusterAuthorizationFailed`, `SaslAuthenticationFailed`) is
//!   permanent for Kafka but a deployment fault, not the message's: reported
//!   `Failed { retryable: true }` with that code, so the relay holds the key instead of parking
//!   the message (docs/relay.md: an outage or a denied access is waited out, never parked away);
//! * everything else (connection, timeouts, leader changes after rskafka's own retries) is
//!   `Failed { retryable: true }`.
//!
//! `Err` only when the topic metadata cannot be read at all (nothing was produced).
//!
//! The client (its broker connections) and the partition clients are created once and reused.

use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::BackoffConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Comma-separated `host:port` bootstrap brokers.
pub const BOOTSTRAP_ENV: &str = "RAS_KAFKA_BOOTSTRAP";
/// Kafka's default `max.message.bytes` of a topic (MSK's default too): 1 MiB + 12.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
/// Default bound of one produce (rskafka's retries included) and of connecting.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Code of a message not produced because an earlier message of its key failed in the call.
pub const KEY_STOPPED: &str = "KeyStopped";

/// Kafka's `murmur2` (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit: seed
/// `0x9747b28c`, little-endian 4-byte blocks, Java's wrapping `int` arithmetic.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() == 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner (Java client, aiokafka's `DefaultPartitioner`)
/// picks for a keyed record: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

/// How a Kafka error is handled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The broker refuses this message for good: parked by the relay.
    Refused,
    /// The topic is missing or access is denied: a deployment fault; the key is held.
    Misconfigured,
    /// Anything else: retried later.
    Transient,
}

/// The class of a protocol error code.
pub fn classify_protocol(error: &ProtocolError) -> ErrorClass {
    match error {
        ProtocolError::MessageTooLarge
        | ProtocolError::RecordListTooLarge
        | ProtocolError::InvalidRecord
        | ProtocolError::CorruptMessage => ErrorClass::Refused,
        ProtocolError::UnknownTopicOrPartition
        | ProtocolError::InvalidTopicException
        | ProtocolError::TopicAuthorizationFailed
        | ProtocolError::ClusterAuthorizationFailed
        | ProtocolError::SaslAuthenticationFailed => ErrorClass::Misconfigured,
        _ => ErrorClass::Transient,
    }
}

/// Stable code and class of an rskafka error.
pub fn classify(error: &KafkaError) -> (String, ErrorClass) {
    match error {
        KafkaError::ServerError { protocol_error, .. } => (
            format!("{protocol_error:?}"),
            classify_protocol(protocol_error),
        ),
        KafkaError::Connection(_) => ("Connection".into(), ErrorClass::Transient),
        KafkaError::Request(_) => ("Request".into(), ErrorClass::Transient),
        KafkaError::InvalidResponse(_) => ("InvalidResponse".into(), ErrorClass::Transient),
        KafkaError::RetryFailed(_) => ("RetryFailed".into(), ErrorClass::Transient),
        KafkaError::Timeout => ("Timeout".into(), ErrorClass::Transient),
        _ => ("KafkaError".into(), ErrorClass::Transient),
    }
}

fn failed(class: ErrorClass, code: String, message: String) -> SendResult {
    SendResult::Failed {
        retryable: class != ErrorClass::Refused,
        code,
        message,
    }
}

/// Settings of a [`KafkaPublisher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port` of the bootstrap brokers.
    pub bootstrap: Vec<String>,
    /// Bound of connecting and of one produce, rskafka's retries included.
    pub timeout: Duration,
    /// Larger bodies (plus key) are refused without being sent ([`ErrorClass::Refused`]).
    pub max_message_bytes: usize,
    /// Kafka `client.id`.
    pub client_id: String,
}

impl KafkaSettings {
    pub fn new(bootstrap: Vec<String>) -> Self {
        KafkaSettings {
            bootstrap,
            timeout: DEFAULT_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            client_id: "ras-relay".into(),
        }
    }

    /// `RAS_KAFKA_BOOTSTRAP` (comma-separated `host:port`), required.
    pub fn from_config<F: Fn(&str) -> Option<String>>(
        env: &crate::config::Env<F>,
    ) -> Result<Self, crate::config::ConfigError> {
        let value = env.required(BOOTSTRAP_ENV)?;
        let brokers: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(Self::new(brokers))
    }

    /// `RAS_KAFKA_BOOTSTRAP` (comma-separated `host:port`), `None` when unset or empty.
    pub fn from_env() -> Option<Self> {
        let value = std::env::var(BOOTSTRAP_ENV).ok()?;
        let brokers: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        (!brokers.is_empty()).then(|| Self::new(brokers))
    }
}

/// Publishes outbox messages to their Kafka topics (module documentation).
pub struct KafkaPublisher {
    client: Client,
    settings: KafkaSettings,
    /// Partition count per topic, read once (a topic whose partitions are added later is
    /// re-read only when the sandbox starts again; Kafka's producers do the same per metadata
    /// refresh, and adding partitions moves keys in any case).
    partitions: Mutex<HashMap<String, i32>>,
    producers: Mutex<HashMap<(String, i32), Arc<PartitionClient>>>,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// Connects to the bootstrap brokers (once; the connection is reused by every call).
    pub async fn connect(settings: KafkaSettings) -> Result<Self, PublishError> {
        let backoff = BackoffConfig {
            deadline: Some(settings.timeout),
            ..BackoffConfig::default()
        };
        let build = ClientBuilder::new(settings.bootstrap.clone())
            .client_id(settings.client_id.clone())
            .backoff_config(backoff)
            .build();
        let client = tokio::time::timeout(settings.timeout, build)
            .await
            .map_err(|_| {
                PublishError::Transient(format!(
                    "connecting to {:?} took longer than {:?}",
                    settings.bootstrap, settings.timeout
                ))
            })?
            .map_err(|e| PublishError::Transient(format!("connecting to Kafka: {e}")))?;
        Ok(KafkaPublisher {
            client,
            settings,
            partitions: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    /// The rskafka client (tests read the topics back with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Partition count of `topic`: `Ok(None)` when the cluster does not have it.
    async fn partition_count(&self, topic: &str) -> Result<Option<i32>, PublishError> {
        if let Some(n) = self.partitions.lock().expect("lock").get(topic) {
            return Ok(Some(*n));
        }
        let topics = tokio::time::timeout(self.settings.timeout, self.client.list_topics())
            .await
            .map_err(|_| PublishError::Transient("reading the topic metadata timed out".into()))?
            .map_err(|e| PublishError::Transient(format!("reading the topic metadata: {e}")))?;
        let mut known = self.partitions.lock().expect("lock");
        for t in topics {
            if !t.partitions.is_empty() {
                known.insert(t.name, t.partitions.len() as i32);
            }
        }
        Ok(known.get(topic).copied())
    }

    async fn producer(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, KafkaError> {
        let key = (topic.to_string(), partition);
        if let Some(p) = self.producers.lock().expect("lock").get(&key) {
            return Ok(Arc::clone(p));
        }
        let created = Arc::new(
            self.client
                .partition_client(topic, partition, UnknownTopicHandling::Error)
                .await?,
        );
        Ok(Arc::clone(
            self.producers
                .lock()
                .expect("lock")
                .entry(key)
                .or_insert(created),
        ))
    }

    /// Produces one message and waits for its acknowledgement (`acks=all`).
    async fn produce_one(&self, message: &OutboxMessage, partitions: i32) -> SendResult {
        let key = message.ordering_key.as_bytes();
        let size = key.len() + message.body.len();
        if size > self.settings.max_message_bytes {
            return failed(
                ErrorClass::Refused,
                "MessageTooLarge".into(),
                format!(
                    "key and value are {size} bytes; the limit is {}",
                    self.settings.max_message_bytes
                ),
            );
        }
        let topic = message.topic.name();
        let partition = partition_for(key, partitions);
        let record = Record {
            key: Some(key.to_vec()),
            value: Some(message.body.as_bytes().to_vec()),
            headers: BTreeMap::new(),
            // Send time, as aiokafka sets it when no timestamp is given (the reference). Not
            // `created_at`: a message re-published days later would carry an old CreateTime,
            // which time-based retention counts from.
            timestamp: chrono::Utc::now(),
        };
        let produce = async {
            let producer = self.producer(topic, partition).await?;
            producer
                .produce(vec![record], Compression::NoCompression)
                .await
        };
        match tokio::time::timeout(self.settings.timeout, produce).await {
            Ok(Ok(_offsets)) => SendResult::Sent,
            Ok(Err(e)) => {
                let (code, class) = classify(&e);
                tracing::warn!(event_id = %message.event_id, topic, partition, %code, ?class, error = %e, "Kafka produce failed");
                failed(class, code, e.to_string())
            }
            Err(_) => failed(
                ErrorClass::Transient,
                "Timeout".into(),
                format!(
                    "no acknowledgement within {:?} (the message may still have been written)",
                    self.settings.timeout
                ),
            ),
        }
    }
}

impl MessagePublisher for KafkaPublisher {
    async fn send_batch(
        &self,
        _destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        // Partition counts first: nothing is produced if the metadata cannot be read.
        let mut counts: HashMap<&'static str, Option<i32>> = HashMap::new();
        for m in messages {
            let topic = m.topic.name();
            if !counts.contains_key(topic) {
                counts.insert(topic, self.partition_count(topic).await?);
            }
        }
        // Messages by key, in call order.
        let mut keys: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match keys.iter_mut().find(|(k, _)| *k == m.ordering_key) {
                Some((_, members)) => members.push(i),
                None => keys.push((&m.ordering_key, vec![i])),
            }
        }
        let per_key = keys.iter().map(|(_, members)| {
            let counts = &counts;
            async move {
                let mut out = Vec::with_capacity(members.len());
                let mut stopped: Option<String> = None;
                for &i in members {
                    let m = &messages[i];
                    let result = if let Some(first) = &stopped {
                        SendResult::Failed {
                            retryable: true,
                            code: KEY_STOPPED.into(),
                            message: format!(
                                "not produced: an earlier message of its key failed ({first})"
                            ),
                        }
                    } else {
                        match counts.get(m.topic.name()).copied().flatten() {
                            Some(n) => self.produce_one(m, n).await,
                            None => failed(
                                ErrorClass::Misconfigured,
                                "UnknownTopicOrPartition".into(),
                                format!("topic {} does not exist", m.topic.name()),
                            ),
                        }
                    };
                    if stopped.is_none() {
                        if let SendResult::Failed { code, .. } = &result {
                            stopped = Some(format!("{} {code}", m.event_id));
                        }
                    }
                    out.push((i, result));
                }
                out
            }
        });
        let mut results: Vec<Option<SendResult>> = vec![None; messages.len()];
        for (i, r) in futures::future::join_all(per_key)
            .await
            .into_iter()
            .flatten()
        {
            results[i] = Some(r);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `UtilsTest.testMurmur2` of Apache Kafka (clients/src/test/java/org/apache/kafka/common/utils).
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data), expected, "{}", String::from_utf8_lossy(data));
        }
    }

    /// Akka's `Murmur2Spec` (values from Kafka's Java implementation), one per tail length.
    /// (kafkajs' *legacy* partitioner test vectors differ: that partitioner is not
    /// Java-compatible, which is why it is not used here.)
    #[test]
    fn murmur2_matches_akkas_java_derived_vectors() {
        let cases: [(&str, i32); 5] = [
            ("1", -1993445489),
            ("12", 126087238),
            ("123", -267702483),
            ("1234", -1614185708),
            ("12345", -1188365604),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data.as_bytes()), expected, "{data}");
        }
    }

    /// kafka-python's `test_murmur2_java_compatibility` (partitions of 1000, computed with
    /// Kafka's Java partitioner), including the empty key and a key with a NUL byte.
    #[test]
    fn partitions_match_the_java_partitioner() {
        let cases: [(&[u8], i32); 6] = [
            (b"", 681),
            (b"a", 524),
            (b"ab", 434),
            (b"abc", 107),
            (b"123456789", 566),
            (b"\x00 ", 742),
        ];
        for (key, expected) in cases {
            assert_eq!(partition_for(key, 1000), expected, "{key:?}");
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify_protocol(&ProtocolError::MessageTooLarge),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_protocol(&ProtocolError::RecordListTooLarge),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_protocol(&ProtocolError::UnknownTopicOrPartition),
            ErrorClass::Misconfigured
        );
        assert_eq!(
            classify_protocol(&ProtocolError::TopicAuthorizationFailed),
            ErrorClass::Misconfigured
        );
        assert_eq!(
            classify_protocol(&ProtocolError::NotLeaderOrFollower),
            ErrorClass::Transient
        );
        assert_eq!(classify(&KafkaError::Timeout).1, ErrorClass::Transient);
        let refused = failed(ErrorClass::Refused, "MessageTooLarge".into(), String::new());
        assert!(matches!(
            refused,
            SendResult::Failed {
                retryable: false,
                ..
            }
        ));
        let denied = failed(
            ErrorClass::Misconfigured,
            "TopicAuthorizationFailed".into(),
            String::new(),
        );
        assert!(matches!(
            denied,
            SendResult::Failed {
                retryable: true,
                ..
            }
        ));
    }
}
