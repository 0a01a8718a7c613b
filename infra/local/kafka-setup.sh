#!/usr/bin/env bash
# Install the local Kafka-compatible broker (tansu, pinned) and aiokafka (the tests' second
# Kafka client), reachable as <repo>/.tools/tansu and <repo>/.tools/kafka-venv.
#
# Both are built once per machine into a cache outside the clone,
# ${RAS_TOOLS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/ras-tools}/{tansu-<version>,kafka-venv-aiokafka-<version>},
# and linked into .tools/: a fresh clone (CI's included) on a machine that ran this before
# starts in a second; the first run builds tansu (~8 min on 2 cores; its own CARGO_TARGET_DIR
# under /tmp, about 1.4 GB, deleted afterwards). Set RAS_TOOLS_CACHE=<repo>/.tools-cache (or any
# directory) to keep everything inside the clone. Idempotent: skips what is installed at the
# pinned version. Needs a Rust toolchain, python3 and access to crates.io and PyPI.
set -euo pipefail

TANSU_VERSION="0.6.0"
AIOKAFKA_VERSION="0.13.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${RAS_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/ras-tools}"
mkdir -p "${CACHE}" "${ROOT}/.tools"
TOOLS_ROOT="${CACHE}/tansu-${TANSU_VERSION}"
TANSU="${TOOLS_ROOT}/bin/tansu"
VENV="${CACHE}/kafka-venv-aiokafka-${AIOKAFKA_VERSION}"

# <repo>/.tools/<name> -> the cached install (replaces an older link or install there).
link() {
    local name="$1" target="$2"
    if [[ "$(readlink "${ROOT}/.tools/${name}" 2>/dev/null)" != "${target}" ]]; then
        rm -rf "${ROOT}/.tools/${name}"
        ln -s "${target}" "${ROOT}/.tools/${name}"
    fi
}

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
if [[ -x "${VENV}/bin/python" ]] \
    && [[ "$("${VENV}/bin/python" -c 'from importlib.metadata import version; print(version("aiokafka"))' 2>/dev/null)" == "${AIOKAFKA_VERSION}" ]]; then
    echo "kafka-setup: aiokafka ${AIOKAFKA_VERSION} already installed in ${VENV}"
else
    [[ -x "${VENV}/bin/python" ]] || python3 -m venv "${VENV}"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "aiokafka==${AIOKAFKA_VERSION}"
    echo "kafka-setup: installed aiokafka ${AIOKAFKA_VERSION} into ${VENV}"
fi

link tansu "${TOOLS_ROOT}"
link kafka-venv "${VENV}"
