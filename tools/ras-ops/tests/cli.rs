//! The `ras-ops` binary: usage and configuration errors (no server needed), and one
//! re-publish and one re-drive run against the local AWS-API server (needs `AWS_ENDPOINT_URL`;
//! fails, never skips, without it). The operations themselves are tested in depth in
//! `tests/tests/ops_*.rs`.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use ras_aws::dynamo::OutboxItem;
use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use std::process::{Command, Output};
use uuid::Uuid;

fn ras_ops(args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ras-ops"));
    cmd.args(args);
    for name in remove {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ras-ops")
}

#[test]
fn usage_and_configuration_errors_exit_with_2() {
    let out = ras_ops(&["republish"], &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = ras_ops(&["republish", "--event-id", "not-a-uuid"], &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let offline = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let out = ras_ops(&["redrive-dlq"], &offline, &["RAS_INGEST_DLQ_URL"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAS_INGEST_DLQ_URL"));
    let out = ras_ops(
        &["republish", "--event-id", &Uuid::new_v4().to_string()],
        &offline,
        &["RAS_EVENTS_QUEUE_URL", "RAS_NOTIFICATIONS_QUEUE_URL"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAS_EVENTS_QUEUE_URL"));
    let out = ras_ops(
        &["republish", "--parked"],
        &offline,
        &["RAS_RELAY_PARKED_QUEUE_URL"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAS_RELAY_PARKED_QUEUE_URL"));
    let out = ras_ops(&["--help"], &[], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("republish") && help.contains("redrive-dlq"));
}

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "AWS_ENDPOINT_URL is not set: this test needs the local AWS-API server \
                 (scripts/test.sh, or infra/local/start.sh && source infra/local/env.sh)"
            )
        })
}

#[tokio::test]
async fn republish_and_redrive_from_the_command_line() {
    let endpoint = endpoint();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "ras-ops-cli",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let mut urls = Vec::new();
    for name in ["cli-events", "cli-notes"] {
        let out = sqs
            .create_queue()
            .queue_name(format!("{name}-{suffix}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .unwrap();
        urls.push(out.queue_url.unwrap());
    }
    let dlq = sqs
        .create_queue()
        .queue_name(format!("cli-dlq-{suffix}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    // An outbox item, as the ingest path writes it.
    let outbox_table = std::env::var("RAS_OUTBOX_TABLE").unwrap_or_else(|_| "ras-outbox".into());
    let event_id = Uuid::new_v4();
    let item = OutboxItem::from_message(
        &OutboxMessage {
            event_id,
            topic: PublishedTopic::BatchResultsReady,
            ordering_key: format!("cli-batch-{suffix}"),
            correlation_id: Uuid::new_v4(),
            created_at: Timestamp::now(),
            sequence: 0,
            body: format!(r#"{{"event_id": "{event_id}", "note": "\u00e5"}}"#),
        },
        &format!("cli-batch-{suffix}"),
    );
    dynamo
        .put_item()
        .table_name(&outbox_table)
        .set_item(Some(item.to_item().unwrap()))
        .send()
        .await
        .unwrap();

    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("RAS_OUTBOX_TABLE", outbox_table.as_str()),
        ("RAS_EVENTS_QUEUE_URL", urls[0].as_str()),
        ("RAS_NOTIFICATIONS_QUEUE_URL", urls[1].as_str()),
    ];
    let id = event_id.to_string();
    let out = ras_ops(&["republish", "--event-id", &id], &env, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["published"], 1);
    assert_eq!(report["items"][0]["event_id"], id);
    let received = sqs
        .receive_message()
        .queue_url(&urls[0])
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let msgs = received.messages.unwrap_or_default();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body(), Some(item.body.as_str()));

    // An unknown id: reported, exit status 1.
    let out = ras_ops(
        &["republish", "--event-id", &Uuid::new_v4().to_string()],
        &env,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));

    // An empty parking queue: nothing to do.
    let out = ras_ops(
        &["republish", "--parked", "--queue-url", &dlq, "--max", "5"],
        &env,
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["received"], 0);

    // An empty dead-letter queue: nothing to do.
    let out = ras_ops(
        &["redrive-dlq", "--queue-url", &dlq, "--max", "5"],
        &env,
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["received"], 0);

    for url in urls.iter().chain([&dlq]) {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
}
