#!/usr/bin/env bash
# Cold start (process start -> first Runtime API `next`) of the x86_64 builds, round robin,
# with the project's ras-bench. RUNS=21 by default.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set -euo pipefail
RUNS="${RUNS:-21}"
A=${HERE}/artifacts/x86_64
ln -sf "${A}/fn-rskafka/bootstrap" "${A}/fn-rskafka-lazytls"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
env -i "PATH=${PATH}" "HOME=${HOME:-/tmp}" \
    AWS_REGION=eu-north-1 AWS_DEFAULT_REGION=eu-north-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_SESSION_TOKEN=bench \
    AWS_EC2_METADATA_DISABLED=true RUST_LOG=info \
    KAFKA_BOOTSTRAP=b-1.bench.kafka.eu-north-1.amazonaws.com:9098,b-2.bench.kafka.eu-north-1.amazonaws.com:9098 \
    ${HERE}/target-rasbench/release/ras-bench startup --runs "${RUNS}" \
    "baseline=${A}/baseline/bootstrap" \
    "fn-rskafka=${A}/fn-rskafka/bootstrap" \
    "fn-rskafka-lazytls=${A}/fn-rskafka-lazytls" \
    "fn-rdkafka=${A}/fn-rdkafka/bootstrap"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
