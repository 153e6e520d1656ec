#!/usr/bin/env bash
# The long randomized reliability run (issue 11): crash-anywhere rounds (≥ 50 nodes, ≥ 10 controller SIGKILLs
# each) alternating with 200-node boot storms (dnsmasq killed mid-storm, then the controller), until
# PXEFLOW_SOAK_MINUTES (default 30) are up. Prints figures per round and a summary; exit 1 names the seed of a
# broken round. See docs/reliability.md for the knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
[ "$(id -u)" = 0 ] || { echo "soak: needs root (network namespaces, dnsmasq)" >&2; exit 2; }
exec node --import tsx test/reliability/soak.ts
