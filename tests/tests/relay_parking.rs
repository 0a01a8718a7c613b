//! Issue 11, item 2: a message SQS refuses for good is parked, acknowledged, and brought back
//! by `ras-ops republish --parked` — against the local AWS-API server, with real outbox items
//! (committed by the ingest path, read from the outbox stream), the real SQS adapters
//! (`SqsPublisher`, `SqsParking`) and the operator's code path.
//!
//! The refusal: an events queue whose `MaximumMessageSize` is smaller than the relay's limit
//! (the misconfiguration the template now rules out). moto refuses the whole
//! `SendMessageBatch` (`InvalidParameterValue`, "Message must be shorter than …"), as SQS may;
//! the relay sends the request's messages one by one and parks the refused ones.
//!
//! Needs `AWS_ENDPOINT_URL` (scripts/test.sh); fails, never skips, without it.

use aws_sdk_sqs::types::QueueAttributeName;
use ras_aws::dynamo::OutboxItem;
use ras_aws::parking::SqsParking;
use ras_domain::ports::ParkedMessage;
use ras_ops::republish::{republish_parked, ParkedOptions};
use ras_tests::local_aws::LocalAws;
use ras_tests::relay_support::{committed_stream_event, consume, TestQueues};
use relay::breaker::{BreakerState, CircuitBreaker};
use relay::clock::SystemClock;
use relay::Relay;
use std::collections::BTreeSet;
use std::sync::Arc;

const SMALL_QUEUE_MAX: usize = 1024;

fn is_event(item: &OutboxItem) -> bool {
    item.topic != "huleedu.notification.teacher.requested.v1"
}

async fn parked_records(aws: &LocalAws, url: &str) -> Vec<ParkedMessage> {
    aws.drain_queue(url)
        .await
        .iter()
        .map(|m| {
            let body = m.body().unwrap_or_default();
            assert!(body.is_ascii(), "{body}");
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
        })
        .collect()
}

#[tokio::test]
async fn refused_messages_are_parked_acknowledged_and_republished() {
    let aws = LocalAws::connect().await;
    let store = aws.store();
    let queues = TestQueues::create(&aws).await;
    aws.sqs
        .set_queue_attributes()
        .queue_url(&queues.urls.events)
        .attributes(
            QueueAttributeName::MaximumMessageSize,
            SMALL_QUEUE_MAX.to_string(),
        )
        .send()
        .await
        .unwrap();
    let parked_url = aws.create_queue("relay-parked").await;

    // 2 batches of 1 teacher: 4 events (batch keys), 4 notifications (teacher key).
    let (items, event) = committed_stream_event(&aws, 2, 1).await;
    let too_large: BTreeSet<String> = items
        .iter()
        .filter(|i| is_event(i) && i.body.len() > SMALL_QUEUE_MAX)
        .map(|i| i.event_id.to_string())
        .collect();
    assert!(
        !too_large.is_empty() && too_large.len() < items.len(),
        "the scenario needs refused and accepted messages: {} of {}",
        too_large.len(),
        items.len()
    );

    let relay = Relay::new(
        queues.publisher(&aws),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    )
    .with_parking(SqsParking::new(aws.sqs.clone(), &parked_url));
    let out = relay.handle(&event, None).await.unwrap();
    // Nothing handed back: the shard moves on.
    assert_eq!(out.checkpoint, None, "{out:?}");
    assert_eq!(out.parked, too_large.len(), "{out:?}");
    assert_eq!(out.published.len(), items.len() - too_large.len());
    assert_eq!((out.failed, out.held, out.parking_failures), (0, 0, 0));
    // Refusals are the sender's fault: the breaker stays closed.
    assert_eq!(out.breaker_state, BreakerState::Closed);
    let metrics = out.metrics().to_json();
    assert_eq!(
        metrics["MessagesParked"],
        serde_json::json!(too_large.len() as f64)
    );

    // What operations see: one small record per refused message.
    let records = parked_records(&aws, &parked_url).await;
    let parked_ids: BTreeSet<String> = records.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(parked_ids, too_large);
    for r in &records {
        let item = items
            .iter()
            .find(|i| i.event_id.to_string() == r.event_id)
            .unwrap();
        assert_eq!(r.ordering_key, item.ordering_key);
        assert_eq!(r.position, item.position);
        assert_eq!(r.destination, ras_domain::ports::Destination::Events);
        assert_eq!(r.topic, item.topic);
        assert_eq!(r.batch_id, item.batch_id);
        assert_eq!(r.body_bytes, item.body.len());
        assert_eq!(r.code, ras_aws::sqs_publisher::MESSAGE_REFUSED);
        assert!(
            r.reason.contains("Message must be shorter than 1024 bytes"),
            "{}",
            r.reason
        );
    }
    // The accepted messages are on their queues; the refused ones are not.
    let first_events = consume(&aws, &queues.urls.events).await;
    let notes = consume(&aws, &queues.urls.notifications).await;
    assert_eq!(notes.len(), 4);
    let on_queue: BTreeSet<String> = first_events.iter().map(|m| m.event_id()).collect();
    assert!(on_queue.is_disjoint(&too_large));
    assert_eq!(on_queue.len() + too_large.len(), 4);

    // Put the records back (drained above to read them), fix the queue, bring them back.
    let parking = SqsParking::new(aws.sqs.clone(), &parked_url);
    for r in &records {
        ras_domain::ports::MessageParking::park(&parking, r)
            .await
            .unwrap();
    }
    let publisher = queues.publisher(&aws);
    let options = ParkedOptions {
        wait_seconds: 0,
        ..ParkedOptions::default()
    };
    // Still refused: reported, kept.
    let report = republish_parked(&aws.sqs, &parked_url, &store, &publisher, &options)
        .await
        .unwrap();
    assert_eq!(report.received, too_large.len());
    assert_eq!((report.deleted, report.kept), (0, too_large.len()));
    assert!(!report.is_complete());
    assert!(report.records.iter().all(|r| r.status == "kept"));

    aws.sqs
        .set_queue_attributes()
        .queue_url(&queues.urls.events)
        .attributes(
            QueueAttributeName::MaximumMessageSize,
            ras_aws::sqs_publisher::MAX_MESSAGE_BYTES.to_string(),
        )
        .send()
        .await
        .unwrap();
    let report = republish_parked(&aws.sqs, &parked_url, &store, &publisher, &options)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(
        (report.received, report.deleted, report.republish.published),
        (too_large.len(), too_large.len(), too_large.len())
    );
    // The stored bytes, ids and attributes, as the relay sends them.
    let republished = consume(&aws, &queues.urls.events).await;
    let got: BTreeSet<String> = republished.iter().map(|m| m.event_id()).collect();
    assert_eq!(got, too_large);
    for m in &republished {
        let item = items
            .iter()
            .find(|i| i.event_id.to_string() == m.event_id())
            .unwrap();
        assert_eq!(m.body, item.body);
        assert_eq!(m.group_id, item.ordering_key);
        assert_eq!(m.attributes["key"], item.ordering_key);
    }
    // The parking queue is empty; another run has nothing to do.
    let again = republish_parked(&aws.sqs, &parked_url, &store, &publisher, &options)
        .await
        .unwrap();
    assert_eq!(again.received, 0);
    assert!(again.is_complete());

    queues.delete(&aws).await;
    aws.delete_queue(&parked_url).await;
}
