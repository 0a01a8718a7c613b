//! The Result Aggregator's domain core.
//!
//! * [`contracts`] — HuleEdu wire contracts (consumed and published events).
//! * [`model`] — the batch aggregate: batch root, essays, phase outcomes, CJ jobs.
//! * [`rules`] — `apply(aggregate, event) -> Plan`: how each event changes state and what it emits.
//! * [`projection`] — derived views: per-essay phase status, phase summaries, completion, notifications.
//! * [`facts`] — what the projection reads: a stored aggregate, or the copy-on-write draft the
//!   rules build.
//! * [`plan`] — the state changes and outbox messages one event produces.
//! * [`ports`] — the traits the functions are written against; adapters live in `ras-aws`.
//! * [`service`] — the ingest use case over the ports: record → plan → atomic commit.
//!
//! No AWS SDK here: everything is pure and unit-tested with in-memory fakes.

pub mod contracts;
pub mod facts;
pub mod ids;
pub mod model;
pub mod plan;
pub mod ports;
pub mod projection;
pub mod rules;
pub mod service;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
