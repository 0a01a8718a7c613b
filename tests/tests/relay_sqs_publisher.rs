//! `SqsPublisher` against canned SQS responses (a tiny HTTP server in the test): what goes on
//! the wire, and how every kind of answer maps — an HTTP 200 with `Failed` entries is not
//! success, an entry SQS does not mention is not sent, whole-call errors are classified.
//! (moto never fails individual entries we can provoke, hence the canned server.)
//! Needs no AWS-API server.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::Credentials;
use ras_aws::sqs_publisher::{message_group_id, QueueUrls, SqsPublisher};
use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// A request as received: header lines and the JSON body.
type Request = (Vec<String>, Value);

/// Answers each request with the next canned response; records request headers and bodies.
struct FakeSqs {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeSqs {
    fn start(responses: Vec<Canned>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let mut responses: VecDeque<Canned> = responses.into();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end().to_string();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    headers.push(line);
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.lock().unwrap().push((
                    headers,
                    serde_json::from_slice(&body).unwrap_or(Value::Null),
                ));
                let Some(canned) = responses.pop_front() else {
                    return;
                };
                let mut out = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n",
                    canned.status,
                    canned.body.len()
                );
                for (k, v) in &canned.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&canned.body);
                let _ = stream.write_all(out.as_bytes());
            }
        });
        FakeSqs { url, requests }
    }

    async fn publisher(&self) -> SqsPublisher {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "fake"))
            .retry_config(RetryConfig::disabled())
            .load()
            .await;
        SqsPublisher::new(
            aws_sdk_sqs::Client::new(&sdk),
            QueueUrls {
                events: format!("{}/123456789012/ras-events.fifo", self.url),
                notifications: format!("{}/123456789012/ras-notifications.fifo", self.url),
            },
        )
    }
}

fn ok(body: Value) -> Canned {
    Canned {
        status: 200,
        headers: vec![],
        body: body.to_string(),
    }
}

fn message(n: u32, key: &str) -> OutboxMessage {
    OutboxMessage {
        event_id: Uuid::parse_str(&format!("00000000-0000-4000-8000-00000000000{n}")).unwrap(),
        topic: PublishedTopic::BatchResultsReady,
        ordering_key: key.into(),
        correlation_id: Uuid::from_u128(0xc0 + u128::from(n)),
        created_at: Timestamp::parse("2025-11-27T10:20:30Z").unwrap(),
        sequence: n,
        body: format!(r#"{{"n": {n}, "text": "\u00e5"}}"#),
    }
}

fn success(id: &str) -> Value {
    json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e"})
}

#[tokio::test]
async fn a_200_with_failed_entries_is_not_success() {
    let fake = FakeSqs::start(vec![ok(json!({
        "Successful": [success("0"), success("2")],
        "Failed": [
            {"Id": "1", "SenderFault": false, "Code": "InternalError", "Message": "try again"},
            {"Id": "3", "SenderFault": true, "Code": "InvalidParameterValue", "Message": "bad"}
        ]
    }))]);
    let publisher = fake.publisher().await;
    let messages: Vec<_> = (0..5).map(|n| message(n, &format!("k{n}"))).collect();
    let results = publisher
        .send_batch(Destination::Events, &messages)
        .await
        .unwrap();
    assert_eq!(results[0], SendResult::Sent);
    assert!(
        matches!(&results[1], SendResult::Failed { retryable: true, code, .. } if code == "InternalError")
    );
    assert_eq!(results[2], SendResult::Sent);
    assert!(
        matches!(&results[3], SendResult::Failed { retryable: false, code, .. } if code == "InvalidParameterValue")
    );
    // Entry 4 is in neither list: not sent.
    assert!(
        matches!(&results[4], SendResult::Failed { retryable: true, code, .. } if code == "NoResult")
    );

    // What went on the wire.
    let requests = fake.requests.lock().unwrap();
    let (headers, body) = &requests[0];
    assert!(headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("x-amz-target: AmazonSQS.SendMessageBatch")));
    assert!(body["QueueUrl"]
        .as_str()
        .unwrap()
        .ends_with("/ras-events.fifo"));
    let entries = body["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    for (i, e) in entries.iter().enumerate() {
        let m = &messages[i];
        assert_eq!(e["Id"], json!(i.to_string()));
        assert_eq!(e["MessageBody"], json!(m.body));
        assert_eq!(e["MessageGroupId"], json!(m.ordering_key));
        assert_eq!(
            e["MessageDeduplicationId"],
            json!(format!("00000000-0000-4000-8000-00000000000{i}"))
        );
        assert_eq!(
            e["MessageAttributes"],
            json!({
                "topic": {"DataType": "String", "StringValue": "huleedu.ras.batch.results.ready.v1"},
                "event_type": {"DataType": "String", "StringValue": "huleedu.ras.batch.results.ready.v1"},
                "correlation_id": {"DataType": "String", "StringValue": m.correlation_id.to_string()},
                "key": {"DataType": "String", "StringValue": m.ordering_key},
            })
        );
    }
}

#[tokio::test]
async fn invalid_messages_are_failed_without_being_sent() {
    let fake = FakeSqs::start(vec![ok(
        json!({"Successful": [success("1")], "Failed": []}),
    )]);
    let publisher = fake.publisher().await;
    let messages = vec![message(0, ""), message(1, "k1")];
    let results = publisher
        .send_batch(Destination::Notifications, &messages)
        .await
        .unwrap();
    assert!(
        matches!(&results[0], SendResult::Failed { retryable: false, code, .. } if code == "InvalidMessage")
    );
    assert_eq!(results[1], SendResult::Sent);
    let requests = fake.requests.lock().unwrap();
    let entries = requests[0].1["Entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["Id"], "1");
    assert!(requests[0].1["QueueUrl"]
        .as_str()
        .unwrap()
        .ends_with("/ras-notifications.fifo"));
}

#[tokio::test]
async fn whole_call_errors_are_classified() {
    let fake = FakeSqs::start(vec![
        Canned {
            status: 500,
            headers: vec![],
            body: json!({"__type": "com.amazonaws.sqs#InternalError", "message": "boom"})
                .to_string(),
        },
        Canned {
            status: 400,
            headers: vec![(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender".into(),
            )],
            body: json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no queue"})
                .to_string(),
        },
        Canned {
            status: 400,
            headers: vec![("x-amzn-query-error", "RequestThrottled;Sender".into())],
            body: json!({"__type": "com.amazonaws.sqs#RequestThrottled", "message": "slow down"})
                .to_string(),
        },
    ]);
    let publisher = fake.publisher().await;
    let messages = vec![message(0, "k")];
    let server_error = publisher.send_batch(Destination::Events, &messages).await;
    assert!(
        matches!(server_error, Err(PublishError::Transient(_))),
        "{server_error:?}"
    );
    let missing = publisher.send_batch(Destination::Events, &messages).await;
    assert!(
        matches!(
            missing,
            Err(PublishError::Permanent {
                kind: "queue_not_found",
                ..
            })
        ),
        "{missing:?}"
    );
    let throttled = publisher.send_batch(Destination::Events, &messages).await;
    assert!(
        matches!(throttled, Err(PublishError::Transient(_))),
        "{throttled:?}"
    );
}

#[tokio::test]
async fn keys_sqs_refuses_as_group_ids_are_sent_with_a_derived_group_id_and_the_raw_key() {
    // Issue 11: ingest accepts ids of up to 255 bytes of any characters; a MessageGroupId is
    // 1-128 characters of ASCII 33-126. Before the fix such messages were failed unsent.
    let fake = FakeSqs::start(vec![ok(json!({
        "Successful": [success("0"), success("1"), success("2"), success("3")],
        "Failed": []
    }))]);
    let publisher = fake.publisher().await;
    let keys = [
        "lärare-Åsa".to_string(),
        "t".repeat(150),
        "b".repeat(200),
        "ctl\u{1}key".to_string(),
    ];
    let messages: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(n, k)| message(n as u32, k))
        .collect();
    let results = publisher
        .send_batch(Destination::Notifications, &messages)
        .await
        .unwrap();
    assert_eq!(results, vec![SendResult::Sent; 4]);
    let requests = fake.requests.lock().unwrap();
    let entries = requests[0].1["Entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 4);
    for (e, key) in entries.iter().zip(&keys) {
        let group = e["MessageGroupId"].as_str().unwrap();
        assert!(
            (1..=128).contains(&group.len()) && group.bytes().all(|b| (33..=126).contains(&b)),
            "{group}"
        );
        assert_eq!(group, message_group_id(key));
        assert_ne!(group, key.as_str());
    }
    assert!(entries[0]["MessageGroupId"]
        .as_str()
        .unwrap()
        .starts_with("l_rare-_sa~"));
    // The raw key travels as the `key` attribute: a String where SQS allows its characters…
    for (e, key) in entries.iter().zip(&keys).take(3) {
        assert_eq!(
            e["MessageAttributes"]["key"],
            json!({"DataType": "String", "StringValue": key})
        );
    }
    // …else Binary with its UTF-8 bytes.
    assert_eq!(
        entries[3]["MessageAttributes"]["key"],
        json!({"DataType": "Binary", "BinaryValue": "Y3RsAWtleQ=="})
    );
    // Same key, same group: a second message of the first key.
    assert_eq!(message_group_id(&keys[0]), message_group_id("lärare-Åsa"));
}

#[tokio::test]
async fn messages_sqs_would_refuse_are_failed_permanently_without_being_sent() {
    let fake = FakeSqs::start(vec![ok(
        json!({"Successful": [success("2")], "Failed": []}),
    )]);
    let publisher = fake.publisher().await;
    let mut too_large = message(0, "k0");
    too_large.body = "x".repeat(ras_aws::sqs_publisher::MAX_MESSAGE_BYTES);
    let mut bad_char = message(1, "k1");
    bad_char.body = "{\"a\": \"\u{FFFE}\"}".into();
    let messages = vec![too_large, bad_char, message(2, "k2")];
    let results = publisher
        .send_batch(Destination::Events, &messages)
        .await
        .unwrap();
    for r in &results[..2] {
        assert!(
            matches!(r, SendResult::Failed { retryable: false, code, .. } if code == "InvalidMessage"),
            "{r:?}"
        );
    }
    assert_eq!(results[2], SendResult::Sent);
    let requests = fake.requests.lock().unwrap();
    let entries = requests[0].1["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["Id"], "2");
}
