//! `ras-ops republish` against the local AWS-API server: outbox items selected by event id or
//! by a `created_at` window are sent again with the exact bytes, group id, deduplication id
//! and attributes; re-publishing is idempotent (the FIFO queue collapses by dedup id).
//!
//! Needs `AWS_ENDPOINT_URL` (scripts/test.sh); fails, never skips, without it.

use ras_aws::dynamo::OutboxItem;
use ras_domain::contracts::Timestamp;
use ras_ops::republish::{republish, select, Selection};
use ras_tests::local_aws::LocalAws;
use ras_tests::relay_support::{
    complete_batches, consume, expected_per_key, per_group, Received, TestQueues,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

fn assert_same_as_stored(received: &[Received], items: &[OutboxItem]) {
    let stored: HashMap<String, &OutboxItem> =
        items.iter().map(|i| (i.event_id.to_string(), i)).collect();
    for m in received {
        let item = stored
            .get(&m.event_id())
            .unwrap_or_else(|| panic!("unexpected message {}", m.event_id()));
        assert_eq!(m.body, item.body);
        assert_eq!(m.group_id, item.ordering_key);
        assert_eq!(m.attributes["topic"], item.topic);
        assert_eq!(m.attributes["event_type"], item.event_type);
        assert_eq!(
            m.attributes["correlation_id"],
            item.correlation_id.to_string()
        );
        assert_eq!(m.attributes["key"], item.ordering_key);
    }
}

/// A start time nobody else uses: a random minute of a random day in 2011–2019, so a window
/// query around it sees only this test's items.
fn private_time() -> Timestamp {
    let n = Uuid::new_v4().as_u128();
    let day = (n % 3000) as i64;
    let minute = ((n >> 16) % 1200) as i64;
    let base = Timestamp::parse("2011-01-01T00:00:00Z").unwrap();
    Timestamp::from_unix_micros(base.unix_micros() + (day * 86_400 + minute * 60) * 1_000_000)
        .unwrap()
}

fn at(base: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(base.unix_micros() + secs * 1_000_000).unwrap()
}

#[tokio::test]
async fn republish_by_event_id_sends_the_stored_bytes_once() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    let items = complete_batches(&aws, 1, 1, Timestamp::now()).await;
    let chosen: Vec<&OutboxItem> = vec![&items[0], &items[3]];
    let unknown = Uuid::new_v4();
    let mut ids: Vec<Uuid> = chosen.iter().map(|i| i.event_id).collect();
    ids.push(unknown);
    ids.push(chosen[0].event_id); // asked twice: selected once

    let store = aws.store();
    let publisher = queues.publisher(&aws);
    let (selected, not_found) = select(&store, &Selection::EventIds(ids.clone()))
        .await
        .unwrap();
    assert_eq!(selected.len(), 2);
    assert_eq!(not_found, vec![unknown.to_string()]);

    // Dry run: nothing sent.
    let report = republish(&publisher, &selected, not_found.clone(), true).await;
    assert_eq!(
        (report.selected, report.published, report.sqs_requests),
        (2, 0, 0)
    );
    assert!(report.items.iter().all(|i| i.status == "would_publish"));

    // Twice for real: the queues hold each message once.
    for _ in 0..2 {
        let report = republish(&publisher, &selected, not_found.clone(), false).await;
        assert_eq!(report.published, 2);
        assert_eq!(report.failed, 0);
        assert!(!report.is_complete(), "the unknown id is reported");
    }
    let mut received = consume(&aws, &queues.urls.events).await;
    received.extend(consume(&aws, &queues.urls.notifications).await);
    let got: HashSet<String> = received.iter().map(|m| m.event_id()).collect();
    assert_eq!(received.len(), 2);
    assert_eq!(
        got,
        chosen
            .iter()
            .map(|i| i.event_id.to_string())
            .collect::<HashSet<_>>()
    );
    assert_same_as_stored(&received, &items);
    queues.delete(&aws).await;
}

#[tokio::test]
async fn republish_a_time_window_in_per_key_order() {
    let aws = LocalAws::connect().await;
    let queues = TestQueues::create(&aws).await;
    let t0 = private_time();
    // Two batches of one teacher at t0 (+1 s) and t0 + 10 s (+1 s): 8 items.
    let items = complete_batches(&aws, 2, 1, t0).await;
    assert_eq!(items.len(), 8);
    let store = aws.store();
    let publisher = queues.publisher(&aws);

    // The first batch only: [t0, t0 + 5 s].
    let (first, not_found) = select(
        &store,
        &Selection::Window {
            from: t0,
            to: at(t0, 5),
        },
    )
    .await
    .unwrap();
    assert!(not_found.is_empty());
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|i| i.batch_id == items[0].batch_id));

    // Both batches (the window ends exactly at the last item: inclusive).
    let last = items.iter().map(|i| i.created_at.clone()).max().unwrap();
    let (both, _) = select(
        &store,
        &Selection::Window {
            from: t0,
            to: Timestamp::parse(&last).unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(both.len(), 8);
    let report = republish(&publisher, &both, Vec::new(), false).await;
    assert!(report.is_complete());
    assert_eq!(report.published, 8);
    // The teacher's four notifications need four requests; the events ride along.
    assert_eq!(report.sqs_requests, 6);

    let events = consume(&aws, &queues.urls.events).await;
    let notes = consume(&aws, &queues.urls.notifications).await;
    assert_eq!(events.len() + notes.len(), 8);
    assert_same_as_stored(&events, &items);
    assert_same_as_stored(&notes, &items);
    let mut groups = per_group(&events);
    groups.extend(per_group(&notes));
    assert_eq!(groups, expected_per_key(&items));

    // An empty window and a reversed one.
    let (none, _) = select(
        &store,
        &Selection::Window {
            from: at(t0, -100),
            to: at(t0, -1),
        },
    )
    .await
    .unwrap();
    assert!(none.is_empty());
    assert!(select(
        &store,
        &Selection::Window {
            from: t0,
            to: at(t0, -1)
        }
    )
    .await
    .is_err());
    queues.delete(&aws).await;
}
