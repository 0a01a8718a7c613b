//! Issue 11, item 2: ids that are not valid SQS group ids go end to end. Ingest accepts ids of
//! up to 255 bytes of any characters; a `MessageGroupId` is 1–128 characters of ASCII 33–126.
//! Batches of teacher `lärare-Åsa` and of a 150-character teacher, with 200-character batch
//! ids, go through the ingest path (DynamoDB state + outbox), the outbox stream, the relay and
//! the FIFO queues, and the query API answers for them.
//!
//! Before the fix the relay refused these messages (and handed them back to Lambda forever).
//! Needs `AWS_ENDPOINT_URL` (scripts/test.sh); fails, never skips, without it.

use ras_aws::dynamo::OutboxItem;
use ras_domain::contracts::Timestamp;
use ras_tests::local_aws::LocalAws;
use ras_tests::query_api::{app, get, Auth};
use ras_tests::relay_support::{
    complete_batch, consume, inserts_of, lambda_event, open_outbox_stream, Received, TestQueues,
};
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::Relay;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Percent-encode a path segment (everything but unreserved ASCII).
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn is_valid_group_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| (33..=126).contains(&b))
}

#[tokio::test]
async fn teacher_and_batch_ids_beyond_sqs_group_id_rules_go_end_to_end() {
    let aws = LocalAws::connect().await;
    let store = aws.store();
    let queues = TestQueues::create(&aws).await;
    let mut stream = open_outbox_stream(&aws).await;

    let run = Uuid::new_v4().simple().to_string();
    // 200-character batch ids (one with a non-ASCII letter), `lärare-Åsa`, a 150-character
    // teacher id.
    let batch_a = format!("{run}-{}", "a".repeat(200 - run.len() - 1));
    let batch_b = format!("{run}-ö{}", "b".repeat(200 - run.len() - 2));
    let teacher_a = "lärare-Åsa".to_string();
    let teacher_b = format!("{run}{}", "t".repeat(150 - run.len()));
    assert_eq!(
        (batch_a.chars().count(), batch_b.chars().count()),
        (200, 200)
    );
    assert_eq!(teacher_b.chars().count(), 150);

    let at = Timestamp::now();
    let later = Timestamp::from_unix_micros(at.unix_micros() + 10_000_000).unwrap_or(at);
    let mut items: Vec<OutboxItem> = complete_batch(&aws, &store, &batch_a, &teacher_a, at).await;
    items.extend(complete_batch(&aws, &store, &batch_b, &teacher_b, later).await);
    assert_eq!(items.len(), 8);
    let ids: HashSet<String> = items.iter().map(|i| i.event_id.to_string()).collect();
    let records = inserts_of(&mut stream, &ids).await;
    let event = lambda_event(&records, &stream.stream_arn);

    let relay = Relay::new(
        queues.publisher(&aws),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    );
    let out = relay.handle(&event, None).await.unwrap();
    assert_eq!(out.checkpoint, None, "handed back to Lambda: {out:?}");
    assert_eq!(out.published.len(), 8, "{out:?}");

    let mut received: Vec<Received> = consume(&aws, &queues.urls.events).await;
    received.extend(consume(&aws, &queues.urls.notifications).await);
    assert_eq!(received.len(), 8);
    let by_id: HashMap<String, &Received> = received.iter().map(|m| (m.event_id(), m)).collect();
    let mut group_of_key: HashMap<String, String> = HashMap::new();
    for item in &items {
        let m = by_id
            .get(&item.event_id.to_string())
            .unwrap_or_else(|| panic!("{} not received", item.event_id));
        // The body is the stored one, byte for byte, and names the raw id.
        assert_eq!(m.body, item.body);
        let envelope: Value = serde_json::from_str(&m.body).unwrap();
        let data = &envelope["data"];
        let named = [&data["batch_id"], &data["teacher_id"], &data["entity_id"]];
        assert!(
            named
                .iter()
                .any(|v| v.as_str() == Some(item.ordering_key.as_str())),
            "the body of {} does not name its key {}: {}",
            item.event_id,
            item.ordering_key,
            m.body
        );
        // The raw key in the `key` attribute; a valid group id, the same for the whole key.
        assert_eq!(m.attributes["key"], item.ordering_key);
        assert!(is_valid_group_id(&m.group_id), "{}", m.group_id);
        let group = group_of_key
            .entry(item.ordering_key.clone())
            .or_insert_with(|| m.group_id.clone());
        assert_eq!(*group, m.group_id, "one key, one group");
    }
    // Four keys, four groups.
    let groups: HashSet<&String> = group_of_key.values().collect();
    assert_eq!(group_of_key.len(), 4);
    assert_eq!(groups.len(), 4);
    assert!(group_of_key[&teacher_a].starts_with("l_rare-_sa~"));

    // The query API answers for those ids.
    let api = app(store.clone());
    for (batch, teacher) in [(&batch_a, &teacher_a), (&batch_b, &teacher_b)] {
        let status = get(
            &api,
            &format!("/internal/v1/batches/{}/status", encode_segment(batch)),
            Auth::Valid,
        )
        .await;
        assert_eq!(status.status, 200, "{}", status.describe());
        let body = status.json();
        assert_eq!(body["batch_id"], batch.as_str());
        assert_eq!(body["user_id"], teacher.as_str());
        assert_eq!(body["overall_status"], "completed_successfully");
        let page = get(
            &api,
            &format!(
                "/internal/v1/batches/user/{}?limit=100",
                encode_segment(teacher)
            ),
            Auth::Valid,
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.describe());
        let listed = page.json()["batches"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .any(|b| b["batch_id"] == batch.as_str());
        assert!(listed, "{batch} not among {teacher}'s batches");
    }
    queues.delete(&aws).await;
}
