#!/usr/bin/env bash
# arm64: baseline with the relay's TLS stack, and fn-rskafka on the aws-lc-rs provider.
# Two cargo invocations so that features are not unified between the two packages.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd ${HERE}
export PATH=${HERE}/.venv/bin:$PATH CARGO_TARGET_DIR=${HERE}/target
date -u +%T
/usr/bin/time -f "%e s wall, %U s user" cargo lambda build --release --arm64 -p baseline-tls --bin baseline-tls || exit 1
mkdir -p artifacts/arm64/baseline-tls && cp target/lambda/baseline-tls/bootstrap artifacts/arm64/baseline-tls/
date -u +%T
/usr/bin/time -f "%e s wall, %U s user" cargo lambda build --release --arm64 -p fn-rskafka --features awslc --bin fn-rskafka || exit 1
mkdir -p artifacts/arm64/fn-rskafka-awslc && cp target/lambda/fn-rskafka/bootstrap artifacts/arm64/fn-rskafka-awslc/
date -u +%T
echo done
