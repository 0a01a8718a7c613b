#!/usr/bin/env bash
# wait for the x86_64 build, collect its artifacts, then build arm64 (functions only).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
while ! grep -q '^rc=' ${HERE}/build-x86.log; do sleep 5; done
${HERE}/scripts/collect.sh x86_64 > ${HERE}/collect-x86.log 2>&1
cd ${HERE}
date -u +%T > ${HERE}/build-arm64.start
PATH=${HERE}/.venv/bin:$PATH CARGO_TARGET_DIR=${HERE}/target /usr/bin/time -v \
  cargo lambda build --release --arm64 --bin baseline --bin fn-rskafka --bin fn-rdkafka > ${HERE}/build-arm64.log 2>&1
echo rc=$? >> ${HERE}/build-arm64.log
${HERE}/scripts/collect.sh arm64 > ${HERE}/collect-arm64.log 2>&1
