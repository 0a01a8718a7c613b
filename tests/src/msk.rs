//! Kafka records wrapped into the event Lambda's MSK event source delivers (moved to the local
//! pipeline's library, `ras_local::msk`, which feeds scenarios the same way).

pub use ras_local::msk::*;
