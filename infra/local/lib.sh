# Sourced by start.sh and kafka-start.sh.

# wait_for_server PREFIX WHAT PID PID_FILE LOG_FILE TIMEOUT_S
# Waits for a server just started in the background (PID) until the caller's `answering`
# function succeeds, polling every 0.1 s. When the process exits first, or TIMEOUT_S pass, it
# shows the last lines of LOG_FILE, stops the process, removes PID_FILE and exits 1.
wait_for_server() {
    local prefix=$1 what=$2 pid=$3 pid_file=$4 log_file=$5 timeout_s=$6
    local deadline=$((SECONDS + timeout_s))
    until answering; do
        if ! kill -0 "${pid}" 2>/dev/null; then
            echo "${prefix}: ${what} exited during start-up; last log lines:" >&2
            tail -n 20 "${log_file}" >&2 || true
            rm -f "${pid_file}"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "${prefix}: ${what} did not answer within ${timeout_s}s; last log lines:" >&2
            tail -n 20 "${log_file}" >&2 || true
            kill "${pid}" 2>/dev/null || true
            rm -f "${pid_file}"
            exit 1
        fi
        sleep 0.1
    done
    echo "${prefix}: ${what} up (pid ${pid})"
}
