#!/usr/bin/env bash
# Start the local AWS-API server (moto) in the background and create the project's resources.
#
#   infra/local/start.sh [--reset]
#
# Port: ${RAS_LOCAL_PORT:-4566} on 127.0.0.1. State directory: ${RAS_LOCAL_STATE_DIR:-.local}
# (relative to the repository root unless absolute): log moto.log, PID moto.pid, environment env.
# A server already started by this script (PID file, process alive, port answering) is reused;
# --reset then wipes its state before the resources are created again.
# Needs infra/local/setup.sh to have run (creates .venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=infra/local/lib.sh
source "${ROOT}/infra/local/lib.sh"
PORT="${RAS_LOCAL_PORT:-4566}"
ENDPOINT="http://127.0.0.1:${PORT}"
STATE_DIR="${RAS_LOCAL_STATE_DIR:-.local}"
[[ "${STATE_DIR}" == /* ]] || STATE_DIR="${ROOT}/${STATE_DIR}"
PID_FILE="${STATE_DIR}/moto.pid"
LOG_FILE="${STATE_DIR}/moto.log"
MOTO="${ROOT}/.venv/bin/moto_server"
PY="${ROOT}/.venv/bin/python"
START_TIMEOUT_S=30

reset_args=()
for arg in "$@"; do
    case "${arg}" in
        --reset) reset_args=(--reset) ;;
        -h | --help)
            sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "start: unknown argument: ${arg}" >&2
            exit 2
            ;;
    esac
done

if [[ ! -x "${MOTO}" ]]; then
    echo "start: ${MOTO} not found; run infra/local/setup.sh first" >&2
    exit 1
fi

answering() {
    curl --noproxy '*' --silent --fail --output /dev/null --max-time 2 "${ENDPOINT}/moto-api/"
}

# Prints the PID from the PID file if that process is alive and is a moto server.
our_pid() {
    local pid
    [[ -f "${PID_FILE}" ]] || return 1
    pid="$(cat "${PID_FILE}")"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q moto_server || return 1
    echo "${pid}"
}

mkdir -p "${STATE_DIR}"

if pid="$(our_pid)" && answering; then
    echo "start: reusing moto server (pid ${pid}) on ${ENDPOINT}"
else
    if pid="$(our_pid)"; then
        echo "start: moto server pid ${pid} from ${PID_FILE} does not answer on ${ENDPOINT}; stopping it"
        kill "${pid}" 2>/dev/null || true
        sleep 1
    fi
    rm -f "${PID_FILE}"
    if answering; then
        echo "start: something else already answers on ${ENDPOINT} (not started by this script)." >&2
        echo "start: stop it, or choose another port with RAS_LOCAL_PORT=<port>." >&2
        exit 1
    fi

    echo "start: starting moto server on ${ENDPOINT} (log ${LOG_FILE})"
    nohup "${MOTO}" -H 127.0.0.1 -p "${PORT}" >>"${LOG_FILE}" 2>&1 </dev/null &
    pid=$!
    echo "${pid}" >"${PID_FILE}"

    wait_for_server start "moto server" "${pid}" "${PID_FILE}" "${LOG_FILE}" "${START_TIMEOUT_S}"
fi

AWS_ENDPOINT_URL="${ENDPOINT}" "${PY}" "${ROOT}/infra/local/create_resources.py" "${reset_args[@]}" \
    --env-file "${STATE_DIR}/env"
echo "start: ready; load the environment with: source infra/local/env.sh"
