#!/usr/bin/env bash
# Start the local Kafka-compatible broker (tansu, in-memory storage) in the background and
# create the topics the relay publishes to (3 partitions each).
#
#   infra/local/kafka-start.sh
#
# Port: ${RAS_KAFKA_PORT:-9092} on 127.0.0.1. State directory: ${RAS_LOCAL_STATE_DIR:-.local}
# (relative to the repository root unless absolute): log tansu.log, PID tansu.pid, and
# kafka.env (RAS_KAFKA_BOOTSTRAP=127.0.0.1:<port>, plaintext, both routes). A broker already started by this script
# (PID file, process alive, port accepting connections) is reused; its topics are created only
# if missing. Everything is in memory: a restart starts empty.
# Needs infra/local/kafka-setup.sh to have run (.tools/tansu/bin/tansu).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=infra/local/lib.sh
source "${ROOT}/infra/local/lib.sh"
PORT="${RAS_KAFKA_PORT:-9092}"
BOOTSTRAP="127.0.0.1:${PORT}"
STATE_DIR="${RAS_LOCAL_STATE_DIR:-.local}"
[[ "${STATE_DIR}" == /* ]] || STATE_DIR="${ROOT}/${STATE_DIR}"
PID_FILE="${STATE_DIR}/tansu.pid"
LOG_FILE="${STATE_DIR}/tansu.log"
ENV_FILE="${STATE_DIR}/kafka.env"
TANSU="${ROOT}/.tools/tansu/bin/tansu"
START_TIMEOUT_S=30
PARTITIONS=3
TOPICS=(
    huleedu.ras.batch.results.ready.v1
    huleedu.ras.batch.assessment.completed.v1
    huleedu.notification.teacher.requested.v1
)

for arg in "$@"; do
    case "${arg}" in
        -h | --help)
            sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "kafka-start: unknown argument: ${arg}" >&2
            exit 2
            ;;
    esac
done

if [[ ! -x "${TANSU}" ]]; then
    echo "kafka-start: ${TANSU} not found; run infra/local/kafka-setup.sh first" >&2
    exit 1
fi

# The port accepts TCP connections (bash's /dev/tcp; no client needed).
answering() {
    (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null
}

# Prints the PID from the PID file if that process is alive and is a tansu broker.
our_pid() {
    local pid
    [[ -f "${PID_FILE}" ]] || return 1
    pid="$(cat "${PID_FILE}")"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q 'tansu broker' || return 1
    echo "${pid}"
}

mkdir -p "${STATE_DIR}"

if pid="$(our_pid)" && answering; then
    echo "kafka-start: reusing tansu broker (pid ${pid}) on ${BOOTSTRAP}"
else
    if pid="$(our_pid)"; then
        echo "kafka-start: tansu pid ${pid} from ${PID_FILE} does not accept connections on ${BOOTSTRAP}; stopping it"
        kill "${pid}" 2>/dev/null || true
        sleep 1
    fi
    rm -f "${PID_FILE}"
    if answering; then
        echo "kafka-start: something else already listens on ${BOOTSTRAP} (not started by this script)." >&2
        echo "kafka-start: stop it, or choose another port with RAS_KAFKA_PORT=<port>." >&2
        exit 1
    fi

    # tansu reads a .env from its working directory and the folders above it: run it from an
    # empty directory outside the repository.
    RUN_DIR="$(mktemp -d /tmp/ras-tansu-run.XXXXXX)"
    echo "kafka-start: starting tansu on ${BOOTSTRAP} (log ${LOG_FILE}, working directory ${RUN_DIR})"
    (
        cd "${RUN_DIR}"
        exec nohup env -u CLUSTER_ID -u LISTENER_URL -u ADVERTISED_LISTENER_URL -u STORAGE_ENGINE \
            "${TANSU}" broker --cluster-id ras-local \
            --listener-url "tcp://${BOOTSTRAP}" \
            --advertised-listener-url "tcp://${BOOTSTRAP}" \
            --storage-engine memory://tansu/ >>"${LOG_FILE}" 2>&1 </dev/null
    ) &
    pid=$!
    echo "${pid}" >"${PID_FILE}"
    echo "${RUN_DIR}" >"${STATE_DIR}/tansu.rundir" # removed by kafka-stop.sh

    # A taken port makes tansu exit with status 0: any exit is a failed start.
    wait_for_server kafka-start tansu "${pid}" "${PID_FILE}" "${LOG_FILE}" "${START_TIMEOUT_S}"
fi

# `tansu topic create` fails (status 1) for an existing topic: create only the missing ones.
existing="$(cd /tmp && "${TANSU}" topic list --broker "tcp://${BOOTSTRAP}" 2>/dev/null || true)"
for topic in "${TOPICS[@]}"; do
    if grep -qF "\"name\":\"${topic}\"" <<<"${existing}"; then
        echo "kafka-start: topic ${topic} exists"
        continue
    fi
    (cd /tmp && "${TANSU}" topic create "${topic}" --broker "tcp://${BOOTSTRAP}" --partitions "${PARTITIONS}") >/dev/null
    echo "kafka-start: created topic ${topic} (${PARTITIONS} partitions)"
done

# Sourced after infra/local/env.sh (which routes everything to SQS): the relay then publishes
# to both the local queues and this broker, in plaintext (no TLS, no IAM locally).
cat >"${ENV_FILE}" <<EOF_ENV
# Written by infra/local/kafka-start.sh; source it after infra/local/env.sh.
export RAS_KAFKA_BOOTSTRAP=${BOOTSTRAP}
export RAS_KAFKA_SECURITY=plaintext
export RAS_EVENTS_PUBLISH_TO=both
export RAS_NOTIFICATIONS_PUBLISH_TO=both
EOF_ENV
echo "kafka-start: ready; RAS_KAFKA_BOOTSTRAP=${BOOTSTRAP} (source ${ENV_FILE} after infra/local/env.sh)"
