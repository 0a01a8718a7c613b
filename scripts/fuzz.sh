#!/usr/bin/env bash
# Fuzz the Kafka record decoder, the ingest path and the API's request parsing (cargo-fuzz,
# libFuzzer). The targets live in fuzz/ (its own crate, outside the workspace).
#
#   scripts/fuzz.sh                  # every target, 60 s each
#   scripts/fuzz.sh <target> [secs]  # one target; `all` for every target
#   scripts/fuzz.sh list             # the targets
#
# Targets: decode_record, ingest_record, kafka_event, api_query, api_request, api_lambda_event.
#
# Needs only the stable toolchain: cargo-fuzz passes nightly flags (-Zsanitizer=…,
# -Cllvm-args=-sanitizer-coverage-…), which RUSTC_BOOTSTRAP=1 allows on stable. cargo-fuzz
# (pinned) is installed into .tools/ on the first run (~1 min).
#
# Environment: FUZZ_SANITIZER (default `none`: the code under test is safe Rust; `address` for
# ASan), FUZZ_JOBS (parallel fuzzing processes per target, default 1), FUZZ_RSS_MB (default
# 2048). The growing corpus is kept in fuzz/corpus/<target>/ (git-ignored; seeded from
# tests/fixtures/huleedu, events/ and fuzz/seeds on every run), crashes in
# fuzz/artifacts/<target>/. Reproduce one: scripts/fuzz.sh repro <target> <file>.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

CARGO_FUZZ_VERSION="0.13.2"
TOOLS="${ROOT}/.tools"
TARGETS=(decode_record ingest_record kafka_event api_query api_request api_lambda_event)
SANITIZER="${FUZZ_SANITIZER:-none}"
JOBS="${FUZZ_JOBS:-1}"
RSS_MB="${FUZZ_RSS_MB:-2048}"

export RUSTC_BOOTSTRAP=1
export PATH="${TOOLS}/bin:${PATH}"

install_cargo_fuzz() {
    if cargo fuzz --version 2>/dev/null | grep -q " ${CARGO_FUZZ_VERSION}\$"; then
        return
    fi
    echo "fuzz: installing cargo-fuzz ${CARGO_FUZZ_VERSION} into ${TOOLS}" >&2
    CARGO_TARGET_DIR="${TOOLS}/build" cargo install cargo-fuzz \
        --version "${CARGO_FUZZ_VERSION}" --locked --root "${TOOLS}"
}

# Selector byte of the record targets (fuzz/src/lib.rs, `split_record_input`): topic index in
# ConsumedTopic::ALL order + 7 × state (0 empty, 1 registered, 2 whole lifecycle).
topic_index() {
    case "$1" in
        huleedu.batch.essays.registered.v1) echo 0 ;;
        huleedu.els.essay.slot.assigned.v1) echo 1 ;;
        huleedu.els.batch.phase.outcome.v1) echo 2 ;;
        huleedu.essay.spellcheck.results.v1) echo 3 ;;
        huleedu.assessment.result.published.v1) echo 4 ;;
        huleedu.batch.pipeline.completed.v1) echo 5 ;;
        *) return 1 ;;
    esac
}

seed() {
    local target="$1" dir="fuzz/corpus/$1" fixture topic index state
    mkdir -p "${dir}"
    case "${target}" in
        decode_record | ingest_record)
            for fixture in tests/fixtures/huleedu/huleedu.*.json; do
                topic="$(basename "${fixture}" .json)"
                [[ "${topic}" == *.meta ]] && continue
                index="$(topic_index "${topic}")" || continue
                for state in 0 1 2; do
                    [[ "${target}" == decode_record && "${state}" != 0 ]] && continue
                    {
                        printf "\\$(printf '%03o' $((index + 7 * state)))"
                        cat "${fixture}"
                    } >"${dir}/seed-${topic}-${state}"
                done
            done
            ;;
        kafka_event) cp events/ingest/*.json "${dir}/" ;;
        api_lambda_event) cp events/api/*.json "${dir}/" ;;
        api_query | api_request) cp "fuzz/seeds/${target}/"* "${dir}/" ;;
        *)
            echo "fuzz: unknown target ${target} (one of: ${TARGETS[*]})" >&2
            exit 2
            ;;
    esac
}

run() {
    local target="$1" seconds="$2"
    seed "${target}"
    echo "==== fuzz ${target}: ${seconds} s, sanitizer ${SANITIZER} ====" >&2
    local parallel=()
    if ((JOBS > 1)); then
        parallel=(-jobs="${JOBS}" -workers="${JOBS}")
    fi
    cargo fuzz run --sanitizer "${SANITIZER}" "${target}" "fuzz/corpus/${target}" -- \
        -max_total_time="${seconds}" -rss_limit_mb="${RSS_MB}" -timeout=10 \
        -print_final_stats=1 "${parallel[@]}"
}

case "${1:-all}" in
    list)
        printf '%s\n' "${TARGETS[@]}"
        ;;
    repro)
        install_cargo_fuzz
        cargo fuzz run --sanitizer "${SANITIZER}" "${2:?target}" "${3:?crash file}"
        ;;
    build)
        install_cargo_fuzz
        cargo fuzz build --sanitizer "${SANITIZER}"
        ;;
    all)
        install_cargo_fuzz
        cargo fuzz build --sanitizer "${SANITIZER}"
        for target in "${TARGETS[@]}"; do
            run "${target}" "${2:-60}"
        done
        ;;
    *)
        install_cargo_fuzz
        run "$1" "${2:-60}"
        ;;
esac
