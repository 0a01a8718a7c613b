#!/usr/bin/env bash
# Fetch rdkafka-sys 4.10.0+2.12.1 from crates.io into vendor/rdkafka-sys and apply the one-line
# fix for librdkafka#5135 (cmake-build + ssl without curl does not compile); Cargo.toml's
# [patch.crates-io] points there. Run once before building fn-rdkafka.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="4.10.0+2.12.1"
rm -rf "${HERE}/vendor/rdkafka-sys" && mkdir -p "${HERE}/vendor"
# cargo's download cache if a build fetched it already, else crates.io's static file server.
cached="$(ls "${CARGO_HOME:-${HOME}/.cargo}"/registry/cache/*/"rdkafka-sys-${VERSION}.crate" 2>/dev/null | head -n 1 || true)"
if [[ -n "${cached}" ]]; then
    tar -xzf "${cached}" -C "${HERE}/vendor"
else
    curl -fsSL "https://static.crates.io/crates/rdkafka-sys/rdkafka-sys-${VERSION/+/%2B}.crate" \
        | tar -xz -C "${HERE}/vendor"
fi
mv "${HERE}/vendor/rdkafka-sys-${VERSION}" "${HERE}/vendor/rdkafka-sys"
patch -d "${HERE}/vendor/rdkafka-sys" -p1 <"${HERE}/rdkafka-sys-oidc-ifdef.patch"
echo "vendor/rdkafka-sys ready (patched)"
