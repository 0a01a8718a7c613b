//! `decode_record` over every consumed topic (and an unknown one): any bytes give an event or
//! a `DecodeError`, never a panic; a decoded event satisfies what the rules rely on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ras_domain::contracts::{decode::MAX_ID_LEN, decode_record, ConsumedTopic};

fuzz_target!(|data: &[u8]| {
    let Some((topic, _, value)) = ras_fuzz::split_record_input(data) else {
        return;
    };
    match decode_record(topic, value) {
        Ok(event) => {
            assert_eq!(event.topic.name(), topic);
            let batch = event.batch_id();
            assert!(
                !batch.is_empty() && batch.len() <= MAX_ID_LEN,
                "decoded batch id {batch:?}"
            );
        }
        Err(e) => {
            // Every error has a stable kind; an unknown topic is reported as such.
            let kind = e.kind();
            assert!(!kind.is_empty());
            if ConsumedTopic::from_name(topic).is_none() {
                assert_eq!(kind, "unknown_topic");
            }
            let _ = e.to_string();
        }
    }
});
