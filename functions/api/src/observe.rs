//! Request observability: the caller's `X-Correlation-ID` (or a generated one) on every log
//! line of the request, one JSON access-log line per request, and CloudWatch EMF metrics —
//! `Requests` (count) and `LatencyMs` per route and status code.

use crate::errors::InternalDetail;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use ras_aws::telemetry::{MetricSet, Unit};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{error, info};

pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
/// Longest caller-supplied correlation id we keep (longer or non-printable ones are replaced).
const MAX_CORRELATION_ID_LEN: usize = 128;
/// Route dimension of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The correlation id of the current request (request extension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrelationId(pub String);

/// The route template that served a response (response extension set by [`tag_route`]).
#[derive(Clone, Debug)]
struct RouteTag(String);

/// Where EMF documents go.
#[derive(Clone, Debug, Default)]
pub enum MetricsSink {
    /// One JSON line per request on stdout, where the Lambda log agent picks EMF up.
    #[default]
    Stdout,
    Discard,
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<Value>>>),
}

impl MetricsSink {
    pub fn memory() -> (Self, Arc<Mutex<Vec<Value>>>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        (MetricsSink::Memory(store.clone()), store)
    }

    fn emit(&self, metrics: &mut MetricSet) {
        match self {
            MetricsSink::Stdout => metrics.flush(),
            MetricsSink::Discard => {}
            MetricsSink::Memory(store) => {
                let doc = metrics.to_json();
                store
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(doc);
            }
        }
    }
}

fn correlation_id_of(req: &Request) -> String {
    req.headers()
        .get(CORRELATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_CORRELATION_ID_LEN
                && v.chars().all(|c| c.is_ascii_graphic())
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Innermost layer of every route: records which route template served the response.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTag(route));
    }
    response
}

/// Outermost layer: correlation id, access log, metrics.
pub async fn observe(State(sink): State<MetricsSink>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let correlation_id = correlation_id_of(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    req.extensions_mut()
        .insert(CorrelationId(correlation_id.clone()));

    let mut response = next.run(req).await;

    let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteTag>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| UNMATCHED_ROUTE.into());
    if let Some(InternalDetail(detail)) = response.extensions().get::<InternalDetail>() {
        error!(correlation_id = %correlation_id, %method, %path, %route, status, error = %detail, "request failed");
    }
    info!(correlation_id = %correlation_id, %method, %path, %route, status, latency_ms, "request");

    let status_text = status.to_string();
    let mut metrics = MetricSet::new(&[
        ("Function", "api"),
        ("Route", route.as_str()),
        ("StatusCode", &status_text),
    ]);
    metrics
        .count("Requests", 1)
        .record("LatencyMs", Unit::Milliseconds, latency_ms);
    // Authenticated with a key SSM could not refresh (crate::auth): 1 per such request.
    if response
        .extensions()
        .get::<crate::auth::StaleApiKey>()
        .is_some()
    {
        metrics.count("ApiKeyStale", 1);
    }
    metrics
        .property("correlation_id", correlation_id.clone())
        .property("method", method.as_str());
    sink.emit(&mut metrics);

    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_ID_HEADER, value);
    }
    response
}
