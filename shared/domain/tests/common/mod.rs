//! Fixture access for the domain crate's tests. The HuleEdu fixtures are copied into the repo
//! at `tests/fixtures/huleedu/` (exact Kafka value bytes + `.meta.json`).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/huleedu")
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture_bytes(name)).unwrap()
}

pub const CONSUMED: [&str; 6] = [
    "huleedu.batch.essays.registered.v1",
    "huleedu.els.essay.slot.assigned.v1",
    "huleedu.els.batch.phase.outcome.v1",
    "huleedu.essay.spellcheck.results.v1",
    "huleedu.assessment.result.published.v1",
    "huleedu.batch.pipeline.completed.v1",
];

/// Compare two JSON texts as values *and* key order, recursively.
pub fn assert_same_json_with_order(actual: &str, expected: &str) {
    let a: serde_json::Value = serde_json::from_str(actual).unwrap();
    let e: serde_json::Value = serde_json::from_str(expected).unwrap();
    assert_eq!(
        a, e,
        "JSON values differ\nactual:   {actual}\nexpected: {expected}"
    );
    assert_key_order(&a, &e, "$");
}

fn assert_key_order(a: &serde_json::Value, e: &serde_json::Value, path: &str) {
    match (a, e) {
        (serde_json::Value::Object(a), serde_json::Value::Object(e)) => {
            let ak: Vec<_> = a.keys().collect();
            let ek: Vec<_> = e.keys().collect();
            assert_eq!(ak, ek, "key order differs at {path}");
            for (k, v) in a {
                assert_key_order(v, &e[k], &format!("{path}.{k}"));
            }
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(e)) => {
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_key_order(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}
