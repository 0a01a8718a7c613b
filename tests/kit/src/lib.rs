//! `ras-test-kit`: what the tests (`tests/`), the local pipeline (`tools/ras-local`) and the
//! benches share without depending on one another.
//!
//! * [`event_source`] — Lambda's event source mappings for Amazon MSK and DynamoDB streams,
//!   simulated with AWS's documented semantics, each rule with its source (issue 11).

pub mod event_source;
