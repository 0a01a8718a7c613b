#!/usr/bin/env bash
# Lint the SAM template (template.yaml) offline, with pinned tools.
#
#   scripts/lint-template.sh [template]        # default: template.yaml
#
# 1. creates the project-local virtualenv .venv-sam with aws-sam-cli and cfn-lint at the pinned
#    versions (first run only, ~1 min; skipped when both are already installed at those versions).
#    It is separate from .venv (moto) so that the test setup stays small and fast.
# 2. runs `sam validate`, `sam validate --lint` and `cfn-lint` on the template, cfn-lint with the
#    project's own rules (infra/lint/RasTemplateRules.py, E9001-E9006: IAM scoping per function,
#    Kafka records never skipped, the outbox stream source, table/queue names and kinds, failure
#    alarms, alarm notifications). All three must pass; they run even after one fails, so one run
#    shows every finding.
#
# Needs: python3 (with venv and pip) and access to PyPI on the first run. No AWS credentials and
# no other network access: the region is fixed to us-east-1 and the validation is local.
# What needs the Rust code or the docs (variables the code reads, the consumed topics, message
# sizes, API routes, binaries, alarm metrics, runbook lines) is tested by
# tests/tests/template_matches_code.rs.
set -euo pipefail

SAM_CLI_VERSION="1.170.0"
CFN_LINT_VERSION="1.58.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
TEMPLATE="${1:-template.yaml}"
VENV="${ROOT}/.venv-sam"
PY="${VENV}/bin/python"

if ! command -v python3 >/dev/null 2>&1; then
    echo "lint-template: python3 is required but not on PATH" >&2
    exit 1
fi

installed_versions() {
    "${PY}" - <<'PY' 2>/dev/null || true
from importlib.metadata import version, PackageNotFoundError
try:
    print(version("aws-sam-cli"), version("cfn-lint"))
except PackageNotFoundError:
    pass
PY
}

if [[ -x "${PY}" && -x "${VENV}/bin/sam" && -x "${VENV}/bin/cfn-lint" \
    && "$(installed_versions)" == "${SAM_CLI_VERSION} ${CFN_LINT_VERSION}" ]]; then
    echo "lint-template: aws-sam-cli ${SAM_CLI_VERSION} and cfn-lint ${CFN_LINT_VERSION} already in ${VENV}"
else
    if [[ ! -x "${PY}" ]]; then
        echo "lint-template: creating virtualenv ${VENV}"
        python3 -m venv "${VENV}"
    fi
    echo "lint-template: installing aws-sam-cli==${SAM_CLI_VERSION} cfn-lint==${CFN_LINT_VERSION} into ${VENV}"
    "${PY}" -m pip install --quiet --disable-pip-version-check --no-input \
        "aws-sam-cli==${SAM_CLI_VERSION}" "cfn-lint==${CFN_LINT_VERSION}"
    echo "lint-template: installed $(installed_versions)"
fi

# Offline and credential-free: a fixed region, no telemetry, no update check, and never the
# caller's AWS profile (validation needs none).
export AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_UPDATE_CHECK=1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL

status=0
run() {
    printf '\nlint-template: $ %s\n' "$*"
    if "$@"; then
        echo "lint-template: ok"
    else
        local rc=$?
        echo "lint-template: FAILED (exit ${rc}): $*" >&2
        status=1
    fi
}

run "${VENV}/bin/sam" validate --template "${TEMPLATE}" --region us-east-1
run "${VENV}/bin/sam" validate --lint --template "${TEMPLATE}" --region us-east-1
run "${VENV}/bin/cfn-lint" --regions us-east-1 --append-rules "${ROOT}/infra/lint" -- "${TEMPLATE}"

if [[ ${status} -eq 0 ]]; then
    echo "lint-template: ${TEMPLATE}: all linters passed"
fi
exit "${status}"
