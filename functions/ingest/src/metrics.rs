//! Per-topic counters of one invocation, emitted as CloudWatch embedded-metric-format documents
//! (namespace `HuleEdu/ResultAggregator`, dimensions `Function=ingest`, `Topic=<topic>`).

use ras_aws::telemetry::{MetricSet, Unit};
use serde_json::Value;
use std::collections::BTreeMap;

pub const FUNCTION: &str = "ingest";

/// Committed: state, marker and outbox written.
pub const RECORDS_PROCESSED: &str = "RecordsProcessed";
/// Applied before (idempotency marker present with the same payload): acknowledged, no write.
pub const RECORDS_DUPLICATE: &str = "RecordsDuplicate";
/// Permanently failed and sent to the ingest dead-letter queue.
pub const RECORDS_DEAD_LETTERED: &str = "RecordsDeadLettered";
/// Records that needed at least one retry.
pub const RECORDS_RETRIED: &str = "RecordsRetried";
/// Retries in total (attempts after the first).
pub const RETRY_ATTEMPTS: &str = "RetryAttempts";
/// Reported back to Lambda as the first failed record of their partition.
pub const RECORDS_FAILED: &str = "RecordsFailed";
/// Wall time per record from the start of its processing to its outcome.
pub const PROCESSING_LATENCY: &str = "ProcessingLatency";

/// EMF accepts at most 100 values per metric and document.
const MAX_VALUES_PER_DOCUMENT: usize = 100;

/// What happened to the records of one topic during one invocation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicStats {
    pub processed: u64,
    pub duplicate: u64,
    pub dead_lettered: u64,
    pub retried: u64,
    pub retry_attempts: u64,
    pub failed: u64,
    pub latencies_ms: Vec<f64>,
}

impl TopicStats {
    pub fn merge(&mut self, other: &TopicStats) {
        self.processed += other.processed;
        self.duplicate += other.duplicate;
        self.dead_lettered += other.dead_lettered;
        self.retried += other.retried;
        self.retry_attempts += other.retry_attempts;
        self.failed += other.failed;
        self.latencies_ms.extend_from_slice(&other.latencies_ms);
    }
}

/// Stats per topic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestMetrics {
    pub topics: BTreeMap<String, TopicStats>,
}

impl IngestMetrics {
    pub fn topic(&mut self, topic: &str) -> &mut TopicStats {
        self.topics.entry(topic.to_string()).or_default()
    }

    pub fn merge(&mut self, other: &IngestMetrics) {
        for (topic, stats) in &other.topics {
            self.topic(topic).merge(stats);
        }
    }

    /// Sum over all topics.
    pub fn total(&self) -> TopicStats {
        let mut total = TopicStats::default();
        for stats in self.topics.values() {
            total.merge(stats);
        }
        total
    }

    /// The EMF documents: per topic, one with the counters and the first 100 latencies, then
    /// one per further 100 latencies.
    pub fn to_emf(&self) -> Vec<Value> {
        let mut documents = Vec::new();
        for (topic, stats) in &self.topics {
            let dimensions = [("Function", FUNCTION), ("Topic", topic.as_str())];
            let mut chunks = stats.latencies_ms.chunks(MAX_VALUES_PER_DOCUMENT);
            let mut set = MetricSet::new(&dimensions);
            set.count(RECORDS_PROCESSED, stats.processed)
                .count(RECORDS_DUPLICATE, stats.duplicate)
                .count(RECORDS_DEAD_LETTERED, stats.dead_lettered)
                .count(RECORDS_RETRIED, stats.retried)
                .count(RETRY_ATTEMPTS, stats.retry_attempts)
                .count(RECORDS_FAILED, stats.failed);
            if let Some(first) = chunks.next() {
                for ms in first {
                    set.record(PROCESSING_LATENCY, Unit::Milliseconds, *ms);
                }
            }
            documents.push(set.to_json());
            for chunk in chunks {
                let mut set = MetricSet::new(&dimensions);
                for ms in chunk {
                    set.record(PROCESSING_LATENCY, Unit::Milliseconds, *ms);
                }
                documents.push(set.to_json());
            }
        }
        documents
    }

    /// Print the EMF documents on stdout, one line each (where Lambda picks them up). A
    /// failed write loses metrics, never the batch: it is ignored.
    pub fn emit(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for document in self.to_emf() {
            let _ = writeln!(out, "{document}");
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_per_topic_and_per_hundred_latencies() {
        let mut m = IngestMetrics::default();
        let a = m.topic("topic.a");
        a.processed = 2;
        a.latencies_ms = (0..150).map(f64::from).collect();
        m.topic("topic.b").dead_lettered = 1;
        let docs = m.to_emf();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0]["Topic"], "topic.a");
        assert_eq!(docs[0]["Function"], "ingest");
        assert_eq!(docs[0][RECORDS_PROCESSED], 2.0);
        assert_eq!(docs[0][PROCESSING_LATENCY].as_array().unwrap().len(), 100);
        assert_eq!(docs[1][PROCESSING_LATENCY].as_array().unwrap().len(), 50);
        assert!(docs[1].get(RECORDS_PROCESSED).is_none());
        assert_eq!(docs[2]["Topic"], "topic.b");
        assert_eq!(docs[2][RECORDS_DEAD_LETTERED], 1.0);
        assert_eq!(docs[2][RECORDS_DUPLICATE], 0.0);
        let metrics = &docs[2]["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            metrics["Dimensions"],
            serde_json::json!([["Function", "Topic"]])
        );
        assert_eq!(m.total().processed, 2);
    }
}
