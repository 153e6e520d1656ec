#!/usr/bin/env bash
# The test command (README quick start, .ci/run): setup, type-check, lint, then every test against real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== type-check" && npx tsc --noEmit -p .
echo "== lint" && npx biome lint .
echo "== tests"
mapfile -t files < <(find test -name '*.test.ts' ${PXEFLOW_TEST_FILTER:+-path "*${PXEFLOW_TEST_FILTER}*"} | sort)
mkdir -p test-artifacts
exec node --import tsx --test --test-reporter=spec --test-concurrency="${PXEFLOW_TEST_CONCURRENCY:-2}" \
  --test-timeout=900000 "${files[@]}"
