//! `ras-ops redrive-dlq` against the local AWS-API server: dead letters (written by the
//! ingest function's own dead-letter adapter) are fed back through the ingest path; applied
//! and duplicate records leave the queue, records that still fail stay, with the reason; a
//! second run changes nothing; a dry run touches nothing.
//!
//! Needs `AWS_ENDPOINT_URL` (scripts/test.sh); fails, never skips, without it.

use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use ras_aws::dead_letter::SqsDeadLetterQueue;
use ras_domain::contracts::Timestamp;
use ras_domain::ports::{AggregateStore, DeadLetter, DeadLetterSink};
use ras_domain::testing::events::registration;
use ras_ops::redrive::{redrive, RedriveOptions};
use ras_tests::local_aws::{unique, LocalAws};
use uuid::Uuid;

fn letter(topic: &str, value: &[u8], offset: i64, kind: &str) -> DeadLetter {
    let now = Timestamp::now();
    DeadLetter {
        topic: topic.to_string(),
        partition: 0,
        offset,
        timestamp: Some(now),
        key_base64: None,
        value_base64: base64::engine::general_purpose::STANDARD.encode(value),
        error_kind: kind.to_string(),
        error_message: "test".to_string(),
        event_key: None,
        dead_lettered_at: now,
    }
}

async fn queue_depth(aws: &LocalAws, url: &str) -> usize {
    let out = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().cloned().unwrap_or_default();
    let n = |name: QueueAttributeName| {
        attrs
            .get(&name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

#[tokio::test]
async fn redrive_applies_what_it_can_keeps_the_rest_and_is_idempotent() {
    let aws = LocalAws::connect().await;
    let dlq = aws.create_queue("ops-dlq").await;
    let sink = SqsDeadLetterQueue::new(aws.sqs.clone(), dlq.clone());
    let batch = unique("redrive-batch");
    let reg = registration(
        Uuid::new_v4(),
        &batch,
        "teacher-r",
        &["e1", "e2"],
        Timestamp::now(),
    );
    // The same record dead-lettered twice (e.g. two store outages), a record that can never
    // be applied, and a message that is no dead letter at all.
    sink.send(&letter(reg.topic, &reg.value, 10, "store_unavailable"))
        .await
        .unwrap();
    sink.send(&letter(reg.topic, &reg.value, 11, "store_unavailable"))
        .await
        .unwrap();
    sink.send(&letter(reg.topic, b"{not json", 12, "invalid_json"))
        .await
        .unwrap();
    aws.sqs
        .send_message()
        .queue_url(&dlq)
        .message_body("hello")
        .send()
        .await
        .unwrap();
    let store = aws.store();

    // Dry run: a report, nothing written, nothing deleted.
    let dry = RedriveOptions {
        dry_run: true,
        wait_seconds: 0,
        ..RedriveOptions::default()
    };
    let report = redrive(&aws.sqs, &dlq, &store, &dry).await.unwrap();
    assert_eq!(report.received, 4);
    let statuses = |r: &ras_ops::redrive::RedriveReport| {
        let mut s: Vec<&str> = r.letters.iter().map(|l| l.status).collect();
        s.sort();
        s
    };
    assert_eq!(
        statuses(&report),
        vec!["invalid", "would_apply", "would_apply", "would_fail"]
    );
    assert_eq!(report.deleted, 0);
    assert!(!store.load(&batch).await.unwrap().is_registered());
    assert_eq!(queue_depth(&aws, &dlq).await, 4);

    // For real.
    let options = RedriveOptions {
        wait_seconds: 0,
        ..RedriveOptions::default()
    };
    let report = redrive(&aws.sqs, &dlq, &store, &options).await.unwrap();
    assert_eq!(report.received, 4);
    assert_eq!(
        (
            report.applied,
            report.duplicates,
            report.failed,
            report.invalid,
            report.deleted
        ),
        (1, 1, 1, 1, 2),
        "{report:#?}"
    );
    assert!(!report.is_complete());
    let failed = report
        .letters
        .iter()
        .find(|l| l.status == "failed")
        .unwrap();
    assert_eq!(failed.error_kind.as_deref(), Some("invalid_json"));
    assert!(!failed.deleted);
    let agg = store.load(&batch).await.unwrap();
    assert!(agg.is_registered());
    let version = agg.root.version;
    assert_eq!(queue_depth(&aws, &dlq).await, 2);

    // Again: only the two that cannot be applied come back; nothing changes.
    let report = redrive(&aws.sqs, &dlq, &store, &options).await.unwrap();
    assert_eq!(report.received, 2);
    assert_eq!(
        (report.applied, report.duplicates, report.deleted),
        (0, 0, 0)
    );
    assert_eq!(store.load(&batch).await.unwrap().root.version, version);
    assert_eq!(queue_depth(&aws, &dlq).await, 2);

    // `--max` bounds a run.
    let one = RedriveOptions {
        max: 1,
        wait_seconds: 0,
        ..RedriveOptions::default()
    };
    assert_eq!(
        redrive(&aws.sqs, &dlq, &store, &one)
            .await
            .unwrap()
            .received,
        1
    );
    aws.delete_queue(&dlq).await;
}
