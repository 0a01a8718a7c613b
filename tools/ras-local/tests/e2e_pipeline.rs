//! End to end: the built-in scenario (`events/scenarios/demo.json`) through `run_pipeline` —
//! the real ingest handler, the outbox stream through the real relay handler, the FIFO queues —
//! and the query API served over HTTP, on tables and queues of this test only (created from
//! `template.yaml`), so other tests sharing the local AWS-API server change nothing here.
//!
//! The records go through the local Kafka broker: produced to the six consumed topics, consumed
//! by the MSK event-source emulator as a consumer group of this test's own.
//!
//! Needs the local AWS-API server and the local Kafka broker (`scripts/test.sh`, or
//! `infra/local/start.sh && source infra/local/env.sh`, `infra/local/kafka-start.sh && source
//! .local/kafka.env`); fails when `AWS_ENDPOINT_URL` or `RAS_KAFKA_BOOTSTRAP` is unset.

use ras_aws::kafka_publisher::partition_for;
use ras_aws::routing::{Routes, Transport};
use ras_domain::ids::{
    assessment_completed_event_id, notification_event_id, results_ready_event_id,
};
use ras_local::broker::Broker;
use ras_local::esm::StartingPosition;
use ras_local::pipeline::{local_sdk_config, Outcome, PipelineReport};
use ras_local::resources::{
    create_queues, create_tables, delete_queues, delete_tables, unique_suffix, Streams,
};
use ras_local::serve::{api_router, examples, LOCAL_API_KEY, LOCAL_SERVICE_ID};
use ras_local::{run_pipeline, summary, PipelineConfig, Scenario};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: &str = "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01";
const B: &str = "8e3d2a71-4c5b-4f6e-9a80-1b2c3d4e5f02";
const C: &str = "c41f9a2b-7e6d-4a5c-8b3e-0f1e2d3c4b03";
const D: &str = "d2a7e5c1-9b8f-4e6d-a5c4-3b2a1f0e9d04";
const E: &str = "e7a4c2d9-5f3b-4a1e-8c6d-9b0a1f2e3d05";
const TEACHER_1: &str = "teacher-7f3c9a";
const TEACHER_2: &str = "teacher-2b8e41";
const SPELLCHECK: &str = "huleedu.essay.spellcheck.results.v1";
const SLOT: &str = "huleedu.els.essay.slot.assigned.v1";
/// Scenario indexes of the poison records (the truncated spellcheck result, the slot
/// assignment without `essay_id`) and of batch B's completion sent twice (its second copy).
const POISON: [usize; 2] = [23, 28];
const DUPLICATE: usize = 41;

/// Where the broker put the scenario's records and what the group committed.
fn check_kafka_side(report: &PipelineReport) {
    let ingest = &report.ingest;
    let scenario = Scenario::demo().unwrap();
    assert_eq!(ingest.produced.len(), 44);
    let mut ends: BTreeMap<String, i64> = BTreeMap::new();
    for (p, r) in ingest.produced.iter().zip(&scenario.records) {
        assert_eq!((p.index, &p.topic), (r.index, &r.topic));
        // Keyed as HuleEdu's producers key them, on Kafka's default partition for the key.
        let key = r.key.as_deref().expect("every demo record has a key");
        assert_eq!(p.partition, partition_for(key, 3), "record {}", r.index);
        let end = ends
            .entry(format!("{}-{}", p.topic, p.partition))
            .or_insert(0);
        *end = (*end).max(p.offset + 1);
    }
    // One batch's records spread over partitions: A's registration, slots and results.
    let a_partitions: BTreeSet<(String, i32)> = ingest
        .produced
        .iter()
        .zip(&scenario.records)
        .filter(|(_, r)| {
            r.note.as_deref().is_some_and(|n| n.contains("batch A"))
                || r.key.as_deref().is_some_and(|k| k.starts_with(b"0c9e1f8a"))
        })
        .map(|(p, _)| (p.topic.clone(), p.partition))
        .collect();
    assert!(a_partitions.len() >= 4, "{a_partitions:?}");
    // The group committed exactly past every produced record.
    assert_eq!(ingest.committed, ends);
    assert!(ingest.emulator.commit_requests >= ingest.invocations.len());
    // The duplicate is the same record at its own offset.
    let first = &ingest.produced[31];
    let again = &ingest.produced[DUPLICATE];
    assert_eq!(
        (&first.topic, first.partition),
        (&again.topic, again.partition)
    );
    assert!(again.offset > first.offset);
}

/// Batch id, user, overall status, essays, completed, failed.
type StatusRow<'a> = (&'a str, Option<&'a str>, Option<&'a str>, i64, i64, i64);

/// `(group id, event id)` of the messages of a queue, and `event id -> text`.
fn delivered(list: &[ras_local::pipeline::DeliveredMessage]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|m| (m.group_id.clone(), m.event_id.clone()))
        .collect()
}

fn texts(list: &[ras_local::pipeline::DeliveredMessage]) -> BTreeMap<String, String> {
    list.iter()
        .map(|m| (m.event_id.clone(), m.text.clone()))
        .collect()
}

fn check_report(report: &PipelineReport) {
    // Ingest: every record applied once (or, when a transient failure made the handler retry a
    // commit that had in fact gone through, found applied: a duplicate), the redelivered
    // record acknowledged as a duplicate, the two poison records dead-lettered, nothing left
    // over. On a quiet server nothing is retried and exactly 41 records apply.
    let ingest = &report.ingest;
    assert_eq!(report.scenario.records, 44);
    assert_eq!(report.scenario.redeliveries, 1);
    assert!(ingest.gave_up.is_empty(), "{:?}", ingest.gave_up);
    assert!(ingest.problems.is_empty(), "{:?}", ingest.problems);
    assert!(ingest.invocations.len() >= 3, "several MSK events");
    check_kafka_side(report);
    // Per scenario record (the broker gave the duplicate its own offset).
    let mut last: BTreeMap<usize, Vec<Outcome>> = BTreeMap::new();
    for r in ingest.records() {
        if matches!(r.outcome, Outcome::NotStarted | Outcome::Failed) {
            continue;
        }
        let index = r
            .scenario_index
            .unwrap_or_else(|| panic!("not produced by this run: {r:?}"));
        last.entry(index).or_default().push(r.outcome);
    }
    assert_eq!(last.len(), 44, "every record finished: {last:?}");
    let retried = ingest.records().any(|r| r.attempts > 1)
        || ingest.invocations.iter().any(|i| i.delivery > 1);
    for (index, outcomes) in &last {
        let poison = POISON.contains(index);
        let expected: Vec<Outcome> = if poison {
            vec![Outcome::DeadLettered]
        } else if *index == DUPLICATE {
            vec![Outcome::Duplicate]
        } else {
            vec![Outcome::Applied]
        };
        if retried && !poison {
            // The first delivery's commit may have gone through unseen.
            assert_eq!(outcomes.last(), expected.last(), "record {index}");
        } else {
            assert_eq!(outcomes, &expected, "record {index}");
        }
    }
    if !retried {
        assert_eq!(ingest.count(Outcome::Applied), 41);
        assert_eq!(ingest.count(Outcome::Duplicate), 1);
        // A, E: assessment completed + results ready; B: results ready; C: assessment
        // completed (its results ready comes from the facts timer) — each with a notification.
        assert_eq!(ingest.outbox_items(), 12);
    }
    assert_eq!(ingest.count(Outcome::DeadLettered), 2);

    // Batches, as the status route projects them (in order of first appearance: which
    // partition's records come first depends on the keys).
    let mut statuses: Vec<StatusRow> = report
        .batches
        .iter()
        .map(|b| {
            (
                b.batch_id.as_str(),
                b.user_id.as_deref(),
                b.overall_status.as_deref(),
                b.essay_count,
                b.completed_essay_count,
                b.failed_essay_count,
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            (A, Some(TEACHER_1), Some("completed_with_failures"), 3, 2, 1),
            (B, Some(TEACHER_2), Some("completed_successfully"), 2, 2, 0),
            (C, Some(TEACHER_2), Some("completed_successfully"), 2, 2, 0),
            (D, Some(TEACHER_1), Some("processing"), 2, 1, 0),
            (E, Some(TEACHER_2), Some("completed_with_failures"), 3, 2, 1),
        ]
    );
    let batch = |id: &str| {
        report
            .batches
            .iter()
            .find(|b| b.batch_id == id)
            .unwrap_or_else(|| panic!("no batch {id}"))
    };
    assert_eq!(batch(D).current_phase.as_deref(), Some("spellcheck"));
    assert_eq!(batch(A).cj_jobs, vec!["417"]);
    assert_eq!(batch(E).cj_jobs, vec!["419"]);
    assert_eq!(batch(C).cj_jobs, vec!["418"]);
    // Nothing is left waiting; C went out on the facts timer, its missing fact recorded.
    assert!(report.batches.iter().all(|b| !b.awaiting_facts));
    let missing = "BOS pipeline completion";
    assert_eq!(batch(C).results_ready_missing.as_deref(), Some(missing));
    assert_eq!(
        report.timer.emitted,
        vec![(C.to_string(), missing.to_string())]
    );
    assert_eq!(report.timer.outbox_items, 2);

    // Exactly the deterministic events, grouped by batch…
    let a_cj = assessment_completed_event_id(A, "417");
    let a_ready = results_ready_event_id(A);
    let b_ready = results_ready_event_id(B);
    let c_cj = assessment_completed_event_id(C, "418");
    let c_ready = results_ready_event_id(C);
    let e_cj = assessment_completed_event_id(E, "419");
    let e_ready = results_ready_event_id(E);
    let expected_events: BTreeSet<(String, String)> = [
        (A, a_cj),
        (A, a_ready),
        (B, b_ready),
        (C, c_cj),
        (C, c_ready),
        (E, e_cj),
        (E, e_ready),
    ]
    .iter()
    .map(|(g, id)| (g.to_string(), id.to_string()))
    .collect();
    assert_eq!(delivered(&report.events), expected_events);
    // …each batch's in emission order (FIFO per group).
    let a_order: Vec<&str> = report
        .events
        .iter()
        .filter(|m| m.group_id == A)
        .map(|m| m.topic.as_str())
        .collect();
    assert_eq!(
        a_order,
        vec![
            "huleedu.ras.batch.assessment.completed.v1",
            "huleedu.ras.batch.results.ready.v1"
        ]
    );
    for m in &report.events {
        assert_eq!(
            m.body["event_id"],
            m.event_id.as_str(),
            "dedup id = event id"
        );
    }
    // Exact figures, whatever the arrival order: BOS's completion of E overtook all of E's
    // facts, and E's CJ assessment failed one essay.
    let ready = |batch: &str| {
        report
            .events
            .iter()
            .find(|m| m.group_id == batch && m.topic == "huleedu.ras.batch.results.ready.v1")
            .map(|m| m.body["data"].clone())
            .unwrap_or_else(|| panic!("no results ready for {batch}"))
    };
    for (batch, total, overall, spellcheck, cj) in [
        (A, 3, "completed_with_failures", (3, 0), (2, 1)),
        (E, 3, "completed_with_failures", (3, 0), (2, 1)),
        (C, 2, "completed_successfully", (2, 0), (2, 0)),
    ] {
        let data = ready(batch);
        assert_eq!(data["total_essays"], total, "{batch}: {data}");
        assert_eq!(data["overall_status"], overall, "{batch}: {data}");
        for (phase, (completed, failed)) in [("spellcheck", spellcheck), ("cj_assessment", cj)] {
            let r = &data["phase_results"][phase];
            assert_eq!(
                (r["completed_count"].as_i64(), r["failed_count"].as_i64()),
                (Some(completed), Some(failed)),
                "{batch} {phase}: {data}"
            );
            let status = if failed == 0 {
                "completed"
            } else {
                "completed_with_failures"
            };
            assert_eq!(r["status"], status, "{batch} {phase}");
        }
    }
    // From the first spellcheck result (…:02:00) to BOS's completion (…:25:00).
    assert_eq!(ready(E)["processing_duration_seconds"], 1380.0);

    // …and one teacher notification per event, grouped by teacher, with its text.
    let expected_notifications: BTreeSet<(String, String)> = [
        (TEACHER_1, a_cj),
        (TEACHER_1, a_ready),
        (TEACHER_2, b_ready),
        (TEACHER_2, c_cj),
        (TEACHER_2, c_ready),
        (TEACHER_2, e_cj),
        (TEACHER_2, e_ready),
    ]
    .iter()
    .map(|(g, id)| (g.to_string(), notification_event_id(*id).to_string()))
    .collect();
    assert_eq!(delivered(&report.notifications), expected_notifications);
    let n = |id| notification_event_id(id).to_string();
    let expected_texts: BTreeMap<String, String> = [
        (
            n(a_cj),
            format!("Comparative judgment assessment completed for batch {A}"),
        ),
        (
            n(a_ready),
            format!("Batch {A} processing completed with 3/3 essays"),
        ),
        (
            n(b_ready),
            format!("Batch {B} processing completed with 2/2 essays"),
        ),
        (
            n(c_cj),
            format!("Comparative judgment assessment completed for batch {C}"),
        ),
        (
            n(c_ready),
            format!("Batch {C} processing completed with 2/2 essays"),
        ),
        (
            n(e_cj),
            format!("Comparative judgment assessment completed for batch {E}"),
        ),
        (
            n(e_ready),
            format!("Batch {E} processing completed with 3/3 essays"),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(texts(&report.notifications), expected_texts);

    // The same messages on the Kafka topics, read back by a consumer: key = batch id for the
    // domain events, teacher id for the notifications; no headers; each key on its default
    // partition; the texts as on SQS.
    let relay = &report.relay;
    assert_eq!(
        (relay.events_to.as_str(), relay.notifications_to.as_str()),
        ("both", "both")
    );
    let kafka = &report.kafka.messages;
    let on_kafka: BTreeSet<(String, String)> = kafka
        .iter()
        .map(|m| (m.key.clone(), m.event_id.clone()))
        .collect();
    let expected_on_kafka: BTreeSet<(String, String)> = expected_events
        .iter()
        .chain(&expected_notifications)
        .cloned()
        .collect();
    assert_eq!(on_kafka, expected_on_kafka);
    if relay.invocations.len() == 1 {
        // No redelivery: each message produced once (Kafka keeps every copy of a retry).
        assert_eq!(kafka.len(), 14);
    }
    let sqs_texts: BTreeMap<String, String> = texts(&report.events)
        .into_iter()
        .chain(texts(&report.notifications))
        .collect();
    for m in kafka {
        assert_eq!(m.headers, 0, "{m:?}");
        assert_eq!(m.partition, partition_for(m.key.as_bytes(), 3), "{m:?}");
        assert_eq!(m.body["event_id"], m.event_id.as_str());
        assert_eq!(m.topic, m.event_type, "one topic per event type: {m:?}");
        assert_eq!(Some(&m.text), sqs_texts.get(&m.event_id), "{m:?}");
    }
    // Within a key, in the order the relay produced them (A: assessment completed, then
    // results ready).
    let a_topics: Vec<&str> = kafka
        .iter()
        .filter(|m| m.key == A)
        .map(|m| m.topic.as_str())
        .collect();
    assert_eq!(
        a_topics,
        vec![
            "huleedu.ras.batch.assessment.completed.v1",
            "huleedu.ras.batch.results.ready.v1"
        ]
    );

    // The relay published each outbox item once.
    assert_eq!(relay.inserts, 14);
    assert!(relay.gave_up.is_empty(), "{:?}", relay.gave_up);
    assert_eq!(relay.parked, 0, "nothing of the demo is refused by SQS");
    let published: BTreeSet<&String> = relay.published.iter().collect();
    let expected_ids: BTreeSet<String> = expected_events
        .iter()
        .chain(&expected_notifications)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(published, expected_ids.iter().collect());
    // FIFO deduplication: one message per event id, also after a redelivery.
    assert_eq!(report.events.len(), 7);
    assert_eq!(report.notifications.len(), 7);

    // Dead letters: exactly the two poison records, with their reasons and coordinates.
    let letters: Vec<(&str, i64, i64, &str)> = report
        .dead_letters
        .iter()
        .map(|d| {
            (
                d.topic.as_str(),
                d.partition,
                d.offset,
                d.error_kind.as_str(),
            )
        })
        .collect();
    let at = |index: usize| {
        let p = &report.ingest.produced[index];
        (i64::from(p.partition), p.offset)
    };
    assert_eq!(
        letters,
        vec![
            (SLOT, at(28).0, at(28).1, "schema_violation"),
            (SPELLCHECK, at(23).0, at(23).1, "invalid_json"),
        ]
    );
    assert!(report.dead_letters[0].error_message.contains("essay_id"));
    assert!(report.dead_letters[1]
        .error_message
        .contains("not valid JSON"));

    // Requests counted on the wire: every processed record read its batch (a per-essay record
    // its root and essay with a `BatchGetItem`, then — out of order, as much of this scenario
    // is — the partition with a `Query`; a batch-level record the partition) and committed (or
    // tried to: the duplicate's transaction is cancelled); SQS requests are the relay's own.
    let r = &report.requests;
    assert_eq!(r.consumed_records, 44);
    let processed = 42;
    let count = |op: &str| r.ingest_dynamodb.get(op).copied().unwrap_or(0);
    assert!(count("BatchGetItem") > 0, "{r:?}");
    let queries = count("Query") + count("BatchGetItem");
    let writes = r
        .ingest_dynamodb
        .get("TransactWriteItems")
        .copied()
        .unwrap_or(0);
    assert!(queries >= processed && writes >= processed, "{r:?}");
    assert!(
        r.ingest_dynamodb.values().sum::<u64>() <= 3 * processed,
        "{r:?}"
    );
    assert_eq!(r.ingest_sqs.get("SendMessage").copied(), Some(2), "{r:?}");
    assert_eq!(r.published_events, 14);
    let relay_requests: u64 = relay
        .invocations
        .iter()
        .map(|i| u64::from(i.sqs_requests))
        .sum();
    // SDK-level retries are transmissions too.
    assert!(
        r.relay_sqs.get("SendMessageBatch").copied().unwrap_or(0) >= relay_requests,
        "{r:?}"
    );
    assert!(relay_requests <= 14);

    // The summary names all of it.
    let text = summary::render(report);
    for needle in [
        A,
        B,
        C,
        D,
        E,
        "schema_violation",
        "invalid_json",
        "duplicate",
        "Facts timer",
        "Kafka topics, read back by a consumer",
        "committed offsets of group",
    ] {
        assert!(text.contains(needle), "summary lacks {needle}:\n{text}");
    }
}

/// GET over a fresh connection; `(status, body)`.
async fn get(addr: std::net::SocketAddr, path: &str, authenticated: bool) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if authenticated {
        request.push_str(&format!(
            "X-Internal-API-Key: {LOCAL_API_KEY}\r\nX-Service-ID: {LOCAL_SERVICE_ID}\r\n"
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, tail) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size]);
            rest = &tail[size + 2..];
        }
        out
    } else {
        body.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

async fn check_api(report: &PipelineReport, config: &PipelineConfig) {
    let app = api_router(&config.sdk, &config.tables, LOCAL_API_KEY).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (status, body) = get(addr, &format!("/internal/v1/batches/{A}/status"), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["batch_id"], A);
    assert_eq!(body["user_id"], TEACHER_1);
    assert_eq!(body["overall_status"], "completed_with_failures");
    assert_eq!(body["assignment_id"], "assignment-eng5-2025");
    assert_eq!(body["essays"].as_array().map(Vec::len), Some(3));

    let (status, body) = get(addr, &format!("/internal/v1/batches/{D}/status"), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["overall_status"], "processing");
    assert_eq!(body["current_phase"], "spellcheck");

    let (status, body) = get(
        addr,
        &format!("/internal/v1/batches/user/{TEACHER_2}"),
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: BTreeSet<&str> = body["batches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["batch_id"].as_str())
        .collect();
    assert_eq!(ids, BTreeSet::from([B, C, E]));
    assert_eq!(body["pagination"]["total"], 3);

    let (status, body) = get(addr, &format!("/internal/v1/batches/{C}/assessments"), true).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("418"), "{body}");

    let (status, body) = get(addr, "/internal/v1/assessments/417", true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["batch_id"], A);
    assert!(body
        .to_string()
        .contains("0c9e1f8a-2222-4a2b-8c3d-000000000002"));

    let (status, body) = get(addr, &format!("/internal/v1/batches/{A}/status"), false).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "Missing authentication");
    let (status, _) = get(addr, "/healthz", false).await;
    assert_eq!(status, 200);

    // Every example the binary prints answers 200.
    let examples = examples(report);
    assert!(examples.len() >= 10, "{examples:?}");
    for example in examples {
        let (status, body) = get(addr, &example.path, example.authenticated).await;
        assert_eq!(status, 200, "{}: {body}", example.path);
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scenario_end_to_end() {
    let sdk = local_sdk_config().await.unwrap_or_else(|e| panic!("{e}"));
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let suffix = unique_suffix("e2e");
    let tables = create_tables(&dynamo, &suffix, Streams::AsDefined)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let queues = create_queues(&sqs, &suffix)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = PipelineConfig::new(
        sdk,
        tables.clone(),
        queues.queues.clone(),
        queues.ingest_dead_letters.clone(),
        Scenario::demo().unwrap(),
        Broker::bootstrap_from_env().unwrap_or_else(|e| panic!("{e}")),
    );
    config.parked_queue = Some(queues.relay_parked.clone());
    // The broker is shared with other tests: a group of this test's own, starting at the end
    // of the topics (what others produced before is not this test's).
    config.consumer_group = unique_suffix("e2e-group");
    config.starting_position = StartingPosition::Latest;
    // Production's choice per kind is either; here both, to see both sides.
    config.routes = Routes {
        events: Transport::Both,
        notifications: Transport::Both,
    };

    let report = run_pipeline(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", summary::render(&report));
    check_report(&report);
    check_api(&report, &config).await;

    // Run again — produced again, and consumed by a new emulator that resumes from the
    // group's committed offsets (none of the first run's records is delivered again): every
    // record is a duplicate now, nothing is published twice.
    let again = run_pipeline(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.ingest.emulator.resumed_partitions, 18, "6 topics x 3");
    assert_eq!(again.ingest.emulator.new_partitions, 0);
    assert_eq!(again.requests.consumed_records, 44);
    assert!(again.ingest.records().all(|r| r.scenario_index.is_some()));
    for (lane, end) in &report.ingest.committed {
        assert!(
            again
                .ingest
                .produced
                .iter()
                .all(|p| format!("{}-{}", p.topic, p.partition) != *lane || p.offset >= *end),
            "{lane}"
        );
    }
    assert_eq!(again.ingest.count(Outcome::Applied), 0);
    assert_eq!(again.ingest.count(Outcome::Duplicate), 42);
    assert!(again.timer.emitted.is_empty());
    assert_eq!(again.ingest.count(Outcome::DeadLettered), 2);
    assert!(again.events.is_empty() && again.notifications.is_empty());
    assert!(
        again.kafka.messages.is_empty(),
        "{:?}",
        again.kafka.messages
    );
    assert_eq!(again.relay.inserts, 0);
    assert_eq!(again.batches, report.batches);

    delete_queues(&sqs, &queues).await;
    delete_tables(&dynamo, &tables).await;
}
