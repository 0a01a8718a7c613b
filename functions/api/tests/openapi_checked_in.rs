//! `docs/openapi.json` is the document the code generates (and serves).

#[test]
fn checked_in_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let checked_in =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        checked_in == api::openapi::document_json(),
        "docs/openapi.json is stale; regenerate it: cargo run -p api -- --print-openapi > docs/openapi.json"
    );
}
