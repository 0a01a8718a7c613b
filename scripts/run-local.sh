#!/usr/bin/env bash
# The whole pipeline locally, on a fresh machine (docs/local.md).
#
#   scripts/run-local.sh [--scenario FILE] [--api-addr ADDR] [--port N] [--kafka-port N] [--no-serve] [ras-local options...]
#
# 1. infra/local/setup.sh: project-local virtualenv .venv with moto[server] (pinned; skipped when present)
# 2. infra/local/kafka-setup.sh: the local Kafka broker, tansu (pinned; built once per machine,
#    ~8 min the first time), linked as .tools/tansu
# 3. infra/local/start.sh --reset: a local AWS-API server of its own on 127.0.0.1:${RAS_LOCAL_PORT:-4566}
#    (--port N overrides), state in ${RAS_LOCAL_STATE_DIR:-.local/run-local}, with the tables and
#    queues of template.yaml, empty; stopped again on exit
# 4. infra/local/kafka-start.sh: the broker beside it on 127.0.0.1:${RAS_KAFKA_PORT:-9092}
#    (--kafka-port N overrides), in memory, with the three published topics; then the six
#    consumed topics, 3 partitions each; stopped again on exit
# 5. cargo run -p ras-local: produces the scenario (events/scenarios/demo.json, or --scenario
#    FILE) to the consumed topics, keyed as HuleEdu's producers key them; the MSK event-source
#    emulator consumes them as the consumer group and invokes the real ingest handler; the
#    outbox stream goes through the real relay handler to the Kafka topics and SQS queues;
#    a summary (with what a Kafka consumer reads back from the published topics); then the
#    query API on ${--api-addr:-127.0.0.1:4003} with example curl lines, until Ctrl-C
#    (--no-serve: exit after the summary).
# Other options go to ras-local (`cargo run -p ras-local -- --help`).
# Needs: a Rust toolchain, python3 with venv and pip, curl, and access to PyPI and crates.io on
# the first run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

usage() {
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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
        --kafka-port)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "run-local: --kafka-port needs a number" >&2; exit 2; }
            export RAS_KAFKA_PORT="$2"
            shift 2
            ;;
        --kafka-port=*)
            value="${1#--kafka-port=}"
            [[ "${value}" =~ ^[0-9]+$ ]] || { echo "run-local: --kafka-port needs a number" >&2; exit 2; }
            export RAS_KAFKA_PORT="${value}"
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
"${ROOT}/infra/local/kafka-setup.sh"

trap '"${ROOT}/infra/local/stop.sh" || true; "${ROOT}/infra/local/kafka-stop.sh" || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${ROOT}/infra/local/start.sh" --reset
# shellcheck source-path=SCRIPTDIR/.. source=infra/local/env.sh
source "${ROOT}/infra/local/env.sh"
echo "run-local: AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}"

# The broker keeps everything in memory: a broker this script started before is stopped, so
# every run starts with empty topics and no committed offsets.
"${ROOT}/infra/local/kafka-stop.sh" >/dev/null
"${ROOT}/infra/local/kafka-start.sh"
STATE_DIR="${RAS_LOCAL_STATE_DIR}"
[[ "${STATE_DIR}" == /* ]] || STATE_DIR="${ROOT}/${STATE_DIR}"
set -a
# shellcheck source=/dev/null
source "${STATE_DIR}/kafka.env"
set +a
# The six topics ingest consumes (template.yaml, HuleEduTopics), 3 partitions each, as on MSK
# (kafka-start.sh creates the three the relay publishes to).
CONSUMED_PARTITIONS=3
existing="$(cd /tmp && "${ROOT}/.tools/tansu/bin/tansu" topic list --broker "tcp://${RAS_KAFKA_BOOTSTRAP}")"
for topic in \
    huleedu.batch.essays.registered.v1 \
    huleedu.els.essay.slot.assigned.v1 \
    huleedu.els.batch.phase.outcome.v1 \
    huleedu.essay.spellcheck.results.v1 \
    huleedu.assessment.result.published.v1 \
    huleedu.batch.pipeline.completed.v1; do
    grep -qF "\"name\":\"${topic}\"" <<<"${existing}" && continue
    (cd /tmp && "${ROOT}/.tools/tansu/bin/tansu" topic create "${topic}" \
        --broker "tcp://${RAS_KAFKA_BOOTSTRAP}" --partitions "${CONSUMED_PARTITIONS}") >/dev/null
done
echo "run-local: RAS_KAFKA_BOOTSTRAP=${RAS_KAFKA_BOOTSTRAP} (6 consumed topics x ${CONSUMED_PARTITIONS} partitions)"

# The dev profile: a release build of the SDKs takes minutes.
status=0
cargo run --quiet -p ras-local -- "${args[@]}" || status=$?
exit "${status}"
