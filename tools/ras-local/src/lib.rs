//! `ras-local`: the whole Result Aggregator pipeline on the local AWS-API server (moto), with
//! the functions' real handlers. See `docs/local.md`.
//!
//! * [`scenario`] — the Kafka-shaped scenario files (`events/scenarios/demo.json` built in).
//! * [`broker`] — the local Kafka broker: topics, the scenario's producer, the fetcher, the
//!   readers of the published topics.
//! * [`group`] — a consumer group's committed offsets (FindCoordinator, OffsetFetch,
//!   OffsetCommit on the Kafka protocol).
//! * [`esm`] — the MSK event-source emulator: the test kit's simulator fed from the broker.
//! * [`msk`] — Kafka records wrapped as Lambda's MSK event.
//! * [`pipeline`] — [`run_pipeline`]: ingest → outbox stream → relay → summary, as a
//!   [`PipelineReport`].
//! * [`stream`] — the outbox table's stream read with the DynamoDB Streams API, wrapped as the
//!   Lambda DynamoDB stream event.
//! * [`counter`] — SDK requests counted on the wire.
//! * [`resources`] — private copies of the tables and queues of `template.yaml`.
//! * [`template`] — `template.yaml` read: its tables, queues and the functions' variables.
//! * [`serve`] — the query API over the same tables, and `curl` examples.
//! * [`summary`] — the report as text.

pub mod broker;
pub mod counter;
pub mod esm;
pub mod group;
pub mod msk;
pub mod pipeline;
pub mod resources;
pub mod scenario;
pub mod serve;
pub mod stream;
pub mod summary;
pub mod template;

pub use counter::RequestCounter;
pub use pipeline::{run_pipeline, PipelineConfig, PipelineError, PipelineReport};
pub use scenario::Scenario;
