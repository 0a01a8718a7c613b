#!/usr/bin/env bash
# SPEC §6 startup, size and memory figures of the three Lambda binaries, next to a minimal
# lambda_runtime function (tools/hello-lambda) built the same way (docs/benchmarks.md):
#
#   1. package size: each release binary zipped as `bootstrap` (zip -9), as SAM / cargo-lambda
#      deploy it;
#   2. cold start: process start → first Runtime API `next`, median and p90 of RUNS starts per
#      binary against a local Runtime API stub (tools/ras-bench), with AWS_ENDPOINT_URL on a trap
#      port that reports any network I/O before `next`;
#   3. peak RSS: one invocation with a 100-record event (ingest: 100 MSK records of one 50-essay
#      batch; relay: 100 outbox INSERT stream records; api: that batch's status) against a
#      private local AWS-API server (moto from .venv, started and stopped by this script), VmHWM
#      read after the response. Skipped without .venv (infra/local/setup.sh).
#
#   scripts/bench-startup.sh            # RUNS=21 by default
#   RUNS=41 scripts/bench-startup.sh
#   RAS_BENCH_SKIP_BUILD=1 scripts/bench-startup.sh   # measure the binaries already built
#
# Release binaries go to target/release-bench (override: RAS_BENCH_TARGET) so the build does not
# wait on, or invalidate, the debug builds in target/. A clean build takes 3–6 minutes here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
RUNS="${RUNS:-21}"
TARGET="${RAS_BENCH_TARGET:-${ROOT}/target/release-bench}"
BIN="${TARGET}/release"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
FUNCTIONS=(hello-lambda ingest relay api timer)

if [[ -z "${RAS_BENCH_SKIP_BUILD:-}" ]]; then
    echo "== build (release profile, ${TARGET})"
    CARGO_TARGET_DIR="${TARGET}" cargo build --release --locked \
        -p ingest -p relay -p api -p timer -p hello-lambda -p ras-bench
fi

echo
echo "== machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
rustc --version

echo
echo "== package size (x86_64, zip -9 of the binary named bootstrap)"
echo "| binary | bootstrap | zipped |"
echo "|---|---|---|"
for f in "${FUNCTIONS[@]}"; do
    mkdir -p "${WORK}/zip/${f}"
    cp "${BIN}/${f}" "${WORK}/zip/${f}/bootstrap"
    (cd "${WORK}/zip/${f}" && zip -q -9 "../${f}.zip" bootstrap)
    raw=$(stat -c %s "${WORK}/zip/${f}/bootstrap")
    zipped=$(stat -c %s "${WORK}/zip/${f}.zip")
    printf '| %s | %.2f MB | %.2f MB |\n' "${f}" "$(echo "${raw}/1000000" | bc -l)" \
        "$(echo "${zipped}/1000000" | bc -l)"
done

# The functions' configuration with placeholder values: nothing is contacted during init.
# A clean environment, so the figures do not depend on the caller's shell.
bench_env=(
    env -i "PATH=${PATH}" "HOME=${HOME:-/tmp}"
    AWS_REGION=eu-north-1 AWS_DEFAULT_REGION=eu-north-1
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_SESSION_TOKEN=bench
    AWS_EC2_METADATA_DISABLED=true
    RAS_STATE_TABLE=bench-ras-state RAS_OUTBOX_TABLE=bench-ras-outbox
    RAS_INGEST_DLQ_URL=https://sqs.eu-north-1.amazonaws.com/000000000000/bench-ras-ingest-dlq
    RAS_EVENTS_QUEUE_URL=https://sqs.eu-north-1.amazonaws.com/000000000000/bench-ras-events.fifo
    RAS_NOTIFICATIONS_QUEUE_URL=https://sqs.eu-north-1.amazonaws.com/000000000000/bench-ras-notifications.fifo
    RAS_RELAY_PARKED_QUEUE_URL=https://sqs.eu-north-1.amazonaws.com/000000000000/bench-ras-relay-parked
    # The relay as deployed by default: both kinds to MSK with IAM (the connection is opened by
    # the first publish, not at init). The peak-RSS invocation below overrides the routes with
    # the local server's (sqs), which has no Kafka.
    RAS_EVENTS_PUBLISH_TO=kafka RAS_NOTIFICATIONS_PUBLISH_TO=kafka RAS_KAFKA_SECURITY=iam
    RAS_KAFKA_BOOTSTRAP=b-1.bench.abc123.c2.kafka.eu-north-1.amazonaws.com:9098,b-2.bench.abc123.c2.kafka.eu-north-1.amazonaws.com:9098
    RAS_INTERNAL_API_KEY=local-internal-api-key
    RUST_LOG=info
)

echo
echo "== cold start: process start → first \`next\` (${RUNS} starts per binary, round robin)"
binaries=()
for f in "${FUNCTIONS[@]}"; do binaries+=("${f}=${BIN}/${f}"); done
"${bench_env[@]}" "${BIN}/ras-bench" startup --runs "${RUNS}" "${binaries[@]}"

echo
echo "== peak RSS of one invocation (VmHWM after the response)"
# A private, empty local AWS-API server: moto copies a whole table per transaction, so on the
# shared server (full of test data) 100 ingest records would take minutes.
if [[ ! -x .venv/bin/moto_server ]]; then
    echo "skipped: no .venv/bin/moto_server (run infra/local/setup.sh)"
    exit 0
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/moto_server -H 127.0.0.1 -p "${port}" >"${WORK}/moto.log" 2>&1 &
moto_pid=$!
stop_moto() {
    kill "${moto_pid}" 2>/dev/null || return 0
    for _ in $(seq 20); do
        kill -0 "${moto_pid}" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "${moto_pid}" 2>/dev/null || true
}
trap 'stop_moto; rm -rf "${WORK}"' EXIT
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${port}" && break
    sleep 0.2
done
AWS_ENDPOINT_URL="http://127.0.0.1:${port}" .venv/bin/python infra/local/create_resources.py \
    --env-file "${WORK}/local.env" >/dev/null
python3 scripts/bench-events.py "${WORK}/events"
local_vars=()
while IFS= read -r line; do
    assignment="${line#export }"
    name="${assignment%%=*}"
    value="${assignment#*=}"
    value="${value%\"}"; value="${value#\"}"; value="${value%\'}"; value="${value#\'}"
    local_vars+=("${name}=${value}")
done < <(grep '^export ' "${WORK}/local.env")
invoke() {
    "${bench_env[@]}" "${local_vars[@]}" "${BIN}/ras-bench" invoke --timeout-ms 600000 "$@"
}
invoke --event "${WORK}/events/relay-100.json" "hello-lambda=${BIN}/hello-lambda" >>"${WORK}/rss.jsonl"
invoke --event "${WORK}/events/ingest-100.json" "ingest=${BIN}/ingest" >>"${WORK}/rss.jsonl"
invoke --event "${WORK}/events/relay-100.json" "relay=${BIN}/relay" >>"${WORK}/rss.jsonl"
invoke --event "${WORK}/events/api-status.json" "api=${BIN}/api" >>"${WORK}/rss.jsonl"
invoke --event events/timer/scheduled.json "timer=${BIN}/timer" >>"${WORK}/rss.jsonl"
echo
python3 - "${WORK}/rss.jsonl" <<'EOF'
import json, sys
print("| binary | event | peak RSS (VmHWM) | invocation | response |")
print("|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    body = r["body"]
    if isinstance(body, dict) and "batchItemFailures" in body:
        summary = f'{len(body["batchItemFailures"])} batchItemFailures'
    elif isinstance(body, dict) and "statusCode" in body:
        summary = f'HTTP {body["statusCode"]}'
    elif isinstance(body, dict) and "overdue" in body:
        summary = f'{body["overdue"]} overdue'
    else:
        summary = "echo"
    print(f'| {r["function"]} | {r["event_bytes"] / 1000:.0f} KB | '
          f'{r["peak_rss_kib"] / 1024:.1f} MiB | {r["invocation_ms"]:.0f} ms | {summary} |')
EOF
