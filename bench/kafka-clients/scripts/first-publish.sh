#!/usr/bin/env bash
# First publish (no client -> first acknowledged produce) and steady-state produce latency,
# RUNS fresh processes per variant, round robin, against the local tansu on 127.0.0.1:9302
# (plaintext). Prints JSON lines to stdout.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set -uo pipefail
RUNS="${RUNS:-21}"
A=${HERE}/artifacts/x86_64
export KAFKA_BOOTSTRAP=127.0.0.1:9302 KAFKA_SECURITY=plaintext BENCH_N="${BENCH_N:-50}"
for i in $(seq "${RUNS}"); do
    export BENCH_KEY="batch-$(printf %04d "$i")"
    "${A}/pub-rskafka/bootstrap" | sed "s/^{/{\"variant\":\"rskafka\",\"key\":\"${BENCH_KEY}\",/"
    KAFKA_IDEMPOTENCE=false KAFKA_LINGER_MS=5 "${A}/pub-rdkafka/bootstrap" | sed "s/^{/{\"variant\":\"rdkafka linger5\",\"key\":\"${BENCH_KEY}\",/"
    KAFKA_IDEMPOTENCE=false KAFKA_LINGER_MS=0 "${A}/pub-rdkafka/bootstrap" | sed "s/^{/{\"variant\":\"rdkafka linger0\",\"key\":\"${BENCH_KEY}\",/"
    KAFKA_IDEMPOTENCE=true KAFKA_LINGER_MS=5 "${A}/pub-rdkafka/bootstrap" | sed "s/^{/{\"variant\":\"rdkafka idempotent linger5\",\"key\":\"${BENCH_KEY}\",/"
done
