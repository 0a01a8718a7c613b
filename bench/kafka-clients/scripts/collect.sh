#!/usr/bin/env bash
# Copy cargo-lambda's bootstraps (target/lambda/<bin>/bootstrap, shared by both arches) aside.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set -euo pipefail
arch="$1"
bins="baseline fn-rskafka fn-rdkafka"; [[ "$arch" == x86_64 ]] && bins="$bins pub-rskafka pub-rdkafka"
for f in $bins; do
    [[ -f ${HERE}/target/lambda/${f}/bootstrap ]] || continue
    mkdir -p ${HERE}/artifacts/${arch}/${f}
    cp ${HERE}/target/lambda/${f}/bootstrap ${HERE}/artifacts/${arch}/${f}/bootstrap
    file ${HERE}/artifacts/${arch}/${f}/bootstrap | cut -d, -f1-2
done
