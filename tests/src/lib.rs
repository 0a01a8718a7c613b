//! Shared helpers for the integration tests.

// Ingest function tests (issue 3): local AWS clients, MSK events, fixtures in fresh scopes,
// failure injection.
pub mod faults;
pub mod huleedu;
pub mod ingest_support;
pub mod kafka;
pub mod local_aws;
pub mod msk;

// Query API tests (issue 5): the router over the local store, golden scenario.
pub mod query_api;

// Relay and operations tests (issue 4): outbox stream, FIFO test queues, consumer.
pub mod relay_support;

// Lambda event source mappings (MSK, DynamoDB streams) with AWS's documented semantics
// (issue 11): the test kit's simulator, shared with the local pipeline and the benches.
pub use ras_test_kit::event_source;

// Reliability suite (issue 7): seeded faults at every port, simulated event sources, model.
pub mod reliability;
