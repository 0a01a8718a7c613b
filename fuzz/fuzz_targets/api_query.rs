//! The list route's query-string parser: any string is a valid query within the limits or one
//! of the three 400 errors.
#![no_main]

use api::errors::ApiError;
use api::list_query::{parse_list_query, MAX_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    match parse_list_query(Some(&raw)) {
        Ok(q) => assert!((1..=MAX_LIMIT).contains(&q.limit), "{raw:?} → {q:?}"),
        Err(e) => assert!(
            matches!(
                e,
                ApiError::InvalidLimit | ApiError::InvalidOffset | ApiError::InvalidStatus
            ),
            "{raw:?} → {e:?}"
        ),
    }
});
