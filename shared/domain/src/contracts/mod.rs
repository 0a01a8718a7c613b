//! HuleEdu wire contracts: what we consume and what we publish, byte-compatible with the
//! reference service (ras-behaviour §1, §2, §5).

pub mod consumed;
pub mod decode;
pub mod enums;
pub mod envelope;
pub mod metadata;
pub mod published;
pub mod python_json;
pub mod timestamp;
pub mod topics;

pub use consumed::*;
pub use decode::{decode_record, DecodeError, EnvelopeIds, InboundEvent, InboundPayload};
pub use enums::*;
pub use envelope::{InboundEnvelope, OutboundEnvelope, SOURCE_SERVICE};
pub use metadata::{ErrorDetail, StorageReferenceMetadata, SystemProcessingMetadata};
pub use published::*;
pub use python_json::to_python_json;
pub use timestamp::Timestamp;
pub use topics::{ConsumedTopic, PublishedTopic};
