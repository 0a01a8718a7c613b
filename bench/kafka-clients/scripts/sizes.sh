#!/usr/bin/env bash
# Package sizes: each bootstrap zipped with zip -9 (as cargo-lambda/SAM upload it).
# usage: scripts/sizes.sh ARCH   (reads artifacts/ARCH/<fn>/bootstrap)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set -euo pipefail
arch="$1"; dir="${HERE}/artifacts/${arch}"
echo "| function (${arch}) | bootstrap bytes | zip -9 bytes | bootstrap MB | zipped MB |"
echo "|---|---|---|---|---|"
for f in baseline fn-rskafka fn-rdkafka; do
    [[ -f "${dir}/${f}/bootstrap" ]] || { echo "| ${f} | missing | | | |"; continue; }
    rm -f "${dir}/${f}.zip"
    (cd "${dir}/${f}" && zip -q -9 "../${f}.zip" bootstrap)
    raw=$(stat -c %s "${dir}/${f}/bootstrap"); z=$(stat -c %s "${dir}/${f}.zip")
    printf '| %s | %d | %d | %.2f | %.2f |\n' "$f" "$raw" "$z" "$(bc -l <<<"$raw/1000000")" "$(bc -l <<<"$z/1000000")"
done
