//! The pipeline report as readable text.

use crate::pipeline::{DeliveredMessage, Outcome, PipelineReport};
use std::collections::BTreeMap;
use std::fmt::Write;

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn messages(out: &mut String, list: &[DeliveredMessage], notification: bool) {
    let mut group = None;
    for m in list {
        if group != Some(&m.group_id) {
            let _ = writeln!(out, "  group {}:", m.group_id);
            group = Some(&m.group_id);
        }
        let kind = if notification {
            m.body["data"]["notification_type"]
                .as_str()
                .unwrap_or(&m.event_type)
                .to_string()
        } else {
            m.topic.clone()
        };
        let _ = writeln!(out, "    {}  {kind}", m.event_id);
        let _ = writeln!(out, "        {}", m.text);
    }
}

/// The whole report, section by section.
pub fn render(report: &PipelineReport) -> String {
    let mut out = String::new();
    let s = &report.scenario;
    let _ = writeln!(out, "Scenario {}", s.origin);
    if let Some(d) = &s.description {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(
        out,
        "  {} records ({} redelivered) on {} topic-partitions",
        s.records,
        s.redeliveries,
        s.partitions.len()
    );

    let ingest = &report.ingest;
    let mut produced_partitions: Vec<String> = ingest
        .produced
        .iter()
        .map(|p| format!("{}-{}", p.topic, p.partition))
        .collect();
    produced_partitions.sort();
    produced_partitions.dedup();
    let _ = writeln!(
        out,
        "\n1. Ingest: {} record(s) produced to the Kafka broker {} (keyed, no headers) on {} topic-partitions; \
         the MSK event-source emulator (consumer group {}: {} partition(s) resumed from committed offsets, {} from the starting position) \
         fetched {}, invoked ingest::handler::process_event with {} MSK event(s) (DynamoDB store, SQS dead-letter queue), {} OffsetCommit request(s)",
        ingest.produced.len(),
        ingest.bootstrap,
        produced_partitions.len(),
        ingest.consumer_group,
        ingest.emulator.resumed_partitions,
        ingest.emulator.new_partitions,
        ingest.emulator.fetched_records,
        ingest.invocations.len(),
        ingest.emulator.commit_requests
    );
    for inv in &ingest.invocations {
        let redelivery = if inv.delivery > 1 {
            format!(", redelivery {}", inv.delivery)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  event {} ({} records, {} partitions{redelivery})",
            inv.number,
            inv.records.len(),
            inv.partitions.len()
        );
        for r in &inv.records {
            let mut line = format!(
                "    {}-{}@{}  {}",
                r.topic,
                r.partition,
                r.offset,
                r.outcome.as_str()
            );
            if let Some(batch) = &r.batch_id {
                let _ = write!(line, "  batch {batch}");
            }
            if r.published > 0 {
                let _ = write!(line, "  +{} outbox", r.published);
            }
            if let Some(detail) = &r.detail {
                let _ = write!(line, "  ({detail})");
            }
            if r.attempts > 1 {
                let _ = write!(line, "  [{} attempts]", r.attempts);
            }
            let _ = writeln!(out, "{line}");
            if let Some(note) = &r.note {
                let _ = writeln!(out, "        ^ {note}");
            }
        }
        if !inv.batch_item_failures.is_empty() {
            let _ = writeln!(
                out,
                "    batchItemFailures: {}",
                inv.batch_item_failures.join(", ")
            );
        }
    }
    let _ = writeln!(
        out,
        "  total: {} applied, {} duplicate, {} dead-lettered, {} failed; {} outbox items written",
        ingest.count(Outcome::Applied),
        ingest.count(Outcome::Duplicate),
        ingest.count(Outcome::DeadLettered),
        ingest.count(Outcome::Failed),
        ingest.outbox_items()
    );
    if !ingest.gave_up.is_empty() {
        let _ = writeln!(
            out,
            "  GAVE UP after the last delivery: {}",
            ingest.gave_up.join(", ")
        );
    }
    let committed: Vec<String> = ingest
        .committed
        .iter()
        .map(|(lane, offset)| format!("{lane}={offset}"))
        .collect();
    let _ = writeln!(
        out,
        "  committed offsets of group {}: {}",
        ingest.consumer_group,
        committed.join(", ")
    );
    for problem in &ingest.problems {
        let _ = writeln!(out, "  PROBLEM: {problem}");
    }

    let timer = &report.timer;
    match &timer.ran_at {
        None => {
            let _ = writeln!(out, "\n2. Facts timer: not run");
        }
        Some(at) => {
            let _ = writeln!(
                out,
                "\n2. Facts timer: timer::sweep at {at} (grace period {} s): {} batch(es) emitted without all their facts",
                timer.grace_seconds,
                timer.emitted.len()
            );
            for (batch, missing) in &timer.emitted {
                let _ = writeln!(out, "  {batch}  missing: {missing}");
            }
        }
    }

    let relay = &report.relay;
    let _ = writeln!(
        out,
        "\n3. Relay: outbox stream -> relay::Relay -> events to {}, notifications to {} (SQS FIFO queues / Kafka topics): {} INSERT record(s) read ({} other filtered out), {} stream event(s), {} published",
        relay.events_to,
        relay.notifications_to,
        relay.inserts,
        relay.filtered_out,
        relay.invocations.len(),
        relay.published.len()
    );
    for inv in &relay.invocations {
        let _ = writeln!(
            out,
            "  event {} (shard {}, {} records{}): {} published in {} SendMessageBatch request(s){}",
            inv.number,
            inv.shard_id,
            inv.records,
            if inv.delivery > 1 {
                format!(", redelivery {}", inv.delivery)
            } else {
                String::new()
            },
            inv.published,
            inv.sqs_requests,
            inv.checkpoint
                .as_ref()
                .map(|c| format!("; checkpoint {c}"))
                .unwrap_or_default()
        );
    }
    if !relay.gave_up.is_empty() {
        let _ = writeln!(
            out,
            "  GAVE UP on sequence numbers: {}",
            relay.gave_up.join(", ")
        );
    }
    if relay.parked > 0 {
        let _ = writeln!(
            out,
            "  PARKED {} message(s) SQS refuses (ras-relay-parked; docs/operations.md)",
            relay.parked
        );
    }

    let _ = writeln!(
        out,
        "\n4. Batches (the API's status projection, from the state table)"
    );
    for b in &report.batches {
        if !b.registered {
            let _ = writeln!(
                out,
                "  {}  not registered (records arrived, no registration yet)",
                b.batch_id
            );
            continue;
        }
        let mut line = format!(
            "  {}  {}  {}  essays {} ({} completed, {} failed)",
            b.batch_id,
            b.user_id.as_deref().unwrap_or("?"),
            b.overall_status.as_deref().unwrap_or("?"),
            b.essay_count,
            b.completed_essay_count,
            b.failed_essay_count
        );
        if let Some(phase) = &b.current_phase {
            let _ = write!(line, "  current phase {phase}");
        }
        if !b.cj_jobs.is_empty() {
            let _ = write!(line, "  CJ jobs {}", b.cj_jobs.join(", "));
        }
        if b.awaiting_facts {
            let _ = write!(line, "  results ready waiting for facts");
        }
        if let Some(missing) = &b.results_ready_missing {
            let _ = write!(
                line,
                "  results ready sent on the facts timer (missing: {missing})"
            );
        }
        let _ = writeln!(out, "{line}");
    }

    let _ = writeln!(
        out,
        "\n5. Events queue (ras-events.fifo): {} message(s)",
        report.events.len()
    );
    messages(&mut out, &report.events, false);
    let _ = writeln!(
        out,
        "\n6. Notifications queue (ras-notifications.fifo): {} message(s)",
        report.notifications.len()
    );
    messages(&mut out, &report.notifications, true);

    let kafka = &report.kafka;
    let _ = writeln!(
        out,
        "\n7. Kafka topics, read back by a consumer (from where each partition ended before this run): {} message(s)",
        kafka.messages.len()
    );
    let mut key = None;
    for m in &kafka.messages {
        if key != Some(&m.key) {
            let _ = writeln!(out, "  key {}:", m.key);
            key = Some(&m.key);
        }
        let kind = m.body["data"]["notification_type"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| m.topic.clone());
        let headers = if m.headers > 0 {
            format!("  ({} headers)", m.headers)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    {}  {kind}  {}-{}@{}{headers}",
            m.event_id, m.topic, m.partition, m.offset
        );
        let _ = writeln!(out, "        {}", m.text);
    }

    let _ = writeln!(
        out,
        "\n8. Dead letters (ras-ingest-dlq): {}",
        report.dead_letters.len()
    );
    for d in &report.dead_letters {
        let _ = writeln!(
            out,
            "  {}-{}@{}  {}: {}",
            d.topic, d.partition, d.offset, d.error_kind, d.error_message
        );
    }

    let r = &report.requests;
    let _ = writeln!(out, "\n9. Requests (counted on the wire)");
    let _ = writeln!(
        out,
        "  ingest DynamoDB: {} = {:.2} per consumed record ({} records)",
        counts(&r.ingest_dynamodb),
        r.dynamodb_per_record(),
        r.consumed_records
    );
    let _ = writeln!(
        out,
        "  ingest SQS (dead letters): {}",
        counts(&r.ingest_sqs)
    );
    let _ = writeln!(
        out,
        "  relay SQS: {} = {:.2} per published event ({} events)",
        counts(&r.relay_sqs),
        r.sqs_per_event(),
        r.published_events
    );
    out
}
