//! Relay and operations tests (issue 4): real outbox items committed through the store, the
//! outbox table's stream read with the DynamoDB Streams API and wrapped as Lambda would, FIFO
//! queues of one test, and a FIFO consumer.

use crate::local_aws::{unique, LocalAws};
use aws_lambda_events::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::Record;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use ras_aws::dynamo::{DynamoStore, OutboxItem};
use ras_aws::sqs_publisher::{QueueUrls, SqsPublisher};
use ras_domain::contracts::Timestamp;
use ras_domain::service::{process_record, ConsumedRecord, RecordOutcome};
use ras_domain::testing::events::{
    assessment_result, phase_outcome, pipeline_completed, registration, TestRecord,
};
use ras_local::stream::is_insert;
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
/// notification), ELS's CJ outcome, BOS pipeline completed (→ results ready + notification). Four outbox items
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
        &phase_outcome(
            Uuid::new_v4(),
            batch_id,
            "cj_assessment",
            "completed_successfully",
            &["e1", "e2"],
            &[],
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

/// The outbox stream reader and the Lambda event wrapping are the local pipeline's
/// (`ras_local::stream`): DynamoDB Streams API, shard iterator re-acquired on every poll
/// (moto's iterators stop seeing new records after a failed transaction).
pub use ras_local::stream::{
    lambda_event, lambda_record, record_event_id, sequence_number, OutboxStream,
};

/// Open the outbox table's stream of `aws` at its current end: only records written
/// afterwards are read.
pub async fn open_outbox_stream(aws: &LocalAws) -> OutboxStream {
    OutboxStream::open(
        &aws.dynamo,
        aws_sdk_dynamodbstreams::Client::new(&aws.sdk),
        &aws.tables.outbox_table,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Poll until the INSERT records of all `event_ids` arrived (≤ 10 s); returns just those
/// records, in stream order.
pub async fn inserts_of(stream: &mut OutboxStream, event_ids: &HashSet<String>) -> Vec<Record> {
    let mut found: Vec<Record> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for _ in 0..100 {
        let records = stream
            .read_new()
            .await
            .unwrap_or_else(|e| panic!("reading the outbox stream: {e}"));
        for record in records {
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

/// Commit `batches` complete batches and read their outbox inserts from the stream: the
/// stored items (commit order) and the Lambda event of their stream records.
pub async fn committed_stream_event(
    aws: &LocalAws,
    batches: usize,
    teachers: usize,
) -> (Vec<OutboxItem>, Event) {
    let mut stream = open_outbox_stream(aws).await;
    let items = complete_batches(aws, batches, teachers, Timestamp::now()).await;
    let ids: HashSet<String> = items.iter().map(|i| i.event_id.to_string()).collect();
    let records = inserts_of(&mut stream, &ids).await;
    (items, lambda_event(&records, &stream.stream_arn))
}
