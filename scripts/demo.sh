#!/usr/bin/env bash
# The main command (README quick start): setup, then the demo install on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx cli/demo.ts "$@"
