#!/usr/bin/env bash
# Stop the local AWS-API server started by infra/local/start.sh (by its PID file; only a
# process that is a moto server is signalled) and remove its env file. State directory:
# ${RAS_LOCAL_STATE_DIR:-.local}, as for start.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${RAS_LOCAL_STATE_DIR:-.local}"
[[ "${STATE_DIR}" == /* ]] || STATE_DIR="${ROOT}/${STATE_DIR}"
PID_FILE="${STATE_DIR}/moto.pid"
ENV_FILE="${STATE_DIR}/env" # written by create_resources.py; stale once the server is gone
STOP_TIMEOUT_S=10

if [[ ! -f "${PID_FILE}" ]]; then
    rm -f "${ENV_FILE}"
    echo "stop: no PID file (${PID_FILE}); nothing to stop"
    exit 0
fi

pid="$(cat "${PID_FILE}")"
if [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null \
    && tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q moto_server; then
    kill "${pid}" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "${pid}" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "stop: pid ${pid} still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
            kill -9 "${pid}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    echo "stop: stopped moto server (pid ${pid})"
else
    echo "stop: pid ${pid} from ${PID_FILE} is not a running moto server; removing the stale PID file"
fi
rm -f "${PID_FILE}" "${ENV_FILE}"
