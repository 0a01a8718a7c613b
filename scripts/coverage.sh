#!/usr/bin/env bash
# Line coverage of the workspace's unit and integration tests (cargo-llvm-cov, LLVM
# source-based coverage).
#
#   scripts/coverage.sh [extra cargo llvm-cov arguments...]
#
# 1. Installs what it needs, pinned and project-locally: the rustup component
#    llvm-tools-preview, and cargo-llvm-cov into .tools/ (~1 min on the first run).
# 2. The local AWS-API server: reused when AWS_ENDPOINT_URL is set (e.g. after
#    `source infra/local/env.sh`; its state is not reset), otherwise started like scripts/test.sh
#    does (infra/local/setup.sh, start.sh --reset, env.sh) and stopped on exit.
# 3. `cargo llvm-cov --workspace --no-fail-fast` (lib, bin and integration tests; no benches)
#    in its own target directory (target/llvm-cov-target), then the reports:
#    target/llvm-cov/summary.txt (per file), target/llvm-cov/crates.txt (per crate and total),
#    target/llvm-cov/lcov.info and target/llvm-cov/html/.
# Test code (tests/ directories, the ras-tests crate, benches) is not counted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

CARGO_LLVM_COV_VERSION="0.9.1"
TOOLS="${ROOT}/.tools"
OUT="${ROOT}/target/llvm-cov"
IGNORE='(^|/)(tests|benches)/|/\.cargo/registry/|/rustc/'
export PATH="${TOOLS}/bin:${PATH}"

if command -v rustup >/dev/null 2>&1; then
    rustup component add llvm-tools-preview >/dev/null
fi
if ! cargo llvm-cov --version 2>/dev/null | grep -q " ${CARGO_LLVM_COV_VERSION}\$"; then
    echo "coverage: installing cargo-llvm-cov ${CARGO_LLVM_COV_VERSION} into ${TOOLS}" >&2
    CARGO_TARGET_DIR="${TOOLS}/build" cargo install cargo-llvm-cov \
        --version "${CARGO_LLVM_COV_VERSION}" --locked --root "${TOOLS}"
fi

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    "${ROOT}/infra/local/setup.sh"
    trap '"${ROOT}/infra/local/stop.sh" || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    "${ROOT}/infra/local/start.sh" --reset
    # shellcheck source-path=SCRIPTDIR/.. source=infra/local/env.sh
    source "${ROOT}/infra/local/env.sh"
fi
echo "coverage: AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}" >&2

mkdir -p "${OUT}"
status=0
cargo llvm-cov --workspace --no-report --no-fail-fast "$@" || status=$?
echo "coverage: tests exited with ${status}" >&2

cargo llvm-cov report --ignore-filename-regex "${IGNORE}" | tee "${OUT}/summary.txt" >/dev/null
cargo llvm-cov report --ignore-filename-regex "${IGNORE}" --lcov --output-path "${OUT}/lcov.info"
cargo llvm-cov report --ignore-filename-regex "${IGNORE}" --html --output-dir "${OUT}"
cargo llvm-cov report --ignore-filename-regex "${IGNORE}" --json --summary-only \
    --output-path "${OUT}/summary.json"

# Per crate: the files' line counts summed by crate directory.
python3 - "${OUT}/summary.json" "${ROOT}" >"${OUT}/crates.txt" <<'PY'
import json, sys
from collections import defaultdict

summary, root = sys.argv[1], sys.argv[2].rstrip("/") + "/"
data = json.load(open(summary))["data"][0]
crates = defaultdict(lambda: [0, 0])
for f in data["files"]:
    path = f["filename"].removeprefix(root)
    parts = path.split("/")
    crate = "/".join(parts[:2]) if parts[0] in ("shared", "functions", "tools") else parts[0]
    lines = f["summary"]["lines"]
    crates[crate][0] += lines["covered"]
    crates[crate][1] += lines["count"]
print(f"{'crate':<22} {'lines':>7} {'covered':>8} {'line %':>7}")
for crate, (covered, count) in sorted(crates.items()):
    print(f"{crate:<22} {count:>7} {covered:>8} {100 * covered / max(count, 1):>6.1f}%")
t = data["totals"]["lines"]
print(f"{'TOTAL':<22} {t['count']:>7} {t['covered']:>8} {t['percent']:>6.1f}%")
PY
cat "${OUT}/crates.txt"
echo "coverage: per-file summary ${OUT}/summary.txt, HTML ${OUT}/html/index.html" >&2
exit "${status}"
