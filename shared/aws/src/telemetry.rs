//! Observability shared by the functions: JSON logs through `tracing`, and CloudWatch
//! metrics in the embedded metric format (EMF) — one JSON line on stdout per metric set, which
//! the Lambda log pipeline turns into metrics without any API call.

use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// JSON logs, level from `RUST_LOG` (default `info`). No timestamp: CloudWatch adds one. A
/// line logged within a span carries the innermost span's fields under `span` (ingest: the
/// record's topic, partition, offset, event key, batch id, correlation id).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// CloudWatch namespace of every metric we emit.
pub const NAMESPACE: &str = "HuleEdu/ResultAggregator";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    None,
}

impl Unit {
    fn as_str(&self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One EMF document: a set of dimensions and the metrics recorded under them. Values of one
/// name accumulate into a list (EMF accepts arrays of up to 100 values).
#[derive(Clone, Debug)]
pub struct MetricSet {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, Vec<f64>)>,
    properties: Map<String, Value>,
}

impl MetricSet {
    pub fn new(dimensions: &[(&str, &str)]) -> Self {
        MetricSet {
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    pub fn record(&mut self, name: &str, unit: Unit, value: f64) -> &mut Self {
        match self.metrics.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, _, values)) if values.len() < 100 => values.push(value),
            Some(_) => {}
            None => self.metrics.push((name.to_string(), unit, vec![value])),
        }
        self
    }

    pub fn count(&mut self, name: &str, value: u64) -> &mut Self {
        self.record(name, Unit::Count, value as f64)
    }

    /// A searchable, non-metric property (e.g. a request id).
    pub fn property(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.properties.insert(key.to_string(), value.into());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The EMF JSON document.
    pub fn to_json(&self) -> Value {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut doc = self.properties.clone();
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dimension_names], "Metrics": definitions}],
            }),
        );
        for (k, v) in &self.dimensions {
            doc.insert(k.clone(), json!(v));
        }
        for (name, _, values) in &self.metrics {
            let value = if values.len() == 1 {
                json!(values[0])
            } else {
                json!(values)
            };
            doc.insert(name.clone(), value);
        }
        Value::Object(doc)
    }

    /// Print the document on its own stdout line (where Lambda's log agent picks EMF up).
    pub fn flush(&mut self) {
        if !self.metrics.is_empty() {
            println!("{}", self.to_json());
            self.metrics.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let mut m = MetricSet::new(&[("Function", "ingest"), ("Topic", "t")]);
        m.count("RecordsProcessed", 2)
            .count("RecordsProcessed", 1)
            .record("LatencyMs", Unit::Milliseconds, 4.5);
        m.property("requestId", "r-1");
        let doc = m.to_json();
        let aws = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(aws["Namespace"], NAMESPACE);
        assert_eq!(aws["Dimensions"], json!([["Function", "Topic"]]));
        assert_eq!(
            aws["Metrics"][0],
            json!({"Name": "RecordsProcessed", "Unit": "Count"})
        );
        assert_eq!(doc["RecordsProcessed"], json!([2.0, 1.0]));
        assert_eq!(doc["LatencyMs"], json!(4.5));
        assert_eq!(doc["Function"], "ingest");
        assert_eq!(doc["requestId"], "r-1");
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 0);
    }
}
