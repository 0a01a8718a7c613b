//! The relay function: the outbox table's DynamoDB stream → the SQS FIFO queues.
//!
//! * [`stream`] — stream records → outbox messages; the partial batch response.
//! * [`dispatch`] — per-key ordering, batching across keys, stop-at-first-failure.
//! * [`batching`] — ≤ 10 entries and ≤ 1 MiB per `SendMessageBatch`.
//! * [`breaker`] — the circuit breaker around SQS (state only, never messages).
//! * [`handler`] — [`handler::Relay`], generic over the [`MessagePublisher`] port and a clock.
//! * [`config`] — environment, validated at init.
//! * [`sdk`] — the SQS client's retry settings.
//!
//! Design and operations: `docs/relay.md`.
//!
//! [`MessagePublisher`]: ras_domain::ports::MessagePublisher

pub mod batching;
pub mod breaker;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod handler;
pub mod sdk;
pub mod stream;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use handler::{NoParking, Relay, RelayError, RelayOutcome};
