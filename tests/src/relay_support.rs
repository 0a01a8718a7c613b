//! Relay and operations tests (issue 4): real outbox items committed through the store, the
//! outbox table's stream read with the DynamoDB Streams API and wrapped as Lambda would, FIFO
//! queues of one test, and a FIFO consumer.

use crate::local_aws::{unique, LocalAws};
use aws_lambda_events::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use ras_aws::dynamo::{DynamoStore, OutboxItem};
use ras_aws::sqs_publisher::{QueueUrls, SqsPublisher};
use ras_domain::contracts::Timestamp;
use ras_domain::service::{process_record, ConsumedRecord, RecordOutcome};
use ras_domain::testing::events::{
    assessment_result, pipeline_completed, registration, TestRecord,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

// ------------------------------------------------------------------ queues

/// A FIFO queue of this test only (no content-based deduplication: the relay sets ids).
pub async fn create_fifo_queue(aws: &LocalAws, prefix: &str) -> String {
    let name = format!("{}.fifo", unique(prefix));
    let out = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}"));
    out.queue_url
        .unwrap_or_else(|| panic!("CreateQueue {name}: no URL"))
}

/// The events and notifications queues of one test, and a publisher to them.
pub struct TestQueues {
    pub urls: QueueUrls,
}

impl TestQueues {
    pub async fn create(aws: &LocalAws) -> Self {
        TestQueues {
            urls: QueueUrls {
                events: create_fifo_queue(aws, "relay-events").await,
                notifications: create_fifo_queue(aws, "relay-notes").await,
            },
        }
    }

    pub fn publisher(&self, aws: &LocalAws) -> SqsPublisher {
        SqsPublisher::new(aws.sqs.clone(), self.urls.clone())
    }

    pub async fn delete(&self, aws: &LocalAws) {
        aws.delete_queue(&self.urls.events).await;
        aws.delete_queue(&self.urls.notifications).await;
    }
}

/// One message as a FIFO consumer received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    pub body: String,
    pub group_id: String,
    pub dedup_id: String,
    pub attributes: HashMap<String, String>,
}

impl Received {
    pub fn of(m: &Message) -> Self {
        let system = m.attributes();
        let sys = |name: MessageSystemAttributeName| {
            system
                .and_then(|a| a.get(&name))
                .cloned()
                .unwrap_or_default()
        };
        Received {
            body: m.body().unwrap_or_default().to_string(),
            group_id: sys(MessageSystemAttributeName::MessageGroupId),
            dedup_id: sys(MessageSystemAttributeName::MessageDeduplicationId),
            attributes: m
                .message_attributes()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(k, v)| {
                            assert_eq!(v.data_type(), "String", "attribute {k}");
                            (k.clone(), v.string_value().unwrap_or_default().to_string())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn event_id(&self) -> String {
        self.dedup_id.clone()
    }
}

/// Receive and delete everything on a queue (in receive order).
pub async fn consume(aws: &LocalAws, url: &str) -> Vec<Received> {
    aws.drain_queue(url)
        .await
        .iter()
        .map(Received::of)
        .collect()
}

/// Event ids per group, in receive order.
pub fn per_group(messages: &[Received]) -> HashMap<String, Vec<String>> {
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for m in messages {
        groups
            .entry(m.group_id.clone())
            .or_default()
            .push(m.event_id());
    }
    groups
}

/// Expected per-key order of outbox items: stream order (here: commit order), and by
/// `sequence` inside a commit.
pub fn expected_per_key(items: &[OutboxItem]) -> HashMap<String, Vec<String>> {
    let mut sorted: Vec<&OutboxItem> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.created_at, a.sequence).cmp(&(&b.created_at, b.sequence)));
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for it in sorted {
        keys.entry(it.ordering_key.clone())
            .or_default()
            .push(it.event_id.to_string());
    }
    keys
}

// ------------------------------------------------------------------ outbox items

/// Apply one record through the ingest path (`process_record` on the DynamoDB store),
/// retrying transient failures like the ingest function does (moto answers HTTP 500 now and
/// then when tests run transactions in parallel).
pub async fn apply(store: &DynamoStore, record: &TestRecord, now: Timestamp) -> RecordOutcome {
    let consumed = ConsumedRecord {
        topic: record.topic,
        value: &record.value,
        record_time: now,
    };
    let mut attempt = 0;
    loop {
        match process_record(store, consumed, now).await {
            Ok(outcome) => return outcome,
            Err(e) if e.is_retryable() && attempt < 8 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
            Err(e) => panic!("process_record {}: {e}", record.topic),
        }
    }
}

/// One complete batch of `teacher`: registration, a CJ result (→ assessment completed +
/// notification), BOS pipeline completed (→ results ready + notification). Four outbox items
/// in two commits, written at `at` and `at + 1 s`. Returns them as stored.
pub async fn complete_batch(
    aws: &LocalAws,
    store: &DynamoStore,
    batch_id: &str,
    teacher: &str,
    at: Timestamp,
) -> Vec<OutboxItem> {
    let later =
        |secs: i64| Timestamp::from_unix_micros(at.unix_micros() + secs * 1_000_000).unwrap_or(at);
    apply(
        store,
        &registration(Uuid::new_v4(), batch_id, teacher, &["e1", "e2"], at),
        at,
    )
    .await;
    let job = format!("job-{batch_id}");
    apply(
        store,
        &assessment_result(
            Uuid::new_v4(),
            batch_id,
            &job,
            &[("e1", 1, 1.2, "B"), ("e2", 2, -0.3, "C")],
            false,
            at,
        ),
        at,
    )
    .await;
    apply(
        store,
        &pipeline_completed(
            Uuid::new_v4(),
            batch_id,
            "completed_successfully",
            &["cj_assessment"],
            2,
            0,
            later(1),
        ),
        later(1),
    )
    .await;
    let items = aws.outbox_of_batch(batch_id).await;
    assert_eq!(items.len(), 4, "outbox items of {batch_id}: {items:?}");
    items
}

/// `batches` complete batches spread over `teachers` teachers (unique ids), one after the
/// other; all their outbox items in commit order.
pub async fn complete_batches(
    aws: &LocalAws,
    batches: usize,
    teachers: usize,
    at: Timestamp,
) -> Vec<OutboxItem> {
    let store = aws.store();
    let teacher_ids: Vec<String> = (0..teachers.max(1)).map(|_| unique("teacher")).collect();
    let mut items = Vec::new();
    for b in 0..batches {
        let at =
            Timestamp::from_unix_micros(at.unix_micros() + b as i64 * 10_000_000).unwrap_or(at);
        items.extend(
            complete_batch(
                aws,
                &store,
                &unique("relay-batch"),
                &teacher_ids[b % teacher_ids.len()],
                at,
            )
            .await,
        );
    }
    items
}

// ------------------------------------------------------------------ the outbox stream

/// Reads the outbox table's stream with the DynamoDB Streams API. [`OutboxStream::open`]
/// remembers the end of every shard, so only records written afterwards are returned. Every
/// poll re-acquires its shard iterator (`AFTER_SEQUENCE_NUMBER`): moto's iterators stop
/// seeing new records after a failed transaction.
pub struct OutboxStream {
    client: aws_sdk_dynamodbstreams::Client,
    pub stream_arn: String,
    positions: HashMap<String, Option<String>>,
}

impl OutboxStream {
    pub async fn open(aws: &LocalAws) -> Self {
        let table = aws
            .dynamo
            .describe_table()
            .table_name(&aws.tables.outbox_table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeTable {}: {e:?}", aws.tables.outbox_table));
        let stream_arn = table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .unwrap_or_else(|| panic!("table {} has no stream", aws.tables.outbox_table))
            .to_string();
        let mut stream = OutboxStream {
            client: aws_sdk_dynamodbstreams::Client::new(&aws.sdk),
            stream_arn,
            positions: HashMap::new(),
        };
        stream.read_new().await;
        stream
    }

    async fn shard_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("DescribeStream: {e:?}"));
            let Some(desc) = out.stream_description else {
                break;
            };
            ids.extend(
                desc.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_string)),
            );
            start = desc.last_evaluated_shard_id;
            if start.is_none() {
                break;
            }
        }
        ids
    }

    /// Every record written since the last read, per shard in stream order.
    pub async fn read_new(&mut self) -> Vec<Record> {
        let mut all = Vec::new();
        for shard in self.shard_ids().await {
            loop {
                let last = self.positions.get(&shard).cloned().flatten();
                let mut req = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard);
                req = match &last {
                    Some(seq) => req
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(seq),
                    None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                let iterator = req
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GetShardIterator: {e:?}"))
                    .shard_iterator
                    .unwrap_or_else(|| panic!("GetShardIterator: no iterator"));
                let out = self
                    .client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(1000)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GetRecords: {e:?}"));
                let records = out.records.unwrap_or_default();
                if records.is_empty() {
                    self.positions.entry(shard.clone()).or_insert(last);
                    break;
                }
                let newest = records
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|d| d.sequence_number())
                    .map(str::to_string);
                self.positions.insert(shard.clone(), newest);
                all.extend(records);
            }
        }
        all
    }

    /// Poll until the INSERT records of all `event_ids` arrived (≤ 10 s); returns just those
    /// records, in stream order.
    pub async fn inserts_of(&mut self, event_ids: &HashSet<String>) -> Vec<Record> {
        let mut found: Vec<Record> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for _ in 0..100 {
            for record in self.read_new().await {
                if let Some(id) = record_event_id(&record) {
                    if event_ids.contains(&id) && is_insert(&record) && seen.insert(id) {
                        found.push(record);
                    }
                }
            }
            if seen.len() == event_ids.len() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the outbox stream delivered {} of {} inserts",
            seen.len(),
            event_ids.len()
        );
    }
}

fn is_insert(record: &Record) -> bool {
    record.event_name().map(|n| n.as_str()) == Some("INSERT")
}

/// The `event_id` of a stream record (from its new image).
pub fn record_event_id(record: &Record) -> Option<String> {
    record
        .dynamodb()
        .and_then(|d| d.new_image())
        .and_then(|k| k.get("event_id"))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

pub fn sequence_number(record: &Record) -> String {
    record
        .dynamodb()
        .and_then(|d| d.sequence_number())
        .unwrap_or_default()
        .to_string()
}

/// A Streams API record as the Lambda event carries it. `ApproximateCreationDateTime` is
/// truncated to whole seconds (`aws_lambda_events` misreads fractions).
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb();
    let image = |map: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        map.map(|m| {
            serde_json::to_value(serde_dynamo::Item::from(m.clone()))
                .unwrap_or_else(|e| panic!("image to JSON: {e}"))
        })
    };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change
            .and_then(|c| c.approximate_creation_date_time())
            .map(|t| t.secs())
            .unwrap_or(0),
        "SequenceNumber": change.and_then(|c| c.sequence_number()),
        "SizeBytes": change.and_then(|c| c.size_bytes()).unwrap_or(0),
        "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|v| v.as_str().to_string()),
    });
    if let Some(keys) = image(change.and_then(|c| c.keys())) {
        dynamodb["Keys"] = keys;
    }
    if let Some(new_image) = image(change.and_then(|c| c.new_image())) {
        dynamodb["NewImage"] = new_image;
    }
    if let Some(old_image) = image(change.and_then(|c| c.old_image())) {
        dynamodb["OldImage"] = old_image;
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str().to_string()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// The Lambda DynamoDB stream event of `records` (as the event source mapping delivers them).
pub fn lambda_event(records: &[Record], stream_arn: &str) -> Event {
    let records: Vec<Value> = records
        .iter()
        .map(|r| lambda_record(r, stream_arn))
        .collect();
    serde_json::from_value(json!({ "Records": records }))
        .unwrap_or_else(|e| panic!("Lambda DynamoDB event: {e}"))
}

/// Commit `batches` complete batches and read their outbox inserts from the stream: the
/// stored items (commit order) and the Lambda event of their stream records.
pub async fn committed_stream_event(
    aws: &LocalAws,
    batches: usize,
    teachers: usize,
) -> (Vec<OutboxItem>, Event) {
    let mut stream = OutboxStream::open(aws).await;
    let items = complete_batches(aws, batches, teachers, Timestamp::now()).await;
    let ids: HashSet<String> = items.iter().map(|i| i.event_id.to_string()).collect();
    let records = stream.inserts_of(&ids).await;
    (items, lambda_event(&records, &stream.stream_arn))
}
