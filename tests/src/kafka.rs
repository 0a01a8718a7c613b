//! The local Kafka broker in tests (`infra/local/kafka-start.sh`, started by `scripts/test.sh`):
//! its address and reading topics back with a client of its own.
//!
//! Tests that need the broker fail (never skip) when `RAS_KAFKA_BOOTSTRAP` is not set.

use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::{Client, ClientBuilder};
use std::collections::HashSet;

pub const BOOTSTRAP_ENV: &str = "RAS_KAFKA_BOOTSTRAP";

/// Partitions of each topic `kafka-start.sh` creates.
pub const PARTITIONS: i32 = 3;

/// The local broker's `host:port` list.
pub fn bootstrap() -> Vec<String> {
    let value = std::env::var(BOOTSTRAP_ENV).unwrap_or_default();
    let brokers: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    assert!(
        !brokers.is_empty(),
        "{BOOTSTRAP_ENV} is not set: run the tests with scripts/test.sh, or start the broker \
         (infra/local/kafka-setup.sh, infra/local/kafka-start.sh) and export {BOOTSTRAP_ENV} \
         from .local/kafka.env (docs/kafka.md)"
    );
    brokers
}

/// The publisher's settings for the local broker: `RAS_KAFKA_BOOTSTRAP`, in plaintext (the
/// local broker has no TLS or IAM; `RAS_KAFKA_SECURITY` is not read).
pub fn settings() -> ras_aws::kafka_publisher::KafkaSettings {
    ras_aws::kafka_publisher::KafkaSettings::new(bootstrap())
}

/// A plain rskafka client of the test's own (not the publisher's connection).
pub async fn reader() -> Client {
    ClientBuilder::new(bootstrap())
        .build()
        .await
        .expect("connect to the local Kafka broker")
}

/// A record read back.
#[derive(Clone, Debug)]
pub struct Read {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: usize,
}

impl Read {
    pub fn key_text(&self) -> String {
        String::from_utf8(self.key.clone().expect("key")).expect("utf-8 key")
    }

    pub fn value_text(&self) -> String {
        String::from_utf8(self.value.clone().expect("value")).expect("utf-8 value")
    }
}

/// Every record of `topic`, partition by partition in offset order, up to each partition's
/// high watermark (tansu's `get_offset(Latest)` is not the log end: the fetch's high watermark
/// is — tooling notes).
pub async fn read_topic(client: &Client, topic: &str) -> Vec<Read> {
    let mut out = Vec::new();
    for partition in 0..PARTITIONS {
        let pc = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut offset = 0;
        loop {
            let (records, high_watermark) = pc
                .fetch_records(offset, 1..10_000_000, 100)
                .await
                .expect("fetch");
            for r in &records {
                out.push(Read {
                    topic: topic.to_string(),
                    partition,
                    offset: r.offset,
                    key: r.record.key.clone(),
                    value: r.record.value.clone(),
                    headers: r.record.headers.len(),
                });
            }
            if let Some(last) = records.last() {
                offset = last.offset + 1;
            }
            if offset >= high_watermark {
                break;
            }
            assert!(
                !records.is_empty(),
                "{topic}/{partition}: no records at {offset} below the high watermark {high_watermark}"
            );
        }
    }
    out
}

/// The records of `keys` on `topic`, in offset order per partition.
pub async fn read_keys(client: &Client, topic: &str, keys: &HashSet<String>) -> Vec<Read> {
    read_topic(client, topic)
        .await
        .into_iter()
        .filter(|r| {
            r.key
                .as_ref()
                .and_then(|k| std::str::from_utf8(k).ok())
                .is_some_and(|k| keys.contains(k))
        })
        .collect()
}
