//! AWS adapters for the ports of `ras-domain`.

pub mod config;
pub mod dead_letter;
pub mod dynamo;
#[cfg(feature = "kafka")]
pub mod kafka_publisher;
#[cfg(feature = "kafka")]
pub mod msk_iam;
pub mod parking;
pub mod routing;
pub mod runtime;
pub mod sqs_publisher;
pub mod telemetry;
