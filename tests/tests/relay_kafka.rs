//! The Kafka publisher (issue 13, `docs/kafka.md`) against a local broker:
//! each message kind lands on its topic with its key, its exact bytes, no headers, on the
//! partition Kafka's default partitioner picks; per-key order holds under injected failures
//! (in the publisher and through the relay's handler); a consumer written with another client
//! (aiokafka, `tests/kafka_consumer.py`) reads every message.
//!
//! Needs `RAS_KAFKA_BOOTSTRAP` (scripts/test.sh starts the broker; by hand:
//! `infra/local/kafka-setup.sh`, `infra/local/kafka-start.sh`, `source .local/kafka.env`); fails,
//! never skips, without it. The broker keeps its records between tests: every test uses keys
//! of its own and looks only at them.

use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use ras_aws::dynamo::OutboxItem;
use ras_aws::kafka_publisher::{
    partition_for, KafkaPublisher, KafkaSecurity, KafkaSettings, KEY_STOPPED,
};
use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use ras_domain::testing::InMemoryParking;
use ras_tests::kafka::{read_keys, settings, Read, PARTITIONS};
use relay::breaker::CircuitBreaker;
use relay::clock::SystemClock;
use relay::testing::{retry_from, stream_event, Faults, FaultyPublisher};
use relay::Relay;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// A message with a body of this test's own (the publisher sends bodies as they are).
fn message(topic: PublishedTopic, key: &str, n: u32, body: String) -> OutboxMessage {
    OutboxMessage {
        event_id: Uuid::new_v4(),
        topic,
        ordering_key: key.to_string(),
        correlation_id: Uuid::new_v4(),
        created_at: Timestamp::from_unix_micros(1_780_000_000_000_000 + i64::from(n) * 1000)
            .expect("timestamp"),
        sequence: n,
        body,
    }
}

fn envelope(topic: PublishedTopic, key: &str, n: u32) -> String {
    format!(
        "{{\"event_type\":\"{}\",\"key\":\"{}\",\"n\":{n},\"text\":\"Åsa – “résultat” ✓\"}}",
        topic.name(),
        key.replace('"', "\\\"")
    )
}

fn key_of(r: &Read) -> String {
    r.key_text()
}

fn value_of(r: &Read) -> String {
    r.value_text()
}

fn all_sent(results: &[SendResult]) {
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r, &SendResult::Sent, "message {i}");
    }
}

/// The three kinds of message, several keys each (one with non-ASCII characters).
fn mixed_messages(run: &str) -> Vec<OutboxMessage> {
    let mut out = Vec::new();
    let mut n = 0;
    for b in 0..4 {
        let batch = format!("batch-{run}-{b}");
        for topic in [
            PublishedTopic::BatchResultsReady,
            PublishedTopic::BatchAssessmentCompleted,
        ] {
            out.push(message(topic, &batch, n, envelope(topic, &batch, n)));
            n += 1;
        }
    }
    for teacher in [format!("teacher-{run}"), format!("lärare-Åsa-{run}")] {
        let topic = PublishedTopic::TeacherNotificationRequested;
        out.push(message(topic, &teacher, n, envelope(topic, &teacher, n)));
        n += 1;
    }
    out
}

/// A publisher on the local broker, and one message of each kind (ids of this run) sent
/// through it with `destination`, every one acknowledged.
async fn publish_mixed(destination: Destination) -> (KafkaPublisher, Vec<OutboxMessage>) {
    let publisher = KafkaPublisher::connect(settings()).await.expect("connect");
    let messages = mixed_messages(&Uuid::new_v4().to_string());
    let results = publisher
        .send_batch(destination, &messages)
        .await
        .expect("send");
    all_sent(&results);
    (publisher, messages)
}

#[tokio::test]
async fn each_message_kind_lands_on_its_topic_with_its_key_and_exact_bytes() {
    // The publisher routes by topic: the destination argument (SQS's) does not matter.
    let (publisher, messages) = publish_mixed(Destination::Events).await;

    let keys: HashSet<String> = messages.iter().map(|m| m.ordering_key.clone()).collect();
    for topic in PublishedTopic::ALL {
        let expected: Vec<&OutboxMessage> = messages.iter().filter(|m| m.topic == topic).collect();
        let read = read_keys(
            publisher.client().await.expect("client"),
            topic.name(),
            &keys,
        )
        .await;
        assert_eq!(read.len(), expected.len(), "{}: {read:#?}", topic.name());
        for m in expected {
            let r = read
                .iter()
                .find(|r| value_of(r) == m.body)
                .unwrap_or_else(|| panic!("{} not on {}", m.event_id, topic.name()));
            assert_eq!(r.topic, topic.name());
            assert_eq!(r.key.as_deref(), Some(m.ordering_key.as_bytes()));
            assert_eq!(
                r.value.as_deref(),
                Some(m.body.as_bytes()),
                "byte-identical value"
            );
            assert_eq!(r.headers, 0, "no headers");
            assert_eq!(
                r.partition,
                partition_for(m.ordering_key.as_bytes(), PARTITIONS),
                "Kafka's default partition for key {}",
                m.ordering_key
            );
        }
    }
}

/// One key's messages in one call, the second refused (too large, checked before sending):
/// the first is produced, the third is not (the key stopped); other keys go on. Sent again
/// without the refused one, the key's records are in order.
#[tokio::test]
async fn a_key_stops_at_its_first_failure_in_a_call() {
    let mut settings = settings();
    settings.max_message_bytes = 2_000;
    let publisher = KafkaPublisher::connect(settings).await.expect("connect");
    let run = Uuid::new_v4().to_string();
    let topic = PublishedTopic::BatchResultsReady;
    let (k, other) = (format!("batch-{run}-k"), format!("batch-{run}-other"));
    let m1 = message(topic, &k, 1, envelope(topic, &k, 1));
    let m2 = message(topic, &k, 2, "x".repeat(3_000));
    let m3 = message(topic, &k, 3, envelope(topic, &k, 3));
    let o1 = message(topic, &other, 4, envelope(topic, &other, 4));
    let results = publisher
        .send_batch(
            Destination::Events,
            &[m1.clone(), m2.clone(), m3.clone(), o1.clone()],
        )
        .await
        .expect("send");
    assert_eq!(results[0], SendResult::Sent);
    assert!(
        matches!(&results[1], SendResult::Failed { retryable: false, code, .. } if code == "MessageTooLarge"),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], SendResult::Failed { retryable: true, code, .. } if code == KEY_STOPPED),
        "{:?}",
        results[2]
    );
    assert_eq!(results[3], SendResult::Sent);

    let keys: HashSet<String> = [k.clone(), other.clone()].into();
    let read = read_keys(
        publisher.client().await.expect("client"),
        topic.name(),
        &keys,
    )
    .await;
    let bodies = |key: &str, read: &[Read]| -> Vec<String> {
        read.iter()
            .filter(|r| key_of(r) == key)
            .map(value_of)
            .collect()
    };
    assert_eq!(bodies(&k, &read), vec![m1.body.clone()]);
    assert_eq!(bodies(&other, &read), vec![o1.body.clone()]);

    let results = publisher
        .send_batch(Destination::Events, std::slice::from_ref(&m3))
        .await
        .expect("send");
    all_sent(&results);
    let read = read_keys(
        publisher.client().await.expect("client"),
        topic.name(),
        &keys,
    )
    .await;
    assert_eq!(bodies(&k, &read), vec![m1.body, m3.body]);
}

/// Through the relay's handler: a key's second message fails once (injected, retryable); the
/// relay hands back from it, and the redelivered stream batch completes the key in order
/// (nothing before the checkpoint is produced twice). A message the publisher refuses (too
/// large) is parked and its key goes on.
#[tokio::test]
async fn per_key_order_through_the_relay_under_an_injected_failure() {
    let mut settings = settings();
    settings.max_message_bytes = 5_000;
    let kafka = KafkaPublisher::connect(settings).await.expect("connect");
    let run = Uuid::new_v4().to_string();
    let topic = PublishedTopic::BatchAssessmentCompleted;
    let keys: Vec<String> = (0..3).map(|i| format!("batch-{run}-{i}")).collect();
    let mut messages = Vec::new();
    let mut n = 0;
    for round in 0..3 {
        for key in &keys {
            let body = if round == 1 && key == &keys[2] {
                "y".repeat(6_000) // refused by the publisher: parked
            } else {
                envelope(topic, key, n)
            };
            messages.push(message(topic, key, n, body));
            n += 1;
        }
    }
    let items: Vec<OutboxItem> = messages
        .iter()
        .map(|m| OutboxItem::from_message(m, &m.ordering_key))
        .collect();
    let event = stream_event(&items, 1000);
    // keys[0]'s second message fails once.
    let failing = messages[3].event_id.to_string();
    let faults = Faults {
        fail_entries: HashMap::from([(failing.clone(), 1)]),
        ..Faults::default()
    };
    let relay = Relay::new(
        FaultyPublisher::new(kafka, faults),
        Arc::new(CircuitBreaker::default()),
        SystemClock,
    )
    .with_parking(InMemoryParking::default());

    let first = relay.handle(&event, None).await.expect("handle");
    assert_eq!(first.checkpoint.as_deref(), Some("1003"), "{first:?}");
    assert!(!first.published.contains(&failing));
    assert_eq!(first.parked, 1);
    let second = relay
        .handle(&retry_from(&event, "1003"), None)
        .await
        .expect("handle");
    assert_eq!(second.checkpoint, None, "{second:?}");

    let key_set: HashSet<String> = keys.iter().cloned().collect();
    let client = relay.publisher().inner().client().await.expect("client");
    let read = read_keys(client, topic.name(), &key_set).await;
    for key in &keys {
        let expected: Vec<&str> = messages
            .iter()
            .filter(|m| &m.ordering_key == key && m.body.len() < 5_000)
            .map(|m| m.body.as_str())
            .collect();
        let got: Vec<String> = read
            .iter()
            .filter(|r| &key_of(r) == key)
            .map(value_of)
            .collect();
        // Records after the checkpoint that were produced are produced again on the retry
        // (Kafka does not deduplicate; consumers do, on event_id): a key may repeat a suffix,
        // but its first occurrences are its messages in order.
        let mut seen = HashSet::new();
        let firsts: Vec<&str> = got
            .iter()
            .filter(|b| seen.insert(b.as_str()))
            .map(String::as_str)
            .collect();
        assert_eq!(firsts, expected, "key {key}: every message, in order");
        if key == &keys[0] {
            // The failing key was stopped, not re-sent: each message exactly once.
            assert_eq!(got, expected, "key {key}: each once");
        }
    }
    assert_eq!(
        relay.parking().expect("parking").parked().len(),
        2,
        "parked on both attempts"
    );
}

/// A topic the cluster does not have is a permanent refusal (issue 13): through the relay, every
/// message for it is parked and its record acknowledged — the shard is not held — while the
/// messages for the topics that exist are published. A broker of its own, with one of the three
/// topics missing (the shared broker's topics must stay).
#[tokio::test]
async fn a_missing_topic_parks_its_messages_and_never_holds_the_shard() {
    let _ = settings();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf();
    let tansu = root.join(".tools/tansu/bin/tansu");
    let temp = TempDir::new();
    let dir = temp.path();
    let port = free_port();
    let _broker = start_tansu(
        &tansu,
        dir,
        "ras-missing-topic",
        port,
        &format!("127.0.0.1:{port}"),
    );
    wait_for_port(port, "tansu").await;
    let present = PublishedTopic::TeacherNotificationRequested;
    run(std::process::Command::new(&tansu)
        .current_dir(dir)
        .args(["topic", "create", present.name(), "--partitions", "3"])
        .arg("--broker")
        .arg(format!("tcp://127.0.0.1:{port}")));

    let run_id = Uuid::new_v4().to_string();
    let mut messages = Vec::new();
    for (n, topic) in [
        PublishedTopic::BatchResultsReady,
        present,
        PublishedTopic::BatchAssessmentCompleted,
        present,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("{}-{run_id}-{n}", topic.name());
        messages.push(message(
            topic,
            &key,
            n as u32,
            envelope(topic, &key, n as u32),
        ));
    }
    let items: Vec<OutboxItem> = messages
        .iter()
        .map(|m| OutboxItem::from_message(m, &m.ordering_key))
        .collect();
    let event = stream_event(&items, 2000);
    let kafka = KafkaPublisher::new(KafkaSettings::new(vec![format!("127.0.0.1:{port}")]));
    let relay = Relay::new(kafka, Arc::new(CircuitBreaker::default()), SystemClock)
        .with_parking(InMemoryParking::default());

    let outcome = relay.handle(&event, None).await.expect("handle");
    assert_eq!(outcome.checkpoint, None, "nothing handed back: {outcome:?}");
    assert_eq!(outcome.parked, 2, "{outcome:?}");
    let parked = relay.parking().expect("parking").parked();
    let mut parked_ids: Vec<String> = parked.iter().map(|p| p.event_id.clone()).collect();
    parked_ids.sort();
    let mut missing_ids: Vec<String> = messages
        .iter()
        .filter(|m| m.topic != present)
        .map(|m| m.event_id.to_string())
        .collect();
    missing_ids.sort();
    assert_eq!(parked_ids, missing_ids);
    for p in &parked {
        assert_eq!(p.code, "UnknownTopicOrPartition", "{p:?}");
    }
    let keys: HashSet<String> = messages.iter().map(|m| m.ordering_key.clone()).collect();
    let client = relay.publisher().client().await.expect("client");
    let published: Vec<String> = read_keys(client, present.name(), &keys)
        .await
        .iter()
        .map(value_of)
        .collect();
    let expected: Vec<String> = messages
        .iter()
        .filter(|m| m.topic == present)
        .map(|m| m.body.clone())
        .collect();
    let mut sorted = published.clone();
    sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted);
}

/// aiokafka (`tests/kafka_consumer.py`, `.tools/kafka-venv`) reads every message with its
/// topic, key, exact value, on the partition aiokafka's own default partitioner picks for the
/// key (the reference's producer).
#[tokio::test]
async fn a_consumer_with_another_client_reads_every_message() {
    let bootstrap = settings().bootstrap.join(",");
    let (_publisher, messages) = publish_mixed(Destination::Notifications).await;

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf();
    let python = root.join(".tools/kafka-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run infra/local/kafka-setup.sh (installs aiokafka 0.13.0)",
        python.display()
    );
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(root.join("tests/kafka_consumer.py"))
        .arg("--bootstrap")
        .arg(&bootstrap);
    for t in PublishedTopic::ALL {
        cmd.arg(t.name());
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run kafka_consumer.py");
    assert!(
        out.status.success(),
        "kafka_consumer.py: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    for m in &messages {
        let found: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["value"].as_str() == Some(m.body.as_str()))
            .collect();
        assert_eq!(found.len(), 1, "{} read once by aiokafka", m.event_id);
        let l = found[0];
        assert_eq!(l["topic"], m.topic.name());
        assert_eq!(l["key"].as_str(), Some(m.ordering_key.as_str()));
        assert_eq!(l["headers"], 0);
        assert_eq!(
            l["partition"].as_i64(),
            Some(i64::from(partition_for(
                m.ordering_key.as_bytes(),
                PARTITIONS
            )))
        );
    }
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory under the system's temp directory, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ras-kafka-tls-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tansu broker of the test's own (in memory), listening on 127.0.0.1:`port` and advertising
/// `advertised`, started from `dir` (tansu reads a `.env` from its working directory and above),
/// its log in `dir/tansu.log`; stopped when the guard drops.
fn start_tansu(
    tansu: &std::path::Path,
    dir: &std::path::Path,
    cluster: &str,
    port: u16,
    advertised: &str,
) -> Child {
    let log = std::fs::File::create(dir.join("tansu.log")).expect("log");
    Child(
        std::process::Command::new(tansu)
            .current_dir(dir)
            .args(["broker", "--cluster-id", cluster])
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tansu"),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what} does not accept connections on 127.0.0.1:{port} after 10 s");
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The events of one kind `tests/kafka_tls_proxy.py` logged, in order.
fn proxy_events(log: &std::path::Path, event: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .filter(|e| e["event"] == event)
        .collect()
}

/// A test CA and a `localhost` server certificate signed by it (openssl), in `dir`: returns
/// (CA PEM, certificate path, key path).
fn certificates(dir: &std::path::Path) -> (String, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let mut cmd = std::process::Command::new("openssl");
        cmd.current_dir(dir).args(args);
        run(&mut cmd);
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=ras test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("ca.pem");
    (ca, dir.join("server.pem"), dir.join("server.key"))
}

/// The `iam` transport end to end on this machine: rskafka over TLS (rustls on aws-lc-rs, the
/// test CA added to the roots) with SASL/OAUTHBEARER and the MSK IAM token, through
/// `tests/kafka_tls_proxy.py` (TLS termination, MSK-like SASL that checks each token's shape,
/// region, key id and date) to a tansu broker of its own that advertises the proxy. The
/// first call, before the proxy is up, fails with `Err(Transient)`; the next one connects.
/// Then: produced and read back over TLS; every connection authenticated with a valid token;
/// after the SASL sessions expired (the proxy drops such connections) the next call reconnects
/// with new tokens and succeeds; without the CA the certificate is refused; with another key id
/// the SASL step is refused.
#[tokio::test]
async fn iam_transport_over_tls_and_sasl_produces_and_reads_back() {
    // Fails, never skips, without the local broker (the proxy fronts a tansu of its own).
    let _ = settings();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf();
    let tansu = root.join(".tools/tansu/bin/tansu");
    assert!(
        tansu.exists(),
        "{} missing: run infra/local/kafka-setup.sh",
        tansu.display()
    );
    // Dropped last: the processes below are stopped before it is removed.
    let temp = TempDir::new();
    let dir = temp.path();
    let (ca, cert, key) = certificates(dir);
    let (broker_port, proxy_port) = (free_port(), free_port());
    let _broker = start_tansu(
        &tansu,
        dir,
        "ras-tls-test",
        broker_port,
        &format!("localhost:{proxy_port}"),
    );
    wait_for_port(broker_port, "tansu").await;

    const REGION: &str = "eu-north-1";
    const KEY_ID: &str = "AKIARASTLSTEST000001";
    // The proxy's SASL session lifetime: it closes a connection whose session expired when
    // the next request arrives (a Kafka broker facing a client that does not re-authenticate;
    // rskafka does not).
    const SESSION_MS: u64 = 3_000;
    let mut settings = KafkaSettings::new(vec![format!("localhost:{proxy_port}")]);
    settings.security = KafkaSecurity::Iam {
        region: REGION.into(),
    };
    settings.timeout = std::time::Duration::from_secs(3);
    settings.extra_root_certificates_pem = Some(ca);
    let credentials = |key_id: &str| {
        SharedCredentialsProvider::new(Credentials::new(key_id, "test-secret", None, None, "test"))
    };
    let publisher = KafkaPublisher::with_credentials(settings.clone(), credentials(KEY_ID));
    let run_id = Uuid::new_v4().to_string();
    let topic = PublishedTopic::BatchResultsReady;
    let keys: Vec<String> = (0..3).map(|i| format!("batch-{run_id}-{i}")).collect();
    let messages: Vec<OutboxMessage> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| message(topic, k, i as u32, envelope(topic, k, i as u32)))
        .collect();

    // Nothing listens on the proxy's port yet.
    let first = publisher.send_batch(Destination::Events, &messages).await;
    assert!(
        matches!(first, Err(PublishError::Transient(_))),
        "{first:?}"
    );

    let auth_log = dir.join("auth.jsonl");
    let _proxy = Child(
        std::process::Command::new("python3")
            .arg(root.join("tests/kafka_tls_proxy.py"))
            .arg("--listen-port")
            .arg(proxy_port.to_string())
            .arg("--upstream")
            .arg(format!("127.0.0.1:{broker_port}"))
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--region", REGION, "--access-key-id", KEY_ID])
            .arg("--session-lifetime-ms")
            .arg(SESSION_MS.to_string())
            .arg("--log")
            .arg(&auth_log)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start kafka_tls_proxy.py"),
    );
    wait_for_port(proxy_port, "kafka_tls_proxy.py").await;

    let client = publisher.client().await.expect("connect over TLS + SASL");
    client
        .controller_client()
        .expect("controller")
        .create_topic(topic.name(), PARTITIONS, 1, 5_000)
        .await
        .expect("create topic");
    let results = publisher
        .send_batch(Destination::Events, &messages)
        .await
        .expect("send");
    all_sent(&results);
    let key_set: HashSet<String> = keys.iter().cloned().collect();
    let read = read_keys(client, topic.name(), &key_set).await;
    assert_eq!(read.len(), messages.len(), "{read:#?}");
    for m in &messages {
        let r = read
            .iter()
            .find(|r| r.key.as_deref() == Some(m.ordering_key.as_bytes()))
            .expect("read back");
        assert_eq!(r.value.as_deref(), Some(m.body.as_bytes()));
        assert_eq!(
            r.partition,
            partition_for(m.ordering_key.as_bytes(), PARTITIONS)
        );
    }

    // Every connection (bootstrap, then the broker from the metadata) authenticated with a
    // valid token of this key id, signed by this publisher.
    let auths = proxy_events(&auth_log, "auth");
    eprintln!("{} SASL authentications through the proxy", auths.len());
    assert!(auths.len() >= 2, "{auths:#?}");
    for a in &auths {
        assert_eq!(a["ok"], true, "{a}");
        let url = a["url"].as_str().expect("url");
        assert!(
            url.contains(&format!("X-Amz-Credential={KEY_ID}%2F")),
            "{url}"
        );
        assert!(
            url.contains("&User-Agent=huleedu-ras-aws-msk-iam%2F"),
            "{url}"
        );
    }

    // After the sessions expired the proxy drops the connections on the next request; the
    // publisher reconnects and authenticates again within the same call.
    tokio::time::sleep(std::time::Duration::from_millis(SESSION_MS + 500)).await;
    let later: Vec<OutboxMessage> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| message(topic, k, 10 + i as u32, envelope(topic, k, 10 + i as u32)))
        .collect();
    let results = publisher
        .send_batch(Destination::Events, &later)
        .await
        .expect("send after the sessions expired");
    all_sent(&results);
    assert!(
        !proxy_events(&auth_log, "session-expired").is_empty(),
        "the proxy closed an expired session"
    );
    let reauths = proxy_events(&auth_log, "auth");
    assert!(reauths.len() > auths.len(), "{reauths:#?}");
    assert!(reauths.iter().all(|a| a["ok"] == true), "{reauths:#?}");
    // One token for all of them: signed once, cached (valid for 900 s, renewed 300 s before).
    let tokens: HashSet<&str> = reauths.iter().filter_map(|a| a["url"].as_str()).collect();
    assert_eq!(tokens.len(), 1, "{tokens:#?}");
    let read = read_keys(
        publisher.client().await.expect("client"),
        topic.name(),
        &key_set,
    )
    .await;
    for key in &keys {
        let got: Vec<String> = read
            .iter()
            .filter(|r| &key_of(r) == key)
            .map(value_of)
            .collect();
        let expected: Vec<String> = messages
            .iter()
            .chain(&later)
            .filter(|m| &m.ordering_key == key)
            .map(|m| m.body.clone())
            .collect();
        assert_eq!(got, expected, "key {key}");
    }

    // Without the test CA the proxy's certificate is not trusted: no connection.
    let mut untrusted = settings.clone();
    untrusted.extra_root_certificates_pem = None;
    let refused = KafkaPublisher::with_credentials(untrusted, credentials(KEY_ID))
        .send_batch(Destination::Events, &messages[..1])
        .await;
    assert!(
        matches!(&refused, Err(PublishError::Transient(m)) if m.contains("connecting")),
        "{refused:?}"
    );
    // A token of another key id is refused by the SASL step.
    let before = proxy_events(&auth_log, "auth").len();
    let denied = KafkaPublisher::with_credentials(settings, credentials("AKIAOTHERKEY00000001"))
        .send_batch(Destination::Events, &messages[..1])
        .await;
    assert!(
        matches!(&denied, Err(PublishError::Transient(_))),
        "{denied:?}"
    );
    let after: Vec<serde_json::Value> = proxy_events(&auth_log, "auth")
        .into_iter()
        .skip(before)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|a| a["ok"] == false),
        "{after:#?}"
    );
}
