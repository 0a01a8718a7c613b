//! The reliability suite (`tests/tests/reliability.rs`, `docs/reliability.md`) over the real
//! adapters: the same fault wrappers around the DynamoDB store (private tables), the SQS
//! dead-letter queue and the SQS FIFO publisher (private queues) on the local AWS-API server,
//! for a few small fixed scenarios in real time. The invariants are read back from DynamoDB
//! and SQS: final states against the model, every committed message received from its FIFO
//! queue with its bytes, group id and deduplication id, the dead-letter queue holding exactly
//! the poison records.
//!
//! Needs the local AWS-API server (`scripts/test.sh`); fails when `AWS_ENDPOINT_URL` is unset.

use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{AggregateStore, Destination};
use ras_tests::ingest_support::IngestEnv;
use ras_tests::relay_support::{consume, TestQueues};
use ras_tests::reliability::{check, model, run_with, Observed, Ports, Scenario};
use std::collections::BTreeMap;
use std::time::Duration;

/// Small scenarios with poison records and published events (seeds of the in-memory suite).
const SEEDS: [u64; 2] = [5, 7];

#[tokio::test]
async fn the_invariants_hold_over_the_real_adapters() {
    let env = IngestEnv::new().await;
    let queues = TestQueues::create(&env.aws).await;
    for seed in SEEDS {
        let mut scenario = Scenario::generate(seed);
        // Real time here: fewer timeouts, each a short hang.
        scenario.knobs.rates.timeout = scenario.knobs.rates.timeout.min(0.03);
        let model = model(&scenario).await.expect("model");
        let ports = Ports {
            store: env.isolated_store(),
            dead_letters: env.dead_letter_queue(),
            publisher: queues.publisher(&env.aws),
            attempt_timeout: Duration::from_secs(3),
            hang: Duration::from_millis(3_200),
        };
        let run = run_with(&scenario, ports).await;

        let store = env.store();
        let mut aggregates = BTreeMap::new();
        for batch in &scenario.batches {
            let aggregate = store.load(batch).await.expect("load");
            aggregates.insert(
                batch.clone(),
                (aggregate.root.version > 0).then_some(aggregate),
            );
        }
        let mut delivered = Vec::new();
        for (destination, url) in [
            (Destination::Events, &queues.urls.events),
            (Destination::Notifications, &queues.urls.notifications),
        ] {
            for m in consume(&env.aws, url).await {
                let attribute = |name: &str| m.attributes.get(name).cloned().unwrap_or_default();
                let envelope: serde_json::Value =
                    serde_json::from_str(&m.body).expect("a received body is JSON");
                delivered.push((
                    destination,
                    OutboxMessage {
                        event_id: m.dedup_id.parse().expect("the dedup id is an event id"),
                        topic: PublishedTopic::from_name(&attribute("topic"))
                            .expect("the topic attribute names a published topic"),
                        correlation_id: attribute("correlation_id")
                            .parse()
                            .expect("the correlation_id attribute is a UUID"),
                        ordering_key: m.group_id.clone(),
                        // Not on the wire as such (and not compared): from the envelope.
                        created_at: envelope["event_timestamp"]
                            .as_str()
                            .and_then(Timestamp::parse)
                            .expect("the envelope has an event_timestamp"),
                        sequence: 0,
                        body: m.body.clone(),
                    },
                ));
            }
        }
        let letters = env
            .dead_letters()
            .await
            .into_iter()
            .map(|r| r.letter)
            .collect();
        let seen = Observed::gather(&run, aggregates, None, None, delivered, letters);
        let violations = check(&scenario, &model, &seen);
        println!(
            "seed {seed}: {} committed messages, {} received, {} dead letters, faults {:?}",
            seen.committed.len(),
            seen.delivered.len(),
            seen.dead_letters.len(),
            run.chaos.injected()
        );
        assert!(
            violations.is_empty(),
            "seed {seed} over the real adapters:\n  {}",
            violations.join("\n  ")
        );
        assert!(run.chaos.total_injected() > 0, "no fault injected");
        assert!(!seen.committed.is_empty() && !seen.dead_letters.is_empty());
    }
    queues.delete(&env.aws).await;
    env.cleanup().await;
}
