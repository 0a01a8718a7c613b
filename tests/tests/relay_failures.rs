//! Relay failures against the local AWS-API server: injected per-entry and whole-request
//! failures give the right `batchItemFailures`; Lambda's redelivery from the checkpoint
//! fills exactly the gap (re-sent messages collapse by deduplication id); a consumer sees
//! every event id, in per-key order; the circuit breaker opens, fails fast, half-opens and
//! closes.
//!
//! Needs `AWS_ENDPOINT_URL` (scripts/test.sh); fails, never skips, without it.

use aws_lambda_events::dynamodb::Event;
use aws_sdk_sqs::types::QueueAttributeName;
use ras_aws::dynamo::OutboxItem;
use ras_tests::local_aws::LocalAws;
use ras_tests::relay_support::{
    committed_stream_event, consume, expected_per_key, per_group, Received, TestQueues,
};
use relay::breaker::{BreakerState, CircuitBreaker};
use relay::clock::{ManualClock, SystemClock};
use relay::stream::compare_sequence_numbers;
use relay::testing::{retry_from, Faults, FaultyPublisher};
use relay::Relay;
use serde_json::json;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// event id → the stream sequence number of its record.
fn sequence_numbers(event: &Event) -> HashMap<String, String> {
    event
        .records
        .iter()
        .filter_map(|r| {
            let id = match r.change.new_image.inner().get("event_id") {
                Some(serde_dynamo::AttributeValue::S(id)) => id.clone(),
                _ => return None,
            };
            Some((id, r.change.sequence_number.clone()?))
        })
        .collect()
}

fn lowest<'a>(seqs: impl IntoIterator<Item = &'a String>) -> Option<String> {
    seqs.into_iter()
        .min_by(|a, b| compare_sequence_numbers(a, b).unwrap_or(Ordering::Equal))
        .cloned()
}

fn all_ids(items: &[OutboxItem]) -> HashSet<String> {
    items.iter().map(|i| i.event_id.to_string()).collect()
}

/// "Never report success for an unsent item": everything unsent is at or after the
/// checkpoint, and the checkpoint names an unsent record.
fn assert_checkpoint_covers(
    checkpoint: &str,
    unsent: &HashSet<String>,
    seqs: &HashMap<String, String>,
) {
    assert!(!unsent.is_empty());
    let expected = lowest(unsent.iter().map(|id| &seqs[id])).unwrap();
    assert_eq!(checkpoint, expected);
    for id in unsent {
        assert_ne!(
            compare_sequence_numbers(&seqs[id], checkpoint),
            Some(Ordering::Less),
            "unsent {id} lies before the checkpoint"
        );
    }
}

async fn queued(aws: &LocalAws, queues: &TestQueues) -> usize {
    let mut n = 0;
    for url in [&queues.urls.events, &queues.urls.notifications] {
        let out = aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        n += out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
    }
    n
}

/// Drain both queues; every event id exactly once, each key in commit order.
async fn assert_consumer_sees_everything_in_order(
    aws: &LocalAws,
    queues: &TestQueues,
    items: &[OutboxItem],
) {
    let events = consume(aws, &queues.urls.events).await;
    let notes = consume(aws, &queues.urls.notifications).await;
    let received: Vec<&Received> = events.iter().chain(&notes).collect();
    let ids: Vec<String> = received.iter().map(|m| m.event_id()).collect();
    assert_eq!(
        ids.iter().cloned().collect::<HashSet<_>>(),
        all_ids(items),
        "every event id reaches the consumer"
    );
    assert_eq!(
        ids.len(),
        items.len(),
        "re-sent messages collapsed by dedup id"
    );
    let bodies: HashMap<String, &str> = items
        .iter()
        .map(|i| (i.event_id.to_string(), i.body.as_str()))
        .collect();
    for m in &received {
        assert_eq!(m.body, bodies[&m.event_id()], "same bytes on every attempt");
    }
    let mut groups = per_group(&events);
    groups.extend(per_group(&notes));
    assert_eq!(groups, expected_per_key(items), "per-key order");
}

#[tokio::test]
async fn a_failed_entry_is_reported_and_the_redelivery_sends_exactly_what_was_missing() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    // 4 batches of 2 teachers: each teacher gets 4 notifications.
    let (items, event) = committed_stream_event(&aws, 4, 2).await;
    let seqs = sequence_numbers(&event);
    let order = expected_per_key(&items);
    let teacher = items
        .iter()
        .find(|i| i.topic.starts_with("huleedu.notification"))
        .map(|i| i.ordering_key.clone())
        .unwrap();
    let teacher_order = &order[&teacher];
    assert_eq!(teacher_order.len(), 4);
    let victim = teacher_order[1].clone();

    // SQS answers HTTP 200 with the victim in `Failed` (SenderFault=false), once.
    let faults = Faults {
        fail_entries: HashMap::from([(victim.clone(), 1)]),
        ..Faults::default()
    };
    let relay = Relay::new(
        FaultyPublisher::new(queues.publisher(&aws), faults),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    let out = relay.handle(&event, None).await.unwrap();
    let checkpoint = out.checkpoint.clone().expect("a checkpoint");
    assert_eq!(checkpoint, seqs[&victim]);
    assert_eq!(
        serde_json::to_value(&out.response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": checkpoint}]})
    );
    assert_eq!((out.failed, out.held), (1, 2));
    // The victim's key stopped at it; everything else went out.
    let missing: HashSet<String> = teacher_order[1..].iter().cloned().collect();
    let published: HashSet<String> = out.published.iter().cloned().collect();
    assert_eq!(published, &all_ids(&items) - &missing);
    assert_checkpoint_covers(&checkpoint, &missing, &seqs);
    assert_eq!(queued(&aws, &queues).await, items.len() - 3);

    // Lambda re-delivers the shard from the checkpoint on.
    let retry = retry_from(&event, &checkpoint);
    let attempts_before = relay.publisher().attempts().len();
    let out = relay.handle(&retry, None).await.unwrap();
    assert_eq!(out.checkpoint, None);
    let resent: HashSet<String> = relay.publisher().attempts()[attempts_before..]
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.event_id.to_string()))
        .collect();
    assert!(resent.is_superset(&missing));
    // The queues gained exactly the three missing messages; the re-sends collapsed.
    assert_eq!(queued(&aws, &queues).await, items.len());
    assert_consumer_sees_everything_in_order(&aws, &queues, &items).await;
    queues.delete(&aws).await;
}

#[tokio::test]
async fn a_failed_request_fails_all_its_entries_and_their_keys() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    // 4 batches, 4 teachers: per destination 4 keys × 2 messages → 4 requests.
    let (items, event) = committed_stream_event(&aws, 4, 4).await;
    let seqs = sequence_numbers(&event);
    let faults = Faults {
        fail_calls: HashSet::from([2]),
        ..Faults::default()
    };
    let relay = Relay::new(
        FaultyPublisher::new(queues.publisher(&aws), faults),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    let out = relay.handle(&event, None).await.unwrap();
    let attempts = relay.publisher().attempts();
    assert_eq!(
        attempts.len(),
        3,
        "the failed request's keys send nothing more"
    );
    let failed_call: HashSet<String> = attempts[1]
        .messages
        .iter()
        .map(|m| m.event_id.to_string())
        .collect();
    assert_eq!(failed_call.len(), 4);
    // Unsent: the failed request's entries and the messages behind them on their keys.
    let order = expected_per_key(&items);
    let mut missing = HashSet::new();
    for ids in order.values() {
        if let Some(pos) = ids.iter().position(|id| failed_call.contains(id)) {
            missing.extend(ids[pos..].iter().cloned());
        }
    }
    assert_eq!(missing.len(), 8);
    assert_eq!(out.failed, 4);
    assert_eq!(out.held, 4);
    let published: HashSet<String> = out.published.iter().cloned().collect();
    assert_eq!(published, &all_ids(&items) - &missing);
    let checkpoint = out.checkpoint.clone().unwrap();
    assert_checkpoint_covers(&checkpoint, &missing, &seqs);

    let out = relay
        .handle(&retry_from(&event, &checkpoint), None)
        .await
        .unwrap();
    assert_eq!(out.checkpoint, None);
    assert_eq!(queued(&aws, &queues).await, items.len());
    assert_consumer_sees_everything_in_order(&aws, &queues, &items).await;
    queues.delete(&aws).await;
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_half_opens_and_closes_across_invocations() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    let (items, event) = committed_stream_event(&aws, 3, 3).await;
    let first_sequence = event.records[0].change.sequence_number.clone().unwrap();
    let clock = Arc::new(ManualClock::new());
    let faults = Faults {
        fail_all_calls: true,
        ..Faults::default()
    };
    let relay = Relay::new(
        FaultyPublisher::new(queues.publisher(&aws), faults),
        Arc::new(CircuitBreaker::default()),
        Arc::clone(&clock),
    );
    let publisher = relay.publisher();

    // SQS fails every request. Each invocation reaches 2 requests (one per queue) before all
    // keys stopped; the breaker state carries over: the 5th consecutive failure opens it.
    let mut invocations = 0;
    loop {
        invocations += 1;
        let out = relay.handle(&event, None).await.unwrap();
        assert_eq!(out.checkpoint.as_deref(), Some(first_sequence.as_str()));
        assert!(out.published.is_empty());
        if out.breaker_state == BreakerState::Open {
            assert!(out.breaker_rejected);
            break;
        }
        assert!(invocations < 5, "the breaker never opened");
    }
    assert_eq!(publisher.calls(), 5);
    assert_eq!(invocations, 3);

    // Open: no request at all, everything handed back.
    clock.advance(Duration::from_secs(10));
    let out = relay.handle(&event, None).await.unwrap();
    assert_eq!(publisher.calls(), 5);
    assert_eq!((out.sqs_requests, out.held), (0, items.len()));
    assert_eq!(out.checkpoint.as_deref(), Some(first_sequence.as_str()));
    assert_eq!(out.metrics().to_json()["CircuitState"], json!(2.0));

    // After 30 s one probe goes out; SQS still fails → open again.
    clock.advance(Duration::from_secs(20));
    let out = relay.handle(&event, None).await.unwrap();
    assert_eq!(publisher.calls(), 6);
    assert_eq!(out.breaker_state, BreakerState::Open);
    assert_eq!(queued(&aws, &queues).await, 0);

    // SQS recovers; 30 s later the probe succeeds, the breaker closes, the batch goes out.
    publisher.set_faults(Faults::default());
    clock.advance(Duration::from_secs(30));
    let out = relay.handle(&event, None).await.unwrap();
    assert_eq!(out.breaker_state, BreakerState::Closed);
    assert_eq!(out.checkpoint, None);
    assert_eq!(out.published.len(), items.len());
    assert_consumer_sees_everything_in_order(&aws, &queues, &items).await;
    queues.delete(&aws).await;
}
