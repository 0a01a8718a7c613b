//! What an invocation did: per record, per partition, in total — and the partial-batch
//! response Lambda reads from it.

use crate::kafka::KafkaBatchResponse;
use crate::metrics::{IngestMetrics, TopicStats};
use ras_domain::service::RecordOutcome;

/// What became of one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Disposition {
    /// Committed with its marker, or applied before (a duplicate): the domain's outcome.
    Done(RecordOutcome),
    /// Sent to the dead-letter queue; acknowledged.
    DeadLettered { error_kind: String },
    /// Not finished: reported to Lambda, the partition stops here.
    Failed { reason: String },
}

/// One record's result.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordReport {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub disposition: Disposition,
    /// Processing attempts, plus the retries of its dead-letter send.
    pub attempts: u32,
}

impl RecordReport {
    /// Count the record into its topic's metrics.
    pub(crate) fn count(&self, stats: &mut TopicStats) {
        match &self.disposition {
            Disposition::Done(RecordOutcome::Applied { .. }) => stats.processed += 1,
            Disposition::Done(RecordOutcome::Duplicate { .. }) => stats.duplicate += 1,
            Disposition::DeadLettered { .. } => stats.dead_lettered += 1,
            Disposition::Failed { .. } => stats.failed += 1,
        }
        let retries = u64::from(self.attempts.saturating_sub(1));
        if retries > 0 {
            stats.retried += 1;
            stats.retry_attempts += retries;
        }
    }
}

/// One partition's result.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionReport {
    pub key: String,
    /// The records handled, in offset order (those that failed are `Failed`).
    pub records: Vec<RecordReport>,
    /// The first record not finished, reported in `batchItemFailures`.
    pub failed_offset: Option<i64>,
    /// Records not started, left for the next delivery.
    pub not_started: usize,
}

impl PartitionReport {
    pub(crate) fn new(key: String) -> Self {
        PartitionReport {
            key,
            records: Vec::new(),
            failed_offset: None,
            not_started: 0,
        }
    }

    /// Merge the report of the partition's second wave into this one: records in offset
    /// order, the lowest failed offset.
    pub(crate) fn absorb(&mut self, later: PartitionReport) {
        self.records.extend(later.records);
        self.records.sort_by_key(|r| r.offset);
        self.failed_offset = match (self.failed_offset, later.failed_offset) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.not_started += later.not_started;
    }
}

/// Everything an invocation did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchReport {
    pub partitions: Vec<PartitionReport>,
    pub metrics: IngestMetrics,
}

impl BatchReport {
    /// The response for Lambda: one item per partition that did not finish.
    pub fn response(&self) -> KafkaBatchResponse {
        let mut response = KafkaBatchResponse::default();
        for partition in &self.partitions {
            if let Some(offset) = partition.failed_offset {
                response.fail(&partition.key, offset);
            }
        }
        response
    }

    pub fn records(&self) -> impl Iterator<Item = &RecordReport> {
        self.partitions.iter().flat_map(|p| p.records.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_names_the_first_failed_record_of_each_stopped_partition() {
        let report = BatchReport {
            partitions: vec![
                PartitionReport {
                    failed_offset: Some(7),
                    not_started: 3,
                    ..PartitionReport::new("t-0".into())
                },
                PartitionReport::new("t-1".into()),
            ],
            metrics: IngestMetrics::default(),
        };
        let response = serde_json::to_value(report.response()).unwrap();
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": {"partition": "t-0", "offset": 7}}]})
        );
    }

    #[test]
    fn a_second_wave_merges_in_offset_order_with_the_lowest_failure() {
        let record = |offset, disposition| RecordReport {
            topic: "t".into(),
            partition: 0,
            offset,
            disposition,
            attempts: 1,
        };
        let failed = || Disposition::Failed { reason: "x".into() };
        let mut first = PartitionReport {
            records: vec![record(1, failed())],
            failed_offset: Some(1),
            not_started: 1,
            ..PartitionReport::new("t-0".into())
        };
        first.absorb(PartitionReport {
            records: vec![record(0, failed())],
            failed_offset: Some(0),
            ..PartitionReport::new("t-0".into())
        });
        let offsets: Vec<i64> = first.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1]);
        assert_eq!((first.failed_offset, first.not_started), (Some(0), 1));
    }
}
