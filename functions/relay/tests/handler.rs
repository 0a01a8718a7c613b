//! The handler over in-memory publishers: ordering, batching, checkpoints, the breaker.
//! (The same properties against the local AWS-API server: `tests/tests/relay_*.rs`.)

use ras_aws::dynamo::OutboxItem;
use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::Destination;
use ras_domain::testing::{InMemoryParking, InMemoryPublisher};
use relay::breaker::{BreakerState, CircuitBreaker};
use relay::clock::ManualClock;
use relay::testing::{
    event_from_records, insert_record, retry_from, stream_event, Faults, FaultyPublisher,
};
use relay::Relay;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn item(
    n: u128,
    topic: PublishedTopic,
    key: &str,
    batch: &str,
    minute: u32,
    seq: u32,
) -> OutboxItem {
    let created = Timestamp::parse(&format!("2025-11-27T10:{minute:02}:00Z")).unwrap();
    let msg = OutboxMessage {
        event_id: Uuid::from_u128(0x1000 + n),
        topic,
        ordering_key: key.to_string(),
        correlation_id: Uuid::from_u128(0x9000 + n),
        created_at: created,
        sequence: seq,
        body: format!(
            r#"{{"event_id": "{}", "n": {n}}}"#,
            Uuid::from_u128(0x1000 + n)
        ),
    };
    OutboxItem::from_message(&msg, batch)
}

fn ready(n: u128, batch: &str, minute: u32, seq: u32) -> OutboxItem {
    item(
        n,
        PublishedTopic::BatchResultsReady,
        batch,
        batch,
        minute,
        seq,
    )
}

fn note(n: u128, teacher: &str, batch: &str, minute: u32, seq: u32) -> OutboxItem {
    item(
        n,
        PublishedTopic::TeacherNotificationRequested,
        teacher,
        batch,
        minute,
        seq,
    )
}

fn relay<P: ras_domain::ports::MessagePublisher>(
    publisher: P,
) -> (Relay<P, Arc<ManualClock>>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let relay = Relay::new(
        publisher,
        Arc::new(CircuitBreaker::default()),
        Arc::clone(&clock),
    );
    (relay, clock)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// What a FIFO consumer sees: SQS drops a re-send of an event id it already has (the
/// dedup window), so per queue each event id appears once, in acceptance order.
fn consumer_view(p: &InMemoryPublisher) -> Vec<(Destination, OutboxMessage)> {
    let mut seen = HashSet::new();
    p.received()
        .into_iter()
        .filter(|(_, m)| seen.insert(m.event_id))
        .collect()
}

fn per_key(view: &[(Destination, OutboxMessage)]) -> HashMap<(Destination, String), Vec<String>> {
    let mut keys: HashMap<(Destination, String), Vec<String>> = HashMap::new();
    for (d, m) in view {
        keys.entry((*d, m.ordering_key.clone()))
            .or_default()
            .push(m.event_id.to_string());
    }
    keys
}

fn ids(items: &[&OutboxItem]) -> Vec<String> {
    items.iter().map(|i| i.event_id.to_string()).collect()
}

/// Three batches of one teacher, two of another; each batch: assessment completed + results
/// ready (key: batch) and a notification for each (key: teacher).
fn scenario() -> Vec<OutboxItem> {
    let mut items = Vec::new();
    let mut n = 0;
    for (b, teacher) in [
        ("b1", "t1"),
        ("b2", "t1"),
        ("b3", "t2"),
        ("b4", "t1"),
        ("b5", "t2"),
    ] {
        for (minute, topic) in [
            (1, PublishedTopic::BatchAssessmentCompleted),
            (2, PublishedTopic::BatchResultsReady),
        ] {
            n += 1;
            items.push(item(n, topic, b, b, minute, 0));
            n += 1;
            items.push(note(n, teacher, b, minute, 1));
        }
    }
    items
}

#[test]
fn relays_everything_in_per_key_order_with_one_message_per_key_per_request() {
    let items = scenario();
    let event = stream_event(&items, 100);
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(out.response.batch_item_failures, vec![]);
    assert_eq!(out.checkpoint, None);
    assert_eq!(out.published.len(), items.len());
    assert_eq!(out.unsent(), 0);

    let p = relay.publisher();
    for call in p.calls() {
        assert!(call.messages.len() <= 10);
        let keys: HashSet<_> = call.messages.iter().map(|m| &m.ordering_key).collect();
        assert_eq!(
            keys.len(),
            call.messages.len(),
            "a key twice in one request"
        );
        for m in &call.messages {
            let expected = if m.topic.name().starts_with("huleedu.notification") {
                Destination::Notifications
            } else {
                Destination::Events
            };
            assert_eq!(call.destination, expected);
        }
    }
    // Per key, exactly the stream order.
    let keys = per_key(&p.received());
    assert_eq!(
        keys[&(Destination::Notifications, "t1".into())],
        ids(&[&items[1], &items[3], &items[5], &items[7], &items[13], &items[15]])
    );
    assert_eq!(
        keys[&(Destination::Events, "b3".into())],
        ids(&[&items[8], &items[10]])
    );
    // Bodies and attributes as stored.
    let first = &p.received()[0].1;
    assert_eq!(first.body, items[0].body);
    assert_eq!(first.event_id, items[0].event_id);
    assert_eq!(first.correlation_id, items[0].correlation_id);
    assert_eq!(first.event_type(), items[0].topic);
}

#[test]
fn full_batches_across_keys_cost_a_tenth_of_a_request_per_event() {
    let items: Vec<OutboxItem> = (0..100)
        .map(|n| ready(n, &format!("batch-{n}"), 1, 0))
        .collect();
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&stream_event(&items, 1), None)).unwrap();
    assert_eq!(out.published.len(), 100);
    assert_eq!(out.sqs_requests, 10);
    assert!(relay
        .publisher()
        .calls()
        .iter()
        .all(|c| c.messages.len() == 10));
}

#[test]
fn items_of_one_commit_go_in_their_outbox_sequence_whatever_the_stream_order() {
    // The stream does not order the items of one transaction.
    let a = ready(1, "b1", 5, 1);
    let b = item(
        2,
        PublishedTopic::BatchAssessmentCompleted,
        "b1",
        "b1",
        5,
        0,
    );
    let later = ready(3, "b1", 6, 0);
    let event = stream_event(&[a.clone(), later.clone(), b.clone()], 10);
    let (relay, _) = relay(InMemoryPublisher::new());
    block_on(relay.handle(&event, None)).unwrap();
    let sent: Vec<_> = relay
        .publisher()
        .received()
        .into_iter()
        .map(|(_, m)| m.event_id.to_string())
        .collect();
    assert_eq!(sent, ids(&[&b, &a, &later]));
}

/// Regression (found by the reliability suite, `tests/tests/reliability.rs`): two commits of
/// one batch can share a `created_at` (the same microsecond, or a fixed clock). Batch and time
/// alone then merged them into one commit anchored at the first one's position, and the later
/// commit's notification overtook another batch's notification of the same teacher committed
/// in between. The root version each commit was planned on tells them apart.
#[test]
fn two_commits_of_one_batch_at_the_same_instant_keep_their_order() {
    let first = note(1, "t1", "b1", 5, 1).in_commit(Some(3));
    let between = note(2, "t1", "b2", 7, 1).in_commit(Some(1));
    let second = note(3, "t1", "b1", 5, 1).in_commit(Some(5));
    // And one commit whose items the stream delivers out of their sequence, around them.
    let late_part = item(4, PublishedTopic::BatchResultsReady, "b1", "b1", 5, 2).in_commit(Some(5));
    let early_part = item(
        5,
        PublishedTopic::BatchAssessmentCompleted,
        "b1",
        "b1",
        5,
        0,
    )
    .in_commit(Some(5));
    let stream = [
        first.clone(),
        between.clone(),
        late_part.clone(),
        second.clone(),
        early_part.clone(),
    ];
    let (relay, _) = relay(InMemoryPublisher::new());
    block_on(relay.handle(&stream_event(&stream, 10), None)).unwrap();
    let keys = per_key(&relay.publisher().received());
    assert_eq!(
        keys[&(Destination::Notifications, "t1".into())],
        ids(&[&first, &between, &second])
    );
    assert_eq!(
        keys[&(Destination::Events, "b1".into())],
        ids(&[&early_part, &late_part])
    );
}

#[test]
fn a_failed_entry_stops_its_key_and_the_retry_from_the_checkpoint_fills_the_gap() {
    let items = scenario();
    let event = stream_event(&items, 100);
    // items[3]: t1's second notification (sequence number 103).
    let faults = Faults {
        fail_entries: HashMap::from([(items[3].event_id.to_string(), 1)]),
        ..Faults::default()
    };
    let (relay, _) = relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(out.checkpoint.as_deref(), Some("103"));
    assert_eq!(
        serde_json::to_value(&out.response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "103"}]})
    );
    assert_eq!(out.failed, 1);
    // t1 has four more notifications after the failed one: held, not sent.
    assert_eq!(out.held, 4);
    let inner = relay.publisher().inner();
    let sent: HashSet<String> = inner
        .received()
        .into_iter()
        .map(|(_, m)| m.event_id.to_string())
        .collect();
    for held in [&items[3], &items[5], &items[7], &items[13], &items[15]] {
        assert!(!sent.contains(&held.event_id.to_string()));
    }
    // Never success for an unsent item: everything unsent is at or after the checkpoint.
    for (i, it) in items.iter().enumerate() {
        if !sent.contains(&it.event_id.to_string()) {
            assert!(100 + i as u64 >= 103);
        }
    }

    // Lambda re-delivers from the checkpoint.
    let retry = retry_from(&event, "103");
    let out = block_on(relay.handle(&retry, None)).unwrap();
    assert_eq!(out.checkpoint, None);
    let view = consumer_view(inner);
    assert_eq!(
        view.len(),
        items.len(),
        "every event id reaches the consumer"
    );
    let keys = per_key(&view);
    assert_eq!(
        keys[&(Destination::Notifications, "t1".into())],
        ids(&[&items[1], &items[3], &items[5], &items[7], &items[13], &items[15]])
    );
    for b in ["b1", "b2", "b3", "b4", "b5"] {
        let expected: Vec<String> = items
            .iter()
            .filter(|i| i.ordering_key == b)
            .map(|i| i.event_id.to_string())
            .collect();
        assert_eq!(keys[&(Destination::Events, b.to_string())], expected);
    }
}

#[test]
fn a_failed_request_fails_all_its_entries() {
    let items: Vec<OutboxItem> = (0..25)
        .map(|n| ready(n, &format!("batch-{n}"), 1, 0))
        .collect();
    let event = stream_event(&items, 1000);
    let faults = Faults {
        fail_calls: HashSet::from([2]),
        ..Faults::default()
    };
    let (relay, _) = relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    let out = block_on(relay.handle(&event, None)).unwrap();
    // Call 2 carried items 10..20; items 20.. went in call 3.
    assert_eq!(out.failed, 10);
    assert_eq!(out.published.len(), 15);
    assert_eq!(out.checkpoint.as_deref(), Some("1010"));
    let retry = retry_from(&event, "1010");
    let out = block_on(relay.handle(&retry, None)).unwrap();
    assert_eq!(out.checkpoint, None);
    assert_eq!(consumer_view(relay.publisher().inner()).len(), 25);
}

#[test]
fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let items: Vec<OutboxItem> = (0..60)
        .map(|n| ready(n, &format!("batch-{n}"), 1, 0))
        .collect();
    let event = stream_event(&items, 1);
    let faults = Faults {
        fail_all_calls: true,
        ..Faults::default()
    };
    let (relay, clock) = relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    let p = relay.publisher();

    // Five failed requests open it; the sixth is never made.
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(p.calls(), 5);
    assert_eq!(out.sqs_requests, 5);
    assert!(out.breaker_rejected);
    assert_eq!(out.breaker_state, BreakerState::Open);
    assert_eq!(out.checkpoint.as_deref(), Some("1"));
    assert_eq!(out.published.len(), 0);
    assert_eq!(out.failed + out.held, 60);

    // Open: fail fast, nothing sent, everything handed back.
    clock.advance(Duration::from_secs(10));
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(p.calls(), 5);
    assert_eq!(out.held, 60);
    assert_eq!(out.checkpoint.as_deref(), Some("1"));

    // After 30 s: one probe; it fails → open again.
    clock.advance(Duration::from_secs(20));
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(p.calls(), 6);
    assert_eq!(out.breaker_state, BreakerState::Open);

    // SQS is back; after another 30 s the probe succeeds, the breaker closes and the rest
    // goes out in the same invocation.
    p.set_faults(Faults::default());
    clock.advance(Duration::from_secs(30));
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(out.breaker_state, BreakerState::Closed);
    assert_eq!(out.checkpoint, None);
    assert_eq!(out.published.len(), 60);
    assert_eq!(consumer_view(p.inner()).len(), 60);
    let metrics = out.metrics().to_json();
    assert_eq!(metrics["CircuitState"], json!(0.0));
    assert_eq!(metrics["MessagesPublished"], json!(60.0));
}

#[test]
fn poison_records_are_handed_back_and_the_rest_is_sent() {
    let good = [ready(1, "b1", 1, 0), ready(2, "b2", 1, 0)];
    let mut records = vec![insert_record(&good[0], "500")];
    let mut bad = insert_record(&good[1], "501");
    bad["dynamodb"]["NewImage"]["topic"] = json!({"S": "huleedu.unknown.v1"});
    records.push(bad);
    records.push(insert_record(&good[1], "502"));
    let mut modify = insert_record(&good[0], "503");
    modify["eventName"] = json!("MODIFY");
    records.push(modify);
    let event = event_from_records(records);
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(out.poison, 1);
    assert_eq!(out.ignored, 1);
    assert_eq!(out.published, ids(&[&good[0], &good[1]]));
    assert_eq!(out.checkpoint.as_deref(), Some("501"));
    let metrics = out.metrics().to_json();
    assert_eq!(metrics["PoisonRecords"], json!(1.0));
}

#[test]
fn ignored_records_need_nothing() {
    let it = ready(1, "b1", 1, 0);
    let mut modify = insert_record(&it, "7");
    modify["eventName"] = json!("MODIFY");
    let mut remove = insert_record(&it, "8");
    remove["eventName"] = json!("REMOVE");
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&event_from_records(vec![modify, remove]), None)).unwrap();
    assert_eq!(
        (out.ignored, out.sqs_requests, out.checkpoint),
        (2, 0, None)
    );
}

#[test]
fn an_unsent_record_without_sequence_number_fails_the_whole_batch() {
    let it = ready(1, "b1", 1, 0);
    let mut rec = insert_record(&it, "7");
    rec["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let faults = Faults {
        fail_all_calls: true,
        ..Faults::default()
    };
    let (relay, _) = relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    assert!(block_on(relay.handle(&event_from_records(vec![rec]), None)).is_err());
}

#[test]
fn no_request_starts_after_the_deadline() {
    let items: Vec<OutboxItem> = (0..3).map(|n| ready(n, "b1", 1, n as u32)).collect();
    let (relay, clock) = relay(InMemoryPublisher::new());
    let deadline = relay::clock::Clock::instant(&clock);
    let out = block_on(relay.handle(&stream_event(&items, 40), Some(deadline))).unwrap();
    assert_eq!(out.sqs_requests, 0);
    assert_eq!(out.held, 3);
    assert_eq!(out.checkpoint.as_deref(), Some("40"));
}

#[test]
fn a_message_too_large_for_sqs_stops_its_key_only() {
    let mut big = ready(1, "b1", 1, 0);
    big.body = "x".repeat(1024 * 1024 + 1);
    let after = ready(2, "b1", 2, 0);
    let other = ready(3, "b2", 1, 0);
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&stream_event(&[big, after, other.clone()], 1), None)).unwrap();
    assert_eq!(out.published, ids(&[&other]));
    assert_eq!((out.failed, out.held), (1, 1));
    assert_eq!(out.checkpoint.as_deref(), Some("1"));
}

#[test]
fn latency_is_measured_from_the_outbox_write() {
    let mut it = ready(1, "b1", 1, 0);
    let created = Timestamp::from_unix_micros(Timestamp::now().unix_micros() - 250_000).unwrap();
    it.created_at = created
        .as_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&stream_event(&[it], 1), None)).unwrap();
    assert_eq!(out.latencies_ms.len(), 1);
    assert!(out.latencies_ms[0] >= 250.0 && out.latencies_ms[0] < 60_000.0);
}

#[test]
fn the_sample_event_relays() {
    // events/relay/outbox-inserts.json: real outbox items of one completed batch, as the
    // stream delivers them (`cargo lambda invoke relay --data-file events/relay/outbox-inserts.json`).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/relay/outbox-inserts.json"
    );
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let (relay, _) = relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(
        (out.published.len(), out.poison, out.checkpoint),
        (4, 0, None)
    );
    let destinations: Vec<Destination> = relay
        .publisher()
        .received()
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(
        destinations
            .iter()
            .filter(|d| **d == Destination::Notifications)
            .count(),
        2
    );
}

/// SQS answering every request with a permanent error (e.g. the queue does not exist).
struct BrokenQueue;

impl ras_domain::ports::MessagePublisher for BrokenQueue {
    async fn send_batch(
        &self,
        _destination: Destination,
        _messages: &[OutboxMessage],
    ) -> Result<Vec<ras_domain::ports::SendResult>, ras_domain::ports::PublishError> {
        Err(ras_domain::ports::PublishError::Permanent {
            kind: "queue_not_found",
            message: "AWS.SimpleQueueService.NonExistentQueue".into(),
        })
    }
}

#[test]
fn permanent_whole_request_errors_open_the_breaker_too() {
    let items: Vec<OutboxItem> = (0..60)
        .map(|n| ready(n, &format!("batch-{n}"), 1, 0))
        .collect();
    let (relay, _) = relay(BrokenQueue);
    let out = block_on(relay.handle(&stream_event(&items, 1), None)).unwrap();
    assert_eq!(out.sqs_requests, 5);
    assert!(out.breaker_rejected);
    assert_eq!(out.breaker_state, BreakerState::Open);
    assert_eq!((out.failed, out.held), (50, 10));
    assert_eq!(out.checkpoint.as_deref(), Some("1"));
}

/// SQS rejecting every entry for the sender's fault: the service itself is healthy.
struct RejectsEverything;

impl ras_domain::ports::MessagePublisher for RejectsEverything {
    async fn send_batch(
        &self,
        _destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<ras_domain::ports::SendResult>, ras_domain::ports::PublishError> {
        Ok(vec![
            ras_domain::ports::SendResult::Failed {
                retryable: false,
                code: "InvalidParameterValue".into(),
                message: "bad".into(),
            };
            messages.len()
        ])
    }
}

#[test]
fn sender_faults_do_not_open_the_breaker() {
    let items: Vec<OutboxItem> = (0..60)
        .map(|n| ready(n, &format!("batch-{n}"), 1, 0))
        .collect();
    let (relay, _) = relay(RejectsEverything);
    let out = block_on(relay.handle(&stream_event(&items, 1), None)).unwrap();
    assert_eq!(out.sqs_requests, 6);
    assert_eq!(out.failed, 60);
    assert_eq!(out.breaker_state, BreakerState::Closed);
    assert_eq!(out.checkpoint.as_deref(), Some("1"));
}

// ------------------------------------------------------------------ parking (issue 11)

fn parking_relay<P: ras_domain::ports::MessagePublisher>(
    publisher: P,
) -> Relay<P, Arc<ManualClock>, InMemoryParking> {
    relay(publisher).0.with_parking(InMemoryParking::new())
}

#[test]
fn a_message_too_large_for_the_queue_is_parked_and_the_shard_moves_on() {
    let mut big = ready(1, "b1", 1, 0);
    big.body = "x".repeat(1024 * 1024 + 1);
    let after = ready(2, "b1", 2, 0);
    let other = ready(3, "b2", 1, 0);
    let relay = parking_relay(InMemoryPublisher::new());
    let event = stream_event(&[big.clone(), after.clone(), other.clone()], 1);
    let out = block_on(relay.handle(&event, None)).unwrap();
    // Acknowledged: nothing handed back, the later message of its key went out.
    assert_eq!(out.checkpoint, None);
    assert_eq!((out.parked, out.failed, out.held), (1, 0, 0));
    let mut published = out.published.clone();
    published.sort();
    let mut expected = ids(&[&after, &other]);
    expected.sort();
    assert_eq!(published, expected);
    let parked = relay.parking().unwrap().parked();
    assert_eq!(parked.len(), 1);
    let p = &parked[0];
    assert_eq!(p.event_id, big.event_id.to_string());
    assert_eq!(p.ordering_key, "b1");
    assert_eq!(p.position, big.position);
    assert_eq!(p.destination, Destination::Events);
    assert_eq!(p.code, "InvalidMessage");
    assert!(
        p.reason.contains("exceeds the queue maximum"),
        "{}",
        p.reason
    );
    assert_eq!(p.body_bytes, big.body.len());
    // Never offered to SQS.
    assert!(relay
        .publisher()
        .received()
        .iter()
        .all(|(_, m)| m.event_id.to_string() != p.event_id));
    let metrics = out.metrics().to_json();
    assert_eq!(metrics["MessagesParked"], json!(1.0));
    assert_eq!(metrics["ParkingFailures"], json!(0.0));
}

#[test]
fn an_entry_sqs_refuses_for_the_senders_fault_is_parked() {
    let items: Vec<OutboxItem> = (0..3).map(|n| ready(n, "b1", 1, n as u32)).collect();
    let faults = Faults {
        refuse_entries: HashSet::from([items[0].event_id.to_string()]),
        ..Faults::default()
    };
    let relay = parking_relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    let out = block_on(relay.handle(&stream_event(&items, 10), None)).unwrap();
    assert_eq!(out.checkpoint, None);
    assert_eq!(out.parked, 1);
    // Its key went on: the other two, in order, one per request.
    assert_eq!(out.published, ids(&[&items[1], &items[2]]));
    assert_eq!(out.sqs_requests, 3);
    let parked = relay.parking().unwrap().parked();
    assert_eq!(parked[0].code, "InvalidParameterValue");
    assert_eq!(out.breaker_state, BreakerState::Closed);
}

#[test]
fn when_parking_fails_the_record_stays_unsent_and_its_key_stops() {
    let items: Vec<OutboxItem> = (0..3).map(|n| ready(n, "b1", 1, n as u32)).collect();
    let other = ready(9, "b2", 1, 0);
    let mut all = items.clone();
    all.push(other.clone());
    let faults = Faults {
        refuse_entries: HashSet::from([items[1].event_id.to_string()]),
        ..Faults::default()
    };
    let relay = parking_relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    relay.parking().unwrap().set_failing(true);
    let event = stream_event(&all, 100);
    let out = block_on(relay.handle(&event, None)).unwrap();
    assert_eq!(out.checkpoint.as_deref(), Some("101"));
    assert_eq!((out.parked, out.failed, out.held), (0, 1, 1));
    assert_eq!(out.parking_failures, 1);
    assert_eq!(out.published, ids(&[&items[0], &other]));
    assert_eq!(out.metrics().to_json()["ParkingFailures"], json!(1.0));
    // The retry parks it once the parking queue answers, and the rest follows.
    relay.parking().unwrap().set_failing(false);
    let out = block_on(relay.handle(&retry_from(&event, "101"), None)).unwrap();
    assert_eq!(out.checkpoint, None);
    assert_eq!(out.parked, 1);
    assert_eq!(
        relay.parking().unwrap().parked()[0].event_id,
        items[1].event_id.to_string()
    );
}

#[test]
fn without_parking_a_refused_message_still_holds_its_key() {
    // `ras-ops republish` dispatches without parking: a refusal is reported, never skipped.
    let items: Vec<OutboxItem> = (0..2).map(|n| ready(n, "b1", 1, n as u32)).collect();
    let faults = Faults {
        refuse_entries: HashSet::from([items[0].event_id.to_string()]),
        ..Faults::default()
    };
    let (relay, _) = relay(FaultyPublisher::new(InMemoryPublisher::new(), faults));
    let out = block_on(relay.handle(&stream_event(&items, 1), None)).unwrap();
    assert_eq!((out.parked, out.failed, out.held), (0, 1, 1));
    assert_eq!(out.checkpoint.as_deref(), Some("1"));
}

#[test]
fn keys_sqs_refuses_as_group_ids_are_relayed_unchanged() {
    // Ingest accepts ids of up to 255 bytes of any characters; the relay sends them all
    // (the group id is derived in the SQS adapter; the message keeps the raw key).
    let keys = [
        "lärare-Åsa".to_string(),
        "t".repeat(150),
        "b".repeat(200),
        "tab\there".to_string(),
    ];
    let items: Vec<OutboxItem> = keys
        .iter()
        .enumerate()
        .map(|(n, k)| note(n as u128, k, "b1", 1, n as u32))
        .collect();
    let relay = parking_relay(InMemoryPublisher::new());
    let out = block_on(relay.handle(&stream_event(&items, 1), None)).unwrap();
    assert_eq!(
        (out.published.len(), out.parked, out.checkpoint),
        (4, 0, None)
    );
    let received: Vec<String> = relay
        .publisher()
        .received()
        .into_iter()
        .map(|(_, m)| m.ordering_key)
        .collect();
    assert_eq!(received, keys.to_vec());
}

/// SQS refusing a whole request for one message's content (moto does so for a body over the
/// queue's `MaximumMessageSize`): which one is not said.
struct RefusesRequestsWith(HashSet<String>, InMemoryPublisher);

impl ras_domain::ports::MessagePublisher for RefusesRequestsWith {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<ras_domain::ports::SendResult>, ras_domain::ports::PublishError> {
        if messages
            .iter()
            .any(|m| self.0.contains(&m.event_id.to_string()))
        {
            return Err(ras_domain::ports::PublishError::Permanent {
                kind: ras_aws::sqs_publisher::MESSAGE_REFUSED,
                message: "SendMessageBatch: InvalidParameterValue (HTTP 400): Message must be shorter than 1024 bytes".into(),
            });
        }
        self.1.send_batch(destination, messages).await
    }
}

#[test]
fn a_request_refused_for_one_message_is_resent_one_by_one_and_that_one_parked() {
    let items: Vec<OutboxItem> = (0..4)
        .map(|n| ready(n, &format!("batch-{n}"), 1, 0))
        .collect();
    let refused = items[2].event_id.to_string();
    let relay = parking_relay(RefusesRequestsWith(
        HashSet::from([refused.clone()]),
        InMemoryPublisher::new(),
    ));
    let out = block_on(relay.handle(&stream_event(&items, 1), None)).unwrap();
    assert_eq!(out.checkpoint, None);
    assert_eq!((out.parked, out.failed, out.held), (1, 0, 0));
    assert_eq!(out.published.len(), 3);
    // 1 refused request of 4, then each alone.
    assert_eq!(out.sqs_requests, 5);
    assert_eq!(out.breaker_state, BreakerState::Closed);
    let parked = relay.parking().unwrap().parked();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event_id, refused);
    assert_eq!(parked[0].code, "message_refused");
    assert!(parked[0].reason.contains("shorter than 1024"));
}
