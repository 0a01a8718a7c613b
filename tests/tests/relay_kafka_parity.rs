//! Issue 13's "done when": with Kafka enabled (`RAS_*_PUBLISH_TO=both`), the three Kafka topics
//! receive exactly what the SQS queues receive, byte for byte, keyed as the reference service
//! keyed them (`batch_id` for the domain events, `teacher_id` for notifications), with no
//! headers. Real outbox items committed by the ingest path, read from the outbox table's stream
//! of the local AWS-API server, through the relay's handler with the routed publisher over the
//! local FIFO queues and the local Kafka broker.
//!
//! Needs `AWS_ENDPOINT_URL` and `RAS_KAFKA_BOOTSTRAP` (scripts/test.sh); fails, never skips,
//! without them.

use ras_aws::dynamo::OutboxItem;
use ras_aws::kafka_publisher::{partition_for, KafkaPublisher};
use ras_aws::routing::{RoutedPublisher, Routes, Transport};
use ras_aws::sqs_publisher::SqsPublisher;
use ras_domain::contracts::PublishedTopic;
use ras_tests::kafka::{read_keys, reader, Read, PARTITIONS};
use ras_tests::local_aws::LocalAws;
use ras_tests::relay_support::{committed_stream_event, consume, Received, TestQueues};
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::Relay;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Per topic and key, the bodies in the order a consumer sees them. Kafka orders records
/// within a topic's partition only (a batch's two event types are on two topics, as with the
/// reference); SQS orders a message group, which holds both: compared per (topic, key).
fn sqs_per_key(messages: &[Received]) -> HashMap<(String, String), Vec<String>> {
    let mut map: HashMap<(String, String), Vec<String>> = HashMap::new();
    for m in messages {
        let envelope: serde_json::Value = serde_json::from_str(&m.body).expect("envelope");
        let topic = envelope["event_type"]
            .as_str()
            .expect("event_type")
            .to_string();
        map.entry((topic, m.group_id.clone()))
            .or_default()
            .push(m.body.clone());
    }
    map
}

fn kafka_per_key(records: &[Read]) -> HashMap<(String, String), Vec<String>> {
    let mut map: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in records {
        map.entry((r.topic.clone(), r.key_text()))
            .or_default()
            .push(r.value_text());
    }
    map
}

/// The relay handler over the test's queues and the local broker, routed by `routes` (the
/// Kafka connection opens on the first publish).
fn relay(
    routes: Routes,
    aws: &LocalAws,
    queues: &TestQueues,
) -> Relay<RoutedPublisher<SqsPublisher, KafkaPublisher>, SystemClock> {
    let publisher = RoutedPublisher::new(
        routes,
        queues.publisher(aws),
        Some(KafkaPublisher::new(ras_tests::kafka::settings())),
    )
    .expect("a Kafka publisher is given");
    Relay::new(
        publisher,
        Arc::new(CircuitBreaker::new(Default::default())),
        SystemClock,
    )
}

/// The key the reference's producer used: `teacher_id` for notifications, `batch_id` for the
/// domain events (ras-behaviour §1.3) — read from the envelope itself.
fn reference_key(topic: &str, body: &str) -> String {
    let envelope: serde_json::Value = serde_json::from_str(body).expect("envelope JSON");
    let field = if topic == PublishedTopic::TeacherNotificationRequested.name() {
        "teacher_id"
    } else {
        "batch_id"
    };
    envelope["data"][field]
        .as_str()
        .unwrap_or_else(|| panic!("{topic}: no data.{field} in {body}"))
        .to_string()
}

#[tokio::test]
async fn with_kafka_on_the_topics_receive_exactly_what_the_queues_receive() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    // 3 batches, 2 teachers each: results ready + assessment completed per batch, and the
    // teachers' notifications.
    let (items, event) = committed_stream_event(&aws, 3, 2).await;
    assert_eq!(items.len(), 12);

    let routes = Routes {
        events: Transport::Both,
        notifications: Transport::Both,
    };
    let outcome = relay(routes, &aws, &queues)
        .handle_event(event, None)
        .await
        .expect("relay");
    assert!(
        outcome.response.batch_item_failures.is_empty(),
        "{:?}",
        outcome.response.batch_item_failures
    );

    let sqs: Vec<Received> = [
        consume(&aws, &queues.urls.events).await,
        consume(&aws, &queues.urls.notifications).await,
    ]
    .concat();
    let keys: HashSet<String> = items.iter().map(|i| i.ordering_key.clone()).collect();
    let client = reader().await;
    let mut kafka: Vec<Read> = Vec::new();
    for topic in PublishedTopic::ALL {
        kafka.extend(read_keys(&client, topic.name(), &keys).await);
    }

    // Every stored item exactly once on each side, with the stored bytes.
    assert_eq!(sqs.len(), items.len(), "SQS: {sqs:#?}");
    assert_eq!(kafka.len(), items.len(), "Kafka: {kafka:#?}");
    let by_body: HashMap<&str, &OutboxItem> = items.iter().map(|i| (i.body.as_str(), i)).collect();
    for r in &kafka {
        let value = r.value_text();
        let item = by_body
            .get(value.as_str())
            .unwrap_or_else(|| panic!("Kafka value is no stored body: {value}"));
        assert_eq!(r.topic, item.topic, "topic of {}", item.event_id);
        assert_eq!(r.key_text(), item.ordering_key);
        assert_eq!(
            r.key_text(),
            reference_key(&item.topic, &item.body),
            "key of {} ({})",
            item.event_id,
            item.topic
        );
        assert_eq!(r.headers, 0, "no headers (the reference sends none)");
        assert_eq!(
            r.partition,
            partition_for(item.ordering_key.as_bytes(), PARTITIONS),
            "Kafka's default partitioner"
        );
    }
    for m in &sqs {
        let item = by_body
            .get(m.body.as_str())
            .unwrap_or_else(|| panic!("SQS body is no stored body: {}", m.body));
        assert_eq!(m.group_id, item.ordering_key);
    }
    // The same bodies, in the same order per topic and key, on both transports.
    let (sqs_keys, kafka_keys) = (sqs_per_key(&sqs), kafka_per_key(&kafka));
    assert_eq!(sqs_keys, kafka_keys);
    let teachers = items
        .iter()
        .filter(|i| i.topic == PublishedTopic::TeacherNotificationRequested.name())
        .count();
    assert!(teachers > 0 && teachers < items.len(), "both kinds covered");
    queues.delete(&aws).await;
}

#[tokio::test]
async fn kafka_only_routes_send_nothing_to_the_queues() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    let (items, event) = committed_stream_event(&aws, 1, 1).await;
    let routes = Routes {
        events: Transport::Kafka,
        notifications: Transport::Sqs,
    };
    let outcome = relay(routes, &aws, &queues)
        .handle_event(event, None)
        .await
        .expect("relay");
    assert!(outcome.response.batch_item_failures.is_empty());

    let is_note = |i: &&OutboxItem| i.topic == PublishedTopic::TeacherNotificationRequested.name();
    let events: Vec<&OutboxItem> = items.iter().filter(|i| !is_note(i)).collect();
    let notes: Vec<&OutboxItem> = items.iter().filter(is_note).collect();
    assert!(!events.is_empty() && !notes.is_empty());
    assert!(consume(&aws, &queues.urls.events).await.is_empty());
    let on_queue: Vec<String> = consume(&aws, &queues.urls.notifications)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        on_queue,
        notes.iter().map(|i| i.body.clone()).collect::<Vec<_>>()
    );
    let keys: HashSet<String> = items.iter().map(|i| i.ordering_key.clone()).collect();
    let client = reader().await;
    let mut on_kafka: Vec<String> = Vec::new();
    for topic in PublishedTopic::ALL {
        on_kafka.extend(
            read_keys(&client, topic.name(), &keys)
                .await
                .iter()
                .map(Read::value_text),
        );
    }
    let mut expected: Vec<String> = events.iter().map(|i| i.body.clone()).collect();
    expected.sort();
    on_kafka.sort();
    assert_eq!(on_kafka, expected);
    queues.delete(&aws).await;
}
