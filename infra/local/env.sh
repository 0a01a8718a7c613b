#!/usr/bin/env bash
# The environment the tests use to reach the local AWS-API server:
#   AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_DEFAULT_REGION,
#   AWS_EC2_METADATA_DISABLED, RAS_STATE_TABLE, RAS_OUTBOX_TABLE, RAS_EVENTS_QUEUE_URL,
#   RAS_NOTIFICATIONS_QUEUE_URL, RAS_INGEST_DLQ_URL, RAS_RELAY_PARKED_QUEUE_URL, and the relay's
#   routes RAS_EVENTS_PUBLISH_TO=sqs, RAS_NOTIFICATIONS_PUBLISH_TO=sqs (source .local/kafka.env
#   afterwards to add the local Kafka broker: infra/local/kafka-start.sh)
# (the last ones are the functions' variables that template.yaml sets to !Ref of a table or queue).
#
#   source infra/local/env.sh        # export them into the current shell
#   eval "$(infra/local/env.sh)"     # same, from a subshell
#   infra/local/env.sh               # print them as `export NAME=value` lines
#
# Values come from .local/env (${RAS_LOCAL_STATE_DIR:-.local}/env, as for start.sh), which
# infra/local/create_resources.py (run by start.sh) writes with the queue URLs the server reported.

_ras_env_main() {
    local root state_dir env_file
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    state_dir="${RAS_LOCAL_STATE_DIR:-.local}"
    [[ "${state_dir}" == /* ]] || state_dir="${root}/${state_dir}"
    env_file="${state_dir}/env"
    if [[ ! -f "${env_file}" ]]; then
        echo "env.sh: ${env_file} not found; start the local server first: infra/local/start.sh" >&2
        return 1
    fi
    if [[ "${1}" == "print" ]]; then
        grep '^export ' "${env_file}"
    else
        # shellcheck source=/dev/null
        source "${env_file}"
    fi
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    set -euo pipefail
    _ras_env_main print
else
    if _ras_env_main export; then
        unset -f _ras_env_main
    else
        unset -f _ras_env_main
        return 1
    fi
fi
