#!/usr/bin/env bash
# The project's test command.
#
#   scripts/test.sh [extra cargo test arguments...]
#
# 1. infra/local/setup.sh: project-local virtualenv .venv with moto[server] (pinned; skipped when present)
# 2. infra/local/start.sh --reset: local AWS-API server on 127.0.0.1:${RAS_LOCAL_PORT:-4566}, with the
#    tables and queues of template.yaml, empty
# 3. infra/local/env.sh: exports AWS_ENDPOINT_URL, test credentials, region, table names, queue URLs
# 4. infra/local/kafka-setup.sh: the local Kafka broker (tansu, pinned; built once per machine
#    into ~/.cache/ras-tools, ~8 min the first time) and aiokafka (the tests' second client)
# 5. infra/local/kafka-start.sh: the broker on 127.0.0.1:${RAS_KAFKA_PORT:-9092} with the
#    published topics; exports RAS_KAFKA_BOOTSTRAP
# 6. cargo test --workspace --all-targets
# Both servers are stopped on exit, whatever happens. The exit code is cargo's.
# Needs: a Rust toolchain, python3 with venv and pip, curl, and access to PyPI and crates.io on
# the first run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

for tool in cargo python3 curl; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
        echo "test: ${tool} is required but not on PATH" >&2
        exit 1
    fi
done

"${ROOT}/infra/local/setup.sh"
"${ROOT}/infra/local/kafka-setup.sh"

trap '"${ROOT}/infra/local/stop.sh" || true; "${ROOT}/infra/local/kafka-stop.sh" || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${ROOT}/infra/local/start.sh" --reset
# shellcheck source-path=SCRIPTDIR/.. source=infra/local/env.sh
source "${ROOT}/infra/local/env.sh"
echo "test: AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}"
"${ROOT}/infra/local/kafka-start.sh"
# shellcheck source=/dev/null
source "${RAS_LOCAL_STATE_DIR:-${ROOT}/.local}/kafka.env"
echo "test: RAS_KAFKA_BOOTSTRAP=${RAS_KAFKA_BOOTSTRAP}"

status=0
cargo test --workspace --all-targets "$@" || status=$?
echo "test: cargo test exited with ${status}"
exit "${status}"
