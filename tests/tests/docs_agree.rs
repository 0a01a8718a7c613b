//! Where the docs describe one behaviour in two places they must agree with each other and with
//! the code, and the tests they cite as evidence must exist (issue 11, item 6). Reads files
//! only; needs no server.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every `.rs` file of the workspace's crates: (path relative to the repository, content).
fn rust_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    walk(&path, root, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                if let (Ok(rel), Ok(text)) =
                    (path.strip_prefix(root), std::fs::read_to_string(&path))
                {
                    out.push((rel.to_string_lossy().replace('\\', "/"), text));
                }
            }
        }
    }
    let root = repo();
    let mut out = Vec::new();
    for dir in ["functions", "shared", "tests", "tools"] {
        walk(&root.join(dir), &root, &mut out);
    }
    out
}

/// The `<file>.rs::<test>` references in backticks of a document (abbreviated ones, with `…`,
/// are skipped).
fn cited_tests(doc: &str) -> Vec<(String, String)> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| {
            let (file, name) = code.split_once(".rs::")?;
            let ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            ok.then(|| (format!("{file}.rs"), name.to_string()))
        })
        .collect()
}

/// Paragraphs and list items of a markdown text.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let starts_item = line.starts_with("* ") || line.starts_with("- ") || line.starts_with('|');
        if line.trim().is_empty() || starts_item {
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        }
        current.push_str(line);
        current.push(' ');
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Every `file.rs::test` a document cites names a function of that file.
#[test]
fn tests_cited_by_the_docs_exist() {
    let sources = rust_sources();
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in [
        "docs/deviations.md",
        "docs/ingest.md",
        "docs/relay.md",
        "docs/operations.md",
        "docs/api.md",
    ] {
        for (file, name) in cited_tests(&read(doc)) {
            checked += 1;
            let found = sources.iter().any(|(path, text)| {
                (path == &file || path.ends_with(&format!("/{file}")))
                    && text.contains(&format!("fn {name}("))
            });
            if !found {
                missing.push(format!("{doc}: {file}::{name}"));
            }
        }
    }
    assert!(checked > 5, "too few citations found: {checked}");
    assert!(
        missing.is_empty(),
        "cited tests that do not exist: {missing:#?}"
    );
}

/// docs/ingest.md ("Known limits") and docs/relay.md describe a message over SQS's 1 MiB the
/// way the relay handles it: refused as `MessageTooLarge`, parked and acknowledged (never
/// dead-lettered by the relay); both cite the test that pins it.
#[test]
fn oversize_messages_are_described_as_the_relay_handles_them() {
    assert!(
        read("functions/relay/src/dispatch.rs").contains("\"MessageTooLarge\","),
        "the relay's code for an oversize message changed: update the docs and this test"
    );
    let pinning = "functions/relay/tests/handler.rs::a_message_too_large_for_the_queue_is_parked_and_the_shard_moves_on";
    for doc in ["docs/ingest.md", "docs/relay.md"] {
        let text = read(doc);
        assert!(
            text.contains("`MessageTooLarge`"),
            "{doc}: names no `MessageTooLarge`"
        );
        assert!(text.contains("park"), "{doc}: does not say it is parked");
        for p in paragraphs(&text) {
            let lower = p.to_lowercase();
            let about_oversize = lower.contains("oversize")
                || lower.contains("messagetoolarge")
                || lower.contains("beyond 1 mib");
            assert!(
                !(about_oversize && lower.contains("dead-letters")),
                "{doc}: says an oversize message is dead-lettered: {p}"
            );
        }
    }
    assert!(
        read("docs/ingest.md").contains(pinning),
        "docs/ingest.md: does not cite {pinning}"
    );
}

/// `payload_conflict` (same event id, other bytes → dead letter; the reference keys on event
/// type + hash of id and data) is listed in docs/deviations.md with its tests.
#[test]
fn payload_conflict_is_a_documented_deviation() {
    let text = read("docs/deviations.md");
    let section = text
        .split("\n### ")
        .find(|s| s.contains("`payload_conflict`"))
        .expect("docs/deviations.md: no section on `payload_conflict`");
    for needle in [
        "event type",
        "`event_id` + `data`",
        "ingest_duplicates.rs::the_same_event_id_with_another_payload_is_dead_lettered_as_a_conflict",
        "rules.rs::same_event_id_with_other_envelope_bytes_is_a_conflict_not_a_duplicate",
    ] {
        assert!(
            section.contains(needle),
            "the `payload_conflict` section does not mention {needle:?}"
        );
    }
}
