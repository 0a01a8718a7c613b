#!/usr/bin/env bash
# Install the local AWS-API server (moto) into a project-local virtualenv at .venv.
# Idempotent: does nothing when .venv already has moto at the pinned version.
# Needs only python3 (with the venv module) and access to PyPI; installs nothing globally.
set -euo pipefail

MOTO_VERSION="5.2.5"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ROOT}/.venv"
PY="${VENV}/bin/python"

installed_version() {
    "${PY}" - <<'PY' 2>/dev/null || true
from importlib.metadata import version, PackageNotFoundError
try:
    import boto3  # noqa: F401  (moto pulls it in; make sure it imports)
    import yaml  # noqa: F401  (PyYAML, from moto[server]: create_resources.py reads template.yaml)
    print(version("moto"))
except (ImportError, PackageNotFoundError):
    pass
PY
}

if [[ -x "${PY}" && -x "${VENV}/bin/moto_server" && "$(installed_version)" == "${MOTO_VERSION}" ]]; then
    echo "setup: moto ${MOTO_VERSION} already installed in ${VENV}"
    exit 0
fi

if [[ ! -x "${PY}" ]]; then
    echo "setup: creating virtualenv ${VENV}"
    python3 -m venv "${VENV}"
fi

echo "setup: installing moto[server]==${MOTO_VERSION} into ${VENV}"
"${PY}" -m pip install --quiet --disable-pip-version-check --no-input "moto[server]==${MOTO_VERSION}"
echo "setup: installed moto $(installed_version)"
