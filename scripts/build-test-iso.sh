#!/usr/bin/env bash
# Builds (or reuses from .tools/testiso/) the pxeflow test ISO; prints {"isoPath",...} as JSON.
# Usage: scripts/build-test-iso.sh [--out-dir DIR] [--version NAME] [--quiet]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx image/testiso/build.ts "$@"
