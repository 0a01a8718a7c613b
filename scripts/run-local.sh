#!/usr/bin/env bash
# The whole pipeline locally, on a fresh machine (docs/local.md).
#
#   scripts/run-local.sh [--scenario FILE] [--api-addr ADDR] [--port N] [--no-serve] [ras-local options...]
#
# 1. infra/local/setup.sh: project-local virtualenv .venv with moto[server] (pinned; skipped when present)
# 2. infra/local/start.sh --reset: a local AWS-API server of its own on 127.0.0.1:${RAS_LOCAL_PORT:-4566}
#    (--port N overrides), state in ${RAS_LOCAL_STATE_DIR:-.local/run-local}, with the tables and
#    queues of template.yaml, empty; stopped again on exit
# 3. infra/local/env.sh: the environment of that server
# 4. cargo run -p ras-local: the built-in scenario (events/scenarios/demo.json, or --scenario FILE)
#    through the real ingest handler, the outbox stream through the real relay handler, a
#    summary; then the query API on ${--api-addr:-127.0.0.1:4003} with example curl lines, until
#    Ctrl-C (--no-serve: exit after the summary).
# Other options go to ras-local (`cargo run -p ras-local -- --help`).
# Needs: a Rust toolchain, python3 with venv and pip, curl, and access to PyPI on the first run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

args=()
while (($# > 0)); do
    case "$1" in
        --port)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "run-local: --port needs a number" >&2; exit 2; }
            export RAS_LOCAL_PORT="$2"
            shift 2
            ;;
        --port=*)
            value="${1#--port=}"
            [[ "${value}" =~ ^[0-9]+$ ]] || { echo "run-local: --port needs a number" >&2; exit 2; }
            export RAS_LOCAL_PORT="${value}"
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done

for tool in cargo python3 curl; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
        echo "run-local: ${tool} is required but not on PATH" >&2
        exit 1
    fi
done

# A server and state of its own: never the one of scripts/test.sh / a developer's .local.
export RAS_LOCAL_STATE_DIR="${RAS_LOCAL_STATE_DIR:-.local/run-local}"

"${ROOT}/infra/local/setup.sh"

trap '"${ROOT}/infra/local/stop.sh" || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${ROOT}/infra/local/start.sh" --reset
# shellcheck source-path=SCRIPTDIR/.. source=infra/local/env.sh
source "${ROOT}/infra/local/env.sh"
echo "run-local: AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}"

# The dev profile: a release build of the SDKs takes minutes.
status=0
cargo run --quiet -p ras-local -- "${args[@]}" || status=$?
exit "${status}"
