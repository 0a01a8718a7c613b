//! A whole MSK event as Lambda delivers it (JSON; base64 values and keys, signed-byte header
//! arrays, millisecond timestamps) through `parse_event` and the handler over the in-memory
//! store with the fixture batch registered. No panic; with a store and a dead-letter queue that
//! never fail, every record is applied, a duplicate or dead-lettered, and the partial-batch
//! response is empty.
#![no_main]

use ingest::handler::{process_event, Deps, HandlerSettings};
use ingest::kafka::{parse_event, partitions};
use ingest::retry::RetryPolicy;
use libfuzzer_sys::fuzz_target;
use ras_fuzz::{prepared_store, runtime, CountingDeadLetters};
use serde_json::Value;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(event) = parse_event(raw) else {
        return;
    };
    // The adaptation on its own: every record's value either decodes from base64 or is
    // reported as invalid / missing, and offsets come out sorted per partition.
    for batch in partitions(event.clone()) {
        assert!(batch.records.windows(2).all(|w| w[0].offset <= w[1].offset));
        for record in &batch.records {
            let _ = record.value_bytes();
        }
    }
    let settings = HandlerSettings {
        partition_concurrency: 2,
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            budget: Duration::from_millis(50),
        },
        ..HandlerSettings::default()
    };
    let deps = Deps::new(prepared_store(1), CountingDeadLetters::default()).with_settings(settings);
    let report = runtime().block_on(process_event(&deps, event, None));
    let response = report.response();
    assert!(
        response.is_success(),
        "in-memory ports never fail, yet: {response:?}"
    );
});
