#!/usr/bin/env bash
# Install the local Kafka-compatible broker (tansu, pinned) into <repo>/.tools/tansu, and
# aiokafka (the tests' second Kafka client) into <repo>/.tools/kafka-venv.
# Idempotent: skips what is already installed at the pinned version.
# Builds with its own CARGO_TARGET_DIR under /tmp (about 1.4 GB, ~8 min on 2 cores), deleted
# afterwards. Needs only a Rust toolchain and access to crates.io; installs nothing globally.
set -euo pipefail

TANSU_VERSION="0.6.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_ROOT="${ROOT}/.tools/tansu"
TANSU="${TOOLS_ROOT}/bin/tansu"

if [[ -x "${TANSU}" ]] && "${TANSU}" --version 2>/dev/null | grep -q "${TANSU_VERSION}"; then
    echo "kafka-setup: tansu ${TANSU_VERSION} already installed (${TANSU})"
else
    BUILD_DIR="$(mktemp -d /tmp/ras-tansu-build.XXXXXX)"
    trap 'rm -rf "${BUILD_DIR}"' EXIT
    echo "kafka-setup: building tansu ${TANSU_VERSION} (features dynostore) into ${TOOLS_ROOT}; build dir ${BUILD_DIR}"
    started=${SECONDS}
    CARGO_TARGET_DIR="${BUILD_DIR}" cargo install --locked --features dynostore \
        "tansu@${TANSU_VERSION}" --root "${TOOLS_ROOT}"
    rm -rf "${BUILD_DIR}"
    echo "kafka-setup: installed $("${TANSU}" --version 2>/dev/null || echo tansu) in $((SECONDS - started)) s"
fi

# A second Kafka client for the tests (tests/kafka_consumer.py): aiokafka, the version HuleEdu
# last pinned, in its own virtualenv.
AIOKAFKA_VERSION="0.13.0"
VENV="${ROOT}/.tools/kafka-venv"
if [[ -x "${VENV}/bin/python" ]] \
    && [[ "$("${VENV}/bin/python" -c 'from importlib.metadata import version; print(version("aiokafka"))' 2>/dev/null)" == "${AIOKAFKA_VERSION}" ]]; then
    echo "kafka-setup: aiokafka ${AIOKAFKA_VERSION} already installed in ${VENV}"
else
    [[ -x "${VENV}/bin/python" ]] || python3 -m venv "${VENV}"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "aiokafka==${AIOKAFKA_VERSION}"
    echo "kafka-setup: installed aiokafka ${AIOKAFKA_VERSION} into ${VENV}"
fi
