//! The model a run is checked against: the valid records applied in logical order, one at a
//! time, without faults.

use super::scenario::Scenario;
use crate::msk::{MskRecord, MskValue};
use ras_domain::contracts::Timestamp;
use ras_domain::model::BatchAggregate;
use ras_domain::service::{process_record, ConsumedRecord};
use ras_domain::testing::batches::published_content;
use ras_domain::testing::InMemoryStore;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

fn record_time(record: &MskRecord) -> Timestamp {
    Timestamp::from_unix_millis(record.timestamp_ms).unwrap_or_else(crate::ingest_support::now)
}

/// The model: the valid records applied in logical order, one at a time, without faults.
#[derive(Clone, Debug)]
pub struct Model {
    /// Final state per batch, `root.version` zeroed (it counts commits, which depend on order).
    pub aggregates: BTreeMap<String, BatchAggregate>,
    pub outbox: BTreeSet<Uuid>,
    /// What each published message says (ordering key, topic, envelope without processing
    /// times): the run must publish the same figures, whatever its order and faults.
    pub published: BTreeMap<Uuid, (String, &'static str, serde_json::Value)>,
    pub markers: usize,
}

pub async fn model(scenario: &Scenario) -> Result<Model, String> {
    let store = InMemoryStore::new();
    let now = crate::ingest_support::now();
    for record in &scenario.in_order {
        let MskValue::Bytes(value) = &record.value else {
            return Err(format!("valid record without bytes: {record:?}"));
        };
        let consumed = ConsumedRecord {
            topic: &record.topic,
            value,
            record_time: record_time(record),
        };
        process_record(&store, consumed, now).await.map_err(|e| {
            format!(
                "the model cannot apply {}@{}: {e}",
                record.topic, record.offset
            )
        })?;
    }
    let aggregates = scenario
        .batches
        .iter()
        .filter_map(|b| store.aggregate(b))
        .map(|a| (a.batch_id().to_string(), a.without_versions()))
        .collect();
    Ok(Model {
        aggregates,
        outbox: store.outbox().iter().map(|m| m.event_id).collect(),
        published: published_content(&store.outbox()),
        markers: store.marker_count(),
    })
}
