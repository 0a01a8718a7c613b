//! `common_core.events.envelope.EventEnvelope`: lenient on the way in, exact on the way out.

use super::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// An envelope as consumed: only `event_type`, `source_service` and `data` are required
/// (ras-behaviour §1.1); unknown keys are ignored; `event_type` is never interpreted.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct InboundEnvelope<T> {
    #[serde(default)]
    pub event_id: Option<Uuid>,
    pub event_type: String,
    #[serde(default)]
    pub event_timestamp: Option<Timestamp>,
    pub source_service: String,
    #[serde(default)]
    pub schema_version: Option<i64>,
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
    #[serde(default)]
    pub data_schema_uri: Option<String>,
    pub data: T,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

/// An envelope as published: every key, in the reference's declaration order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundEnvelope<T> {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_timestamp: Timestamp,
    pub source_service: String,
    pub schema_version: i64,
    pub correlation_id: Uuid,
    pub data_schema_uri: Option<String>,
    pub data: T,
    pub metadata: Option<Map<String, Value>>,
}

/// `Settings.SERVICE_NAME` of the reference; the `source_service` of everything we publish.
pub const SOURCE_SERVICE: &str = "result_aggregator_service";

impl<T> OutboundEnvelope<T> {
    /// Domain events carry `metadata: {}` (trace keys would go there); notifications `null`.
    pub fn new(
        topic: &str,
        event_id: Uuid,
        event_timestamp: Timestamp,
        correlation_id: Uuid,
        data: T,
        metadata: Option<Map<String, Value>>,
    ) -> Self {
        OutboundEnvelope {
            event_id,
            event_type: topic.to_string(),
            event_timestamp,
            source_service: SOURCE_SERVICE.to_string(),
            schema_version: 1,
            correlation_id,
            data_schema_uri: None,
            data,
            metadata,
        }
    }
}
