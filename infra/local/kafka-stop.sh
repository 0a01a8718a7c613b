#!/usr/bin/env bash
# Stop the local Kafka broker started by infra/local/kafka-start.sh (by its PID file; only a
# process that is a tansu broker is signalled) and remove its kafka.env. State directory:
# ${RAS_LOCAL_STATE_DIR:-.local}, as for kafka-start.sh. The broker keeps everything in
# memory: its topics and records are gone afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${RAS_LOCAL_STATE_DIR:-.local}"
[[ "${STATE_DIR}" == /* ]] || STATE_DIR="${ROOT}/${STATE_DIR}"
PID_FILE="${STATE_DIR}/tansu.pid"
ENV_FILE="${STATE_DIR}/kafka.env"
STOP_TIMEOUT_S=10

if [[ ! -f "${PID_FILE}" ]]; then
    rm -f "${ENV_FILE}"
    echo "kafka-stop: no PID file (${PID_FILE}); nothing to stop"
    exit 0
fi

pid="$(cat "${PID_FILE}")"
if [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null \
    && tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q 'tansu broker'; then
    kill "${pid}" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "${pid}" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "kafka-stop: pid ${pid} still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
            kill -9 "${pid}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    echo "kafka-stop: stopped tansu (pid ${pid})"
else
    echo "kafka-stop: pid ${pid} from ${PID_FILE} is not a running tansu broker; removing the stale PID file"
fi
# The empty working directory kafka-start.sh made for the broker (only a /tmp/ras-tansu-run.* one).
RUN_DIR_FILE="${STATE_DIR}/tansu.rundir"
if [[ -f "${RUN_DIR_FILE}" ]]; then
    run_dir="$(cat "${RUN_DIR_FILE}")"
    [[ "${run_dir}" == /tmp/ras-tansu-run.* && -d "${run_dir}" ]] && rm -rf "${run_dir}"
    rm -f "${RUN_DIR_FILE}"
fi
rm -f "${PID_FILE}" "${ENV_FILE}"
