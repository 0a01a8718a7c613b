//! The MSK event-source emulator against the local Kafka broker: the consumer group's offsets
//! (OffsetCommit / OffsetFetch through `ras_local::group`), the event Lambda builds from
//! fetched records, commits that never pass a failed record, and a restart that resumes from
//! the committed offsets. Topics and groups of this test's own.
//!
//! Needs the local broker (`scripts/test.sh`, or `infra/local/kafka-start.sh && source
//! .local/kafka.env`); fails when `RAS_KAFKA_BOOTSTRAP` is unset.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ras_aws::kafka_publisher::partition_for;
use ras_local::broker::{Broker, BrokerSource};
use ras_local::esm::{EmulatorSettings, InvokeResult, MskEmulator, StartingPosition};
use ras_local::group::GroupClient;
use ras_local::resources::unique_suffix;
use ras_test_kit::event_source::{EventSourceConfig, Outcome, SourceKind};
use rskafka::record::Record;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

fn bootstrap() -> String {
    Broker::bootstrap_from_env().unwrap_or_else(|e| panic!("{e}"))
}

fn settings(topics: &[String], bootstrap: &str) -> EmulatorSettings {
    EmulatorSettings {
        source: EventSourceConfig {
            kind: SourceKind::Kafka,
            batch_size: 100,
            maximum_retry_attempts: -1,
            maximum_record_age: None,
            bisect_batch_on_function_error: false,
            report_batch_item_failures: true,
            on_failure: None,
            function_timeout: Duration::from_secs(60),
        },
        batching_window: Duration::from_millis(300),
        starting_position: StartingPosition::TrimHorizon,
        topics: topics.to_vec(),
        event_source_arn: "arn:aws:kafka:us-east-1:000000000000:cluster/test/1".into(),
        bootstrap_servers: bootstrap.into(),
        retry_delay: Duration::from_millis(10),
        idle_poll: Duration::from_millis(20),
    }
}

fn record(key: &str, value: &str) -> Record {
    Record {
        key: Some(key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: BTreeMap::new(),
        timestamp: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn the_group_commits_and_fetches_offsets() {
    let bootstrap = bootstrap();
    let broker = Broker::connect(&bootstrap, TIMEOUT).await.unwrap();
    let topic = unique_suffix("esm-offsets");
    broker.ensure_topics(&[&topic], 2).await.unwrap();
    let group = unique_suffix("esm-group");
    let mut client = GroupClient::connect(&bootstrap, &group, TIMEOUT)
        .await
        .unwrap();
    let partitions = vec![(topic.clone(), 0), (topic.clone(), 1)];
    let none = client.fetch(&partitions).await.unwrap();
    assert_eq!(
        none,
        vec![((topic.clone(), 0), None), ((topic.clone(), 1), None)]
    );
    client
        .commit(&[((topic.clone(), 1), 7), ((topic.clone(), 0), 3)])
        .await
        .unwrap();
    client.commit(&[((topic.clone(), 1), 9)]).await.unwrap();
    // Another connection (a restarted consumer) sees them.
    let mut again = GroupClient::connect(&bootstrap, &group, TIMEOUT)
        .await
        .unwrap();
    let mut got = again.fetch(&partitions).await.unwrap();
    got.sort();
    assert_eq!(
        got,
        vec![((topic.clone(), 0), Some(3)), ((topic.clone(), 1), Some(9))]
    );
    // Groups are separate.
    let mut other = GroupClient::connect(&bootstrap, &unique_suffix("esm-group"), TIMEOUT)
        .await
        .unwrap();
    assert!(other
        .fetch(&partitions)
        .await
        .unwrap()
        .iter()
        .all(|(_, o)| o.is_none()));
}

/// The reported failure's partition, from the event.
fn fail_at(event: &Value, key: &str) -> Option<(String, i64)> {
    let records = event["records"].as_object()?;
    for (partition, list) in records {
        for r in list.as_array()? {
            if r["key"] == BASE64.encode(key) {
                return Some((partition.clone(), r["offset"].as_i64()?));
            }
        }
    }
    None
}

#[tokio::test]
async fn the_emulator_delivers_the_lambda_event_commits_short_of_failures_and_resumes() {
    let bootstrap = bootstrap();
    let mut broker = Broker::connect(&bootstrap, TIMEOUT).await.unwrap();
    let topic = unique_suffix("esm-topic");
    broker.ensure_topics(&[&topic], 3).await.unwrap();
    let group = unique_suffix("esm-group");
    // Six records, two per key, each key on its default partition.
    let keys = ["batch-a", "batch-b", "essay-c"];
    let mut produced = Vec::new();
    for round in 0..2 {
        for key in keys {
            let partition = partition_for(key.as_bytes(), 3);
            let offset = broker
                .produce(&topic, partition, record(key, &format!("{key}-{round}")))
                .await
                .unwrap();
            produced.push((key, partition, offset));
        }
    }
    let topics = vec![topic.clone()];
    let source = BrokerSource::connect(&bootstrap, &group, TIMEOUT)
        .await
        .unwrap();
    let mut emulator = MskEmulator::start(source, settings(&topics, &bootstrap))
        .await
        .unwrap();
    let inv = emulator.next_invocation().await.unwrap().expect("records");
    assert_eq!(inv.records.len(), 6);
    let event = &inv.event;
    assert_eq!(event["eventSource"], "aws:kafka");
    assert_eq!(event["bootstrapServers"], bootstrap.as_str());
    assert!(event["eventSourceArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:kafka:"));
    for (key, partition, offset) in &produced {
        let lane = format!("{topic}-{partition}");
        let list = event["records"][&lane].as_array().unwrap();
        let r = list
            .iter()
            .find(|r| r["offset"] == *offset)
            .unwrap_or_else(|| panic!("{lane}@{offset} not in {event}"));
        assert_eq!(r["topic"], topic.as_str());
        assert_eq!(r["partition"], *partition);
        assert_eq!(r["key"], BASE64.encode(key));
        assert_eq!(r["timestampType"], "CREATE_TIME");
        assert!(r["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(r["headers"], json!([]));
        let value =
            String::from_utf8(BASE64.decode(r["value"].as_str().unwrap()).unwrap()).unwrap();
        assert!(value.starts_with(key), "{value}");
    }
    // The function parses it as the ingest handler's bootstrap does.
    ras_local::msk::try_kafka_event(event).unwrap();

    // batch-b's first record fails: its partition is committed up to it, not past it.
    let (lane, offset) = fail_at(event, "batch-b").unwrap();
    let response =
        json!({"batchItemFailures": [{"itemIdentifier": {"partition": lane, "offset": offset}}]});
    let done = emulator
        .complete(inv, InvokeResult::Response(response))
        .await
        .unwrap();
    let failed = done.outcomes.iter().find(|(l, _)| *l == lane).unwrap().1;
    assert!(matches!(failed, Outcome::FailedFrom(_)), "{done:?}");
    let b_partition = partition_for(b"batch-b", 3);
    let mut group_client = GroupClient::connect(&bootstrap, &group, TIMEOUT)
        .await
        .unwrap();
    let committed: BTreeMap<i32, Option<i64>> = group_client
        .fetch(&[(topic.clone(), 0), (topic.clone(), 1), (topic.clone(), 2)])
        .await
        .unwrap()
        .into_iter()
        .map(|((_, p), o)| (p, o))
        .collect();
    assert_eq!(
        committed[&b_partition],
        Some(offset),
        "not past the failure"
    );
    for (key, partition, offset) in &produced {
        if *partition != b_partition {
            assert!(
                committed[partition].unwrap() > *offset,
                "{key}: {committed:?}"
            );
        }
    }

    // The emulator stops; a new one in the same group starts at the failed record and
    // delivers it and what follows on its partition — and nothing else.
    drop(emulator);
    let source = BrokerSource::connect(&bootstrap, &group, TIMEOUT)
        .await
        .unwrap();
    let mut emulator = MskEmulator::start(source, settings(&topics, &bootstrap))
        .await
        .unwrap();
    assert_eq!(emulator.stats().resumed_partitions, 3);
    let inv = emulator
        .next_invocation()
        .await
        .unwrap()
        .expect("the retry");
    let redelivered: Vec<(i64, i64)> = inv
        .records
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    let expected: Vec<(i64, i64)> = produced
        .iter()
        .filter(|(_, p, o)| *p == b_partition && *o >= offset)
        .map(|(_, p, o)| (i64::from(*p), *o))
        .collect();
    assert_eq!(redelivered, expected);
    emulator
        .complete(
            inv,
            InvokeResult::Response(json!({"batchItemFailures": []})),
        )
        .await
        .unwrap();
    let end = produced
        .iter()
        .filter(|(_, p, _)| *p == b_partition)
        .map(|(_, _, o)| o + 1)
        .max();
    assert_eq!(
        group_client
            .fetch(&[(topic.clone(), b_partition)])
            .await
            .unwrap()[0]
            .1,
        end
    );
    assert!(emulator.next_invocation().await.unwrap().is_none());
}
