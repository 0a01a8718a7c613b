//! Relay against the local AWS-API server: real outbox items (committed by the ingest path),
//! read from the outbox table's stream with the DynamoDB Streams API, fed to the handler as a
//! Lambda DynamoDB event, published to FIFO queues of this test, received by a consumer.
//!
//! Needs `AWS_ENDPOINT_URL` (scripts/test.sh); fails, never skips, without it.

use ras_aws::dynamo::OutboxItem;
use ras_tests::local_aws::LocalAws;
use ras_tests::relay_support::{
    committed_stream_event, consume, expected_per_key, per_group, Received, TestQueues,
};
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::Relay;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

fn is_notification(item: &OutboxItem) -> bool {
    item.topic == "huleedu.notification.teacher.requested.v1"
}

/// Each item exactly once on its queue, with the stored bytes, ids and attributes.
fn assert_delivered_exactly(items: &[OutboxItem], events: &[Received], notes: &[Received]) {
    let by_id = |msgs: &[Received]| -> HashMap<String, Vec<Received>> {
        let mut map: HashMap<String, Vec<Received>> = HashMap::new();
        for m in msgs {
            map.entry(m.dedup_id.clone()).or_default().push(m.clone());
        }
        map
    };
    let (events_by_id, notes_by_id) = (by_id(events), by_id(notes));
    let expected_events = items.iter().filter(|i| !is_notification(i)).count();
    assert_eq!(events.len(), expected_events, "events queue: {events:#?}");
    assert_eq!(
        notes.len(),
        items.len() - expected_events,
        "notifications queue"
    );
    for item in items {
        let id = item.event_id.to_string();
        let queue = if is_notification(item) {
            &notes_by_id
        } else {
            &events_by_id
        };
        let got = queue
            .get(&id)
            .unwrap_or_else(|| panic!("{id} ({}) not on its queue", item.topic));
        assert_eq!(got.len(), 1, "{id} delivered {} times", got.len());
        let m = &got[0];
        assert_eq!(m.body, item.body, "body of {id} must be byte-identical");
        assert_eq!(m.group_id, item.ordering_key);
        assert_eq!(m.dedup_id, id);
        let expected: HashMap<String, String> = HashMap::from([
            ("topic".to_string(), item.topic.clone()),
            ("event_type".to_string(), item.event_type.clone()),
            (
                "correlation_id".to_string(),
                item.correlation_id.to_string(),
            ),
            ("key".to_string(), item.ordering_key.clone()),
        ]);
        assert_eq!(m.attributes, expected, "attributes of {id}");
        // The body is the envelope of that event.
        let envelope: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(envelope["event_id"], json!(id));
        assert_eq!(envelope["event_type"], json!(item.topic));
    }
}

#[tokio::test]
async fn outbox_stream_records_reach_their_queues_with_exact_bytes_ids_and_attributes() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    // 3 batches of 2 teachers: 6 events (2 per batch) and 6 notifications (4 + 2 per teacher).
    let (items, event) = committed_stream_event(&aws, 3, 2).await;
    assert_eq!(items.len(), 12);
    assert_eq!(event.records.len(), 12);
    assert!(event.records.iter().all(|r| r.event_name == "INSERT"
        && r.event_source_arn
            .as_deref()
            .is_some_and(|a| a.contains("/stream/"))
        && r.change.sequence_number.is_some()));

    let relay = Relay::new(
        queues.publisher(&aws),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    let out = relay.handle(&event, None).await.unwrap();
    assert_eq!(
        serde_json::to_value(&out.response).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(out.published.len(), 12);
    assert_eq!(out.unsent(), 0);
    // At most one message per key per request: the events (3 batch keys × 2) take 2
    // requests; teacher 1's four notifications take 4 (teacher 2's two ride along).
    assert_eq!(out.sqs_requests, 6);
    assert_eq!(out.latencies_ms.len(), 12);

    let events = consume(&aws, &queues.urls.events).await;
    let notes = consume(&aws, &queues.urls.notifications).await;
    assert_delivered_exactly(&items, &events, &notes);
    // Per key, in commit order.
    let mut received = per_group(&events);
    received.extend(per_group(&notes));
    assert_eq!(received, expected_per_key(&items));
    queues.delete(&aws).await;
}

#[tokio::test]
async fn a_redelivered_stream_batch_collapses_by_deduplication_id() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    let (items, event) = committed_stream_event(&aws, 2, 1).await;
    let relay = Relay::new(
        queues.publisher(&aws),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    // Lambda may deliver the same batch again (e.g. after a timeout): same bytes, same ids.
    for _ in 0..3 {
        let out = relay.handle(&event, None).await.unwrap();
        assert_eq!(out.checkpoint, None);
        assert_eq!(out.published.len(), items.len());
    }
    let events = consume(&aws, &queues.urls.events).await;
    let notes = consume(&aws, &queues.urls.notifications).await;
    assert_delivered_exactly(&items, &events, &notes);
    // (SQS also drops a re-send within 5 minutes after the consumer deleted the first copy;
    // moto 5.2.5 compares only with messages still on the queue, so that is not checked.)
    let ids: HashSet<String> = events.iter().chain(&notes).map(|m| m.event_id()).collect();
    assert_eq!(ids.len(), items.len());
    queues.delete(&aws).await;
}
